"""The client speaks the documented wire format without importing the server or model."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from clients import errors, wire
from model import events


def test_wire_dtypes_equal_the_models() -> None:
    assert wire.EVENT_DTYPES == events.EVENT_DTYPES
    assert wire.COCHLEA_DTYPE.itemsize == 10 and wire.DVS_DTYPE.itemsize == 13


def test_the_clients_frame_header_is_the_servers() -> None:
    from server.routes import stream

    assert wire.FRAME_HEADER.format == stream.FRAME_HEADER.format and wire.FRAME_HEADER.size == 25
    assert (wire.FLUSH, wire.RESET) == (stream.FLUSH, stream.RESET)


def test_the_client_names_an_exported_state_as_the_server_does() -> None:
    from clients import aio
    from server.routes import sessions

    assert aio.STATE_TYPE == sessions.STATE_TYPE


def test_the_client_knows_every_close_code_the_server_sends_and_the_status_it_mirrors() -> None:
    from server.errors import ApiError
    from server.routes import stream

    sent = {value for name, value in vars(stream).items()
            if name.startswith("CLOSE_") and name != "CLOSE_INTERNAL"}
    assert sent | {1009} == set(errors.CLOSE_STATUS)  # 1009: the protocol's "too big"
    runtime = SimpleNamespace(settings=SimpleNamespace(retry_after_s=5))
    for status in (403, 404, 409, 422, 503):  # the refusals of an open or a resume
        closed = stream._refused(runtime, ApiError(status, "no"))  # type: ignore[arg-type]
        assert errors.CLOSE_STATUS[closed.code] == status


def test_clients_import_without_server_model_or_jax() -> None:
    code = ("import sys, clients; heavy = {'model', 'server', 'jax', 'h5py', 'fastapi', "
            "'orjson'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_to_wire_converts_other_widths_and_field_orders() -> None:
    other = np.zeros(2, [("p", "i8"), ("y", "i4"), ("x", "i4"), ("t", "f8")])
    other["t"], other["x"], other["y"], other["p"] = [1, 2], [3, 4], [5, 6], [0, 1]
    out = wire.to_wire(other)
    assert out.dtype == wire.DVS_DTYPE and out.tolist() == [(1, 3, 5, 0), (2, 4, 6, 1)]
    none = (-1).to_bytes(8, "little", signed=True)
    frame = wire.header_frame(7, out, until_us=9, flush=True)
    assert frame[:25] == (7).to_bytes(8, "little") + (9).to_bytes(8, "little") + none + b"\x01"
    assert frame[25:] == out.tobytes()
    assert wire.header_frame(None, None) == none * 3 + b"\0"
    assert wire.header_frame(None, None, reset=5)[16:] == (5).to_bytes(8, "little") + b"\x02"
    assert wire.header_frame(None, None, reset="first_event")[16:] == none + b"\x02"


def test_tonics_cochlea_arrays_name_the_channel_x() -> None:
    tonic = np.zeros(2, [("t", "i8"), ("x", "i2"), ("p", "i1")])
    tonic["t"], tonic["x"], tonic["p"] = [5, 9], [699, 3], [1, 1]
    assert wire.sensor_of(tonic) == "cochlea"
    assert wire.to_wire(tonic).tolist() == [(5, 699), (9, 3)]
    assert wire.columns(tonic) == {"t": [5, 9], "channel": [699, 3]}
    with pytest.raises(ValueError, match=r"fields \(t, channel\), tonic's \(t, x, p\) or"):
        wire.sensor_of(np.zeros(1, [("t", "i8"), ("y", "i2")]))


def test_to_wire_refuses_values_its_dtype_cannot_hold_instead_of_wrapping_them() -> None:
    wide = np.zeros(3, [("t", "i8"), ("channel", "i4")])
    wide["t"], wide["channel"] = [1, 2, 3], [5, 65_539, 7]  # 65,539 would wrap to 3
    with pytest.raises(ValueError, match="channel value 65539 at index 1 does not fit"):
        wire.to_wire(wide)
    fractional = np.zeros(1, [("t", "f8"), ("channel", "u2")])
    fractional["t"] = 1.5
    with pytest.raises(ValueError, match=r"t value 1\.5 at index 0"):
        wire.body(fractional)


def test_a_model_card_of_an_older_server_reads_its_wire_dtype_too() -> None:
    """Servers before the pairs sent numpy's descr as its Python repr."""
    from clients.schemas import ModelDetail

    card = {"name": "m", "version": "v", "description": "", "labels": ["a"],
            "input": {"sensor": "cochlea", "dt_us": 1000, "channels": 16}, "architecture": {},
            "metrics": {}, "provenance": {}, "event_fields": ["t", "channel"]}
    pairs = [("t", "<i8"), ("channel", "<u2")]
    for sent in (pairs, str(pairs)):
        assert ModelDetail.model_validate({**card, "wire_dtype": sent}).wire_dtype == pairs
    with pytest.raises(ValidationError, match="not a dtype's"):
        ModelDetail.model_validate({**card, "wire_dtype": "<i8"})
