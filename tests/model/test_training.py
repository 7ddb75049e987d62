import contextlib
import json
import re
import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest

import cli.train
from cli.main import main
from model import checkpoint
from model.augment import (
    EventAugment,
    augment_events,
    cutmix,
    mask_time_channels,
    random_shift,
    shift_and_mask,
)
from model.datasets import open_dataset, write_shd
from model.events import EVENT_DTYPES
from model.samples import read_index
from model.spec import InputSpec
from model.training import read_log
from tests.order_task import order_task

SPEC = InputSpec(sensor="cochlea", channels=40, dt_us=5000)


@pytest.fixture(scope="module")
def order_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    rng = np.random.default_rng(0)
    for name, n in (("train", 512), ("test", 128)):
        events, labels = order_task(n, rng)
        write_shd(root / f"{name}.h5", events, labels, keys=["ab", "ba", "cd", "dc"],
                  channels=40, extra={"speaker": np.array(["ann", "bob"])[np.arange(n) % 2]})
    (root / "recipe.json").write_text(json.dumps({"task": "order", "seed": 0}))
    return root


def train_args(root, out, epochs):
    return ["train", "--data", str(root / "train.h5"), "--test", str(root / "test.h5"),
            "--out", str(out), "--preset", "tiny", "--epochs", str(epochs), "--dt-us", "5000",
            "--downsample", "1", "--lr", "0.03"]


def test_tiny_network_learns_the_temporal_order_task(order_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # run from elsewhere: the card names the code's commit
    assert main([*train_args(order_data, tmp_path / "ck", 10), "--description", "a b order"]) == 0
    log = read_log(tmp_path / "ck")
    assert log[-1]["test_acc"] > 0.9
    card = checkpoint.read_card(tmp_path / "ck")
    assert card.description == "a b order"
    assert {"platform", "cpus", "backend"} <= set(card.provenance["machine"])
    assert card.metrics["test_accuracy"] == log[-1]["test_acc"]
    assert card.provenance["command"].startswith("s5rf train")
    assert card.provenance["data"]["recipe"] == {"task": "order", "seed": 0}  # from recipe.json
    repo = Path(__file__).parents[2]
    if (repo / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=repo, check=True).stdout.strip()
        assert card.provenance["commit"] == head
    assert (tmp_path / "ck" / "training_curves.png").stat().st_size > 1000


def test_train_refuses_an_unknown_preset_or_a_test_file_of_other_classes(order_data, tmp_path,
                                                                         capsys):
    args = train_args(order_data, tmp_path / "ck", 1)
    assert main([*args, "--preset", "shdd"]) == 2
    assert "unknown preset 'shdd'" in capsys.readouterr().err
    assert main([*args, "--dropout", "0.3"]) == 2  # the tiny preset's two layers
    assert "a 2-layer network has none" in capsys.readouterr().err
    events, labels = order_task(16, np.random.default_rng(1))
    write_shd(tmp_path / "other.h5", events, labels, keys=["w", "x", "y", "z"], channels=40)
    args[args.index("--test") + 1] = str(tmp_path / "other.h5")
    assert main(args) == 2
    assert "keys ['w', 'x', 'y', 'z'], not ['ab', 'ba', 'cd', 'dc']" in capsys.readouterr().err
    assert main([*train_args(order_data, tmp_path / "ck", 1), "--train-filter", "engine==x"]) == 2
    assert re.search(r"no metadata field 'engine'; \S+ has speaker", capsys.readouterr().err)
    assert not (tmp_path / "ck").exists()


def test_a_stopped_run_resumes_to_the_parameters_of_an_unbroken_one(order_data, tmp_path,
                                                                     monkeypatch):
    from model import plots

    class Killed(Exception):
        pass

    plot = plots.plot_training

    def killed_in_epoch_3(log, path):  # after the epoch's log line, before its saved state
        if len(log) == 3:
            raise Killed
        plot(log, path)

    monkeypatch.setattr(plots, "plot_training", killed_in_epoch_3)
    with pytest.raises(Killed):
        main(train_args(order_data, tmp_path / "ck", 4))
    monkeypatch.undo()
    first = read_log(tmp_path / "ck")
    steps, firsts = [], []

    @contextlib.contextmanager
    def epoch_bar(epochs, first):
        firsts.append(first)
        yield lambda epoch, step, total, loss: steps.append((epoch, epochs, step, total))

    monkeypatch.setattr(cli.train, "epoch_bar", epoch_bar)
    assert main(train_args(order_data, tmp_path / "ck", 4)) == 0
    monkeypatch.undo()
    assert firsts == [3] and sorted({s[:2] for s in steps}) == [(3, 4), (4, 4)]  # resumed
    assert steps[-1][2] == steps[-1][3] > 1  # and each epoch's steps
    log = read_log(tmp_path / "ck")
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    assert log[:2] == first[:2]  # epochs 1-2 were not run again (their timings would differ)
    assert main(train_args(order_data, tmp_path / "unbroken", 4)) == 0
    resumed, unbroken = (checkpoint.load(tmp_path / d).params for d in ("ck", "unbroken"))
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, resumed, unbroken))


def split_file(path, first, out):
    """``path`` (SHD layout) as two files: its first ``first`` recordings in ``out/a``, the
    rest in ``out/b``, each under ``path``'s name."""
    with open_dataset(path) as whole:
        recordings = [whole[i][0] for i in range(len(whole))]
        labels, speakers = whole.labels, whole.extra("speaker")
    parts = [out / "a" / path.name, out / "b" / path.name]
    for part, sel in zip(parts, (slice(0, first), slice(first, None)), strict=True):
        part.parent.mkdir(exist_ok=True)
        write_shd(part, recordings[sel], labels[sel], keys=whole.keys, channels=40,
                  extra={"speaker": speakers[sel]})
    return parts


def test_several_training_files_train_as_one_file_of_them_all(order_data, tmp_path, capsys):
    """The training file in two parts, in folders of their own (one beside a recipe): the
    run of the whole file, and the card names each part and its recipe."""
    parts = split_file(order_data / "train.h5", 200, tmp_path)
    (tmp_path / "a" / "recipe.json").write_text(json.dumps({"part": "a"}))
    args = train_args(order_data, tmp_path / "parts", 1)
    data = args.index("--data") + 1
    args[data:data + 1] = [str(p) for p in parts]
    assert main(args) == 0
    card = checkpoint.read_card(tmp_path / "parts")
    assert card.provenance["data"]["train"] == [str(p) for p in parts]
    assert card.provenance["data"]["recipe"] == [{"part": "a"}, None]
    # the same data, in the same order: the whole file's run, which finds it done already
    capsys.readouterr()
    assert main(train_args(order_data, tmp_path / "parts", 1)) == 0
    assert "has done its 1 epochs already" in capsys.readouterr().err
    assert main(train_args(order_data, tmp_path / "whole", 1)) == 0
    split, whole_run = (checkpoint.load(tmp_path / d).params for d in ("parts", "whole"))
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, split, whole_run))
    events, labels = order_task(16, np.random.default_rng(1))
    write_shd(tmp_path / "other.h5", events, labels, keys=["w", "x", "y", "z"], channels=40)
    args[args.index("--out") + 1] = str(tmp_path / "refused")
    assert main([*args[:2], str(tmp_path / "other.h5"), *args[2:]]) == 2
    assert (f"{parts[0]} does not match {tmp_path / 'other.h5'}: keys ['ab', 'ba', 'cd', 'dc'], "
            "not ['w', 'x', 'y', 'z']" in capsys.readouterr().err)
    assert not (tmp_path / "refused").exists()


def test_a_fresh_run_into_a_shipped_checkpoint_starts_a_fresh_log(order_data, tmp_path):
    main(train_args(order_data, tmp_path / "ck", 3))
    figures = [tmp_path / "ck" / name for name in (checkpoint.CONFUSION_PNG, checkpoint.EARLY_PNG)]
    assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data",
                 str(order_data / "test.h5"), "--update-card"]) == 0
    assert all(png.exists() for png in figures)
    (tmp_path / "ck" / "train_state.msgpack").unlink()  # as in a clone: it is not shipped
    main(train_args(order_data, tmp_path / "ck", 2))
    log = read_log(tmp_path / "ck")
    assert [r["epoch"] for r in log] == [1, 2]
    card = checkpoint.read_card(tmp_path / "ck")
    assert card.metrics["train_seconds"] == pytest.approx(sum(r["seconds"] for r in log))
    assert "eval" not in card.metrics and not any(png.exists() for png in figures)  # the old's


def test_an_eval_whose_figure_fails_leaves_the_checkpoint_as_it_was(order_data, tmp_path,
                                                                        monkeypatch):
    """The card's figures and numbers are written after the figures asked for elsewhere: it
    redrew confusion.png, then failed, leaving the card's numbers and figure apart."""
    from model import plots

    main(train_args(order_data, tmp_path / "ck", 1))
    before = {p.name: p.read_bytes() for p in (tmp_path / "ck").iterdir()}

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_early_accuracy", disk_full)
    for elsewhere in (["--early-png", str(tmp_path / "early.png")], []):  # or the card's own
        with pytest.raises(OSError, match="No space left"):
            main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data",
                  str(order_data / "test.h5"), "--update-card", *elsewhere])
        assert {p.name: p.read_bytes() for p in (tmp_path / "ck").iterdir()} == before


def test_eval_reports_accuracy_spikes_and_synops(order_data, tmp_path, capsys):
    main(train_args(order_data, tmp_path / "ck", 6))
    capsys.readouterr()
    # Without --update-card the checkpoint's files stay as they are.
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ck").iterdir()}
    assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data",
                 str(order_data / "test.h5"), "--json", "--early-png",
                 str(tmp_path / "early.png")]) == 0
    capsys.readouterr()
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ck").iterdir()} == before
    assert (tmp_path / "early.png").exists()
    assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data",
                 str(order_data / "test.h5"), "--json", "--update-card"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["samples"] == 128
    assert len(metrics["commit"]) == 40  # the checkout the figures were measured at
    assert metrics["machine"]["cpus"] >= 1 and metrics["date"].endswith("+00:00")
    assert set(metrics["accuracy_vs_fraction_seen"]) == {"0.1", "0.25", "0.5", "0.75", "1.0"}
    assert len(metrics["mean_spikes_per_sample_per_layer"]) == 2
    assert metrics["synops_per_sample"] > 0
    assert sum(map(sum, metrics["confusion"])) == 128
    card = checkpoint.read_card(tmp_path / "ck")
    assert card.metrics["eval"]["accuracy"] == metrics["accuracy"]
    assert metrics["accuracy"] == card.metrics["test_accuracy"]  # as training measured it
    assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data",
                 str(order_data / "test.h5"), "--json", "--scan", "associative"]) == 0
    parallel = json.loads(capsys.readouterr().out)  # a GPU's scan, the same network
    assert parallel["confusion"] == metrics["confusion"]
    assert parallel["command"].endswith("--scan associative")
    assert {"confusion.png", "early_accuracy.png"} <= {p.name for p in (tmp_path / "ck").iterdir()}
    assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data",
                 str(order_data / "test.h5"), "--filter", "engine=espeak-ng"]) == 2
    assert "s5rf eval: filter 'engine=espeak-ng' must look like" in capsys.readouterr().err


def test_eval_by_a_metadata_field_reports_each_values_accuracy(order_data, tmp_path, capsys):
    main(train_args(order_data, tmp_path / "ck", 2))
    capsys.readouterr()
    eval_args = ["eval", "--checkpoint", str(tmp_path / "ck"), "--data",
                 str(order_data / "test.h5")]
    assert main([*eval_args, "--by", "speaker", "--filter", "speaker!=bob", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy_by"]["speaker"] == {
        "ann": {"samples": 64, "accuracy": metrics["accuracy"]}}
    assert main([*eval_args, "--by", "speaker"]) == 0
    assert "speaker bob: accuracy" in capsys.readouterr().out
    assert main([*eval_args, "--by", "engine"]) == 2
    assert "no metadata field 'engine'; " in capsys.readouterr().err


def test_eval_of_several_files_is_eval_of_one_file_of_them_all(order_data, tmp_path, capsys):
    main(train_args(order_data, tmp_path / "ck", 2))
    parts = split_file(order_data / "test.h5", 50, tmp_path)
    scores = []
    for data in ([order_data / "test.h5"], parts):
        capsys.readouterr()
        assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data", *map(str, data),
                     "--by", "speaker", "--filter", "speaker!=bob", "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out)
        scores.append({k: metrics[k] for k in ("samples", "accuracy", "confusion", "accuracy_by",
                                               "synops_per_sample")})
    assert scores[0] == scores[1] and scores[0]["samples"] == 64
    events, labels = order_task(16, np.random.default_rng(1))
    write_shd(tmp_path / "other.h5", events, labels, keys=["w", "x", "y", "z"], channels=40)
    assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data", str(parts[0]),
                 str(tmp_path / "other.h5")]) == 2
    assert f"{tmp_path / 'other.h5'} has keys ['w', 'x', 'y', 'z']" in capsys.readouterr().err


def test_samples_are_chosen_among_the_recordings_a_filter_keeps(order_data, tmp_path, capsys):
    main(train_args(order_data, tmp_path / "ck", 1))
    args = ["data", "samples", "--data", str(order_data / "test.h5"), "--checkpoint",
            str(tmp_path / "ck"), "--per-class", "3"]
    assert main([*args, "--out", str(tmp_path / "all")]) == 0
    assert main([*args, "--out", str(tmp_path / "ann"), "--filter", "speaker==ann"]) == 0
    capsys.readouterr()
    sources = {name: [int(s.source.split("[")[1][:-1]) for s in read_index(tmp_path / name)]
               for name in ("all", "ann")}
    assert len(sources["ann"]) == 12 and all(i % 2 == 0 for i in sources["ann"])  # ann's
    assert any(i % 2 for i in sources["all"])


def test_event_augmentation_keeps_events_sorted_and_in_range():
    events, _ = order_task(1, np.random.default_rng(1))
    aug = EventAugment(jitter_us=2000, drop=0.3, max_shift=3)
    out = augment_events(events[0], SPEC, aug, np.random.default_rng(2))
    assert 0 < len(out) < len(events[0])
    assert np.all(np.diff(out["t"]) >= 0) and out["channel"].max() < 40


def test_shift_and_mask_draws_the_shift_then_the_masks():
    bins = (np.random.default_rng(0).random((4, 30, 40)) < 0.3).astype(np.float32)
    lengths = np.array([30, 20, 10, 5])
    rng = np.random.default_rng(7)
    assert shift_and_mask(bins, lengths, rng, SPEC, False, 0, 0) is bins  # nothing drawn
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    expected = mask_time_channels(random_shift(bins, a, SPEC), lengths, a, 5, 4)
    np.testing.assert_array_equal(shift_and_mask(bins, lengths, b, SPEC, True, 5, 4), expected)
    assert a.random() == b.random()  # the same draws, in the same order


def test_cutmix_targets_stay_distributions():
    rng = np.random.default_rng(0)
    bins = (rng.random((8, 50, 10)) < 0.3).astype(np.float32)
    targets = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 8)]
    mixed, t = cutmix(bins, np.full(8, 50), targets, rng)
    np.testing.assert_allclose(t.sum(1), 1, rtol=1e-6)
    assert mixed.shape == bins.shape


def test_cutmix_weighs_only_what_a_sample_shows_within_its_length():
    """A short sample padded to the batch's length keeps its own label for a window pasted
    past its end: the network never sees those bins."""
    bins = np.zeros((2, 40, 2), np.float32)
    bins[0, :10, 0] = 1  # 10 bins long, feature 0
    bins[1, :, 1] = 1  # 40 bins long, feature 1
    targets = np.eye(2, dtype=np.float32)
    for seed in range(50):
        rng = np.random.default_rng(seed)
        mixed, t = cutmix(bins, np.array([10, 40]), targets, rng)
        if not mixed[0, :10, 1].any() and mixed[0, 10:, 1].any():  # pasted past its end only
            np.testing.assert_allclose(t[0], [1, 0])
            return
    raise AssertionError("no seed pasted a window only past the short sample's end")


def test_cutmix_mixes_a_batch_with_padding_rows_and_leaves_those_rows_alone():
    """The last batch of an epoch has rows of length 0 (weight 0): the others are mixed."""
    rng = np.random.default_rng(1)
    bins = np.ones((4, 30, 3), np.float32) * np.arange(4, dtype=np.float32)[:, None, None]
    lengths = np.array([30, 30, 30, 0])
    bins[3] = 0
    targets = np.eye(4, dtype=np.float32)
    mixed, t = cutmix(bins, lengths, targets, rng)
    assert not np.array_equal(mixed[:3], bins[:3])  # the real rows were mixed
    np.testing.assert_array_equal(mixed[3], bins[3])
    np.testing.assert_array_equal(t[3], targets[3])
    np.testing.assert_allclose(t.sum(1), 1, rtol=1e-6)


def test_time_masks_and_cutmix_windows_fall_within_the_recordings_not_their_padding():
    """Short recordings padded to a long batch: every draw lands where there are bins."""
    rng = np.random.default_rng(0)
    bins = np.ones((4, 400, 3), np.float32)
    bins[:, 20:] = 0  # 20 bins long, padded to 400
    lengths = np.full(4, 20)
    masked = [mask_time_channels(bins, lengths, rng, 5, 0) for _ in range(20)]
    assert all(not m[:, 20:].any() for m in masked)
    assert sum(int((m[:, :20] == 0).any()) for m in masked) >= 15  # spans of 0 bins are rare
    bins[:, :20] *= np.arange(1, 5, dtype=np.float32)[:, None, None]  # rows tell apart
    targets = np.eye(4, dtype=np.float32)
    mixes = [cutmix(bins, lengths, targets, np.random.default_rng(seed)) for seed in range(20)]
    assert sum(not np.array_equal(mixed, bins) for mixed, _ in mixes) >= 15


def test_the_test_set_does_not_change_training(order_data, tmp_path):
    """Its recordings' lengths once set the padding of training batches (and so where masks
    and windows landed)."""
    events, labels = order_task(32, np.random.default_rng(3), duration_us=400_000)
    write_shd(tmp_path / "long_test.h5", events, labels, keys=["ab", "ba", "cd", "dc"],
              channels=40)
    args = [*train_args(order_data, tmp_path / "a", 1), "--mask-time", "8"]
    assert main(args) == 0
    args[args.index("--test") + 1] = str(tmp_path / "long_test.h5")
    args[args.index("--out") + 1] = str(tmp_path / "b")
    assert main(args) == 0
    a, b = (checkpoint.load(tmp_path / d).params for d in "ab")
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, a, b))


def test_recordings_cut_in_training_are_cut_alike_in_eval(order_data, tmp_path, capsys):
    assert main([*train_args(order_data, tmp_path / "ck", 1), "--max-ms", "100"]) == 0
    card = checkpoint.read_card(tmp_path / "ck")
    assert card.training is not None and card.training.max_bins == 20  # 100 ms of 5 ms bins
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data",
                 str(order_data / "test.h5"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["mean_bins_per_sample"] <= 20
    assert metrics["accuracy"] == pytest.approx(card.metrics["test_accuracy"])


class Draw:
    """An rng whose one uniform draw is ``u``."""

    def __init__(self, u):
        self.u = u

    def random(self):
        return self.u


def test_random_shift_rolls_cochlea_channels_and_moves_dvs_pixels_along_their_row():
    coch = np.zeros((1, 1, 40), np.float32)
    coch[0, 0, 39] = 1
    assert random_shift(coch, Draw(0.1), SPEC)[0, 0, 0] == 1  # up by one, wrapping
    dvs_spec = InputSpec(sensor="dvs", width=4, height=3, dt_us=1000)
    grid = np.zeros((1, 1, 2, 3, 4), np.float32)
    grid[0, 0, 0, 1, 3] = 1  # polarity 0, row 1, last column
    grid[0, 0, 1, 2, 0] = 1  # polarity 1, row 2, first column
    flat = grid.reshape(1, 1, -1)
    up = random_shift(flat, Draw(0.1), dvs_spec).reshape(grid.shape)
    assert up[0, 0, 0, 1, 0] == 1 and up[0, 0, 1, 2, 1] == 1 and up.sum() == 2
    down = random_shift(flat, Draw(0.9), dvs_spec).reshape(grid.shape)
    assert down[0, 0, 0, 1, 2] == 1 and down[0, 0, 1, 2, 3] == 1 and down.sum() == 2
    assert random_shift(flat, Draw(0.5), dvs_spec) is flat


def test_a_run_with_other_settings_does_not_resume_anothers_state(order_data, tmp_path, capsys):
    out = tmp_path / "ck"
    assert main(train_args(order_data, out, 1)) == 0
    assert main([*train_args(order_data, out, 2), "--lr", "0.05"]) == 2
    assert "train_state.msgpack is from a run with other settings" in capsys.readouterr().err
    assert main([*train_args(order_data, out, 1), "--weight-decay", "0.01"]) == 2
    assert "from a run with other settings" in capsys.readouterr().err
    # the learning rate's schedule spans the epochs: more of them is another run
    assert main(train_args(order_data, out, 2)) == 2
    assert "(--epochs included)" in capsys.readouterr().err
    # data of the same size, generated anew
    events, labels = order_task(512, np.random.default_rng(5))
    write_shd(tmp_path / "train.h5", events, labels, keys=["ab", "ba", "cd", "dc"], channels=40)
    args = train_args(order_data, out, 1)
    args[args.index("--data") + 1] = str(tmp_path / "train.h5")
    assert main(args) == 2
    capsys.readouterr()
    assert main(train_args(order_data, out, 1)) == 0  # the same run, done: nothing to do
    assert "has done its 1 epochs already" in capsys.readouterr().err
    assert [r["epoch"] for r in read_log(out)] == [1]


def test_bad_files_flags_and_filters_end_in_one_line_and_exit_2(order_data, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert main(train_args(order_data, ck, 1)) == 0
    capsys.readouterr()
    cases = [
        (["eval", "--checkpoint", str(ck), "--data", str(tmp_path / "nope.h5")],
         "cannot read"),
        (["eval", "--checkpoint", str(tmp_path), "--data", str(order_data / "test.h5")],
         "model.json"),
        (["train", *train_args(order_data, tmp_path / "x", 1)[1:], "--train-filter",
          "label!=0"], "no metadata field 'label'"),
    ]
    events, labels = order_task(16, np.random.default_rng(2))
    write_shd(tmp_path / "reordered.h5", events, labels, keys=["ba", "ab", "cd", "dc"],
              channels=40)
    cases.append((["eval", "--checkpoint", str(ck), "--data", str(tmp_path / "reordered.h5")],
                  "keys ['ba', 'ab', 'cd', 'dc']; model 'ck' takes ['ab', 'ba', 'cd', 'dc']"))
    cases.append((["data", "samples", "--data", str(order_data / "test.h5"), "--checkpoint",
                   str(ck), "--out", str(tmp_path / "samples"), "--max-events", "1"],
                  "has no recording with events and at most 1 of them"))
    fresh = train_args(order_data, tmp_path / "x", 1)
    cases += [  # sizes each flag may take, but not with the others or the data
        ([*fresh, "--downsample", "3"], "channels=40 is not divisible by downsample=3"),
        ([*fresh, "--neurons", "30"], "30 neurons cannot be split into 8 blocks"),
        ([*fresh, "--max-ms", "1"], "--max-ms 1.0 is shorter than one bin (5000 us)"),
        ([*fresh, "--name", "team/shd v2"], "model name 'team/shd v2' must be 1 to 64"),
        ([*fresh, "--name", "shd\n"], "model name 'shd\\n' must be 1 to 64"),
    ]
    diverging = [*train_args(order_data, tmp_path / "nan", 2), "--lr", "1e38", "--lr-ssm", "1e38"]
    cases.append((diverging, "the training loss turned nan at epoch 1"))
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "x").exists()  # refused before anything was written
    assert not (tmp_path / "samples").exists()  # (it left an index.json of no samples)
    assert not (tmp_path / "nan" / "params.msgpack").exists()  # no NaN weights to serve
    for argv, words in [  # argparse's own exit 2
            (["data", "dvs", "--out", str(tmp_path / "d"), "--limit", "0"], "at least 1"),
            ([*fresh, "--batch-size", "0"], "--batch-size: must be at least 1"),
            ([*fresh, "--epochs", "-1"], "--epochs: must be at least 1"),
            ([*fresh, "--dropout", "1"], "--dropout: must be at least 0 and below 1"),
            ([*fresh, "--mask-time", "-1"], "--mask-time: must be 0 or more"),
            ([*fresh, "--jitter-us", "-5"], "--jitter-us: must be 0 or more"),
            (["eval", "--checkpoint", str(ck), "--data", str(order_data / "test.h5"),
              "--batch-size", "0"], "--batch-size: must be at least 1")]:
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2 and words in capsys.readouterr().err, argv


def test_recordings_without_a_single_bin_are_evaluated_not_a_crash(order_data, tmp_path,
                                                                     capsys):
    ck = tmp_path / "ck"
    assert main(train_args(order_data, ck, 1)) == 0
    empty = np.zeros(0, EVENT_DTYPES["cochlea"])
    write_shd(tmp_path / "empty.h5", [empty, empty], [0, 1], keys=["ab", "ba", "cd", "dc"],
              channels=40)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(ck), "--data", str(tmp_path / "empty.h5"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 2
