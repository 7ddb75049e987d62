"""The commands' flag types: a value no command could use (a path it could not write, a count
out of range) is refused by argparse (exit 2, one line) before any work, and nothing is
written."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.flags import (
    MAX_CHANNELS,
    channels,
    image_file,
    npz_file,
    output_dir,
    output_file,
    output_file_with_folders,
)
from cli.main import main

# /proc takes no new file, even from root (whom permission bits let write anywhere)
UNWRITABLE = Path("/proc")


def refused(flag: Callable[[str], Path], path: Path) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        flag(str(path))
    return str(exc.value)


def test_channels_are_a_count_up_to_what_a_cochlea_can_hold() -> None:
    assert channels("700") == 700 and channels(str(MAX_CHANNELS)) == MAX_CHANNELS
    for text, words in (("0", "at least 1"), ("100000", "at most 4,096 (SHD's cochlea has 700)")):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(words)):
            channels(text)


def test_output_file_with_folders_takes_a_missing_folder_but_not_a_file_for_one(
        tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    new = tmp_path / "a" / "b" / "x.h5"
    assert output_file_with_folders(str(new)) == new and not (tmp_path / "a").exists()
    assert refused(output_file_with_folders, tmp_path) == f"{tmp_path} is a folder, not a file"
    assert refused(output_file_with_folders, tmp_path / "afile" / "x.h5") == (
        f"{tmp_path / 'afile'} is not a folder")


def test_output_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    assert output_file(str(tmp_path / "new.h5")) == tmp_path / "new.h5"
    assert output_file(str(tmp_path / "afile")) == tmp_path / "afile"  # replaced, as before
    assert refused(output_file, tmp_path) == f"{tmp_path} is a folder, not a file"
    assert refused(output_file, tmp_path / "nodir/x.h5") == (
        f"its folder {tmp_path / 'nodir'} does not exist")
    assert refused(output_file, tmp_path / "afile/x.h5") == f"{tmp_path / 'afile'} is not a folder"
    assert refused(output_file, UNWRITABLE / "o.npz").startswith("cannot create files in /proc (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # the probes left nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only folder")
def test_output_file_in_a_read_only_folder(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        assert "Permission denied" in refused(output_file, tmp_path / "x.h5")
    finally:
        tmp_path.chmod(0o700)


def test_npz_file_checks_the_path_given_and_the_one_written(tmp_path: Path) -> None:
    assert npz_file(str(tmp_path / "word")) == tmp_path / "word.npz"
    assert npz_file(str(tmp_path / "word.npz")) == tmp_path / "word.npz"
    (tmp_path / "d.npz").mkdir()
    assert refused(npz_file, tmp_path / "d") == f"{tmp_path / 'd.npz'} is a folder, not a file"
    assert refused(npz_file, tmp_path) == f"{tmp_path} is a folder, not a file"
    assert not (tmp_path.parent / f"{tmp_path.name}.npz").exists()


def test_image_file(tmp_path: Path) -> None:
    for name in ("c.png", "c.PDF", "c.svg"):
        assert image_file(str(tmp_path / name)) == tmp_path / name
    assert image_file(str(tmp_path / "c")) == tmp_path / "c.png"  # as matplotlib writes it
    assert refused(image_file, tmp_path / "c.txt").startswith("cannot draw a .txt figure; name "
                                                              "one of ")
    assert ".png" in refused(image_file, tmp_path / "c.txt")
    assert refused(image_file, tmp_path / "nodir/c.png") == (
        f"its folder {tmp_path / 'nodir'} does not exist")
    assert refused(image_file, tmp_path) == f"{tmp_path} is a folder, not a file"


def test_output_dir(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    assert output_dir(str(tmp_path)) == tmp_path  # resumed into
    assert output_dir(str(tmp_path / "a/b/c")) == tmp_path / "a/b/c"  # made with its parents
    assert refused(output_dir, tmp_path / "afile") == f"{tmp_path / 'afile'} is not a folder"
    assert refused(output_dir, tmp_path / "afile/x/y") == f"{tmp_path / 'afile'} is not a folder"
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    assert refused(output_dir, tmp_path / "dangling/x") == (
        f"{tmp_path / 'dangling'} is not a folder")
    assert refused(output_dir, UNWRITABLE / "ck").startswith("cannot create files in /proc (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dangling"]


def commands(tmp_path: Path) -> list[tuple[list[str], str]]:
    """Per command family, a bad output path and the words of its refusal (the inputs need
    not exist: the output is refused first)."""
    afile, folder = tmp_path / "afile", tmp_path / "folder"
    evaluate = ["eval", "--checkpoint", str(tmp_path / "ck"), "--data", str(tmp_path / "t.h5")]
    return [
        (["cochlea", str(tmp_path / "in.wav"), str(folder)], "argument out: "
         f"{folder} is a folder, not a file"),
        (["cochlea", str(tmp_path / "in.wav"), "/proc/o.npz"], "argument out: cannot create "),
        (["train", "--data", str(tmp_path / "a.h5"), "--test", str(tmp_path / "b.h5"), "--out",
          str(afile)], f"argument --out: {afile} is not a folder"),
        (["data", "dvs", "--out", str(afile), "--limit", "1"], f"{afile} is not a folder"),
        (["data", "speech", "--train", "1", "--test", "1", "--out", str(afile / "x")],
         f"argument --out: {afile} is not a folder"),
        (["data", "audio", str(tmp_path), "--out", str(folder)],
         f"argument --out: {folder} is a folder, not a file"),
        (["data", "audio", str(tmp_path), "--out", str(afile / "x.h5")],
         f"argument --out: {afile} is not a folder"),
        (["data", "samples", "--data", str(tmp_path / "t.h5"), "--checkpoint",
          str(tmp_path / "ck"), "--out", str(afile)], f"argument --out: {afile} is not a folder"),
        ([*evaluate, "--confusion-png", str(tmp_path / "nodir/c.png")],
         f"argument --confusion-png: its folder {tmp_path / 'nodir'} does not exist"),
        ([*evaluate, "--early-png", str(tmp_path / "c.txt")],
         "argument --early-png: cannot draw a .txt figure"),
    ]


def test_commands_refuse_an_unwritable_output_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "folder").mkdir()
    for argv, words in commands(tmp_path):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2, argv
        *_, last = err.strip().splitlines()
        assert err.startswith("usage: s5rf ") and last.startswith(
            f"s5rf {' '.join(argv[:2] if argv[0] == 'data' else argv[:1])}: error: "), err
        assert words in last and "Traceback" not in err, (argv, err)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder"], argv
        assert not any((tmp_path / "folder").iterdir()) and (tmp_path / "afile").read_text() == "x"
