"""Redaction of what users typed, for the operator's statistics.

Digits (dates, amounts, phone and card numbers) and personal names are
removed before an unanswered question is kept; nothing else of a user's text
is ever stored or logged.
"""

from __future__ import annotations

import re
import unicodedata

from bot.nlp.matcher import _sudachi

MAX_KEPT = 100
_EMAIL = re.compile(r"\S+@\S+")
_SPACE = re.compile(r"\s+")


def redact(text: str) -> str:
    """The text without digits, e-mail addresses or personal names, at most 100 characters."""
    text = unicodedata.normalize("NFKC", text)
    text = _EMAIL.sub("＊", text)
    tok = _sudachi()
    if tok is not None:
        parts = []
        for m in tok.tokenize(text[:2000]):
            pos = m.part_of_speech()
            parts.append("＊" if pos[1] == "固有名詞" and pos[2] == "人名" else m.surface())
        text = "".join(parts)
    text = re.sub(r"[0-9]+", "#", text)  # after NFKC, full-width digits are ASCII too
    return _SPACE.sub(" ", text).strip()[:MAX_KEPT]
