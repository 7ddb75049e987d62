"""Speaker, room and channel augmentation of one spoken word (numpy/scipy, pyroomacoustics).

A model trained on synthetic voices learns the synthesiser unless the audio varies the way
people, rooms and microphones do. ``augment`` draws every setting from a seeded Generator and
returns them, so each recording's recipe is reproducible and stored with it.
Order, as sound travels: speaker (speed, pitch, vocal-tract length) -> start offset -> room
(reverberation) -> noise (white, pink, babble) -> channel (EQ, band limit or telephone).
Overall gain is not drawn: the cochlea normalises every word to RMS 0.3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import signal

WORK_RATE = 32_000  # Hz: holds every engine's band (<= 16 kHz) at a modest cost
TAIL_S = 0.1  # silence after every word, before the cochlea normalises and windows the clip
MAX_SECONDS = 0.9999  # at 48 kHz this stays within the cochlea's fixed 47,998 samples


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation (recorded in the dataset recipe)."""

    speed: tuple[float, float] = (0.8, 1.25)
    p_pitch: float = 0.5
    pitch_semitones: tuple[float, float] = (-4.0, 4.0)
    p_vtlp: float = 0.5
    vtlp_alpha: tuple[float, float] = (0.88, 1.12)
    offset_s: tuple[float, float] = (0.0, 0.15)
    p_reverb: float = 0.5
    rt60_s: tuple[float, float] = (0.1, 0.8)
    p_noise: float = 0.7
    snr_db: tuple[float, float] = (0.0, 30.0)
    noise_kinds: tuple[str, ...] = ("white", "pink", "babble")
    p_eq: float = 0.5
    eq_gain_db: float = 10.0
    p_band: float = 0.4
    p_telephone: float = 0.15


def resample(x: np.ndarray, factor: float) -> np.ndarray:
    """Resample by ``factor`` (output length ~ len(x) * factor). float64 (T,) -> (T',)."""
    frac = Fraction(factor).limit_denominator(200)
    return signal.resample_poly(x, frac.numerator, frac.denominator)


def as_word(audio: np.ndarray, rate: int) -> np.ndarray:
    """A recorded or synthesised word as the dataset holds it: at WORK_RATE, leading and
    trailing silence trimmed. float64 (T,) at ``rate`` -> (T',) at WORK_RATE."""
    return trim_silence(resample(audio, WORK_RATE / rate), WORK_RATE)


def _loud_frames(x: np.ndarray, rate: int, top_db: float) -> tuple[np.ndarray, int]:
    """Indices of the 10 ms frames within ``top_db`` of the loudest one, and the frame size."""
    frame = max(rate // 100, 1)
    n = x.size // frame
    if n == 0:
        return np.zeros(0, np.int64), frame
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-20
    return np.flatnonzero(10 * np.log10(energy / energy.max()) > -top_db), frame


def trim_silence(x: np.ndarray, rate: int, top_db: float = 40.0) -> np.ndarray:
    """Cut leading/trailing frames more than ``top_db`` below the loudest 10 ms frame."""
    loud, frame = _loud_frames(x, rate, top_db)
    if not len(loud):
        return x
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def split_words(x: np.ndarray, rate: int, top_db: float = 40.0,
                min_gap_s: float = 0.3) -> list[tuple[int, int]]:
    """Sample ranges ``[start, end)`` of the words of ``x`` (T,): runs of 10 ms frames within
    ``top_db`` of the loudest one, joined across quieter gaps shorter than ``min_gap_s`` (the
    pauses inside a word, before a plosive, are shorter)."""
    loud, frame = _loud_frames(x, rate, top_db)
    if not len(loud):
        return []
    breaks = np.flatnonzero(np.diff(loud) > min_gap_s * rate / frame)
    starts, ends = np.r_[loud[0], loud[breaks + 1]], np.r_[loud[breaks], loud[-1]] + 1
    return [(int(a) * frame, int(b) * frame) for a, b in zip(starts, ends, strict=True)]


def pitch_shift(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Shift pitch keeping duration (phase vocoder). float64 (T,) -> (T,)."""
    import librosa  # heavy import, only needed here

    return librosa.effects.pitch_shift(y=x, sr=rate, n_steps=semitones).astype(np.float64)


def vtlp(x: np.ndarray, rate: int, alpha: float, f_hi: float = 4800.0) -> np.ndarray:
    """Vocal-tract-length perturbation: warp the spectrum's frequency axis by ``alpha``
    (piecewise linear, Jaitly & Hinton 2013), keeping the Nyquist frequency fixed."""
    f, _, S = signal.stft(x, fs=rate, nperseg=512)
    nyq = rate / 2
    knee = f_hi * min(alpha, 1.0) / alpha
    # Output frequency f_out takes the spectrum of the source frequency warp^-1(f_out).
    f_knee_out = knee * alpha
    src = np.where(
        f <= f_knee_out,
        f / alpha,
        nyq - (nyq - f) * (nyq - knee) / (nyq - f_knee_out),
    )
    mag = np.stack([np.interp(src, f, np.abs(col)) for col in S.T], axis=1)
    idx = np.clip(np.rint(src / f[1]).astype(int), 0, f.size - 1)
    _, y = signal.istft(mag * np.exp(1j * np.angle(S[idx])), fs=rate, nperseg=512)
    return y[: x.size]


def room_impulse_response(rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Shoebox room (image sources) with a random size and placement. float64 (L,)."""
    import pyroomacoustics as pra  # heavy import, only needed here

    dims = rng.uniform([3.0, 3.0, 2.4], [10.0, 8.0, 4.0])
    for _ in range(10):
        try:
            e_abs, order = pra.inverse_sabine(rt60, dims)
            break
        except ValueError:  # walls cannot absorb enough for so short an RT60: a smaller room
            dims = np.maximum(dims * 0.8, 1.5)
    else:
        raise ValueError(f"no room of at least 1.5 m reaches RT60 = {rt60} s; use RT60 >= 0.1 s")
    room = pra.ShoeBox(dims, fs=rate, materials=pra.Material(e_abs), max_order=min(order, 40))
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f-power noise, float64 (n,), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[1:] /= np.sqrt(np.arange(1, spec.size))
    spec[0] = 0
    y = np.fft.irfft(spec, n)
    return y / (np.sqrt(np.mean(y**2)) + 1e-12)


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float, speech_power: float) -> np.ndarray:
    """x + noise scaled so that speech_power / noise power = snr_db."""
    gain = np.sqrt(speech_power / (np.mean(noise**2) + 1e-20) / 10 ** (snr_db / 10))
    return x + gain * noise


def peaking_eq(x: np.ndarray, rate: int, f0: float, gain_db: float, q: float) -> np.ndarray:
    """RBJ-cookbook peaking biquad."""
    A = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / rate
    al = np.sin(w0) / (2 * q)
    b = [1 + al * A, -2 * np.cos(w0), 1 - al * A]
    a = [1 + al / A, -2 * np.cos(w0), 1 - al / A]
    return signal.lfilter(b, a, x)


def band_limit(x: np.ndarray, rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """4th-order Butterworth band-pass (a cheap microphone / codec)."""
    sos = signal.butter(4, [low_hz, min(high_hz, 0.45 * rate)], "bandpass", fs=rate, output="sos")
    return signal.sosfilt(sos, x)


def telephone(x: np.ndarray, rate: int) -> np.ndarray:
    """Narrow-band telephone channel: 8 kHz sampling, 300-3400 Hz, back to ``rate``."""
    narrow = resample(x, 8000 / rate)
    sos = signal.butter(6, [300, 3400], "bandpass", fs=8000, output="sos")
    return resample(signal.sosfilt(sos, narrow), rate / 8000)[: x.size]


def augment(
    word: np.ndarray,
    rng: np.random.Generator,
    other_speech: Callable[[np.random.Generator, int], np.ndarray],
    cfg: AugmentConfig = AugmentConfig(),
    rate: int = WORK_RATE,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Turn one clean, silence-trimmed word into one recording.

    word: float64 (T,) at ``rate``. other_speech(rng, n) -> float64 (n,): babble material.
    Returns float64 (T',) with T' <= MAX_SECONDS * rate, and the drawn settings.
    """
    max_len = int(MAX_SECONDS * rate)
    p: dict[str, Any] = {}
    # Speaker: a speed no slower than leaves room for the word in the clip.
    speed = float(rng.uniform(*cfg.speed))
    speed = max(speed, word.size / (0.95 * max_len))
    p["speed"] = speed
    x = resample(word, 1 / speed)
    if rng.random() < cfg.p_pitch:
        p["pitch_semitones"] = float(rng.uniform(*cfg.pitch_semitones))
        x = pitch_shift(x, rate, p["pitch_semitones"])
    if rng.random() < cfg.p_vtlp:
        p["vtlp_alpha"] = float(rng.uniform(*cfg.vtlp_alpha))
        x = vtlp(x, rate, p["vtlp_alpha"])
    speech_power = float(np.mean(x**2))
    offset = max(min(int(rng.uniform(*cfg.offset_s) * rate), max_len - x.size), 0)
    p["offset_s"] = offset / rate
    x = np.concatenate([np.zeros(offset), x, np.zeros(int(TAIL_S * rate))])
    if rng.random() < cfg.p_reverb:
        p["rt60_s"] = float(rng.uniform(*cfg.rt60_s))
        h = room_impulse_response(rate, p["rt60_s"], rng)
        x = signal.fftconvolve(x, h / np.sqrt(np.sum(h**2)))[: x.size + h.size // 2]
    x = x[:max_len]
    if rng.random() < cfg.p_noise:
        kind = str(rng.choice(cfg.noise_kinds))
        p["noise"], p["snr_db"] = kind, float(rng.uniform(*cfg.snr_db))
        noise = {
            "white": lambda: rng.standard_normal(x.size),
            "pink": lambda: pink_noise(x.size, rng),
            "babble": lambda: other_speech(rng, x.size),
        }[kind]()
        x = mix_at_snr(x, noise, p["snr_db"], speech_power)
    if rng.random() < cfg.p_eq:
        bands = []
        for _ in range(int(rng.integers(1, 4))):
            f0 = float(np.exp(rng.uniform(np.log(100), np.log(8000))))
            g = float(rng.uniform(-cfg.eq_gain_db, cfg.eq_gain_db))
            q = float(rng.uniform(0.5, 3.0))
            x = peaking_eq(x, rate, f0, g, q)
            bands.append((round(f0), round(g, 2), round(q, 2)))
        p["eq"] = bands
    if rng.random() < cfg.p_telephone:
        p["telephone"] = True
        x = telephone(x, rate)
    elif rng.random() < cfg.p_band:
        lo = float(np.exp(rng.uniform(np.log(50), np.log(300))))
        hi = float(np.exp(rng.uniform(np.log(3000), np.log(15000))))
        p["band_hz"] = (round(lo), round(hi))
        x = band_limit(x, rate, lo, hi)
    return x, p
