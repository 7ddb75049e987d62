"""A DVS pixel-array emulator: intensity frames -> events (``DVS_DTYPE``), pure numpy.

Each pixel remembers the log intensity at its last reset (``ref``) and emits an ON (OFF)
event each time the log intensity rises (falls) by its own threshold ``theta_on``
(``theta_off``) from there, after which ``ref`` moves one threshold towards the input
(Lichtsteiner et al. 2008; the v2e model of Hu et al. 2021 without the photoreceptor filter).
Between frames the log intensity is taken as linear in time, so each threshold crossing gets
its own timestamp, interpolated to the microsecond.

Non-idealities:
- threshold mismatch: per-pixel thresholds drawn once per sensor, Gaussian around the mean;
- leak: ``ref`` drifts down at ``leak_rate_hz`` thresholds per second, so a static pixel
  emits ON events at about that rate (background activity), each pixel at a random phase;
- shot noise: Poisson events of random polarity at ``shot_rate_hz`` per pixel;
- refractory period: a pixel drops events less than ``refractory_us`` after its last one
  (its ``ref`` still resets, as the real pixel's does, so the change is lost, not delayed).

Layout: frames are (T, H, W) float linear intensity > 0; pixel ``i`` is ``y * W + x``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from model.events import DVS_DTYPE


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    """DVS pixel parameters; thresholds are in natural-log intensity units."""

    theta_on: float = 0.3
    theta_off: float = 0.3
    theta_sigma: float = 0.03
    theta_min: float = 0.05
    refractory_us: float = 500.0
    leak_rate_hz: float = 0.1
    shot_rate_hz: float = 0.5


@dataclasses.dataclass(frozen=True)
class Sensor:
    """Fixed per-pixel properties of one physical sensor.

    theta_on, theta_off (float64): thresholds, (H, W).
    """

    theta_on: np.ndarray
    theta_off: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.theta_on.shape
        return h, w


def make_sensor(
    config: EmulatorConfig, height: int, width: int, rng: np.random.Generator
) -> Sensor:
    """Draw a sensor's per-pixel thresholds (mismatch), clipped below at ``theta_min``."""

    def draw(mean: float) -> np.ndarray:
        theta = rng.normal(mean, config.theta_sigma, size=(height, width))
        return np.maximum(theta, config.theta_min)

    return Sensor(theta_on=draw(config.theta_on), theta_off=draw(config.theta_off))


def emulate(
    frames: np.ndarray,
    times_us: np.ndarray,
    sensor: Sensor,
    config: EmulatorConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Events of a sensor watching ``frames``, sorted by ``t``.

    frames (float): linear intensity, strictly positive, (T, H, W) with (H, W) = sensor.shape.
    times_us (float or int): increasing frame times, (T,). Events lie in
    [times_us[0], times_us[-1]]. The first frame sets each pixel's memory, at a random
    point between its OFF and ON thresholds, so the array does not fire in unison.
    Returns a DVS_DTYPE array, (N,).
    """
    if frames.shape[1:] != sensor.shape or len(frames) != len(times_us):
        raise ValueError(
            f"frames {frames.shape} and times {np.shape(times_us)} must be (T, H, W) and (T,) "
            f"with (H, W) = sensor shape {sensor.shape}"
        )
    if np.any(frames <= 0):
        raise ValueError("frames must hold strictly positive intensities (add a black level)")
    times = np.asarray(times_us, dtype=np.float64)
    if np.any(np.diff(times) <= 0):
        raise ValueError("frame times must be strictly increasing")
    h, w = sensor.shape
    log_frames = np.log(frames.reshape(len(frames), h * w))
    theta_on, theta_off = sensor.theta_on.ravel(), sensor.theta_off.ravel()

    ref = log_frames[0] - rng.uniform(-theta_off, theta_on)
    leak_per_us = config.leak_rate_hz * 1e-6 * theta_on
    chunks = []
    for k in range(1, len(times)):
        dt = times[k] - times[k - 1]
        pix, t, p, ref = threshold_crossings(
            log_frames[k - 1], log_frames[k], ref, leak_per_us * dt, theta_on, theta_off
        )
        chunks.append((pix, times[k - 1] + t * dt, p))
    chunks.append(shot_noise(h * w, times[0], times[-1], config.shot_rate_hz, rng))

    pix = np.concatenate([c[0] for c in chunks])
    t_us = np.floor(np.concatenate([c[1] for c in chunks])).astype(np.int64)
    p = np.concatenate([c[2] for c in chunks])
    keep = refractory_filter(pix, t_us, config.refractory_us)
    pix, t_us, p = pix[keep], t_us[keep], p[keep]
    order = np.lexsort((pix, t_us))

    events = np.empty(len(order), dtype=DVS_DTYPE)
    events["t"] = t_us[order]
    events["x"] = pix[order] % w
    events["y"] = pix[order] // w
    events["p"] = p[order]
    return events


def threshold_crossings(
    log_a: np.ndarray,
    log_b: np.ndarray,
    ref: np.ndarray,
    leak: np.ndarray,
    theta_on: np.ndarray,
    theta_off: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events of one frame interval, with ``log - ref`` linear from its value at the start
    (``log_a - ref``) to its value at the end (``log_b - ref + leak``).

    log_a, log_b, ref, leak, theta_on, theta_off (float64): per pixel, (P,); ``ref`` is the
    memory at the start and ``leak`` how far it drifts down during the interval. The
    invariant ``-theta_off < log - ref < theta_on`` holds on entry and is restored on exit.
    Returns pixel index (int64, (N,)), time as a fraction of the interval in [0, 1]
    (float64, (N,)), polarity (uint8, (N,), 1 = ON) and ``ref`` at the end (P,).
    """
    d0 = log_a - ref
    d1 = log_b - ref + leak
    rising = d1 > d0
    theta = np.where(rising, theta_on, theta_off)
    n = np.where(rising, np.floor(d1 / theta_on), np.floor(-d1 / theta_off)).clip(min=0)
    n = n.astype(np.int64)
    new_ref = ref - leak + np.where(rising, n * theta, -n * theta)

    pix = np.repeat(np.arange(len(n)), n)
    j = np.arange(len(pix)) - np.repeat(np.cumsum(n) - n, n) + 1  # 1..n within each pixel
    sign = np.where(rising[pix], 1.0, -1.0)
    frac = (sign * j * theta[pix] - d0[pix]) / (d1[pix] - d0[pix])
    return pix, np.clip(frac, 0.0, 1.0), rising[pix].astype(np.uint8), new_ref


def shot_noise(
    n_pixels: int, t_start: float, t_end: float, rate_hz: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson events of random polarity on every pixel at ``rate_hz`` during [t_start, t_end).

    Returns pixel index (int64, (N,)), time in µs (float64, (N,)), polarity (uint8, (N,)).
    """
    count = rng.poisson(rate_hz * n_pixels * (t_end - t_start) * 1e-6)
    pix = rng.integers(0, n_pixels, size=count)
    t = rng.uniform(t_start, t_end, size=count)
    p = rng.integers(0, 2, size=count).astype(np.uint8)
    return pix, t, p


def refractory_filter(pix: np.ndarray, t_us: np.ndarray, refractory_us: float) -> np.ndarray:
    """Which events survive a per-pixel refractory period, scanning each pixel in time order.

    pix (int): pixel of each event, (N,); t_us (int): time, (N,), any order.
    Returns a bool mask (N,): an event is kept when it comes at least ``refractory_us``
    after the pixel's last *kept* event. Pixels are scanned in parallel, one rank at a time.
    """
    keep = np.zeros(len(pix), dtype=bool)
    if len(pix) == 0:
        return keep
    order = np.lexsort((t_us, pix))
    sorted_pix = pix[order]
    starts = np.flatnonzero(np.r_[True, sorted_pix[1:] != sorted_pix[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    by_rank = order[np.argsort(rank, kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(rank))]
    last = np.full(int(pix.max()) + 1, -np.inf)
    for r in range(len(bounds) - 1):
        idx = by_rank[bounds[r] : bounds[r + 1]]
        ok = t_us[idx] >= last[pix[idx]] + refractory_us
        keep[idx[ok]] = True
        last[pix[idx[ok]]] = t_us[idx[ok]]
    return keep
