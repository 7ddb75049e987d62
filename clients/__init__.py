"""Python client of the s5rf inference server; needs only numpy, httpx, websockets, pydantic.

    from clients import Client
    with Client("http://127.0.0.1:8000") as c:
        result = c.infer("digits-cochlea", events)  # events: numpy array in the wire dtype
        print(result.label, result.top_k)

See docs/clients.md.
"""

from clients.aio import AsyncClient, AsyncSession
from clients.errors import (
    AlreadyApplied,
    ClientError,
    Conflict,
    ConnectionLost,
    Forbidden,
    InvalidEvents,
    NotFound,
    RateLimited,
    ServerError,
    StreamClosed,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from clients.retry import Retry
from clients.schemas import EventsResult, ModelDetail, ModelSummary, SessionInfo
from clients.stream import AsyncStream, Batch
from clients.sync import Client, Session, Stream
from clients.wire import COCHLEA_DTYPE, DVS_DTYPE, EVENT_DTYPES

__all__ = [
    "COCHLEA_DTYPE", "DVS_DTYPE", "EVENT_DTYPES", "AlreadyApplied", "AsyncClient",
    "AsyncSession", "AsyncStream", "Batch", "Client", "ClientError", "Conflict", "ConnectionLost",
    "EventsResult", "Forbidden", "InvalidEvents", "ModelDetail", "ModelSummary", "NotFound",
    "RateLimited", "Retry", "ServerError", "Session", "SessionInfo", "Stream", "StreamClosed",
    "TooLarge",
    "Unavailable", "UnsupportedMediaType",
]
