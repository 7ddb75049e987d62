import dataclasses
import json

import jax
import numpy as np
import pytest

from model import checkpoint
from model.network import init_params
from model.spec import InputSpec, preset_config

SPEC = InputSpec(sensor="cochlea", channels=700, downsample=5, dt_us=4000)


@pytest.fixture
def saved(tmp_path):
    tmp_path = tmp_path / "ckpt"
    cfg = preset_config("tiny", 140, 3)
    params = init_params(jax.random.PRNGKey(0), cfg)
    card = checkpoint.ModelCard(name="t", architecture=cfg, input=SPEC, labels=["a", "b", "c"])
    checkpoint.save(tmp_path, card, params)
    return tmp_path, params


def test_round_trip_restores_every_parameter(saved):
    path, params = saved
    ckpt = checkpoint.load(path)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(ckpt.params),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert ckpt.card.input == SPEC and ckpt.cfg.neurons == (32, 32)
    digest = ckpt.card.params_sha256
    _edit_card(path, params_sha256="")  # a hand-written card without the checksum
    assert checkpoint.load(path).card.params_sha256 == digest != ""
    (path.parent / "not-a-checkpoint").mkdir()
    assert checkpoint.discover(path.parent) == [path]


def test_version_names_weights_architecture_and_input_but_not_the_prose(saved):
    path, _ = saved
    card = checkpoint.load(path).card
    renamed = card.model_copy(update={"labels": ["x", "y", "z"], "description": "d",
                                      "metrics": {"accuracy": 1.0}})
    assert renamed.version == card.version
    wider_bins = card.model_copy(update={"input": SPEC.model_copy(update={"dt_us": 1000})})
    other_dt = card.model_copy(
        update={"architecture": dataclasses.replace(card.architecture, eta_max=0.2)})
    other_weights = card.model_copy(update={"params_sha256": "0" * 64})
    versions = {c.version for c in (card, wider_bins, other_dt, other_weights)}
    assert len(versions) == 4 and all(len(v) == 12 for v in versions)


def _edit_card(path, **changes):
    card = json.loads((path / "model.json").read_text())
    card.update(changes)
    (path / "model.json").write_text(json.dumps(card))


def _edit_architecture(path, **changes):
    card = json.loads((path / "model.json").read_text())
    _edit_card(path, architecture={**card["architecture"], **changes})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "model.json").unlink(), "model.json is missing"),
        (lambda p: (p / "params.msgpack").unlink(), "params.msgpack is missing"),
        (lambda p: _edit_card(p, labels=["a", "b"]), "2 labels for 3 output classes"),
        (lambda p: _edit_card(p, format_version=7), "not a valid model card"),
        (lambda p: _edit_card(p, name="my/shd"), "name: String should match pattern"),
        (lambda p: _edit_card(p, name=""), "name: String should match pattern"),
        (lambda p: (p / "params.msgpack").write_bytes(b"junk"), "does not match"),
        (lambda p: _edit_architecture(p, blocks=0), "must be at least 1"),
        (lambda p: _edit_architecture(p, neurons=[]), "at least one layer"),
        (lambda p: _edit_architecture(p, neurons=[-32, 32]), "at least one layer"),
    ],
)
def test_a_bad_checkpoint_is_explained(saved, damage, message):
    path, _ = saved
    damage(path)
    with pytest.raises(checkpoint.CheckpointError, match=message):
        checkpoint.load(path)


def test_a_checkpoints_file_given_for_its_folder_is_named_as_such(saved):
    path, _ = saved
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"model\.json is a file; give the checkpoint's folder"):
        checkpoint.load(path / "model.json")  # it said model.json/model.json is missing


def test_saving_again_replaces_each_file_whole(saved, monkeypatch):
    """A save killed while writing leaves the previous files as they were."""
    path, params = saved
    before = {f: (path / f).read_bytes() for f in ("model.json", "params.msgpack")}
    card = checkpoint.read_card(path)

    write = type(path).write_bytes

    def killed(self, data):  # half the bytes reach the disk
        write(self, data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(type(path), "write_bytes", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, card.model_copy(update={"description": "x"}), params)
    monkeypatch.undo()
    assert {f: (path / f).read_bytes() for f in before} == before


def test_parameters_of_another_architecture_are_explained(saved):
    path, _ = saved
    card = json.loads((path / "model.json").read_text())
    card["architecture"]["neurons"] = [16, 16]
    card["params_sha256"] = ""
    (path / "model.json").write_text(json.dumps(card))
    with pytest.raises(checkpoint.CheckpointError, match=r"has shape \(32, 140, 2\)"):
        checkpoint.load(path)


def test_parameters_of_a_diverged_run_are_refused(saved):
    path, params = saved
    card = checkpoint.read_card(path)
    broken = jax.tree_util.tree_map(lambda a: a, params)
    broken["readout"]["W"] = broken["readout"]["W"].at[0, 0].set(np.nan)
    checkpoint.save(path, card, broken)
    with pytest.raises(checkpoint.CheckpointError, match=r"\['readout'\]\['W'\] holds NaN"):
        checkpoint.load(path)
