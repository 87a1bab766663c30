"""Sub-command registration for the CLI; each command imports its implementation lazily."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _run_demo(args: argparse.Namespace) -> int:
    from perflayer._demo import run_demo

    return run_demo(args)


def _run_serve(args: argparse.Namespace) -> int:
    from perflayer._serve import run_serve

    return run_serve(args)


def _run_analyze(args: argparse.Namespace) -> int:
    from perflayer.analyze.cli import run

    return run(args)


def register(sub: Any) -> None:
    """Add every sub-command to ``sub`` (an argparse sub-parsers action)."""
    demo = sub.add_parser("demo", help="replay a real cache trace and print hit ratio and latency")
    demo.add_argument("--trace", default=None, help="trace file (default: one from shared/traces)")
    demo.add_argument("--size", type=int, default=None, help="cache size in entries")
    demo.set_defaults(handler=_run_demo)
    serve = sub.add_parser("serve", help="serve /metrics, /health, /alerts and /dashboard")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    serve.add_argument("--port", type=int, default=9464, help="port (0 picks a free one)")
    serve.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    serve.add_argument(
        "--workload", action="store_true", help="run a sample service that reports into it"
    )
    serve.add_argument("--rate", type=float, default=200.0, help="sample requests per second")
    serve.add_argument("--seconds", type=float, default=None, help="stop after this long")
    serve.set_defaults(handler=_run_serve)
    analyze = sub.add_parser(
        "analyze", help="find duplicate caches, memory tools, responses and monitors in a tree"
    )
    from perflayer.analyze.cli import add_arguments

    add_arguments(analyze)
    analyze.set_defaults(handler=_run_analyze)
