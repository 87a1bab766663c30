"""Recurring jobs: digest emails, index refreshes, stale-ticket reminders."""

from __future__ import annotations

import datetime as dt
import heapq
import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

logger = logging.getLogger(__name__)


@dataclass(order=True)
class Job:
    """A job due at ``due``; ordered by due time."""

    due: dt.datetime
    name: str = field(compare=False)
    action: Callable[[], None] = field(compare=False)
    every: Optional[dt.timedelta] = field(default=None, compare=False)


class Scheduler:
    """Run jobs when they are due; reschedule recurring ones."""

    def __init__(self, clock: Callable[[], dt.datetime] = dt.datetime.utcnow) -> None:
        self.clock = clock
        self.jobs: List[Job] = []
        self.failures: Dict[str, int] = {}

    def add(self, name: str, action: Callable[[], None], at: dt.datetime,
            every: Optional[dt.timedelta] = None) -> None:
        """Schedule ``action`` at ``at`` (and then every ``every``)."""
        heapq.heappush(self.jobs, Job(at, name, action, every))

    def daily(self, name: str, action: Callable[[], None], hour: int, minute: int = 0) -> None:
        """Schedule ``action`` every day at ``hour:minute`` UTC."""
        today = self.clock().replace(hour=hour, minute=minute, second=0, microsecond=0)
        first = today if today > self.clock() else today + dt.timedelta(days=1)
        self.add(name, action, first, dt.timedelta(days=1))

    def run_pending(self) -> List[str]:
        """Run every job that is due; return their names."""
        ran: List[str] = []
        now = self.clock()
        while self.jobs and self.jobs[0].due <= now:
            job = heapq.heappop(self.jobs)
            try:
                job.action()
                ran.append(job.name)
            except Exception:  # noqa: BLE001
                self.failures[job.name] = self.failures.get(job.name, 0) + 1
                logger.exception("job %s failed", job.name)
            if job.every is not None:
                heapq.heappush(self.jobs, Job(job.due + job.every, job.name, job.action,
                                              job.every))
        return ran

    def next_due(self) -> Optional[dt.datetime]:
        """Return when the next job is due."""
        return self.jobs[0].due if self.jobs else None

    def cancel(self, name: str) -> int:
        """Remove every job called ``name``; return how many."""
        before = len(self.jobs)
        self.jobs = [j for j in self.jobs if j.name != name]
        heapq.heapify(self.jobs)
        return before - len(self.jobs)


def digest_subject(team: str, day: dt.date) -> str:
    """Return the subject line of a team's daily digest."""
    return f"[{team}] digest for {day.isoformat()}"


def is_business_day(day: dt.date, holidays: Optional[List[dt.date]] = None) -> bool:
    """Return True for Monday to Friday outside ``holidays``."""
    return day.weekday() < 5 and day not in (holidays or [])
