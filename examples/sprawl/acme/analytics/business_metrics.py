"""Business metrics for the quarterly review deck."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean
from typing import Dict, List


@dataclass
class Deal:
    """A closed or lost deal."""

    customer: str
    revenue: float
    won: bool
    quarter: str


class BusinessMetricsCalculator:
    """Compute revenue, win rate and churn figures from CRM deals."""

    def __init__(self, deals: List[Deal]):
        self.deals = deals

    def revenue_by_quarter(self) -> Dict[str, float]:
        """Return won revenue per quarter."""
        out: Dict[str, float] = {}
        for deal in self.deals:
            if deal.won:
                out[deal.quarter] = out.get(deal.quarter, 0.0) + deal.revenue
        return out

    def win_rate(self) -> float:
        """Return the share of deals won."""
        if not self.deals:
            return 0.0
        return sum(1 for d in self.deals if d.won) / len(self.deals)

    def average_deal_size(self) -> float:
        """Return the mean revenue of won deals."""
        won = [d.revenue for d in self.deals if d.won]
        return mean(won) if won else 0.0

    def churn(self, previous_customers: List[str]) -> float:
        """Return the share of last quarter's customers with no deal this quarter."""
        if not previous_customers:
            return 0.0
        current = {d.customer for d in self.deals}
        lost = [c for c in previous_customers if c not in current]
        return len(lost) / len(previous_customers)

    def top_customers(self, n: int = 5) -> List[str]:
        """Return the customers with the most won revenue."""
        totals: Dict[str, float] = {}
        for deal in self.deals:
            if deal.won:
                totals[deal.customer] = totals.get(deal.customer, 0.0) + deal.revenue
        return sorted(totals, key=totals.get, reverse=True)[:n]
