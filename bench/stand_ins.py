"""Servers that do less than ``s5rf serve``, for ``bench.server_load``'s floors.

Run side by side with the real server, they split a WebSocket message's cost into what the
model step takes, what the server's own Python path takes, and what uvicorn takes to carry a
frame in and a reply out at all:

  no-model      ``s5rf serve`` with the engine's step replaced by one that does no work
                (uniform output, no spikes): every other part of the path as served.
  ws-route      ``s5rf serve`` whose stream route answers every frame with a fixed result
                without reading it (no decoding, binning, step or result building): the
                route's own connection handling, queue and sends.
  uvicorn-echo  a bare ASGI app under uvicorn with the server's WebSocket options: it answers
                the open message and then every frame with a fixed reply of a real result's
                size, and every HTTP request with 200 (/readyz, the closing DELETE).

    python -m bench.stand_ins {no-model,ws-route,uvicorn-echo} --checkpoints DIR --port PORT
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import orjson
from starlette.types import Receive, Scope, Send

# The shape of a 20-class result (server/inference.py: build_result), with plausible values.
_PROBS = [0.05] * 20
ECHO_RESULT = orjson.dumps({
    "type": "result", "frame": 0, "model": "bench", "version": "0" * 16, "session": "x" * 16,
    "seq": None, "probabilities": _PROBS, "label": "0",
    "top_k": [{"label": str(i), "index": i, "probability": 0.05} for i in range(5)],
    "bins": {"batch": 62, "total": 6200},
    "spikes": {"batch": [812, 640], "total": [81200, 64000]},
    "firing_rate": {"batch": [0.1023, 0.0806], "total": [0.1023, 0.0806]},
    "synops": {"batch": 1234567, "total": 123456789},
    "events": {"accepted": 2500, "dropped": 0, "total_accepted": 250000, "total_dropped": 0,
               "pending": 12},
    "last_t_us": 24999876, "server_time_ms": 0.5, "rasters": None})
ECHO_OPENED = orjson.dumps({"type": "opened", "resumed": False, "applied": None,
                            "id": "echo", "token": "echo", "model": "bench"})


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The least an ASGI app can do and still speak the stream protocol to the load."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})
    else:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        reply = ECHO_OPENED
        while (await receive())["type"] != "websocket.disconnect":
            await send({"type": "websocket.send", "bytes": reply})
            reply = ECHO_RESULT


def disable_model_step() -> None:
    """Make every engine step return at once: uniform log-probabilities, no spikes."""
    from model.streaming import ChunkResult, Engine

    def no_step(self: Engine, slots: Sequence[int], chunks: Sequence[np.ndarray],
                with_spikes: bool = False) -> ChunkResult:
        n, C, L = len(slots), self.cfg.n_classes, self.cfg.n_layers
        spikes = (tuple(np.zeros((n, max(map(len, chunks), default=0), P), bool)
                        for P in self.cfg.neurons) if with_spikes else None)
        return ChunkResult(np.full((n, C), -np.log(C), np.float32), np.zeros((n, L), np.int64),
                           spikes)

    Engine.step = no_step  # type: ignore[method-assign]


def skip_frames() -> None:
    """Make the stream route answer every frame with ``ECHO_RESULT`` without reading it."""
    from server.routes import stream

    result = orjson.loads(ECHO_RESULT)

    async def fixed_reply(*_: object) -> dict[str, object]:
        return result

    stream._apply = fixed_reply  # type: ignore[assignment]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["no-model", "ws-route", "uvicorn-echo"])
    ap.add_argument("--checkpoints", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    if args.kind in ("no-model", "ws-route"):
        from cli.main import main as s5rf

        if args.kind == "no-model":
            disable_model_step()
        else:
            skip_frames()
        s5rf(["serve", "--checkpoints", args.checkpoints, "--port", str(args.port)])
        return
    import uvicorn

    from cli.serve import uvicorn_options
    from server.settings import Settings

    options = uvicorn_options(Settings(port=args.port))
    uvicorn.run(echo_app, **options, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
