"""The DVS emulator: polarity of moving edges, noise rates, thresholds, refractory period."""

from __future__ import annotations

import numpy as np
import pytest

from model.dvs_emulator import (
    EmulatorConfig,
    emulate,
    make_sensor,
    refractory_filter,
)
from model.events import DVS_DTYPE

QUIET = EmulatorConfig(leak_rate_hz=0.0, shot_rate_hz=0.0)
FRAME_US = 1000.0


def frame_times(n: int) -> np.ndarray:
    return np.arange(n) * FRAME_US


def moving_bar(n_frames: int, width: int, start: float, speed_px: float, bar: float):
    """A bright bar (1.0 on 0.1) of width ``bar`` whose left edge moves right; (T, 4, W).

    Pixel x covers [x, x + 1); its intensity is the bar's area over it.
    """
    left = start + speed_px * np.arange(n_frames)[:, None]
    x = np.arange(width)[None, :]
    cover = np.clip(np.minimum(x + 1, left + bar) - np.maximum(x, left), 0.0, 1.0)
    frames = 0.1 + 0.9 * cover
    return np.repeat(frames[:, None, :], 4, axis=1), left[:, 0]


def test_moving_bar_fires_on_at_leading_edge_and_off_at_trailing_edge():
    frames, left = moving_bar(n_frames=201, width=40, start=2.0, speed_px=0.1, bar=8.0)
    rng = np.random.default_rng(0)
    sensor = make_sensor(QUIET, 4, 40, rng)
    ev = emulate(frames, frame_times(201), sensor, QUIET, rng)
    left_at = np.interp(ev["t"], frame_times(201), left)
    on, off = ev["p"] == 1, ev["p"] == 0
    assert on.sum() > 100 and off.sum() > 100
    # Pixel x changes while an edge is over it: the leading edge is at left + 8.
    assert np.all(np.abs(ev["x"][on] + 0.5 - (left_at[on] + 8.0)) <= 1.0)
    assert np.all(np.abs(ev["x"][off] + 0.5 - left_at[off]) <= 1.0)


def test_static_scene_without_noise_is_silent():
    frames = np.full((101, 6, 6), 0.5)
    rng = np.random.default_rng(1)
    ev = emulate(frames, frame_times(101), make_sensor(QUIET, 6, 6, rng), QUIET, rng)
    assert len(ev) == 0


@pytest.mark.parametrize(
    ("leak", "shot", "on_fraction"), [(20.0, 0.0, 1.0), (0.0, 20.0, 0.5), (10.0, 10.0, 0.75)]
)
def test_static_scene_fires_at_the_noise_rate(leak, shot, on_fraction):
    config = EmulatorConfig(leak_rate_hz=leak, shot_rate_hz=shot, refractory_us=0.0)
    frames = np.full((1001, 10, 10), 0.5)  # 100 pixels for 1 s
    rng = np.random.default_rng(2)
    ev = emulate(frames, frame_times(1001), make_sensor(config, 10, 10, rng), config, rng)
    expected = 100 * (leak + shot)
    assert abs(len(ev) - expected) < 5 * np.sqrt(expected) + 100  # leak phase: up to 1/pixel
    assert abs(ev["p"].mean() - on_fraction) < 0.1


def test_events_follow_each_pixels_own_threshold():
    # Log intensity rises linearly at `slope` per µs: every ON event of a pixel comes
    # theta_on / slope after the previous one, and there are no OFF events. The pixel starts
    # anywhere between its OFF and ON thresholds, so a rise of 2 crosses ON between
    # (2 - theta_off) // theta_on and (2 + theta_on) // theta_on times.
    config = EmulatorConfig(leak_rate_hz=0.0, shot_rate_hz=0.0, theta_sigma=0.05)
    slope = 2.0 / 100_000
    times = frame_times(101)
    frames = np.broadcast_to(np.exp(slope * times)[:, None, None], (101, 3, 3)).copy()
    rng = np.random.default_rng(3)
    sensor = make_sensor(config, 3, 3, rng)
    assert np.ptp(sensor.theta_on) > 0.01  # mismatch: thresholds differ between pixels
    ev = emulate(frames, times, sensor, config, rng)
    assert np.all(ev["p"] == 1)
    for y in range(3):
        for x in range(3):
            t = ev["t"][(ev["x"] == x) & (ev["y"] == y)]
            theta, theta_off = sensor.theta_on[y, x], sensor.theta_off[y, x]
            assert (2.0 - theta_off) // theta <= len(t) <= (2.0 + theta) // theta
            np.testing.assert_allclose(np.diff(t), theta / slope, atol=1.0)


def test_refractory_period_separates_events_of_a_pixel():
    slope = 1e-4  # a threshold crossing every ~3 ms, faster than the 5 ms refractory period
    times = frame_times(101)
    frames = np.broadcast_to(np.exp(slope * times)[:, None, None], (101, 2, 2)).copy()

    def run(refractory_us: float) -> np.ndarray:
        config = EmulatorConfig(leak_rate_hz=0.0, shot_rate_hz=0.0, refractory_us=refractory_us)
        rng = np.random.default_rng(4)
        return emulate(frames, times, make_sensor(config, 2, 2, rng), config, rng)

    free, limited = run(0.0), run(5000.0)
    assert len(limited) < 0.6 * len(free)
    for pix in range(4):
        t = limited["t"][limited["y"] * 2 + limited["x"] == pix]
        assert len(t) >= 10
        assert np.diff(t).min() >= 5000


def test_refractory_filter_measures_from_the_last_kept_event():
    pix = np.array([0, 0, 0, 1, 0])
    t = np.array([0, 100, 600, 50, 450])
    # Pixel 0: 0 kept, 100 and 450 dropped (< 500 after 0), 600 kept; pixel 1 untouched.
    assert refractory_filter(pix, t, 500.0).tolist() == [True, False, True, True, False]


def test_events_are_sorted_typed_and_inside_the_recording():
    frames, _ = moving_bar(n_frames=51, width=20, start=2.0, speed_px=0.2, bar=4.0)
    times = 10_000 + frame_times(51)
    config = EmulatorConfig(shot_rate_hz=50.0)
    rng = np.random.default_rng(5)
    ev = emulate(frames, times, make_sensor(config, 4, 20, rng), config, rng)
    assert ev.dtype == DVS_DTYPE
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["t"].min() >= times[0] and ev["t"].max() <= times[-1]
    assert ev["x"].max() < 20 and ev["y"].max() < 4


def test_same_seed_gives_identical_events():
    frames, _ = moving_bar(n_frames=51, width=20, start=2.0, speed_px=0.2, bar=4.0)
    config = EmulatorConfig(shot_rate_hz=50.0, leak_rate_hz=5.0)

    def run(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return emulate(frames, frame_times(51), make_sensor(config, 4, 20, rng), config, rng)

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_rejects_dark_pixels_with_a_hint():
    rng = np.random.default_rng(6)
    sensor = make_sensor(QUIET, 2, 2, rng)
    with pytest.raises(ValueError, match="black level"):
        emulate(np.zeros((3, 2, 2)), frame_times(3), sensor, QUIET, rng)
