"""The ``perflayer analyze`` sub-command: arguments, run, exit codes.

Exit codes: 0 clean (or every finding in the baseline), 1 new findings with ``--fail-on-new``,
2 usage or configuration error (one line on stderr, no traceback). Progress goes to stderr,
and only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["add_arguments", "main", "run"]

FORMATS = ("table", "markdown", "json", "sarif", "html")


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return n


def _nonneg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}")
    return n


def _one_line_error(message: str) -> None:
    # argparse prints the whole usage before the error; a CI log wants one line.
    print(f"perflayer analyze: {message}", file=sys.stderr)
    sys.exit(2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``analyze`` options to ``parser``."""
    setattr(parser, "error", _one_line_error)  # noqa: B010
    parser.add_argument("path", help="root of the Python tree to analyze")
    parser.add_argument(
        "--format", "-f", choices=FORMATS, default="table", help="report format (default: table)"
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        default=None,
        help="write the report to FILE instead of stdout",
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        default=None,
        help="without --fail-on-new: record the current duplicates in FILE as "
        "accepted; with --fail-on-new: compare against FILE (must exist)",
    )
    parser.add_argument(
        "--fail-on-new", action="store_true", help="exit 1 when a duplicate is not in the baseline"
    )
    parser.add_argument(
        "--target-lines",
        type=_nonneg,
        metavar="N",
        default=None,
        help="line-elimination target the plan is measured against",
    )
    parser.add_argument(
        "--canonical",
        action="append",
        metavar="CATEGORY=path.py:Symbol",
        default=None,
        help="keep this in-repo implementation for CATEGORY (or CATEGORY=auto: "
        "pick by consumers and completeness); default: perflayer's part",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=_positive,
        metavar="N",
        default=None,
        help="parser processes (default: all cores)",
    )
    parser.add_argument(
        "--max-file-bytes",
        type=_positive,
        metavar="N",
        default=2_000_000,
        help="skip files larger than N bytes (default: 2000000)",
    )


def _progress() -> object:
    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\rperflayer analyze: {done}/{total} files")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def run(args: argparse.Namespace) -> int:
    """Run the analysis described by ``args``; return the exit code."""
    from perflayer.analyze._analysis import analyze, load_baseline, parse_canonical, write_baseline
    from perflayer.analyze._report import render
    from perflayer.errors import PerflayerError

    try:
        canonical = parse_canonical(args.canonical)
        if not os.path.exists(args.path):
            raise PerflayerError(f"path {args.path!r} does not exist")
        baseline_set: set[str] | None = None
        record_baseline = False
        if args.baseline is not None:
            if args.fail_on_new:
                baseline_set = load_baseline(args.baseline)
            else:
                record_baseline = True
        progress = _progress() if sys.stderr.isatty() else None
        report = analyze(
            args.path,
            jobs=args.jobs,
            target_lines=args.target_lines,
            canonical=canonical,
            baseline=baseline_set,
            max_bytes=args.max_file_bytes,
            progress=progress,  # type: ignore[arg-type]
        )
        if baseline_set is None and args.fail_on_new:
            baseline_set = set()
        report.baseline = args.baseline
        if args.format == "table":
            from perflayer.analyze._report import write_table

            color = args.output is None and sys.stdout.isatty()
            text = write_table(report, color=color)
        else:
            text = render(report, args.format)
        if args.output:
            try:
                with open(args.output, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                raise PerflayerError(
                    f"cannot write {args.output!r}: {exc.strerror or exc}"
                ) from None
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
        if record_baseline:
            write_baseline(report, args.baseline)
        if args.fail_on_new and report.new_findings:
            if args.output or args.format != "table":
                for f in report.new_findings[:20]:
                    print(f"new: {f.ref} ({f.category}, {f.lines} lines)", file=sys.stderr)
            return 1
        return 0
    except (PerflayerError, ValueError, OSError) as exc:
        print(f"perflayer analyze: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Run ``perflayer analyze`` standalone (``python -m perflayer.analyze.cli``)."""
    parser = argparse.ArgumentParser(
        prog="perflayer analyze", description="Find duplicate performance infrastructure."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
