"""``pcm3 <subcommand>``: the command-line entry point.

Exit codes: 0 success; 2 bad usage or bad input (one ``error: ...`` line on stderr, no
traceback unless ``--debug``); 1 internal failure.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from pcm3 import __version__
from pcm3.errors import Pcm3Error

# each command module adds its sub-parsers with ``register(subparsers)`` and sets ``func``
_COMMAND_MODULES = ("pcm3.commands.data", "pcm3.commands.pretrain", "pcm3.commands.quickstart",
                    "pcm3.commands.evaluate", "pcm3.commands.bench", "pcm3.commands.embed")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors the project's way (exit 2, one line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise Pcm3Error(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="pcm3", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pcm3 {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int | None] = args.func
        return int(func(args) or 0)
    except Pcm3Error as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
