"""DVS digits: real handwritten digits recorded by a simulated DVS, the N-MNIST way.

N-MNIST (Orchard et al. 2015) moved an ATIS camera in three ~100 ms saccades along a
triangle in front of MNIST digits shown on a monitor, giving 34 x 34 pixel recordings of
about 300 ms with both polarities. Here the digits are scikit-learn's bundled ``load_digits``
(the UCI optdigits test set: 1,797 8 x 8 digits by 13 writers), upsampled smoothly to
28 x 28 and moved along the same kind of path over a 34 x 34 canvas; ``model.dvs_emulator``
turns the 1 kHz frames into events. One sensor (threshold mismatch) records the whole
dataset, as one camera recorded N-MNIST.

Offsets are (x, y) of the digit's top-left corner on the canvas, in pixels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from model.datasets import write_dvs
from model.dvs_emulator import EmulatorConfig, Sensor, emulate, make_sensor
from model.workers import spawn_pool

DIGIT_KEYS = tuple(str(d) for d in range(10))
SOURCE = (
    "scikit-learn load_digits: the UCI optdigits test set, 1,797 8x8 handwritten digits "
    "by 13 writers (block counts of 32x32 NIST bitmaps), upsampled to 28x28 by cubic spline"
)
SPLIT_NOTE = (
    "load_digits has no writer ids, so train/test is a stratified split by sample "
    "(the same writers appear in both); training digits are recorded train_copies times "
    "with path jitter, test digits once along the nominal path"
)


@dataclasses.dataclass(frozen=True)
class SaccadeConfig:
    """The scene: digit on a monitor, camera path, frame rate.

    ``vertices`` are the triangle's corners (x, y offsets); the three saccades go 0 -> 1 -> 2
    -> 0. ``black`` is the monitor's black relative to its white, as the camera sees it
    (glare keeps it well above 0). Jitter moves each corner by up to ``jitter_px`` in x and
    y and stretches each saccade by up to ``jitter_time`` (a fraction), uniformly, so the
    mean jittered path is the nominal one; the nominal corners keep ``jitter_px`` clear of
    the canvas edges so that no jitter has to be clipped.
    """

    canvas: int = 34
    digit: int = 28
    frame_us: int = 1000
    saccade_us: int = 100_000
    vertices: tuple[tuple[float, float], ...] = ((3.0, 1.0), (5.0, 5.0), (1.0, 5.0))
    black: float = 0.15
    jitter_px: float = 1.0
    jitter_time: float = 0.1


@functools.cache
def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: images float64 (1797, 8, 8) in [0, 1], labels int64."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images / 16.0, digits.target.astype(np.int64)


def upsample(image: np.ndarray, size: int) -> np.ndarray:
    """Smooth (cubic-spline) upsampling of a square image (n, n) to (size, size) in [0, 1].

    Each optdigits pixel is an ink count over a 4 x 4 block, so the cubic spline of the
    block averages is a fair guess at the anti-aliased strokes MNIST shows.
    """
    out = ndimage.zoom(image, size / image.shape[0], order=3, grid_mode=True, mode="grid-constant")
    return np.clip(out, 0.0, 1.0)


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile (s in [0, 1] -> [0, 1]): a motor's smooth saccade."""
    return s**3 * (10 - 15 * s + 6 * s**2)


def saccade_offsets(
    times_us: np.ndarray, vertices: np.ndarray, durations_us: np.ndarray
) -> np.ndarray:
    """Digit offset at each time along the closed path through ``vertices``.

    times_us (float): (T,), from 0; vertices (float): (K, 2) corners (x, y); durations_us
    (float): (K,) time of saccade k, from corner k to corner k+1 (mod K).
    Returns float64 (T, 2); times past the last saccade stay at the first corner.
    """
    ends = np.cumsum(durations_us)
    k = np.minimum(np.searchsorted(ends, times_us, side="right"), len(ends) - 1)
    starts = ends - durations_us
    s = np.clip((times_us - starts[k]) / durations_us[k], 0.0, 1.0)
    a, b = vertices[k], vertices[(k + 1) % len(vertices)]
    return a + (b - a) * min_jerk(s)[:, None]


def render(image: np.ndarray, offsets: np.ndarray, canvas: int) -> np.ndarray:
    """Frames of ``image`` (n, n) in [0, 1] placed at sub-pixel ``offsets`` (T, 2) (x, y).

    A sensor pixel integrating a square of a pixel-constant picture shifted by a fraction
    sees the bilinear blend of the four pixels it overlaps, so bilinear sampling is exact
    area sampling here. Returns float64 (T, canvas, canvas) in [0, 1], 0 off the image.
    """
    n = image.shape[0]
    if np.any(offsets < 0) or np.any(offsets > canvas - n):
        raise ValueError(f"offsets must keep the {n}-pixel image inside the {canvas} canvas")
    pad = np.zeros((canvas + 2, canvas + 2))
    pad[1 : n + 1, 1 : n + 1] = image  # pad[j + 1, i + 1] = image[j, i]
    # Canvas pixel c sees image pixel c - offset: split into whole pixels and a fraction.
    whole = np.floor(offsets).astype(np.int64)
    frac = offsets - whole
    grid = np.arange(canvas)
    cols = grid[None, :] - whole[:, :1] + 1  # (T, canvas) index into pad of image[c - ox]
    rows = grid[None, :] - whole[:, 1:] + 1
    fx, fy = frac[:, 0, None, None], frac[:, 1, None, None]

    def at(dy: int, dx: int) -> np.ndarray:
        return pad[(rows - dy)[:, :, None], (cols - dx)[:, None, :]]

    return (1 - fy) * ((1 - fx) * at(0, 0) + fx * at(0, 1)) + fy * (
        (1 - fx) * at(1, 0) + fx * at(1, 1)
    )


def digit_recording(
    image: np.ndarray,
    sensor: Sensor,
    rng: np.random.Generator,
    scene: SaccadeConfig,
    emulator: EmulatorConfig,
    *,
    jitter: bool,
) -> np.ndarray:
    """Events (DVS_DTYPE, (N,)) of one 8 x 8 digit image in [0, 1] seen along the saccades.

    Without ``jitter`` the path is the nominal triangle; the emulator noise still varies.
    """
    vertices = np.asarray(scene.vertices, dtype=np.float64)
    durations = np.full(len(vertices), float(scene.saccade_us))
    if jitter:
        vertices = vertices + rng.uniform(-scene.jitter_px, scene.jitter_px, vertices.shape)
        durations *= 1 + rng.uniform(-scene.jitter_time, scene.jitter_time, len(durations))
    total = durations.sum()
    times = np.linspace(0.0, total, int(np.ceil(total / scene.frame_us)) + 1)
    offsets = saccade_offsets(times, vertices, durations)
    frames = render(upsample(image, scene.digit), offsets, scene.canvas)
    intensity = scene.black + (1.0 - scene.black) * frames
    return emulate(intensity, times, sensor, emulator, rng)


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test), each sorted, with ``test_fraction`` of every class in test.

    labels (int): (N,). load_digits keeps no writer ids, so the split is by sample, not by
    writer: the same writers appear on both sides.
    """
    test = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[: round(test_fraction * len(members))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


@dataclasses.dataclass(frozen=True)
class DigitsRecipe:
    """Everything that determines the dataset, saved beside it as recipe.json.

    Training digits are recorded ``train_copies`` times with path jitter (augmentation);
    test digits once, along the nominal path.
    """

    seed: int = 0
    test_fraction: float = 0.2
    train_copies: int = 2
    scene: SaccadeConfig = dataclasses.field(default_factory=SaccadeConfig)
    emulator: EmulatorConfig = dataclasses.field(default_factory=EmulatorConfig)


@dataclasses.dataclass(frozen=True)
class Sample:
    """One recording to make: digit ``index`` of load_digits, its ``copy`` number."""

    index: int
    copy: int
    jitter: bool


# Independent random streams of one seed: [seed, stream, ...].
_SPLIT, _SENSOR, _SAMPLE = 0, 1, 2


def plan(recipe: DigitsRecipe) -> dict[str, list[Sample]]:
    """The recordings of each split, in file order."""
    _, labels = load_digit_images()
    rng = np.random.default_rng([recipe.seed, _SPLIT])
    train_idx, test_idx = stratified_split(labels, recipe.test_fraction, rng)
    train = [Sample(int(i), c, jitter=True) for i in train_idx for c in range(recipe.train_copies)]
    return {"train": train, "test": [Sample(int(i), 0, jitter=False) for i in test_idx]}


def dataset_sensor(recipe: DigitsRecipe) -> Sensor:
    """The one simulated camera that records every sample."""
    size = recipe.scene.canvas
    return make_sensor(recipe.emulator, size, size, np.random.default_rng([recipe.seed, _SENSOR]))


def record(sample: Sample, recipe: DigitsRecipe, sensor: Sensor) -> np.ndarray:
    """Events (DVS_DTYPE, (N,)) of one sample; a function of (sample, recipe) alone."""
    images, _ = load_digit_images()
    rng = np.random.default_rng([recipe.seed, _SAMPLE, sample.index, sample.copy])
    return digit_recording(
        images[sample.index], sensor, rng, recipe.scene, recipe.emulator, jitter=sample.jitter
    )


def _split_summary(events: list[np.ndarray], labels: np.ndarray,
                   index: np.ndarray) -> dict[str, Any]:
    """recipe.json's account of one split: samples, distinct digits, classes, event counts."""
    counts = np.array([len(ev) for ev in events])
    return {
        "samples": len(events),
        "digits": len(set(index.tolist())),
        "class_counts": np.bincount(labels, minlength=10).tolist(),
        "events_per_sample": {
            "mean": float(counts.mean()),
            "median": float(np.median(counts)),
            "min": int(counts.min()),
            "max": int(counts.max()),
        },
    }


def generate(
    out_dir: Path,
    recipe: DigitsRecipe,
    *,
    workers: int = 1,
    limit: int | None = None,
    progress: Callable[[int], object] = lambda n: None,
    command: str = "",
) -> dict[str, Any]:
    """Record every planned sample into ``out_dir``/{train,test}.h5 and write recipe.json.

    ``limit`` keeps only the first samples of each split (smoke runs); ``progress`` is
    called with the number of samples just finished. The files depend on the recipe alone,
    not on ``workers``. Returns the recipe.json contents.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Until both splits are in place the folder holds no recipe: an interrupted run (of
    # another recipe, say) must not leave files that a recipe.json vouches for.
    (out_dir / "recipe.json").unlink(missing_ok=True)
    sensor = dataset_sensor(recipe)
    _, labels = load_digit_images()
    job = functools.partial(record, recipe=recipe, sensor=sensor)
    summary: dict[str, Any] = {}
    written: dict[Path, Path] = {}  # each split's finished file -> where it goes
    with contextlib.ExitStack() as stack:
        run: Callable[..., Iterable[np.ndarray]] = map
        if workers > 1:
            run = functools.partial(stack.enter_context(spawn_pool(workers)).imap, chunksize=16)
        for split, samples in plan(recipe).items():
            samples = samples[:limit]
            events = []
            for ev in run(job, samples):
                events.append(ev)
                progress(1)
            index = np.array([s.index for s in samples], dtype=np.int64)
            path = out_dir / f"{split}.h5"
            written[path.with_suffix(".tmp.h5")] = path
            write_dvs(
                path.with_suffix(".tmp.h5"),
                events,
                labels[index].tolist(),
                width=recipe.scene.canvas,
                height=recipe.scene.canvas,
                keys=DIGIT_KEYS,
                extra={
                    "digit_index": index,
                    "copy": np.array([s.copy for s in samples], dtype=np.int64),
                },
            )
            summary[split] = _split_summary(events, labels[index], index)
    for tmp, path in written.items():  # both splits of one recipe, never one of each
        os.replace(tmp, path)
    info = {
        "dataset": "dvs-digits",
        "source": SOURCE,
        "split": SPLIT_NOTE,
        "recipe": dataclasses.asdict(recipe),
        "limit": limit,
        "splits": summary,
        "seconds": round(time.perf_counter() - started, 1),
        "workers": workers,
        "command": command,
    }
    (out_dir / "recipe.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
