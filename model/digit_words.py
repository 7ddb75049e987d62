"""SHD's twenty classes: the digits zero to nine spoken in English (labels 0-9) and German
(labels 10-19), as the Spiking Heidelberg Digits name them."""

from __future__ import annotations

import numpy as np

ENGLISH = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
# SHD's class names (extra/keys), umlaut spelt out; label = index.
KEYS = (
    *ENGLISH,
    "null",
    "eins",
    "zwei",
    "drei",
    "vier",
    "fuenf",
    "sechs",
    "sieben",
    "acht",
    "neun",
)


def same_digit(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Whether labels ``a`` and ``b`` name the same digit in either language (SHD's label
    k + 10 is the German word for English k: "vier" for "four" is the right digit)."""
    return np.asarray(a) % 10 == np.asarray(b) % 10
