"""Loading checkpoints into engines: the persistent compilation cache, unique names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model.checkpoint import CheckpointError
from server.registry import load_registry
from server.settings import Settings
from tests.server.conftest import COCHLEA

# In a fresh process each time: JAX's cache setting is global to the process.
LOAD_AND_WARM = """
import json, jax
events = []
jax.monitoring.register_event_listener(lambda name, **_: events.append(name))
from server.registry import load_registry
from server.settings import Settings
registry = load_registry(Settings(session_buckets=(1, 4), bin_buckets=(2,)))
registry.warm(with_spikes=False)
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses"),
                  "compilations": sum(m.engine.compilations for m in registry)}))
"""


def _load_and_warm(checkpoints: Path, cache: Path) -> dict[str, int]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "S5RF_CHECKPOINTS": str(checkpoints),
           "S5RF_COMPILATION_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", LOAD_AND_WARM], env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_restart_loads_the_compiled_programs_from_the_cache(checkpoints: Path,
                                                              tmp_path: Path) -> None:
    cache = tmp_path / "xla"
    first = _load_and_warm(checkpoints, cache)
    assert first["hits"] == 0 and first["misses"] >= first["compilations"] > 0
    second = _load_and_warm(checkpoints, cache)
    assert second["compilations"] == first["compilations"]  # the engines' programs (and the
    assert (second["hits"], second["misses"]) == (first["misses"], 0)  # small ones) all loaded


def test_two_checkpoints_of_one_name_are_refused(checkpoints: Path, tmp_path: Path) -> None:
    for copy in ("a", "b"):
        shutil.copytree(checkpoints / COCHLEA, tmp_path / copy)
    with pytest.raises(CheckpointError, match=f"both named '{COCHLEA}'"):
        load_registry(Settings(checkpoints=tmp_path))


def test_weights_without_a_card_are_skipped_and_said_so(checkpoints: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    shutil.copytree(checkpoints / COCHLEA, tmp_path / "a")
    (tmp_path / "b").mkdir()
    shutil.copy(checkpoints / COCHLEA / "params.msgpack", tmp_path / "b")
    with caplog.at_level("WARNING", logger="s5rf.server"):
        assert [m.name for m in load_registry(Settings(checkpoints=tmp_path))] == [COCHLEA]
    skipped = [r for r in caplog.records if r.getMessage() == "checkpoint_skipped"]
    assert [r.fields for r in skipped] == [  # type: ignore[attr-defined]
        {"path": str(tmp_path / "b"), "reason": "params.msgpack without model.json"}]


def test_a_directory_without_checkpoints_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "not-a-checkpoint").mkdir()
    with pytest.raises(CheckpointError, match=r"none of its sub-directories holds a model\.json"
                                              r"\); set --checkpoints or S5RF_CHECKPOINTS"):
        load_registry(Settings(checkpoints=tmp_path))
    with pytest.raises(CheckpointError, match=r"missing \(it does not exist\)"):
        load_registry(Settings(checkpoints=tmp_path / "missing"))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CheckpointError, match=r"a-file \(it is not a folder\)"):
        load_registry(Settings(checkpoints=tmp_path / "a-file"))
