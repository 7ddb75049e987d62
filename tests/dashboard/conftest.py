"""Fixtures: a dashboard target (model, checkpoints, samples) served by the server tests' uvicorn
fixture, and headless Debian Chromium driven by playwright.

Targets are the tiny random-init checkpoints of tests/server (with random samples written
here) and every checkpoint in the repository's ``checkpoints/`` that has ``samples/NAME/``.
The ``base_settings`` and ``registry`` fixtures of tests/server are overridden per target, so
its ``make_live`` starts uvicorn on that target's model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from model.checkpoint import discover, load
from server.registry import ModelRegistry, build_model
from server.settings import Settings
from tests.server.conftest import (  # noqa: F401  (fixtures used through make_live)
    COCHLEA,
    DVS,
    checkpoints,
    cochlea_recording,
    dvs_recording,
    make_live,
    prefix,
    slow_redis,
)

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclasses.dataclass(frozen=True)
class Target:
    """A model to play samples of; ``shipped`` ones must also get the samples' labels right."""

    model: str
    checkpoints: Path | None  # None: the tiny checkpoints of tests/server
    samples: Path | None      # None: random samples written by the fixture
    shipped: bool

    def __str__(self) -> str:
        return self.model


def shipped_targets() -> list[Target]:
    """Repository checkpoints with samples, e.g. checkpoints/digits-dvs + samples/digits-dvs."""
    return [Target(path.name, path.parent, REPO / "samples", shipped=True)
            for path in discover(REPO / "checkpoints")
            if (REPO / "samples" / path.name / "index.json").is_file()]


TARGETS = [Target(DVS, None, None, False), Target(COCHLEA, None, None, False),
           *shipped_targets()]


@pytest.fixture(scope="session", params=TARGETS, ids=str)
def target(request: pytest.FixtureRequest) -> Target:
    return request.param


def write_samples(root: Path, model: str) -> Path:
    """Two random one-second recordings of a tiny model, as shipped samples are laid out."""
    record = dvs_recording if model == DVS else cochlea_recording
    folder = root / model
    folder.mkdir(parents=True)
    index = []
    for seed in (1, 2):
        file = f"random-{seed}.npy"
        np.save(folder / file, record(seed, n=3000, duration_us=1_000_000))
        index.append({"file": file, "label": seed, "label_name": f"class{seed}",
                      "source": f"random events, seed {seed} (tests)"})
    (folder / "index.json").write_text(json.dumps(index, indent=1))
    return root


@pytest.fixture(scope="session")
def base_settings(target: Target, checkpoints: Path,  # noqa: F811
                  tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the target's server: one session at a time, compiled for the page's
    4-bin frames (fewer programs to compile keep the test short)."""
    samples = target.samples or write_samples(tmp_path_factory.mktemp("samples"), target.model)
    return Settings(checkpoints=target.checkpoints or checkpoints, samples=samples,
                    session_buckets=(1,), bin_buckets=(1, 4), max_sessions=4,
                    max_concurrent_infer=2)


@pytest.fixture(scope="session")
def registry(target: Target, base_settings: Settings) -> ModelRegistry:
    """Only the target's model (the app compiles it at start-up)."""
    return ModelRegistry([build_model(load(base_settings.checkpoints / target.model),
                                      base_settings)])


def install_chromium() -> None:
    """Debian's chromium, when this process may install packages; else skip."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and apt-get cannot run here: "
                    "install Debian's chromium package to run the dashboard tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            pytest.skip(f"`{' '.join(command)}` failed, so Chromium is missing:\n"
                        f"{done.stderr[-2000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's; playwright only as the driver, no downloaded browsers).

    Module-scoped: playwright's sync API runs an event loop in the main thread while it is
    open, which would break later tests that call ``asyncio.run``."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the dashboard tests drive Chromium with playwright "
                                          "(pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        install_chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
