"""Counting the months of a cost log for 高額かつ長期 and 軽症高額 (pure).

What this is: the two counting rules as data (``RULES``, read from ``knowledge/tables/copay.yaml``):
高額かつ長期 needs 6 months whose total medical cost (10割) was over 50,000円, 軽症高額 needs 3
months over 33,330円, both within a window of 12 months that ends with the current month and
includes it (FACTS §4, §7 and C7: the application month and the 11 before it). "Over" is strict:
a month of exactly 50,000円 or 33,330円 does not count (FACTS §4 「超える」, K1, K3). Also: when
a rule will be met if the pattern continues, and the cap before and after 高額かつ長期 by tier.

What this is not: it does not know which months fall inside the certified period (高額かつ長期
counts only those, FACTS §7, K4), nor the onset month that may shorten the 軽症高額 window, nor
which costs count (hospital meals do not); the replies say so. No I/O but the cap table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from handlers.calc.copay import CapTable, load_table

__all__ = [
    "CapChange",
    "Progress",
    "RULES",
    "Rule",
    "YearMonth",
    "cap_change",
    "month_add",
    "progress",
    "rules",
    "window",
]

YearMonth = tuple[int, int]


@dataclass(frozen=True)
class Rule:
    """One counting rule: months whose 10割 total is strictly ``over`` yen, ``need`` of them in ``window`` months."""

    name: str  # "high-cost" (高額かつ長期) or "mild" (軽症高額)
    title: str
    over: int
    need: int
    window: int


def rules(table: CapTable | None = None) -> tuple[Rule, Rule]:
    """The two rules of the cap table: 高額かつ長期, then 軽症高額."""
    t = table or load_table()
    return (
        Rule(
            "high-cost",
            "高額かつ長期",
            t.high_cost_monthly_total_over,
            t.high_cost_min_months,
            t.high_cost_window_months,
        ),
        Rule("mild", "軽症高額", t.mild_monthly_total_over, t.mild_min_months, t.mild_window_months),
    )


RULES = rules()


def month_add(month: YearMonth, n: int) -> YearMonth:
    """The month ``n`` months after ``month`` (before it when ``n`` is negative)."""
    index = month[0] * 12 + month[1] - 1 + n
    return index // 12, index % 12 + 1


def window(current: YearMonth, months: int) -> tuple[YearMonth, ...]:
    """The ``months`` months that end with ``current`` and include it, oldest first."""
    return tuple(month_add(current, -k) for k in range(months - 1, -1, -1))


@dataclass(frozen=True)
class Progress:
    """Where a cost log stands against one rule.

    Attributes:
        rule: the rule counted.
        over_months: months of the window whose total was over the line, oldest first.
        qualifies: at least ``rule.need`` of them.
        missing: months of the window with no total logged, oldest first.
        projected: when not qualifying yet and the latest logged month was over the line: the
            month in which the rule is met if every month after it is over the line too (months
            leaving the window counted out). None otherwise.
    """

    rule: Rule
    over_months: tuple[YearMonth, ...]
    qualifies: bool
    missing: tuple[YearMonth, ...]
    projected: YearMonth | None

    @property
    def count(self) -> int:
        return len(self.over_months)

    @property
    def short(self) -> int:
        """Months still needed (0 when met)."""
        return max(self.rule.need - self.count, 0)


def _over_in(totals: Mapping[YearMonth, int], months: tuple[YearMonth, ...], rule: Rule) -> tuple[YearMonth, ...]:
    # 「超える」: strictly over; a month of exactly the line does not count.
    return tuple(m for m in months if totals.get(m, 0) > rule.over)


def progress(totals: Mapping[YearMonth, int], current: YearMonth, rule: Rule) -> Progress:
    """Count the months over the line in the window that ends with ``current``.

    Args:
        totals: total medical cost (10割) in yen per month; months after ``current`` are ignored.
        current: the month the window ends with (this month, or the month of an application).
        rule: one of ``RULES``.

    Returns:
        The count, whether the rule is met, the months missing, and the projection.
    """
    months = window(current, rule.window)
    over = _over_in(totals, months, rule)
    qualifies = len(over) >= rule.need
    logged = sorted(m for m in totals if m <= current)
    projected = None
    if not qualifies and logged and totals[logged[-1]] > rule.over:
        last = logged[-1]
        for k in range(1, rule.window + 1):
            end = month_add(last, k)
            assumed = {month_add(last, j): rule.over + 1 for j in range(1, k + 1)}
            if len(_over_in({**totals, **assumed}, window(end, rule.window), rule)) >= rule.need:
                projected = end
                break
    return Progress(rule, over, qualifies, tuple(m for m in months if m not in totals), projected)


@dataclass(frozen=True)
class CapChange:
    """The monthly cap of a tier before and after 高額かつ長期 (equal when it does not lower it)."""

    tier: str
    before: int
    after: int


def cap_change(tier: str | None, table: CapTable | None = None) -> tuple[CapChange, ...]:
    """The caps before and after 高額かつ長期: of ``tier``, or of every tier it lowers when unknown.

    Raises:
        KeyError: ``tier`` is not a tier of the table.
    """
    t = table or load_table()
    tiers = [tier] if tier is not None else [name for name in t.caps if name in t.high_cost_tiers]
    return tuple(CapChange(name, t.cap(name, "一般"), t.cap(name, "高額かつ長期")) for name in tiers)
