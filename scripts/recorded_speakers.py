"""A spoken-digits checkpoint on recorded speakers, per speaker: every take of a corpus in the
layouts of ``model/recorded_speech.py`` (the Free Spoken Digit Dataset's and AudioMNIST's
``<digit>_<speaker>_<n>.wav``, the Heidelberg Digits' ``lang-..._speaker-NN_...``, Speech
Commands' ``<word>/<hash>_nohash_<n>.wav``, or ``<speaker>/<class key>/`` folders).

Each take is prepared as every training word was and encoded by the cochlea (the spike stage
of the corpus's i-th take draws from ``(seed, i)``), then classified. SHD's classes hold every
digit twice, in English and German, often alike (four/vier, nine/neun): ``digit_accuracy``
also counts the right digit in the other language. Speakers a checkpoint trained on are
marked, since their accuracy says nothing about unseen voices.

    git clone https://github.com/Jakobovski/free-spoken-digit-dataset data/fsdd
    python scripts/recorded_speakers.py --checkpoint checkpoints/digits-cochlea \\
        --recordings data/fsdd/recordings [--takes-per-word 20] [--json OUT] [--update-card]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model import checkpoint
from model.audio_folder import encode_files
from model.datasets import write_shd
from model.digit_words import KEYS, same_digit
from model.evaluation import predict_file
from model.recorded_speech import Take, find_takes


def chosen_takes(root: str, per_word: int | None,
                 speakers: Sequence[str] = ()) -> list[Take]:
    """The first ``per_word`` takes (by path) of each speaker's word (all when None), of
    ``speakers`` only where named."""
    seen: dict[tuple[str, int], int] = {}
    chosen = []
    for take in find_takes(root):
        if speakers and take.speaker not in speakers:
            continue
        key = (take.speaker, take.label)
        seen[key] = seen.get(key, 0) + 1
        if per_word is None or seen[key] <= per_word:
            chosen.append(take)
    return chosen


def score(ckpt: checkpoint.Checkpoint, root: str, *, per_word: int | None = None,
          speakers: Sequence[str] = (), seed: int = 0, workers: int = 2) -> dict[str, Any]:
    """Accuracy over all takes (of ``speakers`` where named) and per speaker, with each
    speaker's confusions."""
    channels = ckpt.card.input.cochlea_channels()
    takes = chosen_takes(root, per_word, speakers)
    if not takes:
        raise SystemExit(f"no takes of {', '.join(speakers)} in {root}")
    # by its place in the whole corpus: a take's spikes do not depend on what else is scored
    place = {take: i for i, take in enumerate(find_takes(root))}
    events = [draws[0] for draws in encode_files(
        [(Path(root) / t.path, place[t]) for t in takes], [seed], channels=channels,
        workers=workers)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "takes.h5"
        write_shd(path, events, [t.label for t in takes], keys=KEYS, channels=channels)
        predicted = predict_file(ckpt, path)
    trained_on = set(_trained_speakers(ckpt.card))
    scored: dict[str, dict[str, Any]] = {}
    for take, p in zip(takes, predicted, strict=True):
        s = scored.setdefault(take.speaker, {"takes": 0, "right": 0, "right_digit": 0,
                                             "heard_in_training": take.speaker in trained_on,
                                             "confusions": {}})
        s["takes"] += 1
        s["right"] += int(p) == take.label
        s["right_digit"] += int(same_digit(p, take.label))
        if int(p) != take.label:
            pair = f"{KEYS[take.label]}->{ckpt.card.labels[int(p)]}"
            s["confusions"][pair] = s["confusions"].get(pair, 0) + 1
    for s in scored.values():
        s["accuracy"] = s["right"] / s["takes"]
        s["digit_accuracy"] = s["right_digit"] / s["takes"]
        s["confusions"] = dict(sorted(s["confusions"].items(), key=lambda kv: -kv[1])[:5])
    unseen = [s for s in scored.values() if not s["heard_in_training"]]
    return {
        "checkpoint": str(ckpt.path), "recordings": root, "takes": len(takes),
        "takes_per_word": per_word, "seed": seed,
        "accuracy": sum(s["right"] for s in scored.values()) / len(takes),
        "unseen_speakers_accuracy": (sum(s["right"] for s in unseen)
                                     / sum(s["takes"] for s in unseen)) if unseen else None,
        "speakers": scored,
    }


def _trained_speakers(card: checkpoint.ModelCard) -> list[str]:
    """The recorded speakers of the card's training data (its recipes' ``recorded/<name>``
    training voices); none for a checkpoint trained on synthetic voices alone, or on data
    without a recipe (``s5rf data audio``, the real SHD: its card's recipe is null)."""
    recipe = card.provenance.get("data", {}).get("recipe")
    recipes = recipe if isinstance(recipe, list) else [recipe]  # a list: several files
    return sorted({v.split("/", 1)[1] for r in recipes if r
                   for v in r.get("voices", {}).get("train", []) if v.startswith("recorded/")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--recordings", type=Path, required=True, help="folder of recorded takes")
    ap.add_argument("--takes-per-word", type=int, help="only each speaker's first N takes of a "
                                                       "word (default: all)")
    ap.add_argument("--speakers", nargs="+", default=(), help="only these speakers' takes")
    ap.add_argument("--seed", type=int, default=0, help="seed of the cochlea's spike stage")
    ap.add_argument("--workers", type=int, default=2, help="encoding processes")
    ap.add_argument("--json", type=Path, help="also write the result here")
    ap.add_argument("--update-card", action="store_true",
                    help="record the result in the checkpoint's model.json (`recorded_speakers`)")
    args = ap.parse_args()
    ckpt = checkpoint.load(args.checkpoint)
    result = score(ckpt, str(args.recordings), per_word=args.takes_per_word,
                   speakers=args.speakers, seed=args.seed, workers=args.workers)
    for name, s in result["speakers"].items():
        mark = " (heard in training)" if s["heard_in_training"] else ""
        print(f"{name:>12}: {s['accuracy']:6.1%} of {s['takes']} takes (right digit "
              f"{s['digit_accuracy']:6.1%}){mark}; most confused: "
              + ", ".join(f"{k} {v}" for k, v in s["confusions"].items()))
    print(f"accuracy {result['accuracy']:.3f} on {result['takes']} takes")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.update_card:
        summary = {k: v for k, v in result.items() if k != "checkpoint"}
        summary["command"] = "python " + shlex.join(sys.argv)
        checkpoint.record_metrics(args.checkpoint, "recorded_speakers", summary)


if __name__ == "__main__":
    main()
