"""Recordings in the formats sensors and datasets use -> events in the project's dtype.

``read_recording(path)`` picks a reader by magic bytes, then by suffix:

=================  ==========================  ==============================================
format             suffix / magic              read with
=================  ==========================  ==============================================
SHD/SSC, DVS HDF5  .h5 .hdf5 / ``\\x89HDF``      model.datasets.open_dataset (one sample)
AEDAT4 (iniVation) .aedat4 / ``#!AER-DAT4.0``  the ``aedat`` package
Prophesee RAW      .raw / ``% `` header        ``expelliarmus`` (EVT 2.0); EVT 3.0: ours
N-MNIST binary     .bin                        our reader (no package reads it alone)
numpy (tonic)      .npy .npz / ``\\x93NUMPY``    numpy; cochlea ``x`` accepted for ``channel``
CSV                .csv                        numpy; header ``t,channel`` or ``t,x,y,p``
=================  ==========================  ==============================================

Every reader returns ``(events, sensor, meta)``: events sorted by ``t`` in the sensor's
canonical dtype (model.events), and ``meta`` with at least ``format`` and ``t0_us``, the
recording's natural time origin: 0 for dataset samples (their clocks start with the sample),
the first event's time for camera files (whose clocks count from power-up or the epoch).
"""

from __future__ import annotations

import math
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from model.errors import InputError
from model.events import EVENT_DTYPES, EventError, SensorKind, as_events, empty_events, make_events

Meta = dict[str, Any]
Recording = tuple[np.ndarray, SensorKind, Meta]
Reader = Callable[[Path, int | None], Recording]


class FormatError(InputError):
    """A file that is not a readable recording; the message says what was expected."""


# -- HDF5 datasets ----------------------------------------------------------------------------
def read_hdf5(path: Path, index: int | None) -> Recording:
    """One sample of an SHD/SSC (cochlea) or DVS HDF5 dataset; ``index`` is required when the
    file holds more than one sample."""
    from model.datasets import open_dataset

    with open_dataset(path) as ds:
        if index is None:
            if len(ds) != 1:
                raise FormatError(f"{path} holds {len(ds)} samples; choose one with an index "
                                  f"in [0, {len(ds)})")
            index = 0
        if not -len(ds) <= index < len(ds):
            raise FormatError(f"{path} holds {len(ds)} samples; there is no index {index}")
        events, label = ds[index]
        meta: Meta = {"format": "hdf5", "t0_us": 0, "index": index, "samples": len(ds),
                      "label": label, "label_name": ds.keys[label] if label < len(ds.keys)
                      else str(label)}
        if ds.sensor == "cochlea":
            meta["channels"] = ds.channels
        else:
            meta.update(width=ds.width, height=ds.height)
        return events, ds.sensor, meta


# -- AEDAT4 -----------------------------------------------------------------------------------
def read_aedat4(path: Path, index: int | None) -> Recording:
    """The events of an AEDAT4 file (iniVation DV), read with the ``aedat`` package.

    ``index`` selects the event stream when the file has several (default: the first).
    """
    import aedat

    try:  # the package's errors (a header, a packet cut short, garbage) are RuntimeErrors
        decoder = aedat.Decoder(str(path))
        streams = {i: s for i, s in decoder.id_to_stream().items() if s.get("type") == "events"}
    except (RuntimeError, OSError) as exc:
        raise FormatError(f"{path}: not a complete AEDAT4 file ({exc})") from exc
    if not streams:
        raise FormatError(f"{path} has no event stream (streams: {decoder.id_to_stream()})")
    ids = sorted(streams)
    if not 0 <= (index or 0) < len(ids):
        raise FormatError(f"{path} has {len(ids)} event stream(s); there is no index {index}")
    stream_id = ids[index or 0]
    try:
        packets = [p["events"] for p in decoder if p["stream_id"] == stream_id and "events" in p]
    except (RuntimeError, OSError) as exc:
        raise FormatError(f"{path}: not a complete AEDAT4 file ({exc})") from exc
    if packets:
        raw = np.concatenate(packets)
        events = make_events("dvs", t=raw["t"].astype(np.int64), x=raw["x"], y=raw["y"],
                             p=raw["on"].astype(np.uint8))
    else:
        events = empty_events("dvs")
    events = _sorted(events)
    stream = streams[stream_id]
    return events, "dvs", {"format": "aedat4", "t0_us": _first_t(events), "stream": stream_id,
                           "width": stream.get("width"), "height": stream.get("height")}


# -- Prophesee RAW (EVT 2.0 / EVT 3.0) --------------------------------------------------------
def read_prophesee_raw(path: Path) -> Recording:
    """A Prophesee ``.raw`` file: EVT 2.0 read with ``expelliarmus``, EVT 3.0 with our decoder.

    The encoding and geometry come from the ASCII header (``% evt 3.0``, ``% format EVT3;
    height=720;width=1280``, ``% geometry 1280x720``).
    """
    header, start = _raw_header(path)
    encoding = _raw_encoding(header, path)
    word = 4 if encoding == "EVT2" else 2
    if (body := path.stat().st_size - start) % word:  # a copy cut off inside a word
        raise FormatError(f"{path} has {body} bytes after its header, not a whole number of "
                          f"{word}-byte {encoding[:3]} {encoding[3]}.0 words (a file cut short?)")
    if encoding == "EVT2":
        from expelliarmus import Wizard

        raw = Wizard(encoding="EVT2").read(str(path))
        if raw is None:  # expelliarmus's answer both to no events and to words it cannot read
            if not _evt2_without_events(path.read_bytes()[start:]):
                raise FormatError(f"{path}: the words after the header are not EVT 2.0")
            raw = empty_events("dvs")
    else:
        try:
            raw = decode_evt3(np.fromfile(path, dtype="<u2", offset=start))
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from exc
    events = _sorted(make_events("dvs", t=raw["t"], x=raw["x"], y=raw["y"], p=raw["p"]))
    meta: Meta = {"format": encoding.lower(), "t0_us": _first_t(events),
                  **_raw_geometry(header)}
    return events, "dvs", meta


EVT2_OTHER_TYPES = (0x8, 0xA, 0xE, 0xF)  # time high, external trigger, others, continued


def _evt2_without_events(body: bytes) -> bool:
    """Whether ``body`` is EVT 2.0 words none of which is a pixel event (a covered lens:
    time highs and triggers only), which expelliarmus cannot tell from words it cannot read."""
    if len(body) % 4:
        return False
    types = np.frombuffer(body, "<u4") >> 28
    return bool(np.isin(types, EVT2_OTHER_TYPES).all())


EVT3_ADDR_Y, EVT3_ADDR_X, EVT3_VECT_BASE_X, EVT3_VECT_12, EVT3_VECT_8 = 0x0, 0x2, 0x3, 0x4, 0x5
EVT3_TIME_LOW, EVT3_TIME_HIGH = 0x6, 0x8


def decode_evt3(words: np.ndarray) -> np.ndarray:
    """Decode EVT 3.0 words (uint16 (W,)) into DVS events, in stream order.

    Our own decoder: expelliarmus 1.1 also counts every drop of EVT_TIME_LOW as a carry into
    the time-high bits although the stream sends EVT_TIME_HIGH itself, so it shifts every
    event after the first time-high change by 4096 µs per change. Here, as in the format
    spec (and OpenEB), t = time_high << 12 | time_low, with 24-bit time-high wrap-arounds
    counted; y, time and the vector base/polarity hold until the next word that sets them.
    Its writer sends no EVT_TIME_HIGH after the first, so a gap over 4,096 µs is lost: such a
    stream (an EVT_TIME_LOW drop with no EVT_TIME_HIGH since the one before, which the spec's
    streams never have) is refused with FormatError, not read as one 4 ms span.
    """
    words = words.astype(np.int64)
    kind, payload = words >> 12, words & 0xFFF
    pos = np.arange(len(words))

    def held(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        """At each word, the value of the latest word where ``mask`` holds (0 before any)."""
        last = np.maximum.accumulate(np.where(mask, pos, -1))
        return np.where(last >= 0, values[np.maximum(last, 0)], 0)

    is_high, is_low = kind == EVT3_TIME_HIGH, kind == EVT3_TIME_LOW
    high = payload.copy()
    wraps = np.cumsum(np.diff(payload[is_high], prepend=0) < 0)  # 24-bit wrap-arounds
    high[is_high] += wraps << 12
    lows, highs_so_far = np.flatnonzero(is_low), np.cumsum(is_high)
    wrapped = ((payload[lows[1:]] < payload[lows[:-1]])
               & (highs_so_far[lows[1:]] == highs_so_far[lows[:-1]]))
    if wrapped.any():
        raise FormatError(
            f"EVT_TIME_LOW goes back at word {lows[1:][wrapped][0]} with no EVT_TIME_HIGH "
            "since the word before: not EVT 3.0 as the spec writes it (expelliarmus 1.x "
            "writes such files), and its times are lost past 4,096 µs gaps; write EVT 2.0 "
            "instead (expelliarmus' evt2, or Metavision)")
    t = (held(is_high, high) << 12) | held(is_low, payload)
    y = held(kind == EVT3_ADDR_Y, payload & 0x7FF)

    is_base = kind == EVT3_VECT_BASE_X
    width = np.select([kind == EVT3_VECT_12, kind == EVT3_VECT_8], [12, 8], 0)
    consumed = np.cumsum(width) - width  # vector bits before each word
    base_x = held(is_base, payload & 0x7FF) + consumed - held(is_base, consumed)
    vec = np.flatnonzero(width)
    bits = (payload[vec, None] >> np.arange(12)) & 1
    bits[:, 8:] *= (width[vec] == 12)[:, None]
    vec_word, vec_bit = np.nonzero(bits)

    single = np.flatnonzero(kind == EVT3_ADDR_X)
    word = np.concatenate([single, vec[vec_word]])
    x = np.concatenate([payload[single] & 0x7FF, base_x[vec][vec_word] + vec_bit])
    p = np.concatenate([payload[single] >> 11, held(is_base, payload >> 11)[vec][vec_word]])
    order = np.lexsort((x, word))  # stream order; a vector's events by increasing x
    return make_events("dvs", t=t[word][order], x=x[order], y=y[word][order], p=p[order])


def _raw_header(path: Path) -> tuple[dict[str, str], int]:
    """``% key value`` lines at the start of a RAW file (up to ``% end`` or the first word),
    and the byte offset of the first event word."""
    header: dict[str, str] = {}
    with path.open("rb") as f:
        while True:
            start = f.tell()
            raw = f.readline()
            # A header line is "% ...": a "%" byte alone may be an event word's low byte
            if not raw.startswith(b"% "):
                f.seek(start)
                break
            line = raw.decode("ascii", "replace").strip("% \r\n")
            if line == "end":
                break
            key, _, value = line.partition(" ")
            if key:
                header[key.lower()] = value.strip()
        return header, f.tell()


RAW_ENCODINGS = {"EVT2": "EVT2", "2.0": "EVT2", "EVT3": "EVT3", "3.0": "EVT3"}


def _raw_encoding(header: dict[str, str], path: Path) -> str:
    """EVT2 or EVT3, from ``% format`` (newer files) or else ``% evt``; anything else, EVT 2.1
    among them (64-bit words), is refused rather than decoded as the wrong encoding."""
    name = header.get("format", "").split(";")[0].strip().upper() or header.get("evt", "")
    if name not in RAW_ENCODINGS:
        raise FormatError(f"{path}: the RAW header names encoding {name or 'none'!r} "
                          f"(header: {header}); only EVT 2.0 and EVT 3.0 are read")
    return RAW_ENCODINGS[name]


def _raw_geometry(header: dict[str, str]) -> dict[str, int]:
    fields = dict(kv.split("=", 1) for kv in header.get("format", "").split(";")[1:] if "=" in kv)
    if "width" in fields and "height" in fields:
        return {"width": int(fields["width"]), "height": int(fields["height"])}
    if "x" in header.get("geometry", ""):
        width, height = header["geometry"].split("x")
        return {"width": int(width), "height": int(height)}
    return {}


# -- N-MNIST binary ---------------------------------------------------------------------------
NMNIST_OVERFLOW_Y = 240  # a record with y == 240 marks a timestamp overflow, not an event
NMNIST_OVERFLOW_US = 2**13  # added to every later timestamp per overflow record
NMNIST_SIZE = 34  # N-MNIST's sensor crop; N-Caltech101's recordings are larger


def read_nmnist(path: Path) -> Recording:
    """An N-MNIST / N-Caltech101 ``.bin`` file: 5-byte records, big-endian bit fields.

    Byte 0 is x, byte 1 is y, bit 7 of byte 2 the polarity and the remaining 23 bits the
    timestamp (µs). Records with y == 240 are overflow markers that advance the clock by
    2**13 µs (Orchard et al.'s reference reader, also used by tonic). No package reads these
    files apart from a whole dataset loader, hence this reader.
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) % 5:
        raise FormatError(f"{path} has {len(raw)} bytes, not a whole number of 5-byte "
                          "N-MNIST events")
    rec = raw.reshape(-1, 5).astype(np.int64)
    y = rec[:, 1]
    overflow = y == NMNIST_OVERFLOW_Y
    t = ((rec[:, 2] & 0x7F) << 16) | (rec[:, 3] << 8) | rec[:, 4]
    t = t + np.cumsum(overflow) * NMNIST_OVERFLOW_US
    keep = ~overflow
    events = _sorted(make_events("dvs", t=t[keep], x=rec[keep, 0], y=y[keep],
                                 p=rec[keep, 2] >> 7))
    meta: Meta = {"format": "nmnist", "t0_us": 0}
    if not len(events) or max(events["x"].max(), events["y"].max()) < NMNIST_SIZE:
        meta |= {"width": NMNIST_SIZE, "height": NMNIST_SIZE}  # else N-Caltech101: unknown
    return events, "dvs", meta


# -- numpy and CSV ----------------------------------------------------------------------------
EVENT_FIELDS = frozenset(name for dtype in EVENT_DTYPES.values() for name in dtype.names or ())
NOT_EVENTS = "neither cochlea (t, channel; tonic: t, x) nor DVS (t, x, y, p)"


def read_numpy(path: Path) -> Recording:
    """A ``.npy`` structured array, or an ``.npz`` with an ``events`` array or one array per
    field (as ``s5rf cochlea`` writes). tonic's fields are accepted: ``x`` alone is a cochlea
    channel; ``x, y, p`` are DVS."""
    if path.suffix == ".npz" or zipfile.is_zipfile(path):
        # Only the arrays that hold events are loaded: others (a label, tonic's sensor_size,
        # pickled metadata that allow_pickle=False refuses to load) are left alone.
        try:
            with zipfile.ZipFile(path) as npz:
                files = {n.removesuffix(".npy"): n for n in npz.namelist()}  # as np.load names
                names = [k for k in files if k == "events" or k in EVENT_FIELDS]
                if not names and len(files) == 1:
                    names = list(files)  # np.savez(f, events) names it arr_0
                arrays = {}
                for k in names:
                    with npz.open(files[k]) as member:
                        arrays[k] = _read_npy(member, f"{path}: {files[k]}",
                                              npz.getinfo(files[k]).file_size)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # cut short, garbage
            raise FormatError(f"{path}: not a complete .npz file ({exc})") from exc
        if "events" in arrays:
            array = arrays["events"]
        elif len(arrays) == 1 and not set(arrays) & EVENT_FIELDS:
            array = next(iter(arrays.values()))
        else:  # one array per field
            array = _structured(arrays)
    else:
        with path.open("rb") as f:
            array = _read_npy(f, str(path), path.stat().st_size)
    if array.dtype.names is None or array.ndim != 1:
        raise FormatError(f"{path} holds dtype {array.dtype} shape {array.shape}; expected a "
                          "1-d structured array with fields t and channel (or x), or t, x, y, p")
    return _from_fields(array, path, "numpy")


# (numpy writes 3.0 only for field names beyond latin-1, which no event array has)
NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                      (2, 0): np.lib.format.read_array_header_2_0}
# numpy's words for a file cut short ("EOF: ...", "Failed to read all data ...") or a header
# that is no Python literal (some of which tokenize reports itself)
NPY_BROKEN = (ValueError, EOFError, SyntaxError, tokenize.TokenError)


class NpyError(ValueError):
    """A .npy stream cut short, or not .npy at all."""


def npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a .npy stream declares, read up to its data, before any array is
    made (numpy would allocate the declared shape however few bytes follow); NpyError for one
    cut short or not .npy."""
    try:
        version = np.lib.format.read_magic(f)
        if version not in NPY_HEADER_READERS:
            raise ValueError(f"format version {version} is not read here; use 1.0 or 2.0")
        shape, _, dtype = NPY_HEADER_READERS[version](f)
    except NPY_BROKEN as exc:
        raise NpyError(str(exc)) from exc
    return shape, dtype


def _read_npy(f: IO[bytes], where: str, size: int) -> np.ndarray:
    """The array of an open .npy file (or .npz member) of ``size`` bytes, FormatError naming
    ``where`` for one of objects (which would need unpickling), for one cut short or not .npy
    at all, and for a header declaring more values than follow it (numpy would allocate them
    all first)."""
    try:
        shape, dtype = npy_header(f)
    except NpyError as exc:
        raise FormatError(f"{where}: not a complete .npy file ({exc})") from exc
    if dtype.hasobject:
        raise FormatError(f"{where}: not an event array (.npy of object dtype)")
    declared, left = math.prod(shape) * dtype.itemsize, size - f.tell()
    if declared > left:
        raise FormatError(f"{where}: not a complete .npy file (its header declares "
                          f"{math.prod(shape):,} values of {dtype.itemsize} bytes, but {left:,} "
                          "bytes follow it)")
    f.seek(0)
    try:
        return np.lib.format.read_array(f, allow_pickle=False)
    except NPY_BROKEN as exc:
        raise FormatError(f"{where}: not a complete .npy file ({exc})") from exc


def read_csv(path: Path) -> Recording:
    """A CSV with a header row ``t,channel`` (or tonic's ``t,x``) or ``t,x,y,p``; t in µs.
    Header names may be quoted or upper-case, the file may start with a byte-order mark (as
    spreadsheets write it), and other columns are ignored."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            names = [n.strip().strip("'\"").lower() for n in f.readline().strip().split(",")]
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not a UTF-8 text file, so no CSV ({exc})") from exc
    wanted = [i for i, n in enumerate(names) if n in EVENT_FIELDS]
    if not wanted:
        raise FormatError(f"{path}: the header's columns {names} are {NOT_EVENTS}")
    data = _load_whole_numbers(path, wanted).reshape(-1, len(wanted))
    return _from_fields(_structured({names[i]: data[:, k] for k, i in enumerate(wanted)}),
                        path, "csv")


def _load_whole_numbers(path: Path, columns: list[int]) -> np.ndarray:
    """The CSV's rows (header skipped) in ``columns`` as int64; whole numbers written as
    floats (``1000.0``) too, where a float holds them exactly."""
    def load(dtype: type) -> np.ndarray:
        with warnings.catch_warnings():  # a header alone is a recording without events
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            return np.loadtxt(path, delimiter=",", skiprows=1, dtype=dtype, ndmin=2,
                              usecols=columns, encoding="utf-8-sig")

    try:
        return load(np.int64)
    except ValueError:
        pass
    try:
        data = load(np.float64)
    except UnicodeDecodeError as exc:  # text, then bytes that are not
        raise FormatError(f"{path}: not a UTF-8 text file, so no CSV ({exc})") from exc
    except ValueError as exc:  # a cell that is not a number, or a short row
        raise FormatError(f"{path}: {exc}") from exc
    if not np.all((data == np.round(data)) & (np.abs(data) < 2**53)):
        raise FormatError(f"{path}: event columns must hold whole numbers (t in µs)")
    return data.astype(np.int64)


def _structured(columns: dict[str, np.ndarray]) -> np.ndarray:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise FormatError(f"columns have different lengths: "
                          f"{ {k: len(v) for k, v in columns.items()} }")
    out = np.empty(lengths.pop() if lengths else 0,
                   dtype=[(k, np.asarray(v).dtype) for k, v in columns.items()])
    for k, v in columns.items():
        out[k] = v
    return out


def _from_fields(array: np.ndarray, path: Path, fmt: str) -> Recording:
    names = set(array.dtype.names or ())
    # A y field makes it DVS even with another missing, which as_events then names (tonic's
    # cochlea events have t, x and p)
    if "y" in names:
        sensor: SensorKind = "dvs"
    elif "t" in names and ("channel" in names or "x" in names):
        sensor = "cochlea"
    else:
        raise FormatError(f"{path}: fields {sorted(names)} are {NOT_EVENTS}")
    try:
        events = as_events(array, sensor)
    except EventError as exc:
        raise FormatError(f"{path}: {exc}") from exc
    if len(events) and events["t"].min() < 0:  # no sensor's clock, nor a sample's, goes below 0
        i = int(np.flatnonzero(events["t"] < 0)[0])
        raise FormatError(f"{path}: negative timestamp {events['t'][i]} at index {i}; t counts "
                          "µs from the recording's start")
    return _sorted(events), sensor, {"format": fmt, "t0_us": 0}


# -- dispatch ---------------------------------------------------------------------------------
def _single(read: Callable[[Path], Recording]) -> Reader:
    """A reader of a one-recording format, refusing an index other than 0."""

    def reader(path: Path, index: int | None) -> Recording:
        if index not in (None, 0):
            raise FormatError(f"{path} holds a single recording; there is no index {index}")
        return read(path)

    return reader


_raw, _nmnist, _numpy, _csv = map(_single, (read_prophesee_raw, read_nmnist, read_numpy,
                                             read_csv))
MAGIC: tuple[tuple[bytes, Reader], ...] = (
    (b"\x89HDF\r\n\x1a\n", read_hdf5),
    (b"#!AER-DAT4", read_aedat4),
    (b"\x93NUMPY", _numpy),
    (b"PK\x03\x04", _numpy),
    (b"% ", _raw),
)
SUFFIXES: dict[str, Reader] = {
    ".h5": read_hdf5, ".hdf5": read_hdf5, ".aedat4": read_aedat4, ".raw": _raw,
    ".bin": _nmnist, ".npy": _numpy, ".npz": _numpy, ".csv": _csv,
}


def read_recording(path: str | Path, index: int | None = None,
                   sensor: SensorKind | None = None) -> Recording:
    """Read one recording: ``(events sorted by t, sensor kind, meta)``.

    ``index`` picks a sample of a multi-sample file (HDF5 datasets) or a stream (AEDAT4);
    ``sensor``, when given, must match what the file holds.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path} is not a file")
    if path.stat().st_size == 0:  # a copy that broke off, not a recording without events
        raise FormatError(f"{path} is empty (0 bytes)")
    with path.open("rb") as f:
        head = f.read(16)
    suffix = path.suffix.lower()
    # N-MNIST and CSV have no signature, and their first bytes may look like another's
    reader = SUFFIXES[suffix] if suffix in (".bin", ".csv") else None
    reader = reader or next((r for magic, r in MAGIC if head.startswith(magic)), None)
    reader = reader or SUFFIXES.get(suffix)
    if reader is None:
        raise FormatError(f"{path}: unknown recording format; supported suffixes: "
                          f"{', '.join(sorted(SUFFIXES))}")
    events, kind, meta = reader(path, index)
    if sensor is not None and sensor != kind:
        raise FormatError(f"{path} holds {kind} events, not {sensor}")
    return events, kind, meta


def _sorted(events: np.ndarray) -> np.ndarray:
    """Events in time order (stable: same-time events keep the file's order)."""
    if len(events) and np.any(np.diff(events["t"]) < 0):
        return events[np.argsort(events["t"], kind="stable")]
    return events


def _first_t(events: np.ndarray) -> int:
    return int(events["t"][0]) if len(events) else 0
