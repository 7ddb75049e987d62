"""``s5rf data``: build datasets, one sub-command each (``s5rf data dvs``, ...)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.flags import channels, count, natural, output_dir, output_file_with_folders
from cli.progress import progress_bar, tracker


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate a training/test dataset")
    datasets = p.add_subparsers(dest="dataset", required=True)
    register_dvs(datasets)
    register_speech(datasets)
    register_audio(datasets)
    register_samples(datasets)


def register_dvs(datasets: argparse._SubParsersAction) -> None:
    p = datasets.add_parser(
        "dvs",
        help="DVS digits: handwritten digits recorded N-MNIST-style by a simulated DVS",
    )
    p.add_argument("--out", type=output_dir, default="data/dvs", help="output directory")
    p.add_argument("--seed", type=natural, default=0, help="split, sensor and noise seed")
    p.add_argument("--workers", type=count, default=1, help="processes (output is the same)")
    p.add_argument("--copies", type=count, default=2, help="jittered recordings per train digit")
    p.add_argument("--limit", type=count, help="only the first N samples of each split (smoke)")
    p.set_defaults(func=run_dvs)


def run_dvs(args: argparse.Namespace) -> int:
    from model.dvs_data import DigitsRecipe, generate, plan

    recipe = DigitsRecipe(seed=args.seed, train_copies=args.copies)
    total = sum(len(samples[: args.limit]) for samples in plan(recipe).values())
    command = (
        f"s5rf data dvs --out {args.out} --seed {args.seed} --workers {args.workers} "
        f"--copies {args.copies}" + (f" --limit {args.limit}" if args.limit else "")
    )
    with progress_bar() as bar:
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


def register_speech(datasets: argparse._SubParsersAction) -> None:
    p = datasets.add_parser(
        "speech",
        help="spoken digits (SHD's 20 classes) from speech synthesisers, cochlea-encoded",
        description="Synthesise English and German digits with every installed voice of the "
        "chosen engines (espeak-ng and its Klatt voices, festival's diphone and HTS voices, "
        "FreeTTS, MBROLA, Pico; see --engines) and take turns with recorded speakers where "
        "given (--recordings), augment them (speaker, room, noise, channel), "
        "encode them with the cochlea and write train.h5/test.h5 (SHD layout, split by voice) "
        "and recipe.json. "
        "Resumable: recordings are cached under OUT/cache; rerun to continue or extend.",
    )
    p.add_argument("--out", type=output_dir, default="data/speech", help="output directory")
    p.add_argument("--train", type=count, default=10_000, help="training recordings")
    p.add_argument("--test", type=count, default=2_000, help="test recordings (held-out voices)")
    p.add_argument("--seed", type=natural, default=0, help="synthesis and augmentation seed")
    p.add_argument("--workers", type=count, default=2, help="processes (output is the same)")
    p.add_argument("--channels", type=channels, default=700, help="cochlea channels")
    p.add_argument("--formants", type=float, nargs=2, default=(1.0, 1.0), metavar=("LO", "HI"),
                   help="warp the espeak-ng training voices' formants by a vocal-tract factor "
                        "drawn from [LO, HI] per utterance (default 1 1: voices as they are)")
    p.add_argument("--formant-jitter", type=float, default=0.0,
                   help="then move each formant by up to this fraction more")
    # Not argparse choices: the engine list lives with the synthesisers, which `s5rf` must
    # not import to start.
    p.add_argument("--engines", nargs="+", default=(), metavar="ENGINE",
                   help="only these engines' voices (default: every installed synthesiser), "
                        "e.g. espeak-ng freetts mbrola; `recorded` alone: only the speakers of "
                        "--recordings")
    p.add_argument("--recordings", type=Path,
                   help="real speakers too: a folder of recorded takes, named as the Free "
                        "Spoken Digit Dataset and AudioMNIST (<digit>_<speaker>_<n>.wav), the "
                        "Heidelberg Digits or Speech Commands (<word>/<speaker>_nohash_<n>.wav) "
                        "name them, or in <speaker>/<class key>/ folders; its speakers take "
                        "turns as the `recorded` engine")
    p.add_argument("--recorded-test", nargs="+", default=(), metavar="SPEAKER",
                   help="recorded speakers held out for the test split (default: none)")
    p.add_argument("--recorded-turns", type=count, default=1, metavar="K",
                   help="of every round of turns, the recorded speakers take K after one per "
                        "synthesiser (default 1: as one more engine)")
    p.add_argument("--spike-draws", type=count, default=1,
                   help="encode each training recording this many times, the cochlea's spike "
                        "stage drawn anew each time (train.h5 holds every recording's first "
                        "draw, then every second, ...: extra/draw; test: one draw)")
    p.set_defaults(func=run_speech, resumes=True)


def run_speech(args: argparse.Namespace) -> int:
    import itertools

    from model.errors import InputError
    from model.speech_data import RECORDED, Recipe, generate
    from model.speech_synth import ENGINES

    if unknown := sorted(set(args.engines) - {*ENGINES, RECORDED}):
        raise InputError(f"unknown engines {unknown}; choose from {', '.join(ENGINES)}, "
                         f"{RECORDED}")
    recipe = Recipe(seed=args.seed, n_train=args.train, n_test=args.test, channels=args.channels,
                    formant_range=tuple(args.formants), formant_jitter=args.formant_jitter,
                    engines=tuple(args.engines),
                    recordings=str(args.recordings) if args.recordings else "",
                    recorded_test=tuple(args.recorded_test), recorded_turns=args.recorded_turns,
                    spike_draws=args.spike_draws)
    steps = generate(recipe, args.out, workers=args.workers)
    first = next(steps)  # the recipe checked (a refusal is one line, not under a bar)
    with progress_bar() as bar:
        update = tracker(bar, "speaking digits")
        for done, total in itertools.chain([first], steps):
            update(done, total)
    print(json.dumps({"out": str(args.out), "train": args.train, "test": args.test}))
    return 0


def register_audio(datasets: argparse._SubParsersAction) -> None:
    p = datasets.add_parser(
        "audio",
        help="your own labelled recordings (ROOT/<class>/*.wav), cochlea-encoded, for s5rf eval",
        description="Encode real recordings with the cochlea into one SHD-layout file that "
        "`s5rf eval` scores. ROOT holds a folder per class named by SHD's keys (zero ... nine, "
        "null ... neun; `fuenf` for fünf) with WAV, FLAC, OGG or AIFF files of any sample rate. "
        "Resumable: each file's events are kept in OUT.parts/ until OUT is written; rerun "
        "after an interruption to continue.",
    )
    p.add_argument("root", type=Path, help="folder of class folders")
    p.add_argument("--out", type=output_file_with_folders, required=True,
                   help="output HDF5 file (its folder is made if missing)")
    p.add_argument("--seed", type=natural, default=0, help="seed of the cochlea's spike stage")
    p.add_argument("--channels", type=channels, default=700, help="cochlea channels")
    p.add_argument("--workers", type=count, default=2, help="processes (output is the same)")
    p.set_defaults(func=run_audio, resumes=True)


def run_audio(args: argparse.Namespace) -> int:
    from model.audio_folder import encode_folder
    from model.digit_words import KEYS

    with progress_bar() as bar:
        files = encode_folder(args.root, args.out, KEYS, seed=args.seed, channels=args.channels,
                              workers=args.workers, progress=tracker(bar, "encoding recordings"))
    print(json.dumps({"out": str(args.out), "recordings": len(files)}))
    return 0


def register_samples(datasets: argparse._SubParsersAction) -> None:
    p = datasets.add_parser(
        "samples", help="copy a few test recordings per class into samples/NAME for demos "
                        "(recordings without events are skipped)")
    p.add_argument("--data", type=Path, required=True, help="test HDF5 file")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="the checkpoint whose predictions are recorded beside the samples")
    p.add_argument("--out", type=output_dir, required=True, help="e.g. samples/digits-dvs")
    p.add_argument("--per-class", type=count, default=2)
    p.add_argument("--seed", type=natural, default=0)
    p.add_argument("--max-events", type=count, help="skip recordings with more events")
    p.add_argument("--filter", help="choose among the recordings this keeps, e.g. "
                                    "engine!=recorded (s5rf eval's syntax)")
    p.set_defaults(func=run_samples)


def run_samples(args: argparse.Namespace) -> int:
    import numpy as np

    from model import checkpoint
    from model.binning import bin_recording
    from model.datasets import open_dataset
    from model.evaluation import data_fits_model
    from model.network import run_offline
    from model.samples import export_samples
    from model.selection import select

    ckpt = checkpoint.load(args.checkpoint)
    dataset = open_dataset(args.data)
    data_fits_model(dataset, ckpt.card)

    def predict(events: np.ndarray) -> int:
        bins = bin_recording(events, ckpt.card.input)
        _, out = run_offline(ckpt.params, bins[None], np.array([len(bins)]), ckpt.cfg)
        return int(np.argmax(out["log_probs"][0]))

    index = export_samples(dataset, args.out, args.per_class, predict, args.seed,
                           args.max_events, select(dataset, args.filter))
    print(json.dumps({"out": str(args.out), "samples": len(index)}))
    return 0
