"""Earliest subsidy start date (FACTS §8, examples §12.2 D1–D7)."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.calc.start_date import (
    ACCEPTED_REASONS,
    DELAY_REASONS,
    NOT_ACCEPTED_REASONS,
    SCHEME_START,
    StartDateError,
    delay_reason,
    earliest_start,
    mild_high_cost_start,
    months_before,
)


@pytest.mark.parametrize(
    ("diagnosis", "received", "unavoidable", "start"),
    [
        pytest.param(date(2025, 6, 1), date(2025, 6, 20), False, date(2025, 6, 1), id="D1-diagnosis-within-a-month"),
        pytest.param(date(2025, 4, 10), date(2025, 6, 20), False, date(2025, 5, 20), id="D2-one-month-back"),
        pytest.param(date(2025, 4, 10), date(2025, 6, 20), True, date(2025, 4, 10), id="D3-hospitalised"),
        pytest.param(date(2025, 1, 15), date(2025, 6, 20), True, date(2025, 3, 20), id="D4-three-month-limit"),
        pytest.param(date(2023, 9, 15), date(2023, 10, 10), False, date(2023, 10, 1), id="D5-floor-2023-10-01"),
        pytest.param(date(2025, 5, 1), date(2025, 6, 20), False, date(2025, 5, 20), id="D7-busy-at-work"),
        pytest.param(date(2025, 6, 20), date(2025, 6, 20), False, date(2025, 6, 20), id="diagnosed-on-the-day"),
        pytest.param(date(2025, 5, 20), date(2025, 6, 20), False, date(2025, 5, 20), id="exactly-one-month"),
    ],
)
def test_start_is_the_later_of_diagnosis_and_the_look_back_limit(
    diagnosis: date, received: date, unavoidable: bool, start: date
) -> None:
    assert earliest_start(diagnosis, received, unavoidable_reason=unavoidable).start == start


def test_look_back_is_three_months_with_an_accepted_reason() -> None:
    result = earliest_start(date(2025, 1, 15), date(2025, 6, 20), unavoidable_reason=True)
    assert (result.months_back, result.look_back_limit) == (3, date(2025, 3, 20))


def test_floor_is_explained_when_it_decides() -> None:
    result = earliest_start(date(2023, 9, 15), date(2023, 10, 10))
    assert any("2023年10月1日より前にはさかのぼれません" in r for r in result.reasons)


def test_application_before_october_2023_starts_on_the_application_date() -> None:
    result = earliest_start(date(2023, 8, 1), date(2023, 9, 20))
    assert (result.start, result.months_back) == (date(2023, 9, 20), 0)


@pytest.mark.parametrize(
    ("received", "months", "limit"),
    [
        pytest.param(date(2025, 3, 31), 1, date(2025, 2, 28), id="3-31-to-2-28"),
        pytest.param(date(2024, 3, 31), 1, date(2024, 2, 29), id="leap-year-2-29"),
        pytest.param(date(2025, 5, 31), 3, date(2025, 2, 28), id="three-months-from-5-31"),
        pytest.param(date(2025, 7, 31), 1, date(2025, 6, 30), id="7-31-to-6-30"),
    ],
)
def test_missing_day_a_month_back_becomes_that_months_end_and_is_flagged(
    received: date, months: int, limit: date
) -> None:
    result = earliest_start(date(2024, 1, 1), received, unavoidable_reason=months == 3)
    assert (result.look_back_limit, result.start, result.day_adjusted) == (limit, limit, True)
    assert any("窓口でご確認ください" in r for r in result.reasons)


def test_existing_day_a_month_back_is_not_flagged() -> None:
    assert earliest_start(date(2025, 1, 1), date(2025, 6, 20)).day_adjusted is False


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2025, 1, 31), 1, (date(2024, 12, 31), False)),
        (date(2025, 3, 30), 1, (date(2025, 2, 28), True)),
        (date(2025, 6, 20), 3, (date(2025, 3, 20), False)),
        (date(2025, 6, 20), 0, (date(2025, 6, 20), False)),
    ],
)
def test_months_before_keeps_the_day_or_uses_the_month_end(day: date, months: int, expected: tuple[date, bool]) -> None:
    assert months_before(day, months) == expected


def test_diagnosis_after_receipt_is_refused() -> None:
    with pytest.raises(StartDateError):
        earliest_start(date(2025, 7, 1), date(2025, 6, 20))


# --------------------------------------------------------------------------- 軽症高額


@pytest.mark.parametrize(
    ("met_on", "received", "unavoidable", "start"),
    [
        pytest.param(date(2025, 5, 12), date(2025, 6, 5), False, date(2025, 5, 13), id="D6-day-after"),
        pytest.param(date(2025, 3, 1), date(2025, 6, 5), False, date(2025, 5, 5), id="one-month-limit"),
        pytest.param(date(2025, 3, 1), date(2025, 6, 5), True, date(2025, 3, 5), id="three-month-limit"),
        pytest.param(date(2023, 9, 20), date(2023, 10, 5), False, date(2023, 10, 1), id="floor"),
        pytest.param(date(2025, 5, 31), date(2025, 6, 5), False, date(2025, 6, 1), id="day-after-month-end"),
    ],
)
def test_mild_high_cost_starts_the_day_after_the_criterion_is_met(
    met_on: date, received: date, unavoidable: bool, start: date
) -> None:
    assert mild_high_cost_start(met_on, received, unavoidable_reason=unavoidable).start == start


def test_mild_high_cost_start_says_the_met_day_is_a_reading() -> None:
    result = mild_high_cost_start(date(2025, 5, 12), date(2025, 6, 5))
    assert any("目安" in r for r in result.reasons)


def test_criterion_met_after_receipt_is_refused() -> None:
    with pytest.raises(StartDateError):
        mild_high_cost_start(date(2025, 6, 6), date(2025, 6, 5))


# --------------------------------------------------------------------------- delay reasons


@pytest.mark.parametrize("value", ["late_certificate", "hospitalised", "disaster"])
def test_published_unavoidable_reasons_are_accepted(value: str) -> None:
    reason = delay_reason(value)
    assert reason is not None and reason.accepted is True


@pytest.mark.parametrize("value", ["diagnosis_took_time", "work", "child_care", "forgot", "bereavement", "moving"])
def test_everyday_reasons_are_not_accepted(value: str) -> None:
    reason = delay_reason(value)
    assert reason is not None and reason.accepted is False


def test_other_reasons_are_left_to_the_office() -> None:
    reason = delay_reason("other")
    assert reason is not None and reason.accepted is None


def test_reason_lists_partition_the_reasons_with_ascii_values() -> None:
    assert len({r.value for r in DELAY_REASONS}) == len(DELAY_REASONS)
    assert all(r.value.isascii() and r.label for r in DELAY_REASONS)
    assert set(ACCEPTED_REASONS).isdisjoint(NOT_ACCEPTED_REASONS)
    assert delay_reason("nope") is None


def test_scheme_start_is_october_2023() -> None:
    assert SCHEME_START == date(2023, 10, 1)
