"""The ``rcsnn`` command: one entry point, a subcommand per step of the flow.

User-facing errors (bad input, a missing tool, a failed simulator) are one line on stderr and
exit status 2; a failed check is exit status 1; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import RcsnnError
from . import analog, digital, model, verify

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rcsnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for part in (model, analog, digital, verify):
        part.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except RcsnnError as exc:
        print(f"rcsnn: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"rcsnn: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rcsnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
