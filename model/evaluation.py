"""Evaluation of a trained network: accuracy, per-class accuracy, confusion, spikes, SynOps,
and accuracy as a function of how much of each recording has been seen (streaming view)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from model.batching import BinnedSet, batches
from model.network import Params, synaptic_ops
from model.spec import InputSpec, ModelConfig, ScanMethod
from model.training import make_eval_step

FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


def dense_macs_per_bin(cfg: ModelConfig) -> int:
    """Multiply-accumulates of one time bin run densely (every projection, every input)."""
    sizes = (cfg.n_in, *cfg.neurons, cfg.n_classes)
    return int(sum(a * b for a, b in itertools.pairwise(sizes)))


def evaluate(params: Params, cfg: ModelConfig, spec: InputSpec, data: BinnedSet,
             labels: Sequence[str], batch_size: int = 64,
             scan: ScanMethod = "sequential") -> dict[str, Any]:
    """Run the offline path over ``data`` and measure everything the model card reports."""
    n_bins = max(len(b) for b in data.bins)
    run = make_eval_step(cfg, scan)
    preds, true, spikes, inputs, bins_seen = [], [], [], [], []
    early: dict[float, list[np.ndarray]] = {f: [] for f in FRACTIONS}
    for x, lengths, y, w in batches(data, batch_size, n_bins, spec):
        _, out = run(params, x, lengths)
        keep = w > 0
        preds.append(np.argmax(out["log_probs"], -1)[keep])
        true.append(y[keep])
        spikes.append(np.asarray(out["spike_counts"])[keep])
        inputs.append(x.sum(axis=(1, 2))[keep])
        bins_seen.append(lengths[keep])
        running = np.cumsum(np.asarray(out["readout"]), axis=1)  # (B, T, C)
        for f in FRACTIONS:
            k = np.maximum(np.ceil(f * lengths).astype(int), 1) - 1
            early[f].append(np.argmax(running[np.arange(len(k)), k], -1)[keep])
    pred, y_true = np.concatenate(preds), np.concatenate(true)
    spike_counts = np.concatenate(spikes)
    n_in = np.concatenate(inputs)
    C = cfg.n_classes
    confusion = np.zeros((C, C), np.int64)
    np.add.at(confusion, (y_true, pred), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    T = np.concatenate(bins_seen)
    return {
        "samples": len(y_true),
        "accuracy": float(np.mean(pred == y_true)),
        "per_class_accuracy": {labels[c]: float(per_class[c]) for c in range(C)
                               if confusion[c].sum()},
        "confusion": confusion.tolist(),
        "accuracy_vs_fraction_seen": {str(f): float(np.mean(np.concatenate(early[f]) == y_true))
                                      for f in FRACTIONS},
        "mean_bins_per_sample": float(T.mean()),
        "mean_input_events_per_sample": float(n_in.mean()),
        "mean_spikes_per_sample_per_layer": spike_counts.mean(0).tolist(),
        "synops_per_sample": float(synaptic_ops(n_in, spike_counts, cfg).mean()),
        "dense_macs_per_sample": float(dense_macs_per_bin(cfg) * T.mean()),
    }
