"""A live sensor's frame on /v1/stream: binary with a ``frame_header`` vs JSON columns.

A sensor's batch is its events up to a watermark (``Batch(events, until_us=...)``). Before the
header, a binary frame could carry events only, so such a batch went as JSON columns. For DVS
frames of ``--events`` events each, both encodings through the code that handles them: the
client's ``encode_frame`` and the server's ``frame_events`` (header or JSON parse, event
checks, options), and the frame's size. The model step that follows is the same for both.

    python -m bench.frames [--events 1000 10000 100000]
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from bench.common import best_time, print_table
from clients.stream import Batch, encode_frame
from model.events import make_events
from server.routes.stream import frame_events
from server.schemas import ChunkOptions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    opts = ChunkOptions()
    rows = []
    for n in args.events:
        t = np.sort(rng.integers(0, 10_000, n))
        events = make_events("dvs", t=t, x=rng.integers(0, 34, n), y=rng.integers(0, 34, n),
                             p=rng.integers(0, 2, n))
        batch = Batch(events, until_us=10_000)
        cost = {}
        for binary in (True, False):
            frame = encode_frame(7, batch, binary)
            data, text = (frame, None) if isinstance(frame, bytes) else (None, frame)
            parsed, parsed_opts = frame_events(data, text, binary, opts, "dvs", n)
            assert np.array_equal(parsed, events) and parsed_opts.until_us == 10_000
            number = max(1, 20_000 // n)
            encode = best_time(partial(encode_frame, 7, batch, binary), number=number)
            decode = best_time(partial(frame_events, data, text, binary, opts, "dvs", n),
                               number=number)
            cost[binary] = encode + decode
            rows.append([n, "binary + header" if binary else "JSON columns",
                         len(frame) if isinstance(frame, bytes) else len(frame.encode()),
                         encode * 1e6, decode * 1e6, (encode + decode) * 1e6])
        rows[-1].append(cost[False] / cost[True])
        rows[-2].append(1.0)
    print_table("one watermarked DVS frame: client encode + server parse",
                ["events", "frame", "bytes", "client µs", "server µs", "total µs",
                 "× binary's time"], rows)


if __name__ == "__main__":
    main()
