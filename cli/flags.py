"""Argument types shared by the commands: a flag's value refused with a clear message
(argparse exits 2) before any work starts."""

from __future__ import annotations

import argparse
from pathlib import Path


def count(text: str) -> int:
    """A count flag: an integer of at least 1 (0 or a negative one is a mistake, not "all")."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


MAX_CHANNELS = 4096  # SHD's cochlea has 700; the chain's time and memory grow with the count


def channels(text: str) -> int:
    """A cochlea's channel count: 1 to ``MAX_CHANNELS`` (100,000 asked numpy for 36 GiB)."""
    value = count(text)
    if value > MAX_CHANNELS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_CHANNELS:,} (SHD's cochlea has "
                                         f"700), not {value:,}")
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


def _writable(folder: Path) -> None:
    """Refuse a folder that takes no new file, tried with a nameless temporary file removed at
    once (permissions alone tell neither root nor a /proc apart)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot create files in {folder} ({exc.strerror or exc})") from exc


def output_file(text: str) -> Path:
    """A file a command writes: not a folder, in an existing folder it may write in."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder, not a file")
    folder = path.parent
    if not folder.exists():
        raise argparse.ArgumentTypeError(f"its folder {folder} does not exist")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{folder} is not a folder")
    _writable(folder)
    return path


def output_file_with_folders(text: str) -> Path:
    """A file a command writes, making its missing folders: not a folder, under a folder it
    may write in."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder, not a file")
    output_dir(str(path.parent))
    return path


def npz_file(text: str) -> Path:
    """An output .npz, the suffix added when missing (as numpy does): neither the path given
    nor the one written may be a folder."""
    path = output_file(text)
    return path if path.suffix == ".npz" else output_file(f"{path}.npz")


def image_file(text: str) -> Path:
    """An output figure: a file whose suffix names a format matplotlib writes (.png, .pdf,
    .svg, ...); without one it is a PNG, the suffix added, as matplotlib does."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = output_file(text)
    if not path.suffix:
        return output_file(f"{path}.png")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise argparse.ArgumentTypeError(
            f"cannot draw a {path.suffix} figure; name one of "
            + ", ".join(f".{f}" for f in sorted(formats)))
    return path


def output_dir(text: str) -> Path:
    """A folder a command writes (made, with its parents, when missing; an existing one is
    written into): not a file, under a folder it may write in."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is not a folder")
    existing = path
    while not existing.exists() and not existing.is_symlink():  # a dangling link is no folder
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is not a folder")
    _writable(existing)
    return path
