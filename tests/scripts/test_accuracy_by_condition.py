"""scripts/accuracy_by_condition.py: groups follow the recordings' settings and add up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from model import speech_data as sd
from model.batching import load_binned
from model.checkpoint import ModelCard, save
from model.datasets import open_dataset
from model.evaluation import evaluate, predict
from model.network import init_params
from model.spec import InputSpec, preset_config
from scripts.accuracy_by_condition import by_condition

pytestmark = pytest.mark.engines


def test_conditions_follow_each_recordings_settings(tmp_path: Path) -> None:
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    data = tmp_path / "speech"
    for _ in sd.generate(sd.Recipe(seed=3, n_train=1, n_test=8, channels=16), data, workers=2):
        pass
    spec = InputSpec(sensor="cochlea", dt_us=4000, channels=16)
    cfg = preset_config("tiny", n_in=spec.features, n_classes=len(sd.KEYS))
    card = ModelCard(name="t", architecture=cfg, input=spec, labels=list(sd.KEYS))
    params = init_params(jax.random.PRNGKey(0), cfg)
    save(tmp_path / "ckpt", card, params)

    table = by_condition(tmp_path / "ckpt", data / "test.h5")

    with open_dataset(data / "test.h5") as ds:
        augment = [json.loads(s)["augment"] for s in ds.extra("settings")]
        engines = list(ds.extra("engine"))
        voices = list(ds.extra("voice"))
        whole = evaluate(params, cfg, spec, load_binned(ds, spec), card.labels)
        predictions = predict(params, cfg, spec, load_binned(ds, spec))
    assert table["all"]["samples"] == 8 and table["all"]["accuracy"] == whole["accuracy"]
    digit_of = {**{w: n for n, w in enumerate(sd.KEYS[:10])},
                **{w: n for n, w in enumerate(sd.KEYS[10:])}}
    same_digit = [digit_of[card.labels[p]] == digit_of[card.labels[t]]
                  for p, t in zip(predictions.predicted, predictions.labels, strict=True)]
    assert table["all"]["digit_accuracy"] == np.mean(same_digit) >= whole["accuracy"]
    def rows(name: str) -> int:
        return table.get(name, {"samples": 0})["samples"]

    reverb = sum("rt60_s" in a for a in augment)
    assert rows("reverberation") == reverb and rows("no reverberation") == 8 - reverb
    snr = [a.get("snr_db", np.inf) for a in augment]
    assert rows("no added noise") == sum("noise" not in a for a in augment)
    assert rows("no noise, or SNR >= 20 dB") + rows("SNR 10-20 dB") + rows("SNR < 10 dB") == 8
    assert rows("SNR < 10 dB") == sum(v < 10 for v in snr)
    assert rows("babble noise") == sum(a.get("noise") == "babble" for a in augment)
    assert rows("telephone band") == sum("telephone" in a for a in augment)
    assert rows("clean: no noise, no reverberation, no telephone") == sum(
        not ({"noise", "rt60_s", "telephone"} & a.keys()) for a in augment)
    for field, sources in (("engine", engines), ("voice", voices)):
        assert sum(row["samples"] for name, row in table.items()
                   if name.startswith(f"{field} ")) == 8
        for source in set(sources):
            assert table[f"{field} {source}"]["samples"] == sources.count(source)
        # the groups' correct answers add up to the whole's
        correct = sum(row["samples"] * row["accuracy"] for name, row in table.items()
                      if name.startswith(f"{field} "))
        assert correct == pytest.approx(8 * whole["accuracy"])
