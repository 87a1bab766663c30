"""Team velocity statistics from sprint data."""

from __future__ import annotations

from typing import Dict, List


class TeamVelocityStats:
    """Average and trend of story points completed per sprint."""

    def __init__(self, sprints: Dict[str, List[float]]):
        self.sprints = sprints

    def average_velocity(self, team: str) -> float:
        """Return the mean story points per sprint of ``team``."""
        points = self.sprints.get(team, [])
        return sum(points) / len(points) if points else 0.0

    def trend(self, team: str) -> float:
        """Return the change between the last two sprints."""
        points = self.sprints.get(team, [])
        if len(points) < 2:
            return 0.0
        return points[-1] - points[-2]
