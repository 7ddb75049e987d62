"""scripts/leave_one_engine_out.py: the first-N-recordings copy it trains on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model import speech_data as sd
from model.datasets import open_dataset
from scripts.leave_one_engine_out import first_recordings

pytestmark = pytest.mark.engines


def test_first_recordings_keeps_the_first_training_recordings_and_the_whole_test_split(
        tmp_path: Path) -> None:
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    full = tmp_path / "full"
    for _ in sd.generate(sd.Recipe(seed=5, n_train=6, n_test=2, channels=16), full, workers=1):
        pass
    part = first_recordings(full, 4, tmp_path / "part")
    with open_dataset(full / "train.h5") as a, open_dataset(part / "train.h5") as b:
        assert len(b) == 4
        for i in range(4):
            np.testing.assert_array_equal(a[i][0], b[i][0])
            assert a[i][1] == b[i][1]
    with open_dataset(full / "test.h5") as a, open_dataset(part / "test.h5") as b:
        assert len(a) == len(b) == 2
    assert json.loads((part / "recipe.json").read_text())["n_train"] == 4


def test_a_left_out_engine_takes_its_speakers_and_babble_out_of_training_too() -> None:
    from scripts.leave_one_engine_out import train_filter

    voices = {"freetts/kevin", "freetts/kevin16", "festival-diphone/kal_diphone",
              "festival-diphone/pc_diphone", "espeak-ng/m1", "festival-hts/slt"}
    assert train_filter("freetts", voices) == "engine!=freetts,voice!=kal_diphone"
    assert train_filter("festival-diphone", voices) == \
        "engine!=festival-diphone,voice!=kevin,voice!=kevin16"
    assert train_filter("espeak-ng", voices) == "engine!=espeak-ng,noise!=babble"
    assert train_filter("festival-hts", voices) == "engine!=festival-hts"


@pytest.mark.parametrize("flag", ["--train-filter", "--test-filter=engine==freetts", "--test",
                                  "--train-f=engine!=x"])
def test_flags_that_would_undo_a_fold_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str],
                                                  flag: str) -> None:
    from scripts import leave_one_engine_out

    monkeypatch.setattr("sys.argv", ["leave_one_engine_out.py", "--data", "nowhere", flag,
                                     "x", "--lr", "0.01"])
    with pytest.raises(SystemExit) as refused:
        leave_one_engine_out.main()
    assert refused.value.code == 2 and "are set per fold" in capsys.readouterr().err


def test_a_bare_double_dash_is_not_taken_for_a_fold_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts import leave_one_engine_out

    monkeypatch.setattr("sys.argv", ["leave_one_engine_out.py", "--data", "nowhere", "--",
                                     "--lr", "0.01"])
    monkeypatch.setattr(leave_one_engine_out, "run", lambda data, out, epochs, extra: {})
    leave_one_engine_out.main()  # no SystemExit: it got past the guard


def test_more_recordings_than_the_dataset_holds_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    from scripts import leave_one_engine_out

    (tmp_path / "recipe.json").write_text(json.dumps({"n_train": 6}))
    monkeypatch.setattr("sys.argv", ["leave_one_engine_out.py", "--data", str(tmp_path),
                                     "--recordings", "7"])
    with pytest.raises(SystemExit) as refused:
        leave_one_engine_out.main()
    assert refused.value.code == 2 and "holds 6 training recordings" in capsys.readouterr().err
