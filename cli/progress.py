"""The commands' progress display."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from rich.progress import Progress


def progress_bar() -> Progress:
    """Description, bar, done/total, time left (rich, on stderr's terminal)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    # On stderr: stdout carries the commands' JSON results.
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True))


def tracker(bar: Progress, description: str) -> Callable[[int, int], None]:
    """A new task of ``bar`` and the ``progress(done, total)`` callback that moves it."""
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update


@contextlib.contextmanager
def epoch_bar(epochs: int, first: int = 1) -> Iterator[Callable[[int, int, int, float], None]]:
    """A bar over each epoch's steps ("epoch 3/16", the steps, the loss), from epoch ``first``
    (a resumed run's), and its ``progress(epoch, step, steps, loss)`` callback."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("step {task.completed}/{task.total} loss {task.fields[loss]:.3f}"),
                  TimeRemainingColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(f"epoch {first}/{epochs}", total=1, loss=float("nan"))

        def progress(epoch: int, step: int, total: int, loss: float) -> None:
            bar.update(task, description=f"epoch {epoch}/{epochs}", completed=step, total=total,
                       loss=loss)

        yield progress
