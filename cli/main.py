"""The ``s5rf`` console script: one entry point, one module per command group.

Each command module exposes ``register(subparsers)``; it imports its heavy dependencies
inside the command so ``s5rf --help`` stays fast. A command whose work survives Ctrl-C sets
``resumes=True`` among its parser's defaults, and the one line an interruption prints says so.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from model.errors import InputError

# Add a command group by appending its module here.
COMMAND_MODULES: tuple[str, ...] = ("cli.train", "cli.evaluate", "cli.data", "cli.cochlea",
                                  "cli.serve", "cli.replay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s5rf", description="S5-RF event-stream inference")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command_line = "s5rf " + shlex.join(argv)  # recorded in model cards
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"s5rf {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback; 130 as a shell reports it
        hint = "; run the same command again to resume" if getattr(args, "resumes", False) else ""
        print(f"s5rf {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
