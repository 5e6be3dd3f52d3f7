"""軽症高額該当 (軽症者特例) check from monthly 10割 medical-cost totals.

What this is: a pure check of FACTS §4 and examples K1, K2. A month counts when its
total (10割) cost for the 指定難病 is strictly over 33,330円; three or more such months in
the 12-month window qualify, and the criterion is met in the third of them.

What this is not: it does not pick the window (the caller passes the months of the
application month and the 11 before it, or from the onset month), does not know which
costs count (meals in hospital do not; related 介護保険 medical services do), and does
not judge the 重症度分類. The start date is ``start_date.mild_high_cost_start``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from handlers.calc.copay import MAX_YEN, load_table

__all__ = ["MildHighCostError", "MildHighCostResult", "check_mild_high_cost"]

YearMonth = tuple[int, int]


class MildHighCostError(ValueError):
    """The monthly totals are malformed (bad month, negative amount, too many, too far apart)."""


@dataclass(frozen=True)
class MildHighCostResult:
    """Outcome of the 軽症高額 check.

    Attributes:
        qualifies: three or more months were over the threshold.
        qualifying_months: (year, month) of each month over the threshold, oldest first.
        met_in: (year, month) of the third qualifying month, or None when not met.
        reasons: Japanese sentences explaining the result.
    """

    qualifies: bool
    qualifying_months: tuple[YearMonth, ...]
    met_in: YearMonth | None
    reasons: tuple[str, ...]


def _ja(month: YearMonth) -> str:
    return f"{month[0]}年{month[1]}月"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(totals: Iterable[tuple[int, int, int]], window: int) -> list[tuple[int, int, int]]:
    rows: list[tuple[int, int, int]] = []
    for row in totals:
        if not isinstance(row, (tuple, list)) or len(row) != 3 or not all(_is_int(v) for v in row):
            raise MildHighCostError(f"each entry must be (year, month, amount) of whole numbers, got {row!r}")
        year, month, amount = row
        if not 1 <= month <= 12:
            raise MildHighCostError(f"month must be 1-12, got {month} in {row!r}")
        if not 1900 <= year <= 2200:
            raise MildHighCostError(f"year out of range in {row!r}")
        if not 0 <= amount <= MAX_YEN:
            raise MildHighCostError(f"amount must be 0-{MAX_YEN:,} yen, got {amount} in {row!r}")
        rows.append((year, month, amount))
    if len(rows) > window:
        raise MildHighCostError(f"at most {window} monthly totals are checked, got {len(rows)}")
    rows.sort()
    months = [(y, m) for y, m, _ in rows]
    if len(set(months)) != len(months):
        raise MildHighCostError("a month is listed twice; give one total per month")
    if rows:
        span = (rows[-1][0] * 12 + rows[-1][1]) - (rows[0][0] * 12 + rows[0][1])
        if span >= window:
            raise MildHighCostError(f"the months must fall within {window} consecutive months")
    return rows


def check_mild_high_cost(totals: Iterable[tuple[int, int, int]]) -> MildHighCostResult:
    """Check 軽症高額該当 from up to 12 monthly 10割 totals.

    Args:
        totals: (year, month, total 10割 cost in yen) per month, any order, at most 12,
            all within 12 consecutive months. Months not listed count as not over.

    Returns:
        Whether it qualifies, which months count, and the month it was met in.

    Raises:
        MildHighCostError: malformed entries, a month twice, more than 12, or a span
            longer than 12 months.
    """
    table = load_table()
    threshold = table.mild_monthly_total_over
    need = table.mild_min_months
    rows = _checked(totals, table.mild_window_months)

    # "超える": a month of exactly the threshold does not count (FACTS §4, K1).
    qualifying = tuple((y, m) for y, m, amount in rows if amount > threshold)
    exactly = tuple((y, m) for y, m, amount in rows if amount == threshold)
    limit = f"{threshold:,}円"

    reasons: list[str] = []
    if qualifying:
        listed = "、".join(_ja(m) for m in qualifying)
        reasons.append(f"医療費総額（10割）が{limit}を超えた月は{len(qualifying)}か月（{listed}）です。")
    else:
        reasons.append(f"医療費総額（10割）が{limit}を超えた月はありません。")
    if exactly:
        reasons.append(
            f"ちょうど{limit}の月（{'、'.join(_ja(m) for m in exactly)}）は「超える」に当たらないため数えません。"
        )
    reasons.append("判定は、窓口で支払った額ではなく医療費総額（10割）で行います。入院時の食事代は含めません。")

    if len(qualifying) >= need:
        met_in = qualifying[need - 1]
        reasons.append(
            f"{need}か月以上あるため、軽症高額該当の基準を満たします。基準を満たしたのは{need}か月目の{_ja(met_in)}です。"
        )
        reasons.append(
            "助成は基準を満たした日の翌日から始まります（申請の受付日の1か月前まで、やむを得ない理由があれば3か月前まで）。"
        )
        return MildHighCostResult(True, qualifying, met_in, tuple(reasons))

    reasons.append(f"軽症高額該当には{need}か月以上必要です（あと{need - len(qualifying)}か月）。")
    return MildHighCostResult(False, qualifying, None, tuple(reasons))
