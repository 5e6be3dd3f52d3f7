"""軽症高額該当 check (FACTS §4, examples §12.1 K1, K2)."""

from __future__ import annotations

import pytest

from handlers.calc.mild_high_cost import MildHighCostError, check_mild_high_cost


def test_K1_three_months_over_33330_qualify_and_exactly_33330_does_not_count() -> None:
    totals = [(2025, 1, 40_000), (2025, 2, 30_000), (2025, 3, 35_000), (2025, 4, 33_330), (2025, 5, 50_000)]
    result = check_mild_high_cost(totals)
    assert result.qualifies is True
    assert result.qualifying_months == ((2025, 1), (2025, 3), (2025, 5))
    assert result.met_in == (2025, 5)
    assert any("ちょうど33,330円" in r for r in result.reasons)


def test_K2_month_counts_on_the_10割_total_even_for_a_1割_payer() -> None:
    result = check_mild_high_cost([(2025, 1, 34_000)])
    assert result.qualifying_months == ((2025, 1),)
    assert any("10割" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("amount", "counts"),
    [(33_329, False), (33_330, False), (33_331, True), (0, False)],
    ids=["33329", "exactly-33330", "33331", "zero"],
)
def test_a_month_counts_only_when_strictly_over_33330(amount: int, counts: bool) -> None:
    assert bool(check_mild_high_cost([(2025, 4, amount)]).qualifying_months) is counts


def test_two_months_over_do_not_qualify_and_say_how_many_are_missing() -> None:
    result = check_mild_high_cost([(2025, 1, 40_000), (2025, 2, 40_000), (2025, 3, 10_000)])
    assert (result.qualifies, result.met_in) == (False, None)
    assert any("あと1か月" in r for r in result.reasons)


def test_criterion_is_met_in_the_third_qualifying_month_across_a_new_year() -> None:
    totals = [(2025, 2, 90_000), (2024, 11, 40_000), (2024, 12, 10_000), (2025, 1, 35_000), (2025, 3, 60_000)]
    result = check_mild_high_cost(totals)
    assert result.qualifying_months == ((2024, 11), (2025, 1), (2025, 2), (2025, 3))
    assert result.met_in == (2025, 2)


def test_twelve_months_all_over_qualify() -> None:
    totals = [(2025, m, 40_000) for m in range(1, 13)]
    result = check_mild_high_cost(totals)
    assert result.qualifies and len(result.qualifying_months) == 12


def test_no_months_do_not_qualify() -> None:
    result = check_mild_high_cost([])
    assert (result.qualifies, result.qualifying_months) == (False, ())


@pytest.mark.parametrize(
    "totals",
    [
        pytest.param([(2025, 13, 40_000)], id="month-13"),
        pytest.param([(2025, 0, 40_000)], id="month-0"),
        pytest.param([(2025, 1, -1)], id="negative"),
        pytest.param([(2025, 1, 1), (2025, 1, 2)], id="same-month-twice"),
        pytest.param([(2024, 1, 40_000), (2025, 1, 40_000)], id="thirteen-month-span"),
        pytest.param([(2025, m, 1) for m in range(1, 13)] + [(2026, 1, 1)], id="thirteen-entries"),
        pytest.param([(2025, 1)], id="missing-amount"),
        pytest.param([(2025, 1, "40000")], id="amount-string"),
        pytest.param([(2025, 1, True)], id="amount-bool"),
    ],
)
def test_malformed_monthly_totals_are_refused(totals: list[tuple[int, ...]]) -> None:
    with pytest.raises(MildHighCostError):
        check_mild_high_cost(totals)  # type: ignore[arg-type]
