"""Request bodies -> (events in the model's dtype, raw option fields).

Three encodings, by content type:
  application/json          columnar ``{"t": [...], "channel": [...], ...options}`` (orjson)
  application/octet-stream  the model's event dtype, little-endian, packed (docs/wire-format.md)
  application/x-npy         a ``.npy`` file of a structured array with the sensor's fields
Every failure is an ApiError saying what is wrong and where: 415, 413 or 422.
"""

from __future__ import annotations

import io
from typing import Any, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from model.events import EVENT_DTYPES, EventError, SensorKind, as_events, empty_events, make_events
from model.formats import NpyError, npy_header
from server.encode import describe
from server.errors import ApiError

JSON, RAW, NPY = "application/json", "application/octet-stream", "application/x-npy"
CONTENT_TYPES = (JSON, RAW, NPY)
COLUMNS = ("t", "channel", "x", "y", "p")
O = TypeVar("O", bound=BaseModel)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing (413) one over ``max_bytes`` before reading all of it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, max_bytes: int) -> ApiError:
    return ApiError(413, f"body of {size}+ bytes is over the {max_bytes}-byte limit; "
                         "send the events in smaller batches")


def media_type(content_type: str | None, accepted: tuple[str, ...] = CONTENT_TYPES) -> str:
    """The media type of a Content-Type header; 415 unless it is one of ``accepted``."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in accepted:
        raise ApiError(415, f"content type {content_type!r} is not supported; "
                            f"use one of {', '.join(accepted)}")
    return kind


def decode(body: bytes, kind: str, sensor: SensorKind,
           max_events: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Events (the sensor's canonical dtype) and the non-column fields of a JSON body."""
    options: dict[str, Any] = {}
    try:
        if kind == JSON:
            events, options = _decode_json(body, sensor)
        elif kind == RAW:
            events = _decode_raw(body, sensor)
        else:
            events = _decode_npy(body, sensor, max_events)
    except EventError as exc:
        raise ApiError(422, str(exc)) from exc
    if len(events) > max_events:
        raise _too_many(len(events), max_events)
    return events, options


def with_fields(options: O, fields: dict[str, Any], where: str) -> O:
    """``options`` with a JSON body's or frame's option fields over them; 422 naming the
    field (in ``where``) for one that is invalid. Strict: JSON fields are typed, and the
    options' are by now (a query's text was converted when they were made)."""
    if not fields:
        return options
    try:
        return type(options).model_validate(
            {**options.model_dump(exclude_unset=True), **fields}, strict=True)
    except ValidationError as exc:
        raise ApiError(422, describe(exc, where)) from exc


def _too_many(count: int, max_events: int) -> ApiError:
    return ApiError(413, f"{count} events in one request is over the limit of {max_events}; "
                         "send them in smaller batches")


def _decode_raw(body: bytes, sensor: SensorKind) -> np.ndarray:
    """Packed little-endian events of the sensor's wire dtype."""
    dtype = EVENT_DTYPES[sensor]
    if len(body) % dtype.itemsize:
        other = next(k for k in EVENT_DTYPES if k != sensor)
        hint = (f"; it is a whole number of {EVENT_DTYPES[other].itemsize}-byte {other} "
                f"events: this model takes {sensor} events"
                if len(body) % EVENT_DTYPES[other].itemsize == 0 else "")
        raise EventError(f"a binary body of {len(body)} bytes is not a whole number of "
                         f"{dtype.itemsize}-byte {sensor} events ({dtype.descr}){hint}")
    return np.frombuffer(body, dtype=dtype)


def _decode_json(body: bytes, sensor: SensorKind) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        doc = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise EventError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise EventError("the JSON body must be an object with event columns and options")
    # a null column is an absent one, as the schema's nullable columns promise
    given = {k: doc.pop(k) for k in COLUMNS if k in doc}
    columns = {k: v for k, v in given.items() if v is not None}
    if not columns:  # options only: a watermark or flush without new events
        return empty_events(sensor), doc
    arrays = {}
    for name, values in columns.items():
        if not isinstance(values, list):
            raise EventError(f"column {name!r} must be a list of numbers")
        # bools only for the polarity: as in tonic's dtype (and any .npy body), p may be a
        # bool; a true elsewhere is a mistake (numpy would read [1, true] as [1, 1])
        if name != "p" and bool in set(map(type, values)):
            raise EventError(f"column {name!r} must hold integers, not true/false")
        try:
            arrays[name] = np.asarray(values) if values else np.zeros(0, np.int64)
        except (ValueError, OverflowError) as exc:
            raise EventError(f"column {name!r} must be a flat list of numbers") from exc
        if arrays[name].ndim != 1 or arrays[name].dtype.kind not in "iufb":
            raise EventError(f"column {name!r} must be a flat list of numbers")
    return make_events(sensor, **arrays), doc


def _decode_npy(body: bytes, sensor: SensorKind, max_events: int) -> np.ndarray:
    """A ``.npy`` file's one structured array. Its header is checked before any array is
    made: numpy would allocate the shape it declares, however few bytes follow."""
    stream = io.BytesIO(body)
    try:
        shape, dtype = npy_header(stream)
    except NpyError as exc:
        raise EventError(f"the body is not a readable .npy file: {exc}") from exc
    if len(shape) != 1 or dtype.names is None or dtype.hasobject:
        raise EventError(f"a .npy body must hold a 1-d structured array with fields "
                         f"{list(EVENT_DTYPES[sensor].names or ())}, got dtype {dtype} "
                         f"and shape {shape}")
    (count,) = shape
    if count > max_events:
        raise _too_many(count, max_events)
    data = len(body) - stream.tell()
    if data != count * dtype.itemsize:
        raise EventError(f"the .npy header declares {count} events of {dtype.itemsize} bytes, "
                         f"but {data} bytes follow it")
    array = np.frombuffer(body, dtype=dtype, count=count, offset=stream.tell())
    try:
        return as_events(array, sensor)
    except (ValueError, TypeError) as exc:
        raise EventError(str(exc)) from exc
