"""``s5rf replay FILE --model NAME`` and ``s5rf listen AUDIO --model NAME``: stream a recording
(or audio turned into cochlea spikes) to a running server with a live terminal view.

The view (rich Live) shows the top classes with bars, bins and events sent, spikes per layer
and latency; a summary follows, and with ``--json`` the final result is printed to stdout as
JSON (the live view then goes to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.flags import count, ms_as_us, natural, non_negative, positive, speed, top_k, url

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console, RenderableType

    from clients.replay import Progress, Utterance
    from clients.schemas import EventsResult, ModelDetail

# Fits what was read from the file to the served model's card (its sensor, its channels) and
# returns (its utterances, each scored on its own, and a description for the view and the
# summary); raises InputError when they do not fit.
Fit = Callable[["ModelDetail"], "tuple[list[Utterance], dict[str, Any]]"]


def _replay(args: argparse.Namespace) -> int:
    from clients.replay import Utterance
    from model.errors import InputError
    from model.formats import read_recording

    # Before connecting: the recording, or the samples one after another.
    first = args.index or 0
    if args.min_rate is not None and not args.segment:
        raise InputError("--min-rate is the threshold of --segment; add --segment")
    if args.count and args.segment:
        raise InputError("--count and --segment do not mix: a dataset's samples are utterances "
                         "already")
    if args.count and first < 0:
        raise InputError(f"--count counts samples from --index on; give a first index >= 0, "
                         f"not {first}")
    recordings = [read_recording(args.file, first if args.count else args.index)]
    sensor, meta = recordings[0][1], recordings[0][2]
    if args.count:
        if meta["format"] != "hdf5":
            raise InputError(f"--count takes samples of a dataset file (HDF5); {args.file} is "
                             f"{meta['format']}")
        last = first + args.count - 1
        if last >= meta["samples"]:
            raise InputError(f"--index {first} --count {args.count} asks for samples up to "
                             f"{last}; {args.file} holds {meta['samples']}")
        recordings += [read_recording(args.file, i) for i in range(first + 1, last + 1)]
        meta = {k: v for k, v in meta.items() if k not in ("label", "label_name")} | {
            "count": args.count, "labels": [m["label"] for _, _, m in recordings]}
        # each sample (from the dataset's origin, 0) right after the one before
        utterances, offset = [], 0
        for events, _, _ in recordings:
            shifted = events.copy()
            shifted["t"] += offset
            utterances.append(Utterance(shifted, offset))
            offset += int(events["t"][-1]) + 1 if len(events) else 1
    elif args.segment:
        import dataclasses

        from clients.segment import SENSOR_GATES, utterances_of

        gate = SENSOR_GATES[sensor]
        if args.min_rate is not None:
            gate = dataclasses.replace(gate, min_rate_hz=args.min_rate)
        utterances = utterances_of(recordings[0][0], gate)
        if not utterances:
            raise InputError(f"{args.file}: no activity of {gate.min_rate_hz:g} events/s or "
                             "more to cut an utterance from (lower --min-rate)")
        meta |= {"segmented_at_hz": gate.min_rate_hz}
    else:
        utterances = [Utterance(recordings[0][0], int(meta["t0_us"]))]

    def fit(card: ModelDetail) -> tuple[list[Utterance], dict[str, Any]]:
        if card.input.sensor != sensor:
            raise InputError(f"{args.file} holds {sensor} events, not {card.input.sensor} "
                             f"(model {card.name!r})")
        _check_events(args.file, [u.events for u in utterances], card)
        for _, _, m in recordings if args.count else ():  # scored by index: same classes?
            if m["label"] >= len(card.labels) or card.labels[m["label"]] != m["label_name"]:
                raise InputError(
                    f"{args.file} sample {m['index']} is {m['label_name']!r} (label "
                    f"{m['label']}), which model {card.name!r} does not call so: its classes "
                    f"are {card.labels}")
        return utterances, {"file": str(args.file), **meta, "sensor": sensor}

    return _stream(args, fit)


def _check_events(file: Path, recordings: list[np.ndarray], card: ModelDetail) -> None:
    """InputError, before anything is sent, for events the model's server would refuse (a
    camera bigger than the one it was trained on: crop or rescale first)."""
    from model.binning import validate_events
    from model.errors import InputError
    from model.events import EventError, OutOfRange
    from model.spec import InputSpec

    spec = InputSpec.model_validate(card.input.model_dump())
    for events in recordings:
        try:
            validate_events(events, spec)
        except OutOfRange as exc:  # a recording of another sensor
            raise InputError(f"{file}: {exc}: model {card.name!r} takes {_extent(card)}") \
                from exc
        except EventError as exc:
            raise InputError(f"{file}: {exc}") from exc


def _extent(card: ModelDetail) -> str:
    spec = card.input
    return (f"{spec.channels} channels" if spec.sensor == "cochlea"
            else f"{spec.width}×{spec.height} pixels (crop or rescale the recording)")


def _listen(args: argparse.Namespace) -> int:
    import numpy as np

    from model.audio_augment import WORK_RATE
    from model.audio_folder import read_word, read_words
    from model.cochlea import bucketed_length, prepare_waveform
    from model.errors import InputError

    # Before connecting: prepared (and so checked) once.
    words = read_words(args.audio) if args.words else [(0.0, read_word(args.audio)[0])]
    if not words:
        raise InputError(f"{args.audio}: no word found, only silence")
    try:  # as `s5rf data audio` prepares each word
        signals = [(start_s, prepare_waveform(word, WORK_RATE, bucketed_length))
                   for start_s, word in words]
    except InputError as exc:
        raise InputError(f"{args.audio}: {exc}") from exc

    def fit(card: ModelDetail) -> tuple[list[Utterance], dict[str, Any]]:
        if card.input.sensor != "cochlea" or card.input.channels is None:
            raise InputError(f"model {card.name!r} takes {card.input.sensor} events; "
                             "`listen` needs a cochlea model")
        rng = np.random.default_rng(args.seed)
        return listened(signals, rng, card.input.channels), \
            {"file": str(args.audio), "format": "audio", "sensor": "cochlea", "t0_us": 0}

    return _stream(args, fit)


def listened(signals: list[tuple[float, np.ndarray]], rng: np.random.Generator,
             channels: int) -> list[Utterance]:
    """Each prepared word (``(start_s, float64 at SAMPLE_RATE)``) encoded with ``rng`` in turn,
    as an utterance at its start in the file, or right after the clip before it where that
    clip (a training clip's length, at least) runs past it."""
    from clients.replay import Utterance
    from model.cochlea import SAMPLE_RATE, encode_prepared

    utterances, free_us = [], 0
    for start_s, signal in signals:
        t0_us = max(round(start_s * 1e6), free_us)
        events = encode_prepared(signal, rng, channels=channels)
        events["t"] += t0_us
        utterances.append(Utterance(events, t0_us))
        free_us = t0_us + round(len(signal) / SAMPLE_RATE * 1e6)
    return utterances


def _stream(args: argparse.Namespace, fit: Fit) -> int:
    """Stream what ``fit`` makes of the served model's card; bad input raises InputError (the
    CLI exits 2), a server or connection error ends in one line on stderr and exit 1."""
    import sys

    from rich.console import Console

    from clients import ClientError

    console = Console(stderr=args.json)
    try:
        summary = asyncio.run(_run(args, fit, console))
    except (ClientError, OSError) as exc:
        print(f"s5rf {args.command}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary))
    return 0


async def _run(args: argparse.Namespace, fit: Fit, console: Console) -> dict[str, Any]:
    """Stream the recording with the live view, then print and return the summary."""
    return _summarise(args, await _play(args, fit, console), console)


@dataclasses.dataclass(frozen=True)
class _Streamed:
    card: ModelDetail
    utterances: list[Utterance]
    source: dict[str, Any]
    decisions: list[Progress]  # each utterance's flush
    last: Progress
    latencies: list[float]
    wall_s: float


async def _play(args: argparse.Namespace, fit: Fit, console: Console) -> _Streamed:
    from rich.live import Live

    from clients import AsyncClient
    from clients.replay import replay

    async with AsyncClient(args.url) as client:
        if args.wait_s:
            with console.status(f"waiting for {args.url} to be ready (compiling)…"):
                await client.wait_ready(args.wait_s)
        card = await client.model(args.model)
        utterances, source = fit(card)
        total = sum(len(u.events) for u in utterances)
        latencies: list[float] = []
        decisions: list[Progress] = []  # each utterance's flush
        last: Progress | None = None
        start = time.perf_counter()
        with Live(console=console, refresh_per_second=10) as live:
            async for progress in replay(client, args.model, utterances,
                                         transport=args.transport, speed=args.speed,
                                         chunk_us=args.chunk_us, top_k=args.top_k):
                latencies.append(progress.latency_ms)
                last = progress
                if progress.last:
                    decisions.append(progress)
                live.update(view(card, source, progress, total, latencies, len(utterances)))
        if not console.is_terminal:  # off a terminal Live's last frame ends without a newline
            console.line()
        wall_s = time.perf_counter() - start
    assert last is not None
    return _Streamed(card, utterances, source, decisions, last, latencies, wall_s)


def _summarise(args: argparse.Namespace, streamed: _Streamed, console: Console) -> dict[str, Any]:
    """Print each utterance's decision and the last result, and return them as --json's."""
    import numpy as np

    card, utterances, source = streamed.card, streamed.utterances, streamed.source
    decisions, last, wall_s = streamed.decisions, streamed.last, streamed.wall_s
    result = last.result
    lat = np.asarray(streamed.latencies)
    times = [u.events["t"] for u in utterances if len(u.events)]
    duration_s = (int(times[-1][-1]) - int(times[0][0])) / 1e6 if times else 0.0
    if len(utterances) > 1:
        expected = [card.labels[label] if label < len(card.labels) else str(label)
                    for label in source.get("labels", [])]
        for i, (d, u) in enumerate(zip(decisions, utterances, strict=True)):
            truth = f"  (label {expected[i]})" if expected else ""
            console.print(f"{u.t0_us / 1e6:7.2f} s  [bold]{_decision(d.result)}[/bold] "
                          f"(p={d.result.top_k[0].probability:.3f}){truth}")
    console.print(f"[bold]{_decision(result)}[/bold] (p={result.top_k[0].probability:.3f}) after "
                  f"{result.bins.total} bins and {result.events.total_accepted} events; "
                  f"{duration_s:.2f} s of recording in {wall_s:.2f} s over {args.transport}, "
                  f"latency mean {lat.mean():.1f} ms, p95 {np.percentile(lat, 95):.1f} ms")
    parts = [{"start_s": u.t0_us / 1e6, "label": d.result.label,
              "probabilities": d.result.probabilities, "events": len(u.events)}
             for d, u in zip(decisions, utterances, strict=True)]
    scored: dict[str, Any] = {}
    if "labels" in source:  # dataset samples: how many the served model gets right
        right = [d.result.label is not None and d.result.top_k[0].index == label
                 for d, label in zip(decisions, source["labels"], strict=True)]
        scored = {"samples": parts, "accuracy": sum(right) / len(right)}
        console.print(f"{sum(right)} of {len(right)} samples right "
                      f"({scored['accuracy']:.1%}), each scored on its own")
    elif len(utterances) > 1:
        scored = {"words": parts}
    return {
        "model": result.model, "version": result.version, "transport": args.transport,
        "speed": args.speed, "source": source, "label": result.label,
        "probabilities": result.probabilities,
        "top_k": [t.model_dump() for t in result.top_k],
        "bins": result.bins.total, "events": result.events.model_dump(),
        "spikes": result.spikes.total, "synops": result.synops.total,
        "batches": len(lat), "reconnects": last.reconnects,
        "recording_s": duration_s, "wall_s": wall_s,
        **scored,
        "latency_ms": {"mean": float(lat.mean()), "p50": float(np.percentile(lat, 50)),
                       "p95": float(np.percentile(lat, 95)), "max": float(lat.max())},
    }


def _decision(result: EventsResult) -> str:
    """A result's label, or what stands for it before any bin closed (an empty sample)."""
    return "no decision" if result.label is None else result.label


def view(card: ModelDetail, source: dict[str, Any], progress: Progress, total_events: int,
         latencies: list[float], utterances: int = 1) -> RenderableType:
    """The live panel: top classes with bars, then bins, events, spikes and latency."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    result = progress.result
    classes = Table.grid(padding=(0, 1))
    for top in result.top_k:
        bar = "█" * round(30 * top.probability)
        classes.add_row(top.label, f"{top.probability:6.3f}", f"[green]{bar}[/green]")
    stats = Table.grid(padding=(0, 2))
    if utterances > 1:
        stats.add_row("word", f"{progress.utterance + 1} of {utterances}")
    stats.add_row("bins", f"{result.bins.total} × {card.input.dt_us / 1000:g} ms")
    stats.add_row("events sent", f"{progress.events_sent} / {total_events}")
    stats.add_row("spikes / layer", " ".join(str(int(s)) for s in result.spikes.total))
    stats.add_row("latency", f"{progress.latency_ms:.1f} ms (server {result.server_time_ms:.1f}"
                             f" ms, mean {sum(latencies) / len(latencies):.1f} ms)")
    stats.add_row("reconnects", str(progress.reconnects))
    title = f"{card.name} ← {source['file']}"
    return Panel(Group(classes, "", stats), title=title, expand=False)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="served model name")
    p.add_argument("--url", type=url, default="http://127.0.0.1:8000", help="server URL (default http://127.0.0.1:8000)")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--ws", dest="transport", action="store_const", const="ws",
                     help="stream over WebSocket /v1/stream (default)")
    way.add_argument("--http", dest="transport", action="store_const", const="http",
                     help="send batches to a session over HTTP")
    p.set_defaults(transport="ws")
    p.add_argument("--speed", type=speed, default=1.0,
                   help="times real time (default 1.0: sensor pace), or `max` for no pacing")
    p.add_argument("--chunk-ms", dest="chunk_us", type=ms_as_us, default=10_000,
                   help="events are sent in chunks of this much recording time (default 10)")
    p.add_argument("--top-k", type=top_k, default=5, help="classes shown (1 to 1000; default 5)")
    p.add_argument("--wait-s", type=non_negative, default=300.0,
                   help="wait this long for a starting server to be ready (default 300; 0: not "
                        "at all)")
    p.add_argument("--json", action="store_true",
                   help="print the final result as JSON on stdout (the view goes to stderr)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay", help="stream a recording to a server with a live view",
        description="Stream a recording (SHD/DVS HDF5, AEDAT4, Prophesee RAW EVT2/3, N-MNIST "
        ".bin, .npy/.npz, CSV; see docs/clients.md) to a running server at sensor pace or "
        "flat out, showing the classes, bins, spikes and latency as they come.")
    p.add_argument("file", help="the recording")
    p.add_argument("--index", type=int, default=None,
                   help="sample of a multi-sample HDF5 file (stream of an AEDAT4 file)")
    p.add_argument("--count", type=count, default=None,
                   help="stream this many samples of an HDF5 file from --index (0) on, one "
                        "after another in one session, each scored on its own (a reset at "
                        "its start): their decisions and the accuracy against their labels")
    p.add_argument("--segment", action="store_true",
                   help="a continuous recording: cut it into utterances where its activity "
                        "rises (20 ms windows at --min-rate or more, ended by 0.4 s (cochlea) "
                        "or 0.2 s (DVS) below it, or after 2 s or 0.5 s), each scored on its "
                        "own (a reset at its start)")
    p.add_argument("--min-rate", type=positive, default=None, metavar="EVENTS_PER_S",
                   help="with --segment: the rate that makes a window active (default 2500: "
                        "above the shipped sensors' background of about 500)")
    _common(p)
    p.set_defaults(func=_replay)

    q = subparsers.add_parser(
        "listen", help="turn audio into cochlea spikes and stream them",
        description="Encode an audio file with the project's cochlea model (as `s5rf "
        "cochlea`, with the model's channel count) and stream the spikes like `replay`.")
    q.add_argument("audio", type=Path,
                   help="audio file (WAV, FLAC, ...; mixed down to mono, prepared as the "
                        "training words were)")
    q.add_argument("--seed", type=natural, default=0,
                   help="seed of the stochastic spike stage (default 0)")
    q.add_argument("--words", action="store_true",
                   help="the file holds several words: split it at its pauses (0.3 s or "
                        "longer), and score each word on its own (a reset at its start)")
    _common(q)
    q.set_defaults(func=_listen)
