"""The ``rcsnn`` command: one entry point, a subcommand per step of the flow.

User-facing errors (bad input, a bad option, a missing tool, a failed simulator, a file that
cannot be read or written) are one line on stderr and exit status 2; a failed check is exit
status 1; Ctrl-C is exit status 130 (outputs are left as they were, :mod:`rcsnn.files`);
anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import RcsnnError
from . import analog, bom, digital, model, montecarlo, verify

__all__ = ["Parser", "build_parser", "main"]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``rcsnn CMD: error: ...``, exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rcsnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for part in (model, analog, digital, verify, montecarlo, bom):
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
        print(f"rcsnn: error: {where}{exc.strerror or ' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rcsnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
