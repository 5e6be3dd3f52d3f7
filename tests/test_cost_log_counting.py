"""The counting rules of the cost log (handlers.calc.cost_log): every boundary, table-driven."""

from __future__ import annotations

import pytest

from handlers.calc.cost_log import RULES, cap_change, month_add, progress, window

HIGH, MILD = RULES
NOW = (2027, 6)


def months_back(n: int) -> tuple[int, int]:
    return month_add(NOW, -n)


@pytest.mark.parametrize(
    ("rule", "amount", "counts"),
    [
        (HIGH, 50_000, False),  # exactly the line is not "over" (FACTS §7, K3)
        (HIGH, 50_001, True),
        (HIGH, 49_999, False),
        (MILD, 33_330, False),  # exactly 33,330 does not count (FACTS §4, K1)
        (MILD, 33_331, True),
        (MILD, 33_300, False),  # the seed's typo line is below the real one
        (MILD, 0, False),
    ],
)
def test_a_month_counts_only_when_strictly_over_the_line(rule, amount, counts):
    assert progress({NOW: amount}, NOW, rule).count == (1 if counts else 0)


@pytest.mark.parametrize(
    ("back", "inside"),
    [(0, True), (1, True), (11, True), (12, False), (13, False), (-1, False)],  # -1: a month after the current one
)
def test_the_window_is_the_current_month_and_the_eleven_before(back, inside):
    assert progress({months_back(back): 60_000}, NOW, HIGH).count == (1 if inside else 0)


def test_the_window_crosses_the_year():
    assert window((2027, 2), 12)[0] == (2026, 3)
    assert window((2027, 2), 12)[-1] == (2027, 2)
    assert month_add((2026, 12), 1) == (2027, 1)


@pytest.mark.parametrize(
    ("rule", "over_months", "qualifies"),
    [(HIGH, 5, False), (HIGH, 6, True), (HIGH, 7, True), (MILD, 2, False), (MILD, 3, True)],
)
def test_the_rule_is_met_at_the_sixth_or_third_month(rule, over_months, qualifies):
    totals = {months_back(k): rule.over + 1 for k in range(over_months)}
    assert progress(totals, NOW, rule).qualifies is qualifies


def test_months_need_not_be_consecutive_and_exact_months_are_left_out():
    # K3: six months of 51,000 and one of exactly 50,000 → six count.
    totals = {months_back(k): 51_000 for k in (0, 2, 4, 6, 8, 10)} | {months_back(1): 50_000}
    result = progress(totals, NOW, HIGH)
    assert result.count == 6 and result.qualifies
    # K1: 40,000 / 30,000 / 35,000 / 33,330 / 50,000 → three months over 33,330.
    k1 = dict(zip([months_back(k) for k in range(4, -1, -1)], [40_000, 30_000, 35_000, 33_330, 50_000]))
    assert progress(k1, NOW, MILD).count == 3 and progress(k1, NOW, MILD).qualifies


def test_a_month_leaving_the_window_makes_the_rule_unmet_again():
    totals = {months_back(k): 60_000 for k in range(6, 12)}  # six months, the oldest 11 months back
    assert progress(totals, NOW, HIGH).qualifies
    assert not progress(totals, month_add(NOW, 1), HIGH).qualifies


@pytest.mark.parametrize(
    ("over_back", "expected"),
    [
        ((0,), month_add(NOW, 5)),  # one month now: five more months of the same
        ((0, 1, 2, 3, 4), month_add(NOW, 1)),  # five: next month
        ((0, 1, 2, 3, 11), month_add(NOW, 2)),  # the month 11 back leaves the window next month: one more is needed
    ],
)
def test_when_it_will_be_met_if_the_pattern_continues(over_back, expected):
    totals = {months_back(k): 50_001 for k in over_back}
    assert progress(totals, NOW, HIGH).projected == expected


def test_no_projection_when_the_latest_month_was_under_the_line():
    totals = {months_back(1): 80_000, NOW: 50_000}
    result = progress(totals, NOW, HIGH)
    assert result.projected is None and result.short == 5


def test_missing_months_are_named():
    result = progress({NOW: 60_000, months_back(2): 10_000}, NOW, MILD)
    assert months_back(1) in result.missing and NOW not in result.missing and len(result.missing) == 10


@pytest.mark.parametrize(
    ("tier", "before", "after"),
    [
        ("一般所得1", 10_000, 5_000),
        ("一般所得2", 20_000, 10_000),
        ("上位所得", 30_000, 20_000),
        ("低所得2", 5_000, 5_000),
        ("生活保護", 0, 0),
    ],
)
def test_the_cap_before_and_after_high_cost_by_tier(tier, before, after):
    (change,) = cap_change(tier)
    assert (change.before, change.after) == (before, after)


def test_an_unknown_tier_gives_the_three_tiers_it_lowers():
    assert [c.tier for c in cap_change(None)] == ["一般所得1", "一般所得2", "上位所得"]
