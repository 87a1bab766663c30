"""``leak_check()``: what grew, by source line, between the start and the end of a block."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from perflayer.errors import ConfigError

__all__ = ["LeakReport", "LineGrowth", "leak_check"]


@dataclass(frozen=True)
class LineGrowth:
    """Growth attributed to one source line."""

    filename: str
    lineno: int
    size_diff: int
    count_diff: int

    def __str__(self) -> str:
        """Format as ``file:line: +N bytes in M blocks``."""
        where = f"{self.filename}:{self.lineno}"
        return f"{where}: {self.size_diff:+d} bytes in {self.count_diff:+d} blocks"


@dataclass
class LeakReport:
    """Filled in when the ``leak_check()`` block exits: total growth and the top lines."""

    top: list[LineGrowth] = field(default_factory=list)
    total_growth: int = 0
    finished: bool = False

    def lines(self) -> list[str]:
        """Return the top lines formatted for a log."""
        return [str(g) for g in self.top]

    def growth_in(self, filename_part: str) -> int:
        """Return the total growth of the top lines whose filename contains ``filename_part``."""
        return sum(g.size_diff for g in self.top if filename_part in g.filename)

    def __str__(self) -> str:
        """Summarize the report."""
        head = f"leak_check: {self.total_growth:+d} bytes"
        return "\n".join([head, *("  " + line for line in self.lines())])


@contextmanager
def leak_check(
    top: int = 10, *, frames: int = 1, include_self: bool = False
) -> Iterator[LeakReport]:
    """Snapshot tracemalloc before and after the block; report the lines that grew the most.

    Starts tracemalloc if it is not running and stops it again afterwards. The report is
    filled in on exit, including when the block raises.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top must be a positive int, got {top!r}")
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(frames)
    report = LeakReport()
    filters = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    ]
    if not include_self:
        filters.append(tracemalloc.Filter(False, __file__))
    before = tracemalloc.take_snapshot().filter_traces(filters)
    try:
        yield report
    finally:
        after = tracemalloc.take_snapshot().filter_traces(filters)
        if started:
            tracemalloc.stop()
        diffs = [d for d in after.compare_to(before, "lineno") if d.size_diff > 0]
        report.total_growth = sum(d.size_diff for d in after.compare_to(before, "filename"))
        for d in diffs[:top]:
            frame = d.traceback[0]
            report.top.append(LineGrowth(frame.filename, frame.lineno, d.size_diff, d.count_diff))
        report.finished = True
