"""Dates: 2027年3月31日, 令和9年3月31日, R9.3.31, 2027/3/31, 20270331, 9年3月31日, 3月末, 3/31, 来月の10日.

``parse_date`` tries the forms of ``_FORMS`` in order, each one function that reads its form or
says it is not that form; the first that reads the answer decides it.

What this is not: the clock (``today`` is a parameter) and the eras' table (``eras``).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date
from typing import Final, Literal

from handlers.parsers.common import begin, strip_trailing
from handlers.parsers.eras import (
    ERAS,
    HINT_DATE,
    MAX_YEAR,
    MIN_YEAR,
    before_era,
    date_or_invalid,
    make_date,
    no_such_date,
    no_such_era_year,
    western_year,
)
from handlers.parsers.numbers import kanji_to_arabic
from handlers.parsers.relative_dates import relative_date, relative_day
from handlers.parsers.results import Invalid, Unknown
from nlp.text import Text

HINT_DATE_NEEDED: Final[str] = "日付を年・月・日で教えてください。" + HINT_DATE
HINT_DATE_DAY: Final[str] = "日にちまで教えてください（月末なら『3月末』でも大丈夫です）。" + HINT_DATE

_SEP: Final[str] = r"[年/\-.]"
_SEP2: Final[str] = r"[月/\-.]"
_ERA_DATE: Final[re.Pattern[str]] = re.compile(
    r"(?<![a-z])(?P<era>令和|平成|昭和|r|h|s)(?P<year>[0-9]{1,2}|元)"
    + _SEP
    + r"(?P<month>[0-9]{1,2})"
    + _SEP2
    + r"(?P<day>[0-9]{1,2})(?![0-9])日?"
)
_WESTERN_DATE: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9])(?P<year>[0-9]{4})" + _SEP + r"(?P<month>[0-9]{1,2})" + _SEP2 + r"(?P<day>[0-9]{1,2})(?![0-9])日?"
)
_COMPACT_DATE: Final[re.Pattern[str]] = re.compile(r"^(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})$")
_MONTH_END: Final[re.Pattern[str]] = re.compile(
    r"(?:(?P<era>令和|平成|昭和|r|h|s)(?P<eyear>[0-9]{1,2}|元)" + _SEP + r"|(?<![0-9])(?P<year>[0-9]{4})" + _SEP + r")?"
    r"(?<![0-9])(?P<month>[0-9]{1,2})月?末日?"
)
_MONTH_DAY: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9.])(?P<month>[0-9]{1,2})[月/\-.](?P<day>[0-9]{1,2})(?![0-9.])日?"
)
_YEAR_MONTH_ONLY: Final[re.Pattern[str]] = re.compile(
    r"((令和|平成|昭和)([0-9]{1,2}|元)年|[0-9]{1,4}年|(r|h|s)[0-9]{1,2}[./])[0-9]{1,2}月?$"
)
_WEEKDAY: Final[re.Pattern[str]] = re.compile(r"\(([月火水木金土日])(曜日?)?\)|[月火水木金土日]曜日?$")

# Dates written in kana: れいわ8ねん4がつ1にち, へいせいがんねん, 4がつついたち.
_KANA_DATE_WORDS: Final[tuple[tuple[str, str], ...]] = (
    ("れいわ", "令和"), ("へいせい", "平成"), ("しょうわ", "昭和"), ("がんねん", "元年"),
    ("げつまつ", "月末"), ("がつまつ", "月末"), ("ついたち", "1日"), ("ふつか", "2日"), ("みっか", "3日"),
    ("よっか", "4日"), ("いつか", "5日"), ("むいか", "6日"), ("なのか", "7日"), ("ようか", "8日"),
    ("ここのか", "9日"), ("とおか", "10日"), ("はつか", "20日"), ("ねん", "年"), ("がつ", "月"), ("にち", "日"),
)  # fmt: skip
# A year without an era (「8年4月1日」): read as 令和, or as 20xx when two digits, whichever
# falls within this many years of today (so 「8年」 is 令和8年 and 「26年」 is 2026年).
_ERALESS_DATE: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9a-z令和平成昭元])(?P<year>[0-9]{1,2})年(?P<month>[0-9]{1,2})月(?P<day>[0-9]{1,2})(?![0-9])日?"
)
_ERALESS_YEARS_BACK: Final[int] = 10
_ERALESS_YEARS_AHEAD: Final[int] = 5

Prefer = Literal["future", "past", "nearest"]
# The most days a month can have (February in a leap year).
_DAYS_IN_MONTH: Final[dict[int, int]] = {m: calendar.monthrange(2024, m)[1] for m in range(1, 13)}


def _only_this(t: str, match: re.Match[str]) -> bool:
    """No other digits around the date (so "3/31と4/30" or "2027/3/31 10:00" are not read)."""
    rest = t[: match.start()] + t[match.end() :]
    return not re.search(r"[0-9]", rest)


def _occurrence(month: int, day: int | None, today: date, prefer: Prefer) -> date | None:
    """The date with this month and day (or month end, ``day`` None) that the user most likely means.

    ``future``: the next one on or after today; ``past``: the last one on or before today;
    ``nearest``: whichever is closer (the later one on a tie).
    """
    candidates: list[date] = []
    for year in range(max(today.year - 9, MIN_YEAR), min(today.year + 9, MAX_YEAR) + 1):
        last = calendar.monthrange(year, month)[1]
        candidate = make_date(year, month, last if day is None else day)
        if candidate is not None:
            candidates.append(candidate)
    future = [c for c in candidates if c >= today]
    past = [c for c in candidates if c <= today]
    if prefer == "future":
        return min(future, default=None)
    if prefer == "past":
        return max(past, default=None)
    options = [c for c in (max(past, default=None), min(future, default=None)) if c is not None]
    return min(options, key=lambda c: (abs((c - today).days), -c.toordinal()), default=None)


def _eraless_year(year_text: str, today: date) -> int | None:
    """The year a person means by 「8年」 or 「26年」 without an era, or None when unclear."""
    n = int(year_text)
    candidates = {ERAS["令和"][1] + n} if n >= 1 else set()
    if len(year_text) == 2:
        candidates.add(2000 + n)
    near = [y for y in candidates if today.year - _ERALESS_YEARS_BACK <= y <= today.year + _ERALESS_YEARS_AHEAD]
    return near[0] if len(near) == 1 else None


def _read_kana(t: str) -> str:
    for word, written in _KANA_DATE_WORDS:
        t = t.replace(word, written)
    return t


def _whole(pattern: re.Pattern[str], t: str) -> re.Match[str] | None:
    """The pattern's match in ``t`` when it is the only figure there (see ``_only_this``)."""
    match = pattern.search(t)
    return match if match and _only_this(t, match) else None


def _era_date(t: str, today: date, prefer: Prefer) -> date | Invalid | None:
    """令和9年3月31日, R9.3.31, 平成元年5月1日 (never a day before the era began)."""
    match = _whole(_ERA_DATE, t)
    if match is None:
        return None
    era = match.group("era")
    year = western_year(era, match.group("year"))
    if year is None:
        return no_such_era_year(era)
    dated = date_or_invalid(year, int(match.group("month")), int(match.group("day")))
    if isinstance(dated, date) and dated < ERAS[era][0]:
        return before_era(era)
    return dated


def _western_date(t: str, today: date, prefer: Prefer) -> date | Invalid | None:
    """2027年3月31日, 2027/3/31, 2027-03-31, 2027.3.31, 20270331."""
    match = _WESTERN_DATE.search(t) or _COMPACT_DATE.search(t)
    if not match or not _only_this(t, match):
        return None
    return date_or_invalid(int(match.group("year")), int(match.group("month")), int(match.group("day")))


def _eraless_date(t: str, today: date, prefer: Prefer) -> date | Invalid | None:
    """9年3月31日: 令和9年, or 20xx for two digits, whichever is near today."""
    match = _whole(_ERALESS_DATE, t)
    if match is None:
        return None
    year = _eraless_year(match.group("year"), today)
    if year is None:
        return Invalid("何年のことか、『令和』『平成』などの元号をつけるか、西暦4桁で教えてください。" + HINT_DATE)
    return date_or_invalid(year, int(match.group("month")), int(match.group("day")))


def _month_end(t: str, today: date, prefer: Prefer) -> date | Invalid | None:
    """3月末, 3月末日, 令和9年3月末, 2027年3月末: the last day of that month (without a year, see ``prefer``)."""
    match = _whole(_MONTH_END, t)
    if match is None:
        return None
    month = int(match.group("month"))
    if not 1 <= month <= 12:
        return no_such_date(None, month, None)
    year = _stated_year(match)
    if isinstance(year, Invalid):
        return year
    if year is None:
        found = _occurrence(month, None, today, prefer)
        return found if found is not None else Invalid(HINT_DATE)
    first = make_date(year, month, 1)
    if first is None:
        return Invalid(HINT_DATE)
    return first.replace(day=calendar.monthrange(year, month)[1])


def _stated_year(match: re.Match[str]) -> int | Invalid | None:
    """The year a ``_MONTH_END`` match states (with its era or in four digits), or None when none is said."""
    if match.group("era"):
        year = western_year(match.group("era"), match.group("eyear"))
        return year if year is not None else no_such_era_year(match.group("era"))
    if match.group("year"):
        return int(match.group("year"))
    return None


def _month_day(t: str, today: date, prefer: Prefer) -> date | Invalid | None:
    """3/31, 3月31日: a month and a day without a year (see ``prefer``)."""
    match = _whole(_MONTH_DAY, t)
    if match is None:
        return None
    month, day = int(match.group("month")), int(match.group("day"))
    if not 1 <= month <= 12 or not 1 <= day <= 31 or day > _DAYS_IN_MONTH[month]:
        return no_such_date(None, month, day)
    found = _occurrence(month, day, today, prefer)
    return found if found is not None else Invalid(HINT_DATE)


def _year_month_only(t: str, today: date, prefer: Prefer) -> Invalid | None:
    """令和9年3月, 2027年3月: a month without its day, asked back for the day."""
    return Invalid(HINT_DATE_DAY) if _YEAR_MONTH_ONLY.search(t) else None


def _relative(t: str, today: date, prefer: Prefer) -> date | Invalid | None:
    """来月の10日, 去年の4月1日, 3か月前 (see ``relative_dates``)."""
    return relative_date(t, today)


# The forms a date is read in, in order: each returns the date, why it is none (Invalid), or None
# when the answer is not in its form. Relative forms come first: 「3か月前」 holds no date of its own.
_FORMS: Final[tuple[Callable[[str, date, Prefer], date | Invalid | None], ...]] = (
    _relative,
    _era_date,
    _western_date,
    _eraless_date,
    _month_end,
    _month_day,
    _year_month_only,
)


def parse_date(text: Text | str, today: date, *, prefer: Prefer = "future") -> date | Unknown | Invalid:
    """Read a date.

    Accepts 2027年3月31日, 2027/3/31, 2027-03-31, 2027.3.31, 20270331, 令和9年3月31日,
    R9.3.31, r9/3/31, 平成31年4月30日, H31.4.30, 令和元年5月1日, 令和九年三月三十一日,
    れいわ9ねん3がつ31にち, 「9年3月31日」 (no era: 令和9年, or 20xx for two digits, whichever
    is within 10 years before or 5 after today); 今日, 昨日, おととい, 明日, あさって; 来月の10日,
    来月末, 先月の20日, 去年の4月1日, 3か月前, 半年後, 2週間前 (a month without its day is asked back);
    "3月末" / "3月末日" (end of that month) and "3/31" (year left out): see ``prefer``.
    Button value: "unknown".

    Args:
        text: the answer.
        today: the current date in Japan (a parameter, the clock is not read here).
        prefer: for a date typed without a year, which year: ``"future"`` the next such day on
            or after today (an expiry date), ``"past"`` the last one on or before today (a
            diagnosis date), ``"nearest"`` the closer one (an application date).

    Returns:
        The date, ``UNKNOWN`` or ``Invalid(hint)``. A date that does not exist (2027/2/30,
        13月1日, 令和0年) is an ``ImpossibleDate`` (an ``Invalid``) whose hint says so; bare
        numbers ("5", "70000") are Invalid asking for a date.
    """
    t = begin(text, HINT_DATE)
    if not isinstance(t, str):
        return t
    t = begin(text, HINT_DATE)
    if not isinstance(t, str):
        return t
    t = strip_trailing(t)
    relative = relative_day(t, today)  # before kanji numerals: 一昨日 is not 1昨日
    if relative is not None:
        return relative
    t = _WEEKDAY.sub("", kanji_to_arabic(_read_kana(t)))
    for form in _FORMS:
        found = form(t, today, prefer)
        if found is not None:
            return found
    return Invalid(HINT_DATE_NEEDED)
