"""scripts/gru_baseline.py: the non-spiking reference learns what S5-RF learns, scored alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.datasets import write_shd
from scripts.gru_baseline import _classify, main
from tests.order_task import order_task


@pytest.fixture(scope="module")
def order_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("order")
    rng = np.random.default_rng(0)
    for name, n in (("train", 256), ("test", 64)):
        events, labels = order_task(n, rng)
        engines = np.array(["a", "b"])[np.arange(n) % 2]
        write_shd(root / f"{name}.h5", events, labels, keys=["ab", "ba", "cd", "dc"],
                  channels=40, extra={"engine": engines.astype("S")})
    return root


def test_the_gru_learns_the_temporal_order_task_and_reports_per_engine(order_files: Path,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "gru.json"
    result = main(["--data", str(order_files / "train.h5"), "--test",
                   str(order_files / "test.h5"), "--epochs", "6", "--hidden", "32",
                   "--layers", "1", "--dt-us", "5000", "--downsample", "1", "--shift", "1",
                   "--mask-time", "2", "--json", str(out)])
    assert result["test_accuracy"] > 0.9
    assert set(result["per_engine"]) == {"a", "b"}
    assert sum(e["samples"] for e in result["per_engine"].values()) == 64
    assert [r["epoch"] for r in result["log"]] == list(range(1, 7))
    assert json.loads(out.read_text())["test_accuracy"] == result["test_accuracy"]
    # scored after every epoch: one compilation per padded length (train and test), not per call
    assert _classify._cache_size() <= 2

