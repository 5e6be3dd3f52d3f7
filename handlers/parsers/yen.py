"""Amounts of yen: one amount (7万1千円, 71,000, 約25万, なし) or a list of them (40,000、30,000、35,000).

What this is not: what the yen are (年収, 月収, 手取り): ``handlers.amounts`` reads that around ``parse_yen``.
"""

from __future__ import annotations

import re
from typing import Final

from handlers.parsers.common import HINT_TOO_LONG, MAX_ANSWER_CHARS, begin, is_unknown_answer, kana_units
from handlers.parsers.numbers import NEGATIVE, THOUSANDS_COMMA, ZERO_WORDS, single_number
from handlers.parsers.results import UNKNOWN, Invalid, Unknown
from nlp.text import Text, as_text

# Largest amount of yen we accept (10億円).
MAX_YEN: Final[int] = 1_000_000_000
HINT_YEN: Final[str] = (
    "金額は『7万1千円』『71000』のように数字で教えてください。わからなければ『わからない』と送ってください。"
)
HINT_YEN_RANGE: Final[str] = "0円から10億円までの金額で教えてください。" + HINT_YEN

# Units that turn a number into something other than yen.
_NOT_YEN_UNIT: Final[re.Pattern[str]] = re.compile(
    r"^(割|%|ぱーせんと|か月|ヶ月|ヵ月|け月|箇月|ヶ|月|年|日|歳|才|人|名|回|件|時|分|秒|個|つ|枚|/|:|\.|-|番)"
)


def parse_yen(text: Text | str) -> int | Unknown | Invalid:
    """Read an amount of yen.

    Accepts "７万円", "7万1千円", "71,000", "71000円", "約25万", "25万くらい", "二十五万三千",
    "1.5万", "25万円程度", "0"; "なし" / "ない" / "ゼロ" mean 0 yen (e.g. no income).

    Args:
        text: the answer.

    Returns:
        The amount in whole yen (0 to 10億), ``UNKNOWN`` or ``Invalid(hint)``.
    """
    t = begin(text, HINT_YEN)
    if not isinstance(t, str):
        return t
    if NEGATIVE.search(t):
        return Invalid(HINT_YEN_RANGE)
    found = single_number(t)
    if found is None:
        return 0 if ZERO_WORDS.search(t) else Invalid(HINT_YEN)
    if isinstance(found, Invalid):
        return Invalid(HINT_YEN)
    value, _before, after = found
    if _NOT_YEN_UNIT.match(after):
        return Invalid(HINT_YEN)
    if value.denominator != 1:
        return Invalid(HINT_YEN)
    if not 0 <= value <= MAX_YEN:
        return Invalid(HINT_YEN_RANGE)
    return int(value)


# --------------------------------------------------------------------------- lists of amounts

HINT_YEN_LIST: Final[str] = (
    "金額を読点（、）や改行で区切って送ってください（例：40,000、30,000、35,000）。かからなかった月は0で大丈夫です。"
)
# What separates the items of a list of amounts: 、 ・ / ; | と, newlines and spaces. A comma is
# a separator only when it does not group thousands (see ``_split_amounts``).
_AMOUNT_SEPARATORS: Final[re.Pattern[str]] = re.compile(r"[、・/;|]|と|\s+|(?<=円)")


def _split_amounts(text: Text) -> list[str]:
    """Split a typed list of amounts into the pieces a person would read as separate amounts."""
    t = kana_units(text.spaced)
    t = THOUSANDS_COMMA.sub("", t)  # what is left of the commas separates items
    t = t.replace(",", "、")
    return [p for p in _AMOUNT_SEPARATORS.split(t) if p and p.strip()]


def parse_yen_list(text: Text | str, *, max_items: int = 12) -> list[int] | Unknown | Invalid:
    """Read a list of amounts of yen, e.g. monthly medical totals.

    Items may be separated by 、 , ・ / ; newlines or spaces, or follow each other after 円:
    "40,000、30,000、35,000", "40,000,30,000,35,000" (a comma followed by exactly three
    digits groups thousands; any other comma separates), "4万円 3万円 3万5千円",
    "40000／30000", "四万、三万". Each item is read like ``parse_yen`` ("なし" is 0).

    Args:
        text: the answer.
        max_items: the most items accepted.

    Returns:
        The amounts in whole yen, in the order typed; ``UNKNOWN``; or ``Invalid(hint)``.
    """
    if not isinstance(text, (str, Text)):
        return Invalid(HINT_YEN_LIST)
    said = as_text(text)
    if len(said.raw) > MAX_ANSWER_CHARS * 3:
        return Invalid(HINT_TOO_LONG + HINT_YEN_LIST)
    pieces = _split_amounts(said)
    if not pieces:
        return Invalid(HINT_YEN_LIST)
    if len(pieces) == 1 and is_unknown_answer(pieces[0]):
        return UNKNOWN
    if len(pieces) > max_items:
        return Invalid(f"{max_items}か月分までの金額を送ってください。" + HINT_YEN_LIST)
    values: list[int] = []
    for piece in pieces:
        value = parse_yen(piece)
        if not isinstance(value, int):
            return Invalid(HINT_YEN_LIST)
        values.append(value)
    return values
