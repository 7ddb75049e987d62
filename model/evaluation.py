"""Evaluation of a trained network: accuracy, per-class accuracy, confusion, spikes, SynOps,
and accuracy as a function of how much of each recording has been seen (streaming view)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from model.batching import BinnedSet, batches, load_binned, padded_length
from model.datasets import open_dataset
from model.errors import InputError
from model.network import Params, jit_offline, synaptic_ops
from model.selection import as_files
from model.spec import InputSpec, ModelConfig, ScanMethod
from model.ssm import default_scan

if TYPE_CHECKING:
    from pathlib import Path

    from model.checkpoint import Checkpoint, ModelCard
    from model.datasets import EventDataset

FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


def data_fits_model(ds: EventDataset, card: ModelCard) -> None:
    """InputError unless the file holds the model's sensor, sizes and classes, in its order
    (labels are indices: another order would be scored silently wrong)."""
    spec = card.input
    wanted: dict[str, object] = {"sensor": spec.sensor, "keys": card.labels}
    wanted |= ({"channels": spec.channels} if spec.sensor == "cochlea"
               else {"width": spec.width, "height": spec.height})
    for field, value in wanted.items():
        if getattr(ds, field) != value:
            raise InputError(f"{ds.path} has {field} {getattr(ds, field)!r}; model "
                             f"{card.name!r} takes {value!r}")


def load_as_trained(datasets: EventDataset | Sequence[EventDataset], card: ModelCard,
                    kept: Sequence[np.ndarray] | None = None,
                    progress: Callable[[int, int], object] | None = None) -> BinnedSet:
    """The recordings of one file, or of several read as one (per file the indices ``kept``,
    as ``select_files`` gives them; default all), as ``card``'s model was trained and scored
    on them: its binning, cut where training cut them (``training.max_bins``), after checking
    each file fits the model (``data_fits_model``)."""
    files = as_files(datasets)
    for ds in files:
        data_fits_model(ds, card)
    max_bins = card.training.max_bins if card.training else None
    return load_binned(files, card.input, kept, max_bins, progress)


def dense_macs_per_bin(cfg: ModelConfig) -> int:
    """Multiply-accumulates of one time bin run densely (every projection, every input)."""
    sizes = (cfg.n_in, *cfg.neurons, cfg.n_classes)
    return int(sum(a * b for a, b in itertools.pairwise(sizes)))


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Per-sample outputs of the offline path, in the data's order.

    predicted, labels int64 (N,); spikes int64 (N, L); input_events float32 (N,) (the sum of
    the input bins: spikes, or event counts); input_active int64 (N,) (their active entries:
    the input spikes of SynOps); bins int32 (N,); early: fraction of the bins seen -> the
    prediction at that point, int64 (N,).
    """

    predicted: np.ndarray
    labels: np.ndarray
    spikes: np.ndarray
    input_events: np.ndarray
    input_active: np.ndarray
    bins: np.ndarray
    early: dict[float, np.ndarray]

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels


def predict(params: Params, cfg: ModelConfig, spec: InputSpec, data: BinnedSet,
            batch_size: int = 64, scan: ScanMethod | None = None) -> Predictions:
    """Run the offline path over ``data`` once, keeping every sample's outputs; by default
    with the backend's faster scan, as ``s5rf train`` measures its test accuracy."""
    n_bins = padded_length(data)
    run = jit_offline(cfg, scan or default_scan())
    preds, true, spikes, inputs, active, bins_seen = [], [], [], [], [], []
    early: dict[float, list[np.ndarray]] = {f: [] for f in FRACTIONS}
    for x, lengths, y, w in batches(data, batch_size, n_bins, spec):
        _, out = run(params, x, lengths)
        keep = w > 0
        preds.append(np.argmax(out["log_probs"], -1)[keep])
        true.append(y[keep])
        spikes.append(np.rint(np.asarray(out["spike_counts"])[keep]).astype(np.int64))
        inputs.append(x.sum(axis=(1, 2))[keep])
        active.append((x > 0).sum(axis=(1, 2))[keep])
        bins_seen.append(lengths[keep])
        running = np.cumsum(np.asarray(out["readout"]), axis=1)  # (B, T, C)
        for f in FRACTIONS:
            k = np.maximum(np.ceil(f * lengths).astype(int), 1) - 1
            early[f].append(np.argmax(running[np.arange(len(k)), k], -1)[keep])
    return Predictions(predicted=np.concatenate(preds), labels=np.concatenate(true),
                       spikes=np.concatenate(spikes), input_events=np.concatenate(inputs),
                       input_active=np.concatenate(active),
                       bins=np.concatenate(bins_seen),
                       early={f: np.concatenate(e) for f, e in early.items()})


def predict_file(ckpt: Checkpoint, path: str | Path) -> np.ndarray:
    """The predicted label, int64 (N,), of every recording of the HDF5 file at ``path``,
    read as the checkpoint's training data were (``load_as_trained``)."""
    with open_dataset(path) as ds:
        data = load_as_trained(ds, ckpt.card)
    return predict(ckpt.params, ckpt.cfg, ckpt.card.input, data).predicted


def evaluate(params: Params, cfg: ModelConfig, spec: InputSpec, data: BinnedSet,
             labels: Sequence[str], batch_size: int = 64,
             scan: ScanMethod | None = None,
             groups: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Run the offline path over ``data`` and measure everything the model card reports.

    ``groups`` maps a metadata field to each sample's value of it, str (N,) (e.g. the
    engine that spoke it): the accuracy is then also reported per value, under
    ``accuracy_by[field][value]``.
    """
    p = predict(params, cfg, spec, data, batch_size, scan)
    C = cfg.n_classes
    confusion = np.zeros((C, C), np.int64)
    np.add.at(confusion, (p.labels, p.predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    return {
        "samples": len(p.labels),
        "accuracy": float(np.mean(p.correct)),
        "per_class_accuracy": {labels[c]: float(per_class[c]) for c in range(C)
                               if confusion[c].sum()},
        "confusion": confusion.tolist(),
        "accuracy_vs_fraction_seen": {str(f): float(np.mean(p.early[f] == p.labels))
                                      for f in FRACTIONS},
        "mean_bins_per_sample": float(p.bins.mean()),
        "mean_input_events_per_sample": float(p.input_events.mean()),
        "mean_spikes_per_sample_per_layer": p.spikes.mean(0).tolist(),
        "synops_per_sample": float(synaptic_ops(p.input_active, p.spikes, cfg).mean()),
        "dense_macs_per_sample": float(dense_macs_per_bin(cfg) * p.bins.mean()),
        "accuracy_by": {field: accuracy_by(values, p.correct)
                        for field, values in (groups or {}).items()},
    }


def accuracy_by(values: np.ndarray, correct: np.ndarray) -> dict[str, dict[str, float]]:
    """Samples and accuracy per distinct value of ``values`` (N,), given ``correct`` bool (N,)."""
    return {str(v): {"samples": int(np.sum(values == v)),
                     "accuracy": float(np.mean(correct[values == v]))}
            for v in np.unique(values)}
