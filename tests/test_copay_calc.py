"""Copay cap and payment rules (FACTS §2, §3, §5, §7, §12) and the JSON contract shape."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from handlers.calc.copay import (
    COLUMNS,
    TIERS,
    CopayError,
    CopayFacts,
    calculate,
    facts_from_json,
    load_table,
    possible_results,
    result_to_json,
)
from tests.conftest import SHARED, needs_shared

EVAL_FILE = SHARED / "eval" / "copay.jsonl"

# A fully known, taxed household with no other recipients; cases change one thing.
BASE = CopayFacts(
    welfare=False,
    ventilator=False,
    tax_exempt=False,
    income=None,
    income_tax=100_000,
    high_cost_months=0,
    medical_cost=None,
    insurance_rate=0.3,
    household_caps=(),
)


def facts(**changes: Any) -> CopayFacts:
    return replace(BASE, **changes)


def _eval_cases() -> list[Any]:
    if not EVAL_FILE.exists():
        return [pytest.param(None, marks=needs_shared("eval/copay.jsonl"))]
    lines = [line for line in EVAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [pytest.param(json.loads(line), id=f"scenario{i + 1}") for i, line in enumerate(lines)]


@pytest.mark.parametrize("case", _eval_cases())
def test_shared_eval_scenario_gives_expected_tier_cap_and_payment(case: dict[str, Any]) -> None:
    out = result_to_json(calculate(facts_from_json(case["facts"])))
    for key, value in case["expect"].items():
        assert out[key] == value, (key, out)
    if "payment" not in case["expect"]:
        assert "payment" not in out


# --------------------------------------------------------------------------- table


@pytest.mark.parametrize(
    ("tier", "general", "long_term", "ventilator"),
    [
        ("生活保護", 0, 0, 0),
        ("低所得1", 2500, 2500, 1000),
        ("低所得2", 5000, 5000, 1000),
        ("一般所得1", 10000, 5000, 1000),
        ("一般所得2", 20000, 10000, 1000),
        ("上位所得", 30000, 20000, 1000),
    ],
)
def test_cap_table_file_matches_the_national_table(tier: str, general: int, long_term: int, ventilator: int) -> None:
    table = load_table()
    assert [table.cap(tier, c) for c in COLUMNS] == [general, long_term, ventilator]


def test_cap_table_boundaries_and_rate_are_the_published_ones() -> None:
    table = load_table()
    assert (table.low_income_1_max_income, table.general_2_min_income_tax, table.upper_min_income_tax) == (
        800_000,
        71_000,
        251_000,
    )
    assert table.subsidised_rate_tenths == 2
    assert (table.high_cost_monthly_total_over, table.high_cost_min_months) == (50_000, 6)
    assert table.high_cost_tiers == {"一般所得1", "一般所得2", "上位所得"}
    assert (table.mild_monthly_total_over, table.mild_min_months) == (33_330, 3)


# --------------------------------------------------------------------------- tiers and boundaries


@pytest.mark.parametrize(
    ("changes", "tier", "cap"),
    [
        pytest.param({"welfare": True}, "生活保護", 0, id="welfare"),
        pytest.param({"tax_exempt": True, "income_tax": None, "income": 0}, "低所得1", 2500, id="exempt-no-income"),
        pytest.param({"tax_exempt": True, "income_tax": None, "income": 800_000}, "低所得1", 2500, id="income-800000"),
        pytest.param({"tax_exempt": True, "income_tax": None, "income": 800_001}, "低所得2", 5000, id="income-800001"),
        pytest.param({"tax_exempt": True, "income_tax": 0, "income": 1_200_000}, "低所得2", 5000, id="exempt-tax-0"),
        pytest.param({"income_tax": 0}, "一般所得1", 10000, id="kintowari-only"),
        pytest.param({"income_tax": 70_999}, "一般所得1", 10000, id="tax-70999"),
        pytest.param({"income_tax": 71_000}, "一般所得2", 20000, id="tax-71000"),
        pytest.param({"income_tax": 250_999}, "一般所得2", 20000, id="tax-250999"),
        pytest.param({"income_tax": 251_000}, "上位所得", 30000, id="tax-251000"),
        pytest.param({"tax_exempt": None, "income_tax": 90_000}, "一般所得2", 20000, id="tax-given-implies-taxed"),
    ],
)
def test_tier_follows_the_income_boundaries(changes: dict[str, Any], tier: str, cap: int) -> None:
    result = calculate(facts(**changes))
    assert (result.tier, result.cap) == (tier, cap)


def test_welfare_patient_pays_nothing_even_with_income_facts() -> None:
    result = calculate(facts(welfare=True, income_tax=400_000, medical_cost=300_000))
    assert (result.tier, result.cap, result.payment) == ("生活保護", 0, 0)


def test_welfare_patient_on_a_ventilator_still_pays_nothing() -> None:
    result = calculate(facts(welfare=True, ventilator=True, medical_cost=300_000))
    assert (result.cap, result.payment) == (0, 0)


# --------------------------------------------------------------------------- columns


@pytest.mark.parametrize(
    ("changes", "column", "cap"),
    [
        pytest.param({"income_tax": 50_000, "high_cost_months": 5}, "一般", 10000, id="g1-5-months"),
        pytest.param({"income_tax": 50_000, "high_cost_months": 6}, "高額かつ長期", 5000, id="g1-6-months"),
        pytest.param({"income_tax": 100_000, "high_cost_months": 6}, "高額かつ長期", 10000, id="g2-6-months"),
        pytest.param({"income_tax": 300_000, "high_cost_months": 7}, "高額かつ長期", 20000, id="upper-7-months"),
        pytest.param({"income_tax": 300_000, "high_cost_months": 12}, "高額かつ長期", 20000, id="upper-12-months"),
        pytest.param({"income_tax": 300_000, "ventilator": True}, "人工呼吸器等装着者", 1000, id="upper-ventilator"),
        pytest.param(
            {"income_tax": 300_000, "ventilator": True, "high_cost_months": 12},
            "人工呼吸器等装着者",
            1000,
            id="vent-beats-long",
        ),
        pytest.param(
            {"tax_exempt": True, "income_tax": None, "income": 500_000, "ventilator": True},
            "人工呼吸器等装着者",
            1000,
            id="low1-ventilator",
        ),
        pytest.param(
            {"tax_exempt": True, "income_tax": None, "income": 1_200_000, "high_cost_months": 8},
            "一般",
            5000,
            id="low2-no-cut",
        ),
        pytest.param(
            {"tax_exempt": True, "income_tax": None, "income": 700_000, "high_cost_months": 12},
            "一般",
            2500,
            id="low1-no-cut",
        ),
    ],
)
def test_column_follows_ventilator_and_long_term_high_cost(changes: dict[str, Any], column: str, cap: int) -> None:
    result = calculate(facts(**changes))
    assert (result.column, result.cap) == (column, cap)


def test_long_term_high_cost_reason_says_it_applies_after_a_change_application() -> None:
    result = calculate(facts(income_tax=100_000, high_cost_months=6))
    assert any("変更申請" in r for r in result.reasons)


# --------------------------------------------------------------------------- 按分


@pytest.mark.parametrize(
    ("changes", "others", "cap", "estimate"),
    [
        pytest.param({"income_tax": 300_000}, (10_000,), 22_500, False, id="nara-30000-with-10000"),
        pytest.param({"income_tax": 30_000}, (10_000,), 5_000, False, id="g1-with-g1"),
        pytest.param({"income_tax": 100_000}, (20_000,), 10_000, False, id="E12-two-equal"),
        pytest.param({"income_tax": 300_000}, (30_000, 30_000), 10_000, False, id="E13-three-equal"),
        pytest.param({"income_tax": 50_000}, (5_000,), 6_666, True, id="E15-uneven-rounded-down"),
        pytest.param({"income_tax": 50_000}, (30_000,), 7_500, False, id="other-has-higher-cap"),
        pytest.param({"income_tax": 100_000}, (10_000, 5_000), 11_428, True, id="three-uneven"),
    ],
)
def test_household_split_uses_highest_cap_times_own_share(
    changes: dict[str, Any], others: tuple[int, ...], cap: int, estimate: bool
) -> None:
    result = calculate(facts(household_caps=others, **changes))
    assert (result.cap, result.estimate) == (cap, estimate)
    assert result.base_cap == load_table().cap(result.tier, result.column)


def test_split_that_is_not_even_says_it_is_an_estimate_in_json() -> None:
    out = result_to_json(calculate(facts(income_tax=50_000, household_caps=(5_000,))))
    assert out["estimate"] is True
    assert "窓口" in out["explanation"]


def test_no_other_recipients_means_no_split() -> None:
    result = calculate(facts(income_tax=300_000, household_caps=()))
    assert (result.cap, result.estimate) == (30_000, False)


def test_unknown_household_is_not_split_and_says_so() -> None:
    result = calculate(facts(income_tax=300_000, household_caps=None))
    assert result.cap == 30_000
    assert any("按分はしていません" in r for r in result.reasons)


# --------------------------------------------------------------------------- rate and payment


@pytest.mark.parametrize(
    ("rate", "effective"),
    [(0.1, 0.1), (0.2, 0.2), (0.3, 0.2)],
    ids=["1割-stays-1割", "2割-stays-2割", "3割-becomes-2割"],
)
def test_effective_rate_is_the_lower_of_insurance_rate_and_2割(rate: float, effective: float) -> None:
    assert calculate(facts(insurance_rate=rate, medical_cost=10_000)).rate == effective


def test_unknown_insurance_rate_is_taken_as_2割_and_said() -> None:
    result = calculate(facts(insurance_rate=None, medical_cost=60_000))
    assert (result.rate, result.payment) == (0.2, 12_000)
    assert any("わからないため" in r and "2割" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("changes", "cost", "tier", "cap", "payment"),
    [
        pytest.param({"income_tax": 50_000, "high_cost_months": 2}, 120_000, "一般所得1", 10_000, 10_000, id="E1"),
        pytest.param({"income_tax": 300_000}, 100_000, "上位所得", 30_000, 20_000, id="E2"),
        pytest.param({"income_tax": 300_000, "high_cost_months": 7}, 100_000, "上位所得", 20_000, 20_000, id="E3"),
        pytest.param({"income_tax": 100_000, "high_cost_months": 6}, 300_000, "一般所得2", 10_000, 10_000, id="E4"),
        pytest.param({"income_tax": 71_000, "high_cost_months": 5}, 60_000, "一般所得2", 20_000, 12_000, id="E5"),
        pytest.param(
            {"tax_exempt": True, "income_tax": None, "income": 780_000}, 50_000, "低所得1", 2_500, 2_500, id="E6"
        ),
        pytest.param(
            {"tax_exempt": True, "income_tax": None, "income": 1_200_000, "high_cost_months": 8},
            200_000,
            "低所得2",
            5_000,
            5_000,
            id="E7",
        ),
        pytest.param({"income_tax": 300_000, "ventilator": True}, 500_000, "上位所得", 1_000, 1_000, id="E8"),
        pytest.param({"welfare": True, "ventilator": True}, 300_000, "生活保護", 0, 0, id="E9"),
        pytest.param({"income_tax": 100_000, "insurance_rate": 0.1}, 60_000, "一般所得2", 20_000, 6_000, id="E10"),
        pytest.param({"income_tax": 100_000, "insurance_rate": 0.1}, 300_000, "一般所得2", 20_000, 20_000, id="E11"),
        pytest.param(
            {"income_tax": 100_000, "household_caps": (20_000,)}, 120_000, "一般所得2", 10_000, 10_000, id="E12"
        ),
        pytest.param(
            {"income_tax": 300_000, "household_caps": (30_000, 30_000)}, 40_000, "上位所得", 10_000, 8_000, id="E13"
        ),
        pytest.param(
            {"income_tax": 300_000, "household_caps": (10_000,)}, 200_000, "上位所得", 22_500, 22_500, id="E14"
        ),
        pytest.param({"income_tax": 0}, 30_000, "一般所得1", 10_000, 6_000, id="E16"),
        pytest.param({"income_tax": 50_000}, 50_001, "一般所得1", 10_000, 10_000, id="payment-at-cap"),
        pytest.param({"income_tax": 50_000}, 33_335, "一般所得1", 10_000, 6_667, id="payment-rounded-down"),
        pytest.param({"income_tax": 50_000}, 0, "一般所得1", 10_000, 0, id="no-cost-no-payment"),
    ],
)
def test_payment_is_the_lower_of_cap_and_rate_times_cost(
    changes: dict[str, Any], cost: int, tier: str, cap: int, payment: int
) -> None:
    result = calculate(facts(medical_cost=cost, **changes))
    assert (result.tier, result.cap, result.payment) == (tier, cap, payment)


@pytest.mark.parametrize(
    ("changes", "cap"),
    [
        pytest.param({"high_cost_months": 6}, 5_000, id="K3-six-months-counted"),
        pytest.param({"high_cost_months": 4}, 10_000, id="K4-only-four-count"),
    ],
)
def test_long_term_high_cost_uses_the_callers_month_count(changes: dict[str, Any], cap: int) -> None:
    assert calculate(facts(income_tax=50_000, **changes)).cap == cap


def test_no_medical_cost_means_no_payment() -> None:
    result = calculate(facts(medical_cost=None))
    assert result.payment is None
    assert "payment" not in result_to_json(result)


# --------------------------------------------------------------------------- hints


def test_general_income_patient_is_told_long_term_high_cost_would_lower_the_cap() -> None:
    result = calculate(facts(income_tax=50_000, high_cost_months=4))
    assert any("高額かつ長期" in h and "5,000円" in h and "あと2か月" in h for h in result.hints)


def test_patient_is_told_ventilator_approval_means_1000_yen() -> None:
    from handlers.calc.copay import possible_results

    results = possible_results(facts(income_tax=300_000, ventilator=None))  # not known yet
    ordinary = next(r for r in results if r.column != "人工呼吸器等装着者")
    assert any("1,000円" in h for h in ordinary.hints)


def test_no_ventilator_hint_after_the_patient_said_no() -> None:
    result = calculate(facts(income_tax=300_000, ventilator=False))
    assert not any("人工呼吸器" in h for h in result.hints)


def test_welfare_cap_of_zero_says_nothing_about_going_lower() -> None:
    result = calculate(facts(welfare=True))
    assert result.cap == 0 and result.hints == ()
    assert not any("下がります" in r for r in result.reasons)


def test_low_income_patient_gets_no_long_term_hint() -> None:
    result = calculate(facts(tax_exempt=True, income_tax=None, income=700_000))
    assert not any("高額かつ長期" in h for h in result.hints)


def test_welfare_patient_gets_no_hints() -> None:
    assert calculate(facts(welfare=True)).hints == ()


# --------------------------------------------------------------------------- unknown facts


def test_unknown_income_tax_lists_the_three_taxed_tiers() -> None:
    results = possible_results(facts(income_tax=None))
    assert [(r.tier, r.cap) for r in results] == [("一般所得1", 10_000), ("一般所得2", 20_000), ("上位所得", 30_000)]


def test_unknown_income_of_exempt_household_lists_both_low_income_tiers() -> None:
    results = possible_results(facts(tax_exempt=True, income_tax=None, income=None))
    assert [(r.tier, r.cap) for r in results] == [("低所得1", 2_500), ("低所得2", 5_000)]


def test_unknown_tax_status_with_zero_income_tax_includes_low_income_and_general_1() -> None:
    results = possible_results(facts(tax_exempt=None, income_tax=0, income=None))
    assert [r.tier for r in results] == ["低所得1", "低所得2", "一般所得1"]


def test_unknown_welfare_includes_the_welfare_tier() -> None:
    results = possible_results(facts(welfare=None))
    assert [r.tier for r in results] == ["生活保護", "一般所得2"]


def test_unknown_months_show_both_general_and_long_term_caps() -> None:
    results = possible_results(facts(income_tax=100_000, high_cost_months=None))
    assert [(r.column, r.cap) for r in results] == [("一般", 20_000), ("高額かつ長期", 10_000)]


def test_unknown_ventilator_shows_the_1000_yen_cap_as_possible() -> None:
    results = possible_results(facts(ventilator=None))
    assert [r.cap for r in results] == [20_000, 1_000]


def test_nothing_known_lists_every_cap_of_the_table() -> None:
    results = possible_results(CopayFacts())
    assert {r.tier for r in results} == set(TIERS)
    assert len(results) == 14


def test_known_facts_give_exactly_one_possible_result() -> None:
    assert possible_results(BASE) == [calculate(BASE)]


def test_months_do_not_matter_for_low_income_so_unknown_months_still_answer() -> None:
    result = calculate(facts(tax_exempt=True, income_tax=None, income=700_000, high_cost_months=None))
    assert result.cap == 2_500


def test_calculate_names_the_missing_facts_when_several_answers_remain() -> None:
    with pytest.raises(CopayError) as info:
        calculate(facts(income_tax=None, high_cost_months=None))
    assert info.value.missing == ("income_tax", "high_cost_months")


def test_conditional_reason_reads_as_a_condition() -> None:
    first = possible_results(facts(income_tax=None))[0]
    assert any("未満なら" in r for r in first.reasons)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        pytest.param({"income": -1}, "income", id="negative-income"),
        pytest.param({"income_tax": -5}, "income_tax", id="negative-tax"),
        pytest.param({"medical_cost": -100}, "medical_cost", id="negative-cost"),
        pytest.param({"medical_cost": 10**12}, "medical_cost", id="huge-cost"),
        pytest.param({"insurance_rate": 0.25}, "insurance_rate", id="rate-0.25"),
        pytest.param({"insurance_rate": 3}, "insurance_rate", id="rate-3"),
        pytest.param({"insurance_rate": "0.3"}, "insurance_rate", id="rate-string"),
        pytest.param({"insurance_rate": True}, "insurance_rate", id="rate-bool"),
        pytest.param({"high_cost_months": 13}, "high_cost_months", id="months-13"),
        pytest.param({"high_cost_months": -1}, "high_cost_months", id="months-negative"),
        pytest.param({"high_cost_months": 2.5}, "high_cost_months", id="months-fraction"),
        pytest.param({"welfare": "yes"}, "welfare", id="welfare-string"),
        pytest.param({"ventilator": 1}, "ventilator", id="ventilator-int"),
        pytest.param({"income": "780000"}, "income", id="income-string"),
        pytest.param({"income": True}, "income", id="income-bool"),
        pytest.param({"household_caps": 10000}, "household_caps", id="caps-not-list"),
        pytest.param({"household_caps": [0]}, "household_caps", id="caps-zero"),
        pytest.param({"household_caps": [-2500]}, "household_caps", id="caps-negative"),
        pytest.param({"household_caps": [50000]}, "household_caps", id="caps-too-big"),
        pytest.param({"household_caps": ["10000"]}, "household_caps", id="caps-string"),
        pytest.param({"household_caps": [1000] * 11}, "household_caps", id="caps-too-many"),
        pytest.param({"tax_exempt": True, "income_tax": 80000}, "income_tax", id="exempt-with-tax"),
    ],
)
def test_wrong_or_contradictory_facts_are_refused_naming_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(CopayError) as info:
        facts_from_json(obj)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize("obj", [None, [], "facts", 3], ids=["null", "list", "string", "number"])
def test_facts_that_are_not_an_object_are_refused(obj: Any) -> None:
    with pytest.raises(CopayError, match="JSON object"):
        facts_from_json(obj)


def test_calculate_validates_facts_built_in_code() -> None:
    with pytest.raises(CopayError):
        calculate(facts(income_tax=-1))


def test_missing_keys_and_nulls_are_unknown() -> None:
    assert facts_from_json({"income_tax": None}) == CopayFacts()


def test_whole_number_floats_and_extra_keys_are_accepted() -> None:
    parsed = facts_from_json({"income_tax": 80000.0, "household_caps": [10000.0], "note": "x"})
    assert (parsed.income_tax, parsed.household_caps) == (80000, (10000,))


def test_welfare_with_income_facts_is_not_a_contradiction() -> None:
    parsed = facts_from_json({"welfare": True, "tax_exempt": False, "income_tax": 300000})
    assert calculate(parsed).tier == "生活保護"


# --------------------------------------------------------------------------- JSON shape


def test_json_output_has_exactly_the_contract_keys() -> None:
    out = result_to_json(calculate(facts(medical_cost=120_000)))
    assert set(out) == {"tier", "cap", "payment", "explanation"}
    assert isinstance(out["cap"], int) and isinstance(out["payment"], int)


def test_explanation_is_the_reasons_joined() -> None:
    result = calculate(facts(medical_cost=120_000))
    assert result_to_json(result)["explanation"] == "".join(result.reasons)
    assert "一般所得2" in result_to_json(result)["explanation"]
