"""Buttons offered with the dialog questions, as (label, value) pairs.

Every value is plain ASCII (``"yes"``, ``"unknown"``, ``"0.3"``) and parses with the same parser as
typed text (a test checks each). What this is not: no parser; the labels are Japanese as shown.
"""

from __future__ import annotations

from typing import Final

UNKNOWN_CHOICE: Final[tuple[str, str]] = ("わからない", "unknown")
YES_NO_CHOICES: Final[tuple[tuple[str, str], ...]] = (("はい", "yes"), ("いいえ", "no"), UNKNOWN_CHOICE)
RATE_CHOICES: Final[tuple[tuple[str, str], ...]] = (("3割", "0.3"), ("2割", "0.2"), ("1割", "0.1"), UNKNOWN_CHOICE)
COUNT_CHOICES: Final[tuple[tuple[str, str], ...]] = (("ない", "0"), ("6か月以上", "6"), UNKNOWN_CHOICE)
HOUSEHOLD_CAPS_CHOICES: Final[tuple[tuple[str, str], ...]] = (("いない", "none"), UNKNOWN_CHOICE)
