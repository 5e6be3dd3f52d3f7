"""Eras and the days that exist: 令和/平成/昭和 years, the years read at all, and why a date is none.

What this is not: no reading of text. ``dates``, ``relative_dates`` and ``month_amounts`` read the
forms; this module says whether what they read is a day, and if not, says so kindly.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Final

from handlers.parsers.results import Invalid

HINT_DATE: Final[str] = (
    "日付は『2027年3月31日』『令和9年3月31日』『R9.3.31』『2027/3/31』のように教えてください。"
    "わからなければ『わからない』と送ってください。"
)

# (name, first day, first Gregorian year - 1). Dates after an era ended are still read
# arithmetically (old forms printed e.g. 平成32年), but not dates before it began.
ERAS: Final[dict[str, tuple[date, int]]] = {
    "令和": (date(2019, 5, 1), 2018),
    "r": (date(2019, 5, 1), 2018),
    "平成": (date(1989, 1, 8), 1988),
    "h": (date(1989, 1, 8), 1988),
    "昭和": (date(1926, 12, 25), 1925),
    "s": (date(1926, 12, 25), 1925),
}
MIN_YEAR: Final[int] = 1900
MAX_YEAR: Final[int] = 2200


@dataclass(frozen=True)
class ImpossibleDate(Invalid):
    """A date that does not exist (2月30日, 13月, 令和0年); the hint says so, kindly."""


def no_such_date(year: int | None, month: int, day: int | None) -> ImpossibleDate:
    if not 1 <= month <= 12:
        return ImpossibleDate(f"{month}月という月はありません。" + HINT_DATE)
    if day is not None and month == 2 and day == 29 and year is not None and not calendar.isleap(year):
        return ImpossibleDate(f"{year}年はうるう年ではないので、2月29日はありません。" + HINT_DATE)
    return ImpossibleDate(f"{month}月{day}日という日はありません。" + HINT_DATE)


def make_date(year: int, month: int, day: int) -> date | None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def date_or_invalid(year: int, month: int, day: int) -> date | Invalid:
    """The date, or why it cannot be one: no such day (ImpossibleDate), or a year out of range."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        return Invalid(HINT_DATE)
    found = make_date(year, month, day)
    return found if found is not None else no_such_date(year, month, day)


def western_year(era: str, year_text: str) -> int | None:
    year = 1 if year_text == "元" else int(year_text)
    if year < 1:
        return None
    return ERAS[era][1] + year


_ERA_NAMES: Final[dict[str, str]] = {
    "令和": "令和", "r": "令和", "平成": "平成", "h": "平成", "昭和": "昭和", "s": "昭和",
}  # fmt: skip


def no_such_era_year(era: str) -> ImpossibleDate:
    name = _ERA_NAMES[era]
    first = ERAS[era][0]
    return ImpossibleDate(
        f"{name}0年という年はありません（{name}の最初の年は{name}元年＝{first.year}年です）。" + HINT_DATE
    )


def before_era(era: str) -> ImpossibleDate:
    first = ERAS[era][0]
    return ImpossibleDate(
        f"{_ERA_NAMES[era]}は{first.year}年{first.month}月{first.day}日からなので、その日付はありません。" + HINT_DATE
    )
