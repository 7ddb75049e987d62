"""Shared benchmark helpers: timing and table printing."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table


def best_time(fn: Callable[[], object], repeats: int = 5, number: int = 10) -> float:
    """Best-of-``repeats`` mean seconds per call over ``number`` calls (after one warm call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*(f"{v:,.3g}" if isinstance(v, float) else str(v) for v in r))
    Console(width=160).print(table)
