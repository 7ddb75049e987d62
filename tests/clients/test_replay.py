"""``s5rf replay --json`` and ``s5rf listen --json`` agree with ``/infer`` on the same events;
bad flags are refused."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from clients import AsyncClient, Client
from clients.replay import Transport, Utterance, replay
from clients.schemas import EventsResult
from model.datasets import write_shd
from model.events import make_events
from tests.server.conftest import COCHLEA, DVS, cochlea_recording, dvs_recording

TINY_LABELS = [f"class{i}" for i in range(4)]  # the tiny models' classes


def replay_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("transport", ["--ws", "--http"])
def test_replay_of_an_shd_sample_matches_infer(tmp_path: Path, live_url: str, transport: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    samples = [cochlea_recording(seed=61), cochlea_recording(seed=62)]
    write_shd(tmp_path / "shd.h5", samples, [0, 3], keys=["a", "b", "c", "d"], channels=16)
    out = replay_json(capsys, "replay", str(tmp_path / "shd.h5"), "--index", "1", "--model",
                      COCHLEA, "--url", live_url, transport, "--speed", "max", "--json")
    with Client(live_url) as client:
        whole = client.infer(COCHLEA, samples[1])
    np.testing.assert_allclose(out["probabilities"], whole.probabilities, atol=1e-6)
    assert out["label"] == whole.label and out["spikes"] == whole.spikes.total
    assert out["bins"] == whole.bins.total and out["events"]["total_accepted"] == len(samples[1])
    assert out["source"]["label_name"] == "d" and out["batches"] >= 10


@pytest.mark.parametrize("transport", ["--ws", "--http"])
def test_replay_count_scores_each_sample_on_its_own_and_their_accuracy(
        tmp_path: Path, live_url: str, transport: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    samples = [cochlea_recording(seed=70 + i) for i in range(4)]
    write_shd(tmp_path / "shd.h5", samples, [0, 1, 2, 3], keys=TINY_LABELS, channels=16)
    out = replay_json(capsys, "replay", str(tmp_path / "shd.h5"), "--index", "1", "--count",
                      "3", "--model", COCHLEA, "--url", live_url, transport, "--speed", "max",
                      "--json")
    assert out["source"]["labels"] == [1, 2, 3] and "label" not in out["source"]
    with Client(live_url) as client:
        alone = [client.infer(COCHLEA, sample) for sample in samples[1:]]
    for scored, expected, sample in zip(out["samples"], alone, samples[1:], strict=True):
        assert scored["events"] == len(sample) and scored["label"] == expected.label
        np.testing.assert_allclose(scored["probabilities"], expected.probabilities, atol=1e-6)
    right = [a.top_k[0].index == label for a, label in zip(alone, [1, 2, 3], strict=True)]
    assert out["accuracy"] == sum(right) / 3
    assert out["events"]["total_accepted"] == len(samples[3])  # each counted anew


@pytest.mark.parametrize("empty_at", [0, 2])
def test_replay_count_scores_an_empty_sample_first_or_last(
        tmp_path: Path, live_url: str, empty_at: int,
        capsys: pytest.CaptureFixture[str]) -> None:
    samples = [cochlea_recording(seed=76), cochlea_recording(seed=77)]
    samples.insert(empty_at, make_events("cochlea", t=np.zeros(0, np.int64),
                                         channel=np.zeros(0, np.uint16)))
    write_shd(tmp_path / "shd.h5", samples, [0, 1, 2], keys=TINY_LABELS, channels=16)
    out = replay_json(capsys, "replay", str(tmp_path / "shd.h5"), "--count", "3", "--model",
                      COCHLEA, "--url", live_url, "--speed", "max", "--json")
    assert [scored["events"] for scored in out["samples"]] == [len(s) for s in samples]
    # no bin, no decision: an empty sample is not scored right, whichever its class
    assert out["samples"][empty_at]["label"] is None
    right = [s["label"] is not None and int(np.argmax(s["probabilities"])) == label
             for s, label in zip(out["samples"], [0, 1, 2], strict=True)]
    assert out["accuracy"] == sum(right) / 3
    # laid out one after another: from the first event to the last, both spans at least
    assert out["recording_s"] >= sum(s["t"][-1] - s["t"][0] for s in samples if len(s)) / 1e6


def test_replay_count_needs_a_dataset_file_and_enough_samples(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://127.0.0.1:9"  # refused before connecting: no server needed
    write_shd(tmp_path / "shd.h5", [cochlea_recording(seed=74)] * 2, [0, 1], keys=["a", "b"],
              channels=16)
    np.save(tmp_path / "c.npy", cochlea_recording(seed=75))
    for argv, words in (
            (["shd.h5", "--count", "3"], "--index 0 --count 3 asks for samples up to 2; "),
            (["shd.h5", "--index", "1", "--count", "2"], "up to 2; "),
            (["shd.h5", "--index", "2", "--count", "1"], "holds 2 samples; there is no index 2"),
            (["shd.h5", "--index", "-1", "--count", "2"], "give a first index >= 0"),
            (["c.npy", "--count", "2"], "--count takes samples of a dataset file")):
        path, *rest = argv
        assert main(["replay", str(tmp_path / path), *rest, "--model", COCHLEA,
                     "--url", url]) == 2
        assert words in capsys.readouterr().err, argv


def test_the_summary_starts_its_own_line_when_the_output_is_no_terminal(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "c.npy", cochlea_recording(seed=78))
    assert main(["replay", str(tmp_path / "c.npy"), "--model", COCHLEA, "--url", live_url,
                 "--speed", "max"]) == 0
    summary = next(line for line in capsys.readouterr().out.splitlines() if " after " in line)
    assert summary.startswith("class"), summary  # not behind the panel's bottom border


def test_replay_of_a_camera_file_at_sensor_pace_uses_its_first_event_as_origin(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    dv = pytest.importorskip("dv_processing")
    events = dvs_recording(seed=63, duration_us=120_000)
    events["t"] += 1_700_000_000_000_000  # DV cameras stamp events with epoch µs
    path = tmp_path / "cam.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig(
        "DVXplorer_test", (8, 8)))
    store = dv.EventStore()
    for e in events:
        store.push_back(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"]))
    writer.writeEvents(store)
    del writer
    out = replay_json(capsys, "replay", str(path), "--model", DVS, "--url", live_url,
                      "--speed", "2", "--chunk-ms", "20", "--json")
    with Client(live_url) as client:
        whole = client.infer(DVS, events, t0_us=int(events["t"][0]))
    np.testing.assert_allclose(out["probabilities"], whole.probabilities, atol=1e-6)
    assert out["wall_s"] >= 0.9 * (events["t"][-1] - events["t"][0]) / 1e6 / 2  # paced


def test_listen_streams_the_cochlea_encoding_of_the_audio(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A word longer than the training clip: listen encodes it as `s5rf cochlea` and
    `s5rf data audio` do (trimmed, a tail of silence, padded to their length)."""
    import soundfile

    from model.audio_augment import TAIL_S, WORK_RATE, as_word
    from model.audio_folder import encode_file
    from model.cochlea import CLIP_SAMPLES, SAMPLE_RATE

    rate = 16_000
    t = np.arange(int(1.05 * rate)) / rate  # its own padded length is not the bucket's
    word = np.sin(2 * np.pi * (300 + 800 * t) * t) * np.hanning(len(t))
    silence = np.zeros(rate // 4)
    path = tmp_path / "word.wav"
    soundfile.write(path, np.concatenate([silence, word, silence]), rate)
    out = replay_json(capsys, "listen", str(path), "--model", COCHLEA,
                      "--url", live_url, "--speed", "max", "--seed", "3", "--json")
    read, _ = soundfile.read(path, dtype="float64")
    prepared = np.concatenate([as_word(read, rate), np.zeros(int(TAIL_S * WORK_RATE))])
    assert CLIP_SAMPLES < len(prepared) * SAMPLE_RATE / WORK_RATE < len(read) * SAMPLE_RATE / rate
    events = encode_file(path, np.random.default_rng(3), 16)
    with Client(live_url) as client:
        whole = client.infer(COCHLEA, events)
    assert out["events"]["total_accepted"] == len(events) > 0
    assert out["source"] == {"file": str(path), "format": "audio", "sensor": "cochlea",
                             "t0_us": 0}  # as replay's, with the origin it streamed from
    np.testing.assert_allclose(out["probabilities"], whole.probabilities, atol=1e-6)


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_listen_words_scores_each_word_of_a_file_on_its_own(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str],
        transport: str) -> None:
    """Three words with pauses between them (the second with a short gap inside, which is
    no pause): one decision each, the one /infer gives that word's encoding alone, though
    each word's clip outlasts the pause after it."""
    import soundfile

    from cli.replay import listened
    from model.audio_augment import WORK_RATE
    from model.audio_folder import read_words
    from model.cochlea import bucketed_length, prepare_waveform

    rate = 16_000

    def chirp(seconds: float, f0: float) -> np.ndarray:
        t = np.arange(int(seconds * rate)) / rate
        return np.sin(2 * np.pi * (f0 + 600 * t) * t) * np.hanning(len(t))

    def pause(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * rate))

    audio = np.concatenate([pause(0.2), chirp(0.4, 300), pause(0.5), chirp(0.25, 900),
                            pause(0.1), chirp(0.25, 900), pause(0.6), chirp(0.5, 2000),
                            pause(0.3)])
    path = tmp_path / "words.wav"
    soundfile.write(path, audio, rate)
    words = read_words(path)
    assert [round(start, 1) for start, _ in words] == [0.2, 1.1, 2.3]
    assert 0.55 < len(words[1][1]) / WORK_RATE - 0.1 < 0.65  # one word with its gap, + tail
    out = replay_json(capsys, "listen", str(path), "--words", "--model", COCHLEA, "--url",
                      live_url, f"--{transport}", "--speed", "max", "--seed", "3", "--json")
    signals = [(start, prepare_waveform(word, WORK_RATE, bucketed_length))
               for start, word in words]
    utterances = listened(signals, np.random.default_rng(3), 16)
    assert utterances[1].t0_us > round(words[1][0] * 1e6)  # the clip before ran past it
    assert [w["start_s"] for w in out["words"]] == [u.t0_us / 1e6 for u in utterances]
    with Client(live_url) as client:
        for word, utterance in zip(out["words"], utterances, strict=True):
            events = utterance.events.copy()
            events["t"] -= utterance.t0_us
            alone = client.infer(COCHLEA, events)
            assert word["events"] == len(events) > 0
            np.testing.assert_allclose(word["probabilities"], alone.probabilities, atol=1e-6)
    assert out["events"]["total_accepted"] == len(utterances[-1].events)  # counted anew


def test_replay_segment_scores_each_burst_of_a_continuous_recording_on_its_own(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Three bursts of 400 events in 150 ms (2,700/s) a second apart, background at 100/s
    between them: three decisions, each the one /infer gives the burst's cut alone."""
    from clients.segment import SENSOR_GATES, utterances_of

    rng = np.random.default_rng(5)
    background = make_events("cochlea", t=np.sort(rng.integers(0, 3_500_000, 350)),
                             channel=rng.integers(0, 16, 350))
    bursts = []
    for i in range(3):
        burst = cochlea_recording(seed=80 + i)
        burst["t"] += 300_000 + i * 1_000_000
        bursts.append(burst)
    recording = np.sort(np.concatenate([background, *bursts]), order="t", kind="stable")
    np.save(tmp_path / "long.npy", recording)
    out = replay_json(capsys, "replay", str(tmp_path / "long.npy"), "--segment", "--min-rate",
                      "1000", "--model", COCHLEA, "--url", live_url, "--speed", "max", "--json")
    cuts = utterances_of(recording, dataclasses.replace(SENSOR_GATES["cochlea"],
                                                        min_rate_hz=1000))
    assert len(cuts) == 3 and out["source"]["segmented_at_hz"] == 1000
    assert [w["start_s"] for w in out["words"]] == [c.t0_us / 1e6 for c in cuts]
    with Client(live_url) as client:
        for word, cut, burst in zip(out["words"], cuts, bursts, strict=True):
            assert np.isin(burst["t"], cut.events["t"]).all()
            events = cut.events.copy()
            events["t"] -= cut.t0_us
            alone = client.infer(COCHLEA, events)
            assert word["events"] == len(events)
            np.testing.assert_allclose(word["probabilities"], alone.probabilities, atol=1e-6)


def test_replay_segment_refuses_what_it_cannot_cut(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://127.0.0.1:9"  # refused before connecting: no server needed
    np.save(tmp_path / "c.npy", cochlea_recording(seed=76))  # 400 events in 150 ms
    write_shd(tmp_path / "shd.h5", [cochlea_recording(seed=77)] * 2, [0, 1], keys=["a", "b"],
              channels=16)
    for argv, words in (
            (["c.npy", "--segment", "--min-rate", "5000"], "no activity of 5000 events/s"),
            (["c.npy", "--min-rate", "100"], "add --segment"),
            (["shd.h5", "--count", "2", "--segment"], "--count and --segment do not mix")):
        path, *rest = argv
        assert main(["replay", str(tmp_path / path), *rest, "--model", COCHLEA,
                     "--url", url]) == 2
        assert words in capsys.readouterr().err, argv


@pytest.mark.parametrize(("transport", "lead"), [("ws", False), ("http", False), ("ws", True)])
def test_a_recording_with_a_long_silence_replays_through_it(
        make_live: Callable[..., str], transport: Transport, lead: bool) -> None:
    """Three seconds without an event are 3,000 bins of the 1 ms model, past the server's
    limit of 2,000 a batch: watermarks carry the stream through the silence, also one
    between the origin and the first event (``lead``)."""
    url = make_live(max_bins_per_request=2_000)
    events = cochlea_recording(seed=65)[:0 if lead else None]
    later = cochlea_recording(seed=66)
    later["t"] += 3_150_000
    recording = np.concatenate([events, later])

    async def replayed() -> EventsResult:
        async with AsyncClient(url) as client:
            progress = [p async for p in replay(client, COCHLEA, [Utterance(recording, 0)],
                                                transport=transport)]
        return progress[-1].result

    out = asyncio.run(replayed())
    with Client(url) as client:  # /infer cannot close 3,000 bins at once either
        session = client.open_session(COCHLEA)
        session.send(events)
        for until_us in (1_000_000, 2_000_000, 3_000_000):
            session.send(until_us=until_us)
        session.send(later)
        whole = session.send(flush=True)
    assert out.events.total_accepted == len(recording)
    np.testing.assert_allclose(out.probabilities, whole.probabilities, atol=1e-6)


def test_replay_count_refuses_a_dataset_of_other_classes(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Scored by label index, another dataset's classes would be scored silently wrong."""
    write_shd(tmp_path / "ssc.h5", [cochlea_recording(seed=78)] * 2, [0, 1],
              keys=["backward", "bed", "bird", "cat"], channels=16)
    assert main(["replay", str(tmp_path / "ssc.h5"), "--count", "2", "--model", COCHLEA,
                 "--url", live_url]) == 2
    assert ("sample 0 is 'backward' (label 0), which model 'tiny-cochlea' does not call so: its "
            "classes are ['class0', 'class1', 'class2', 'class3']") in capsys.readouterr().err


@pytest.mark.parametrize(("model", "recording", "words"), [
    (DVS, make_events("dvs", t=np.array([0, 10]), x=np.array([3, 40]), y=np.array([1, 2]),
                      p=np.array([0, 1])),
     "big.npy: x 40 at index 1 is out of range [0, 8): model 'tiny-dvs' takes 8×8 pixels (crop "
     "or rescale the recording)"),
    (COCHLEA, make_events("cochlea", t=np.array([0, 10]), channel=np.array([3, 16])),
     "big.npy: channel 16 at index 1 is out of range [0, 16): model 'tiny-cochlea' takes 16 "
     "channels"),
])
def test_replay_refuses_events_outside_the_models_sensor_before_sending(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str], model: str,
        recording: np.ndarray, words: str) -> None:
    np.save(tmp_path / "big.npy", recording)
    assert main(["replay", str(tmp_path / "big.npy"), "--model", model, "--url", live_url]) == 2
    assert words in capsys.readouterr().err


def test_a_time_problem_is_refused_without_the_sensors_size(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The size of the model's sensor is the hint for a channel or pixel out of range only."""
    np.save(tmp_path / "late.npy",
            make_events("cochlea", t=np.array([10, 2**62 + 1]), channel=np.array([3, 4])))
    assert main(["replay", str(tmp_path / "late.npy"), "--model", COCHLEA, "--url",
                 live_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s5rf replay: ") and "late.npy: " in err, err
    assert "takes 16 channels" not in err and err.count("\n") == 1


def test_replay_refuses_a_recording_of_another_sensor(
        tmp_path: Path, live_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "c.npy", cochlea_recording(seed=64))
    assert main(["replay", str(tmp_path / "c.npy"), "--model", DVS, "--url", live_url]) == 2
    assert "holds cochlea events, not dvs" in capsys.readouterr().err


def test_an_unreadable_file_is_refused_before_connecting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Port 9 (discard) has no server: reaching the network would exit 1, not 2."""
    (tmp_path / "noise.wav").write_text("not audio")
    url = "http://127.0.0.1:9"
    assert main(["replay", str(tmp_path / "missing.npy"), "--model", DVS, "--url", url]) == 2
    assert "missing.npy is not a file" in capsys.readouterr().err
    assert main(["listen", str(tmp_path / "noise.wav"), "--model", COCHLEA, "--url", url]) == 2
    assert "noise.wav: not audio libsndfile reads" in capsys.readouterr().err
    import soundfile

    soundfile.write(tmp_path / "quiet.wav", np.zeros(1600), 16_000)
    assert main(["listen", str(tmp_path / "quiet.wav"), "--model", COCHLEA, "--url", url]) == 2
    assert "quiet.wav: the waveform is silent" in capsys.readouterr().err
    assert main(["listen", str(tmp_path / "quiet.wav"), "--words", "--model", COCHLEA,
                 "--url", url]) == 2
    assert "quiet.wav: the waveform is silent" in capsys.readouterr().err
    np.save(tmp_path / "c.npy", cochlea_recording(seed=64))
    assert main(["replay", str(tmp_path / "c.npy"), "--model", DVS, "--url", url]) == 1
    assert capsys.readouterr().err.startswith("s5rf replay: ")


def test_listen_refuses_a_camera_model(tmp_path: Path, live_url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import soundfile

    soundfile.write(tmp_path / "tone.wav", np.sin(np.arange(8000) / 3), 16_000)
    assert main(["listen", str(tmp_path / "tone.wav"), "--model", DVS, "--url", live_url]) == 2
    assert "`listen` needs a cochlea model" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--chunk-ms", "0", "must be positive"), ("--chunk-ms", "-5", "must be positive"),
    ("--chunk-ms", "0.0004", "at least 0.001 ms"),
    ("--top-k", "0", "between 1 and 1000"), ("--speed", "0", "speed must be positive"),
    ("--url", "127.0.0.1:8000", "not an http:// or https:// URL"),
    ("--url", "http://", "not an http:// or https:// URL")])
def test_bad_flags_are_refused_before_connecting(
        capsys: pytest.CaptureFixture[str], flag: str, value: str, words: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "recording.npy", "--model", "m", flag, value])
    assert exit_.value.code == 2 and words in capsys.readouterr().err
