"""model/batching.py: reading recordings into binned sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.batching import (
    MAX_RECORDING_BINS,
    BinnedSet,
    batches,
    load_binned,
    padded_length,
)
from model.datasets import open_dataset, write_shd
from model.errors import InputError
from model.events import make_events
from model.spec import InputSpec

SPEC = InputSpec(sensor="cochlea", channels=40, dt_us=5000)


def test_a_recording_that_cannot_be_binned_is_named_by_file_and_sample(tmp_path: Path) -> None:
    good = make_events("cochlea", t=np.array([5, 9]), channel=np.array([1, 2]))
    bad = make_events("cochlea", t=np.array([5, 9]), channel=np.array([1, 45]))
    write_shd(tmp_path / "s.h5", [good, bad], [0, 1], keys=["a", "b"], channels=40)
    spec = InputSpec(sensor="cochlea", dt_us=1000, channels=40, downsample=1)
    with pytest.raises(InputError, match=r"s\.h5 sample 1: channel 45 at index 1 is out of range"):
        load_binned(open_dataset(tmp_path / "s.h5"), spec)


def test_a_recording_over_the_bin_limit_is_refused_unless_recordings_are_cut(
        tmp_path: Path) -> None:
    """Times a thousand times too large (ms read as seconds) would pad every batch to
    hundreds of thousands of bins: refused, naming the sample, unless ``max_bins`` cuts."""
    last = MAX_RECORDING_BINS * SPEC.dt_us  # the first µs of one bin too many
    events = [make_events("cochlea", t=np.array([0, t]), channel=np.array([1, 2]))
              for t in (last - 1, last)]
    write_shd(tmp_path / "long.h5", events, [0, 1], keys=["a", "b"], channels=40)
    with open_dataset(tmp_path / "long.h5") as long:
        with pytest.raises(InputError, match=r"long\.h5 sample 1 spans 20,001 bins of 5000 µs"):
            load_binned(long, SPEC)
        assert [len(b) for b in load_binned(long, SPEC, [np.array([0])]).bins] == [20_000]
        assert [len(b) for b in load_binned(long, SPEC, max_bins=50).bins] == [1, 1]


def test_a_batch_larger_than_the_data_holds_only_its_recordings(tmp_path: Path) -> None:
    """--batch-size 100000 on 3 recordings asked for 247 GB of padding rows."""
    events = [make_events("cochlea", t=np.array([0, 9000 * i]), channel=np.array([1, 2]))
              for i in range(1, 4)]
    write_shd(tmp_path / "s.h5", events, [0, 1, 0], keys=["a", "b"], channels=40)
    data = load_binned(open_dataset(tmp_path / "s.h5"), SPEC)
    [(x, lengths, labels, weights)] = list(batches(data, 100_000, padded_length(data), SPEC))
    assert x.shape == (3, 6, 40) and weights.tolist() == [1, 1, 1]
    assert lengths.tolist() == [2, 4, 6] and labels.tolist() == [0, 1, 0]
    shapes = [b[0].shape for b in batches(data, 2, padded_length(data), SPEC)]
    assert shapes == [(2, 6, 40)] * 2  # one shape for every batch, the last one padded
    none = BinnedSet(events=[], bins=[], labels=np.zeros(0, np.int64))
    assert list(batches(none, 64, 1, SPEC)) == []
