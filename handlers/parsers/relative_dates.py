"""Dates said relative to today: 今日, おととい, 来月の10日, 来月末, 去年の4月1日, 3か月前, 半年後, 2週間前.

What this is not: the clock. ``today`` is always a parameter (the current date in Japan).
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Final

from handlers.parsers.eras import HINT_DATE, date_or_invalid, no_such_date
from handlers.parsers.numbers import kana_count
from handlers.parsers.results import Invalid

# Days said relative to today (read before kanji numerals: 一昨日 is not 1昨日).
RELATIVE_DAYS: Final[dict[str, int]] = {
    "今日": 0, "きょう": 0, "本日": 0, "today": 0,
    "昨日": -1, "きのう": -1, "yesterday": -1,
    "一昨日": -2, "おととい": -2, "おとつい": -2,
    "明日": 1, "あした": 1, "あす": 1, "tomorrow": 1,
    "明後日": 2, "あさって": 2,
}  # fmt: skip
_RELATIVE_DAY: Final[re.Pattern[str]] = re.compile(
    "^(?P<word>" + "|".join(sorted(RELATIVE_DAYS, key=len, reverse=True)) + r")"
    r"(?:です|でした|だ|だよ|の予定|予定です|予定|になります|に出します|に出しました|出した|出します)?$"
)

# Months and spans said relative to today: 「来月の10日」「来月末」「先月」「3か月前」「半年後」「去年の4月1日」.
_RELATIVE_MONTH_WORDS: Final[dict[str, int]] = {
    "再来月": 2, "さらいげつ": 2, "来月": 1, "らいげつ": 1, "今月": 0, "こんげつ": 0,
    "先月": -1, "せんげつ": -1, "先々月": -2, "せんせんげつ": -2,
}  # fmt: skip
_RELATIVE_YEAR_WORDS: Final[dict[str, int]] = {
    "再来年": 2, "さらいねん": 2, "来年": 1, "らいねん": 1, "今年": 0, "ことし": 0,
    "去年": -1, "昨年": -1, "きょねん": -1, "一昨年": -2, "おととし": -2,
}  # fmt: skip
_ABOUT: Final[str] = r"(?:ごろ|頃|くらい|ぐらい|あたり|位)?(?:です|でした|だ|の予定|予定)?"
_RELATIVE_MONTH: Final[re.Pattern[str]] = re.compile(
    "^(?P<word>" + "|".join(sorted(_RELATIVE_MONTH_WORDS, key=len, reverse=True)) + r")の?"
    r"(?:(?P<day>[0-9]{1,2})日|(?P<end>末日|末|終わり|おわり))?" + _ABOUT + "$"
)
_RELATIVE_YEAR: Final[re.Pattern[str]] = re.compile(
    "^(?P<word>" + "|".join(sorted(_RELATIVE_YEAR_WORDS, key=len, reverse=True)) + r")の?"
    r"(?P<month>[0-9]{1,2})月(?:(?P<day>[0-9]{1,2})日|(?P<end>末日|末))?" + _ABOUT + "$"
)
_RELATIVE_SPAN: Final[re.Pattern[str]] = re.compile(
    r"^(?P<n>[0-9]{1,2}|半)(?P<unit>年|か月|ヶ月|ヵ月|カ月|箇月|かげつ|週間|しゅうかん|日)(?:ほど|くらい|ぐらい)?"
    r"(?P<dir>前|まえ|後|ご|あと|先|さき)" + _ABOUT + "$"
)


def _month_shift(today: date, months: int) -> tuple[int, int]:
    index = today.year * 12 + today.month - 1 + months
    return index // 12, index % 12 + 1


def relative_day(t: str, today: date) -> date | None:
    """「今日」「おととい」「明日の予定」: a day said relative to today, as the whole answer; None otherwise."""
    match = _RELATIVE_DAY.match(t)
    return today + timedelta(days=RELATIVE_DAYS[match.group("word")]) if match else None


def relative_date(t: str, today: date) -> date | Invalid | None:
    """A date said relative to today (see ``_RELATIVE_MONTH``); None when ``t`` is none of those.

    A month without its day (「来月」) is asked back with the month named: a date of expiry or of
    diagnosis is a day, and guessing the 1st or the last would move a deadline."""
    found = _relative_month(t, today)
    return found if found is not None else _relative_span(t, today)


def _relative_month(t: str, today: date) -> date | Invalid | None:
    """「来月の10日」「来月末」「去年の4月1日」: a month said relative to this one, then its day."""
    match = _RELATIVE_MONTH.match(t)
    if match is not None:
        year, month = _month_shift(today, _RELATIVE_MONTH_WORDS[match.group("word")])
        return _day_of_month(match, year, month)
    match = _RELATIVE_YEAR.match(t)
    if match is None:
        return None
    year, month = today.year + _RELATIVE_YEAR_WORDS[match.group("word")], int(match.group("month"))
    if not 1 <= month <= 12:
        return no_such_date(year, month, None)
    return _day_of_month(match, year, month)


def _day_of_month(match: re.Match[str], year: int, month: int) -> date | Invalid:
    """The day the match names in that month: its end, a day of it, or (none said) a question for the day."""
    if match.group("end"):
        return date(year, month, calendar.monthrange(year, month)[1])
    if match.group("day"):
        return date_or_invalid(year, month, int(match.group("day")))
    return Invalid(f"{year}年{month}月の何日でしょうか（月末なら『{month}月末』）。" + HINT_DATE)


def _relative_span(t: str, today: date) -> date | None:
    """「3か月前」「半年後」「2週間前」「さんかげつまえ」: a span before or after today."""
    match = _RELATIVE_SPAN.match(kana_count(t))  # 「さんかげつまえ」, 「はんとしご」
    if match is None:
        return None
    sign = -1 if match.group("dir") in ("前", "まえ") else 1
    n, unit = match.group("n"), match.group("unit")
    if n == "半":
        if unit != "年":
            return None
        n, unit = "6", "か月"
    count = int(n) * sign
    if unit == "日":
        return today + timedelta(days=count)
    if unit in ("週間", "しゅうかん"):
        return today + timedelta(weeks=count)
    months = count * 12 if unit == "年" else count
    year, month = _month_shift(today, months)
    return date(year, month, min(today.day, calendar.monthrange(year, month)[1]))
