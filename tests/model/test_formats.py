"""Every reader round-trips a file written in its real format.

AEDAT4 files are written with iniVation's own dv-processing; EVT 2.0/3.0 and N-MNIST files
are encoded here word by word from the public format specifications, independently of the
readers (so a reader and a writer cannot share a mistake).
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from model.datasets import write_dvs, write_shd
from model.events import make_events
from model.formats import FormatError, read_recording


def dvs_events(n: int = 300, seed: int = 0, t0: int = 0, size: int = 34) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 2_000_000, n)) + t0
    return make_events("dvs", t=t, x=rng.integers(0, size, n), y=rng.integers(0, size, n),
                       p=rng.integers(0, 2, n))


def cochlea_events(n: int = 300, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events("cochlea", t=np.sort(rng.integers(0, 1_000_000, n)),
                       channel=rng.integers(0, 700, n))


# -- HDF5 -------------------------------------------------------------------------------------
def test_shd_sample_by_index(tmp_path: Path) -> None:
    samples = [cochlea_events(seed=s) for s in range(3)]
    write_shd(tmp_path / "shd.h5", samples, [0, 2, 1], keys=["zero", "one", "two"])
    events, sensor, meta = read_recording(tmp_path / "shd.h5", index=1)
    np.testing.assert_array_equal(events, samples[1])
    assert sensor == "cochlea"
    assert meta | {"label_name": "two", "samples": 3, "channels": 700} == meta
    with pytest.raises(FormatError, match="holds 3 samples; choose one"):
        read_recording(tmp_path / "shd.h5")
    with pytest.raises(FormatError, match="no index 3"):
        read_recording(tmp_path / "shd.h5", index=3)


def test_dvs_hdf5_single_sample_needs_no_index(tmp_path: Path) -> None:
    ev = dvs_events()
    write_dvs(tmp_path / "d.hdf5", [ev], [4], width=34, height=34, keys=list("abcde"))
    events, sensor, meta = read_recording(tmp_path / "d.hdf5", sensor="dvs")
    np.testing.assert_array_equal(events, ev)
    assert (sensor, meta["width"], meta["label_name"]) == ("dvs", 34, "e")


# -- AEDAT4 -----------------------------------------------------------------------------------
def test_aedat4_written_by_dv_processing(tmp_path: Path) -> None:
    dv = pytest.importorskip("dv_processing")
    ev = dvs_events(t0=1_700_000_000_000_000, size=32)  # DV timestamps are epoch µs
    path = tmp_path / "rec.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig(
        "DVXplorer_test", (32, 24)))
    store = dv.EventStore()
    for e in ev:
        store.push_back(int(e["t"]), int(e["x"]), int(e["y"]) % 24, bool(e["p"]))
    writer.writeEvents(store)
    del writer  # closes and finalises the file
    events, sensor, meta = read_recording(path)
    expected = ev.copy()
    expected["y"] %= 24
    np.testing.assert_array_equal(events, expected)
    assert sensor == "dvs"
    assert meta == {"format": "aedat4", "t0_us": int(ev["t"][0]), "stream": 0, "width": 32,
                    "height": 24}


# -- Prophesee EVT 2.0 / 3.0 ------------------------------------------------------------------
def encode_evt2(events: np.ndarray) -> bytes:
    """EVT 2.0: 32-bit words, type in bits 31..28. CD_OFF=0x0 / CD_ON=0x1 carry t[5:0] in
    27..22, x in 21..11, y in 10..0; EVT_TIME_HIGH=0x8 carries t[33:6] in 27..0."""
    words, high = [], None
    for e in events:
        t = int(e["t"])
        if t >> 6 != high:
            high = t >> 6
            words.append((0x8 << 28) | high)
        words.append((int(e["p"]) << 28) | ((t & 0x3F) << 22) | (int(e["x"]) << 11)
                     | int(e["y"]))
    return struct.pack(f"<{len(words)}I", *words)


def encode_evt3(events: np.ndarray) -> bytes:
    """EVT 3.0: 16-bit words, type in bits 15..12. EVT_TIME_HIGH=0x8 (t[23:12]),
    EVT_TIME_LOW=0x6 (t[11:0]), EVT_ADDR_Y=0x0 (y), EVT_ADDR_X=0x2 (polarity bit 11, x).
    Events of one time and row with consecutive x are sent as VECT_BASE_X=0x3 + VECT_12=0x4
    (bit i of the mask: an event at base_x + i)."""
    words: list[int] = []
    high = low = y = None
    i = 0
    while i < len(events):
        e = events[i]
        t = int(e["t"])
        if (t >> 12) & 0xFFF != high:  # 12 bits: wraps every 2**24 µs
            high = (t >> 12) & 0xFFF
            words.append((0x8 << 12) | high)
        if t & 0xFFF != low:
            low = t & 0xFFF
            words.append((0x6 << 12) | low)
        if int(e["y"]) != y:
            y = int(e["y"])
            words.append(y)
        run = 1  # a vector: same t, y, p and x increasing by one
        while (i + run < len(events) and run < 12 and events[i + run]["t"] == t
               and events[i + run]["y"] == y and events[i + run]["p"] == e["p"]
               and events[i + run]["x"] == e["x"] + run):
            run += 1
        if run > 1:
            words.append((0x3 << 12) | (int(e["p"]) << 11) | int(e["x"]))
            words.append((0x4 << 12) | ((1 << run) - 1))
        else:
            words.append((0x2 << 12) | (int(e["p"]) << 11) | int(e["x"]))
        i += run
    return struct.pack(f"<{len(words)}H", *words)


def with_vector(events: np.ndarray) -> np.ndarray:
    """Append five events of one instant in a row of adjacent pixels (an EVT3 vector)."""
    t = int(events["t"][-1]) + 10
    row = make_events("dvs", t=np.full(5, t), x=np.arange(100, 105), y=np.full(5, 7),
                      p=np.ones(5, np.uint8))
    return np.concatenate([events, row])


EVT3_HEADER = "% evt 3.0\n% format EVT3;height=480;width=640\n% end\n"


@pytest.mark.parametrize(("encode", "header", "fmt", "t0"), [
    (encode_evt2, "% evt 2.0\n% geometry 640x480\n% end\n", "evt2", 5_000_000),
    (encode_evt3, EVT3_HEADER, "evt3", 5_000_000),
    (encode_evt3, EVT3_HEADER, "evt3", 16_000_000),  # crosses the 24-bit time wrap-around
])
def test_prophesee_raw(tmp_path: Path, encode: Callable[[np.ndarray], bytes], header: str,
                       fmt: str, t0: int) -> None:
    ev = with_vector(dvs_events(size=480, t0=t0))
    path = tmp_path / "rec.raw"
    path.write_bytes(header.encode() + encode(ev))
    events, sensor, meta = read_recording(path)
    np.testing.assert_array_equal(events, ev)
    assert sensor == "dvs"
    assert meta == {"format": fmt, "t0_us": int(ev["t"][0]), "width": 640, "height": 480}


def written_by_expelliarmus(path: Path, events: np.ndarray, encoding: str) -> Path:
    from expelliarmus import Wizard

    written = np.zeros(len(events), [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    for field in "txyp":
        written[field] = events[field]
    Wizard(encoding=encoding).save(str(path), written)  # with its own header
    return path


def test_evt2_written_by_expelliarmus(tmp_path: Path) -> None:
    ev = dvs_events(size=480, t0=5_000_000)
    events, _, meta = read_recording(written_by_expelliarmus(tmp_path / "r.raw", ev, "evt2"))
    np.testing.assert_array_equal(events, ev)
    assert meta["format"] == "evt2"


def test_evt3_without_its_time_highs_is_refused_not_read_as_one_4_ms_span(
        tmp_path: Path) -> None:
    """expelliarmus' EVT 3.0 writer sends one EVT_TIME_HIGH and lets EVT_TIME_LOW wrap: gaps
    over 4,096 µs are lost (these events are 6.7 ms apart on average)."""
    path = written_by_expelliarmus(tmp_path / "r.raw", dvs_events(size=480), "evt3")
    with pytest.raises(FormatError, match=r"r\.raw: EVT_TIME_LOW goes back at word \d+ with no "
                                          r"EVT_TIME_HIGH since the word before: .* write EVT "
                                          r"2\.0 instead"):
        read_recording(path)


@pytest.mark.parametrize("header", [
    "% evt 4.0\n", "% end\n",
    "% evt 2.1\n% format EVT21;height=720;width=1280\n",  # 64-bit words, not EVT 2.0's
    "% evt 2.1\n",
])
def test_raw_without_an_evt_2_0_or_3_0_encoding_is_refused(tmp_path: Path, header: str) -> None:
    (tmp_path / "x.raw").write_bytes(f"{header}% end\n".encode() + b"\x00" * 8)
    with pytest.raises(FormatError, match=r"only EVT 2\.0 and EVT 3\.0 are read"):
        read_recording(tmp_path / "x.raw")


def test_an_evt2_file_with_no_events_is_empty_and_one_with_unknown_words_is_refused(
        tmp_path: Path) -> None:
    header = b"% evt 2.0\n% end\n"
    covered = struct.pack("<4I", 0x8 << 28 | 1, 0xA << 28 | 1, 0xE << 28, 0x8 << 28 | 2)
    for name, body in (("empty", b""), ("covered", covered)):  # time highs, trigger, others
        (tmp_path / f"{name}.raw").write_bytes(header + body)
        events, sensor, _ = read_recording(tmp_path / f"{name}.raw")
        assert len(events) == 0 and sensor == "dvs", name
    (tmp_path / "bad.raw").write_bytes(header + struct.pack("<I", 0x9 << 28))  # no such type
    with pytest.raises(FormatError, match=r"not EVT 2\.0"):
        read_recording(tmp_path / "bad.raw")


# -- N-MNIST ----------------------------------------------------------------------------------
def encode_nmnist(events: np.ndarray, overflow_after: int) -> bytes:
    """5-byte records: x, y, then polarity in bit 7 and the 23-bit timestamp. One overflow
    record (y=240) after ``overflow_after`` events adds 2**13 µs to the later timestamps."""
    out = bytearray()
    for i, e in enumerate(events):
        if i == overflow_after:
            out += bytes([0, 240, 0, 0, 0])
        t = int(e["t"]) - (2**13 if i >= overflow_after else 0)
        out += bytes([int(e["x"]), int(e["y"]), (int(e["p"]) << 7) | (t >> 16), (t >> 8) & 0xFF,
                      t & 0xFF])
    return bytes(out)


def test_nmnist_binary_with_an_overflow_record(tmp_path: Path) -> None:
    ev = dvs_events()
    ev["t"] = np.sort(ev["t"] % 300_000) + 2**13
    (tmp_path / "00002.bin").write_bytes(encode_nmnist(ev, overflow_after=100))
    events, sensor, meta = read_recording(tmp_path / "00002.bin")
    np.testing.assert_array_equal(events, ev)
    assert (sensor, meta["width"], meta["height"]) == ("dvs", 34, 34)
    (tmp_path / "bad.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(FormatError, match="5-byte"):
        read_recording(tmp_path / "bad.bin")


# -- numpy and CSV ----------------------------------------------------------------------------
def test_a_bin_file_is_read_as_n_mnist_whatever_its_first_bytes_and_n_caltech_has_no_size(
        tmp_path: Path) -> None:
    records = bytes([37, 32, 0x80, 0, 10, 200, 150, 0, 0, 20])  # begins like a RAW header
    (tmp_path / "img.bin").write_bytes(records)
    events, _, meta = read_recording(tmp_path / "img.bin")
    assert events.tolist() == [(10, 37, 32, 1), (20, 200, 150, 0)]
    assert "width" not in meta and "height" not in meta


def test_tonic_cochlea_npy_uses_x_for_the_channel(tmp_path: Path) -> None:
    ev = cochlea_events()
    tonic = np.zeros(len(ev), dtype=[("t", "<f8"), ("x", "<i8"), ("p", "<i8")])  # tonic SHD
    tonic["t"], tonic["x"], tonic["p"] = ev["t"], ev["channel"], 1
    np.save(tmp_path / "shd.npy", tonic)
    events, sensor, _ = read_recording(tmp_path / "shd.npy")
    np.testing.assert_array_equal(events, ev)
    assert sensor == "cochlea"


def test_npz_with_an_events_array_or_columns(tmp_path: Path) -> None:
    ev = dvs_events()
    np.savez(tmp_path / "a.npz", events=ev)
    np.savez(tmp_path / "b.npz", t=ev["t"], x=ev["x"], y=ev["y"], p=ev["p"])
    for name in ("a.npz", "b.npz"):
        events, sensor, _ = read_recording(tmp_path / name)
        np.testing.assert_array_equal(events, ev)
        assert sensor == "dvs"


def test_npz_beside_other_arrays_or_saved_unnamed(tmp_path: Path) -> None:
    """tonic saves sensor_size beside the columns; np.savez(f, events) names it arr_0."""
    ev = cochlea_events(n=6)
    np.savez(tmp_path / "a.npz", t=ev["t"], channel=ev["channel"], label=np.array(3),
             sensor_size=np.array([700, 1, 1]))
    np.savez(tmp_path / "b.npz", ev)
    np.savez(tmp_path / "c.npz", events=ev, meta=np.array({"sensor": "cochlea"}))  # pickled
    for name in ("a.npz", "b.npz", "c.npz"):
        np.testing.assert_array_equal(read_recording(tmp_path / name)[0], ev)


@pytest.mark.parametrize(("text", "error"), [
    ('\ufeff"T","Channel",note\n5,3,first\n7.0,1,second\n', None),  # a spreadsheet's
    ("t,channel\n5,3\n7.5,1\n", "whole numbers"),
    ("t,channel\n5,three\n", "could not convert"),
    ("time,chan\n5,3\n", "header's columns ['time', 'chan']"),
])
def test_csv_as_spreadsheets_write_it(tmp_path: Path, text: str, error: str | None) -> None:
    (tmp_path / "s.csv").write_text(text, encoding="utf-8")
    if error is None:
        assert read_recording(tmp_path / "s.csv")[0].tolist() == [(5, 3), (7, 1)]
    else:
        with pytest.raises(FormatError, match=re.escape(error)):
            read_recording(tmp_path / "s.csv")


def test_a_raw_header_ends_at_a_line_not_starting_with_percent_space(tmp_path: Path) -> None:
    """Without `% end`, an event word whose low byte is 0x25 ("%") is not header."""
    ev = dvs_events(size=480, t0=5_000_000)
    words = encode_evt3(ev)
    assert words[:1] != b"%"
    crafted = struct.pack("<H", 0x8025) + words  # a TIME_HIGH word: low byte "%"
    (tmp_path / "x.raw").write_bytes(b"% evt 3.0\n% geometry 640x480\n" + crafted)
    np.testing.assert_array_equal(read_recording(tmp_path / "x.raw")[0], ev)


def test_csv_with_either_header(tmp_path: Path) -> None:
    dvs, coch = dvs_events(n=20), cochlea_events(n=20)
    for name, ev in (("d.csv", dvs), ("c.csv", coch)):
        cols = ev.dtype.names or ()
        rows = [",".join(str(e[c]) for c in cols) for e in ev]
        (tmp_path / name).write_text(",".join(cols) + "\n" + "\n".join(rows) + "\n")
        events, _, meta = read_recording(tmp_path / name)
        np.testing.assert_array_equal(events, ev)
        assert meta == {"format": "csv", "t0_us": 0}
    (tmp_path / "one.csv").write_text("t,channel\n5,3\n")
    assert read_recording(tmp_path / "one.csv")[0].tolist() == [(5, 3)]
    (tmp_path / "no_p.csv").write_text("t,x,y\n10,3,4\n")  # DVS with p missing
    with pytest.raises(FormatError, match=r"missing \['p'\]"):
        read_recording(tmp_path / "no_p.csv")


def test_dispatch_errors_say_what_is_supported(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"RIFF....")
    with pytest.raises(FormatError, match=r"\.aedat4"):
        read_recording(tmp_path / "x.wav")
    np.save(tmp_path / "c.npy", cochlea_events(n=5))
    with pytest.raises(FormatError, match="cochlea events, not dvs"):
        read_recording(tmp_path / "c.npy", sensor="dvs")
    with pytest.raises(FormatError, match="single recording"):
        read_recording(tmp_path / "c.npy", index=3)


# -- broken files -----------------------------------------------------------------------------
def broken_copies(tmp_path: Path) -> dict[str, bytes]:
    """Each format's file cut off half-way, or never written (0 bytes)."""
    out = {}
    np.save(tmp_path / "whole.npy", dvs_events())
    np.savez(tmp_path / "whole.npz", events=dvs_events())
    for name in ("whole.npy", "whole.npz"):
        whole = (tmp_path / name).read_bytes()
        out[name.replace("whole", "half")] = whole[:len(whole) // 2]
    out["header_only.npy"] = (tmp_path / "whole.npy").read_bytes()[:40]
    return out


@pytest.mark.parametrize("suffix", [".bin", ".npy", ".npz", ".csv", ".aedat4", ".raw", ".h5"])
def test_an_empty_file_is_refused_not_read_as_no_events(tmp_path: Path, suffix: str) -> None:
    (tmp_path / f"empty{suffix}").write_bytes(b"")
    with pytest.raises(FormatError, match=rf"empty\{suffix} is empty \(0 bytes\)$"):
        read_recording(tmp_path / f"empty{suffix}")


def test_a_file_of_no_events_is_still_read(tmp_path: Path) -> None:
    """Not empty: a header and no rows, an array of length 0."""
    (tmp_path / "header.csv").write_text("t,channel\n")
    np.save(tmp_path / "none.npy", cochlea_events(n=0))
    for name in ("header.csv", "none.npy"):
        with warnings.catch_warnings():  # nor warned about (numpy's "input contained no data")
            warnings.simplefilter("error")
            events, sensor, _ = read_recording(tmp_path / name)
        assert len(events) == 0 and sensor == "cochlea", name


@pytest.mark.parametrize(("name", "message"), [
    ("half.npy", r"half\.npy: not a complete \.npy file \(its header declares [\d,]+ values of "
                 r"\d+ bytes, but [\d,]+ bytes follow it\)$"),
    ("header_only.npy", r"header_only\.npy: not a complete \.npy file \(EOF"),
    ("half.npz", r"half\.npz: not a complete \.npz file \(File is not a zip file\)$"),
])
def test_a_numpy_file_cut_short_is_refused(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / name).write_bytes(broken_copies(tmp_path)[name])
    with pytest.raises(FormatError, match=message):
        read_recording(tmp_path / name)


def test_a_header_declaring_more_events_than_follow_is_refused_before_allocating_them(
        tmp_path: Path) -> None:
    """228 bytes declaring 10^11 events asked numpy for 931 GiB: a traceback."""
    events = make_events("cochlea", t=np.array([1, 2]), channel=np.array([3, 4]))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(
        events.dtype), "fortran_order": False, "shape": (10**11,)})
    (tmp_path / "big.npy").write_bytes(header.getvalue() + events.tobytes())
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as npz:
        npz.writestr("events.npy", header.getvalue() + events.tobytes())
    for name in ("big.npy", "big.npz"):
        with pytest.raises(FormatError, match=r"declares 100,000,000,000 values of 10 bytes, "
                                              r"but 20 bytes follow it"):
            read_recording(tmp_path / name)
    np.lib.format.write_array(buffer := io.BytesIO(), events, version=(3, 0))
    (tmp_path / "v3.npy").write_bytes(buffer.getvalue())
    with pytest.raises(FormatError, match=r"format version \(3, 0\) is not read here"):
        read_recording(tmp_path / "v3.npy")


def test_an_array_of_objects_is_refused_without_unpickling_it(tmp_path: Path) -> None:
    objects = np.array([{"t": 1}, None])
    np.save(tmp_path / "obj.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "obj.npz", events=objects)
    with pytest.raises(FormatError, match=r"obj\.npy: not an event array \(\.npy of object "
                                          r"dtype\)$"):
        read_recording(tmp_path / "obj.npy")
    with pytest.raises(FormatError, match=r"obj\.npz: events\.npy: not an event array"):
        read_recording(tmp_path / "obj.npz")


def test_a_csv_of_bytes_that_are_not_text_is_refused(tmp_path: Path) -> None:
    for name, data in (("head.csv", b"t,ch\xffannel\n5,3\n"),
                       ("body.csv", b"t,channel\n\xfe5,3\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FormatError, match=rf"{name}: not a UTF-8 text file, so no CSV"):
            read_recording(tmp_path / name)


@pytest.mark.parametrize(("header", "encode", "cut", "word"), [
    ("% evt 2.0\n% end\n", encode_evt2, 3, "4-byte EVT 2.0"),
    (EVT3_HEADER, encode_evt3, 1, "2-byte EVT 3.0"),
])
def test_a_raw_file_cut_inside_a_word_is_refused(
        tmp_path: Path, header: str, encode: Callable[[np.ndarray], bytes], cut: int,
        word: str) -> None:
    """expelliarmus and np.fromfile would drop the last, partial word without a word."""
    body = encode(dvs_events(size=480, t0=5_000_000))[:-cut]
    (tmp_path / "cut.raw").write_bytes(header.encode() + body)
    with pytest.raises(FormatError, match=rf"cut\.raw has {len(body)} bytes after its header, "
                                          rf"not a whole number of {word} words"):
        read_recording(tmp_path / "cut.raw")


def test_an_aedat4_file_cut_short_or_garbled_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("aedat")
    for name, data in (("garbled.aedat4", b"#!AER-DAT4.0\r\n" + bytes(range(256)) * 2),
                       ("header.aedat4", b"#!AER-DAT4.0\r\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FormatError, match=rf"{name}: not a complete AEDAT4 file"):
            read_recording(tmp_path / name)


def test_a_negative_timestamp_is_refused_by_the_reader_as_a_time_problem(tmp_path: Path) -> None:
    """Not left to the model's checks, whose words are about its input's size."""
    (tmp_path / "neg.csv").write_text("t,x,y,p\n10,1,1,0\n-5,1,2,1\n")
    ev = cochlea_events(n=4)
    ev["t"][2] = -7
    np.save(tmp_path / "neg.npy", ev)
    for name, t, i in (("neg.csv", -5, 1), ("neg.npy", -7, 2)):
        with pytest.raises(FormatError, match=rf"{name}: negative timestamp {t} at index {i}; "
                                              r"t counts µs from the recording's start$"):
            read_recording(tmp_path / name)
