import h5py
import numpy as np
import pytest

from model.datasets import open_dataset, write_dvs, write_shd
from model.errors import InputError
from model.events import make_events


def test_reads_the_published_shd_layout(tmp_path):
    """A file written by hand exactly as SHD publishes it (float seconds, unsorted allowed)."""
    path = tmp_path / "shd_like.h5"
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float16))
        units = f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.uint16))
        times[0] = np.array([0.5, 0.001, 0.25], np.float16)
        units[0] = np.array([699, 0, 3], np.uint16)
        times[1] = np.array([], np.float16)
        units[1] = np.array([], np.uint16)
        f.create_dataset("labels", data=np.array([7, 19], np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"k{i}".encode() for i in range(20)]))
        f.create_dataset("extra/speaker", data=np.array([3, 4]))
        f.create_dataset("extra/sample_rate", data=48_000)  # a scalar: not per-sample metadata
    ds = open_dataset(path)
    assert ds.extra_fields() == ["speaker"]
    assert (ds.sensor, ds.channels, len(ds), ds.keys[19]) == ("cochlea", 700, 2, "k19")
    events, label = ds[0]
    assert label == 7
    np.testing.assert_array_equal(events["channel"], [0, 3, 699])
    np.testing.assert_array_equal(events["t"], [1000, 250_000, 500_000])
    assert len(ds[1][0]) == 0
    np.testing.assert_array_equal(ds.extra("speaker"), [3, 4])
    with pytest.raises(InputError, match=r"no metadata field 'sample_rate' with one value per "
                                         r"sample: .*extra/sample_rate has shape \(\) for 2 "
                                         r"samples; .* has speaker$"):
        ds.extra("sample_rate")  # there, but not one value per sample
    with pytest.raises(IndexError):
        ds[2]



def _shd_times(path, times: np.ndarray) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(times.dtype))[0] = times
        f.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))[0] = \
            np.zeros(len(times), np.uint16)
        f.create_dataset("labels", data=np.array([0], np.uint16))
        f.create_dataset("extra/keys", data=np.array([b"a"]))


@pytest.mark.parametrize(("times", "message"), [
    (np.array([0.0, 250_000.0]), r"sample 0 spans 250,000 s, over the hour a sample may: "
                                 r"SHD-layout spikes/times are seconds$"),
    (np.array([0.0, np.inf], np.float16),  # 250,000 (µs) is past float16's range: inf
     r"sample 0: column 't' has a non-finite value at index 1 \(SHD-layout spikes/times are "
     r"seconds\)$")])
def test_shd_times_in_the_wrong_unit_are_refused_naming_the_sample(tmp_path, times, message):
    _shd_times(tmp_path / "us.h5", times)
    with open_dataset(tmp_path / "us.h5") as ds, pytest.raises(InputError, match=message):
        ds[0]


def test_a_negative_time_is_refused_naming_the_sample(tmp_path):
    _shd_times(tmp_path / "neg.h5", np.array([0.5, -0.005]))
    with open_dataset(tmp_path / "neg.h5") as ds, pytest.raises(
            InputError, match=r"neg\.h5 sample 0 has a negative time, -0\.005 s: SHD-layout "
                              r"spikes/times are seconds, from the sample's start$"):
        ds[0]


def test_dvs_times_in_seconds_are_refused_naming_the_sample(tmp_path):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.attrs.update(sensor="dvs", width=4, height=4)
        for name, dtype, values in (("t", np.float64, [0.0, 0.5]), ("x", np.uint16, [0, 1]),
                                    ("y", np.uint16, [0, 1]), ("p", np.uint8, [0, 1])):
            f.create_dataset(f"events/{name}", (1,), dtype=h5py.vlen_dtype(dtype))[0] = \
                np.array(values, dtype)
        f.create_dataset("labels", data=np.array([0], np.uint16))
        f.create_dataset("extra/keys", data=np.array([b"a"]))
    with open_dataset(tmp_path / "s.h5") as ds, pytest.raises(
            InputError, match=r"s\.h5 sample 0: column 't' must hold integers; index 1 is 0\.5 "
                              r"\(DVS-layout events/t are microseconds\)$"):
        ds[0]

def test_text_metadata_reads_as_utf8_however_it_is_stored(tmp_path):
    """h5py writes str as variable-length UTF-8; others store fixed-length bytes."""
    path = tmp_path / "voices.h5"
    write_shd(path, [make_events("cochlea", t=np.array([0]), channel=np.array([1]))] * 2, [0, 1],
              keys=["a", "b"])
    with h5py.File(path, "a") as f:
        f.create_dataset("extra/vlen", data=["smith", "müller"], dtype=h5py.string_dtype())
        f.create_dataset("extra/fixed", data=np.array([b"smith", "müller".encode()]))
    with open_dataset(path) as ds:
        for field in ("vlen", "fixed"):
            assert ds.extra(field).tolist() == ["smith", "müller"], field
            assert ds.extra(field).dtype.kind == "U", field


def test_shd_writer_round_trips(tmp_path):
    ev = make_events("cochlea", t=np.array([0, 4000, 123_456]), channel=np.array([1, 2, 3]))
    write_shd(tmp_path / "a.h5", [ev], [5], keys=[str(i) for i in range(20)],
              extra={"engine": np.array(["espeak"])}, channels=40)
    ds = open_dataset(tmp_path / "a.h5")
    np.testing.assert_array_equal(ds[0][0], ev)
    assert ds.channels == 40 and list(ds.extra("engine")) == ["espeak"]


def test_dvs_layout_round_trips(tmp_path):
    ev = make_events("dvs", t=np.array([5, 10]), x=np.array([33, 0]), y=np.array([1, 2]),
                     p=np.array([1, 0]))
    write_dvs(tmp_path / "d.h5", [ev, ev[:1]], [3, 4], width=34, height=34,
              keys=[str(i) for i in range(10)])
    ds = open_dataset(tmp_path / "d.h5")
    assert (ds.sensor, ds.width, ds.height) == ("dvs", 34, 34)
    np.testing.assert_array_equal(ds[0][0], ev)
    assert ds[1][1] == 4


def test_an_unknown_layout_is_explained(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("labels", data=[1])
    with pytest.raises(ValueError, match="neither SHD/SSC layout"):
        open_dataset(tmp_path / "x.h5")


@pytest.mark.parametrize(("drop", "message"), [
    ("width", "no width and height attributes"),
    ("labels", "has no labels"),
    ("extra/keys", "has no extra/keys"),
])
def test_a_dvs_file_missing_part_of_its_layout_is_explained_and_closed(tmp_path, drop, message):
    ev = make_events("dvs", t=np.array([5]), x=np.array([1]), y=np.array([1]), p=np.array([1]))
    path = tmp_path / "d.h5"
    write_dvs(path, [ev], [0], width=34, height=34, keys=["0"])
    with h5py.File(path, "a") as f:
        if drop == "width":
            del f.attrs["width"]
        else:
            del f[drop]
    with pytest.raises(ValueError, match=message):
        open_dataset(path)
    with h5py.File(path, "w"):  # the reader let go of the file
        pass


def test_a_label_no_class_has_is_refused_when_the_file_is_opened(tmp_path):
    ev = make_events("cochlea", t=np.array([5]), channel=np.array([1]))
    write_shd(tmp_path / "s.h5", [ev, ev, ev], [0, 7, 1], keys=["a", "b"], channels=4)
    with pytest.raises(InputError, match=r"sample 1's label 7 names no class of extra/keys"):
        open_dataset(tmp_path / "s.h5")


def _shd_rows(path, labels: int, times: int, units: int) -> None:
    """An SHD-layout file whose labels, spikes/times and spikes/units have these row counts."""
    with h5py.File(path, "w") as f:
        for name, n, dtype in (("times", times, np.float64), ("units", units, np.uint16)):
            ds = f.create_dataset(f"spikes/{name}", (n,), dtype=h5py.vlen_dtype(dtype))
            for i in range(n):
                ds[i] = np.zeros(1, dtype)
        f.create_dataset("labels", data=np.zeros(labels, np.uint16))
        f.create_dataset("extra/keys", data=np.array([b"a"]))


@pytest.mark.parametrize(("rows", "message"), [
    ((10, 8, 8), "labels has 10 rows but spikes/times has 8"),  # an IndexError at sample 8
    ((8, 8, 6), "labels has 8 rows but spikes/units has 6"),  # the same
    ((5, 8, 8), "labels has 5 rows but spikes/times has 8"),  # 3 samples silently dropped
])
def test_shd_arrays_with_different_row_counts_are_refused_when_opened(tmp_path, rows, message):
    path = tmp_path / "rows.h5"
    _shd_rows(path, *rows)
    with pytest.raises(InputError, match=rf"rows\.h5: {message}; every sample needs one of each$"):
        open_dataset(path)
    with h5py.File(path, "w"):  # the reader let go of the file
        pass


@pytest.mark.parametrize("short", ["t", "x", "y", "p"])
def test_dvs_arrays_with_different_row_counts_are_refused_when_opened(tmp_path, short):
    ev = make_events("dvs", t=np.array([5]), x=np.array([1]), y=np.array([1]), p=np.array([1]))
    path = tmp_path / "d.h5"
    write_dvs(path, [ev, ev, ev], [0, 0, 0], width=34, height=34, keys=["0"])
    with h5py.File(path, "a") as f:  # the first two samples of that array only
        rows = f[f"events/{short}"][:2]
        del f[f"events/{short}"]
        f.create_dataset(f"events/{short}", data=rows, dtype=h5py.vlen_dtype(rows[0].dtype))
    with pytest.raises(InputError, match=rf"labels has 3 rows but events/{short} has 2; every "
                                         "sample needs one of each$"):
        open_dataset(path)


@pytest.mark.parametrize(("layout", "message"), [
    ("no units", r"has no spikes/units; see docs/datasets\.md$"),
    ("scalar labels", r"labels has shape \(\), not one row per sample"),
    ("text labels", r"labels are \|S4, not class ids \(integers indexing extra/keys\)$"),
])
def test_an_shd_file_missing_an_array_or_with_a_malformed_one_is_refused(tmp_path, layout, message):
    path = tmp_path / "s.h5"
    _shd_rows(path, 1, 1, 1)
    with h5py.File(path, "a") as f:
        if layout == "no units":
            del f["spikes/units"]
        else:
            del f["labels"]
            f.create_dataset("labels", data=np.uint16(0) if layout == "scalar labels"
                             else np.array([b"zero"]))
    with pytest.raises(InputError, match=message):
        open_dataset(path)


def test_a_per_sample_field_of_another_length_is_named_as_such(tmp_path):
    """A shorter extra/ array is no per-sample field: extra() says so rather than letting
    ``extra(name)[i]`` fail later, or calling the field absent."""
    path = tmp_path / "s.h5"
    _shd_rows(path, 3, 3, 3)
    with h5py.File(path, "a") as f:
        f.create_dataset("extra/speaker", data=np.array([1, 2]))
        f.create_dataset("extra/engine", data=np.array([b"a", b"b", b"c"]))
    with open_dataset(path) as ds:
        assert ds.extra_fields() == ["engine"]
        with pytest.raises(InputError, match=r"no metadata field 'speaker' with one value per "
                                             r"sample: .*s\.h5's extra/speaker has shape \(2,\) "
                                             r"for 3 samples; .* has engine$"):
            ds.extra("speaker")


def test_an_empty_file_or_a_folder_is_refused_as_such(tmp_path):
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.h5 is empty \(0 bytes\)$"):
        open_dataset(tmp_path / "empty.h5")
    with pytest.raises(InputError, match=r"is a folder; give an HDF5 file in it$"):
        open_dataset(tmp_path)  # it was h5py's "file read failed: ... errno = 21"
