"""Amounts with their kind: what a typed figure is, not only how many yen.

A person answers 「所得割はいくらですか？」 with 「年収は四百五十万くらいです」 or 「住民税が毎月1万2千円引かれてます」.
``parsers.parse_yen`` reads the yen; this module reads *what* the yen are (年収, 月収, 手取り, 年金 per month or
year, 住民税 as a monthly deduction or a yearly sum, 所得割, 10割の医療費, 窓口で払った額) and lets a dialog slot
accept only its own kind. Another kind is never taken silently as the slot's own: it is answered with a short
question that finds the real figure, and, where a cited rule exists, an approximation labelled 概算 with its
assumption and source (``../shared/domain/FACTS.md`` §3: the national 年収の目安 per tier, LYSO-1 / MHLW-T).

Own code rather than a library: the kinds are Japanese words of the subsidy's own forms; no NLP library
knows that 「天引き」 of 住民税 is a twelfth of a yearly tax that is not 所得割.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Callable, Final

from handlers import parsers
from handlers.calc.copay import load_table
from handlers.parsers import Invalid
from nlp.text import Text, as_text


class Kind(enum.Enum):
    """What a typed amount is."""

    ANNUAL_INCOME = "年収"
    MONTHLY_INCOME = "月収"
    TAKE_HOME = "手取り"
    PENSION_MONTHLY = "年金（月額）"
    PENSION_YEARLY = "年金（年額）"
    RESIDENT_TAX_MONTHLY = "住民税（月額の天引き）"
    RESIDENT_TAX_YEARLY = "住民税（年額）"
    INCOME_TAX = "所得割"
    MEDICAL_COST = "10割の医療費"
    PAID = "窓口で払った額"


_YEARLY: Final = re.compile(r"年額|年間|1年|一年|年に|年で")


def kind_of(text: Text | str) -> Kind | None:
    """The kind a person named with the amount, or ``None`` when the sentence names none."""
    t = as_text(text).compact
    if "所得割" in t:
        return Kind.INCOME_TAX
    if re.search(r"住民税|市民税|町民税|村民税|県民税", t):
        if re.search(r"天引き|引かれ|毎月|月々|月に|ひと月", t) and not _YEARLY.search(t):
            return Kind.RESIDENT_TAX_MONTHLY
        return Kind.RESIDENT_TAX_YEARLY
    if "年金" in t:
        return Kind.PENSION_MONTHLY if re.search(r"毎月|月に|月々|ひと月|月額|1か月|1ヶ月", t) else Kind.PENSION_YEARLY
    if "手取り" in t:
        return Kind.TAKE_HOME
    if "年収" in t:
        return Kind.ANNUAL_INCOME
    if re.search(r"月収|月給|給料|給与", t):
        return Kind.ANNUAL_INCOME if _YEARLY.search(t) else Kind.MONTHLY_INCOME
    if re.search(r"窓口|払った|払いました|支払", t):
        return Kind.PAID
    if re.search(r"医療費|10割|総額", t):
        return Kind.MEDICAL_COST
    return None


_PERIOD: Final = re.compile(r"(?:1|一|ひと)(?:年間?|か月|ヶ月|ケ月|カ月|箇月)(?:で|に|の|あたり|当たり)?")


@dataclass(frozen=True)
class Amount:
    """An amount of yen and what it is (``kind`` is ``None`` when the person named no kind)."""

    yen: int
    kind: Kind | None


def parse_amount(text: Text | str) -> Amount | parsers.Unknown | Invalid:
    """Read an amount and its kind: 「年収は四百五十万くらいです」 → ``Amount(4500000, ANNUAL_INCOME)``."""
    # 「1年で」「1か月の」 name the period, not a second amount: read without them (the kind keeps them).
    value = parsers.parse_yen(_PERIOD.sub("", as_text(text).compact))
    if not isinstance(value, int):
        return value
    return Amount(value, kind_of(text))


# An amount read, but of another kind than the question asks: the hint is the answer to it (the
# question that finds the real figure, a 概算), so the message is not passed on to the FAQ.
OtherKind = parsers.OtherKind


def _yen(amount: int) -> str:
    return f"{amount:,}円"


SOURCE_GUIDE: Final = "（出典：厚生労働省「指定難病の患者への医療費助成 月額自己負担上限額表」）"
ASK_INCOME_TAX: Final = (
    "住民税決定通知書（6月ごろ届きます）か課税証明書の「所得割」の欄の金額を教えてください。"
    "ご家族の分があれば合計します。わからなければ「わからない」で、考えられる上限額をまとめてお示しします。"
)
# The national guide of yearly household income per tier (couple household, FACTS.md §3, LYSO-1 / MHLW-T):
# 一般所得1 ≈ 160–370万円, 一般所得2 ≈ 370–810万円, 上位 ≈ 810万円〜. A guide only: never a tier.
_INCOME_GUIDE: Final[tuple[tuple[int, int | None, str], ...]] = (
    (1_600_000, 3_700_000, "一般所得1"),
    (3_700_000, 8_100_000, "一般所得2"),
    (8_100_000, None, "上位所得"),
)


def income_guide(annual: int) -> str | None:
    """The 概算 sentence for a yearly household income, or ``None`` below the guide's range."""
    for low, high, tier in _INCOME_GUIDE:
        if annual >= low and (high is None or annual < high):
            cap = load_table().cap(tier, "一般")
            span = f"{low // 10_000}万〜{high // 10_000}万円" if high else f"{low // 10_000}万円以上"
            return (
                f"概算：国の目安では、夫婦世帯の年収{span}がおよそ「{tier}」（月額上限{_yen(cap)}）にあたります。"
                f"年収{_yen(annual)}ならこの区分の見込みですが、ご家族の人数や控除で変わるため目安にすぎません{SOURCE_GUIDE}。"
            )
    return None


def _for_income_tax(amount: Amount) -> OtherKind | None:
    """Another kind at the 所得割 question: the short question that finds the real figure (and a 概算 if cited)."""
    kind = amount.kind
    if kind in (None, Kind.INCOME_TAX):
        return None
    said = f"「{kind.value} {_yen(amount.yen)}」は所得割の額ではないため、そのままでは区分を決められません。"
    if kind is Kind.ANNUAL_INCOME:
        guide = income_guide(amount.yen)
        return OtherKind(said + (guide or "") + "正確な区分のために、" + ASK_INCOME_TAX)
    if kind is Kind.RESIDENT_TAX_MONTHLY:
        return OtherKind(
            f"毎月{_yen(amount.yen)}の天引きは、"
            f"住民税の年額（およそ{_yen(amount.yen * 12)}＝{_yen(amount.yen)}×12か月）を"
            "分けて払っているもので、県民税の分や均等割も含むため、所得割の額とは違います。" + ASK_INCOME_TAX
        )
    if kind is Kind.RESIDENT_TAX_YEARLY:
        return OtherKind("住民税の年額には県民税の分や均等割も含まれ、所得割の額とは違います。" + ASK_INCOME_TAX)
    return OtherKind(said + ASK_INCOME_TAX)


def _for_income(amount: Amount) -> OtherKind | None:
    """Another kind at the 本人収入 question (a yearly figure): a monthly figure is asked again as a year."""
    if amount.kind in (Kind.MONTHLY_INCOME, Kind.TAKE_HOME, Kind.PENSION_MONTHLY):
        assert amount.kind is not None
        return OtherKind(
            f"「{amount.kind.value} {_yen(amount.yen)}」は1か月分のようです。ここでは前の年の1年分の収入をうかがいます"
            f"（毎月同じなら、{_yen(amount.yen)}×12か月＝{_yen(amount.yen * 12)}です）。1年分の金額を教えてください。"
        )
    if amount.kind in (
        Kind.RESIDENT_TAX_MONTHLY,
        Kind.RESIDENT_TAX_YEARLY,
        Kind.INCOME_TAX,
        Kind.MEDICAL_COST,
        Kind.PAID,
    ):
        assert amount.kind is not None
        return OtherKind(
            f"「{amount.kind.value}」ではなく、患者さんご本人の前の年の収入（年金などを含む1年分）を教えてください。"
        )
    return None


def _for_medical_cost(amount: Amount) -> OtherKind | None:
    """Another kind at the 10割の医療費 question: what was paid at the counter is not the total."""
    if amount.kind is Kind.PAID:
        return OtherKind(
            f"{_yen(amount.yen)}は窓口で払った額のようです。ここでは保険がきく前の医療費の総額（10割分）をうかがいます。"
            "領収書の「保険点数」×10円が総額です。わからなければ「わからない」で大丈夫です。"
        )
    if amount.kind in (
        Kind.ANNUAL_INCOME,
        Kind.MONTHLY_INCOME,
        Kind.TAKE_HOME,
        Kind.PENSION_MONTHLY,
        Kind.PENSION_YEARLY,
        Kind.RESIDENT_TAX_MONTHLY,
        Kind.RESIDENT_TAX_YEARLY,
        Kind.INCOME_TAX,
    ):
        assert amount.kind is not None
        return OtherKind(f"「{amount.kind.value}」ではなく、今月かかる医療費の総額（10割分）を教えてください。")
    return None


_CHECKS: Final[dict[str, Callable[[Amount], Invalid | None]]] = {
    "income_tax": _for_income_tax,
    "income": _for_income,
    "medical_cost": _for_medical_cost,
}


def slot_parser(slot: str) -> Callable[[Text, Any], Any]:
    """A yen parser for a copay slot that accepts only its own kind of amount (see the module docstring)."""
    check = _CHECKS[slot]

    def parse(text: Text, ctx: Any) -> Any:
        read = parse_amount(text)
        if isinstance(read, Invalid) and ctx is not None:
            return parsers.amount_is_date(text, ctx.today) or read
        if not isinstance(read, Amount):
            return read
        return check(read) or read.yen

    return parse
