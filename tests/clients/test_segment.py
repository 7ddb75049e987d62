"""clients.segment: a continuous stream cut into utterances where its activity rises, the
same however it is pushed, every event sent once or counted idle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from clients import COCHLEA_DTYPE, Client
from clients.segment import Gate, Segmenter, utterances_of
from clients.stream import Batch
from tests.server.conftest import COCHLEA

GATE = Gate(min_rate_hz=2_500, window_us=20_000, hangover_us=200_000, preroll_us=100_000)


def stream(bursts: list[tuple[int, int]], seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """500 events/s of background over ``seconds``, 20,000/s inside each [start, end) µs."""
    rng = np.random.default_rng(seed)
    t = [rng.uniform(0, seconds * 1e6, int(500 * seconds))]
    t += [rng.uniform(a, b, int(20_000 * (b - a) / 1e6)) for a, b in bursts]
    events = np.zeros(sum(len(x) for x in t), COCHLEA_DTYPE)
    events["t"] = np.sort(np.concatenate(t)).astype(np.int64)
    events["channel"] = rng.integers(0, 16, len(events))  # the test models' channels
    return events


def pushed(events: np.ndarray, cuts: np.ndarray, gate: Gate = GATE,
           advance_at: dict[int, int] | None = None) -> tuple[list[Batch], int]:
    """Every batch of ``events`` pushed in the pieces between ``cuts`` (``advance_at``: after
    piece i, the stream's time moves to that µs), and the events counted idle."""
    segmenter = Segmenter(gate)
    batches = []
    for i, piece in enumerate(np.split(events, cuts)):
        batches += segmenter.push(piece)
        if advance_at and i in advance_at:
            batches += segmenter.advance(advance_at[i])
    return batches + segmenter.close(), segmenter.idle


def spans(batches: list[Batch]) -> list[tuple[int, np.ndarray]]:
    """(start, events) of each utterance the batches send, checking their order: a reset
    opens one, a flush ends it, nothing in between does either."""
    out, start, parts = [], None, []
    for batch in batches:
        if batch.reset is not None:
            assert start is None, "a reset inside an utterance"
            start, parts = batch.reset, []
        assert start is not None, "a batch outside an utterance"
        assert batch.until_us is None
        if batch.events is not None:
            parts.append(batch.events)
        if batch.flush:
            out.append((int(start), np.concatenate(parts)))
            start = None
    assert start is None, "an utterance left open"
    return out


def between(events: np.ndarray, start: int, end: int) -> np.ndarray:
    return events[(events["t"] >= start) & (events["t"] < end)]


def test_bursts_apart_are_utterances_from_a_preroll_before_to_a_hangover_after() -> None:
    events = stream([(500_000, 800_000), (1_600_000, 2_000_000)])
    batches, idle = pushed(events, np.array([], int))
    found = spans(batches)
    for (start, sent), (want_start, want_end) in zip(
            found, [(400_000, 1_000_000), (1_500_000, 2_200_000)], strict=True):
        assert start == want_start
        np.testing.assert_array_equal(sent, between(events, want_start, want_end))
    assert sum(len(sent) for _, sent in found) + idle == len(events)  # each sent once, or idle


@pytest.mark.parametrize(("max_us", "n"), [(None, 3), (150_000, 10)])
def test_the_cut_does_not_depend_on_how_the_stream_is_pushed(max_us: int | None,
                                                             n: int) -> None:
    events = stream([(300_000, 700_000), (1_000_000, 1_100_000), (2_400_000, 2_900_000)],
                    seed=1)
    gate = dataclasses.replace(GATE, max_us=max_us)
    whole = spans(pushed(events, np.array([], int), gate)[0])
    assert len(whole) == n  # 300 ms apart: more than the 200 ms hangover; max_us cuts more
    rng = np.random.default_rng(2)
    for _ in range(20):
        cuts = np.sort(rng.choice(len(events), rng.integers(1, 60), replace=False))
        # a watermark may come after any piece, up to the next piece's first event
        advance_at = {i: int(events["t"][c]) for i, c in enumerate(cuts) if rng.random() < 0.3}
        batches, idle = pushed(events, cuts, gate, advance_at=advance_at)
        again = spans(batches)
        assert [start for start, _ in again] == [start for start, _ in whole]
        for (_, x), (_, y) in zip(again, whole, strict=True):
            np.testing.assert_array_equal(x, y)
        assert sum(len(sent) for _, sent in again) + idle == len(events)


def test_pauses_shorter_than_the_hangover_stay_in_one_utterance() -> None:
    events = stream([(500_000, 700_000), (850_000, 1_000_000), (1_150_000, 1_300_000)])
    [(start, sent)] = spans(pushed(events, np.array([], int))[0])
    assert start == 400_000
    np.testing.assert_array_equal(sent, between(events, 400_000, 1_500_000))


def test_a_stream_never_quiet_is_cut_every_max_us_from_the_start() -> None:
    events = stream([(500_000, 3_000_000)], seconds=3.5)
    found = spans(pushed(events, np.array([], int), dataclasses.replace(GATE, max_us=1_000_000))[0])
    assert [start for start, _ in found] == [400_000, 1_400_000, 2_400_000]
    for (start, sent), end in zip(found, [1_400_000, 2_400_000, 3_200_000], strict=True):
        np.testing.assert_array_equal(sent, between(events, start, end))


def test_a_quiet_stream_sends_nothing_and_counts_every_event_idle() -> None:
    events = stream([])
    batches, idle = pushed(events, np.array([1_000, 1_001]))
    assert batches == [] and idle == len(events)
    assert utterances_of(events, GATE) == []


def test_a_silence_without_events_ends_the_utterance_once_the_time_has_passed() -> None:
    burst = stream([(100_000, 300_000)], seconds=0.3)
    segmenter = Segmenter(GATE)
    sent = segmenter.push(burst)
    assert sent and sent[0].reset == 0 and not any(b.flush for b in sent)
    assert not any(b.flush for b in segmenter.advance(480_000))  # the hangover runs to 500 ms
    assert segmenter.advance(520_000) == [Batch(flush=True)]
    assert segmenter.close() == []


def test_the_next_utterance_starts_no_earlier_than_the_one_before_ended() -> None:
    events = stream([(500_000, 800_000), (1_040_000, 1_300_000)])  # the preroll would overlap
    found = spans(pushed(events, np.array([], int))[0])
    assert [start for start, _ in found] == [400_000, 1_000_000]
    np.testing.assert_array_equal(found[1][1], between(events, 1_000_000, 1_500_000))


def test_utterances_of_a_recording_are_the_spans_the_segmenter_sends() -> None:
    events = stream([(500_000, 800_000), (1_600_000, 2_000_000)])
    found = spans(pushed(events, np.array([], int))[0])
    got = utterances_of(events, GATE)
    assert [u.t0_us for u in got] == [start for start, _ in found]
    for u, (_, sent) in zip(got, found, strict=True):
        np.testing.assert_array_equal(u.events, sent)


def test_unsorted_events_a_step_back_in_time_and_bad_gates_are_refused() -> None:
    events = stream([(100_000, 200_000)], seconds=0.5)
    segmenter = Segmenter(GATE)
    with pytest.raises(ValueError, match="sorted"):
        segmenter.push(events[::-1])
    segmenter.push(events[:100])
    with pytest.raises(ValueError, match="sorted"):
        segmenter.push(events[:50])
    with pytest.raises(ValueError, match="before an event"):
        segmenter.advance(int(events["t"][99]) - 1)
    for bad in ({"min_rate_hz": 0}, {"window_us": 0}, {"hangover_us": -1},
                {"preroll_us": -1}, {"max_us": 0}, {"max_us": 120_000}):
        with pytest.raises(ValueError):
            dataclasses.replace(GATE, **bad)


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_a_live_loop_gets_each_utterance_decided_as_infer_decides_it_alone(
        live_url: str, transport: str) -> None:
    """The loop of docs/clients.md: 10 ms chunks through the segmenter into a session, each
    flush's result the utterance's decision; or into a new stream, where the k-th batch has
    seq k."""
    events = stream([(300_000, 500_000), (1_200_000, 1_500_000)], seconds=2.0, seed=3)
    segmenter = Segmenter(GATE)
    chunks = np.split(events, np.searchsorted(events["t"], np.arange(1, 200) * 10_000))
    batches = [batch for chunk in chunks for batch in segmenter.push(chunk)]
    assert not segmenter.close()  # both ended inside the stream
    with Client(live_url) as client:
        if transport == "http":
            session = client.open_session(COCHLEA)
            results = [session.send(b.events, flush=b.flush, reset=b.reset) for b in batches]
        else:
            with client.stream(COCHLEA) as s:
                results = list(s.run(batches))
            assert [r.seq for r in results] == list(range(len(batches)))
        decisions = [r for r, b in zip(results, batches, strict=True) if b.flush]
        cuts = utterances_of(events, GATE)
        assert len(decisions) == len(cuts) == 2
        for r, cut in zip(decisions, cuts, strict=True):
            alone = cut.events.copy()
            alone["t"] -= cut.t0_us
            whole = client.infer(COCHLEA, alone)
            assert r.events.total_accepted == len(alone) and r.bins.total == whole.bins.total
            np.testing.assert_allclose(r.probabilities, whole.probabilities, atol=1e-6)
