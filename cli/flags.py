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


def fraction(text: str) -> float:
    """A probability that leaves something: at least 0, below 1 (dropout or dropping all of
    it trains nothing)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value
