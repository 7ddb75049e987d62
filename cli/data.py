"""``s5rf data``: build datasets, one sub-command each (``s5rf data dvs``, ...)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate a training/test dataset")
    datasets = p.add_subparsers(dest="dataset", required=True)
    register_dvs(datasets)


def register_dvs(datasets: argparse._SubParsersAction) -> None:
    p = datasets.add_parser(
        "dvs",
        help="DVS digits: handwritten digits recorded N-MNIST-style by a simulated DVS",
    )
    p.add_argument("--out", type=Path, default=Path("data/dvs"), help="output directory")
    p.add_argument("--seed", type=int, default=0, help="split, sensor and noise seed")
    p.add_argument("--workers", type=int, default=1, help="processes (output is the same)")
    p.add_argument("--copies", type=int, default=2, help="jittered recordings per train digit")
    p.add_argument("--limit", type=int, help="only the first N samples of each split (smoke)")
    p.set_defaults(func=run_dvs)


def run_dvs(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from model.dvs_data import DigitsRecipe, generate, plan

    recipe = DigitsRecipe(seed=args.seed, train_copies=args.copies)
    total = sum(len(samples[: args.limit]) for samples in plan(recipe).values())
    command = (
        f"s5rf data dvs --out {args.out} --seed {args.seed} --workers {args.workers} "
        f"--copies {args.copies}" + (f" --limit {args.limit}" if args.limit else "")
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn()) as bar:
        task = bar.add_task("recording digits", total=total)
        info = generate(
            args.out,
            recipe,
            workers=args.workers,
            limit=args.limit,
            progress=lambda n: bar.advance(task, n),
            command=command,
        )
    print(json.dumps({"out": str(args.out), "seconds": info["seconds"], **info["splits"]}))
    return 0
