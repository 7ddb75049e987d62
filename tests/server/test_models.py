"""/v1/models: what the server runs, as its model cards and checkpoints say."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from fastapi.testclient import TestClient

from model.checkpoint import load
from tests.server.conftest import COCHLEA, DVS, cochlea_recording, columns, dvs_recording


def test_models_list_their_specs_and_describe_their_architecture(
        client: TestClient, checkpoints: Path) -> None:
    names = [m["name"] for m in client.get("/v1/models").json()]
    assert sorted(names) == sorted([COCHLEA, DVS])
    detail = client.get(f"/v1/models/{COCHLEA}").json()
    assert detail["input"]["sensor"] == "cochlea" and detail["labels"][0] == "class0"
    assert detail["event_fields"] == ["t", "channel"]
    arch = detail["architecture"]
    assert arch["neurons"] == [32, 32] and arch["fan_out"] == [32, 32, 4]  # the tiny preset
    weights = jax.tree_util.tree_leaves(load(checkpoints / COCHLEA).params)
    assert arch["parameters"] == sum(np.size(w) for w in weights)


def test_the_test_models_spike_so_that_equal_results_mean_equal_streams(
        client: TestClient) -> None:
    """The tests compare streamed, resumed, reloaded and imported sessions with one-shot runs;
    that only shows the state was carried if the networks spike and their outputs differ
    from the uniform distribution, which silent random-init layers would always give."""
    for model, recording in ((COCHLEA, cochlea_recording), (DVS, dvs_recording)):
        result = client.post(f"/v1/models/{model}/infer", json=columns(recording(seed=11)))
        spikes, probs = result.json()["spikes"]["total"], result.json()["probabilities"]
        assert min(spikes) > 0, (model, spikes)
        assert max(probs) - min(probs) > 0.05, (model, probs)
