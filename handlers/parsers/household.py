"""The other household members' caps: 10,000円, 5000円と2500円, いない, and who was named without one (夫も受給者です).

What this is not: the cap table. The caps that exist come from ``knowledge/tables/copay.yaml``, read
once through ``handlers.calc.copay.existing_caps``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from handlers.parsers.common import MAX_ANSWER_CHARS, begin, kana_units, strip_trailing
from handlers.parsers.numbers import KANJI_DIGITS, NUMBER_RUN
from handlers.parsers.results import UNKNOWN, Invalid, Unknown
from handlers.parsers.yen import parse_yen
from nlp.text import Text, as_text

# Highest cap a 受給者証 can carry (指定難病 上位所得 一般).
MAX_CAP: Final[int] = 30_000

HINT_HOUSEHOLD_CAPS: Final[str] = (
    "同じ世帯でほかに受給者証をお持ちの方の月額上限額を『10,000円』『5000円と2500円』のように教えてください。"
    "いなければ『いない』、わからなければ『わからない』と送ってください。"
)
HINT_HOUSEHOLD_CAP_RANGE: Final[str] = (
    "受給者証の月額上限額は30,000円以下です。受給者証に書かれた金額（例：10,000円）を教えてください。"
)

_NOBODY: Final[re.Pattern[str]] = re.compile(
    r"(いない|いません|おりません|居ない|居ません|なし|無し|ない|ぜろ|none|nobody|0人"
    r"|ひとりも|一人も|1人も|自分だけ|私だけ|わたしだけ|本人のみ|本人だけ)"
)
# A comma followed by exactly three digits groups thousands; any other comma separates items.
# 「夫が5000円で娘が2500円」: で after 円 separates when another amount follows (「10,000円です」 is one).
_LIST_SEPARATOR: Final[re.Pattern[str]] = re.compile(
    r",(?![0-9]{3}(?![0-9]))|と|、|・|/|&|\+|;|and|および|及び|それと|(?<=円)で(?=.*[0-9一二三四五六七八九十百千万])"
)
# Someone else in the household named as a recipient: 「夫も受給者です」「妻と子」「娘が小慢の受給者証を持ってる」.
_FAMILY: Final[re.Pattern[str]] = re.compile(
    r"夫|妻|主人|旦那|だんな|嫁|配偶者|息子|娘|子ども|子供|こども|子|長男|長女|次男|次女|父|母|兄|弟|姉|妹|祖父|祖母|家族"
)
_RECIPIENT_WORDS: Final[re.Pattern[str]] = re.compile(
    r"受給者|受給し|持って|もって|もらって|小慢|小児慢性|指定難病|難病"
)
# 「はい」「います」「1人います」 to 「…持っている方はいますか？」: someone, amount not said.
_SOMEONE: Final[re.Pattern[str]] = re.compile(
    r"^(?:はい|うん|ええ|yes|いる|います|いるよ|いますよ|おります|ある|あります|いて|いるけど|いますが)(?:[、,。!]|です|$)"
)
_PEOPLE_COUNT: Final[re.Pattern[str]] = re.compile(r"(?P<n>[0-9]{1,2}|一|二|三|四|五|ひと|ふた)(?:人|り)")
_PEOPLE_WORDS: Final[dict[str, int]] = {"一": 1, "ひと": 1, "二": 2, "ふた": 2, "三": 3, "四": 4, "五": 5}
# 「いるかわからない」「いるかどうか」: whether there is anyone is what is not known.
_WHETHER: Final[re.Pattern[str]] = re.compile(r"(いる|います|ある|あります|持って(い)?る)か")


@dataclass(frozen=True)
class CapsNeeded(Invalid):
    """Someone else in the household is a recipient, but the cap was not said.

    The re-ask asks for it; ``people`` is how many such recipients were named (「夫と娘」 → 2).
    A following わからない means "``people`` recipients whose caps are unknown".
    """

    people: int = 1


def _cap_options(allowed: frozenset[int]) -> tuple[tuple[str, str], ...]:
    return tuple((f"{cap:,}円", str(cap)) for cap in sorted(allowed))


def _hint_cap_values(allowed: frozenset[int]) -> str:
    listed = "・".join(f"{cap:,}円" for cap in sorted(allowed))
    return (
        f"受給者証の月額上限額は {listed} のどれかです。受給者証に書かれた金額を下から選ぶか、"
        "『10,000円』のように送ってください。わからなければ『わからない』と送ってください。"
    )


def other_recipients(text: Text | str) -> int:
    """How many other recipients the answer names without giving their caps (0 when none).

    「夫も受給者です」 → 1, 「夫と娘」 → 2, 「2人います」 → 2, 「はい」 → 1; 「いない」 → 0.
    """
    if not isinstance(text, (str, Text)):
        return 0
    t = as_text(text).compact[:MAX_ANSWER_CHARS]
    if _WHETHER.search(t):
        return 0
    counted = _PEOPLE_COUNT.search(t)
    if counted:
        n = counted.group("n")
        people = int(n) if n.isdigit() else _PEOPLE_WORDS.get(n, 1)
        return people if 0 < people <= 10 else 0
    family = {m.group() for m in _FAMILY.finditer(t)}
    if family:
        return min(len(family), 10)
    if _SOMEONE.search(t) or _RECIPIENT_WORDS.search(t):
        return 1
    return 0


def parse_household_caps(
    text: Text | str, allowed: frozenset[int] | None = None
) -> list[int | None] | Unknown | Invalid:
    """Read the caps on the other household members' certificates.

    "いない" / "いません" / "なし" → []; "10,000円" → [10000]; "5000円と2500円" or
    "5000、2500" → [5000, 2500]. Each cap must be one that exists (``allowed``); any other
    amount ("1", "６", "7000円") is re-asked with the existing caps as buttons.
    Someone named without an amount (「夫も受給者です」, 「はい」) is ``CapsNeeded`` (re-ask
    for the amount); named together with わからない (「夫も受給者ですが金額はわからない」) it
    gives ``[None]``: one recipient whose cap is unknown. Button values: "none", "unknown",
    and the caps ("10000").

    Args:
        text: the answer.
        allowed: the caps that exist; by default every cap above 0 of the project's cap
            table (``knowledge/tables/copay.yaml``: 指定難病 and 小児慢性特定疾病, all columns).

    Returns:
        A list of caps in yen (``None`` for a cap not known), ``UNKNOWN`` or ``Invalid(hint)``.
    """
    if allowed is None:
        # The table, not a copy of it: the caps that exist are those knowledge/tables/copay.yaml lists.
        from handlers.calc.copay import existing_caps

        allowed = existing_caps()
    if not isinstance(text, (str, Text)):
        return Invalid(HINT_HOUSEHOLD_CAPS)
    # Whitespace separates items here ("5000 2500"), so split before normalising it away.
    spaced = re.sub(r"(?<=[0-9円万千])\s+(?=[0-9])", "、", kana_units(as_text(text).spaced))
    t = begin(spaced, HINT_HOUSEHOLD_CAPS)
    if t is UNKNOWN:
        # 「夫も受給者ですが、上限額はわからない」: someone is, the amount is what is not known.
        people = other_recipients(text)
        return [None] * people if people else UNKNOWN
    if not isinstance(t, str):
        return t
    t = strip_trailing(t)
    if _says_nobody(t):
        return []
    needed = _caps_needed(t, allowed)
    if needed is not None:
        return needed
    return _caps_said(t, allowed)


def _says_nobody(t: str) -> bool:
    """Whether the answer says nobody else is one: none, 0人, いない, 一人もいない; not 5000円しかない (an amount)."""
    if t in ("none", "0", "0円", "0人"):
        return True
    return bool(_NOBODY.search(t) and not re.search(r"[0-9]{2,}|[万千百]", t))


def _caps_needed(t: str, allowed: frozenset[int]) -> CapsNeeded | None:
    """Someone named (「夫も受給者です」「2人います」) with no amount: the re-ask for their caps."""
    amounts = _PEOPLE_COUNT.sub("", t)
    if NUMBER_RUN.search(amounts.replace("一", "")) or re.search(r"[0-9]", amounts):
        return None
    people = other_recipients(t)
    if not people:
        return None
    return CapsNeeded(
        "その方の受給者証にある月額上限額を教えてください（下から選べます）。"
        "わからなければ『わからない』と送ってください。同じ上限額と仮定した目安をお示しします。",
        _cap_options(allowed),
        people=people,
    )


def _caps_said(t: str, allowed: frozenset[int]) -> list[int | None] | Invalid:
    """The caps listed in the answer, each one that exists."""
    # 「母も受給者証を持っていて、上限は2,500円です」: a clause without a figure is words around the answer.
    parts = [p for p in _LIST_SEPARATOR.split(t) if p and re.search("[0-9十百千万〇" + "".join(KANJI_DIGITS) + "]", p)]
    if not parts or len(parts) > 10:
        return Invalid(HINT_HOUSEHOLD_CAPS)
    caps: list[int | None] = []
    for part in parts:
        value = parse_yen(part)
        if not isinstance(value, int):
            return Invalid(HINT_HOUSEHOLD_CAPS)
        if value not in allowed:
            return Invalid(_hint_cap_values(allowed), _cap_options(allowed))
        caps.append(value)
    return caps
