"""Checkpoints: a directory with the model card ``model.json`` and ``params.msgpack``.

The model card is the single description of a network (format version, architecture,
input spec, class labels, measured metrics, provenance). Parameters are serialised with
flax's msgpack codec. ``load`` validates both and says what is wrong with a bad checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np
from flax import serialization
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.errors import InputError
from model.network import Params, init_params
from model.spec import InputSpec, ModelConfig, TrainConfig

CARD_FILE = "model.json"
PARAMS_FILE = "params.msgpack"
# Drawn by `s5rf eval --update-card` from the card's network: a fresh run into the folder
# removes them, as its card drops their figures.
CONFUSION_PNG, EARLY_PNG = "confusion.png", "early_accuracy.png"


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded; the message says what to fix."""


# A path segment of /v1/models/NAME as it is: no slash, space or escape, and not empty.
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ModelCard(BaseModel):
    """``checkpoints/NAME/model.json``."""

    model_config = ConfigDict(extra="forbid")

    format_version: Literal[1] = 1
    name: str = Field(pattern=MODEL_NAME, description="How clients name the model, in URLs too.")
    description: str = ""
    architecture: ModelConfig
    input: InputSpec
    labels: list[str] = Field(min_length=2)
    training: TrainConfig | None = None
    metrics: dict[str, Any] = Field(default_factory=dict, description="Measured, with commands.")
    provenance: dict[str, Any] = Field(default_factory=dict)
    params_sha256: str = ""

    @property
    def version(self) -> str:
        """What a session's state belongs to: the weights, and how they read and step input.

        A short checksum of ``params_sha256``, ``architecture`` and ``input``, so that two
        checkpoints with the same weights but a different bin width or pooling (a hand-edited
        card) do not accept each other's sessions. Labels, metrics and provenance leave it as
        it is.
        """
        behaviour = self.model_dump(mode="json", include={"params_sha256", "architecture", "input"})
        return hashlib.sha256(json.dumps(behaviour, sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    card: ModelCard
    params: Params
    path: Path

    @property
    def cfg(self) -> ModelConfig:
        return self.card.architecture


def save(path: str | Path, card: ModelCard, params: Params) -> ModelCard:
    """Write ``params`` and the card (with the params' checksum) into directory ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    blob = serialization.to_bytes(jax.tree_util.tree_map(np.asarray, params))
    card = card.model_copy(update={"params_sha256": hashlib.sha256(blob).hexdigest()})
    _write_atomically(path / PARAMS_FILE, blob)
    _write_card(path, card)
    return card


def record_metrics(path: str | Path, key: str, metrics: dict[str, Any]) -> ModelCard:
    """Store ``metrics`` as ``card.metrics[key]`` of checkpoint ``path``; the weights and
    their checksum stay as they are."""
    card = read_card(path)
    card = card.model_copy(update={"metrics": {**card.metrics, key: metrics}})
    _write_card(Path(path), card)
    return card


def _write_card(path: Path, card: ModelCard) -> None:
    _write_atomically(path / CARD_FILE, (card.model_dump_json(indent=2) + "\n").encode())


def _write_atomically(path: Path, data: bytes) -> None:
    """Whole or not at all: a server starting meanwhile, or a run killed mid-write, never
    reads half a file (the card's checksum still catches weights and card of two saves)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def read_card(path: str | Path) -> ModelCard:
    """Read and validate ``model.json`` of the checkpoint directory ``path``."""
    if Path(path).is_file():  # model.json itself, or the weights
        raise CheckpointError(f"{path} is a file; give the checkpoint's folder, the one holding "
                              f"{CARD_FILE} and {PARAMS_FILE}")
    card_path = Path(path) / CARD_FILE
    if not card_path.is_file():
        raise CheckpointError(f"{card_path} is missing: a checkpoint directory needs {CARD_FILE}")
    try:
        card = ModelCard.model_validate_json(card_path.read_text())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the file'}: {e['msg']}"
                             for e in exc.errors())
        raise CheckpointError(f"{card_path} is not a valid model card: {problems}") from exc
    cfg = card.architecture
    if len(card.labels) != cfg.n_classes:
        raise CheckpointError(
            f"{card_path}: {len(card.labels)} labels for {cfg.n_classes} output classes"
        )
    if card.input.features != cfg.n_in:
        raise CheckpointError(
            f"{card_path}: the input spec gives {card.input.features} features but the "
            f"network takes n_in={cfg.n_in}"
        )
    return card


def load(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint directory."""
    path = Path(path)
    card = read_card(path)
    params_path = path / PARAMS_FILE
    if not params_path.is_file():
        raise CheckpointError(f"{params_path} is missing")
    blob = params_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if card.params_sha256 and digest != card.params_sha256:
        raise CheckpointError(
            f"{params_path} does not match the card's params_sha256 (file changed or truncated)"
        )
    # A hand-written card may leave it out; the weights' version must still name the weights.
    card = card.model_copy(update={"params_sha256": digest})
    template = jax.eval_shape(lambda: init_params(jax.random.PRNGKey(0), card.architecture))
    try:
        params = serialization.from_bytes(template, blob)
    except Exception as exc:  # msgpack/flax raise several types for a corrupt file
        raise CheckpointError(
            f"{params_path} cannot be decoded for the architecture in {CARD_FILE}: {exc}"
        ) from exc
    for (kp, want), got in zip(jax.tree_util.tree_leaves_with_path(template),
                               jax.tree_util.tree_leaves(params), strict=True):
        if tuple(np.shape(got)) != tuple(want.shape):
            raise CheckpointError(
                f"{params_path}: parameter {jax.tree_util.keystr(kp)} has shape "
                f"{np.shape(got)}, the architecture in {CARD_FILE} needs {want.shape}"
            )
        if not np.isfinite(got).all():  # a diverged run's: it would answer one class, silently
            raise CheckpointError(f"{params_path}: parameter {jax.tree_util.keystr(kp)} holds "
                                  "NaN or infinite values")
    params = jax.tree_util.tree_map(lambda a: jax.numpy.asarray(a, jax.numpy.float32), params)
    return Checkpoint(card=card, params=params, path=path)


def discover(root: str | Path) -> list[Path]:
    """Checkpoint directories directly under ``root`` (those holding a model card)."""
    return sorted(p.parent for p in Path(root).glob(f"*/{CARD_FILE}"))
