"""Every benchmark of ``make bench`` runs to its table at the smallest sizes its flags allow.
The suite times nothing (the benchmarks do: README, "Benchmarks"); this keeps them working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.dashboard import CHROMIUM
from scripts.topology import Redis

ROOT = Path(__file__).resolve().parents[2]

# Module, tiny flags, and what only a finished run prints (its table's title or summary).
CASES = {
    "advance": (["--preset", "tiny", "--calls", "1", "--sessions", "1", "--bins", "1"],
                "advance throughput"),
    "binning": (["--chunk-ms", "20"], "binning per chunk"),
    "frames": (["--events", "1000"], "one watermarked DVS frame"),
    "train_step": (["--presets", "tiny", "--batch", "2", "--bins", "8"], "training step"),
    "cochlea": (["--seconds", "0.02", "--channels", "8"], "later clips (matrix cached)"),
    "readout_drift": (["--minutes", "0.05"], "probability drift"),
    "server_load": (["--preset", "tiny", "--sessions", "1", "--chunk-ms", "20", "--chunks", "2",
                     "--transports", "ws", "http", "--scenarios", "throughput", "latency",
                     "--latency-sessions", "2", "--ramp"], "throughput target"),
}


def run_bench(module: str, flags: list[str]) -> str:
    done = subprocess.run([sys.executable, "-m", f"bench.{module}", *flags], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("module", list(CASES))
def test_a_benchmark_runs_to_its_table(module: str) -> None:
    flags, finished = CASES[module]
    assert finished in run_bench(module, flags)


@pytest.mark.slow
def test_the_dashboard_benchmark_runs_to_its_table() -> None:
    if not Path(CHROMIUM).exists():  # tests/dashboard installs it where it can
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package")
    assert "probabilities over time" in run_bench(
        "dashboard", ["--results", "100", "--paints", "1", "--repeats", "1"])


@pytest.mark.slow
def test_the_store_benchmark_runs_to_its_table(redis_server: Redis) -> None:
    out = run_bench("store", ["--sessions", "1", "--batches", "2", "--rounds", "1",
                              "--redis", redis_server.url])
    assert "the Redis store's steps alone" in out
