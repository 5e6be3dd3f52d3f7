"""Earliest start of the subsidy (助成開始時期の前倒し, from 2023-10-01).

What this is: pure date arithmetic for FACTS §8 and the examples §12.2 D1–D7. For an
application the office received on or after 2023-10-01 the subsidy can start on the
診断年月日, but at most one month before the receipt date (three months with a
やむを得ない理由 the office accepts), and never before 2023-10-01. For 軽症高額 the
start is the day after the criterion was met, with the same limits.

What this is not: it does not decide whether a delay reason is accepted (the office
does; ``DELAY_REASONS`` lists what the published guidance says), does not read the
clock, and does not cover 更新 or cap changes (the rule applies only to 新規, adding or
changing a disease, and 軽症高額 applications).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

__all__ = [
    "ACCEPTED_REASONS",
    "DELAY_REASONS",
    "NOT_ACCEPTED_REASONS",
    "SCHEME_START",
    "DelayReason",
    "StartDate",
    "StartDateError",
    "delay_reason",
    "earliest_start",
    "mild_high_cost_start",
    "months_before",
]

# Applications received from this day may start before the application (FACTS §8).
SCHEME_START: Final[date] = date(2023, 10, 1)
# How far back the start may go: 原則1か月, やむを得ない理由があれば最長3か月 (national rule).
NORMAL_LOOK_BACK_MONTHS: Final[int] = 1
UNAVOIDABLE_LOOK_BACK_MONTHS: Final[int] = 3


@dataclass(frozen=True)
class DelayReason:
    """A reason for not applying within one month of the diagnosis.

    Attributes:
        value: ASCII id, usable as a choice value.
        label: what the user sees, in Japanese.
        accepted: True when the guidance names it as accepted, False when it names it as
            not accepted, None when the office decides case by case.
    """

    value: str
    label: str
    accepted: bool | None


# Sources: TOCHIGI, EHIME, KANAGAWA-MAE via FACTS §8 [V2].
DELAY_REASONS: Final[tuple[DelayReason, ...]] = (
    DelayReason("late_certificate", "指定医から臨床調査個人票を受け取るのに時間がかかった", True),
    DelayReason("hospitalised", "急な入院や緊急の治療が必要になった、または症状が悪化した", True),
    DelayReason("disaster", "大規模な災害にあった", True),
    DelayReason("other", "その他の事情（窓口が個別に判断します）", None),
    DelayReason("diagnosis_took_time", "診断がつくまでに時間がかかった", False),
    DelayReason("work", "仕事が忙しかった", False),
    DelayReason("child_care", "育児で忙しかった", False),
    DelayReason("forgot", "申請を忘れていた", False),
    DelayReason("bereavement", "身内に不幸があった", False),
    DelayReason("moving", "引っ越しをした", False),
)
ACCEPTED_REASONS: Final[tuple[DelayReason, ...]] = tuple(r for r in DELAY_REASONS if r.accepted is True)
NOT_ACCEPTED_REASONS: Final[tuple[DelayReason, ...]] = tuple(r for r in DELAY_REASONS if r.accepted is False)


class StartDateError(ValueError):
    """The dates cannot belong to one application (e.g. diagnosis after receipt)."""


@dataclass(frozen=True)
class StartDate:
    """The earliest day the subsidy can start, and why.

    Attributes:
        start: the earliest start date.
        look_back_limit: the same day N months before receipt (before the 2023-10-01 floor).
        months_back: 1, or 3 with a やむを得ない理由; 0 for applications received before 2023-10-01.
        day_adjusted: the same day N months before did not exist (e.g. 2/31) and the end of
            that month was used. This is our reading; the rule is unpublished (FACTS §8 [NV]).
        reasons: Japanese sentences explaining the result.
    """

    start: date
    look_back_limit: date
    months_back: int
    day_adjusted: bool
    reasons: tuple[str, ...]


def _ja(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def months_before(day: date, months: int) -> tuple[date, bool]:
    """The same day ``months`` months earlier; the end of that month when the day is missing.

    Args:
        day: the starting day.
        months: how many months back (0 or more).

    Returns:
        The date, and True when the day did not exist and the month end was used
        (e.g. 2025-03-31 minus one month gives 2025-02-28, True).
    """
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    if day.day > last:
        return date(year, month + 1, last), True
    return date(year, month + 1, day.day), False


def _limit(received: date, unavoidable_reason: bool) -> tuple[int, date, bool, list[str]]:
    months = UNAVOIDABLE_LOOK_BACK_MONTHS if unavoidable_reason else NORMAL_LOOK_BACK_MONTHS
    limit, adjusted = months_before(received, months)
    reasons: list[str] = []
    if unavoidable_reason:
        reasons.append(
            f"やむを得ない理由があると窓口が認めた場合として、申請の受付日から最長{months}か月前までさかのぼって計算しました。"
        )
    else:
        reasons.append(
            f"さかのぼれるのは原則として申請の受付日の{months}か月前までです"
            f"（入院などやむを得ない理由が認められれば最長{UNAVOIDABLE_LOOK_BACK_MONTHS}か月前まで）。"
        )
    if adjusted:
        reasons.append(
            f"{_ja(received)}の{months}か月前の同じ日は存在しないため、その月の末日（{_ja(limit)}）としました。"
            "この扱いは確認できていないため、窓口でご確認ください。"
        )
    return months, limit, adjusted, reasons


def _finish(candidate: date, months: int, limit: date, adjusted: bool, reasons: list[str]) -> StartDate:
    start = candidate
    if start < SCHEME_START:
        start = SCHEME_START
        reasons.append(f"ただし、{_ja(SCHEME_START)}より前にはさかのぼれません。")
    reasons.append(f"助成の開始日は{_ja(start)}です。")
    return StartDate(
        start=start, look_back_limit=limit, months_back=months, day_adjusted=adjusted, reasons=tuple(reasons)
    )


def _before_scheme(received: date) -> StartDate:
    return StartDate(
        start=received,
        look_back_limit=received,
        months_back=0,
        day_adjusted=False,
        reasons=(
            f"{_ja(SCHEME_START)}より前に受け付けた申請は、さかのぼりの対象ではなく、申請日から助成が始まります。",
            f"助成の開始日は{_ja(received)}です。",
        ),
    )


def earliest_start(diagnosis: date, received: date, *, unavoidable_reason: bool = False) -> StartDate:
    """Earliest subsidy start for a 新規 (or disease added/changed) application.

    Start = the later of the 診断年月日 and the same day one month (three months with an
    accepted やむを得ない理由) before the office received the application; never before
    2023-10-01. Applications received before 2023-10-01 start on the receipt date.

    Args:
        diagnosis: 診断年月日 on the 臨床調査個人票 (not the onset date).
        received: the day the office received the application.
        unavoidable_reason: True only when the office accepts a やむを得ない理由
            (see ``DELAY_REASONS``).

    Returns:
        The start date with Japanese reasons.

    Raises:
        StartDateError: the diagnosis date is after the receipt date.
    """
    if diagnosis > received:
        raise StartDateError(f"diagnosis date {diagnosis} is after the receipt date {received}")
    return _from_day_or_limit(
        diagnosis,
        received,
        unavoidable_reason,
        starts=f"診断年月日（{_ja(diagnosis)}）から助成が始まります。",
        day_named=f"診断年月日（{_ja(diagnosis)}）",
    )


def mild_high_cost_start(met_on: date, received: date, *, unavoidable_reason: bool = False) -> StartDate:
    """Earliest subsidy start for a 軽症高額 application.

    Start = the later of the day after the criterion was met (the day the 3rd qualifying
    month's 10割 total passed 33,330円 — which day counts as "met" is our reading,
    FACTS §12.2 D6 [NV]) and the same look-back limit as ``earliest_start``.

    The arguments, the result and the error are those of ``earliest_start``, with ``met_on``, the
    day the 軽症高額 criterion was met, in place of the diagnosis date.
    """
    if met_on > received:
        raise StartDateError(f"the criterion was met on {met_on}, after the receipt date {received}")
    day_after = met_on + timedelta(days=1)
    return _from_day_or_limit(
        day_after,
        received,
        unavoidable_reason,
        starts=f"軽症高額の基準を満たした日（{_ja(met_on)}）の翌日、{_ja(day_after)}から助成が始まります。",
        day_named=f"軽症高額の基準を満たした日の翌日（{_ja(day_after)}）",
        note="基準を満たした日をいつとするかは窓口の判断によるため、目安としてご覧ください。",
    )


def _from_day_or_limit(
    day: date, received: date, unavoidable_reason: bool, *, starts: str, day_named: str, note: str | None = None
) -> StartDate:
    """The start of both kinds of application: ``day``, or the look-back limit when ``day`` is before it.

    ``starts`` is the first reason when ``day`` is the start; ``day_named`` names ``day`` in the
    reason given when the limit is; ``note``, if any, follows that first reason.
    """
    if received < SCHEME_START:
        return _before_scheme(received)
    months, limit, adjusted, reasons = _limit(received, unavoidable_reason)
    if day >= limit:
        first = starts
    else:
        first = (
            f"{day_named}が申請の受付日（{_ja(received)}）の{months}か月前より前のため、{_ja(limit)}からになります。"
        )
    reasons[0:0] = [first] if note is None else [first, note]
    return _finish(max(day, limit), months, limit, adjusted, reasons)


def delay_reason(value: str) -> DelayReason | None:
    """The delay reason with this choice value, or None when there is none."""
    for reason in DELAY_REASONS:
        if reason.value == value:
            return reason
    return None
