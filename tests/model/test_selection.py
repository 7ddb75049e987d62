"""model/selection.py: selecting recordings of dataset files by their metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.batching import load_binned
from model.datasets import EventDataset, open_dataset, write_shd
from model.errors import InputError
from model.events import make_events
from model.selection import parse_filter, select_files
from model.spec import InputSpec

SPEC = InputSpec(sensor="cochlea", channels=40, dt_us=5000)
ENGINES = ["espeak-ng", "festival-hts", "espeak-ng", "freetts"]


def labels_kept(files: list[EventDataset], where: str | None) -> list[int]:
    """The labels of the recordings ``where`` keeps, as read."""
    return load_binned(files, SPEC, select_files(files, where)).labels.tolist()


@pytest.fixture
def ds(tmp_path: Path) -> EventDataset:
    events = [make_events("cochlea", t=np.array([0, 1000 * i]), channel=np.array([i, 2 * i]))
              for i in range(len(ENGINES))]
    write_shd(tmp_path / "d.h5", events, [0, 1, 2, 3], keys=[str(i) for i in range(20)],
              extra={"engine": np.array(ENGINES)}, channels=40)
    return open_dataset(tmp_path / "d.h5")


@pytest.mark.parametrize(("where", "labels"), [
    (None, [0, 1, 2, 3]),
    ("engine==espeak-ng", [0, 2]),
    ("engine != espeak-ng", [1, 3]),
    ("engine==freetts", [3]),
    ("engine!=espeak-ng,engine!=freetts", [1]),
])
def test_a_filter_keeps_the_recordings_whose_field_matches(ds: EventDataset, where: str | None,
                                                            labels: list[int]) -> None:
    assert labels_kept([ds], where) == labels


@pytest.mark.parametrize("where", ["engine==festival", "engine!=festival"])
def test_a_value_no_recording_has_is_refused_with_the_values_there_are(
        ds: EventDataset, where: str) -> None:
    with pytest.raises(ValueError, match="no recording has engine='festival'; its values are "
                                         "espeak-ng, festival-hts, freetts"):
        select_files([ds], where)


@pytest.mark.parametrize("expr", ["engine=espeak-ng", "engine==freetts,", "engine==a,,b==c"])
def test_a_condition_without_an_operator_is_refused(expr: str) -> None:
    with pytest.raises(ValueError, match="FIELD==VALUE or FIELD!=VALUE"):
        parse_filter(expr)


def test_a_field_the_file_lacks_is_refused_with_the_fields_it_has(ds: EventDataset) -> None:
    with pytest.raises(ValueError, match=r"no metadata field 'voice'; .* has engine"):
        select_files([ds], "voice==kal_diphone")


def test_a_filter_that_keeps_nothing_is_refused(ds: EventDataset) -> None:
    with pytest.raises(InputError, match="'engine!=espeak-ng,engine!=festival-hts,"
                                         "engine!=freetts' keeps none of the 4 recordings"):
        select_files([ds], "engine!=espeak-ng,engine!=festival-hts,engine!=freetts")


def test_several_files_are_selected_from_as_one(ds: EventDataset, tmp_path: Path) -> None:
    """A value one file lacks keeps nothing there and is no typo; one no file has is."""
    events = [make_events("cochlea", t=np.array([0]), channel=np.array([i])) for i in (7, 9)]
    write_shd(tmp_path / "more.h5", events, [4, 5], keys=[str(i) for i in range(20)],
              extra={"engine": np.array(["pico", "pico"])}, channels=40)
    with open_dataset(tmp_path / "more.h5") as more:
        assert load_binned([ds, more], SPEC).labels.tolist() == [0, 1, 2, 3, 4, 5]
        assert labels_kept([ds, more], "engine==pico") == [4, 5]
        assert labels_kept([ds, more], "engine!=espeak-ng") == [1, 3, 4, 5]
        assert [b[0].nonzero()[0].tolist() for b in load_binned(
            [more, ds], SPEC, select_files([more, ds], "engine==pico")).bins] == [[7], [9]]
        with pytest.raises(InputError, match="its values are espeak-ng, festival-hts, freetts, "
                                             "pico"):
            select_files([ds, more], "engine==festival")
        with pytest.raises(InputError, match=r"keeps none of the 6 recordings of \S+d.h5 \+ "):
            select_files([ds, more], "engine==pico,engine==freetts")
