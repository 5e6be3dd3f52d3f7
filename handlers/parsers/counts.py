"""Counts of months (0–12): 6, 六か月, ふたつき, 半年, 毎月, ない, and a count said as a span (4月から毎月).

What this is not: which months they were; the cost log reads months with their amounts
(``month_amounts``).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from handlers.parsers.common import begin
from handlers.parsers.numbers import NEGATIVE, ZERO_WORDS, kana_count, single_number
from handlers.parsers.results import Invalid, Noted, OtherKind, Unknown
from nlp.text import Text, as_text

HINT_COUNT: Final[str] = (
    "月数は『6』『6か月』『半年』のように、0から12までの数で教えてください。"
    "なければ『ない』、わからなければ『わからない』と送ってください。"
)
HINT_COUNT_RANGE: Final[str] = "直近12か月のうちの月数なので、0から12までで教えてください。"

_TWELVE: Final[re.Pattern[str]] = re.compile(r"(毎月|1年|一年|12か月|十二か月|ずっと|全部|すべて|全て|all)")
_HALF_YEAR: Final[re.Pattern[str]] = re.compile(r"半年")
_NO_TIMES: Final[re.Pattern[str]] = re.compile(r"(一度も|1度も|一回も|1回も|ひと月も|一月も|1月も|一か月も|1か月も)")

_COUNT_UNIT: Final[re.Pattern[str]] = re.compile(r"^(か月|ヶ月|ヵ月|け月|箇月|ヶ|月|回|つ|度)?")


def parse_count(text: Text | str) -> int | Unknown | Invalid:
    """Read a number of months (0–12), e.g. months over 50,000円 in the last 12.

    Accepts "6", "６か月", "六か月", "6ヶ月", "6かげつ", "ふたつき" (2), "みっつ" (3),
    "半年" / "はんとし" (6), "ない" / "なし" / "ゼロ" (0), "1年" / "毎月" (12). Button values: "0" … "12", "unknown".

    Args:
        text: the answer.

    Returns:
        0 to 12, ``UNKNOWN`` or ``Invalid(hint)``.
    """
    t = begin(text, HINT_COUNT)
    if not isinstance(t, str):
        return t
    t = kana_count(t)
    if NEGATIVE.search(t):
        return Invalid(HINT_COUNT_RANGE)
    if _NO_TIMES.search(t) and ZERO_WORDS.search(t):
        return 0
    found = single_number(t)
    if found is None:
        if _TWELVE.search(t):
            return 12
        if _HALF_YEAR.search(t):
            return 6
        return 0 if ZERO_WORDS.search(t) else Invalid(HINT_COUNT)
    if isinstance(found, Invalid):
        return Invalid(HINT_COUNT)
    value, _before, after = found
    if re.match(r"^年", after):
        return 12 if value == 1 else Invalid(HINT_COUNT_RANGE)
    unit = _COUNT_UNIT.match(after)
    rest = after[unit.end() :] if unit else after
    if re.match(r"^[割%円/:.\-年日歳人]", rest) or value.denominator != 1:
        return Invalid(HINT_COUNT)
    if not 0 <= value <= 12:
        return Invalid(HINT_COUNT_RANGE)
    return int(value)


# 「去年の夏から毎月」「4月からずっと」: a count of months said as "since then, every month".
_SINCE: Final[re.Pattern[str]] = re.compile(
    r"^(?P<year>去年|昨年|きょねん|今年|ことし)?の?(?:(?P<month>[0-9]{1,2})月|(?P<season>春|夏|秋|冬))(?:ごろ|頃|くらい|ぐらい)?"
    r"から(?:は|も)?(?:ほぼ|ほとんど)?(?:毎月|ずっと|まいつき)"
)
# The months a season may start in (the earliest and the latest): which one is meant is not said.
_SEASONS: Final[dict[str, tuple[int, int]]] = {"春": (3, 5), "夏": (6, 8), "秋": (9, 11), "冬": (12, 2)}
_ROUGH: Final[re.Pattern[str]] = re.compile(
    r"くらい|ぐらい|位|ほど|程度|ごろ|頃|だいたい|大体|およそ|約|ほぼ|ほとんど|たぶん|多分"
)
# 高額かつ長期 is decided by 6 months out of 12 (FACTS §3): a rough count near it is asked back.
HIGH_COST_LINE: Final = 6
# A date where a count is asked: 「3か月前」「2週間後」, 「4月10日」.
_SPAN_FROM_NOW: Final[re.Pattern[str]] = re.compile(
    r"[0-9一二三四五六七八九十]+(?:か月|ヶ月|カ月|ヵ月|週間|日|年)(?:ほど|くらい|ぐらい)?(?:前|まえ|後|あと|先)"
)
_DAY_OF_MONTH: Final[re.Pattern[str]] = re.compile(r"(?:月|がつ)[0-9一二三四五六七八九十]+日")
# An amount where a count is asked: 「5万円」.
_YEN_SAID: Final[re.Pattern[str]] = re.compile(r"[0-9一二三四五六七八九十]+(?:円|万)")
HINT_ROUGH_COUNT: Final = (
    "6か月あるかどうかで上限額が変わるため、はっきりさせてください。"
    "総額（10割分）が5万円を超えた月は、6か月以上ありましたか？それとも5か月以下でしたか？"
)


def _months_since(match: re.Match[str], today: date) -> tuple[int, int] | Invalid:
    """The fewest and most months from the month named to this month (counting both), at most 12."""
    year = today.year - (1 if match.group("year") in ("去年", "昨年", "きょねん") else 0)
    if match.group("month"):
        firsts = [int(match.group("month"))] * 2
        if not 1 <= firsts[0] <= 12:
            return OtherKind(HINT_COUNT)
    else:
        firsts = list(_SEASONS[match.group("season")])
    counts = []
    for i, first in enumerate(firsts):
        y = year + (1 if first < firsts[0] else 0)  # 冬 from December runs into the next year
        if match.group("year") is None and (y, first) > (today.year, today.month):
            y -= 1  # 「4月から」 said in February is last April
        counts.append(min(12, (today.year - y) * 12 + today.month - first + 1))
    if min(counts) < 1:
        return Invalid(HINT_COUNT)
    return min(counts), max(counts)


def read_months_count(text: Text | str, today: date) -> int | Noted | Unknown | Invalid:
    """A count of months at the 高額かつ長期 question, said as people say it.

    Beyond ``parse_count``: 「4月から毎月」「去年の夏から毎月」 count the months from then to this month
    (``today``, the injectable clock; at most 12, said back); 「毎月」 is said back as 12; a rough count
    at the line of 6 (「半年くらい」「6か月ぐらい」) is asked back with the two answers that decide it;
    a date (「3か月前」) or an amount (「5万円」) is answered with what the question counts.
    """
    t = as_text(text).compact
    since = _SINCE.match(t)
    if since is not None:
        span = _months_since(since, today)
        if isinstance(span, Invalid):
            return span
        low, high = span
        if low != high and (low < HIGH_COST_LINE) != (high < HIGH_COST_LINE):
            return OtherKind(
                "いつの月からか、もう少しくわしく教えてください（例：『去年の7月から毎月』）。" + HINT_ROUGH_COUNT,
                options=(("6か月以上", "6"), ("5か月以下", "5")),
            )
        return Noted(low, f"今月までの{low}か月（この12か月のうち）と数えます。違っていたら「戻る」で直せます。")
    if _SPAN_FROM_NOW.search(t) or _DAY_OF_MONTH.search(t):
        return OtherKind("日付ではなく、5万円を超えた月が何か月あったか（0〜12）を教えてください。" + HINT_COUNT)
    if _YEN_SAID.search(t):
        return OtherKind(
            "金額ではなく、総額（10割分）が5万円を超えた月が何か月あったか（0〜12）を教えてください。"
            "月ごとの金額なら、医療費の記録に送ると数えられます。" + HINT_COUNT
        )
    value = parse_count(text)
    if not isinstance(value, int):
        return value
    if _ROUGH.search(t) and value in (HIGH_COST_LINE - 1, HIGH_COST_LINE, HIGH_COST_LINE + 1):
        return OtherKind(HINT_ROUGH_COUNT, options=(("6か月以上", "6"), ("5か月以下", "5")))
    if value == 12 and not re.search(r"12|十二|じゅうに", t):
        return Noted(12, "この12か月すべて（12か月）と数えます。違っていたら「戻る」で直せます。")
    return value
