"""Monthly copay cap (月額自己負担上限額) and payment of the 特定医療費（指定難病） subsidy.

What this is: a pure calculation. Given what we know about a patient (``CopayFacts``,
field names exactly the ``nanbyo-bot copay`` contract's), it decides the 階層区分 (tier),
the column (一般 / 高額かつ長期 / 人工呼吸器等装着者), the household split (按分) and
this month's payment, and explains each step in Japanese. When facts are missing,
``possible_results`` lists every outcome that is still possible.

What this is not: no dialog, no parsing of chat text (see ``handlers.parsers``), no CLI,
no I/O apart from reading ``knowledge/tables/copay.yaml`` once. It does not decide
whether the office will approve 高額かつ長期 or 人工呼吸器等装着者; it takes those facts
as given.

Rules: /work/shared/domain/FACTS.md §2 (table), §3 (按分), §5 (2割), §7 (高額かつ長期).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Final, Literal, Mapping, TypeGuard

import yaml

__all__ = [
    "COLUMNS",
    "TIERS",
    "CapTable",
    "CopayError",
    "CopayFacts",
    "CopayResult",
    "calculate",
    "existing_caps",
    "facts_from_json",
    "load_table",
    "possible_results",
    "result_to_json",
    "validate_facts",
]

Tier = Literal["生活保護", "低所得1", "低所得2", "一般所得1", "一般所得2", "上位所得"]
Column = Literal["一般", "高額かつ長期", "人工呼吸器等装着者"]

TIERS: Final[tuple[Tier, ...]] = ("生活保護", "低所得1", "低所得2", "一般所得1", "一般所得2", "上位所得")
COLUMNS: Final[tuple[Column, ...]] = ("一般", "高額かつ長期", "人工呼吸器等装着者")

TABLE_PATH: Final[Path] = Path(__file__).resolve().parents[2] / "knowledge" / "tables" / "copay.yaml"

# Upper bound for any amount of yen we accept (10億円); larger is a typo, not a fact.
MAX_YEN: Final[int] = 1_000_000_000
# The highest cap any certificate can carry (指定難病 上位所得 一般, FACTS §2).
MAX_HOUSEHOLD_CAP: Final[int] = 30_000
# More other recipients than this in one 支給認定世帯 is almost certainly a mistake.
MAX_HOUSEHOLD_MEMBERS: Final[int] = 10
# Insurance rates in tenths: 1割, 2割, 3割.
_RATE_TENTHS: Final[dict[float, int]] = {0.1: 1, 0.2: 2, 0.3: 3}

_FIELDS: Final[tuple[str, ...]] = (
    "welfare",
    "ventilator",
    "tax_exempt",
    "income",
    "income_tax",
    "high_cost_months",
    "medical_cost",
    "insurance_rate",
    "household_caps",
)


class CopayError(ValueError):
    """Facts are contradictory, out of range, or not enough for a single answer.

    Attributes:
        message: human-readable reason (English for validation errors).
        field: the contract field at fault, when one is.
        missing: contract fields whose values would be needed for a single answer.
    """

    def __init__(self, message: str, *, field: str | None = None, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.missing = missing


# --------------------------------------------------------------------------- table


@dataclass(frozen=True)
class CapTable:
    """The cap table of ``knowledge/tables/copay.yaml``, checked on load."""

    caps: Mapping[str, Mapping[str, int]]
    low_income_1_max_income: int
    general_2_min_income_tax: int
    upper_min_income_tax: int
    subsidised_rate_tenths: int
    high_cost_monthly_total_over: int
    high_cost_min_months: int
    high_cost_window_months: int
    high_cost_tiers: frozenset[str]
    mild_monthly_total_over: int
    mild_min_months: int
    mild_window_months: int
    pediatric_caps: Mapping[str, Mapping[str, int]]

    def cap(self, tier: str, column: str) -> int:
        """The monthly cap in yen of a tier and column, before any split."""
        return self.caps[tier][column]

    def existing_caps(self) -> frozenset[int]:
        """Every cap above 0 a certificate can carry: 指定難病 and 小児慢性特定疾病, all columns."""
        tables = (self.caps, self.pediatric_caps)
        return frozenset(v for table in tables for row in table.values() for v in row.values() if v > 0)


def _table_error(path: Path, message: str) -> ValueError:
    return ValueError(f"{path}: {message}")


def _read_caps(path: Path, rows: Any, key: str) -> dict[str, dict[str, int]]:
    if not isinstance(rows, list) or [r.get("name") if isinstance(r, dict) else None for r in rows] != list(TIERS):
        raise _table_error(path, f"{key} must list the tiers {', '.join(TIERS)} in this order")
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        caps = row.get("caps")
        if not isinstance(caps, dict) or set(caps) != set(COLUMNS):
            raise _table_error(path, f"{key} [{row['name']}]: caps must have the columns {', '.join(COLUMNS)}")
        for column, value in caps.items():
            if type(value) is not int or value < 0:
                raise _table_error(path, f"{key} [{row['name']}].{column}: not a non-negative whole number")
        out[row["name"]] = {c: caps[c] for c in COLUMNS}
    return out


@functools.lru_cache(maxsize=None)
def load_table(path: Path = TABLE_PATH) -> CapTable:
    """Read and check the cap table (once per path; the result is cached).

    Args:
        path: the YAML file; the project's ``knowledge/tables/copay.yaml`` by default.

    Returns:
        The checked table.

    Raises:
        ValueError: the file is missing, not YAML, or not shaped as expected (names the file).
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _table_error(path, f"cannot read the cap table: {exc}") from exc
    if not isinstance(raw, dict):
        raise _table_error(path, "top level must be a mapping")
    try:
        bounds = raw["boundaries"]
        hcl = raw["high_cost_long_term"]
        mild = raw["mild_high_cost"]
        rate = raw["subsidised_rate"]
        table = CapTable(
            caps=_read_caps(path, raw.get("tiers"), "tiers"),
            low_income_1_max_income=int(bounds["low_income_1_max_income"]),
            general_2_min_income_tax=int(bounds["general_2_min_income_tax"]),
            upper_min_income_tax=int(bounds["upper_min_income_tax"]),
            subsidised_rate_tenths=_RATE_TENTHS[float(rate)],
            high_cost_monthly_total_over=int(hcl["monthly_total_over"]),
            high_cost_min_months=int(hcl["min_months"]),
            high_cost_window_months=int(hcl["window_months"]),
            high_cost_tiers=frozenset(hcl["tiers"]),
            mild_monthly_total_over=int(mild["monthly_total_over"]),
            mild_min_months=int(mild["min_months"]),
            mild_window_months=int(mild["window_months"]),
            pediatric_caps=_read_caps(path, raw.get("pediatric_tiers"), "pediatric_tiers"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise
        raise _table_error(path, f"missing or malformed entry: {exc!r}") from exc
    if not table.high_cost_tiers <= set(TIERS):
        raise _table_error(path, "high_cost_long_term.tiers names an unknown tier")
    if not 0 < table.general_2_min_income_tax < table.upper_min_income_tax:
        raise _table_error(path, "boundaries must rise: 0 < general_2_min_income_tax < upper_min_income_tax")
    return table


def existing_caps() -> frozenset[int]:
    """The caps above 0 that exist (500 … 30,000円), from ``knowledge/tables/copay.yaml``.

    An other household member's cap must be one of them (FACTS §2 and the 小慢 table of §3).
    """
    return load_table().existing_caps()


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class CopayFacts:
    """What we know about the patient; ``None`` means unknown.

    Field names and meanings are exactly those of the ``nanbyo-bot copay`` contract. One
    addition the chat needs: a ``None`` inside ``household_caps`` is another recipient whose
    cap is unknown (「夫も受給者です、金額はわからない」); the split is then estimated as if
    everyone had the same cap (FACTS §3). ``facts_from_json`` does not accept it.
    """

    welfare: bool | None = None
    ventilator: bool | None = None
    tax_exempt: bool | None = None
    income: int | None = None
    income_tax: int | None = None
    high_cost_months: int | None = None
    medical_cost: int | None = None
    insurance_rate: float | None = None
    household_caps: tuple[int | None, ...] | None = None

    def __post_init__(self) -> None:
        # A dialog may hand over the parser's list; keep the facts immutable and hashable.
        if isinstance(self.household_caps, list):
            object.__setattr__(self, "household_caps", tuple(self.household_caps))


@dataclass(frozen=True)
class CopayResult:
    """One answer: tier, cap and payment, with the reasons in Japanese.

    Attributes:
        tier: 階層区分.
        column: 一般, 高額かつ長期 or 人工呼吸器等装着者.
        base_cap: the patient's own cap before any household split (yen).
        cap: the cap after the split (yen, rounded down).
        estimate: True when the split did not come out even (rounding rule unverified).
        rate: the share of the 10割 cost the patient pays (min(insurance rate, 0.2)).
        payment: this month's payment in yen, or None when medical_cost is unknown.
        reasons: Japanese sentences saying which rule decided each step.
        hints: Japanese sentences on what could lower the cap.
    """

    tier: Tier
    column: Column
    base_cap: int
    cap: int
    estimate: bool
    rate: float
    payment: int | None
    reasons: tuple[str, ...]
    hints: tuple[str, ...]


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _rate_tenths(rate: float) -> int | None:
    for known, tenths in _RATE_TENTHS.items():
        if abs(rate - known) < 1e-9:
            return tenths
    return None


def _check_flags(facts: CopayFacts) -> None:
    """welfare, ventilator and tax_exempt are true, false or unknown."""
    for name in ("welfare", "ventilator", "tax_exempt"):
        value = getattr(facts, name)
        if value is not None and not isinstance(value, bool):
            raise CopayError(f"{name} must be true, false or null, got {value!r}", field=name)


def _check_yen_amounts(facts: CopayFacts) -> None:
    """income, income_tax and medical_cost are whole yen between 0 and ``MAX_YEN``, or unknown."""
    for name in ("income", "income_tax", "medical_cost"):
        value = getattr(facts, name)
        if value is None:
            continue
        if not _is_int(value):
            raise CopayError(f"{name} must be a whole number of yen or null, got {value!r}", field=name)
        if value < 0:
            raise CopayError(f"{name} must not be negative, got {value}", field=name)
        if value > MAX_YEN:
            raise CopayError(f"{name} is out of range (more than {MAX_YEN:,} yen): {value}", field=name)


def _check_high_cost_months(facts: CopayFacts) -> None:
    """high_cost_months counts months of one year: 0 to 12, or unknown."""
    months = facts.high_cost_months
    if months is None:
        return
    if not _is_int(months):
        raise CopayError(f"high_cost_months must be a whole number or null, got {months!r}", field="high_cost_months")
    if not 0 <= months <= 12:
        raise CopayError(f"high_cost_months must be between 0 and 12, got {months}", field="high_cost_months")


def _check_insurance_rate(facts: CopayFacts) -> None:
    """insurance_rate is 1割, 2割 or 3割, or unknown."""
    rate = facts.insurance_rate
    if rate is None:
        return
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or _rate_tenths(float(rate)) is None:
        raise CopayError(f"insurance_rate must be 0.1, 0.2 or 0.3, got {rate!r}", field="insurance_rate")


def _check_household_cap(cap: object) -> None:
    """One other recipient's cap: whole yen a certificate can carry, or unknown (estimated in ``_split``)."""
    if cap is None:
        return
    if not _is_int(cap):
        raise CopayError(f"household_caps must hold whole numbers of yen, got {cap!r}", field="household_caps")
    if not 0 < cap <= MAX_HOUSEHOLD_CAP:
        raise CopayError(
            f"household_caps: each cap must be between 1 and {MAX_HOUSEHOLD_CAP:,} yen, got {cap}",
            field="household_caps",
        )


def _check_household_caps(facts: CopayFacts) -> None:
    """household_caps is a list of at most ``MAX_HOUSEHOLD_MEMBERS`` caps, or unknown."""
    caps = facts.household_caps
    if caps is None:
        return
    if not isinstance(caps, (tuple, list)):
        raise CopayError(f"household_caps must be a list of yen amounts or null, got {caps!r}", field="household_caps")
    if len(caps) > MAX_HOUSEHOLD_MEMBERS:
        raise CopayError(
            f"household_caps lists {len(caps)} people; at most {MAX_HOUSEHOLD_MEMBERS} are accepted",
            field="household_caps",
        )
    for cap in caps:
        _check_household_cap(cap)


def _check_tax_exempt_pays_no_tax(facts: CopayFacts) -> None:
    """A tax-exempt household pays no 所得割, so income_tax above 0 contradicts tax_exempt."""
    if facts.tax_exempt is True and facts.income_tax is not None and facts.income_tax > 0:
        raise CopayError(
            f"tax_exempt is true but income_tax is {facts.income_tax}: a tax-exempt household pays no 所得割",
            field="income_tax",
        )


# Run in this order: the first failing check names the field; the contradiction comes last,
# once income_tax is known to be a whole number.
_CHECKS: Final[tuple[Callable[[CopayFacts], None], ...]] = (
    _check_flags,
    _check_yen_amounts,
    _check_high_cost_months,
    _check_insurance_rate,
    _check_household_caps,
    _check_tax_exempt_pays_no_tax,
)


def validate_facts(facts: CopayFacts) -> None:
    """Check types, ranges and contradictions of the facts.

    Args:
        facts: the facts to check.

    Raises:
        CopayError: naming the field at fault (English message).
    """
    for check in _CHECKS:
        check(facts)


def facts_from_json(obj: Any) -> CopayFacts:
    """Build ``CopayFacts`` from a decoded JSON object of the copay contract.

    Missing keys and ``null`` mean unknown. Keys outside the contract are ignored.
    Whole-number floats (``80000.0``) are accepted for yen amounts and months.

    Args:
        obj: the decoded JSON value.

    Returns:
        The validated facts.

    Raises:
        CopayError: wrong type, out-of-range value or contradiction, naming the field.
    """
    if not isinstance(obj, dict):
        raise CopayError(f"facts must be a JSON object, got {type(obj).__name__}")

    def whole(name: str) -> int | None:
        value = obj.get(name)
        if value is None:
            return None
        if isinstance(value, float) and not isinstance(value, bool) and math.isfinite(value) and value.is_integer():
            return int(value)
        if not _is_int(value):
            raise CopayError(f"{name} must be a whole number or null, got {value!r}", field=name)
        return value

    def flag(name: str) -> bool | None:
        value = obj.get(name)
        if value is not None and not isinstance(value, bool):
            raise CopayError(f"{name} must be true, false or null, got {value!r}", field=name)
        return value

    rate = obj.get("insurance_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))):
        raise CopayError(f"insurance_rate must be 0.1, 0.2 or 0.3, got {rate!r}", field="insurance_rate")

    raw_caps = obj.get("household_caps")
    caps: tuple[int, ...] | None = None
    if raw_caps is not None:
        if not isinstance(raw_caps, list):
            raise CopayError(
                f"household_caps must be a list of yen amounts or null, got {raw_caps!r}", field="household_caps"
            )
        converted: list[int] = []
        for item in raw_caps:
            if isinstance(item, float) and math.isfinite(item) and item.is_integer():
                item = int(item)
            if not _is_int(item):
                raise CopayError(f"household_caps must hold whole numbers of yen, got {item!r}", field="household_caps")
            converted.append(item)
        caps = tuple(converted)

    facts = CopayFacts(
        welfare=flag("welfare"),
        ventilator=flag("ventilator"),
        tax_exempt=flag("tax_exempt"),
        income=whole("income"),
        income_tax=whole("income_tax"),
        high_cost_months=whole("high_cost_months"),
        medical_cost=whole("medical_cost"),
        insurance_rate=None if rate is None else float(rate),
        household_caps=caps,
    )
    validate_facts(facts)
    return facts


# --------------------------------------------------------------------------- decision


def _yen(amount: int) -> str:
    return f"{amount:,}円"


@dataclass(frozen=True)
class _Branch:
    """One way the facts can be completed: a tier and column with their reasons."""

    tier: Tier
    column: Column
    reasons: tuple[str, ...]
    assumed: frozenset[str]


def _tier_branches(facts: CopayFacts, table: CapTable) -> list[tuple[Tier, tuple[str, ...], frozenset[str]]]:
    """Every tier still possible, with the sentence that decides it."""
    out: list[tuple[Tier, tuple[str, ...], frozenset[str]]] = []
    if facts.welfare is True:
        return [("生活保護", ("生活保護を受けているため、階層区分は「生活保護」です。",), frozenset())]
    assumed_welfare: frozenset[str] = frozenset()
    if facts.welfare is None:
        out.append(("生活保護", ("生活保護を受けている場合は、階層区分は「生活保護」です。",), frozenset({"welfare"})))
        assumed_welfare = frozenset({"welfare"})

    # Taxed or not (FACTS §2: 均等割 only still counts as 課税).
    exempt_options: list[tuple[bool, str, frozenset[str]]] = []
    if facts.tax_exempt is True:
        exempt_options.append((True, "世帯が市町村民税非課税で、", frozenset()))
    elif facts.tax_exempt is False:
        exempt_options.append((False, "世帯が市町村民税課税で、", frozenset()))
    elif facts.income_tax is not None and facts.income_tax > 0:
        exempt_options.append((False, "世帯に所得割額があるため課税世帯として扱い、", frozenset()))
    else:
        exempt_options.append((True, "世帯全員が市町村民税非課税の場合、", frozenset({"tax_exempt"})))
        exempt_options.append((False, "世帯が市町村民税課税（均等割のみを含む）の場合、", frozenset({"tax_exempt"})))

    limit = table.low_income_1_max_income
    low2 = table.general_2_min_income_tax
    upper = table.upper_min_income_tax
    for exempt, prefix, assumed in exempt_options:
        assumed = assumed | assumed_welfare
        if exempt:
            income = facts.income
            if income is None:
                unknown_income = assumed | {"income"}
                out.append(
                    ("低所得1", (f"{prefix}ご本人の年収が{_yen(limit)}以下なら「低所得1」です。",), unknown_income)
                )
                out.append(
                    ("低所得2", (f"{prefix}ご本人の年収が{_yen(limit)}を超えるなら「低所得2」です。",), unknown_income)
                )
            elif income <= limit:
                text = f"{prefix}ご本人の年収が{_yen(income)}（{_yen(limit)}以下）のため「低所得1」です。"
                out.append(("低所得1", (text,), assumed))
            else:
                text = f"{prefix}ご本人の年収が{_yen(income)}（{_yen(limit)}超）のため「低所得2」です。"
                out.append(("低所得2", (text,), assumed))
            continue
        tax = facts.income_tax
        if tax is None:
            unknown = assumed | {"income_tax"}
            tax_sum = f"{prefix}世帯の所得割額の合計が"
            out.append(("一般所得1", (f"{tax_sum}{_yen(low2)}未満なら「一般所得1」です。",), unknown))
            out.append(("一般所得2", (f"{tax_sum}{_yen(low2)}以上{_yen(upper)}未満なら「一般所得2」です。",), unknown))
            out.append(("上位所得", (f"{tax_sum}{_yen(upper)}以上なら「上位所得」です。",), unknown))
        elif tax < low2:
            text = f"{prefix}世帯の所得割額の合計が{_yen(tax)}（{_yen(low2)}未満）のため「一般所得1」です。"
            if tax == 0:
                text += "所得割が0円でも、均等割が課税されていれば「一般所得1」になります。"
            out.append(("一般所得1", (text,), assumed))
        elif tax < upper:
            text = (
                f"{prefix}世帯の所得割額の合計が{_yen(tax)}（{_yen(low2)}以上{_yen(upper)}未満）"
                "のため「一般所得2」です。"
            )
            out.append(("一般所得2", (text,), assumed))
        else:
            text = f"{prefix}世帯の所得割額の合計が{_yen(tax)}（{_yen(upper)}以上）のため「上位所得」です。"
            out.append(("上位所得", (text,), assumed))
    return out


def _column_branches(
    facts: CopayFacts, table: CapTable, tier: Tier
) -> list[tuple[Column, tuple[str, ...], frozenset[str]]]:
    """Every column still possible for a tier, with the sentences that decide it."""
    if tier == "生活保護":
        column: Column = "人工呼吸器等装着者" if facts.ventilator is True else "一般"
        return [(column, ("生活保護の方の上限額は、どの区分でも0円です。",), frozenset())]

    out: list[tuple[Column, tuple[str, ...], frozenset[str]]] = []
    lead: tuple[str, ...] = ()
    assumed: frozenset[str] = frozenset()
    if facts.ventilator is True:
        text = "人工呼吸器等装着者として認定されているため、所得にかかわらず人工呼吸器等装着者の上限額になります。"
        return [("人工呼吸器等装着者", (text,), frozenset())]
    if facts.ventilator is None:
        text = "人工呼吸器等装着者として認定されている場合は、人工呼吸器等装着者の上限額になります。"
        out.append(("人工呼吸器等装着者", (text,), frozenset({"ventilator"})))
        lead = ("人工呼吸器等装着者でない場合の金額です。",)
        assumed = frozenset({"ventilator"})

    over = _yen(table.high_cost_monthly_total_over)
    need = table.high_cost_min_months
    months = facts.high_cost_months
    if tier not in table.high_cost_tiers:
        reasons = lead
        if months is not None and months >= need:
            reasons += ("低所得の区分では「高額かつ長期」に該当しても上限額は変わりません。",)
        out.append(("一般", reasons, assumed))
        return out
    if months is None:
        unknown = assumed | {"high_cost_months"}
        months_over = f"医療費総額（10割）が{over}を超えた月が"
        text = f"{months_over}直近12か月に{need}か月以上あれば「高額かつ長期」に該当します。"
        out.append(("高額かつ長期", lead + (text,), unknown))
        out.append(("一般", lead + (f"{months_over}{need}か月未満なら「一般」の上限額です。",), unknown))
    elif months >= need:
        out.append(
            (
                "高額かつ長期",
                lead
                + (
                    f"医療費総額（10割）が{over}を超えた月が直近12か月に{months}か月あり、{need}か月以上のため「高額かつ長期」に該当します"
                    "（変更申請が認められると、申請の翌月から適用されます）。",
                ),
                assumed,
            )
        )
    else:
        text = (
            f"医療費総額（10割）が{over}を超えた月は{months}か月で、"
            f"{need}か月未満のため「高額かつ長期」には該当しません。"
        )
        out.append(("一般", lead + (text,), assumed))
    return out


def _branches(facts: CopayFacts, table: CapTable) -> list[_Branch]:
    out: list[_Branch] = []
    for tier, tier_reasons, tier_assumed in _tier_branches(facts, table):
        for column, column_reasons, column_assumed in _column_branches(facts, table, tier):
            out.append(_Branch(tier, column, tier_reasons + column_reasons, tier_assumed | column_assumed))
    return out


def _split(base_cap: int, others: tuple[int | None, ...] | None) -> tuple[int, bool, tuple[str, ...]]:
    """按分 (FACTS §3): household cap = highest cap; own share = highest × own ÷ sum.

    A ``None`` among ``others`` is a recipient whose cap is unknown; it is taken as equal to
    the patient's own cap ("everyone has the same cap", FACTS §3), and the result is an estimate.
    """
    if others is None:
        text = (
            "同じ世帯にほかの受給者がいるかわからないため、按分はしていません。いる場合は上限額がこれより下がります。"
        )
        return base_cap, False, (text,)
    if not others or base_cap == 0:
        return base_cap, False, ()
    unknown = sum(1 for c in others if c is None)
    assumed = tuple(base_cap if c is None else c for c in others)
    highest = max(base_cap, *assumed)
    total = base_cap + sum(assumed)
    # The household total is the highest single cap, shared in proportion to each cap.
    share, remainder = divmod(highest * base_cap, total)
    if unknown:
        known = [c for c in others if c is not None]
        who = f"ほかの受給者が{len(others)}人いて、そのうち{unknown}人の上限額がわからないため"
        if not known:
            who = f"ほかの受給者が{unknown}人いて、その方の上限額がわからないため"
            sum_text = f"{_yen(base_cap)} ÷ {1 + unknown}人 = {_yen(share)}"
        else:
            sum_text = f"{_yen(highest)} × {_yen(base_cap)} ÷ {_yen(total)} = {_yen(share)}"
        text = (
            f"同じ世帯に{who}、その方の上限額もご本人と同じ{_yen(base_cap)}と仮定した概算です（按分）：{sum_text}。"
            "実際の額は、その方の受給者証の上限額で変わります。窓口でご確認ください。"
        )
        return share, True, (text,)
    listed = "、".join(_yen(c) for c in assumed)
    text = (
        f"同じ世帯にほかの受給者（上限額 {listed}）がいるため、世帯の上限額は最も高い{_yen(highest)}となり、"
        f"各自の上限額の割合で分けます（按分）：{_yen(highest)} × {_yen(base_cap)} ÷ {_yen(total)} = {_yen(share)}"
    )
    if remainder:
        # The rounding of a split that does not come out even is not published (FACTS §3 [NV]).
        text += "（割り切れないため1円未満を切り捨てた目安です。端数の扱いは窓口でご確認ください）。"
        return share, True, (text,)
    return share, False, (text + "。",)


def _rate(facts: CopayFacts, table: CapTable) -> tuple[int, str]:
    """Effective rate in tenths = min(insurance rate, 2割) (FACTS §5)."""
    subsidised = table.subsidised_rate_tenths
    if facts.insurance_rate is None:
        return subsidised, (
            f"ふだんの医療保険の負担割合がわからないため、{subsidised}割として計算しました"
            f"（ふだん1割の方は1割のままなので、支払いはこれより少なくなります）。"
        )
    tenths = _rate_tenths(float(facts.insurance_rate))
    assert tenths is not None  # validate_facts ran first
    if tenths > subsidised:
        return subsidised, f"ふだん{tenths}割負担の方は、受給者証があると{subsidised}割負担になります。"
    return tenths, f"ふだん{tenths}割負担の方は、受給者証があっても{tenths}割負担のままです。"


def _payment(cost: int, cap: int, tenths: int) -> tuple[int, str]:
    # Rounded down to the yen. Window rounding to 10円 is general insurance practice but is
    # not verified for this scheme (FACTS §5 [NV]), so we do not apply it.
    share = cost * tenths // 10
    if cap == 0:
        return 0, "上限額が0円のため、お支払いはありません。"
    if share <= cap:
        return share, (
            f"今月の医療費総額{_yen(cost)}の{tenths}割は{_yen(share)}で、上限額{_yen(cap)}以内のため、"
            f"お支払いは{_yen(share)}です。"
        )
    return cap, (
        f"今月の医療費総額{_yen(cost)}の{tenths}割は{_yen(share)}で、上限額{_yen(cap)}を超えるため、"
        f"お支払いは上限額の{_yen(cap)}です。"
    )


def _hints(facts: CopayFacts, table: CapTable, tier: Tier, column: Column) -> tuple[str, ...]:
    if tier == "生活保護":
        return ()
    hints: list[str] = []
    need = table.high_cost_min_months
    if tier in table.high_cost_tiers and column == "一般":
        lower = table.cap(tier, "高額かつ長期")
        now = ""
        if facts.high_cost_months is not None:
            now = f"（いまは{facts.high_cost_months}か月で、あと{need - facts.high_cost_months}か月です）"
        hints.append(
            f"医療費総額（10割）が{_yen(table.high_cost_monthly_total_over)}を超える月が直近12か月に{need}か月以上"
            f"になると「高額かつ長期」に該当し、変更申請で上限額が{_yen(lower)}に下がります{now}。"
            "自己負担上限額管理票に医療費総額を記入してもらっておきましょう。"
        )
    # Not offered to someone who just said they are not 人工呼吸器等装着者.
    if column != "人工呼吸器等装着者" and facts.ventilator is not False:
        vent = table.cap(tier, "人工呼吸器等装着者")
        hints.append(
            f"人工呼吸器などを常に装着していて「人工呼吸器等装着者」と認められると、上限額は{_yen(vent)}になります。"
        )
    return tuple(hints)


def _result(facts: CopayFacts, table: CapTable, branch: _Branch) -> CopayResult:
    base_cap = table.cap(branch.tier, branch.column)
    reasons = list(branch.reasons)
    reasons.append(f"「{branch.tier}」の{branch.column}の月額自己負担上限額は{_yen(base_cap)}です。")
    cap, estimate, split_reasons = _split(base_cap, facts.household_caps)
    if base_cap > 0:  # a cap of 0円 cannot be split lower
        reasons.extend(split_reasons)
    tenths, rate_reason = _rate(facts, table)
    payment: int | None = None
    # An assumed rate only matters for the payment, so it is mentioned only with a cost.
    if facts.medical_cost is not None or facts.insurance_rate is not None:
        reasons.append(rate_reason)
    if facts.medical_cost is not None:
        payment, payment_reason = _payment(facts.medical_cost, cap, tenths)
        reasons.append(payment_reason)
    return CopayResult(
        tier=branch.tier,
        column=branch.column,
        base_cap=base_cap,
        cap=cap,
        estimate=estimate,
        rate=tenths / 10,
        payment=payment,
        reasons=tuple(reasons),
        hints=_hints(facts, table, branch.tier, branch.column),
    )


def _all_results(facts: CopayFacts) -> list[tuple[CopayResult, frozenset[str]]]:
    validate_facts(facts)
    table = load_table()
    seen: set[tuple[object, ...]] = set()
    out: list[tuple[CopayResult, frozenset[str]]] = []
    for branch in _branches(facts, table):
        result = _result(facts, table, branch)
        key = (result.tier, result.column, result.cap, result.payment, result.estimate)
        if key in seen:
            continue
        seen.add(key)
        out.append((result, branch.assumed))
    out.sort(key=lambda item: (TIERS.index(item[0].tier), COLUMNS.index(item[0].column)))
    return out


def possible_results(facts: CopayFacts) -> list[CopayResult]:
    """Every distinct outcome still possible given what is known.

    Unknown facts that matter are branched on (e.g. ``income_tax`` unknown for a taxed
    household gives 一般所得1, 一般所得2 and 上位所得). Two unknowns are not branched on but
    assumed and said in the reasons: ``insurance_rate`` (2割, the most a patient pays) and
    ``household_caps`` (no split, the highest possible cap). A ``None`` inside
    ``household_caps`` (a recipient whose cap is unknown) gives an estimated split.

    Args:
        facts: what is known; ``None`` fields are unknown.

    Returns:
        The outcomes in table order (lowest tier first, then 一般, 高額かつ長期,
        人工呼吸器等装着者); one element when the facts decide.

    Raises:
        CopayError: the facts are contradictory or out of range.
    """
    return [result for result, _ in _all_results(facts)]


def calculate(facts: CopayFacts) -> CopayResult:
    """The single cap and payment the facts lead to.

    Args:
        facts: what is known; ``None`` fields are unknown.

    Returns:
        The result with Japanese reasons and hints.

    Raises:
        CopayError: the facts are contradictory or out of range, or not enough for one
            answer (then ``missing`` names the fields to ask for).
    """
    results = _all_results(facts)
    if len(results) == 1:
        return results[0][0]
    missing = tuple(name for name in _FIELDS if any(name in assumed for _, assumed in results))
    caps = ", ".join(sorted({f"{r.cap:,}" for r, _ in results}, key=lambda s: int(s.replace(",", ""))))
    raise CopayError(
        f"not enough facts for a single answer; unknown: {', '.join(missing)} (possible caps: {caps} yen)",
        missing=missing,
    )


def result_to_json(result: CopayResult) -> dict[str, Any]:
    """The contract's output object: tier, cap, payment (when known), explanation, estimate (when true).

    Args:
        result: a result of ``calculate``.

    Returns:
        A JSON-ready dict.
    """
    out: dict[str, Any] = {"tier": result.tier, "cap": result.cap}
    if result.payment is not None:
        out["payment"] = result.payment
    out["explanation"] = "".join(result.reasons)
    if result.estimate:
        out["estimate"] = True
    return out
