"""Training: the paper's optimiser, a jitted train step, and a resumable epoch loop.

AdamW with weight decay on weights and Adam with its own learning rate and no decay on the
SSM parameters (Lambda and Delta), both with cosine decay (Huber et al. 2025).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from model.augment import EventAugment, cutmix, shift_and_mask
from model.batching import BinnedSet, batches, padded_length
from model.errors import InputError
from model.network import Params, init_params, jit_offline, run_offline
from model.spec import InputSpec, ModelConfig, ScanMethod, TrainConfig

SSM_PARAMS = ("log_neg_re", "im", "log_step")
TRAIN_STATE_FILE = "train_state.msgpack"
LOG_FILE = "train_log.jsonl"


class Diverged(InputError):
    """The loss turned NaN or infinite: the parameters are lost, and nothing more is saved."""


class ResumeError(InputError):
    """The checkpoint directory holds a run that these settings cannot continue."""


def make_optimizer(tc: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    """AdamW (weights) and Adam (Lambda, Delta), each with its own cosine-decayed rate."""

    def labels(params: Params) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "ssm" if getattr(path[-1], "key", None) in SSM_PARAMS else "weights",
            params,
        )

    steps = max(total_steps, 1)
    return optax.multi_transform(
        {
            "weights": optax.adamw(optax.cosine_decay_schedule(tc.lr, steps, alpha=1e-6),
                                   weight_decay=tc.weight_decay),
            "ssm": optax.adam(optax.cosine_decay_schedule(tc.lr_ssm, steps, alpha=1e-6)),
        },
        labels,
    )


def loss_and_logits(params: Params, cfg: ModelConfig, bins: jax.Array, lengths: jax.Array,
                    targets: jax.Array, weights: jax.Array, key: jax.Array | None,
                    scan: ScanMethod) -> tuple[jax.Array, jax.Array]:
    """Weighted cross-entropy against (soft) targets float32 (B, C)."""
    _, out = run_offline(params, bins, lengths, cfg, scan=scan, dropout_key=key)
    nll = -(targets * out["log_probs"]).sum(-1)
    return (nll * weights).sum() / jnp.maximum(weights.sum(), 1.0), out["log_probs"]


def make_train_step(cfg: ModelConfig, optimizer: optax.GradientTransformation,
                    scan: ScanMethod) -> Callable[..., Any]:
    """Jitted ``step(params, opt_state, bins, lengths, targets, weights, key)
    -> (params, opt_state, loss, log_probs)``."""

    @jax.jit
    def step(params: Params, opt_state: Any, bins: jax.Array, lengths: jax.Array,
             targets: jax.Array, weights: jax.Array, key: jax.Array) -> Any:
        (loss, logp), grads = jax.value_and_grad(loss_and_logits, has_aux=True)(
            params, cfg, bins, lengths, targets, weights, key, scan)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, logp

    return step


def accuracy(params: Params, evaluate: Callable[..., Any], data: BinnedSet, spec: InputSpec,
             batch_size: int, n_bins: int) -> float:
    correct = 0
    for x, lengths, labels, weights in batches(data, batch_size, n_bins, spec):
        _, out = evaluate(params, x, lengths)
        correct += int(((np.argmax(out["log_probs"], -1) == labels) * weights).sum())
    return correct / max(len(data), 1)


@dataclasses.dataclass
class TrainRun:
    """Everything one training run needs; ``out`` is the checkpoint directory."""

    cfg: ModelConfig
    tc: TrainConfig
    spec: InputSpec
    train: BinnedSet
    test: BinnedSet
    out: Path
    scan: ScanMethod = "sequential"
    aug: EventAugment = dataclasses.field(default_factory=EventAugment)
    mask_time: int = 0
    mask_channels: int = 0


def train(run: TrainRun, on_epoch: Callable[[dict[str, Any], Params], None],
          progress: Callable[[int, int, int, float], None] | None = None) -> Params:
    """Train for ``run.tc.epochs`` epochs, resuming from ``out/train_state.msgpack``.

    ``on_epoch(record, params)`` is called after every epoch (the caller writes the
    checkpoint, log and plot); ``progress(epoch, step, steps_per_epoch, loss)`` after every step
    (``epoch`` and ``step`` count from 1).
    """
    cfg, tc = run.cfg, run.tc
    steps_per_epoch = -(-len(run.train) // tc.batch_size)
    optimizer = make_optimizer(tc, steps_per_epoch * tc.epochs)
    params, opt_state, start_epoch = _resume(run, optimizer)
    train_step = make_train_step(cfg, optimizer, run.scan)
    evaluate = jit_offline(cfg, run.scan)
    base_key = jax.random.PRNGKey(tc.seed + 1)
    fingerprint = _fingerprint(run)  # hashes every recording's length: once, not per epoch
    for epoch in range(start_epoch, tc.epochs):
        rng = np.random.default_rng([tc.seed, epoch])  # resumable: each epoch has its own
        t_start = time.perf_counter()
        losses, correct = [], 0.0
        for step, (x, lengths, labels, weights) in enumerate(
                batches(run.train, tc.batch_size, padded_length(run.train), run.spec, rng,
                        run.aug)):
            targets = np.eye(cfg.n_classes, dtype=np.float32)[labels]
            x = shift_and_mask(x, lengths, rng, run.spec, tc.random_shift, run.mask_time,
                               run.mask_channels)
            if tc.cutmix:
                x, targets = cutmix(x, lengths, targets, rng)
            key = jax.random.fold_in(base_key, epoch * steps_per_epoch + step)
            params, opt_state, loss, logp = train_step(params, opt_state, x, lengths, targets,
                                                       weights, key)
            losses.append(float(loss))
            if not np.isfinite(losses[-1]):
                raise Diverged(f"the training loss turned {losses[-1]} at epoch {epoch + 1}, "
                               f"step {step + 1}; that epoch was not saved. Train anew with a "
                               "lower --lr or --lr-ssm")
            # against the (mixed) targets the step was given: CutMix relabels what it mixes
            correct += float(((np.argmax(logp, -1) == targets.argmax(-1)) * weights).sum())
            if progress is not None:
                progress(epoch + 1, step + 1, steps_per_epoch, losses[-1])
        record = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "train_acc": correct / len(run.train),
            "test_acc": accuracy(params, evaluate, run.test, run.spec, tc.batch_size,
                                 padded_length(run.test)),
            "seconds": time.perf_counter() - t_start,
        }
        with (run.out / LOG_FILE).open("a") as f:
            f.write(json.dumps(record) + "\n")
        on_epoch(record, params)
        # Last, and whole or not at all: a run killed before this redoes the epoch (and the
        # resume cuts the log back to what this file says was done).
        partial = run.out / f"{TRAIN_STATE_FILE}.partial"
        partial.write_bytes(serialization.msgpack_serialize({
            "params": serialization.to_state_dict(params),
            "opt_state": serialization.to_state_dict(opt_state),
            "epoch": epoch + 1, "run": fingerprint}))
        os.replace(partial, run.out / TRAIN_STATE_FILE)
    return params


def _fingerprint(run: TrainRun) -> str:
    """Every setting that makes a run what it is, and a digest of its data: a resume must
    continue the same run. The epoch count is one of them, since the learning-rate schedule
    spans it (a run extended to more epochs would jump back up to a high rate)."""
    return json.dumps({
        "model": dataclasses.asdict(run.cfg), "train": dataclasses.asdict(run.tc),
        "input": run.spec.model_dump(), "scan": run.scan, "aug": dataclasses.asdict(run.aug),
        "mask": [run.mask_time, run.mask_channels],
        "data": [_digest(run.train), _digest(run.test)]}, sort_keys=True, default=str)


def _digest(data: BinnedSet) -> str:
    """Labels, length in bins and event count of every recording, hashed: another file (or the same
    one regenerated with another seed, or cut at another length) gives another digest."""
    h = hashlib.sha256(np.ascontiguousarray(data.labels, np.int64).tobytes())
    h.update(np.array([(len(b), len(e)) for b, e in zip(data.bins, data.events, strict=True)],
                      np.int64).tobytes())
    return h.hexdigest()


def saved_state(run: TrainRun) -> dict[str, Any] | None:
    """The run's saved state (``out/train_state.msgpack``), or None for a fresh run; raises
    ResumeError if it is another run's."""
    state_path = run.out / TRAIN_STATE_FILE
    if not state_path.exists():
        return None
    saved: dict[str, Any] = serialization.msgpack_restore(state_path.read_bytes())
    if saved.get("run") != _fingerprint(run):
        raise ResumeError(f"{state_path} is from a run with other settings (--epochs "
                          "included) or data; resume it with the same ones, or delete "
                          "the file (or pick another --out) to start afresh")
    return saved


def _resume(run: TrainRun, optimizer: optax.GradientTransformation,
            ) -> tuple[Params, optax.OptState, int]:
    """Parameters, optimiser state and epochs done: fresh, or from ``out/train_state.msgpack``;
    the log is cut to the epochs done."""
    params = init_params(jax.random.PRNGKey(run.tc.seed), run.cfg)
    opt_state = optimizer.init(params)
    start_epoch = 0
    saved = saved_state(run)
    if saved is not None:
        params = serialization.from_state_dict(params, saved["params"])
        opt_state = serialization.from_state_dict(opt_state, saved["opt_state"])
        start_epoch = int(saved["epoch"])
    # The log continues the run being resumed; a fresh run into an old checkpoint (its
    # train_state is not shipped) must not add its epochs to the old run's.
    kept = [r for r in read_log(run.out) if r["epoch"] <= start_epoch]
    (run.out / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in kept))
    return params, opt_state, start_epoch


def read_log(out: Path) -> list[dict[str, Any]]:
    path = out / LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
