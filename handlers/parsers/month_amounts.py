"""Months with an amount each, for the cost log: 「4月 52,000円、5月 61,000円」, 「先月 3万円」, 「5月 なし」,
and one day's payment (「今日さくら薬局で1,230円払いました」).

What this is not: the cost log itself (``handlers.cost_log``) or a count of months (``counts``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from handlers.parsers.common import HINT_TOO_LONG, MAX_ANSWER_CHARS, is_unknown_answer, kana_units
from handlers.parsers.eras import ImpossibleDate, western_year
from handlers.parsers.numbers import KANJI_DIGITS, THOUSANDS_COMMA
from handlers.parsers.relative_dates import RELATIVE_DAYS
from handlers.parsers.results import UNKNOWN, Invalid, Unknown
from handlers.parsers.yen import HINT_YEN, parse_yen
from nlp.text import Text, as_text

HINT_MONTH_AMOUNTS: Final[str] = (
    "月と金額を組にして送ってください（例：「4月 52,000円、5月 61,000円」）。12か月分まで、まとめて送れます。"
)
HINT_MONTH_FUTURE: Final[str] = "まだ来ていない月は記録できません。" + HINT_MONTH_AMOUNTS
HINT_MONTH_OLD: Final[str] = "記録できるのは、今月を含む直近12か月の分です。" + HINT_MONTH_AMOUNTS
HINT_MONTH_TWICE: Final[str] = "同じ月が2回あります。1つの月には1つの金額を送ってください。" + HINT_MONTH_AMOUNTS
HINT_MONTH_UNKNOWN: Final[str] = "わからない月は飛ばして大丈夫です。わかる月だけ送ってください。" + HINT_MONTH_AMOUNTS

# A month: 「4月」「4月分」「2026年4月」「令和8年4月」「R8年4月」「今月」「先月」「先々月」.
_MONTH_TOKEN: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9])(?:(?P<year>[0-9]{4})年|(?P<era>令和|r)(?P<era_year>[0-9]{1,2}|元)年)?(?P<month>[0-9]{1,2})月(?:分)?"
    r"|(?P<relative>先々月|先月|今月)(?:分)?"
)
_RELATIVE_MONTHS: Final[dict[str, int]] = {"今月": 0, "先月": -1, "先々月": -2}
# Words around an amount that say nothing more than "the amount of that month is".
_AMOUNT_FILLERS: Final[re.Pattern[str]] = re.compile(
    r"医療費の?総額|医療費|総額|合計|10割|十割|自己負担額?|窓口で?|支払った|払った|支払いました|払いました|かかった|かかりました"
    r"|でした|です|約|およそ|くらい|ぐらい|ほど|[\s:：、,，。.・/はのがでにもを()（）]"
)
_AMOUNT_ONLY: Final[re.Pattern[str]] = re.compile(r"[0-9" + "".join(KANJI_DIGITS) + r"万千百十円]+|なし|ない|ぜろ")
# Said about what the patient paid at the counter, not the month's total (10割).
_PAID_WORDS: Final[re.Pattern[str]] = re.compile(r"自己負担|払った|払いました|支払|窓口")
_TOTAL_WORDS: Final[re.Pattern[str]] = re.compile(r"総額|10割|十割")


@dataclass(frozen=True)
class MonthAmounts:
    """Months with an amount each, as typed (「4月 52,000円、5月 61,000円」).

    Attributes:
        amounts: (first day of the month, yen) in the order typed.
        paid: the user said these are what they paid (自己負担), not the month's total (10割).
    """

    amounts: tuple[tuple[date, int], ...]
    paid: bool = False
    adds: bool = False  # one day's payment (「今日〇〇薬局で1,230円払いました」), added to its month's


# One payment on one day, with where it was paid: 「今日さくら薬局で1,230円払いました」「きのう病院で2400円かかった」.
_DAY_PAYMENT: Final[re.Pattern[str]] = re.compile(
    r"^(?P<day>今日|きょう|本日|昨日|きのう|一昨日|おととい|(?P<dnum>[0-9]{1,2})日)(?:に|は)?[、,\s]*(?:.{0,24}?)(?:で|の|に)?[、,\s]*"
    r"(?P<amount>[0-9" + "".join(KANJI_DIGITS) + r"万千百十]+)円(?:を|が|ほど|くらい|ぐらい)?"
    r"(?:払った|払いました|はらった|支払った|支払いました|かかった|かかりました|払ってきた|払ってきました|でした)[。!！]*$"
)


def _day_payment(t: str, today: date) -> MonthAmounts | Invalid | None:
    """One day's payment at a hospital or a pharmacy, as that month's paid amount to add to."""
    found = _DAY_PAYMENT.match(t)
    if found is None:
        return None
    word = found.group("day")
    if found.group("dnum"):
        day_number = int(found.group("dnum"))
        if not 1 <= day_number <= today.day:
            return Invalid(HINT_MONTH_AMOUNTS)
        day = today.replace(day=day_number)
    else:
        day = today + timedelta(days=RELATIVE_DAYS.get(word, 0))
    amount = parse_yen(found.group("amount") + "円")
    if not isinstance(amount, int):
        return Invalid(HINT_MONTH_AMOUNTS)
    return MonthAmounts(((day.replace(day=1), amount),), paid=True, adds=True)


def _month_of(match: re.Match[str], today: date) -> date | Invalid:
    this = today.year * 12 + today.month - 1
    if match.group("relative"):
        index = this + _RELATIVE_MONTHS[match.group("relative")]
    else:
        month = int(match.group("month"))
        if not 1 <= month <= 12:
            return ImpossibleDate(f"{month}月という月はありません。" + HINT_MONTH_AMOUNTS)
        if match.group("year"):
            index = int(match.group("year")) * 12 + month - 1
        elif match.group("era"):
            index = (western_year("令和", match.group("era_year")) or 0) * 12 + month - 1
        else:  # no year: the latest such month up to this one
            index = this - (today.month - month) % 12
    if index > this:
        return Invalid(HINT_MONTH_FUTURE)
    if index <= this - 12:
        return Invalid(HINT_MONTH_OLD)
    return date(index // 12, index % 12 + 1, 1)


def parse_month_amounts(text: Text | str, today: date) -> MonthAmounts | Unknown | Invalid:
    """Read months with their amounts, for the cost log.

    Accepts 「4月 52,000円、5月 61,000円」, 「4月52000 5月6万1千円」, 「2026年4月：5万円」,
    「令和8年4月分は52000円」, 「先月 3万円」, 「5月 なし」 (0円); up to 12 months, each within the
    12 months that end with this month. A month without a year is the latest such month up
    to this one (in January, 「12月」 is last December). Anything else in the text than months,
    amounts and the words around them (「は」「総額」「円」) makes it not an answer, so a question
    that mentions a month and an amount is not taken for one.

    Args:
        text: the message.
        today: today in Japan.

    Returns:
        ``MonthAmounts`` (``paid`` when the text says 自己負担／払った／窓口 without 総額／10割),
        ``UNKNOWN`` or ``Invalid(hint)``.
    """
    if not isinstance(text, (str, Text)) or not as_text(text).spaced:
        return Invalid(HINT_MONTH_AMOUNTS)
    said = as_text(text)
    if len(said.raw) > MAX_ANSWER_CHARS * 4:
        return Invalid(HINT_TOO_LONG + HINT_MONTH_AMOUNTS)
    t = kana_units(said.spaced)
    t = THOUSANDS_COMMA.sub("", t)
    tokens = list(_MONTH_TOKEN.finditer(t))
    if not tokens:
        return _without_months(t, today)
    if _AMOUNT_FILLERS.sub("", t[: tokens[0].start()]):
        return Invalid(HINT_MONTH_AMOUNTS)
    if len(tokens) > 12:
        return Invalid("12か月分までにしてください。" + HINT_MONTH_AMOUNTS)
    amounts: list[tuple[date, int]] = []
    for index, token in enumerate(tokens):
        end = tokens[index + 1].start() if index + 1 < len(tokens) else len(t)
        amount = _amount_of(t[token.end() : end])
        if isinstance(amount, Invalid):
            return amount
        month = _month_of(token, today)
        if isinstance(month, Invalid):
            return month
        if any(month == m for m, _ in amounts):
            return Invalid(HINT_MONTH_TWICE)
        amounts.append((month, amount))
    paid = bool(_PAID_WORDS.search(t)) and not _TOTAL_WORDS.search(t)
    return MonthAmounts(tuple(amounts), paid)


def _without_months(t: str, today: date) -> MonthAmounts | Unknown | Invalid:
    """A message that names no month: one day's payment, わからない, or no answer."""
    payment = _day_payment(t.strip(), today)
    if payment is not None:
        return payment
    return UNKNOWN if is_unknown_answer(t) else Invalid(HINT_MONTH_AMOUNTS)


def _amount_of(said: str) -> int | Invalid:
    """The amount said after a month, up to the next one: 「52,000円、」「は6万1千円です」「なし」."""
    rest = _AMOUNT_FILLERS.sub("", said)
    if is_unknown_answer(rest):
        return Invalid(HINT_MONTH_UNKNOWN)
    if not _AMOUNT_ONLY.fullmatch(rest):
        return Invalid(HINT_MONTH_AMOUNTS)
    amount = parse_yen(rest)
    if isinstance(amount, Invalid):
        return Invalid(amount.hint if amount.hint != HINT_YEN else HINT_MONTH_AMOUNTS)
    if not isinstance(amount, int):
        return Invalid(HINT_MONTH_AMOUNTS)
    return amount
