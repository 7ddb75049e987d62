"""The shipped checkpoints: each loads, classifies its shipped samples, and its model card's
figures match a fresh evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model import checkpoint
from model.batching import BinnedSet
from model.binning import bin_recording
from model.evaluation import evaluate
from model.samples import read_index

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = checkpoint.discover(ROOT / "checkpoints")


def evaluate_events(ckpt: checkpoint.Checkpoint, events: list[np.ndarray],
                    labels: np.ndarray) -> dict[str, Any]:
    """``s5rf eval``'s metrics of a checkpoint on recordings held in memory."""
    data = BinnedSet(events=events, bins=[bin_recording(e, ckpt.card.input) for e in events],
                     labels=labels)
    return evaluate(ckpt.params, ckpt.cfg, ckpt.card.input, data, ckpt.card.labels)


def test_the_repo_ships_both_checkpoints():
    assert {p.name for p in SHIPPED} >= {"digits-dvs", "digits-cochlea"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_checkpoint_is_small_and_documents_its_metrics(path):
    size = sum(f.stat().st_size for f in path.iterdir() if f.name != "train_state.msgpack")
    assert size <= 5 * 2**20
    card = checkpoint.read_card(path)
    assert card.description, "GET /v1/models lists it"
    ev = card.metrics["eval"]
    assert ev["command"].startswith("s5rf eval")
    assert card.provenance["data"]["recipe"], "the card must say how its data was made"
    assert len(ev["mean_spikes_per_sample_per_layer"]) == card.architecture.n_layers


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_eval_of_the_shipped_samples_reproduces_their_recorded_classes(path):
    ckpt = checkpoint.load(path)
    folder = ROOT / "samples" / path.name
    index = read_index(folder)
    events = [np.load(folder / e.file) for e in index]
    predicted = np.array([e.predicted for e in index])
    metrics = evaluate_events(ckpt, events, predicted)
    assert metrics["accuracy"] == 1.0, metrics["confusion"]
    labels = np.array([e.label for e in index])
    if ckpt.card.metrics["eval"]["accuracy"] >= 0.95:  # a network this good knows its samples
        np.testing.assert_array_equal(predicted, labels)


def test_dvs_card_matches_a_fresh_evaluation_on_the_regenerated_test_split():
    """The DVS test split is regenerated from its recipe (deterministic) and re-evaluated."""
    from model.dvs_data import DigitsRecipe, dataset_sensor, load_digit_images, plan, record

    path = ROOT / "checkpoints" / "digits-dvs"
    ckpt = checkpoint.load(path)
    recipe = DigitsRecipe()
    sensor = dataset_sensor(recipe)
    samples = plan(recipe)["test"]
    _, digit_labels = load_digit_images()
    events = [record(s, recipe, sensor) for s in samples]
    fresh = evaluate_events(ckpt, events, np.array([digit_labels[s.index] for s in samples]))
    card = ckpt.card.metrics["eval"]
    assert fresh["samples"] == card["samples"]
    assert abs(fresh["accuracy"] - card["accuracy"]) <= 1 / card["samples"]
    np.testing.assert_allclose(fresh["synops_per_sample"], card["synops_per_sample"], rtol=1e-3)


COCHLEA_RECORDINGS = 60  # regenerated: ~0.6 s of CPU each


def test_cochlea_card_matches_a_fresh_evaluation_on_regenerated_test_recordings():
    """The spoken-digits test split is not shipped (tens of MB, ~10 min to regenerate): its
    first synthetic recordings are regenerated from the card's recipe (deterministic, given
    the same installed voices) and evaluated; the accuracy must agree with the card's on the
    synthesisers' test recordings within binomial noise (3 sigma). Recorded speakers' takes
    are skipped: their corpus is not shipped (model/recorded_speech.py)."""
    import multiprocessing

    from model import speech_data as sd
    from model.speech_synth import Voice, available_voices

    ckpt = checkpoint.load(ROOT / "checkpoints" / "digits-cochlea")
    described = ckpt.card.provenance["data"]["recipe"]
    recipe = sd.Recipe.from_json(described)
    synthetic = recipe.split_voices(
        [v for v in available_voices() if v.engine in recipe.engines])["test"]
    recorded = [Voice(sd.RECORDED, s) for s in recipe.recorded_test]
    if [v.id for v in synthetic] != [i for i in described["voices"]["test"]
                                     if not i.startswith(f"{sd.RECORDED}/")]:
        pytest.skip("the installed voices differ from the recipe's; install the speech engines "
                    "with .ci/run's apt-get line")
    voices = tuple(sorted((*synthetic, *recorded), key=lambda v: v.id))
    order = sd.turns(voices, recipe.recorded_turns)
    utterances = [sd.utterance(recipe, "test", i, voices)
                  for i in range(len(order) * COCHLEA_RECORDINGS)
                  if order[i % len(order)] != sd.RECORDED][:COCHLEA_RECORDINGS]
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # numba and fork do not mix
        made = pool.starmap(sd.make_recording, [(recipe, u, voices) for u in utterances])
    events = [draws[0] for draws, _ in made]
    fresh = evaluate_events(ckpt, events, np.array([u.label for u in utterances]))
    by_engine = ckpt.card.metrics["eval"]["accuracy_by"]["engine"]
    scored = [m for engine, m in by_engine.items() if engine != sd.RECORDED]
    p = sum(m["accuracy"] * m["samples"] for m in scored) / sum(m["samples"] for m in scored)
    assert abs(fresh["accuracy"] - p) <= 3 * np.sqrt(p * (1 - p) / COCHLEA_RECORDINGS), fresh
