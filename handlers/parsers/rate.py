"""The usual insurance copay rate: 3割, 30%, 0.3, 3 → 0.3 (likewise 2割 and 1割).

What this is not: the copay arithmetic (``handlers.calc``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

from handlers.parsers.common import begin
from handlers.parsers.numbers import NEGATIVE, single_number
from handlers.parsers.results import Invalid, Unknown
from nlp.text import Text

Rate = float  # one of 0.1, 0.2, 0.3 (a Literal cannot hold floats)

HINT_RATE: Final[str] = (
    "ふだんの窓口での負担割合を『3割』『2割』『1割』のように教えてください。"
    "保険証や資格確認書に書かれています。わからなければ『わからない』と送ってください。"
)

_RATES: Final[dict[Fraction, Rate]] = {Fraction(1, 10): 0.1, Fraction(2, 10): 0.2, Fraction(3, 10): 0.3}


def parse_rate(text: Text | str) -> Rate | Unknown | Invalid:
    """Read the usual insurance copay rate.

    "3割" / "３割" / "30%" / "0.3" / "3" → 0.3; likewise 2割 → 0.2 and 1割 → 0.1.
    Button values: "0.3", "0.2", "0.1", "unknown".

    Args:
        text: the answer.

    Returns:
        0.1, 0.2 or 0.3, ``UNKNOWN`` or ``Invalid(hint)``.
    """
    t = begin(text, HINT_RATE)
    if not isinstance(t, str):
        return t
    found = single_number(t, bare_decimal=True)
    if not isinstance(found, tuple) or NEGATIVE.search(t):
        return Invalid(HINT_RATE)
    value, _before, after = found
    if after.startswith("割"):
        rate = value / 10
    elif after.startswith(("%", "ぱーせんと")):
        rate = value / 100
    elif re.match(r"^[^円月年日人回か]*$", after):
        if value in _RATES:
            rate = value
        elif value in (1, 2, 3):
            rate = value / 10
        elif value in (10, 20, 30):
            rate = value / 100
        else:
            return Invalid(HINT_RATE)
    else:
        return Invalid(HINT_RATE)
    return _RATES.get(rate, Invalid(HINT_RATE))
