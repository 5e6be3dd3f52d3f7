"""Parsers for answers typed in chat (or sent by a button) to the dialog questions.

What this is: one function per kind of answer — yes/no, yen amount, month count,
insurance rate, the other household members' caps, a date. Each returns the value,
``UNKNOWN`` (the user said わからない, which is an answer), or ``Invalid(hint)`` with a kind
Japanese hint for asking again. They never raise, whatever the input.

What this is not: no dialog state, no knowledge of which slot is being asked, and no I/O
apart from the cap table (``knowledge/tables/copay.yaml``, read once through
``handlers.calc.copay.existing_caps``) that says which household caps exist.
Range checks that belong to the rules (e.g. contradictions between answers) live in
``handlers.calc``.

Every value a button sends (``choices``: ASCII values such as ``"yes"``, ``"unknown"``,
``"0.3"``) parses with the same parser as typed text.

One module per kind: ``yesno``, ``yen`` (amounts and lists of them), ``counts`` (months counted),
``rate``, ``household`` (caps), ``dates`` and ``relative_dates`` (on ``eras``), ``month_amounts``
(the cost log), ``kinds`` (a figure of another kind); beneath them ``numbers`` (numerals), ``_text``
(the start every parser shares) and ``results`` (what they return). This package exposes the names
callers use.
"""

from __future__ import annotations

from handlers.parsers.choices import (
    COUNT_CHOICES,
    HOUSEHOLD_CAPS_CHOICES,
    RATE_CHOICES,
    UNKNOWN_CHOICE,
    YES_NO_CHOICES,
)
from handlers.parsers.common import HINT_TOO_LONG, MAX_ANSWER_CHARS, is_unknown_answer, only_unsure
from handlers.parsers.counts import (
    HIGH_COST_LINE,
    HINT_COUNT,
    HINT_COUNT_RANGE,
    HINT_ROUGH_COUNT,
    parse_count,
    read_months_count,
)
from handlers.parsers.dates import HINT_DATE_DAY, HINT_DATE_NEEDED, Prefer, parse_date
from handlers.parsers.eras import HINT_DATE, ImpossibleDate
from handlers.parsers.household import (
    HINT_HOUSEHOLD_CAP_RANGE,
    HINT_HOUSEHOLD_CAPS,
    MAX_CAP,
    CapsNeeded,
    other_recipients,
    parse_household_caps,
)
from handlers.parsers.kinds import amount_is_date, date_of_kind
from handlers.parsers.month_amounts import (
    HINT_MONTH_AMOUNTS,
    HINT_MONTH_FUTURE,
    HINT_MONTH_OLD,
    HINT_MONTH_TWICE,
    HINT_MONTH_UNKNOWN,
    MonthAmounts,
    parse_month_amounts,
)
from handlers.parsers.rate import HINT_RATE, Rate, parse_rate
from handlers.parsers.results import UNKNOWN, Invalid, Noted, OtherKind, Unknown
from handlers.parsers.yen import HINT_YEN, HINT_YEN_LIST, HINT_YEN_RANGE, MAX_YEN, parse_yen, parse_yen_list
from handlers.parsers.yesno import HINT_YES_NO, parse_yes_no

__all__ = [
    "COUNT_CHOICES",
    "HIGH_COST_LINE",
    "HINT_COUNT",
    "HINT_COUNT_RANGE",
    "HINT_DATE",
    "HINT_DATE_DAY",
    "HINT_DATE_NEEDED",
    "HINT_HOUSEHOLD_CAPS",
    "HINT_HOUSEHOLD_CAP_RANGE",
    "HINT_MONTH_AMOUNTS",
    "HINT_MONTH_FUTURE",
    "HINT_MONTH_OLD",
    "HINT_MONTH_TWICE",
    "HINT_MONTH_UNKNOWN",
    "HINT_RATE",
    "HINT_ROUGH_COUNT",
    "HINT_TOO_LONG",
    "HINT_YEN",
    "HINT_YEN_LIST",
    "HINT_YEN_RANGE",
    "HINT_YES_NO",
    "HOUSEHOLD_CAPS_CHOICES",
    "MAX_ANSWER_CHARS",
    "MAX_CAP",
    "MAX_YEN",
    "RATE_CHOICES",
    "UNKNOWN",
    "UNKNOWN_CHOICE",
    "YES_NO_CHOICES",
    "CapsNeeded",
    "ImpossibleDate",
    "Invalid",
    "MonthAmounts",
    "Noted",
    "OtherKind",
    "Prefer",
    "Rate",
    "Unknown",
    "amount_is_date",
    "date_of_kind",
    "is_unknown_answer",
    "only_unsure",
    "other_recipients",
    "parse_count",
    "parse_date",
    "parse_household_caps",
    "parse_month_amounts",
    "parse_rate",
    "parse_yen",
    "parse_yen_list",
    "parse_yes_no",
    "read_months_count",
]
