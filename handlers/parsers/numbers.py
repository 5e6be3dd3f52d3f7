"""Numerals as people type them: 71000, 71,000, 7万1千, 1.5万, 二十五万三千, and counts in kana (ふたつき).

What this is not: no parser of an answer. The parsers of yen, counts, rates and dates find the one
number in an answer here and decide what it means (``yen``, ``counts``, ``rate``, ``dates``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from handlers.parsers.results import Invalid

KANJI_DIGITS: Final[dict[str, int]] = {
    "〇": 0, "零": 0, "一": 1, "壱": 1, "二": 2, "弐": 2, "三": 3, "参": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_SMALL_UNITS: Final[dict[str, int]] = {"十": 10, "拾": 10, "百": 100, "千": 1000}
_BIG_UNITS: Final[dict[str, int]] = {"万": 10_000, "萬": 10_000, "億": 100_000_000}
_NUMBER_CHARS: Final[str] = "0-9.," + "".join(KANJI_DIGITS) + "".join(_SMALL_UNITS) + "".join(_BIG_UNITS)
NUMBER_RUN: Final[re.Pattern[str]] = re.compile(f"[{_NUMBER_CHARS}]+")
_TOKEN: Final[re.Pattern[str]] = re.compile(
    r"(?P<arabic>[0-9]+(?:\.[0-9]+)?)|(?P<kanji>[" + "".join(KANJI_DIGITS) + r"]+)|(?P<unit>.)"
)
# A comma outside a thousands group: none before it, or not exactly three digits after it.
_LONE_COMMA: Final[re.Pattern[str]] = re.compile(r"(?<![0-9]),|,(?![0-9]{3}(?![0-9]))")
# A comma grouping thousands, as a person reads it: a digit before, exactly three digits after,
# then no further digit ("40,000,30,000" is 40,000 and 30,000).
THOUSANDS_COMMA: Final[re.Pattern[str]] = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")


def _parse_number(run: str, *, bare_decimal: bool = False) -> Fraction | None:
    """Parse a run of Arabic and/or kanji numerals: 71000, 7万1千, 1.5万, 二十五万三千, 一〇〇〇〇.

    A decimal point is read only before a unit ("1.5万") unless ``bare_decimal`` ("0.3"),
    so that "71.000" is not taken for 71.

    Returns None when the run is not a well-formed number.
    """
    cleaned = _without_commas(run)
    if cleaned is None:
        return None
    numeral = _Numeral()
    for token in _TOKEN.finditer(cleaned):
        if not numeral.read(token):
            return None
    return numeral.value(bare_decimal=bare_decimal)


def _without_commas(run: str) -> str | None:
    """The run without its thousands commas; None when a comma groups no thousands ("1,2") or the run is no number."""
    run = run.rstrip(".,").lstrip(",")
    # Commas only group thousands ("71,000"): a digit before, exactly three digits after.
    if _LONE_COMMA.search(run):
        return None
    run = run.replace(",", "")
    if not run or run.count(".") > 1:
        return None
    return run


@dataclass
class _Numeral:
    """A numeral read token by token, left to right; each step says whether the numeral is still well formed."""

    total: Fraction = Fraction(0)
    section: Fraction = Fraction(0)  # below 万
    current: Fraction | None = None  # a numeral waiting for its unit
    current_decimal: bool = False
    last_small: int | None = None  # the last 十/百/千 in this section
    last_big: int | None = None  # the last 万/億 seen
    seen_any: bool = False

    def read(self, token: re.Match[str]) -> bool:
        """Take one token: digits, a small unit (十百千), a big unit (万億); anything else ends the numeral."""
        arabic, kanji, unit = token.group("arabic"), token.group("kanji"), token.group("unit")
        if arabic is not None:
            return self._digits(Fraction(arabic), decimal="." in arabic)
        if kanji is not None:
            return self._digits(Fraction(int("".join(str(KANJI_DIGITS[c]) for c in kanji))), decimal=False)
        if unit in _SMALL_UNITS:
            return self._small_unit(_SMALL_UNITS[unit])
        if unit in _BIG_UNITS:
            return self._big_unit(_BIG_UNITS[unit])
        return False

    def _digits(self, value: Fraction, *, decimal: bool) -> bool:
        if self.current is not None:
            return False  # two numerals without a unit between them
        self.current, self.current_decimal, self.seen_any = value, decimal, True
        return True

    def _small_unit(self, value: int) -> bool:
        if self.last_small is not None and value >= self.last_small:
            return False  # "百千", "千千"
        self.section += (self.current if self.current is not None else 1) * value
        self.current, self.last_small, self.seen_any = None, value, True
        return True

    def _big_unit(self, value: int) -> bool:
        if self.current is not None and self.last_small is not None and self.current >= self.last_small:
            return False  # "千5000万"
        amount = self.section + (self.current or 0)
        if amount == 0 and self.current is None:
            return False  # "万" with nothing before it
        if self.last_big is not None and (value >= self.last_big or amount * value >= self.last_big):
            return False  # "1万2万", "1億20000万": a big unit no smaller than the last, or an amount reaching it
        self.total += amount * value
        self.section, self.current, self.last_small, self.last_big = Fraction(0), None, None, value
        self.seen_any = True
        return True

    def value(self, *, bare_decimal: bool) -> Fraction | None:
        """The number read, or None when what is left over is no part of one."""
        if not self.seen_any:
            return None
        if self.current is not None and self.current_decimal and not bare_decimal:
            return None
        if self.current is not None and self.last_small is not None and self.current >= self.last_small:
            return None  # "千5000"
        rest = self.section + (self.current or 0)
        if self.last_big is not None and rest >= self.last_big:
            return None  # "25万30000"
        return self.total + rest


NEGATIVE: Final[re.Pattern[str]] = re.compile(r"(^|[^0-9])(-|まいなす|▲|△)\s*[0-9" + "".join(KANJI_DIGITS) + "]")
ZERO_WORDS: Final[re.Pattern[str]] = re.compile(
    r"(なし|ない|無し|無い|なかった|無収入|ぜろ|none|nothing|zero|nil|ありません|ないです)"
)


def single_number(t: str, *, bare_decimal: bool = False) -> tuple[Fraction, str, str] | Invalid | None:
    """The one number in ``t`` with the text before and after it.

    Returns None when there is no number, Invalid when there are several or it is malformed.
    """
    runs = [m for m in NUMBER_RUN.finditer(t) if m.group().strip(".,")]
    if not runs:
        return None
    if len(runs) > 1:
        return Invalid("")
    match = runs[0]
    value = _parse_number(match.group(), bare_decimal=bare_decimal)
    if value is None:
        return Invalid("")
    return value, t[: match.start()], t[match.end() :]


# Native Japanese counts, as typed in kana: ふたつき (2か月), みつき, ふたつ, ろっかげつ, はんとし.
_KANA_COUNTS: Final[tuple[tuple[str, str], ...]] = (
    ("はんとし", "半年"), ("いちねん", "1年"),
    ("ひとつき", "1か月"), ("ひと月", "1か月"), ("ふたつき", "2か月"), ("ふた月", "2か月"),
    ("みつき", "3か月"), ("み月", "3か月"), ("よつき", "4か月"), ("よ月", "4か月"),
    ("いっかげつ", "1か月"), ("にかげつ", "2か月"), ("さんかげつ", "3か月"), ("よんかげつ", "4か月"),
    ("ごかげつ", "5か月"), ("ろっかげつ", "6か月"), ("ななかげつ", "7か月"), ("はちかげつ", "8か月"),
    ("はっかげつ", "8か月"), ("きゅうかげつ", "9か月"), ("じゅっかげつ", "10か月"), ("じっかげつ", "10か月"),
    ("じゅういっかげつ", "11か月"), ("じゅうにかげつ", "12か月"),
    ("ひとつ", "1"), ("ふたつ", "2"), ("みっつ", "3"), ("よっつ", "4"), ("いつつ", "5"), ("むっつ", "6"),
    ("ななつ", "7"), ("やっつ", "8"), ("ここのつ", "9"),
)  # fmt: skip


def kana_count(t: str) -> str:
    """Replace a count written in kana by digits (longest words first: じゅういっかげつ before いっかげつ)."""
    for word, digits in sorted(_KANA_COUNTS, key=lambda pair: len(pair[0]), reverse=True):
        t = t.replace(word, digits)
    return t


_KANJI_NUMBER: Final[re.Pattern[str]] = re.compile("[" + "".join(KANJI_DIGITS) + "十]+")


def kanji_to_arabic(t: str) -> str:
    """Turn kanji numerals into Arabic ones (令和九年三月三十一日 → 令和9年3月31日)."""

    def repl(match: re.Match[str]) -> str:
        value = _parse_number(match.group())
        return str(value) if value is not None and value.denominator == 1 else match.group()

    return _KANJI_NUMBER.sub(repl, t)
