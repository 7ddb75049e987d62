"""Where a checkpoint's figures came from, for its card: commit, machine and data recipe."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def data_recipe(data: Path) -> dict[str, Any] | None:
    """The ``recipe.json`` that ``s5rf data`` writes beside a dataset it made, if there is one:
    with it the card says how to regenerate its data."""
    path = data.parent / "recipe.json"
    return json.loads(path.read_text()) if path.exists() else None


def this_run(command: str) -> dict[str, Any]:
    """The command, the code's commit, the machine and the time (UTC) of this run."""
    return {"command": command, "commit": git_commit(), "machine": machine(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def git_commit() -> str | None:
    """The commit of the code that runs (not of the directory it runs in), or None when it
    is not a git checkout (an installed wheel)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def machine() -> dict[str, Any]:
    """What ran the command: times in a card mean little without the cores and backend."""
    import jax

    return {"platform": platform.platform(), "cpus": os.cpu_count(),
            "jax": jax.__version__, "backend": jax.default_backend(),
            "devices": [d.device_kind for d in jax.devices()]}
