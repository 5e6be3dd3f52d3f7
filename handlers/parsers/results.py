"""What every parser returns besides its value: ``UNKNOWN``, ``Invalid(hint)`` and its kinds, ``Noted``.

What this is not: no reading of text; the parsers that build these live beside this module.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Unknown(enum.Enum):
    """Type of the ``UNKNOWN`` sentinel: the user does not know the answer."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = Unknown.UNKNOWN


@dataclass(frozen=True)
class Invalid:
    """The answer could not be read; ``hint`` is a kind Japanese re-ask.

    ``options`` are (label, value) pairs offered as buttons with the re-ask, e.g. the
    municipalities an ambiguous name could mean; each value must parse.
    """

    hint: str
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Noted:
    """A value read, with a sentence said back before the next question (``handlers.dialog``): how an
    answer that was not said as the slot's own was read (「毎月」 → 12か月), or that a hedged answer
    (「たぶん課税されてると思う」) was taken as it stands."""

    value: object
    note: str


class OtherKind(Invalid):
    """An answer read, but of another kind than the question asks (an amount at a date question, a
    date or a rough count at a count question): the hint is the short question that finds the right
    figure, so the message is not passed on to the FAQ (``handlers.amounts`` uses it for amounts)."""
