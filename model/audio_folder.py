"""Labelled audio files -> cochlea recordings in the SHD layout, to score a checkpoint on real
speech (a corpus, your own voice): one folder per class, ``ROOT/<class key>/*.wav``.

Each file takes the path of the synthetic dataset's words, without the augmentation: mixed to
mono, resampled to 32 kHz, leading and trailing silence trimmed, 0.1 s of silence after it,
then the cochlea (resampled to 48 kHz, RMS-normalised, windowed, zero-padded). The spike
stage is stochastic; file i draws from ``(seed, i)``, so the output is the same on every run.
Each file's events are kept in ``OUT.parts/`` as they are made, so a run that stops (a crash, a
full disk, Ctrl-C) resumes where it was when run again; the folder goes once ``OUT`` is written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.audio_augment import TAIL_S, WORK_RATE, as_word, resample, split_words, trim_silence
from model.cochlea import (
    CHANNELS,
    bucketed_length,
    encode_draws,
    prepare_waveform,
    read_audio,
)
from model.datasets import write_shd
from model.errors import InputError
from model.workers import spawn_pool

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".aif", ".aiff"})


def find_files(root: Path, keys: Sequence[str]) -> list[tuple[Path, int]]:
    """Every audio file of ``root``'s class folders with its label (the key's index), sorted.

    Raises InputError for a folder that is not a class key, or when there is no audio at all.
    """
    if not root.is_dir():
        raise InputError(f"{root} is not a directory of class folders")
    files = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in keys:
            raise InputError(f"folder {folder.name!r} of {root} is not a class key; the classes "
                             f"are {', '.join(keys)}")
        label = list(keys).index(folder.name)
        files += [(f, label) for f in sorted(folder.iterdir())
                  if f.suffix.lower() in AUDIO_SUFFIXES]
    if not files:
        raise InputError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in the class "
                         f"folders of {root}")
    return files


def read_word(path: Path, as_trained: bool = True) -> tuple[np.ndarray, int]:
    """One audio file as the cochlea takes it: float64 (T,) and its rate. ``as_trained``:
    prepared as every training word was (resampled to WORK_RATE, silence trimmed, TAIL_S of
    silence after it: the cochlea's RMS normalisation and window see the same clip);
    otherwise the whole file at its own rate."""
    audio, rate = read_audio(path)
    if as_trained:
        return _with_tail(as_word(audio, rate)), WORK_RATE
    return audio, rate


def read_words(path: Path, min_gap_s: float = 0.3) -> list[tuple[float, np.ndarray]]:
    """The words of an audio file of several, split at its pauses (``split_words``), each
    prepared as ``read_word`` prepares one: ``(start_s, float64 (T,) at WORK_RATE)``."""
    audio, rate = read_audio(path)
    signal = resample(audio, WORK_RATE / rate)
    return [(start / WORK_RATE, _with_tail(trim_silence(signal[start:end], WORK_RATE)))
            for start, end in split_words(signal, WORK_RATE, min_gap_s=min_gap_s)]


def _with_tail(word: np.ndarray) -> np.ndarray:
    """A trimmed word at WORK_RATE followed by TAIL_S of silence, as every training word is."""
    return np.concatenate([word, np.zeros(int(TAIL_S * WORK_RATE))])


def encode_file(path: Path, rng: np.random.Generator, channels: int = CHANNELS,
                as_trained: bool = True) -> np.ndarray:
    """One audio file (see ``read_word``) as COCHLEA_DTYPE events (E,), sorted by t."""
    return encode_file_draws(path, [rng], channels, as_trained)[0]


def encode_file_draws(path: Path, rngs: Sequence[np.random.Generator],
                      channels: int = CHANNELS, as_trained: bool = True) -> list[np.ndarray]:
    """``encode_file`` under each of ``rngs``: the sound, basilar membrane and hair cells
    once, the stochastic spike stage per generator."""
    audio, rate = read_word(path, as_trained)  # its errors name the file
    try:
        # Recordings of every length: a few padded lengths, so a few transfer matrices.
        signal = prepare_waveform(audio, rate, bucketed_length)
    except InputError as exc:  # a silent or too long word: say which file
        raise InputError(f"{path}: {exc}") from exc
    return encode_draws(signal, rngs, channels=channels)


def encode_files(jobs: Sequence[tuple[Path, int]], seeds: Sequence[int], *,
                 channels: int = CHANNELS, workers: int = 1,
                 progress: Callable[[int, int], None] | None = None,
                 parts: Path | None = None) -> list[list[np.ndarray]]:
    """Each ``(file, index)`` of ``jobs`` encoded (``encode_file_draws``) under each of
    ``seeds``, its spike stage drawn from ``(seed, index)``: per file, one event array per
    seed, in order. ``workers`` processes share the files; the output does not depend on
    them. ``progress(done, total)`` after each file. ``parts``: a folder that keeps each
    job's events as they are made; a later call takes back those made of the same file
    (path, size and time), index, seeds and channels, and encodes the rest."""
    done: dict[int, list[np.ndarray]] = {}
    if parts is not None:
        parts.mkdir(parents=True, exist_ok=True)
        keys = [_part_key(job, seeds, channels) for job in jobs]
        done = {k: draws for k, key in enumerate(keys)
                if (draws := _load_part(parts, k, key)) is not None}
    todo = [k for k in range(len(jobs)) if k not in done]
    encode = functools.partial(_encode_job, seeds=tuple(seeds), channels=channels)
    with contextlib.ExitStack() as stack:
        run: Callable[..., Iterable[list[np.ndarray]]] = map
        if workers > 1 and len(todo) > 1:
            pool = stack.enter_context(spawn_pool(workers))
            run = functools.partial(pool.imap, chunksize=4)
        for k, draws in zip(todo, run(encode, [jobs[k] for k in todo]), strict=True):
            done[k] = draws
            if parts is not None:
                _save_part(parts, k, keys[k], draws)
            if progress is not None:
                progress(len(done), len(jobs))
    return [done[k] for k in range(len(jobs))]


def _part_key(job: tuple[Path, int], seeds: Sequence[int], channels: int) -> str:
    """What a part's events depend on: its file (as it is now), index, seeds and channels."""
    path, index = job
    stat = path.stat()
    return json.dumps({"file": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                       "index": index, "seeds": list(seeds), "channels": channels})


def _part_path(parts: Path, k: int) -> Path:
    return parts / f"{k:06d}.npz"


def _load_part(parts: Path, k: int, key: str) -> list[np.ndarray] | None:
    """Job ``k``'s draws from ``parts``, if they are there and were made as ``key`` says."""
    with contextlib.suppress(FileNotFoundError), np.load(_part_path(parts, k)) as f:
        if str(f["key"]) == key:
            return [f[name] for name in sorted(f.files) if name.startswith("draw_")]
    return None


def _save_part(parts: Path, k: int, key: str, draws: Sequence[np.ndarray]) -> None:
    path = _part_path(parts, k)
    tmp = path.with_suffix(".tmp.npz")
    arrays: dict[str, Any] = {f"draw_{d:03d}": events for d, events in enumerate(draws)}
    np.savez(tmp, key=key, **arrays)
    os.replace(tmp, path)  # atomic: a run killed while saving never leaves half a file


def _encode_job(job: tuple[Path, int], seeds: tuple[int, ...], channels: int,
                ) -> list[np.ndarray]:
    path, index = job
    return encode_file_draws(path, [np.random.default_rng([seed, index]) for seed in seeds],
                             channels)


def encode_folder(root: str | Path, out: str | Path, keys: Sequence[str], *, seed: int = 0,
                  channels: int = CHANNELS, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None) -> list[tuple[Path, int]]:
    """Encode every file of ``root`` (see ``find_files``) into ``out`` (SHD layout, the files'
    paths relative to ``root`` in ``extra/file``); returns the (file, label) pairs in order.
    Resumable: see the module's docstring."""
    return encode_folder_seeds(root, {seed: out}, keys, channels=channels, workers=workers,
                               progress=progress)


def encode_folder_seeds(root: str | Path, outs: Mapping[int, str | Path], keys: Sequence[str],
                        *, channels: int = CHANNELS, workers: int = 1,
                        progress: Callable[[int, int], None] | None = None,
                        ) -> list[tuple[Path, int]]:
    """``encode_folder`` under several seeds, into one file each (``outs``: seed -> file),
    each recording's deterministic stages computed once for all of them. File i's spikes
    draw from ``(seed, i)``. The parts folder is the first output's, with ``.parts`` added."""
    root = Path(root)
    files = find_files(root, keys)
    parts = Path(f"{next(iter(outs.values()))}.parts")
    encoded = encode_files([(path, i) for i, (path, _) in enumerate(files)], list(outs),
                           channels=channels, workers=workers, progress=progress, parts=parts)
    names = np.array([str(path.relative_to(root)) for path, _ in files])
    for k, out in enumerate(outs.values()):
        write_shd(out, [draws[k] for draws in encoded], [label for _, label in files],
                  keys=keys, channels=channels, extra={"file": names})
    shutil.rmtree(parts)
    return files
