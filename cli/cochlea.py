"""``s5rf cochlea AUDIO OUT.npz``: encode a recording as SHD-style cochlea events."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from model.audio_folder import encode_file

    events = encode_file(args.audio, np.random.default_rng(args.seed), args.channels,
                         trim=args.trim)
    np.savez(args.out, events=events, t=events["t"], channel=events["channel"])
    print(f"{args.out}: {events.size} events, {args.channels} channels")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cochlea",
        help="audio file -> cochlea spike events (.npz)",
        description="Pass a (mono or mixed-down) audio file through the Heidelberg cochlea "
        "model that made SHD, after cutting leading and trailing silence as the training "
        "data were (--no-trim: the whole file). Writes OUT.npz with `events` (t int64 µs, "
        "channel uint16, sorted by t) and the same columns as `t` and `channel`.",
    )
    p.add_argument("audio", type=Path, help="input audio (WAV, FLAC, ...; any sample rate)")
    p.add_argument("out", help="output .npz")
    p.add_argument("--seed", type=int, default=0, help="seed of the stochastic spike stage")
    p.add_argument("--channels", type=int, default=700)
    p.add_argument("--trim", action=argparse.BooleanOptionalAction, default=True,
                   help="cut leading and trailing silence (more than 40 dB below the peak)")
    p.set_defaults(func=_run)
