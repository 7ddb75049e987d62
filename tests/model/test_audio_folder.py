"""model/audio_folder.py and ``s5rf data audio``: class folders of real recordings -> SHD layout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from cli.main import main
from model.audio_folder import encode_folder, encode_folder_seeds, find_files
from model.datasets import open_dataset
from model.digit_words import KEYS

CHANNELS = 32  # a small cochlea: the path is the same, the transfer matrix quick to build


def _word(rate: int, low_hz: float, seconds: float = 0.3) -> np.ndarray:
    """A voice-like burst (harmonics of 100 Hz from ``low_hz`` to twice that) between two
    stretches of silence (trimmed away), at ``rate`` Hz."""
    t = np.arange(int(seconds * rate)) / rate
    burst = sum(np.sin(2 * np.pi * f * t) for f in np.arange(low_hz, 2 * low_hz + 1, 100))
    silence = np.zeros(rate // 10)
    return np.concatenate([silence, 0.1 * burst, silence])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "recorded"
    (root / "zero").mkdir(parents=True)
    (root / "neun").mkdir()
    soundfile.write(root / "zero" / "a.wav", _word(8000, 300), 8000)
    stereo = np.stack([_word(44100, 3000), _word(44100, 3000)], axis=1)
    soundfile.write(root / "zero" / "b.flac", stereo, 44100)
    soundfile.write(root / "neun" / "c.wav", _word(16000, 1000), 16000)
    (root / "neun" / "notes.txt").write_text("not audio")
    return root


def _same_file(a: Path, b: Path) -> bool:
    """Two SHD-layout files hold the same recordings: labels, files and every event."""
    with open_dataset(a) as x, open_dataset(b) as y:
        return (list(x.labels) == list(y.labels)
                and list(x.extra("file")) == list(y.extra("file"))
                and all(np.array_equal(x[i][0], y[i][0]) for i in range(len(x))))


def test_every_recording_is_encoded_with_its_folders_label(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "recorded.h5"
    files = encode_folder(folder, out, KEYS, channels=CHANNELS)
    assert [(p.name, label) for p, label in files] == [("c.wav", 19), ("a.wav", 0), ("b.flac", 0)]
    with open_dataset(out) as ds:
        assert list(ds.labels) == [19, 0, 0]
        assert [str(f) for f in ds.extra("file")] == ["neun/c.wav", "zero/a.wav", "zero/b.flac"]
        for i in range(len(ds)):
            events, _ = ds[i]
            assert len(events) > 20
            assert np.all(np.diff(events["t"]) >= 0) and events["channel"].max() < CHANNELS
            # most spikes fall in the 0.3 s burst, which starts the recording (silence trimmed)
            assert np.mean(events["t"] < 300_000) > 0.6
        # a higher tone excites channels nearer the base (channel 0 = highest frequency)
        assert np.median(ds[2][0]["channel"]) < np.median(ds[1][0]["channel"])
    again = tmp_path / "again.h5"
    encode_folder(folder, again, KEYS, channels=CHANNELS)
    assert _same_file(out, again)


def test_several_seeds_at_once_write_what_one_seed_at_a_time_writes(
        folder: Path, tmp_path: Path) -> None:
    outs = {seed: tmp_path / f"seeds-{seed}.h5" for seed in (0, 3)}
    files = encode_folder_seeds(folder, outs, KEYS, channels=CHANNELS)
    for seed, out in outs.items():
        one = tmp_path / f"one-{seed}.h5"
        assert encode_folder(folder, one, KEYS, seed=seed, channels=CHANNELS) == files
        assert _same_file(out, one)
    with open_dataset(outs[0]) as a, open_dataset(outs[3]) as b:
        assert not np.array_equal(a[0][0], b[0][0])  # the seeds draw their own spikes


def test_two_processes_write_what_one_writes_and_report_each_file(folder: Path,
                                                                  tmp_path: Path) -> None:
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    encode_folder(folder, one, KEYS, channels=CHANNELS)
    done: list[tuple[int, int]] = []
    encode_folder(folder, two, KEYS, channels=CHANNELS, workers=2,
                  progress=lambda n, total: done.append((n, total)))
    assert done == [(1, 3), (2, 3), (3, 3)]
    assert _same_file(one, two)


def _count_encodings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files encoded from here on (in this process: one worker)."""
    from model import audio_folder

    encoded: list[str] = []
    encode = audio_folder.encode_file_draws

    def counted(path: Path, *args: object) -> list[np.ndarray]:
        encoded.append(path.name)
        return encode(path, *args)

    monkeypatch.setattr(audio_folder, "encode_file_draws", counted)
    return encoded


def test_a_run_that_stopped_resumes_with_the_files_it_had_encoded(
        folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent file, last in order, stops the run; once it is gone the rerun encodes
    nothing again and writes what one uninterrupted run writes."""
    fresh = tmp_path / "fresh.h5"
    encode_folder(folder, fresh, KEYS, channels=CHANNELS)
    silent = folder / "zwei" / "quiet.wav"
    silent.parent.mkdir()
    soundfile.write(silent, np.zeros(1600), 16_000)
    out = tmp_path / "resumed.h5"
    with pytest.raises(ValueError, match="silent"):
        encode_folder(folder, out, KEYS, channels=CHANNELS)
    assert not out.exists()
    assert len(list(Path(f"{out}.parts").glob("*.npz"))) == 3
    silent.unlink()
    encoded = _count_encodings(monkeypatch)
    done: list[tuple[int, int]] = []
    encode_folder(folder, out, KEYS, channels=CHANNELS,
                  progress=lambda n, total: done.append((n, total)))
    assert encoded == [] and done == []  # nothing left to encode, so nothing to report
    assert _same_file(out, fresh)
    assert not Path(f"{out}.parts").exists()


def test_parts_of_a_changed_file_or_another_seed_are_encoded_anew(
        folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from model.audio_folder import encode_files

    jobs = [(path, i) for i, (path, _) in enumerate(find_files(folder, KEYS))]
    parts = tmp_path / "parts"
    first = encode_files(jobs, [0], channels=CHANNELS, parts=parts)
    soundfile.write(folder / "zero" / "a.wav", _word(8000, 500), 8000)  # re-recorded
    encoded = _count_encodings(monkeypatch)
    again = encode_files(jobs, [0], channels=CHANNELS, parts=parts)
    assert encoded == ["a.wav"]
    assert np.array_equal(again[0][0], first[0][0]) and np.array_equal(again[2][0], first[2][0])
    assert not np.array_equal(again[1][0], first[1][0])
    encode_files(jobs, [1], channels=CHANNELS, parts=parts)
    assert encoded == ["a.wav", "c.wav", "a.wav", "b.flac"]


def test_ctrl_c_stops_every_process_with_one_line_and_keeps_the_parts(
        folder: Path, tmp_path: Path) -> None:
    """Ctrl-C reaches the process group once the first files are encoded: the command exits
    130 with one line and no worker's traceback, no process of it is left, and what was
    encoded stays for the next run."""
    for i in range(400):  # ~10 ms each: seconds of work left when the signal comes
        os.link(folder / "zero" / "a.wav", folder / "zero" / f"w{i:03d}.wav")
    out = tmp_path / "stopped.h5"
    parts = Path(f"{out}.parts")
    # Python's own Ctrl-C handler, even where pytest runs in the background (SIGINT ignored)
    command = [sys.executable, "-c", "import signal, sys; "
               "signal.signal(signal.SIGINT, signal.default_int_handler); "
               "from cli.main import main; sys.exit(main())",
               "data", "audio", str(folder), "--out", str(out), "--channels", str(CHANNELS),
               "--workers", "2"]
    with subprocess.Popen(command, cwd=Path(__file__).parents[2], stderr=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, text=True, start_new_session=True) as run:
        deadline = time.monotonic() + 120
        while not list(parts.glob("0*.npz")) and time.monotonic() < deadline:
            assert run.poll() is None, run.stderr.read() if run.stderr else ""
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "s5rf data: interrupted; run the same command again to resume")
    assert 0 < len(list(parts.glob("0*.npz"))) < 403 and not out.exists()
    for _ in range(100):  # the pool's workers and its resource tracker go with it
        try:
            os.killpg(run.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a process of the interrupted command is still running")


def test_long_recordings_of_many_lengths_share_a_few_transfer_matrices(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four words of 1.01 to 1.1 s as prepared (each of its own natural padded length) build
    one matrix; those under a second are encoded at the training clip length as before."""
    from model import cochlea

    built: list[int] = []
    transfer = cochlea.transfer_matrix

    def counted(n_samples: int, *args: int) -> np.ndarray:
        built.append(n_samples)
        return transfer(n_samples, *args)

    monkeypatch.setattr(cochlea, "transfer_matrix", counted)
    cochlea.membrane_filters.cache_clear()
    root = tmp_path / "long"
    (root / "zero").mkdir(parents=True)
    for i, seconds in enumerate((0.85, 0.88, 0.91, 0.94, 0.97, 1.0)):
        soundfile.write(root / "zero" / f"{i}.wav", _word(16000, 300, seconds), 16000)
    soundfile.write(root / "zero" / "short.wav", _word(16000, 300, 0.5), 16000)
    encode_folder(root, tmp_path / "long.h5", KEYS, channels=CHANNELS)
    assert sorted(built) == [cochlea.CLIP_SAMPLES, cochlea.bucketed_length(50_000)]


def test_a_folder_that_is_not_a_class_is_refused(folder: Path) -> None:
    (folder / "7").mkdir()
    with pytest.raises(ValueError, match=r"folder '7' .* is not a class key"):
        find_files(folder, KEYS)


def test_no_audio_is_refused(tmp_path: Path) -> None:
    (tmp_path / "eins").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        find_files(tmp_path, KEYS)


def test_cli_writes_the_file_and_reports_errors(folder: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "cli.h5"  # its folder made, as the flag's help says
    assert main(["data", "audio", str(folder), "--out", str(out),
                 "--channels", str(CHANNELS)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "out": str(out), "recordings": 3}
    assert main(["data", "audio", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "not a directory" in capsys.readouterr().err
    silent = folder / "drei" / "quiet.wav"
    silent.parent.mkdir(exist_ok=True)
    soundfile.write(silent, np.zeros(1600), 16_000)
    with pytest.raises(SystemExit) as refused:  # argparse's exit, before any work
        main(["data", "audio", str(folder), "--out", str(out), "--seed", "-1"])
    assert refused.value.code == 2 and "--seed: must be 0 or more" in capsys.readouterr().err
    assert main(["data", "audio", str(folder), "--out", str(out)]) == 2
    assert f"{silent}: the waveform is silent" in capsys.readouterr().err
