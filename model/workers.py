"""Worker processes for the data generators and encoders: spawned, and deaf to Ctrl-C."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import signal
from collections.abc import Callable
from typing import Any


def spawn_pool(workers: int, initializer: Callable[..., object] | None = None,
               initargs: tuple[Any, ...] = ()) -> multiprocessing.pool.Pool:
    """A pool of ``workers`` processes, spawned, not forked: numba's threads, BLAS's and rich's
    refresh thread do not survive a fork. Ctrl-C reaches the whole process group; the workers
    ignore it and the parent alone answers it (leaving the pool's ``with`` terminates them),
    so a command stopped mid-run says so in one line, not in a traceback per process."""
    return multiprocessing.get_context("spawn").Pool(workers, _start, (initializer, initargs))


def _start(initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
