"""Parameters of the report build: as-of date, churn window, fiscal year, tier thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salesbi.errors import ConfigurationError


@dataclass(frozen=True)
class ReportParams:
    """Settings of :func:`salesbi.reports.build.build_reports` (see ``docs/reports.md``).

    Loyalty tiers rank customers by net sales (ties by id) and assign each one by the share of
    total net sales held by the customers ranked *above* it: below ``platinum_share`` → Platinum
    (so Platinum is the customers making the first 50% of sales, including the one crossing 50%),
    below ``platinum_share + gold_share`` → Gold, below that ``+ silver_share`` → Silver, else Bronze.
    ABC classes use the same rule with ``abc_a_share`` and ``abc_b_share``.  Reward tiers rank the
    sales reps with sales: the first ``ceil(reward_gold_share × n)`` are Gold, up to
    ``ceil(reward_silver_share × n)`` Silver, the rest Bronze.
    """

    as_of: date | None = None
    churn_months: int = 2
    fiscal_year_start_month: int = 1
    top_n: int = 10
    platinum_share: float = 0.50
    gold_share: float = 0.30
    silver_share: float = 0.15
    abc_a_share: float = 0.80
    abc_b_share: float = 0.15
    reward_gold_share: float = 0.20
    reward_silver_share: float = 0.50
    lapsed_days: int = 120

    def __post_init__(self) -> None:
        if not 1 <= self.churn_months <= 24:
            raise ConfigurationError(
                f"churn_months must be between 1 and 24, got {self.churn_months}",
                hint="pass a number of months such as 2",
            )
        if not 1 <= self.fiscal_year_start_month <= 12:
            raise ConfigurationError(
                f"fiscal_year_start_month must be 1..12, got {self.fiscal_year_start_month}",
                hint="use 1 for a calendar fiscal year, 4 for April, 7 for July",
            )
        if self.top_n < 1:
            raise ConfigurationError(f"top_n must be at least 1, got {self.top_n}")
        if (
            self.platinum_share + self.gold_share + self.silver_share > 1.0 + 1e-9
            or min(self.platinum_share, self.gold_share, self.silver_share) < 0
        ):
            raise ConfigurationError(
                "loyalty tier shares must be non-negative and add up to at most 1",
                hint="e.g. platinum_share=0.5, gold_share=0.3, silver_share=0.15",
            )
        if self.abc_a_share + self.abc_b_share > 1.0 + 1e-9 or min(self.abc_a_share, self.abc_b_share) < 0:
            raise ConfigurationError(
                "ABC shares must be non-negative and add up to at most 1",
                hint="e.g. abc_a_share=0.8, abc_b_share=0.15",
            )
        if not 0 <= self.reward_gold_share <= self.reward_silver_share <= 1:
            raise ConfigurationError(
                "reward shares need 0 <= reward_gold_share <= reward_silver_share <= 1",
                hint="e.g. reward_gold_share=0.2, reward_silver_share=0.5",
            )
        if self.lapsed_days < 1:
            raise ConfigurationError(f"lapsed_days must be at least 1, got {self.lapsed_days}")
