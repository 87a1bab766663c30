"""Sub-command registration for the CLI; each command imports its implementation lazily."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _run_demo(args: argparse.Namespace) -> int:
    from perflayer._demo import run_demo

    return run_demo(args)


def _run_analyze(args: argparse.Namespace) -> int:
    from perflayer.analyze.cli import run

    return run(args)


def register(sub: Any) -> None:
    """Add every sub-command to ``sub`` (an argparse sub-parsers action)."""
    demo = sub.add_parser("demo", help="replay a real cache trace and print hit ratio and latency")
    demo.add_argument("--trace", default=None, help="trace file (default: one from shared/traces)")
    demo.add_argument("--size", type=int, default=None, help="cache size in entries")
    demo.set_defaults(handler=_run_demo)
    analyze = sub.add_parser(
        "analyze", help="find duplicate caches, memory tools, responses and monitors in a tree"
    )
    from perflayer.analyze.cli import add_arguments

    add_arguments(analyze)
    analyze.set_defaults(handler=_run_analyze)
