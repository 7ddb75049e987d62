import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.binning import MAX_COUNT, BinnerState, bin_recording, feed
from model.events import EventError, empty_events, make_events
from model.spec import InputSpec

SPEC = InputSpec(sensor="cochlea", channels=8, downsample=2, dt_us=1000)
DVS = InputSpec(sensor="dvs", width=4, height=6, pool=2, dt_us=1000, binarize=False)


def ev(t, ch):
    return make_events("cochlea", t=np.asarray(t), channel=np.asarray(ch))


def test_empty_recording_has_no_bins():
    assert bin_recording(empty_events("cochlea"), SPEC).shape == (0, 4)


def test_single_event_lands_in_its_bin_and_pooled_channel():
    bins = bin_recording(ev([2500], [5]), SPEC)
    assert bins.shape == (3, 4)
    assert bins[2, 2] == 1 and bins.sum() == 1


def test_events_on_bin_edges_belong_to_the_later_bin():
    bins = bin_recording(ev([0, 999, 1000, 2000], [0, 0, 0, 0]), SPEC)
    np.testing.assert_array_equal(bins[:, 0], [1, 1, 1])
    counting = SPEC.model_copy(update={"binarize": False})
    counts = bin_recording(ev([0, 999, 1000], [0, 1, 0]), counting)
    np.testing.assert_array_equal(counts[:, 0], [2, 1])


def test_counts_saturate_alike_offline_streamed_and_stored():
    counting = SPEC.model_copy(update={"binarize": False})
    burst = ev(np.arange(300), np.zeros(300, int))  # 300 events in one bin and channel
    bins = bin_recording(burst, counting)
    assert bins[0, 0] == MAX_COUNT == 255
    state, results = BinnerState.start(counting), []
    for piece in np.array_split(burst, 7):
        results.append(feed(state, piece, counting))
        state = results[-1].state
    results.append(feed(state, empty_events("cochlea"), counting, flush=True))
    np.testing.assert_array_equal(np.concatenate([r.bins for r in results]), bins)
    assert sum(r.activity for r in results) == 1  # one active entry: one input spike
    np.testing.assert_array_equal(bins.astype(np.uint8), bins)  # what load_binned stores


def test_unsorted_input_is_rejected_with_the_index():
    with pytest.raises(EventError, match=r"sorted by t: t\[2\]=5 < t\[1\]=9"):
        bin_recording(ev([1, 9, 5], [0, 0, 0]), SPEC)


@pytest.mark.parametrize(
    ("t", "ch", "message"),
    [([5], [8], "channel 8 at index 0 is out of range"), ([-1], [0], "negative timestamp"),
     ([3, 2**63 - 1], [0, 0], r"timestamp 9223372036854775807 at index 1 is past")],
)
def test_invalid_events_are_rejected(t, ch, message):
    with pytest.raises(EventError, match=message):
        bin_recording(ev(t, ch), SPEC)


def test_dvs_features_are_polarity_y_x_of_the_pooled_grid():
    e = make_events("dvs", t=np.array([0, 10, 20]), x=np.array([3, 3, 0]),
                    y=np.array([5, 5, 0]), p=np.array([1, 1, 0]))
    bins = bin_recording(e, DVS)
    assert bins.shape == (1, 2 * 2 * 3)
    assert bins[0, 1 * 6 + 2 * 2 + 1] == 2  # p=1, y=5//2=2, x=3//2=1, counted twice
    assert bins[0, 0] == 1
    fed = feed(BinnerState.start(DVS), e, DVS, flush=True)
    assert fed.activity == (bins > 0).sum() == 2  # active entries, not events


def test_a_bin_closes_only_when_an_event_at_or_past_its_end_arrives():
    state = BinnerState.start(SPEC)
    r = feed(state, ev([100, 900], [0, 0]), SPEC)
    assert r.bins.shape[0] == 0 and r.state.closed == 0 and len(r.state.pending) == 2
    r = feed(r.state, ev([1000], [0]), SPEC)
    assert r.bins.shape[0] == 1 and len(r.state.pending) == 1


def test_the_open_bin_holds_a_copy_not_a_view_of_the_request_body():
    body = ev(np.arange(0, 4500, 10), np.zeros(450, int)).tobytes()
    received = np.frombuffer(body, dtype=ev([0], [0]).dtype)
    for events in (received, received[:50]):  # bins close / all of it is in the open bin
        pending = feed(BinnerState.start(SPEC), events, SPEC).state.pending
        assert len(pending) and pending.base is None  # the body can be freed


def test_watermark_and_flush_close_bins():
    r = feed(BinnerState.start(SPEC), ev([100], [0]), SPEC, until_us=3000)
    assert r.state.closed == 3
    r = feed(BinnerState.start(SPEC), ev([100, 1500], [0, 0]), SPEC, flush=True)
    assert r.state.closed == 2 and len(r.state.pending) == 0
    again = feed(r.state, empty_events("cochlea"), SPEC, flush=True)
    assert again.bins.shape[0] == 0  # nothing new to close


def test_late_events_are_rejected_or_dropped_and_counted():
    state = feed(BinnerState.start(SPEC), ev([100, 2100], [0, 0]), SPEC).state
    with pytest.raises(EventError, match="already closed"):
        feed(state, ev([500, 2200], [0, 0]), SPEC)
    r = feed(state, ev([500, 2200], [0, 0]), SPEC, late="drop")
    assert (r.accepted, r.dropped) == (1, 1)


def test_first_event_origin_aligns_bins_to_the_first_event():
    r = feed(BinnerState.start(SPEC, None), ev([10_000_500, 10_001_600], [0, 2]), SPEC, flush=True)
    assert r.state.t0_us == 10_000_500
    np.testing.assert_array_equal(r.bins[:, :2], [[1, 0], [0, 1]])


def test_a_jump_far_into_the_future_is_refused():
    with pytest.raises(EventError, match="would close 1000000 bins"):
        feed(BinnerState.start(SPEC), ev([10**9], [0]), SPEC, max_new_bins=1000)


RECORDING = ev(np.sort(np.random.default_rng(1).integers(0, 20_000, 300)),
               np.random.default_rng(2).integers(0, 8, 300))


@given(st.lists(st.integers(0, 300), max_size=10).map(sorted),
       st.lists(st.integers(0, 25_000), max_size=4))
def test_streamed_bins_equal_offline_bins_for_any_cut(cuts, watermarks):
    state = BinnerState.start(SPEC)
    out = []
    bounds = [0, *cuts, len(RECORDING)]
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        chunk = RECORDING[lo:hi]
        # a watermark is only legal up to the next event still to come
        limit = RECORDING["t"][hi] if hi < len(RECORDING) else None
        until = watermarks[i] if i < len(watermarks) else None
        if until is not None and limit is not None:
            until = min(until, int(limit))
        r = feed(state, chunk, SPEC, until_us=until)
        assert r.activity == (r.bins > 0).sum()
        out.append(r.bins)
        state = r.state
    out.append(feed(state, empty_events("cochlea"), SPEC, flush=True).bins)
    streamed = np.concatenate(out)
    offline = bin_recording(RECORDING, SPEC)
    n = len(offline)
    np.testing.assert_array_equal(streamed[:n], offline)
    assert not streamed[n:].any()  # watermarks may close trailing empty bins


def test_a_batch_reaching_back_into_an_open_bin_is_merged_in_time_order():
    counting = SPEC.model_copy(update={"binarize": False})
    first = feed(BinnerState.start(counting), ev([100, 1900], [0, 2]), counting)
    second = feed(first.state, ev([1200, 1300], [4, 2]), counting, flush=True)
    assert (first.activity, second.activity) == (1, 2)  # one per active entry, not event
    np.testing.assert_array_equal(
        np.concatenate([first.bins, second.bins]),
        bin_recording(ev([100, 1200, 1300, 1900], [0, 4, 2, 2]), counting))


def test_check_accepts_what_feed_leaves_and_refuses_impossible_states():
    state = BinnerState.start(SPEC)
    for lo in range(0, len(RECORDING), 70):
        state = feed(state, RECORDING[lo:lo + 70], SPEC).state
        state.check(SPEC)
    assert len(state.pending)
    impossible = {
        "in a closed bin": dataclasses.replace(state, closed=state.closed + 2),
        "after the stream's last timestamp": dataclasses.replace(state, last_t=0),
        "out of range": dataclasses.replace(state, pending=ev([state.last_t], [99])),
        "origin is still unset": dataclasses.replace(state, t0_us=None),
    }
    for words, bad in impossible.items():
        with pytest.raises(EventError, match=words):
            bad.check(SPEC)
