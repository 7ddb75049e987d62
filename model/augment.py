"""Training-time augmentation, on events and on binned batches (numpy, seeded Generators).

Event-level (before binning; tonic offers similar transforms, written here to work on our
dtype without torch): time jitter, dropped events, channel shift for a cochlea, spatial shift
for a DVS. Bin-level: the paper's random channel shift, time and channel masking, and CutMix
for sequences (Huber et al. 2025, after Yun et al. 2019).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from model.spec import InputSpec


@dataclasses.dataclass(frozen=True)
class EventAugment:
    """Per-sample event augmentation settings (zero disables each one)."""

    jitter_us: float = 0.0  # std of Gaussian time jitter
    drop: float = 0.0  # probability of dropping each event
    max_shift: int = 0  # channels (cochlea) or pixels (dvs)

    @property
    def enabled(self) -> bool:
        return bool(self.jitter_us or self.drop or self.max_shift)


def augment_events(events: np.ndarray, spec: InputSpec, aug: EventAugment,
                   rng: np.random.Generator) -> np.ndarray:
    """A jittered, thinned and shifted copy of a sorted event array (still sorted, in range)."""
    ev = events[rng.random(len(events)) >= aug.drop] if aug.drop else events.copy()
    if aug.jitter_us:
        t = ev["t"] + np.rint(rng.normal(0.0, aug.jitter_us, len(ev))).astype(np.int64)
        ev["t"] = np.maximum(t, 0)
        ev = ev[np.argsort(ev["t"], kind="stable")]
    if aug.max_shift:
        if spec.sensor == "cochlea":
            assert spec.channels is not None
            ch = ev["channel"].astype(np.int64) + rng.integers(-aug.max_shift, aug.max_shift + 1)
            ev = ev[(ch >= 0) & (ch < spec.channels)]
            ev["channel"] = ch[(ch >= 0) & (ch < spec.channels)]
        else:
            assert spec.width is not None and spec.height is not None
            dx, dy = rng.integers(-aug.max_shift, aug.max_shift + 1, size=2)
            x, y = ev["x"].astype(np.int64) + dx, ev["y"].astype(np.int64) + dy
            keep = (x >= 0) & (x < spec.width) & (y >= 0) & (y < spec.height)
            ev = ev[keep]
            ev["x"], ev["y"] = x[keep], y[keep]
    return ev


def random_shift(bins: np.ndarray, rng: np.random.Generator, spec: InputSpec) -> np.ndarray:
    """The reference code's shift: roll the input by one feature up (p=0.2) or down (p=0.2).
    (B, T, F).

    A cochlea's channels roll as they are. A DVS's features are its pooled (polarity, y, x)
    grid flattened, where a flat roll would wrap each row's last pixel into the next row and
    across polarities: its pixels move one column along x instead (wrapping within the row).
    """
    u = rng.random()
    step = 1 if u < 0.2 else -1 if u > 0.8 else 0
    if not step:
        return bins
    if spec.sensor == "cochlea":
        return np.roll(bins, step, axis=-1)
    assert spec.width is not None and spec.height is not None
    B, T, F = bins.shape
    grid = bins.reshape(B, T, 2, spec.height // spec.pool, spec.width // spec.pool)
    return np.roll(grid, step, axis=-1).reshape(B, T, F)


def mask_time_channels(bins: np.ndarray, lengths: np.ndarray, rng: np.random.Generator,
                       max_time: int, max_channels: int) -> np.ndarray:
    """Zero one random time span (<= max_time bins, within the sample's own length: a span
    in the padding would mask nothing) and one feature span per sample. bins (B, T, F),
    lengths (B,)."""
    out = bins.copy()
    B, _, F = out.shape
    for i in range(B):
        if max_time:
            w = int(rng.integers(0, max_time + 1))
            s = int(rng.integers(0, max(int(lengths[i]) - w, 0) + 1))
            out[i, s : s + w] = 0
        if max_channels:
            w = int(rng.integers(0, max_channels + 1))
            s = int(rng.integers(0, max(F - w, 0) + 1))
            out[i, :, s : s + w] = 0
    return out


def shift_and_mask(bins: np.ndarray, lengths: np.ndarray, rng: np.random.Generator,
                   spec: InputSpec, shift: bool, max_time: int, max_channels: int) -> np.ndarray:
    """A training batch's bin-level augmentations before CutMix: ``random_shift`` (if
    ``shift``), then ``mask_time_channels`` (if either span is nonzero), in that order, which
    fixes what ``rng`` draws. bins (B, T, F), lengths (B,)."""
    if shift:
        bins = random_shift(bins, rng, spec)
    if max_time or max_channels:
        bins = mask_time_channels(bins, lengths, rng, max_time, max_channels)
    return bins


def cutmix(bins: np.ndarray, lengths: np.ndarray, targets: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """CutMix for sequences: paste a time window from a shuffled partner; targets are mixed
    by the share of input spikes each sample contributes within its own length (what the
    network sees: bins past it are padding). bins (B, T, F), lengths (B,), targets (B, C)."""
    B, T, _ = bins.shape
    lam = rng.uniform()
    partner = rng.permutation(B)
    # Drawn over the batch's longest recording, not the padded length (set by the longest of
    # the whole set), where windows past every sample's end would mix nothing.
    span = int(max(lengths.max(), 1))
    anchor, width = int(rng.integers(0, span)), int(span * (1.0 - lam))
    # The window is centred on anchor / 2, not anchor, so it rarely reaches a recording's
    # end: the reference's cut_mix places it so, and its SSC figure was trained with it.
    lo, hi = np.clip((anchor - width) // 2, 0, T), np.clip((anchor + width) // 2, 0, T)
    seen = (np.arange(T)[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    pasted = (bins[partner, lo:hi] * seen[:, lo:hi]).sum(axis=(1, 2))
    kept = (bins * seen).sum(axis=(1, 2)) - (bins[:, lo:hi] * seen[:, lo:hi]).sum(axis=(1, 2))
    total = pasted + kept
    # A row the mix would leave without spikes (a padding row, a silent stretch) carries no
    # label information: it stays as it was, and the others are mixed.
    mix = total > 0
    mixed = bins.copy()
    mixed[mix, lo:hi] = bins[partner[mix], lo:hi]
    w = np.where(mix, kept / np.where(mix, total, 1), 1.0)[:, None]
    return mixed, w * targets + (1.0 - w) * targets[partner]
