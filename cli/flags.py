"""Argument types shared by the commands: a flag's value refused with a clear message
(argparse exits 2) before any work starts."""

from __future__ import annotations

import argparse


def count(text: str) -> int:
    """A count flag: an integer of at least 1 (0 or a negative one is a mistake, not "all")."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive(text: str) -> float:
    """A duration or rate: a number above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def ms_as_us(text: str) -> int:
    """A duration given in ms, as whole µs (events' resolution): at least 1 µs."""
    value = round(positive(text) * 1000)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0.001 ms (1 µs), got {text}")
    return value


def non_negative(text: str) -> float:
    """A duration that may be 0 (off)."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def natural(text: str) -> int:
    """An integer of at least 0: a seed (numpy's generators take no negative one), a span or
    a shift that 0 turns off."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def speed(text: str) -> float | None:
    """``max`` (no pacing) or a positive factor of real time."""
    if text == "max":
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("speed must be positive, or `max`")
    return value


def top_k(text: str) -> int:
    """Classes a result lists: 1 to 1000, the server's limit."""
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 1000, got {text}")
    return value


def url(text: str) -> str:
    """A server's http:// or https:// URL."""
    from clients.aio import server_url

    try:
        return server_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def fraction(text: str) -> float:
    """A probability that leaves something: at least 0, below 1 (dropout or dropping all of
    it trains nothing)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value
