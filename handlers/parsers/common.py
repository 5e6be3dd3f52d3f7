"""The start every parser shares: the answer's ``compact`` form, the length guard, わからない, kana units.

What this is not: no parser of a kind. Each parser takes the turn's ``nlp.text.Text`` (or a plain
string, made into one) and reads its answer forms, computed once per turn: width, case and
katakana folded (ﾊｲ is はい), and units typed in kana after a number read as their kanji (7まん is 7万).
"""

from __future__ import annotations

import re
from typing import Final

from handlers.parsers.results import UNKNOWN, Invalid, Unknown
from nlp.text import Text, as_text

# Longest answer we try to read; longer text is not an answer to a short question.
MAX_ANSWER_CHARS: Final[int] = 100

HINT_TOO_LONG: Final[str] = "短いお返事で教えてください。"


_UNKNOWN_MARKERS: Final[tuple[str, ...]] = (
    "わから",
    "分から",
    "判ら",
    "解ら",
    "わかん",
    "分かん",
    "わかりません",
    "分かりません",
    "不明",
    "知らな",
    "しらな",
    "知りません",
    "しりません",
    "知らん",
    "しらん",
    "覚えてな",
    "覚えていな",
    "おぼえてな",
    "忘れた",
    "unknown",
    "idk",
    "dontknow",
    "don'tknow",
    "notsure",
)


def is_unknown_answer(text: Text | str) -> bool:
    """Whether the (raw or normalised) text says the user does not know."""
    return _says_unknown(as_text(text).compact)


# A message that says only "I don't know" (「わからない」, 「よくわかりません」, 「知らないです」), as
# opposed to one that says what is not known (「使い方がわからない」): one of the markers above,
# with nothing around it but fillers and endings.
_ONLY_UNSURE: Final[re.Pattern[str]] = re.compile(
    r"^(?:よく|ちょっと|まだ|全然|ぜんぜん|さっぱり|うーん|えーと|えっと|[、。,.!?…~ー])*"
    r"(?:" + "|".join(re.escape(m) for m in sorted(_UNKNOWN_MARKERS, key=len, reverse=True)) + ")"
    r"(?:い|ない|ん|なかった|なくて)?(?:です|ですね|な|ね|よ|けど|[、。,.!?…~ー])*$"
)


def only_unsure(text: Text | str) -> bool:
    """Whether the message says nothing but that the user does not know."""
    return bool(_ONLY_UNSURE.match(as_text(text).compact))


def _says_unknown(t: str) -> bool:
    """``is_unknown_answer`` of a text already in its ``compact`` form."""
    return t in ("?", "??", "unknown") or any(marker in t for marker in _UNKNOWN_MARKERS)


# Units typed in kana after a number (「7まん」, ７マン, 「5せんえん」), read as their kanji; 「えん」
# after a number or a unit is 円. Only after a digit, so that 「いません」 stays what it is.
_KANA_UNITS: Final[dict[str, str]] = {
    "まん": "万",
    "せん": "千",
    "ひゃく": "百",
    "びゃく": "百",
    "ぴゃく": "百",
    "ねん": "年",
    "がつ": "月",
}
_KANA_UNIT: Final[re.Pattern[str]] = re.compile(r"(?<=[0-9])(?:" + "|".join(_KANA_UNITS) + ")")
_KANA_YEN: Final[re.Pattern[str]] = re.compile(r"(?<=[0-9万千百])えん")


def kana_units(t: str) -> str:
    return _KANA_YEN.sub("円", _KANA_UNIT.sub(lambda m: _KANA_UNITS[m.group()], t))


def begin(text: object, hint: str) -> str | Unknown | Invalid:
    """Common start of every parser: type guard, the ``compact`` form, length guard, わからない.

    Returns the compact text with kana units read, ``UNKNOWN``, or ``Invalid`` carrying ``hint``.
    """
    if not isinstance(text, (str, Text)):
        return Invalid(hint)
    t = as_text(text).compact
    if not t:
        return Invalid(hint)
    if len(t) > MAX_ANSWER_CHARS:
        return Invalid(HINT_TOO_LONG + hint)
    if _says_unknown(t):
        return UNKNOWN
    return kana_units(t)


_TRAILING: Final[re.Pattern[str]] = re.compile(r"[。.!?、,~ー]+$")


def strip_trailing(t: str) -> str:
    return _TRAILING.sub("", t)
