"""A spoken-digits checkpoint on real human voices: one speaker's ten digits, each encoded
by the cochlea with several seeds of its stochastic spike stage.

By default Allison Smith's English digits zero to nine from Debian's
``asterisk-core-sounds-en-wav`` (CC BY-SA 3.0; telephone prompts recorded at 8 kHz), the one
recorded speaker these machines can install. Any other folder of ten takes works with
``--digits``, ``--names`` (the file of digit ``n``) and ``--language``: the GCompris voices
(https://github.com/gcompris/GCompris-voices, GPL) hold a German man, Martin Herweg
(``de/alphabet/U0030.ogg`` ... ``U0039.ogg``), and an English woman, Julia Wycherley
(``en/alphabet``). Ten words make a small test, so the table gives every word's predictions,
not only the accuracy. SHD's classes hold every digit twice, in English and German, often
alike (four/vier, nine/neun): ``digit_accuracy`` also counts the right digit in the other
language.

    apt-get install asterisk-core-sounds-en-wav
    python scripts/real_speaker.py --checkpoint checkpoints/digits-cochlea \\
        [--seeds 5] [--json checkpoints/digits-cochlea/real_speaker.json]
    python scripts/real_speaker.py --checkpoint checkpoints/digits-cochlea \\
        --digits data/gcompris-voices/de/alphabet --names 'U003{n}.ogg' --language de \\
        --speaker 'Martin Herweg (GCompris voices)' [--update-card real_speaker_de]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from model import checkpoint
from model.audio_folder import encode_folder_seeds
from model.digit_words import KEYS, same_digit
from model.evaluation import predict_file

DIGITS = Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits")
PACKAGE = "asterisk-core-sounds-en-wav"
WORDS = {"en": KEYS[:10], "de": KEYS[10:]}  # the class keys of each language's digits


def class_folders(digits: Path, root: Path, words: tuple[str, ...], names: str) -> Path:
    """``root/<word n>/<file>`` links to the take ``digits/<names.format(n=n)>``, n = 0..9."""
    for n, key in enumerate(words):
        source = digits / names.format(n=n)
        if not source.exists():
            hint = f": apt-get install {PACKAGE}" if digits == DIGITS else ""
            raise SystemExit(f"{source} is missing{hint}")
        (root / key).mkdir(parents=True, exist_ok=True)
        (root / key / source.name).symlink_to(source.resolve())  # from inside root too
    return root


def score(ckpt: checkpoint.Checkpoint, digits: Path, seeds: int, *, language: str = "en",
          names: str = "{n}.wav", speaker: str = "") -> dict[str, Any]:
    """Every word's predicted label under each seed, and the accuracy over all of them."""
    channels = ckpt.card.input.cochlea_channels()
    words: dict[str, list[str]] = {key: [] for key in WORDS[language]}
    with tempfile.TemporaryDirectory() as tmp:
        root = class_folders(digits, Path(tmp) / "words", WORDS[language], names)
        outs = {seed: Path(tmp) / f"seed{seed}.h5" for seed in range(seeds)}
        files = encode_folder_seeds(root, outs, KEYS, channels=channels)
        for out in outs.values():
            for (_, label), p in zip(files, predict_file(ckpt, out), strict=True):
                words[KEYS[label]].append(ckpt.card.labels[int(p)])
    correct = [p == word for word, preds in words.items() for p in preds]
    digit = [same_digit(KEYS.index(p), KEYS.index(word))
             for word, preds in words.items() for p in preds]
    return {"checkpoint": str(ckpt.path), "speaker": f"{speaker or PACKAGE}: {digits}",
            "language": language, "seeds": seeds,
            "accuracy": float(np.mean(correct)), "digit_accuracy": float(np.mean(digit)),
            "recordings": len(correct),
            "words_right_under_every_seed": sum(all(p == w for p in ps)
                                                for w, ps in words.items()),
            "predictions": words}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--digits", type=Path, default=DIGITS, help="folder of the ten takes")
    ap.add_argument("--names", default="{n}.wav",
                    help="file name of digit n in --digits, e.g. 'U003{n}.ogg'")
    ap.add_argument("--language", choices=sorted(WORDS), default="en",
                    help="the language the takes speak")
    ap.add_argument("--speaker", default="", help="who speaks, for the result")
    ap.add_argument("--seeds", type=int, default=5, help="spike-stage seeds per word")
    ap.add_argument("--json", type=Path, help="also write the result here")
    ap.add_argument("--update-card", nargs="?", const="real_speaker", metavar="KEY",
                    help="record the accuracy in the checkpoint's model.json under KEY "
                         "(default `real_speaker`)")
    args = ap.parse_args()
    ckpt = checkpoint.load(args.checkpoint)
    result = score(ckpt, args.digits, args.seeds, language=args.language, names=args.names,
                   speaker=args.speaker)
    for word, preds in result["predictions"].items():
        print(f"{word:>6}: {' '.join(f'{p:>6}' for p in preds)}")
    print(f"accuracy {result['accuracy']:.3f} on {result['recordings']} recordings (right digit "
          f"in either language: {result['digit_accuracy']:.3f}); "
          f"{result['words_right_under_every_seed']} of 10 words right under every seed")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.update_card:
        summary = {k: v for k, v in result.items() if k not in ("checkpoint", "predictions")}
        summary["command"] = "python " + shlex.join(sys.argv)
        checkpoint.record_metrics(args.checkpoint, args.update_card, summary)


if __name__ == "__main__":
    main()
