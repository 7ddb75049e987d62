"""Async HTTP client: models, sessions, batches of events and one-shot inference.

Every request is retried with backoff when the connection fails or the server answers 503/429,
as long as repeating it is safe: reads, ``/infer``, and session batches, which carry a
sequence number so the server applies each batch at most once. A batch whose first attempt
landed but whose answer was lost is answered on retry with 409 and the result it got then.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Literal

import httpx
import numpy as np

from clients import wire
from clients.errors import (
    RETRYABLE,
    AlreadyApplied,
    ConnectionLost,
    NotFound,
    ServerError,
    Unavailable,
    from_response,
)
from clients.retry import DEFAULT_RETRY, Retry
from clients.schemas import EventsResult, ModelDetail, ModelSummary, SessionCreated, SessionInfo
from clients.stream import AsyncStream
from clients.wire import T0

Late = Literal["reject", "drop"]
OCTET = {"content-type": "application/octet-stream"}
STATE_TYPE = "application/vnd.s5rf.session-state+msgpack"  # a session's exported state


def _status(response: httpx.Response) -> str | None:
    """The ``status`` of a health body (``warming``, ``failed``, ...), if it has one."""
    with contextlib.suppress(ValueError):
        body = response.json()
        return body.get("status") if isinstance(body, dict) else None
    return None


def server_url(url: str) -> str:
    """``url`` if it is an http:// or https:// URL with a host; ValueError saying so if not (a
    bare host:port would be retried as a lost connection for seconds)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{url!r} is not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{url!r} is not an http:// or https:// URL of the server, e.g. "
                         "http://127.0.0.1:8000")
    return url


class AsyncClient:
    """``async with AsyncClient("http://127.0.0.1:8000") as c: await c.models()``.

    ``binary`` picks the encoding of events (packed wire format, or JSON columns).
    ``timeout_s`` bounds each attempt of a request (connecting, sending, each read), not a
    call: one whose attempts time out is retried as a lost connection, as ``retry`` allows.
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", *, timeout_s: float = 30.0,
                 retry: Retry = DEFAULT_RETRY, binary: bool = True):
        self.url = server_url(url).rstrip("/")
        self.retry = retry
        self.binary = binary
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, idempotent: bool = True,
                      **kwargs: Any) -> httpx.Response:
        """Send a request, retrying on connection loss (only if ``idempotent``, or if the
        connection was refused and so nothing was sent), on 503/429, and, if ``idempotent``,
        on a proxy's 502/504 (the replica behind it died or timed out: the request may have
        been applied, so it is sent again only where that is safe; batches carry a seq).
        Errors are raised as the ServerError subclass of their status."""
        delays = self.retry.delays()
        resent = False
        while True:
            retry_after = None
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if not (idempotent or isinstance(exc, httpx.ConnectError)):
                    raise ConnectionLost(f"{method} {path}: {exc!r}; it may have been "
                                         "applied, so it was not retried") from exc
                failure: Exception = exc
            else:
                if response.is_success:
                    return response
                error = from_response(response.status_code, response.content,
                                      dict(response.headers))
                lost_upstream = idempotent and response.status_code in (502, 504)
                if not (isinstance(error, RETRYABLE) or lost_upstream):
                    error.resent = resent
                    raise error
                failure, retry_after = error, error.retry_after_s
            delay = next(delays, None)
            if delay is None:
                if isinstance(failure, ServerError):
                    raise failure
                raise ConnectionLost(f"{method} {self.url}{path} failed after "
                                     f"{self.retry.attempts} retries: {failure!r}") from failure
            await asyncio.sleep(Retry.wait(delay, retry_after))
            resent = True

    async def wait_ready(self, timeout_s: float = 300.0) -> None:
        """Wait while the server warms up (``/readyz`` 503 "warming"), as long as
        ``timeout_s``: a first start compiles for a minute or two, longer than the retry
        budget of a request. Raises ``Unavailable`` if it is still warming then, or its
        warm-up failed; ``ConnectionLost`` if it cannot be reached within the retry budget
        (a wrong URL is not waited on for minutes)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        unreachable = self.retry.delays()
        while True:
            try:
                response = await self._http.get("/readyz")
            except httpx.TransportError as exc:
                wait = next(unreachable, None)
                if wait is None:
                    raise ConnectionLost(f"{self.url} could not be reached: {exc!r}") from exc
                failure: Exception = ConnectionLost(f"{self.url}: {exc!r}")
            else:
                if response.is_success:
                    return
                failure = from_response(response.status_code, response.content,
                                        dict(response.headers))
                # warming, or behind a proxy whose replicas are all (re)starting: wait
                starting = response.status_code in (502, 504) or (
                    isinstance(failure, Unavailable) and _status(response) in ("warming", None))
                if not starting:
                    raise failure  # its warm-up failed: waiting will not make it ready
                wait = getattr(failure, "retry_after_s", None) or 1.0
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                if isinstance(failure, Unavailable):
                    raise Unavailable(f"{self.url} is still warming up after {timeout_s:g} s "
                                      "(a first start compiles for a minute or two)",
                                      failure.body) from failure
                raise failure
            await asyncio.sleep(min(wait, left))

    async def models(self) -> list[ModelSummary]:
        """The served models with their input specs and labels."""
        response = await self.request("GET", "/v1/models")
        return [ModelSummary.model_validate(m) for m in response.json()]

    async def model(self, name: str) -> ModelDetail:
        """One model's card: input spec, labels, architecture, metrics, wire dtype."""
        return ModelDetail.model_validate_json((await self.request(
            "GET", f"/v1/models/{name}")).content)

    async def infer(self, model: str, events: np.ndarray, *, t0_us: T0 = 0,
                    include_spikes: bool = False, top_k: int = 5) -> EventsResult:
        """Classify a whole recording (every bin closed at its end), without a session."""
        options = {"t0_us": wire.as_t0(t0_us), "include_spikes": include_spikes, "top_k": top_k}
        response = await self.request("POST", f"/v1/models/{model}/infer",
                                      **event_request(events, options, self.binary))
        return EventsResult.model_validate_json(response.content)

    async def open_session(self, model: str, *, t0_us: T0 = 0,
                           late: Late | None = None) -> AsyncSession:
        """A new session on ``model``; bins are aligned to ``t0_us``."""
        body: dict[str, Any] = {"model": model, "t0_us": wire.as_t0(t0_us)}
        if late is not None:
            body["late"] = late
        response = await self.request("POST", "/v1/sessions", idempotent=False, json=body)
        created = SessionCreated.model_validate_json(response.content)
        return AsyncSession(self, created, created.token)

    async def resume_session(self, session_id: str, token: str) -> AsyncSession:
        """A handle on an existing session, continuing after its last applied ``seq``."""
        session = AsyncSession(self, None, token, session_id)
        await session.info()
        return session

    def stream(self, model: str | None = None, *, session: tuple[str, str] | None = None,
               t0_us: T0 = 0, late: Late | None = None, include_spikes: bool = False,
               top_k: int = 5, window: int = 8) -> AsyncStream:
        """A WebSocket stream on a new session of ``model``, or on ``session=(id, token)``."""
        return AsyncStream(self, model=model, session=session, t0_us=t0_us, late=late,
                           include_spikes=include_spikes, top_k=top_k, window=window)


def event_request(events: np.ndarray | None, options: dict[str, Any],
                  binary: bool) -> dict[str, Any]:
    """httpx arguments carrying events (or none: options only) and options: a packed body
    with the options as query parameters, or one JSON object of columns and options."""
    if binary:
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in options.items()}
        content = wire.body(events) if events is not None else b""
        return {"content": content, "params": params, "headers": dict(OCTET)}
    return {"json": {**(wire.columns(events) if events is not None else {}), **options},
            "headers": {}}


class AsyncSession:
    """A session on the server: send batches in order, read its state, reset or close it.

    Batches are numbered (``seq``) from the session's last applied one, so retries and
    resumption after a lost connection never apply a batch twice.
    """

    def __init__(self, client: AsyncClient, info: SessionInfo | None, token: str,
                 session_id: str | None = None):
        self.client = client
        self.token = token
        self.id = info.id if info is not None else str(session_id)
        self.last: SessionInfo | None = info
        self.next_seq = info.seq + 1 if info is not None else 0

    @property
    def _headers(self) -> dict[str, str]:
        return {"x-session-token": self.token}

    async def send(self, events: np.ndarray | None = None, *, until_us: int | None = None,
                   flush: bool = False, include_spikes: bool = False, top_k: int = 5,
                   reset: T0 | None = None) -> EventsResult:
        """Apply the next batch (sorted events, possibly none) with its options; ``reset``
        starts the stream again before it (a new utterance: zero state, empty buffer and
        counters, from this origin or ``"first_event"``), in the same request."""
        seq = self.next_seq
        options: dict[str, Any] = {"seq": seq, "flush": flush, "include_spikes": include_spikes,
                                   "top_k": top_k}
        if until_us is not None:
            options["until_us"] = int(until_us)  # a numpy integer is no JSON number
        if reset is not None:
            options["reset"] = wire.as_t0(reset)
        request = event_request(events, options, self.client.binary)
        request["headers"].update(self._headers)
        # Numbered before it is sent: a call cancelled or failed after the batch reached the
        # server must not leave its number to the next batch, which would be refused as a
        # replay. A number skipped is harmless (seq must only increase); whether the batch
        # landed, info() says.
        self.next_seq = seq + 1
        try:
            response = await self.client.request("POST", f"/v1/sessions/{self.id}/events",
                                                 **request)
        except AlreadyApplied as exc:
            # This batch's number was used: by this very batch, whose first attempt landed
            # (its result is returned), or by another client of the session (raised). Only
            # a resent batch can be the one that landed: a 409 to a first attempt is another's.
            self.next_seq = max(seq, exc.last_seq) + 1
            if not exc.resent or exc.applied is None or exc.applied.get("seq") != seq:
                raise
            return EventsResult.model_validate(exc.applied)
        return EventsResult.model_validate_json(response.content)

    async def info(self) -> SessionInfo:
        """Where the session stands; also realigns ``next_seq`` with the server's ``seq``."""
        response = await self.client.request("GET", f"/v1/sessions/{self.id}",
                                             headers=self._headers)
        self.last = SessionInfo.model_validate_json(response.content)
        self.next_seq = max(self.next_seq, self.last.seq + 1)
        return self.last

    async def reset(self, t0_us: T0 | None = None) -> SessionInfo:
        """Start again with a zero state, counters and ``seq`` cleared, from the session's
        origin or a new one ``t0_us`` (a live sensor's clock has moved on: the next
        utterance's start, or ``"first_event"``), which becomes the session's."""
        body = None if t0_us is None else {"t0_us": wire.as_t0(t0_us)}
        response = await self.client.request("POST", f"/v1/sessions/{self.id}/reset",
                                             headers=self._headers, json=body)
        self.last = SessionInfo.model_validate_json(response.content)
        self.next_seq = 0
        return self.last

    async def export_state(self) -> bytes:
        """The session's whole stream state, to continue it in a session of the same model
        and version elsewhere (another server, or after this one restarts without a store)."""
        response = await self.client.request("GET", f"/v1/sessions/{self.id}/state",
                                             headers=self._headers)
        return response.content

    async def import_state(self, state: bytes) -> SessionInfo:
        """Continue the stream that ``state`` (from ``export_state``) was exported from, its
        ``seq`` included; this session's own stream is replaced."""
        response = await self.client.request(
            "PUT", f"/v1/sessions/{self.id}/state", content=state,
            headers={**self._headers, "content-type": STATE_TYPE})
        self.last = SessionInfo.model_validate_json(response.content)
        self.next_seq = self.last.seq + 1
        return self.last

    async def close(self) -> None:
        """Delete the session and free its slot."""
        with contextlib.suppress(NotFound):  # a retried delete whose first attempt landed
            await self.client.request("DELETE", f"/v1/sessions/{self.id}",
                                      headers=self._headers)
