"""Datasets in memory as binned recordings, and padded batches for training and evaluation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from model.augment import EventAugment, augment_events
from model.binning import bin_recording
from model.datasets import EventDataset
from model.events import EventError
from model.selection import as_files
from model.spec import InputSpec


@dataclasses.dataclass
class BinnedSet:
    """Recordings of one dataset: events (for event augmentation) and labels.

    ``bins[i]`` is uint8 (T_i, F), binned with the checkpoint's input spec from t0 = 0.
    """

    events: list[np.ndarray]
    bins: list[np.ndarray]
    labels: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)


# Every recording of a batch is padded to the longest: one of a recording's times in the wrong
# unit would take tens of GB. As long as a server's /infer takes by default (80 s at 4 ms).
MAX_RECORDING_BINS = 20_000


def load_binned(datasets: EventDataset | Sequence[EventDataset], spec: InputSpec,
                kept: Sequence[np.ndarray] | None = None, max_bins: int | None = None,
                progress: Callable[[int, int], object] | None = None) -> BinnedSet:
    """Read the samples of one file, or of several read as one (in order), and bin them:
    ``kept`` holds, per file, the indices to read (``select_files``' answer; default every
    sample). Recordings longer than ``max_bins`` bins are cut (the paper's fixed-length inputs
    are about 1 s); without ``max_bins``, one over ``MAX_RECORDING_BINS`` is refused.
    ``progress(done, total)`` is called after each recording."""
    files = as_files(datasets)
    if kept is None:
        kept = [np.arange(len(ds)) for ds in files]
    total = sum(len(idx) for idx in kept)
    events, bins = [], []
    for ds, idx in zip(files, kept, strict=True):
        for i in idx:
            ev, _ = ds[int(i)]
            if max_bins is not None:
                ev = ev[ev["t"] < max_bins * spec.dt_us]
            elif len(ev) and (n := int(ev["t"][-1]) // spec.dt_us + 1) > MAX_RECORDING_BINS:
                raise EventError(f"{ds.path} sample {int(i)} spans {n:,} bins of {spec.dt_us} "
                                 f"µs, over {MAX_RECORDING_BINS:,}: check its times' unit "
                                 "(docs/datasets.md), or train on cut recordings (--max-ms), "
                                 "which evaluation then cuts alike")
            events.append(ev)
            try:
                binned = bin_recording(ev, spec)
            except EventError as exc:  # "at index 3" is within the recording: say which
                raise EventError(f"{ds.path} sample {int(i)}: {exc}") from exc
            bins.append(binned.astype(np.uint8))  # counts stop at MAX_COUNT
            if progress is not None:
                progress(len(bins), total)
    labels = np.concatenate([ds.labels[idx] for ds, idx in zip(files, kept, strict=True)])
    return BinnedSet(events=events, bins=bins, labels=labels)


def padded_length(data: BinnedSet) -> int:
    """The padded length of ``data``'s batches: its longest recording. Each set pads to its
    own, so the test set cannot change training (where masks and CutMix windows land). At
    least one bin, of padding when no recording has any: a scan over none has no last state."""
    return max(1, *(len(b) for b in data.bins))


def batches(data: BinnedSet, batch_size: int, n_bins: int, spec: InputSpec,
            rng: np.random.Generator | None = None, aug: EventAugment | None = None,
            ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Fixed-shape batches: bins float32 (B, n_bins, F), lengths int32 (B,), labels int64 (B,),
    weights float32 (B,) (0 for padding rows of the last batch). B is ``batch_size``, or the
    number of recordings where they are fewer (more rows would only be padding, and a batch
    size meant for another dataset could ask for more memory than there is). Shuffled when
    ``rng`` is given; event augmentation (re-binning) when ``aug`` is enabled."""
    order = rng.permutation(len(data)) if rng is not None else np.arange(len(data))
    F, B = spec.features, max(1, min(batch_size, len(data)))
    for lo in range(0, len(order), B):
        sel = order[lo : lo + B]
        x = np.zeros((B, n_bins, F), np.float32)
        lengths = np.zeros(B, np.int32)
        labels = np.zeros(B, np.int64)
        weights = np.zeros(B, np.float32)
        for row, i in enumerate(sel):
            if aug is not None and aug.enabled and rng is not None:
                b = bin_recording(augment_events(data.events[i], spec, aug, rng), spec)
            else:
                b = data.bins[i]
            T = min(len(b), n_bins)
            x[row, :T] = b[:T]
            lengths[row] = max(T, 1)  # an empty recording still has one (empty) bin
            labels[row] = data.labels[i]
            weights[row] = 1.0
        yield x, lengths, labels, weights
