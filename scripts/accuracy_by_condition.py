"""Accuracy of a cochlea checkpoint on a spoken-digits test file, by recording condition.

Every recording of ``s5rf data speech`` carries the augmentation it got (``extra/settings``);
this groups the test recordings by added noise and its SNR, reverberation, telephone band,
engine and voice, and measures the checkpoint on each group from one pass of the same
offline path as ``s5rf eval``. It separates what is hard about the held-out voices from what
is hard about the room and the line. ``digit_accuracy`` also counts the right digit in the
other language (SHD's label k + 10 is the German word for the English word k).

    python scripts/accuracy_by_condition.py --checkpoint checkpoints/digits-cochlea \\
        --data data/speech/test.h5 [--json checkpoints/digits-cochlea/accuracy_by_condition.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from model import checkpoint
from model.datasets import open_dataset
from model.digit_words import same_digit
from model.evaluation import load_as_trained, predict

# A test on a recording's augmentation settings and its source (``engine`` and ``voice``).
Conditions = dict[str, Callable[[dict[str, Any], dict[str, str]], bool]]

# Each row: a name and its test.
CONDITIONS: Conditions = {
    "all": lambda a, s: True,
    "no added noise": lambda a, s: "noise" not in a,
    "no noise, or SNR >= 20 dB": lambda a, s: a.get("snr_db", np.inf) >= 20,
    "SNR 10-20 dB": lambda a, s: 10 <= a.get("snr_db", np.inf) < 20,
    "SNR < 10 dB": lambda a, s: a.get("snr_db", np.inf) < 10,
    "babble noise": lambda a, s: a.get("noise") == "babble",
    "no reverberation": lambda a, s: "rt60_s" not in a,
    "reverberation": lambda a, s: "rt60_s" in a,
    "telephone band": lambda a, s: "telephone" in a,
    # random equalisation and band limits may still apply to these
    "clean: no noise, no reverberation, no telephone": lambda a, s: not (
        {"noise", "rt60_s", "telephone"} & a.keys()),
}


def source_is(field: str, name: str) -> Callable[[dict[str, Any], dict[str, str]], bool]:
    return lambda augment, source: source[field] == name


def by_condition(ckpt_dir: Path, data_file: Path) -> dict[str, dict[str, float | int]]:
    """Samples, accuracy and digit accuracy per condition, per engine and per voice."""
    ckpt = checkpoint.load(ckpt_dir)
    with open_dataset(data_file) as ds:
        augment = [json.loads(s)["augment"] for s in ds.extra("settings")]
        sources = [{"engine": str(e), "voice": str(v)}
                   for e, v in zip(ds.extra("engine"), ds.extra("voice"), strict=True)]
        data = load_as_trained(ds, ckpt.card)
    predictions = predict(ckpt.params, ckpt.cfg, ckpt.card.input, data)
    correct = predictions.correct
    digit = same_digit(predictions.predicted, predictions.labels)
    rules = dict(CONDITIONS)
    for field in ("engine", "voice"):
        rules |= {f"{field} {name}": source_is(field, name)
                  for name in sorted({s[field] for s in sources})}
    table: dict[str, dict[str, float | int]] = {}
    for name, rule in rules.items():
        keep = np.array([rule(a, s) for a, s in zip(augment, sources, strict=True)])
        if not keep.any():
            continue
        accuracy = float(np.mean(correct[keep]))
        table[name] = {"samples": int(keep.sum()), "accuracy": accuracy,
                       "digit_accuracy": float(np.mean(digit[keep]))}
        print(f"{name:>50}: {accuracy:.3f} on {int(keep.sum())} recordings (digit "
              f"{table[name]['digit_accuracy']:.3f})", flush=True)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="test HDF5 of s5rf data speech")
    ap.add_argument("--json", type=Path, help="also write the table here")
    args = ap.parse_args()
    table = by_condition(args.checkpoint, args.data)
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(args.checkpoint),
                                         "data": str(args.data), "conditions": table},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
