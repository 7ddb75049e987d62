"""Fixtures shared by the scripts' tests."""

from __future__ import annotations

from pathlib import Path

import jax
import pytest

from model.checkpoint import ModelCard, save
from model.digit_words import KEYS
from model.network import init_params
from model.spec import InputSpec, preset_config


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    """An untrained tiny spoken-digits checkpoint: 16 cochlea channels, SHD's 20 classes."""
    spec = InputSpec(sensor="cochlea", dt_us=4000, channels=16)
    cfg = preset_config("tiny", n_in=spec.features, n_classes=len(KEYS))
    save(tmp_path / "ckpt", ModelCard(name="t", architecture=cfg, input=spec, labels=list(KEYS)),
         init_params(jax.random.PRNGKey(0), cfg))
    return tmp_path / "ckpt"
