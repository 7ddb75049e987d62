"""Leave-one-engine-out on the spoken-digits dataset: for each synthesis engine, train on all
the others and test on the one left out; print the matrix and write it as JSON.

    python scripts/leave_one_engine_out.py --data data/speech --out data/runs/loeo \\
        --epochs 10 --recordings 3000 --json checkpoints/digits-cochlea/leave_one_engine_out.json

``--recordings N`` uses the first N training recordings of the dataset's cache (a quicker
matrix; the test split is used whole).

An engine with held-out test voices is tested on them (test.h5); an engine that only has
training voices (festival-hts and FreeTTS have one speaker each) is tested on all of its
recordings (train.h5), which the model trained without it never saw. The network without an
engine also trains without that engine's speakers under other names (FreeTTS's speaker is
festival's kal_diphone) and, for an espeak-ng engine, without babble noise, which is
espeak-ng voices speaking.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np

from cli.flags import count
from cli.main import main as s5rf
from model import speech_data
from model.datasets import open_dataset


def train_filter(engine: str, voices: set[str]) -> str:
    """What a network that never heard ``engine`` trains on: no recording of it, of its
    speakers under another engine's name (``SAME_SPEAKER``), or, for an espeak-ng engine,
    with babble noise (espeak-ng voices speaking). ``voices``: the training file's voice ids."""
    rules = [f"engine!={engine}"]
    for same in speech_data.SAME_SPEAKER:
        if any(v.startswith(f"{engine}/") for v in same):
            rules += [f"voice!={v.split('/', 1)[1]}" for v in sorted(same & voices)
                      if not v.startswith(f"{engine}/")]
    if engine.startswith("espeak-ng"):
        rules.append("noise!=babble")
    return ",".join(rules)


# `s5rf train` flags each fold sets itself: its test file and which engine it leaves out.
FOLD_FLAGS = frozenset({"--test", "--train-filter", "--test-filter"})


def run(data: Path, out: Path, epochs: int, extra: list[str]) -> dict[str, dict[str, object]]:
    with open_dataset(data / "train.h5") as train:
        pairs = zip(train.extra("engine"), train.extra("voice"), strict=True)
        voices = {f"{engine}/{voice}" for engine, voice in pairs}
    train_engines = sorted({v.split("/", 1)[0] for v in voices})
    test_engines = set(open_dataset(data / "test.h5").extra("engine"))
    results: dict[str, dict[str, object]] = {}
    for engine in train_engines:
        run_dir = out / engine
        # an engine without test voices is tested on its training recordings, below
        tested = ["--test-filter", f"engine=={engine}"] if engine in test_engines else []
        code = s5rf(["train", "--data", str(data / "train.h5"), "--test", str(data / "test.h5"),
                     "--out", str(run_dir), "--epochs", str(epochs),
                     "--train-filter", train_filter(engine, voices), *tested, *extra])
        if code:
            raise SystemExit(f"s5rf train without {engine} failed ({code})")
        held_out = data / ("test.h5" if engine in test_engines else "train.h5")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = s5rf(["eval", "--checkpoint", str(run_dir), "--data", str(held_out),
                         "--filter", f"engine=={engine}", "--json"])
        if code:
            raise SystemExit(f"s5rf eval of the network without {engine} failed ({code})")
        metrics = json.loads(buffer.getvalue())
        results[engine] = {"held_out_file": held_out.name, "samples": metrics["samples"],
                           "accuracy": metrics["accuracy"]}
        print(f"{engine:>20}: {metrics['accuracy']:.3f} on {metrics['samples']} recordings")
    accs = [float(r["accuracy"]) for r in results.values()]  # type: ignore[arg-type]
    print(f"{'mean':>20}: {np.mean(accs):.3f}")
    return results


def first_recordings(data: Path, n: int, out: Path) -> Path:
    """A copy of the dataset with its first ``n`` training recordings (from ``data``'s cache)."""
    described = json.loads((data / "recipe.json").read_text())
    recipe = dataclasses.replace(speech_data.Recipe.from_json(described), n_train=n)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "cache").exists():
        os.symlink((data / "cache").resolve(), out / "cache")
    for split in speech_data.SPLITS:
        speech_data.write_split(recipe, out, split)
    (out / "recipe.json").write_text(json.dumps({**described, "n_train": n}, indent=2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/speech"))
    ap.add_argument("--out", type=Path, default=Path("data/runs/loeo"))
    ap.add_argument("--epochs", type=count, default=10)
    ap.add_argument("--recordings", type=count, help="only the first N training recordings")
    ap.add_argument("--json", type=Path, help="where to write the matrix")
    args, extra = ap.parse_known_args()  # the rest goes to `s5rf train`
    # given again after the fold's own, argparse would keep these and undo the fold
    # (argparse takes an abbreviation of a flag too: --train-f is --train-filter)
    given = {a.split("=")[0] for a in extra if a.startswith("--") and a != "--"}
    if taken := sorted(g for g in given if any(f.startswith(g) for f in FOLD_FLAGS)):
        ap.error(f"{', '.join(taken)} are set per fold; they cannot be passed to s5rf train")
    data = args.data
    if args.recordings:
        held = json.loads((args.data / "recipe.json").read_text())["n_train"]
        if args.recordings > held:
            ap.error(f"--recordings {args.recordings}: {args.data} holds {held} training "
                     "recordings")
        data = first_recordings(args.data, args.recordings, args.out / "data")
    results = run(data, args.out, args.epochs, extra)
    if args.json:
        args.json.write_text(json.dumps({"epochs": args.epochs, "recordings": args.recordings,
                                         "train_args": extra, "results": results},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
