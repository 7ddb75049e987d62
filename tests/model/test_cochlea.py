"""The cochlea against lauscher, the package that made SHD: exact where it is deterministic,
equal in distribution where it is stochastic. A short clip and few channels keep lauscher's
pure-Python loops to a few seconds."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from multiprocessing.pool import ThreadPool

import numpy as np
import pytest
import soundfile

from cli.main import main
from model import cochlea
from model.audio_augment import TAIL_S, WORK_RATE, as_word
from model.errors import InputError
from model.events import COCHLEA_DTYPE

lauscher = pytest.importorskip("lauscher.transformations")
from lauscher.audiowaves import MonoAudioWave  # noqa: E402
from lauscher.firing_probability import FiringProbability  # noqa: E402

FS = cochlea.SAMPLE_RATE
CHANNELS = 40


@pytest.fixture(scope="module", autouse=True)
def lauscher_in_threads() -> Iterator[None]:
    """lauscher's stages map channels over a process pool, forked by default: a fork of this
    process, whose JAX threads may hold locks, can deadlock. Threads compute the same."""
    with pytest.MonkeyPatch.context() as patch:
        for stage in ("basilar_membrane", "hair_cell", "bushy_cell"):
            patch.setattr(importlib.import_module(f"lauscher.transformations.{stage}"), "Pool",
                          ThreadPool)
        yield


def _close(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-9) -> None:
    np.testing.assert_allclose(ours, ref, rtol=rel, atol=rel * np.abs(ref).max())


@pytest.fixture(scope="module")
def word() -> np.ndarray:
    """A 0.25 s vowel-like sound: a 140 Hz harmonic series under two formants, gliding."""
    t = np.arange(int(0.25 * FS)) / FS
    f0 = 140 * (1 + 0.2 * t)
    phase = 2 * np.pi * np.cumsum(f0) / FS
    x = sum(np.sin(k * phase) / k * (1 + 3 * ((700 < k * 140 < 1200) | (k * 140 > 2200)))
            for k in range(1, 40))  # fmt: skip
    return np.asarray(x * (1 + np.sin(2 * np.pi * 8 * t)), dtype=np.float64)


@pytest.fixture(scope="module")
def signal(word: np.ndarray) -> np.ndarray:
    return cochlea.prepare_waveform(word, FS, n_samples=word.size)


@pytest.fixture(scope="module")
def lauscher_bm(signal: np.ndarray) -> np.ndarray:
    bm = lauscher.BasilarMembrane(channels=CHANNELS)(MonoAudioWave(signal.copy(), FS))
    return np.asarray(bm.channels)


def test_prepare_waveform_normalises_and_windows_like_lauscher(word: np.ndarray) -> None:
    wave = MonoAudioWave(word.copy(), FS)
    ref = lauscher.HanningWindow()(lauscher.RmsNormalizer(0.3)(wave)).samples
    _close(cochlea.prepare_waveform(word, FS, n_samples=word.size), ref)


def test_prepare_waveform_resamples_then_zero_pads_the_windowed_word(word: np.ndarray) -> None:
    at_16k = word[::3]
    out = cochlea.prepare_waveform(at_16k, 16_000)
    assert out.shape == (cochlea.CLIP_SAMPLES,)
    assert np.all(out[3 * at_16k.size :] == 0)
    assert np.sqrt(np.mean(out[: 3 * at_16k.size] ** 2)) < 0.3  # normalised, then ramped


def test_basilar_membrane_matches_lauscher(signal: np.ndarray, lauscher_bm: np.ndarray) -> None:
    ours = cochlea.basilar_membrane(signal, FS, CHANNELS)
    assert ours.shape == (CHANNELS, signal.size // 2 + 1)
    _close(ours, lauscher_bm)


def test_hair_cell_matches_lauscher(lauscher_bm: np.ndarray) -> None:
    ours = cochlea.hair_cell(lauscher_bm, FS // 2)
    rows = [0, CHANNELS // 2, CHANNELS - 1]
    ref = np.array([lauscher.HairCell()._meddis(lauscher_bm[i], FS // 2) for i in rows])
    _close(ours[rows], ref)


def test_bushy_cells_match_lauscher_in_distribution() -> None:
    # Firing probabilities spanning SHD's range, modulated in time: enough spikes (~3000) that
    # the statistics below measure the model, not sampling noise.
    fs, n_t = FS // 2, int(0.2 * FS // 2)
    phase = 2 * np.pi * 15 * np.arange(n_t) / fs + np.linspace(0, 3, CHANNELS)[:, None]
    prob = np.linspace(0.002, 0.03, CHANNELS)[:, None] * (1 + np.sin(phase))
    np.random.seed(0)
    ref = lauscher.BushyCell()(FiringProbability(prob, fs))
    ref_t, ref_ch = ref.spike_times, ref.spike_labels.astype(int)
    ev = cochlea.raster_to_events(cochlea.bushy_cells(prob, fs, np.random.default_rng(0)), fs)
    t, ch = ev["t"] * 1e-6, ev["channel"].astype(int)

    assert abs(t.size - ref_t.size) <= 0.05 * ref_t.size
    counts = np.bincount(ch, minlength=CHANNELS)
    ref_counts = np.bincount(ref_ch, minlength=CHANNELS)
    assert np.corrcoef(counts, ref_counts)[0, 1] >= 0.9
    edges = np.arange(0, n_t / fs + 1e-9, 0.01)
    psth, ref_psth = np.histogram(t, edges)[0], np.histogram(ref_t, edges)[0]
    assert np.corrcoef(psth, ref_psth)[0, 1] >= 0.98


def test_audio_to_events_is_sorted_seeded_and_in_range(word: np.ndarray) -> None:
    a = cochlea.audio_to_events(word, FS, np.random.default_rng(1), channels=CHANNELS)
    b = cochlea.audio_to_events(word, FS, np.random.default_rng(1), channels=CHANNELS)
    assert a.dtype == COCHLEA_DTYPE and a.size > 0
    assert np.array_equal(a, b)
    assert np.all(np.diff(a["t"]) >= 0)
    assert a["channel"].max() < CHANNELS
    assert a["t"].max() < cochlea.CLIP_SAMPLES / FS * 1e6


def test_spike_draws_share_the_sound_and_differ_only_in_the_spike_stage(word: np.ndarray) -> None:
    signal = cochlea.prepare_waveform(word, FS)
    first, second = cochlea.encode_draws(signal, [np.random.default_rng(1),
                                                  np.random.default_rng(2)], channels=CHANNELS)
    # the first draw is the single encoding with the same generator
    assert np.array_equal(first, cochlea.encode_prepared(signal, np.random.default_rng(1),
                                                         channels=CHANNELS))
    assert not np.array_equal(first, second)
    assert abs(first.size - second.size) <= 0.1 * first.size
    a, b = (np.bincount(d["channel"], minlength=CHANNELS) for d in (first, second))
    assert np.corrcoef(a, b)[0, 1] >= 0.8  # (0.90 for this word: few spikes per channel)


def test_padded_length_has_a_5_smooth_half_spectrum() -> None:
    assert cochlea.padded_length(47_990) == cochlea.CLIP_SAMPLES
    for n in (1, 1001, 60_001):
        length = cochlea.padded_length(n)
        m = length // 2 + 1
        assert length >= n and length % 2 == 0
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        assert m == 1


def test_bucketed_lengths_pad_longer_words_to_the_next_quarter_second() -> None:
    clip, step = cochlea.CLIP_SAMPLES, cochlea.LENGTH_STEP
    assert [cochlea.bucketed_length(n) for n in (1, 30_000, clip)] == [clip] * 3
    lengths = {cochlea.bucketed_length(n) for n in range(clip + 1, clip + step + 1, 997)}
    assert lengths == {cochlea.padded_length(clip + step)}
    assert cochlea.bucketed_length(clip + step + 1) == cochlea.padded_length(clip + 2 * step)
    word = np.ones(50_000)
    assert cochlea.prepare_waveform(word, cochlea.SAMPLE_RATE,
                                    cochlea.bucketed_length).size == \
        cochlea.padded_length(clip + step)


def test_prepare_waveform_rejects_a_silent_or_too_long_word() -> None:
    with pytest.raises(ValueError, match="silent"):
        cochlea.prepare_waveform(np.zeros(100), FS)
    with pytest.raises(ValueError, match="n_samples"):
        cochlea.prepare_waveform(np.ones(200), FS, n_samples=100)


def test_a_recording_longer_than_a_word_is_refused_before_its_transfer_matrix() -> None:
    """3 s took a minute and 2.3 GB at 700 channels, 8 s ran out of patience: the matrix grows
    with the clip."""
    longest = cochlea.MAX_CLIP_S * cochlea.SAMPLE_RATE
    assert cochlea.bucketed_length(longest) >= longest
    with pytest.raises(InputError, match=r"it lasts 5\.00 s with the silence after it, over the "
                                         r"5 s the cochlea encodes at once"):
        cochlea.bucketed_length(longest + 1)


@pytest.mark.parametrize(("samples", "rate", "words"), [
    (0, 16_000, "holds no samples"), (800, 100, "sampled at 100 Hz: too slow to carry speech")])
def test_audio_without_samples_or_below_speech_rates_is_refused(
        tmp_path, samples: int, rate: int, words: str) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(path, np.sin(np.arange(samples) / 5.0), rate)
    with pytest.raises(InputError, match=words):
        cochlea.read_audio(path)
    soundfile.write(path, np.sin(np.arange(800) / 5.0), cochlea.MIN_RATE)
    assert cochlea.read_audio(path)[1] == 8000  # FSDD's rate, the lowest read


def test_cli_writes_events_npz_of_the_word_prepared_as_in_training(
        tmp_path, word: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    wav, out = tmp_path / "word.wav", tmp_path / "word.npz"
    audio = np.concatenate([np.zeros(4000), word[::3] / np.abs(word).max(), np.zeros(4000)])
    soundfile.write(wav, audio, 16_000)
    assert main(["cochlea", str(wav), str(out), "--channels", "16", "--seed", "2"]) == 0
    with np.load(out) as f:
        ev = f["events"]
        assert ev.dtype == COCHLEA_DTYPE and ev.size > 0
        assert np.all(np.diff(ev["t"]) >= 0) and ev["channel"].max() < 16
        assert np.array_equal(f["t"], ev["t"]) and np.array_equal(f["channel"], ev["channel"])
    read, _ = soundfile.read(wav, dtype="float64")
    prepared = np.concatenate([as_word(read, 16_000), np.zeros(int(TAIL_S * WORK_RATE))])
    assert len(prepared) < (len(read) - 6000) * WORK_RATE / 16_000  # the silence is cut
    want = cochlea.audio_to_events(prepared, WORK_RATE, np.random.default_rng(2), channels=16)
    np.testing.assert_array_equal(ev, want)
    assert main(["cochlea", str(wav), str(tmp_path / "word"), "--channels", "16", "--seed",
                 "2", "--raw"]) == 0  # the suffix added, as numpy does, and said so
    assert capsys.readouterr().out.startswith(f"{out}: ")
    with np.load(out) as f:
        whole = cochlea.audio_to_events(read, 16_000, np.random.default_rng(2), channels=16)
        np.testing.assert_array_equal(f["events"], whole)


@pytest.mark.parametrize(("content", "words"), [
    (None, "is not a file"), (b"RIFF but not audio", "not audio libsndfile reads"),
    (np.zeros(800), "silent"), ("no folder", "out: its folder")])
def test_cli_refuses_what_is_not_a_spoken_word(tmp_path, capsys: pytest.CaptureFixture[str],
                                               content: object, words: str) -> None:
    wav = tmp_path / "in.wav"
    if isinstance(content, bytes):
        wav.write_bytes(content)
    elif isinstance(content, np.ndarray):
        soundfile.write(wav, content, 16_000)
    elif isinstance(content, str):  # a good word, nowhere to write it
        soundfile.write(wav, np.sin(np.arange(8000) / 5.0), 16_000)
    out = tmp_path / ("nowhere/out.npz" if isinstance(content, str) else "out.npz")
    if isinstance(content, str):  # argparse's exit 2, before the encoding
        with pytest.raises(SystemExit) as refused:
            main(["cochlea", str(wav), str(out)])
        assert refused.value.code == 2
    else:
        assert main(["cochlea", str(wav), str(out)]) == 2
    assert words in capsys.readouterr().err and not out.exists()
