"""Pure calculations of the 特定医療費（指定難病） rules: copay cap, start date, 軽症高額.

Each module takes plain facts and returns frozen results with Japanese reasons.
Nothing here talks to a user, a channel or a database; the dialogs and the
``nanbyo-bot copay`` command call these functions.
"""

from handlers.calc.copay import (
    CopayError,
    CopayFacts,
    CopayResult,
    calculate,
    facts_from_json,
    possible_results,
    result_to_json,
)

__all__ = [
    "CopayError",
    "CopayFacts",
    "CopayResult",
    "calculate",
    "facts_from_json",
    "possible_results",
    "result_to_json",
]
