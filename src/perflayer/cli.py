"""The ``perflayer`` command: ``analyze``, ``demo`` and ``serve``.

Start-up imports nothing heavy: each sub-command imports its own module when it runs. Errors map
to exit codes and a one-line message, never a traceback: 0 clean, 1 findings (with
``--fail-on-new``), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _version() -> str:
    from perflayer import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level argument parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="perflayer",
        description="One performance layer for Python services, and a finder of home-grown ones.",
    )
    parser.add_argument("--version", action="version", version=f"perflayer {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from perflayer import _cli_commands

    _cli_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    from perflayer.errors import PerflayerError

    try:
        code: int = handler(args)
    except PerflayerError as exc:
        print(f"perflayer {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
