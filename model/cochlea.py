"""Audio -> 700-channel spike trains: the Heidelberg cochlea chain that made SHD.

The chain of Cramer et al. (2020), as published in the ``lauscher`` package, rewritten to be
fast: Sieroka basilar membrane (a fixed complex transfer matrix, computed once per length and
cached, applied with real inverse FFTs) -> Meddis inner hair cell (a per-channel recursion,
numba-compiled) -> a bushy cell per channel fed by 40 converging fibres with dead time (numba,
seeded numpy Generator).

Conventions kept from lauscher on purpose, so our spikes match SHD's:
- The waveform is RMS-normalised to 0.3 and Hann-ramped (the ramp spans the whole word), then
  zero-padded; everything after the basilar membrane runs at *half* the input rate.
- The basilar membrane multiplies the first ``n // 2 + 1`` points of the input's FFT (a
  one-sided spectrum) and inverse-transforms that short spectrum as if it were two-sided.
- Channel 0 is the base of the membrane: the highest frequency.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numba
import numpy as np
import soundfile
from scipy import fft, special
from scipy.signal import resample_poly

from model.errors import InputError
from model.events import COCHLEA_DTYPE

SAMPLE_RATE = 48_000
FIBRE_RATE = SAMPLE_RATE // 2  # everything after the basilar membrane runs at half the rate
CHANNELS = 700
# 47,998 samples -> a 24,000-point (2^6 * 3 * 5^3) half spectrum: 3.5x faster than 48,000.
CLIP_SAMPLES = 47_998
LENGTH_STEP = 12_000  # a quarter second: the padding step of bucketed_length
# The longest clip bucketed_length takes (a word and the silence after it): the chain's time
# and memory grow with the clip (its transfer matrix is channels x half the clip's samples),
# and a spoken word lasts about 1 s.
MAX_CLIP_S = 5
MIN_RATE = 8_000  # below it no speech band survives (FSDD's 8 kHz is the lowest we read)
RMS_LEVEL = 0.3
_CHUNK = 64  # channels per transfer-matrix block: keeps complex temporaries cache-sized
_FOLD_CHUNK = 8  # channels per inverse-FFT block (fastest here: 8 to 16)


@dataclasses.dataclass(frozen=True)
class Sieroka:
    """Hydrodynamic basilar-membrane parameters (Sieroka et al. 2006; lauscher's defaults)."""

    a: float = 3500.0
    alpha: float = 3.0
    rho: float = 1.0
    c: float = 3.5  # membrane length: channels sit at linspace(0, c, channels)
    c0: float = 10e8
    de: float = 0.15
    h: float = 0.1
    m: float = 0.05


@dataclasses.dataclass(frozen=True)
class Meddis:
    """Inner-hair-cell transmitter-pool parameters (Meddis 1986/1988; lauscher's defaults)."""

    y: float = 5.05
    g: float = 2000.0
    l: float = 2500.0
    r: float = 6580.0
    x: float = 66.3
    a: float = 5.0
    b: float = 300.0
    h: float = 50000.0
    m: float = 1.0


@dataclasses.dataclass(frozen=True)
class Bushy:
    """Bushy-cell LIF fed by ``n_convergence`` fibres (lauscher's defaults; SI units)."""

    n_convergence: int = 40
    tau_mem: float = 1e-3
    tau_syn: float = 5e-4
    tau_refrac: float = 1e-3
    weight: float = 13e3  # total over the converging fibres


def padded_length(n: int) -> int:
    """Smallest even length >= max(n, 2) whose half spectrum ``L // 2 + 1`` is 5-smooth."""
    m = max(n // 2 + 1 + n % 2, 2)
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return 2 * (m - 1)
        m += 1


def clip_length(n: int) -> int:
    """``CLIP_SAMPLES``, or for a longer word (``n`` samples at 48 kHz) the next fast length
    (``padded_length``)."""
    return max(CLIP_SAMPLES, padded_length(n))


def bucketed_length(n: int) -> int:
    """``CLIP_SAMPLES``, or for a longer word (``n`` samples at 48 kHz) the fast length at or
    after ``CLIP_SAMPLES`` plus the whole quarter seconds the word needs beyond it: words of
    many lengths then share a few transfer matrices (each takes ~10 s to compute at 700
    channels, ten times a word's encoding). InputError beyond ``MAX_CLIP_S``."""
    if n > MAX_CLIP_S * SAMPLE_RATE:
        raise InputError(f"it lasts {n / SAMPLE_RATE:.2f} s with the silence after it, over the "
                         f"{MAX_CLIP_S} s the cochlea encodes at once (a spoken word lasts about "
                         "1 s); cut the recording into words")
    steps = max(-(-(n - CLIP_SAMPLES) // LENGTH_STEP), 0)
    return padded_length(CLIP_SAMPLES + steps * LENGTH_STEP)


def prepare_waveform(
    waveform: np.ndarray, sample_rate: int,
    n_samples: int | Callable[[int], int] = clip_length,
) -> np.ndarray:
    """Resample to 48 kHz, RMS-normalise to 0.3, Hann-ramp the word, then zero-pad.

    waveform: float (T,) mono audio at ``sample_rate`` Hz.
    n_samples: output length, or a function of the word's length at 48 kHz giving it
        (``clip_length``, ``bucketed_length``).
    Returns float64 (n_samples,) at ``SAMPLE_RATE``.
    """
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"expected a non-empty mono waveform (T,), got shape {x.shape}")
    if sample_rate != SAMPLE_RATE:
        g = np.gcd(SAMPLE_RATE, sample_rate)
        x = resample_poly(x, SAMPLE_RATE // g, sample_rate // g)
    rms = np.sqrt(np.mean(x**2))
    if rms == 0:
        raise InputError("the waveform is silent (RMS 0); there is nothing to encode")
    x = x * (RMS_LEVEL / rms)
    half = x.size // 2
    ramp = np.hanning(2 * half)[:half]
    x[:half] *= ramp
    x[x.size - half :] *= ramp[::-1]
    if callable(n_samples):
        n_samples = n_samples(x.size)
    if x.size > n_samples:
        raise InputError(
            f"the word lasts {x.size} samples at 48 kHz, more than n_samples={n_samples}; "
            "pass a larger n_samples (padded_length gives a fast one)"
        )
    return np.pad(x, (0, n_samples - x.size))


def _sieroka_transfer(omega: np.ndarray, c: np.ndarray, p: Sieroka) -> np.ndarray:
    """Membrane velocity per unit input: V = 2 omega P(omega, c) Z(omega) / (xi P(omega, 0)).

    omega: float64 (F,) angular frequencies; c: float64 (C, 1) positions.
    Returns complex128 (C, F).
    """
    r = p.de * np.sqrt(p.c0 * p.m)

    def xi(c: np.ndarray | float) -> np.ndarray:
        return (
            p.c0 * np.exp(-p.alpha * c)
            - p.a
            - p.m * omega**2
            - 1j * omega * (r * np.exp(-p.alpha * c / 2.0))
        )

    def g(c: np.ndarray | float) -> np.ndarray:
        return omega * np.sqrt(p.rho / (p.h * xi(c)))

    def pressure(c: np.ndarray | float) -> np.ndarray:
        # WKB solution of the shallow-water membrane equation; G is its phase integral.
        root_a = np.sqrt(p.a + p.m * omega**2)
        e_c = np.exp(-p.alpha * c)
        e_half = np.exp(-p.alpha * c / 2.0)
        num = -p.alpha * np.sqrt(-p.a + p.c0 - omega * (p.m * omega + 1j * r)) + 1j * p.alpha * (
            2.0 * p.a + omega * (2.0 * p.m * omega + 1j * r)
        ) / (2.0 * root_a)
        den = (
            0.5
            * p.alpha
            * np.exp(p.alpha * c / 2.0)
            * (
                -2.0 * np.sqrt(-p.a + p.c0 * e_c - p.m * omega**2 - 1j * e_half * omega * r)
                + 1j * (2.0 * p.a + omega * (2.0 * p.m * omega + 1j * e_half * r)) / root_a
            )
        )
        G = 2.0 * g(0.0) / p.alpha - 1 / (
            p.alpha * (np.sqrt(p.h * 2.0 * (p.m * omega**2 + p.a)))
        ) * (2.0 * 1j * np.sqrt(2.0) * omega * np.log(num / den))
        return np.sqrt(G / g(c)) * special.hankel1(0, G)

    # Input impedance of the oval window.
    arg = 4.0 * np.pi * (omega / (2.0 * np.pi)) / p.alpha * np.sqrt(2.0 / (p.h * p.c0))
    z = (
        np.sqrt(2.0 * p.c0 / p.h)
        * (1j * special.j0(arg) + special.y0(arg))
        / (special.j1(arg) - 1j * special.y1(arg))
    )
    return 2.0 * omega / xi(c) * pressure(c) * z / pressure(0.0)


def transfer_matrix(
    n_samples: int, sample_rate: int = SAMPLE_RATE, channels: int = CHANNELS
) -> np.ndarray:
    """Basilar-membrane transfer matrix for ``n_samples``-long inputs.

    Returns complex128 (channels, n_samples // 2 + 1); row 0 is the base (highest frequency).
    Frequencies run linearly from 1 Hz to ``sample_rate // 2`` as in lauscher.
    """
    n_freq = n_samples // 2 + 1
    omega = 2 * np.pi * np.linspace(1, sample_rate // 2, n_freq)
    c = np.linspace(0, Sieroka.c, channels)[:, None]
    out = np.empty((channels, n_freq), dtype=np.complex128)
    for i in range(0, channels, _CHUNK):
        out[i : i + _CHUNK] = _sieroka_transfer(omega, c[i : i + _CHUNK], Sieroka())
    return out


@functools.lru_cache(maxsize=4)  # ~270 MB each at 1 s and 700 channels
def membrane_filters(
    n_samples: int, sample_rate: int = SAMPLE_RATE, channels: int = CHANNELS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The transfer matrix folded for a real inverse FFT, cached per input length.

    lauscher keeps ``Re(ifft(V * X))`` of the M = n_samples // 2 + 1 point product. That real
    part is the inverse real FFT of the product's Hermitian part, whose first M // 2 + 1 points
    are ``(V[k] X[k] + conj(V[-k] X[-k])) / 2``: half the transform and no imaginary output.
    Returns ``(pos, neg, mirror)``: complex128 (channels, M // 2 + 1) ``V[k] / 2`` and
    ``conj(V[-k]) / 2``, read-only, and int (M // 2 + 1,) the indices ``-k mod M``.
    """
    v = transfer_matrix(n_samples, sample_rate, channels)
    m = v.shape[1]
    mirror = -np.arange(m // 2 + 1) % m
    pos, neg = v[:, : m // 2 + 1] / 2, np.conj(v[:, mirror]) / 2
    for a in (pos, neg, mirror):
        a.flags.writeable = False
    return pos, neg, mirror


def basilar_membrane(
    signal: np.ndarray, sample_rate: int = SAMPLE_RATE, channels: int = CHANNELS
) -> np.ndarray:
    """Membrane velocity of each channel.

    signal: float64 (N,) prepared waveform. Returns float64 (channels, N // 2 + 1) sampled at
    ``sample_rate // 2``.
    """
    pos, neg, mirror = membrane_filters(signal.size, sample_rate, channels)
    spectrum = fft.rfft(signal)  # == fft(signal)[: N // 2 + 1] for real input
    m = spectrum.size
    here, there = spectrum[: pos.shape[1]], np.conj(spectrum[mirror])
    out = np.empty((channels, m), dtype=np.float64)
    for i in range(0, channels, _FOLD_CHUNK):
        block = slice(i, i + _FOLD_CHUNK)
        out[block] = fft.irfft(pos[block] * here + neg[block] * there, n=m, axis=-1)
    return out


@numba.njit(cache=True)
def _meddis(bm: np.ndarray, fs: float, y: float, g: float, l: float, r: float, x: float,
            a: float, b: float, h: float, m: float) -> np.ndarray:  # fmt: skip
    out = np.empty_like(bm)
    ymdt, xdt, ydt, rdt = y * m / fs, x / fs, y / fs, r / fs
    gdt, hdt, lplusrdt = g / fs, h / fs, (l + r) / fs
    kt0 = g * a / (a + b)
    c0 = m * y * kt0 / (l * kt0 + y * (l + r))  # resting state of the three pools
    q0 = c0 * (l + r) / kt0
    w0 = c0 * r / x
    for ch in range(bm.shape[0]):
        c, q, w = c0, q0, w0
        for j in range(bm.shape[1]):
            s = bm[ch, j] + a
            kt = gdt * s / (s + b) if s > 0 else 0.0
            replenish = ymdt - ydt * q if q < m else 0.0
            eject = kt * q
            reuptakeandloss = lplusrdt * c
            reuptake = rdt * c
            reprocess = xdt * w
            q = max(q + replenish - eject + reprocess, 0.0)
            c = max(c + eject - reuptakeandloss, 0.0)
            w = max(w + reuptake - reprocess, 0.0)
            out[ch, j] = c * hdt
    return out


def hair_cell(bm: np.ndarray, sample_rate: int, p: Meddis = Meddis()) -> np.ndarray:
    """Firing probability per sample of each channel's auditory-nerve fibres.

    bm: float64 (C, T) membrane velocity at ``sample_rate``. Returns float64 (C, T).
    """
    return _meddis(np.ascontiguousarray(bm, dtype=np.float64), float(sample_rate),
                   p.y, p.g, p.l, p.r, p.x, p.a, p.b, p.h, p.m)  # fmt: skip


@numba.njit(cache=True)
def _bushy(prob: np.ndarray, rng: np.random.Generator, n_fibres: int, refrac: float,
           decay_mem: float, decay_syn: float, gain: float) -> np.ndarray:  # fmt: skip
    n_ch, n_t = prob.shape
    spikes = np.zeros((n_ch, n_t), dtype=np.bool_)
    counts = np.zeros(n_t, dtype=np.float64)
    for ch in range(n_ch):
        p_max = min(prob[ch].max(), 1.0)
        counts[:] = 0.0
        if p_max > 0.0:
            log_q = np.log1p(-p_max) if p_max < 1.0 else -np.inf
            for _ in range(n_fibres):
                # Thinning: skip geometric gaps at rate p_max, keep a candidate with p/p_max.
                # Candidates inside the dead time are never drawn, like lauscher's correction.
                t = 0.0
                while True:
                    t += np.floor(np.log(1.0 - rng.random()) / log_q)
                    if t >= n_t:
                        break
                    j = int(t)
                    if rng.random() * p_max < prob[ch, j]:
                        counts[j] += 1.0
                        t = j + np.ceil(refrac)
                    else:
                        t += 1.0
        # The LIF exactly as lauscher steps it: threshold 1, clamp, spike logged one step late.
        vm_prev, isyn, refrac_left = 0.0, 0.0, 0.0
        for step in range(n_t):
            vm = 0.0
            if step > 0:
                if refrac_left <= 0:
                    if vm_prev < 1.0:
                        vm = vm_prev * decay_mem
                    else:
                        refrac_left = refrac
                        spikes[ch, step - 1] = True
                isyn *= decay_syn
            isyn += counts[step]
            if refrac_left <= 0:
                vm += isyn * gain
            vm = min(vm, 1.0)
            refrac_left -= 1
            vm_prev = vm
    return spikes


def bushy_cells(
    prob: np.ndarray, sample_rate: int, rng: np.random.Generator, p: Bushy = Bushy()
) -> np.ndarray:
    """Spike raster of one bushy cell per channel.

    prob: float64 (C, T) fibre firing probability per sample at ``sample_rate``.
    Returns bool (C, T). Stochastic: each fibre is Bernoulli(prob) with a dead time.
    """
    dt = 1.0 / sample_rate
    return _bushy(np.ascontiguousarray(prob, dtype=np.float64), rng, p.n_convergence,
                  p.tau_refrac * sample_rate, np.exp(-dt / p.tau_mem), np.exp(-dt / p.tau_syn),
                  p.weight / p.n_convergence * dt)  # fmt: skip


def raster_to_events(raster: np.ndarray, sample_rate: int) -> np.ndarray:
    """bool (C, T) raster -> COCHLEA_DTYPE events sorted by t (then channel), t in µs."""
    t_idx, ch = np.nonzero(raster.T)
    ev = np.empty(t_idx.size, dtype=COCHLEA_DTYPE)
    ev["t"] = np.rint(t_idx * (1e6 / sample_rate)).astype(np.int64)
    ev["channel"] = ch
    return ev


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """An audio file (any format libsndfile reads) mixed down to mono: float64 (T,) and its
    sample rate. InputError for a missing file or one libsndfile cannot read."""
    if not Path(path).is_file():
        raise InputError(f"{path} is not a file")
    try:
        audio, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except soundfile.SoundFileError as exc:
        raise InputError(f"{path}: not audio libsndfile reads ({exc})") from exc
    if not len(audio):
        raise InputError(f"{path} holds no samples")
    if rate < MIN_RATE:
        raise InputError(f"{path} is sampled at {rate} Hz: too slow to carry speech (the "
                         f"cochlea takes {MIN_RATE} Hz or more)")
    return audio.mean(axis=1), int(rate)


def audio_to_events(
    waveform: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    channels: int = CHANNELS,
    n_samples: int | Callable[[int], int] = clip_length,
) -> np.ndarray:
    """Encode one spoken word as SHD-style cochlea events (``n_samples``: see
    ``prepare_waveform``).

    waveform: float (T,) mono audio at ``sample_rate`` Hz (any rate; resampled to 48 kHz).
    Returns COCHLEA_DTYPE (E,) sorted by t, channels in [0, channels), 0 = highest frequency.
    """
    return encode_prepared(prepare_waveform(waveform, sample_rate, n_samples), rng,
                           channels=channels)


def encode_prepared(signal: np.ndarray, rng: np.random.Generator, *,
                    channels: int = CHANNELS) -> np.ndarray:
    """``audio_to_events`` after ``prepare_waveform``: signal float64 (n_samples,) at
    ``SAMPLE_RATE`` -> COCHLEA_DTYPE (E,) sorted by t."""
    return encode_draws(signal, [rng], channels=channels)[0]


def encode_draws(signal: np.ndarray, rngs: Sequence[np.random.Generator], *,
                 channels: int = CHANNELS) -> list[np.ndarray]:
    """``encode_prepared`` once per generator, the deterministic basilar membrane and hair
    cells run once: the same sound heard again, only the spike stage's noise drawn anew
    (~0.25 s a draw at 700 channels, a third of the whole chain).

    signal: float64 (n_samples,) at ``SAMPLE_RATE``. Returns [COCHLEA_DTYPE (E_i,)] per rng.
    """
    prob = firing_probability(signal, channels)
    return [raster_to_events(bushy_cells(prob, FIBRE_RATE, rng), FIBRE_RATE) for rng in rngs]


def firing_probability(signal: np.ndarray, channels: int = CHANNELS) -> np.ndarray:
    """The deterministic part of the chain, basilar membrane then hair cells: signal float64
    (n_samples,) at ``SAMPLE_RATE`` -> fibre firing probability float64 (channels, T) at
    ``FIBRE_RATE``."""
    return hair_cell(basilar_membrane(signal, SAMPLE_RATE, channels), FIBRE_RATE)
