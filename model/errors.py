"""The one base of every error that bad input causes (a file, a flag, a checkpoint): the CLI
reports it in one line and exits 2; anything else is a bug and keeps its traceback."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input, with a message that says what is wrong and where."""
