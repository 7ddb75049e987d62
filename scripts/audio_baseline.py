"""Other front ends on the same recordings: does the cochlea's spike code limit what a
network learns about unseen voices, or do the voices themselves?

Each recording of a ``s5rf data speech`` dataset is made again from its recipe up to the
cochlea (the same synthesis, augmentation and seed: ``speech_data.make_audio``), and the signal
the cochlea would encode (``cochlea.prepare_waveform``: 48 kHz, RMS 0.3, ramped, padded) is read
by one of three front ends, all in 10 ms frames: a log-mel spectrogram, the keyword-spotting
standard (25 ms windows, ``--bands`` bands from 50 Hz to 20 kHz); the cochlea's own hair-cell
firing probability before its spike stage; or the dataset's spikes themselves, counted (the
last two over ``--bands`` groups of adjacent channels). Features are standardised per band with
the training set's statistics. The network of ``scripts/gru_baseline.py`` (a GRU stack with
S5-RF's readout, the SHD preset's optimiser settings) trains on them with SpecAugment's time
and band masks and is scored on the test split per engine. Set beside each other, and beside
the same GRU on S5-RF's input bins (``gru_baseline.py``), they show which stage of the cochlea
loses what.

    python -m scripts.audio_baseline --data data/speech --train 3000 --test 900 --epochs 16 \\
        [--front-end {log-mel,hair-cell,spike-counts}] [--bands 64] [--json OUT.json]

(as a module: it shares the GRU and its training with ``scripts/gru_baseline.py``)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import librosa
import numpy as np

from cli.flags import count, natural
from cli.progress import progress_bar, tracker
from model import speech_data as sd
from model.audio_augment import WORK_RATE
from model.cochlea import (
    CLIP_SAMPLES,
    FIBRE_RATE,
    SAMPLE_RATE,
    firing_probability,
    prepare_waveform,
)
from model.datasets import open_dataset
from model.digit_words import KEYS
from model.spec import PRESETS
from model.workers import spawn_pool
from scripts.gru_baseline import Batch, GRUNet, predict, report, train_gru

WINDOW_S, HOP_S = 0.025, 0.010
FRONT_ENDS = ("log-mel", "hair-cell", "spike-counts")


def log_mel(signal: np.ndarray, bands: int) -> np.ndarray:
    """signal float64 (N,) at SAMPLE_RATE -> log-mel spectrogram float32 (frames, bands)."""
    power = librosa.feature.melspectrogram(
        y=signal, sr=SAMPLE_RATE, n_fft=2048, win_length=int(WINDOW_S * SAMPLE_RATE),
        hop_length=int(HOP_S * SAMPLE_RATE), n_mels=bands, fmin=50, fmax=20_000)
    return np.log(power.T + 1e-8).astype(np.float32)


def hair_cell_rates(signal: np.ndarray, channels: int, bands: int) -> np.ndarray:
    """The cochlea's firing probability before its spikes (basilar membrane and hair cells of
    ``channels`` channels), averaged over ``bands`` groups of adjacent channels and 10 ms
    frames, log: float32 (frames, bands)."""
    prob = firing_probability(signal, channels)  # (C, T)
    hop = int(HOP_S * FIBRE_RATE)
    frames = prob.shape[1] // hop
    pooled = prob[:, :frames * hop].reshape(bands, channels // bands, frames, hop).mean((1, 3))
    return np.log(pooled.T + 1e-6).astype(np.float32)


def spike_counts(events: np.ndarray, channels: int, bands: int, frames: int) -> np.ndarray:
    """Cochlea events -> log(1 + spikes) per 10 ms frame and group of adjacent channels,
    float32 (frames, bands)."""
    counts = np.zeros((frames, bands), np.float32)
    t = events["t"] // int(HOP_S * 1e6)
    keep = t < frames
    np.add.at(counts, (t[keep], events["channel"][keep] // (channels // bands)), 1)
    return np.log1p(counts)


def audio_features(recipe: sd.Recipe, voices: tuple[sd.Voice, ...], front_end: str,
                   bands: int, job: tuple[sd.Split, int]) -> tuple[np.ndarray, int, str]:
    """Utterance ``job`` of the recipe as the cochlea would hear it, through ``front_end``
    (log-mel or hair-cell): float32 (frames, bands), with its label and engine."""
    split, index = job
    utt = sd.utterance(recipe, split, index, voices)
    audio, _, _ = sd.make_audio(recipe, utt, voices)
    signal = prepare_waveform(audio, WORK_RATE)
    features = (log_mel(signal, bands) if front_end == "log-mel"
                else hair_cell_rates(signal, recipe.channels, bands))
    return features, utt.label, utt.voice.engine


def features_of(data: Path, recipe: sd.Recipe, split: sd.Split, n: int, front_end: str,
                bands: int, workers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` utterances of ``split``: features float32 (n, frames, bands), labels
    int64 (n,), engines str (n,). Spike counts are read from the dataset's file; the others
    are made again from the recipe up to the cochlea."""
    if front_end == "spike-counts":
        with open_dataset(data / f"{split}.h5") as ds:
            frames = round(CLIP_SAMPLES / SAMPLE_RATE / HOP_S)
            x = np.stack([spike_counts(ds[i][0], recipe.channels, bands, frames)
                          for i in range(n)])
            return x, ds.labels[:n].astype(np.int64), ds.extra("engine")[:n].astype(str)
    voices = recipe.split_voices(recipe.voices())[split]
    jobs = [(split, i) for i in range(n)]
    make = partial(audio_features, recipe, voices, front_end, bands)
    with spawn_pool(workers) as pool, progress_bar() as bar:
        progress, made = tracker(bar, f"{split}: {front_end}"), []
        for features in pool.imap(make, jobs, chunksize=4):
            made.append(features)
            progress(len(made), n)
    features, labels, engines = zip(*made, strict=True)
    return np.stack(features), np.array(labels, np.int64), np.array(engines)


def spec_augment(x: np.ndarray, rng: np.random.Generator, max_time: int, max_bands: int
                 ) -> np.ndarray:
    """One time mask of up to ``max_time`` frames and one band mask of up to ``max_bands``
    bands per recording, at a random place (set to 0, the standardised mean). x (B, T, F)."""
    x = x.copy()
    for row in x:
        t, f = int(rng.integers(max_time + 1)), int(rng.integers(max_bands + 1))
        t0, f0 = int(rng.integers(row.shape[0] - t + 1)), int(rng.integers(row.shape[1] - f + 1))
        row[t0:t0 + t] = 0
        row[:, f0:f0 + f] = 0
    return x


def as_batches(x: np.ndarray, y: np.ndarray, batch_size: int,
               rng: np.random.Generator | None = None) -> Iterator[Batch]:
    """Fixed-shape batches of equal-length recordings, shuffled when ``rng`` is given; the
    last is padded with weight-0 rows."""
    order = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        pad = batch_size - len(idx)
        weights = np.r_[np.ones(len(idx)), np.zeros(pad)].astype(np.float32)
        idx = np.r_[idx, np.repeat(idx[:1], pad)]
        yield (x[idx], np.full(batch_size, x.shape[1], np.int32), y[idx], weights)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True,
                    help="a `s5rf data speech` folder (its recipe.json is read)")
    ap.add_argument("--train", type=count, required=True, help="its first N training utterances")
    ap.add_argument("--test", type=count, required=True, help="its first N test utterances")
    ap.add_argument("--front-end", choices=FRONT_ENDS, default="log-mel",
                    help="log-mel of the cochlea's input signal, the cochlea's hair-cell "
                         "firing probability, or the dataset's own spikes counted per frame")
    ap.add_argument("--bands", type=count, default=64,
                    help="mel bands, or groups of adjacent cochlea channels")
    ap.add_argument("--epochs", type=count, default=16)
    ap.add_argument("--hidden", type=count, default=256, help="GRU units per layer")
    ap.add_argument("--layers", type=count, default=2)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--mask-time", type=int, default=8, help="longest time mask (frames)")
    ap.add_argument("--mask-bands", type=int, default=5, help="widest band mask (bands)")
    ap.add_argument("--seed", type=natural, default=PRESETS["shd"].train.seed)
    ap.add_argument("--workers", type=count, default=2)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    recipe = sd.Recipe.from_json(json.loads((args.data / "recipe.json").read_text()))
    if args.front_end != "log-mel" and recipe.channels % args.bands:
        ap.error(f"--bands {args.bands} does not divide the cochlea's {recipe.channels} channels")
    x_train, y_train, _ = features_of(args.data, recipe, "train", args.train, args.front_end,
                                      args.bands, args.workers)
    x_test, y_test, engines = features_of(args.data, recipe, "test", args.test, args.front_end,
                                          args.bands, args.workers)
    mean, std = x_train.mean(axis=(0, 1)), x_train.std(axis=(0, 1)) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    batch_size = PRESETS["shd"].train.batch_size

    def train_batches(rng: np.random.Generator) -> Iterator[Batch]:
        for x, lengths, y, w in as_batches(x_train, y_train, batch_size, rng):
            yield spec_augment(x, rng, args.mask_time, args.mask_bands), lengths, y, w

    net = GRUNet(args.hidden, args.layers, len(KEYS), args.dropout)
    params, log, predicted = train_gru(
        net, args.bands, len(y_train), train_batches, lambda: as_batches(x_test, y_test, 64),
        args.epochs, args.seed, lambda r: print(json.dumps(r), file=sys.stderr, flush=True))
    train_accuracy = float(np.mean(predict(net, params, as_batches(x_train, y_train, 64))
                                   == y_train))
    command = " ".join(["python -m scripts.audio_baseline",
                        *(sys.argv[1:] if argv is None else argv)])
    return report(f"GRU {args.layers}x{args.hidden} on {args.bands} bands of {args.front_end}",
                  params, log, len(y_train), y_test, predicted, train_accuracy, engines,
                  command, args.json)


if __name__ == "__main__":
    main()
