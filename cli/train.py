"""``s5rf train``: train an S5-RF network on an SHD/SSC or DVS HDF5 file and write a checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.flags import count, fraction, natural, non_negative, output_dir, positive
from cli.progress import epoch_bar, progress_bar, tracker
from cli.provenance import data_recipe, this_run

if TYPE_CHECKING:
    from model.batching import BinnedSet
    from model.datasets import EventDataset
    from model.spec import InputSpec, ModelConfig, TrainConfig
    from model.training import TrainRun


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network and write a checkpoint directory")
    p.add_argument("--data", required=True, type=Path, nargs="+", metavar="TRAIN",
                   help="training HDF5 (SHD layout or DVS); several are read as one, in order "
                        "(a dataset made in parts; SSC's train and valid files, though the "
                        "paper's figure trains on train alone)")
    p.add_argument("--test", required=True, type=Path, help="test HDF5, same layout")
    p.add_argument("--out", required=True, type=output_dir, help="checkpoint directory")
    p.add_argument("--preset", default="shd", help="architecture preset: shd, ssc, tiny")
    p.add_argument("--name", help="model name (default: the --out directory's name)")
    p.add_argument("--description", default="",
                   help="one line for the model card and GET /v1/models")
    p.add_argument("--epochs", type=count)
    p.add_argument("--batch-size", type=count)
    p.add_argument("--lr", type=positive)
    p.add_argument("--lr-ssm", type=positive)
    p.add_argument("--weight-decay", type=non_negative,
                   help="AdamW's, on the weights (Adam trains the eigenvalues and steps)")
    p.add_argument("--seed", type=natural)
    p.add_argument("--neurons", type=count, nargs="+",
                   help="neurons per layer (overrides preset)")
    p.add_argument("--blocks", type=count)
    p.add_argument("--dropout", type=fraction,
                   help="on the currents of the layers between the first and the last, as in "
                        "the reference: a 2-layer network (the shd preset's) has none")
    p.add_argument("--cutmix", action=argparse.BooleanOptionalAction, default=None)
    add_input_flags(p)
    p.add_argument("--max-ms", type=positive,
                   help="cut recordings after the whole bins within this many milliseconds "
                        "(recorded in the card; `s5rf eval` cuts them the same)")
    p.add_argument("--train-filter",
                   help="keep training samples by metadata, e.g. engine!=festival-hts")
    p.add_argument("--test-filter", help="keep test samples by metadata, e.g. engine==festival-hts")
    add_augment_flags(p)
    p.add_argument("--scan", choices=["sequential", "associative"],
                   help="recurrence implementation (default: the faster for the backend)")
    p.set_defaults(func=run, resumes=True)


def add_input_flags(p: argparse.ArgumentParser) -> None:
    """How events become input bins (``input_spec``): shared with the baselines in scripts/."""
    p.add_argument("--dt-us", type=count, default=4000, help="time-bin width (us)")
    p.add_argument("--downsample", type=count, default=5,
                   help="cochlea channel pooling factor")
    p.add_argument("--pool", type=count, default=1, help="DVS spatial pooling factor")
    p.add_argument("--counts", action="store_true", help="feed event counts, not binary bins")


def add_augment_flags(p: argparse.ArgumentParser) -> None:
    """Training-time augmentation of events and bins (zero disables each one)."""
    p.add_argument("--jitter-us", type=non_negative, default=0.0, help="event time-jitter std")
    p.add_argument("--drop", type=fraction, default=0.0, help="event drop probability")
    p.add_argument("--shift", type=natural, default=0, help="max channel/pixel shift of events")
    p.add_argument("--mask-time", type=natural, default=0, help="max masked time span (bins)")
    p.add_argument("--mask-channels", type=natural, default=0,
                   help="max masked feature span")


def run(args: argparse.Namespace) -> int:
    from model.augment import EventAugment
    from model.checkpoint import CONFUSION_PNG, EARLY_PNG
    from model.ssm import default_scan
    from model.training import TrainRun, saved_state, train

    name = _model_name(args)
    train_files, test_ds = _datasets(args)
    train_ds = train_files[0]  # its sensor, sizes and classes are every file's
    spec = input_spec(args, train_ds)
    cfg, tc = _configs(args, spec, len(train_ds.keys))
    train_set, test_set = _binned(args, train_files, test_ds, spec, tc.max_bins)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(train_set)} training and {len(test_set)} test recordings; {cfg}",
          file=sys.stderr)
    run_cfg = TrainRun(
        cfg=cfg, tc=tc, spec=spec, train=train_set, test=test_set, out=args.out,
        scan=args.scan or default_scan(),
        aug=EventAugment(jitter_us=args.jitter_us, drop=args.drop, max_shift=args.shift),
        mask_time=args.mask_time, mask_channels=args.mask_channels,
    )
    saved = saved_state(run_cfg)  # another run's is refused here, before any progress bar
    if saved is None:  # the figures of a network trained here before are not this one's
        for stale in (CONFUSION_PNG, EARLY_PNG):
            (args.out / stale).unlink(missing_ok=True)
    if saved is not None and saved["epoch"] >= tc.epochs:
        print(f"{args.out} has done its {tc.epochs} epochs already; nothing to train",
              file=sys.stderr)
        return 0
    with epoch_bar(tc.epochs, first=saved["epoch"] + 1 if saved else 1) as progress:
        train(run_cfg, _card_writer(args, name, run_cfg, train_ds.keys), progress)
    return 0


def _binned(args: argparse.Namespace, train_files: list[EventDataset], test_ds: EventDataset,
            spec: InputSpec, max_bins: int | None) -> tuple[BinnedSet, BinnedSet]:
    """The training and test recordings the filters keep, binned for ``spec``."""
    from model.batching import load_binned
    from model.selection import file_names, select_files

    # refused before any work: a malformed filter, or one that keeps nothing
    selections = [(files, select_files(files, where))
                  for files, where in ((train_files, args.train_filter),
                                       ([test_ds], args.test_filter))]
    with progress_bar() as bar:
        train_set, test_set = (
            load_binned(files, spec, kept, max_bins, tracker(bar, f"binning {file_names(files)}"))
            for files, kept in selections)
    return train_set, test_set


def _card_writer(args: argparse.Namespace, name: str, run_cfg: TrainRun,
                 labels: list[str]) -> Callable[[dict[str, Any], Any], None]:
    """``on_epoch(record, params)``: save the epoch's network with its card and curves."""
    from model import checkpoint
    from model.plots import plot_training
    from model.training import read_log

    provenance = {
        "data": {**_training_files(args.data), "test": str(args.test),
                 "train_filter": args.train_filter, "test_filter": args.test_filter},
        **this_run(args.command_line),
    }

    def on_epoch(record: dict[str, Any], params: Any) -> None:
        log = read_log(args.out)
        card = checkpoint.ModelCard(
            name=name, description=args.description, architecture=run_cfg.cfg,
            input=run_cfg.spec, labels=labels, training=run_cfg.tc,
            metrics={"test_accuracy": record["test_acc"], "epochs_trained": record["epoch"],
                     "train_seconds": sum(r["seconds"] for r in log)},
            provenance=provenance,
        )
        checkpoint.save(args.out, card, params)
        plot_training(log, args.out / "training_curves.png")
        print(json.dumps(record), file=sys.stderr)

    return on_epoch


def _model_name(args: argparse.Namespace) -> str:
    """``--name``, else the output folder's; refused unless clients can put it in a URL."""
    from model.checkpoint import MODEL_NAME
    from model.errors import InputError

    name: str = args.name or Path(os.path.abspath(args.out)).name  # "." named, no link followed
    if not re.fullmatch(MODEL_NAME, name):
        raise InputError(f"model name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-' "
                         "(clients put it in URLs), starting with a letter or digit; give --name")
    return name


def _datasets(args: argparse.Namespace) -> tuple[list[EventDataset], EventDataset]:
    """The training files and the test file, opened; refused unless the preset is known and
    the files agree on sensor, sizes and classes."""
    from model.datasets import open_dataset
    from model.errors import InputError
    from model.spec import PRESETS

    if args.preset not in PRESETS:
        raise InputError(f"unknown preset {args.preset!r}; choose one of {sorted(PRESETS)}")
    train_files = [open_dataset(path) for path in args.data]
    test_ds = open_dataset(args.test)
    for other in (*train_files[1:], test_ds):
        if mismatch := _mismatch(train_files[0], other):
            raise InputError(f"{other.path} does not match {train_files[0].path}: {mismatch}")
    return train_files, test_ds


def input_spec(args: argparse.Namespace, data: EventDataset) -> InputSpec:
    """The network's input: the training file's sensor, binned and pooled as the flags say."""
    from pydantic import ValidationError

    from model.errors import InputError
    from model.spec import InputSpec

    fields: dict[str, Any] = dict(sensor=data.sensor, dt_us=args.dt_us, binarize=not args.counts)
    if data.sensor == "cochlea":
        fields.update(channels=data.channels, downsample=args.downsample)
    else:
        fields.update(width=data.width, height=data.height, pool=args.pool)
    try:
        return InputSpec(**fields)
    except ValidationError as exc:  # sizes the flags cannot pool: one line, not a traceback
        raise InputError("; ".join(str(e.get("ctx", {}).get("error", e["msg"]))
                                   for e in exc.errors())) from exc


def _configs(args: argparse.Namespace, spec: InputSpec,
             n_classes: int) -> tuple[ModelConfig, TrainConfig]:
    """The preset's network and training settings, with the flags that override them."""
    from model.errors import InputError
    from model.spec import PRESETS, preset_config

    overrides: dict[str, Any] = {
        k: v for k, v in (("blocks", args.blocks), ("dropout", args.dropout)) if v is not None}
    if args.neurons:
        overrides["neurons"] = tuple(args.neurons)
    try:
        cfg = preset_config(args.preset, spec.features, n_classes, **overrides)
    except ValueError as exc:  # e.g. neurons that the blocks do not divide
        raise InputError(str(exc)) from exc
    if args.dropout and cfg.n_layers < 3:
        raise InputError(f"--dropout acts on the layers between the first and the last; a "
                         f"{cfg.n_layers}-layer network has none (add --neurons for a third)")
    tc = dataclasses.replace(PRESETS[args.preset].train, **{
        k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                          ("lr", args.lr), ("lr_ssm", args.lr_ssm),
                          ("weight_decay", args.weight_decay), ("seed", args.seed),
                          ("cutmix", args.cutmix)) if v is not None})
    if args.max_ms:
        max_bins = int(args.max_ms * 1000 // args.dt_us)
        if max_bins < 1:
            raise InputError(f"--max-ms {args.max_ms} is shorter than one bin "
                             f"({args.dt_us} us): it would cut every recording to nothing")
        tc = dataclasses.replace(tc, max_bins=max_bins)
    return cfg, tc


def _mismatch(train_ds: EventDataset, other: EventDataset) -> str | None:
    """What differs between the (first) training file's sensor and classes and another
    file's, if anything."""
    for field in ("sensor", "channels", "width", "height", "keys"):
        a, b = getattr(train_ds, field), getattr(other, field)
        if a != b:
            return f"{field} {b!r}, not {a!r}"
    return None


def _training_files(paths: list[Path]) -> dict[str, Any]:
    """The card's record of its training data: the file and the recipe that made it (None
    without a recipe.json beside it); for several files, a list of each."""
    if len(paths) == 1:
        return {"train": str(paths[0]), "recipe": data_recipe(paths[0])}
    return {"train": [str(p) for p in paths], "recipe": [data_recipe(p) for p in paths]}
