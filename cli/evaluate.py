"""``s5rf eval``: measure a checkpoint on a test file (accuracy, spikes, SynOps, confusion)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.flags import count, image_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on an HDF5 test file")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path, nargs="+", metavar="TEST",
                   help="test HDF5; several are read as one, in order")
    p.add_argument("--filter", help="keep samples by metadata, e.g. engine==festival-hts")
    p.add_argument("--by", action="append", default=[], metavar="FIELD",
                   help="also report the accuracy per value of this metadata field, e.g. "
                        "engine or voice (repeatable)")
    p.add_argument("--batch-size", type=count, default=64)
    p.add_argument("--scan", choices=["sequential", "associative"],
                   help="recurrence implementation (default: the faster for the backend, as "
                        "`s5rf train` measures the card's accuracy)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--confusion-png", type=image_file, help="draw the confusion matrix here")
    p.add_argument("--early-png", type=image_file,
                   help="draw accuracy against the fraction of each recording seen here")
    p.add_argument("--update-card", action="store_true",
                   help="record the metrics in the checkpoint's model.json and redraw its "
                        "confusion.png and early_accuracy.png (by default the checkpoint's "
                        "files are left alone, so other data or a --filter never replace them)")
    p.set_defaults(func=run)


def _update_card(path: Path, metrics: dict[str, Any],
                 draw: Callable[[Path, Path], None]) -> None:
    """Record ``metrics`` in the card of checkpoint ``path`` with the figures ``draw`` makes of
    them, drawn aside first: a figure that cannot be drawn leaves the checkpoint as it was."""
    from model import checkpoint

    final = [path / checkpoint.CONFUSION_PNG, path / checkpoint.EARLY_PNG]
    aside = [png.with_name(f"{png.stem}.partial{png.suffix}") for png in final]
    try:
        draw(*aside)
        checkpoint.record_metrics(path, "eval", metrics)
        for drawn, png in zip(aside, final, strict=True):
            os.replace(drawn, png)
    finally:
        for drawn in aside:
            drawn.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from cli.progress import progress_bar, tracker
    from cli.provenance import this_run
    from model import checkpoint
    from model.datasets import open_dataset
    from model.evaluation import evaluate, load_as_trained
    from model.plots import plot_confusion, plot_early_accuracy
    from model.selection import file_names, select_files

    ckpt = checkpoint.load(args.checkpoint)
    spec = ckpt.card.input
    files = [open_dataset(path) for path in args.data]
    # refused before any work: a malformed filter, one that keeps nothing, an unknown field
    kept = select_files(files, args.filter)
    groups = {field: np.concatenate([ds.extra(field)[idx].astype(str)
                                     for ds, idx in zip(files, kept, strict=True)])
              for field in args.by}
    with progress_bar() as bar:
        data = load_as_trained(files, ckpt.card, kept, tracker(
            bar, f"binning {file_names(files)}"))
    metrics = evaluate(ckpt.params, ckpt.cfg, spec, data, ckpt.card.labels, args.batch_size,
                       args.scan, groups)
    metrics |= this_run(args.command_line)
    def draw(confusion_png: Path | None, early_png: Path | None) -> None:
        if confusion_png:
            plot_confusion(metrics["confusion"], ckpt.card.labels, confusion_png)
        if early_png:
            plot_early_accuracy({ckpt.card.name: metrics["accuracy_vs_fraction_seen"]},
                                early_png)

    draw(args.confusion_png, args.early_png)
    if args.update_card:  # the card's figures go with its numbers, wherever else too
        _update_card(args.checkpoint, metrics, draw)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"accuracy {metrics['accuracy']:.4f} on {metrics['samples']} samples")
        for layer, s in enumerate(metrics["mean_spikes_per_sample_per_layer"]):
            print(f"layer {layer}: {s:.1f} spikes per sample")
        print(f"SynOps per sample {metrics['synops_per_sample']:.3g} "
              f"(dense MACs {metrics['dense_macs_per_sample']:.3g})")
        print("accuracy after seeing " + ", ".join(
            f"{float(f):.0%}: {a:.3f}" for f, a in metrics["accuracy_vs_fraction_seen"].items()))
        for field, by_value in metrics["accuracy_by"].items():
            for value, m in by_value.items():
                print(f"{field} {value}: accuracy {m['accuracy']:.4f} on {m['samples']} samples")
    return 0
