"""``pcm3 <subcommand>``: the command-line entry point.

Exit codes: 0 success; 2 bad usage or bad input (one ``error: ...`` line on stderr, no
traceback unless ``--debug``); 1 internal failure. pcm3's own warnings (e.g. an emulated,
slow precision) are printed as one ``warning: ...`` line on stderr.

``key=value`` config overrides may stand anywhere after the subcommand, before, between or
after its options.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from pcm3 import __version__
from pcm3.errors import Pcm3Error, Pcm3Warning

# each command module adds its sub-parsers with ``register(subparsers)`` and sets ``func``
_COMMAND_MODULES = ("pcm3.commands.data", "pcm3.commands.pretrain", "pcm3.commands.quickstart",
                    "pcm3.commands.evaluate", "pcm3.commands.bench", "pcm3.commands.doctor",
                    "pcm3.commands.embed", "pcm3.commands.demo")
OVERRIDES = "overrides"  # the dest of a sub-command's ``key=value`` positional


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors the project's way (exit 2, one line) and takes a
    sub-command's ``key=value`` overrides wherever they stand.

    argparse fills a ``nargs="*"`` positional from one run of positional words only, so
    overrides after an option (``bench --config C data=X --out O k=v``) would come back
    unrecognised; a parser with an ``overrides`` positional adds every such ``key=value`` word
    to it, in command-line order (other unrecognised words stay errors).
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        raise Pcm3Error(f"{self.prog}: {message}")

    def parse_known_args(self, args: Any = None,
                         namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if not any(action.dest == OVERRIDES for action in self._actions):
            return parsed, extras
        is_override = [("=" in word and not word.startswith("-")) for word in extras]
        found = [w for w, o in zip(extras, is_override, strict=True) if o]
        setattr(parsed, OVERRIDES, [*(getattr(parsed, OVERRIDES, None) or []), *found])
        return parsed, [w for w, o in zip(extras, is_override, strict=True) if not o]


def _one_line_warnings(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` printing pcm3's own warnings as ``warning: <message>``."""

    def show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, Pcm3Warning):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, *args, **kwargs)

    return show_warning


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
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
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
