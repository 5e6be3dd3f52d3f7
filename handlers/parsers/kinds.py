"""A figure of another kind than the question asks: an amount or a bare day at a date question, a date at
an amount question. Each is answered with a short question of its kind (``OtherKind``), never passed on
to the FAQ.

What this is not: a count at a count question said as a span or a date (``counts.read_months_count``).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from handlers.parsers.dates import Prefer, parse_date
from handlers.parsers.eras import HINT_DATE, ImpossibleDate
from handlers.parsers.results import Invalid, OtherKind, Unknown
from handlers.parsers.yen import HINT_YEN, parse_yen
from nlp.text import Text, as_text

_DATE_WORDS: Final[re.Pattern[str]] = re.compile(r"年|月|日|/|今日|昨日|明日|前|後")


def date_of_kind(text: Text | str, today: date, *, prefer: Prefer = "future") -> date | Unknown | Invalid:
    """``parse_date``, where an amount (「12万円」「70000」) or a bare day (「5」) is answered with a short
    question of its kind, never read as a date and never passed on as a question to the FAQ."""
    value = parse_date(text, today, prefer=prefer)
    if not isinstance(value, Invalid) or isinstance(value, ImpossibleDate):
        return value
    t = as_text(text).compact
    if "の何日でしょうか" in value.hint:  # 「来月」: the month is read, its day asked
        return OtherKind(value.hint)
    if _DATE_WORDS.search(t):
        return value
    amount = parse_yen(t)
    if isinstance(amount, int):
        if re.fullmatch(r"[0-9]{1,2}", t) and 1 <= amount <= 31:
            return OtherKind(
                f"「{amount}」は日にちでしょうか。何年何月{amount}日か、年・月・日で教えてください。" + HINT_DATE
            )
        return OtherKind(f"「{amount:,}円」は金額のようです。ここでは日付をうかがっています。" + HINT_DATE)
    return value


def amount_is_date(text: Text | str, today: date) -> OtherKind | None:
    """At an amount question, a date (「4月1日」「来月」「3か月前」) is answered with what the question asks."""
    t = as_text(text).compact
    if not _DATE_WORDS.search(t) or re.search(r"[0-9一二三四五六七八九十]+(?:円|万)", t):
        return None
    read = parse_date(t, today, prefer="nearest")
    if isinstance(read, date) or (isinstance(read, Invalid) and "何日" in read.hint):
        return OtherKind("日付のようです。ここでは金額をうかがっています。" + HINT_YEN)
    return None
