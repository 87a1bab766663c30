"""Build weekly status reports."""

from __future__ import annotations

import time
from typing import Dict, List, Sequence

import psutil

from acme.analytics.business_metrics import BusinessMetricsCalculator
from acme.integrations.jira_client import JiraClient
from acme.utils import cache as cache_module


def calculate_percentile(values: Sequence[float], percentile: float) -> float:
    """Return the ``percentile`` (0-100) of ``values`` by nearest rank."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = int(len(ordered) * percentile / 100)
    index = min(max(index, 0), len(ordered) - 1)
    return ordered[index]


def get_memory_usage() -> float:
    """Return this process' resident memory in megabytes."""
    process = psutil.Process()
    return process.memory_info().rss / (1024 * 1024)


class ReportService:
    """Assemble a weekly report from Jira and CRM data."""

    def __init__(self, jira: JiraClient, metrics: BusinessMetricsCalculator):
        self.jira = jira
        self.metrics = metrics
        self.cache = cache_module.get_cache()
        self.build_times: List[float] = []

    def weekly(self, project: str) -> Dict[str, object]:
        """Return the weekly report of ``project``."""
        cached = self.cache.get(f"weekly:{project}")
        if cached is not None:
            return cached
        started = time.time()
        issues = self.jira.search(f"project = {project} AND updated >= -7d")
        done = [i for i in issues if i.status.lower() == "done"]
        report = {
            "project": project,
            "updated": len(issues),
            "done": len(done),
            "points": sum(i.story_points or 0 for i in done),
            "win_rate": self.metrics.win_rate(),
            "revenue": self.metrics.revenue_by_quarter(),
        }
        self.build_times.append(time.time() - started)
        self.cache.set(f"weekly:{project}", report, ttl=3600)
        return report

    def build_time_p90(self) -> float:
        """Return the 90th percentile report build time."""
        return calculate_percentile(self.build_times, 90)

    def memory_note(self) -> str:
        """Return a footer with the process memory."""
        return f"generated with {get_memory_usage():.0f} MB resident"
