"""``s5rf eval``: measure a checkpoint on a test file (accuracy, spikes, SynOps, confusion)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on an HDF5 test file")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--filter", help="keep samples by metadata, e.g. engine==festival-hts")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--confusion-png", type=Path, help="draw the confusion matrix here")
    p.add_argument("--early-png", type=Path,
                   help="draw accuracy against the fraction of each recording seen here")
    p.add_argument("--update-card", action="store_true",
                   help="record the metrics in the checkpoint's model.json and redraw its "
                        "confusion.png and early_accuracy.png (by default the checkpoint's "
                        "files are left alone, so other data or a --filter never replace them)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.progress import progress_bar, tracker
    from cli.provenance import git_commit, machine
    from model import checkpoint
    from model.batching import load_binned, select
    from model.datasets import open_dataset
    from model.evaluation import evaluate
    from model.plots import plot_confusion, plot_early_accuracy

    ckpt = checkpoint.load(args.checkpoint)
    spec = ckpt.card.input
    ds = open_dataset(args.data)
    if ds.sensor != spec.sensor:
        print(f"error: {args.data} holds {ds.sensor} data, the model takes {spec.sensor}",
              file=sys.stderr)
        return 2
    try:
        select(ds, args.filter)
    except ValueError as e:  # malformed, or names no recording's field or value
        print(f"error: --filter: {e}", file=sys.stderr)
        return 2
    with progress_bar() as bar:
        data = load_binned(ds, spec, args.filter, progress=tracker(bar, f"binning {ds.path}"))
    metrics = evaluate(ckpt.params, ckpt.cfg, spec, data, ckpt.card.labels, args.batch_size)
    metrics["command"] = args.command_line
    metrics["commit"] = git_commit()
    metrics["machine"] = machine()
    confusion_png, early_png = args.confusion_png, args.early_png
    if args.update_card:  # the card's figures go with the card's numbers
        confusion_png = confusion_png or args.checkpoint / "confusion.png"
        early_png = early_png or args.checkpoint / "early_accuracy.png"
    if confusion_png is not None:
        plot_confusion(metrics["confusion"], ckpt.card.labels, confusion_png)
    if early_png is not None:
        plot_early_accuracy({ckpt.card.name: metrics["accuracy_vs_fraction_seen"]}, early_png)
    if args.update_card:
        checkpoint.record_metrics(args.checkpoint, "eval", metrics)
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
    return 0
