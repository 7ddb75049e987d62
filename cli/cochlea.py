"""``s5rf cochlea AUDIO OUT.npz``: encode a recording as SHD-style cochlea events."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.flags import channels, natural, npz_file


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from model.audio_folder import encode_file

    out = args.out  # checked by npz_file, before minutes of encoding, not after
    events = encode_file(args.audio, np.random.default_rng(args.seed), args.channels,
                         as_trained=args.as_trained)
    np.savez(out, events=events, t=events["t"], channel=events["channel"])
    print(f"{out}: {events.size} events, {args.channels} channels")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cochlea",
        help="audio file -> cochlea spike events (.npz)",
        description="Pass a (mono or mixed-down) audio file through the Heidelberg cochlea "
        "model that made SHD, prepared as the training words were: resampled to 32 kHz, "
        "silence trimmed, 0.1 s of silence after (--raw: the whole file as it is). Writes "
        "OUT.npz with `events` (t int64 µs, channel uint16, sorted by t) and the same columns "
        "as `t` and `channel`.",
    )
    p.add_argument("audio", type=Path, help="input audio (WAV, FLAC, ...; any sample rate)")
    p.add_argument("out", type=npz_file, help="output .npz (the suffix is added if missing)")
    p.add_argument("--seed", type=natural, default=0, help="seed of the stochastic spike stage")
    p.add_argument("--channels", type=channels, default=700, help="cochlea channels")
    p.add_argument("--raw", dest="as_trained", action="store_false",
                   help="encode the whole file at its own rate, without the training words' "
                        "preparation")
    p.set_defaults(func=_run)
