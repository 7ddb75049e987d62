"""``s5rf cochlea AUDIO OUT.npz``: encode a recording as SHD-style cochlea events."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from model.cochlea import audio_to_events, read_audio

    audio, rate = read_audio(args.audio)
    events = audio_to_events(audio, rate, np.random.default_rng(args.seed),
                             channels=args.channels)
    np.savez(args.out, events=events, t=events["t"], channel=events["channel"])
    print(f"{args.out}: {events.size} events, {args.channels} channels")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cochlea",
        help="audio file -> cochlea spike events (.npz)",
        description="Pass a (mono or mixed-down) audio file through the Heidelberg cochlea "
        "model that made SHD. Writes OUT.npz with `events` (t int64 µs, channel uint16, "
        "sorted by t) and the same columns as `t` and `channel`.",
    )
    p.add_argument("audio", help="input audio (WAV, FLAC, ...; any sample rate)")
    p.add_argument("out", help="output .npz")
    p.add_argument("--seed", type=int, default=0, help="seed of the stochastic spike stage")
    p.add_argument("--channels", type=int, default=700)
    p.set_defaults(func=_run)
