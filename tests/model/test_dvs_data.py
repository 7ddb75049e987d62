"""DVS digits: saccade path, rendering, split, recordings and the generated files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from model.datasets import open_dataset
from model.dvs_data import (
    DigitsRecipe,
    SaccadeConfig,
    dataset_sensor,
    digit_recording,
    generate,
    load_digit_images,
    render,
    saccade_offsets,
    stratified_split,
    upsample,
)
from model.events import DVS_DTYPE

TRIANGLE = np.array([(3.0, 0.0), (6.0, 6.0), (0.0, 6.0)])


def test_saccades_visit_the_corners_in_order_and_return():
    times = np.array([0.0, 50_000, 100_000, 200_000, 300_000])
    offsets = saccade_offsets(times, TRIANGLE, np.full(3, 100_000.0))
    np.testing.assert_allclose(offsets[[0, 2, 3, 4]], TRIANGLE[[0, 1, 2, 0]])
    np.testing.assert_allclose(offsets[1], (TRIANGLE[0] + TRIANGLE[1]) / 2)  # symmetric profile


def test_saccades_move_smoothly_from_rest():
    times = np.arange(0.0, 300_001.0, 1000.0)
    offsets = saccade_offsets(times, TRIANGLE, np.full(3, 100_000.0))
    step = np.linalg.norm(np.diff(offsets, axis=0), axis=1)
    assert step.max() < 0.15  # sub-pixel motion between 1 kHz frames
    assert step[0] < 1e-3 and step[99] < 1e-3  # each saccade starts and ends at rest


def test_render_places_the_image_and_blends_sub_pixel_shifts():
    image = np.zeros((4, 4))
    image[1, 2] = 1.0
    frames = render(image, np.array([(3.0, 5.0), (3.5, 5.0), (3.0, 5.25)]), canvas=10)
    assert frames.shape == (3, 10, 10)
    assert frames[0, 6, 5] == 1.0 and frames[0].sum() == 1.0
    assert frames[1, 6, 5] == 0.5 and frames[1, 6, 6] == 0.5
    assert frames[2, 6, 5] == 0.75 and frames[2, 7, 5] == 0.25
    np.testing.assert_allclose(frames.sum(axis=(1, 2)), 1.0)  # area sampling keeps the ink


def test_render_rejects_offsets_that_leave_the_canvas():
    with pytest.raises(ValueError, match="inside the 10 canvas"):
        render(np.ones((4, 4)), np.array([(6.5, 0.0)]), canvas=10)


def test_upsampled_digits_keep_their_shape_and_range():
    images, labels = load_digit_images()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    big = upsample(images[0], 28)
    assert big.shape == (28, 28) and big.min() >= 0.0 and big.max() <= 1.0
    # Block means of the upsampled digit follow the original 8 x 8 counts.
    small = upsample(big, 8)
    assert np.corrcoef(small.ravel(), images[0].ravel())[0, 1] > 0.95


def test_stratified_split_is_disjoint_balanced_and_seeded():
    labels = np.repeat(np.arange(10), 50)
    train, test = stratified_split(labels, 0.2, np.random.default_rng(0))
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 500
    assert np.bincount(labels[test]).tolist() == [10] * 10
    again = stratified_split(labels, 0.2, np.random.default_rng(0))
    np.testing.assert_array_equal(test, again[1])


def test_digit_recording_is_a_sorted_two_polarity_stream_within_the_saccades():
    recipe = DigitsRecipe()
    images, _ = load_digit_images()
    sensor = dataset_sensor(recipe)
    for jitter in (False, True):
        rng = np.random.default_rng(1)
        ev = digit_recording(images[0], sensor, rng, recipe.scene, recipe.emulator, jitter=jitter)
        assert ev.dtype == DVS_DTYPE and len(ev) > 1000
        assert np.all(np.diff(ev["t"]) >= 0)
        limit = 3 * recipe.scene.saccade_us * (1 + recipe.scene.jitter_time)
        assert ev["t"].min() >= 0 and ev["t"].max() <= limit
        assert ev["x"].max() < 34 and ev["y"].max() < 34
        assert 0.3 < ev["p"].mean() < 0.7


def test_first_saccade_fires_on_ahead_of_the_motion():
    # Saccade 1 moves the digit down and to the right: ON events lie further along that
    # direction than OFF events.
    recipe = DigitsRecipe(emulator=dataclasses.replace(DigitsRecipe().emulator, shot_rate_hz=0))
    images, _ = load_digit_images()
    rng = np.random.default_rng(2)
    scene = recipe.scene
    ev = digit_recording(
        images[0], dataset_sensor(recipe), rng, scene, recipe.emulator, jitter=False
    )
    first = ev[ev["t"] < scene.saccade_us]
    along = first["x"] * 1.0 + first["y"] * 2.0
    assert along[first["p"] == 1].mean() > along[first["p"] == 0].mean() + 2.0


SMALL = DigitsRecipe(scene=SaccadeConfig(saccade_us=30_000), train_copies=2)


def test_generate_writes_labelled_files_and_a_recipe(tmp_path: Path):
    info = generate(tmp_path, SMALL, limit=4, command="s5rf data dvs --limit 4")
    _, labels = load_digit_images()
    for split, samples in (("train", 4), ("test", 4)):
        with open_dataset(tmp_path / f"{split}.h5") as ds:
            assert ds.sensor == "dvs" and (ds.width, ds.height) == (34, 34)
            assert len(ds) == samples and ds.keys == [str(d) for d in range(10)]
            index = ds.extra("digit_index")
            np.testing.assert_array_equal(ds.labels, labels[index])
            events, label = ds[0]
            assert len(events) > 100 and label == labels[index[0]]
        assert info["splits"][split]["samples"] == samples
    with open_dataset(tmp_path / "train.h5") as ds:
        # Two jittered recordings of each training digit.
        assert ds.extra("copy").tolist() == [0, 1, 0, 1]
        assert not np.array_equal(ds[0][0], ds[1][0])
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert recipe["recipe"]["seed"] == 0 and recipe["command"] == "s5rf data dvs --limit 4"
    assert "stratified" in recipe["split"]


def test_generate_is_deterministic_from_the_seed(tmp_path: Path):
    def first_test_sample(seed: int, out: Path) -> np.ndarray:
        generate(out, dataclasses.replace(SMALL, seed=seed), limit=1)
        with open_dataset(out / "test.h5") as ds:
            return ds[0][0]

    a = first_test_sample(0, tmp_path / "a")
    b = first_test_sample(0, tmp_path / "b")
    c = first_test_sample(1, tmp_path / "c")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_run_stopped_midway_leaves_one_recipe_whole_and_no_recipe_file(tmp_path: Path):
    """Another recipe's run stopped in its test split: both files are still the first
    recipe's (never a new train.h5 beside an old test.h5, which share digits), and no
    recipe.json vouches for them."""
    generate(tmp_path, SMALL, limit=2)
    before = {split: (tmp_path / f"{split}.h5").read_bytes() for split in ("train", "test")}
    done = []

    def stop_in_the_test_split(n: int) -> None:
        done.append(n)
        if len(done) == 3:  # both training samples, one test sample
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, dataclasses.replace(SMALL, seed=1), limit=2,
                 progress=stop_in_the_test_split)
    assert {split: (tmp_path / f"{split}.h5").read_bytes() for split in before} == before
    assert not (tmp_path / "recipe.json").exists()


def test_generated_files_do_not_depend_on_the_worker_count(tmp_path: Path):
    for workers in (1, 2):
        generate(tmp_path / str(workers), SMALL, limit=3, workers=workers)
    for split in ("train", "test"):
        with (
            open_dataset(tmp_path / "1" / f"{split}.h5") as one,
            open_dataset(tmp_path / "2" / f"{split}.h5") as two,
        ):
            for i in range(3):
                np.testing.assert_array_equal(one[i][0], two[i][0])


def test_cli_writes_the_dataset_and_its_command(tmp_path: Path, capsys):
    from cli.main import main

    assert main(["data", "dvs", "--out", str(tmp_path), "--limit", "2", "--copies", "1"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["train"]["samples"] == 2 and printed["test"]["samples"] == 2
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert recipe["command"].startswith("s5rf data dvs --out ")
    assert recipe["recipe"]["train_copies"] == 1


def test_default_jitter_never_pushes_the_digit_off_the_canvas():
    scene = SaccadeConfig()
    corners = np.array(scene.vertices)
    slack = scene.canvas - scene.digit
    assert corners.min() - scene.jitter_px >= 0 and corners.max() + scene.jitter_px <= slack
