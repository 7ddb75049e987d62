"""Event datasets on disk: the SHD/SSC HDF5 layout (cochlea) and our DVS HDF5 layout.

SHD/SSC layout (Cramer et al. 2020), read unchanged from the published files:
    spikes/times   vlen float (N,)   spike times of each sample in seconds
    spikes/units   vlen uint16 (N,)  channel of each spike (0 = highest frequency)
    labels         uint16 (N,)       class ids
    extra/keys     bytes (C,)        class names, indexed by label
    extra/...      optional per-sample metadata (speaker, engine, voice, ...)
DVS layout (this project; docs/datasets.md):
    events/t       vlen int64 (N,)   timestamps in microseconds
    events/x, events/y vlen uint16 (N,), events/p vlen uint8 (N,)
    labels         uint16 (N,)
    extra/keys     bytes (C,)
    attrs: sensor="dvs", width, height
Samples are read lazily, one at a time, with h5py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from model.errors import InputError
from model.events import EventError, SensorKind, make_events

SHD_CHANNELS = 700
# A sample of these datasets lasts seconds; one past an hour is a mistake in its times' unit.
MAX_SAMPLE_US = 3_600_000_000


def _write_common(
    f: h5py.File, labels: Sequence[int], keys: Sequence[str], extra: Mapping[str, np.ndarray]
) -> None:
    f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
    grp = f.create_group("extra")
    grp.create_dataset("keys", data=np.array([k.encode() for k in keys]))
    for name, values in extra.items():
        values = np.asarray(values)
        if values.dtype.kind == "U":
            values = np.char.encode(values)
        grp.create_dataset(name, data=values)


def write_shd(
    path: str | Path,
    events: Sequence[np.ndarray],
    labels: Sequence[int],
    *,
    keys: Sequence[str],
    extra: Mapping[str, np.ndarray] | None = None,
    channels: int = SHD_CHANNELS,
) -> None:
    """Write cochlea recordings (COCHLEA_DTYPE arrays) in the SHD HDF5 layout."""
    with h5py.File(path, "w") as f:
        grp = f.create_group("spikes")
        times = grp.create_dataset("times", (len(events),), dtype=h5py.vlen_dtype(np.float64))
        units = grp.create_dataset("units", (len(events),), dtype=h5py.vlen_dtype(np.uint16))
        for i, ev in enumerate(events):
            times[i] = ev["t"].astype(np.float64) * 1e-6
            units[i] = ev["channel"]
        if channels != SHD_CHANNELS:
            f.attrs["channels"] = channels
        _write_common(f, labels, keys, extra or {})


def write_dvs(
    path: str | Path,
    events: Sequence[np.ndarray],
    labels: Sequence[int],
    *,
    width: int,
    height: int,
    keys: Sequence[str],
    extra: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write DVS recordings (DVS_DTYPE arrays) in the project's DVS HDF5 layout."""
    with h5py.File(path, "w") as f:
        f.attrs.update(sensor="dvs", width=width, height=height)
        grp = f.create_group("events")
        for name, dt in (("t", np.int64), ("x", np.uint16), ("y", np.uint16), ("p", np.uint8)):
            ds = grp.create_dataset(name, (len(events),), dtype=h5py.vlen_dtype(dt))
            for i, ev in enumerate(events):
                ds[i] = ev[name]
        _write_common(f, labels, keys, extra or {})


class DatasetError(InputError):
    """An HDF5 file that is missing, unreadable or not in a known layout."""


class EventDataset:
    """Lazy reader of an SHD/SSC or DVS HDF5 file: ``ds[i] -> (events, label)``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise DatasetError(f"{self.path} is a folder; give an HDF5 file in it")
        if self.path.is_file() and self.path.stat().st_size == 0:  # a copy that broke off
            raise DatasetError(f"{self.path} is empty (0 bytes)")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:  # missing, or not HDF5
            raise DatasetError(f"cannot read {self.path} as HDF5: {exc}") from exc
        try:
            self._read_layout(self._file)
        except BaseException:
            self._file.close()
            raise

    def _read_layout(self, f: h5py.File) -> None:
        if "spikes" in f:
            self.sensor: SensorKind = "cochlea"
            columns = ["spikes/times", "spikes/units"]
            self.channels: int | None = int(f.attrs.get("channels", SHD_CHANNELS))
            self.width = self.height = None
        elif "events" in f:
            self.sensor = "dvs"
            self.channels = None
            columns = [f"events/{n}" for n in ("t", "x", "y", "p")]
            if not {"width", "height"} <= set(f.attrs):
                raise DatasetError(f"{self.path} has DVS events but no width and height "
                                 "attributes; see docs/datasets.md")
            self.width, self.height = int(f.attrs["width"]), int(f.attrs["height"])
        else:
            raise DatasetError(
                f"{self.path} is neither SHD/SSC layout (spikes/times, spikes/units) nor the "
                "DVS layout (events/t, x, y, p); see docs/datasets.md"
            )
        missing = [name for name in (*columns, "labels", "extra/keys")
                   if not isinstance(f.get(name), h5py.Dataset)]
        if missing:
            raise DatasetError(f"{self.path} has no {' or '.join(missing)}; see docs/datasets.md")
        # One row per sample in each: a shorter one fails (or, labels, drops samples) later
        rows = {name: f[name].shape for name in ("labels", *columns)}
        if flat := [name for name, shape in rows.items() if len(shape) != 1]:
            raise DatasetError(f"{self.path}: {flat[0]} has shape {rows[flat[0]]}, not one row "
                               "per sample; see docs/datasets.md")
        if other := [name for name in columns if rows[name] != rows["labels"]]:
            raise DatasetError(f"{self.path}: labels has {rows['labels'][0]} rows but "
                               f"{other[0]} has {rows[other[0]][0]}; every sample needs one "
                               "of each")
        if f["labels"].dtype.kind not in "iu":
            raise DatasetError(f"{self.path}: labels are {f['labels'].dtype}, not class ids "
                               "(integers indexing extra/keys)")
        self.labels = np.asarray(f["labels"], dtype=np.int64)
        self.keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"]]
        if len(self.labels) and not 0 <= self.labels.min() <= self.labels.max() < len(self.keys):
            bad = int(np.flatnonzero((self.labels < 0) | (self.labels >= len(self.keys)))[0])
            raise DatasetError(f"{self.path}: sample {bad}'s label {self.labels[bad]} names no "
                               f"class of extra/keys ({len(self.keys)} of them)")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples in {self.path}")
        f = self._file
        unit = ("SHD-layout spikes/times are seconds" if self.sensor == "cochlea"
                else "DVS-layout events/t are microseconds")
        try:
            if self.sensor == "cochlea":  # rounded, still float: make_events checks the values
                t = np.rint(np.asarray(f["spikes/times"][i], np.float64) * 1e6)
                ev = make_events("cochlea", t=t, channel=f["spikes/units"][i])
            else:
                ev = make_events("dvs", **{n: f[f"events/{n}"][i] for n in ("t", "x", "y", "p")})
        except EventError as exc:
            raise EventError(f"{self.path} sample {i}: {exc} ({unit})") from exc
        ev = ev[np.argsort(ev["t"], kind="stable")]  # published files are not all sorted
        if len(ev) and (first := int(ev["t"][0])) < 0:
            raise EventError(f"{self.path} sample {i} has a negative time, {first / 1e6:g} s: "
                             f"{unit}, from the sample's start")
        if len(ev) and (last := int(ev["t"][-1])) > MAX_SAMPLE_US:
            raise EventError(f"{self.path} sample {i} spans {last / 1e6:,.0f} s, over the hour "
                             f"a sample may: {unit}")
        return ev, int(self.labels[i])

    def extra(self, name: str) -> np.ndarray:
        """Per-sample metadata from ``extra/NAME`` (bytes decoded to str); InputError naming
        the fields there are when ``name`` is not one of them."""
        if name not in (fields := self.extra_fields()):
            there = self._file.get(f"extra/{name}") if name != "keys" else None
            if isinstance(there, h5py.Dataset):  # a scalar, or a table of another length
                raise InputError(f"no metadata field {name!r} with one value per sample: "
                                 f"{self.path}'s extra/{name} has shape {there.shape} for "
                                 f"{len(self)} samples; {self.path} has "
                                 f"{', '.join(fields) or 'none'}")
            raise InputError(f"no metadata field {name!r}; {self.path} has "
                             f"{', '.join(fields) or 'none'}")
        data = self._file[f"extra/{name}"]
        if h5py.check_string_dtype(data.dtype) is not None:  # fixed or variable length, UTF-8
            return np.asarray(data.asstr("utf-8")[()], dtype=str)
        return np.asarray(data)

    def extra_fields(self) -> list[str]:
        """The per-sample metadata fields under ``extra/`` (not ``keys``, the class names)."""
        extra = self._file.get("extra")
        if not isinstance(extra, h5py.Group):
            return []
        return sorted(k for k, v in extra.items() if k != "keys" and isinstance(v, h5py.Dataset)
                      and v.ndim >= 1 and len(v) == len(self))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_dataset(path: str | Path) -> EventDataset:
    """Open an SHD/SSC or DVS HDF5 file for lazy reading."""
    return EventDataset(path)
