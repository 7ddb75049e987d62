"""/v1/models: what the server runs, as its model cards and checkpoints say."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from fastapi.testclient import TestClient

from model.checkpoint import load
from tests.server.conftest import COCHLEA, DVS


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
