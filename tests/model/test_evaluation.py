"""model/evaluation.py: per-sample predictions in the data's order, and the card's figures."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from model.batching import BinnedSet
from model.binning import bin_recording
from model.evaluation import FRACTIONS, evaluate, predict
from model.network import init_params, synaptic_ops
from model.spec import InputSpec, preset_config
from tests.order_task import order_task

SPEC = InputSpec(sensor="cochlea", channels=40, dt_us=5000)
LABELS = ["ab", "ba", "cd", "dc"]


@pytest.fixture(scope="module")
def setup():
    events, labels = order_task(37, np.random.default_rng(1))
    # Different lengths, so padding to the longest recording of a batch is exercised.
    events = [ev[ev["t"] < 200_000 - 25_000 * (i % 3)] for i, ev in enumerate(events)]
    data = BinnedSet(events=events, bins=[bin_recording(ev, SPEC) for ev in events],
                     labels=labels)
    cfg = preset_config("tiny", n_in=SPEC.features, n_classes=len(LABELS))
    return cfg, init_params(jax.random.PRNGKey(3), cfg), data


def _part(data: BinnedSet, idx: np.ndarray) -> BinnedSet:
    return BinnedSet(events=[data.events[i] for i in idx], bins=[data.bins[i] for i in idx],
                     labels=data.labels[idx])


def test_predictions_are_per_sample_in_the_datas_order_whatever_the_batching(setup) -> None:
    cfg, params, data = setup
    whole = predict(params, cfg, SPEC, data, batch_size=16)  # 37 = 16 + 16 + 5 padded
    assert whole.predicted.shape == whole.labels.shape == (37,)
    np.testing.assert_array_equal(whole.labels, data.labels)
    np.testing.assert_array_equal(whole.bins, [len(b) for b in data.bins])
    np.testing.assert_array_equal(whole.input_events, [b.sum() for b in data.bins])
    np.testing.assert_array_equal(whole.input_active, [(b > 0).sum() for b in data.bins])
    # The second half alone, in other batches: the same sample gets the same outputs.
    idx = np.arange(20, 37)
    half = predict(params, cfg, SPEC, _part(data, idx), batch_size=4)
    np.testing.assert_array_equal(half.predicted, whole.predicted[idx])
    np.testing.assert_array_equal(half.spikes, whole.spikes[idx])
    for f in FRACTIONS:
        np.testing.assert_array_equal(half.early[f], whole.early[f][idx])


def test_evaluate_summarises_the_predictions(setup) -> None:
    cfg, params, data = setup
    p = predict(params, cfg, SPEC, data)
    metrics = evaluate(params, cfg, SPEC, data, LABELS)
    assert metrics["samples"] == 37
    assert metrics["accuracy"] == np.mean(p.predicted == data.labels)
    confusion = np.asarray(metrics["confusion"])
    np.testing.assert_array_equal(confusion.sum(1), np.bincount(data.labels, minlength=4))
    assert np.trace(confusion) == np.sum(p.correct)
    assert metrics["mean_spikes_per_sample_per_layer"] == pytest.approx(p.spikes.mean(0))
    assert metrics["synops_per_sample"] == pytest.approx(
        np.mean(synaptic_ops(p.input_active, p.spikes, cfg)))
    # After the whole recording the running readout decides as the final output does.
    assert metrics["accuracy_vs_fraction_seen"]["1.0"] == pytest.approx(metrics["accuracy"])
    assert metrics["accuracy_by"] == {}


def test_accuracy_by_a_metadata_field_is_the_accuracy_of_each_values_samples(setup) -> None:
    cfg, params, data = setup
    correct = predict(params, cfg, SPEC, data).correct
    speaker = np.array(["ann", "bob", "cy"])[np.arange(37) % 3]
    metrics = evaluate(params, cfg, SPEC, data, LABELS, groups={"speaker": speaker})
    by = metrics["accuracy_by"]["speaker"]
    assert list(by) == ["ann", "bob", "cy"]
    for k, name in enumerate(by):
        assert by[name] == {"samples": len(correct[k::3]),
                            "accuracy": pytest.approx(np.mean(correct[k::3]))}
    assert sum(m["samples"] * m["accuracy"] for m in by.values()) == pytest.approx(
        metrics["accuracy"] * 37)


def test_synops_of_event_counts_take_one_input_spike_per_active_entry(setup) -> None:
    """An entry counting 3 events is one input spike through the first layer's weights."""
    cfg, params, data = setup
    counting = SPEC.model_copy(update={"binarize": False})
    counted = BinnedSet(events=data.events, labels=data.labels,
                        bins=[bin_recording(ev, counting) for ev in data.events])
    assert sum(b.sum() for b in counted.bins) > sum((b > 0).sum() for b in counted.bins)
    p = predict(params, cfg, counting, counted)
    metrics = evaluate(params, cfg, counting, counted, LABELS)
    assert metrics["synops_per_sample"] == pytest.approx(np.mean(synaptic_ops(
        [(b > 0).sum() for b in counted.bins], p.spikes, cfg)))


def test_test_data_are_cut_as_in_training_and_must_fit_the_model(tmp_path, setup) -> None:
    from model.checkpoint import ModelCard
    from model.datasets import open_dataset, write_shd
    from model.errors import InputError
    from model.evaluation import load_as_trained
    from model.spec import TrainConfig

    cfg, _, data = setup
    write_shd(tmp_path / "t.h5", data.events, data.labels, keys=LABELS, channels=40)
    card = ModelCard(name="m", architecture=cfg, input=SPEC, labels=LABELS,
                     training=TrainConfig(max_bins=12))
    with open_dataset(tmp_path / "t.h5") as ds:
        cut = load_as_trained(ds, card)
        assert max(len(b) for b in cut.bins) == 12 < max(len(b) for b in data.bins)
        whole = load_as_trained(ds, card.model_copy(update={"training": None}))
        assert [len(b) for b in whole.bins] == [len(b) for b in data.bins]
        with pytest.raises(InputError, match="has keys"):
            load_as_trained(ds, card.model_copy(update={"labels": LABELS[::-1]}))
