"""A non-spiking reference on the same data: a GRU network trained on exactly the input bins
and augmentation ``s5rf train`` gives S5-RF, scored on the same test file.

It tells whether a gap (held-out voices, a left-out engine) is the spiking network's or the
data's: where a conventional recurrent network of the same width, trained the same way, does no
better, more S5-RF capacity or training will not close it. The network is a linear input
projection, ``--layers`` GRU layers of ``--hidden`` units with dropout, and S5-RF's readout
(log-softmax of the mean over the recording's bins of a linear map of the last layer); AdamW
with the SHD preset's batch size, learning rate, weight decay and cosine schedule.

    python scripts/gru_baseline.py --data data/speech/train.h5 --test data/speech/test.h5 \\
        --epochs 8 --jitter-us 1000 --shift 5 --drop 0.1 --mask-time 20 --mask-channels 10 \\
        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cli.flags import count, natural
from cli.train import add_augment_flags, add_input_flags, input_spec
from model.augment import EventAugment, shift_and_mask
from model.batching import BinnedSet, batches, load_binned, padded_length
from model.datasets import open_dataset
from model.evaluation import accuracy_by
from model.spec import PRESETS, InputSpec


class GRUNet(nn.Module):
    """bins (B, T, F), lengths (B,) -> log-probabilities (B, C) from the valid bins only."""

    hidden: int
    layers: int
    n_classes: int
    dropout: float

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array, train: bool) -> jax.Array:
        h = nn.Dense(self.hidden)(x)
        for _ in range(self.layers):
            h = nn.RNN(nn.GRUCell(self.hidden))(h, seq_lengths=lengths)
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        valid = (jnp.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
        mean = (nn.Dense(self.n_classes)(h) * valid).sum(1) / jnp.maximum(lengths, 1)[:, None]
        return jax.nn.log_softmax(mean, axis=-1)


def log_probs(net: GRUNet, params: Any, x: jax.Array, lengths: jax.Array,
              dropout_key: jax.Array | None = None) -> jax.Array:
    """The network's output (B, C); dropout on (training) when a key is given."""
    rngs = {"dropout": dropout_key} if dropout_key is not None else {}
    return cast(jax.Array, net.apply(params, x, lengths, dropout_key is not None, rngs=rngs))


# One batch: inputs float32 (B, T, F), lengths int32 (B,), labels int64 (B,), weights float32
# (B,) (0 for padding rows).
Batch = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def train_gru(net: GRUNet, features: int, n_train: int,
              train_batches: Callable[[np.random.Generator], Iterable[Batch]],
              test_batches: Callable[[], Iterable[Batch]], epochs: int, run_seed: int,
              on_epoch: Callable[[dict[str, Any]], None],
              ) -> tuple[Any, list[dict[str, Any]], np.ndarray]:
    """Train ``net`` with the SHD preset's optimiser settings on ``train_batches(rng)`` (an
    epoch's shuffled, augmented batches of ``n_train`` recordings), scoring
    ``test_batches()`` after each epoch; returns (params, epoch log, the last epoch's test
    predictions int64 (N,))."""
    tc = PRESETS["shd"].train
    key = jax.random.PRNGKey(run_seed)
    params = net.init(key, jnp.zeros((1, 2, features)), jnp.array([2]), False)
    steps_per_epoch = -(-n_train // tc.batch_size)
    optimizer = optax.adamw(optax.cosine_decay_schedule(tc.lr, max(epochs * steps_per_epoch, 1),
                                                        alpha=1e-6),
                            weight_decay=tc.weight_decay)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params: Any, opt_state: Any, x: jax.Array, lengths: jax.Array, labels: jax.Array,
             weights: jax.Array, key: jax.Array) -> tuple[Any, Any, jax.Array]:
        def loss(p: Any) -> jax.Array:
            logp = log_probs(net, p, x, lengths, key)
            nll = -jnp.take_along_axis(logp, labels[:, None], 1)[:, 0]
            return (nll * weights).sum() / jnp.maximum(weights.sum(), 1.0)

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    test_labels = np.concatenate([y[w > 0] for _, _, y, w in test_batches()])
    log = []
    for epoch in range(epochs):
        rng = np.random.default_rng([run_seed, epoch])
        start, losses = time.perf_counter(), []
        for i, (x, lengths, y, weights) in enumerate(train_batches(rng)):
            params, opt_state, value = step(params, opt_state, x, lengths, y, weights,
                                            jax.random.fold_in(key, epoch * steps_per_epoch + i))
            losses.append(float(value))
        predicted = predict(net, params, test_batches())
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                  "test_acc": float(np.mean(predicted == test_labels)),
                  "seconds": time.perf_counter() - start}
        log.append(record)
        on_epoch(record)
    return params, log, predicted


@functools.partial(jax.jit, static_argnums=0)  # compiled once per network, not per call
def _classify(net: GRUNet, params: Any, x: jax.Array, lengths: jax.Array) -> jax.Array:
    return log_probs(net, params, x, lengths).argmax(-1)


def predict(net: GRUNet, params: Any, batches: Iterable[Batch]) -> np.ndarray:
    """Predicted class per recording, int64 (N,), in the batches' order."""
    out = [np.asarray(_classify(net, params, x, lengths))[weights > 0]
           for x, lengths, _, weights in batches]
    return np.concatenate(out).astype(np.int64)


def binned_batches(data: BinnedSet, spec: InputSpec, batch_size: int = 64) -> Iterator[Batch]:
    """``data``'s batches in order, unaugmented."""
    return batches(data, batch_size, padded_length(data), spec)


def report(network: str, params: Any, log: list[dict[str, Any]], n_train: int,
           labels: np.ndarray, predicted: np.ndarray, train_accuracy: float,
           engines: np.ndarray | None, command: str, out: Path | None) -> dict[str, Any]:
    """A run's result (test accuracy, per engine where ``engines`` names each test recording's,
    parameters, time, every epoch), printed without the epochs and written to ``out``."""
    result: dict[str, Any] = {
        "network": network,
        "parameters": int(sum(a.size for a in jax.tree_util.tree_leaves(params))),
        "train_recordings": n_train, "test_recordings": len(labels),
        "test_accuracy": float(np.mean(predicted == labels)),
        "train_accuracy": train_accuracy,
        "train_seconds": sum(r["seconds"] for r in log),
        "per_engine": accuracy_by(engines, predicted == labels) if engines is not None else {},
        "log": log, "command": command,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "log"}, indent=2))
    if out:
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="training HDF5")
    ap.add_argument("--test", type=Path, required=True, help="test HDF5, same layout")
    ap.add_argument("--epochs", type=count, default=8)
    ap.add_argument("--hidden", type=count, default=256, help="GRU units per layer")
    ap.add_argument("--layers", type=count, default=2)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=natural, default=PRESETS["shd"].train.seed)
    ap.add_argument("--json", type=Path, help="also write the results here")
    add_input_flags(ap)
    add_augment_flags(ap)
    args = ap.parse_args(argv)
    with open_dataset(args.data) as train_ds, open_dataset(args.test) as test_ds:
        spec = input_spec(args, train_ds)
        train, test = load_binned(train_ds, spec), load_binned(test_ds, spec)
        engines = (test_ds.extra("engine").astype(str) if "engine" in test_ds.extra_fields()
                   else None)
        n_classes = len(train_ds.keys)
    net = GRUNet(args.hidden, args.layers, n_classes, args.dropout)
    aug = EventAugment(jitter_us=args.jitter_us, drop=args.drop, max_shift=args.shift)
    batch_size, random_shift = PRESETS["shd"].train.batch_size, PRESETS["shd"].train.random_shift

    def train_batches(rng: np.random.Generator) -> Iterator[Batch]:  # as s5rf train makes them
        for x, lengths, labels, weights in batches(train, batch_size, padded_length(train),
                                                   spec, rng, aug):
            yield (shift_and_mask(x, lengths, rng, spec, random_shift, args.mask_time,
                                  args.mask_channels), lengths, labels, weights)

    params, log, predicted = train_gru(
        net, spec.features, len(train), train_batches, lambda: binned_batches(test, spec),
        args.epochs, args.seed, lambda r: print(json.dumps(r), file=sys.stderr, flush=True))
    # without augmentation, unlike the running figure `s5rf train` logs
    train_accuracy = float(np.mean(predict(net, params, binned_batches(train, spec))
                                   == train.labels))
    command = " ".join(["python scripts/gru_baseline.py",
                        *(sys.argv[1:] if argv is None else argv)])
    return report(f"GRU {args.layers}x{args.hidden}", params, log, len(train), test.labels,
                  predicted, train_accuracy, engines, command, args.json)


if __name__ == "__main__":
    main()
