"""Emergencies, thoughts of suicide, requests for medical judgement, other services.

Checked before the FAQ (emergencies before everything, even an open dialog),
with phrases kept as data in ``knowledge/safety.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot.nlp.normalize import fold
from knowledge import KnowledgeBase
from knowledge.models import Redirect


class Safety(str, Enum):
    EMERGENCY = "emergency"
    CRISIS = "crisis"
    MEDICAL = "medical"


@dataclass(frozen=True)
class _Lexicon:
    emergency: tuple[str, ...]
    crisis: tuple[str, ...]
    medical: tuple[str, ...]
    redirects: tuple[tuple[Redirect, tuple[str, ...]], ...]
    domain: tuple[str, ...]


_CACHE: dict[int, _Lexicon] = {}


def _lexicon(kb: KnowledgeBase) -> _Lexicon:
    lex = _CACHE.get(id(kb.safety))
    if lex is None:
        s = kb.safety

        def f(words: list[str]) -> tuple[str, ...]:
            return tuple(w for w in (fold(x) for x in words) if w)

        lex = _Lexicon(f(s.emergency), f(s.crisis), f(s.medical), tuple((r, f(r.words)) for r in s.redirects),
                       f(s.domain_words))
        _CACHE[id(kb.safety)] = lex
    return lex


def classify(kb: KnowledgeBase, text: str) -> Safety | None:
    """Which safety path a message needs, most urgent first; None for an ordinary message."""
    folded = fold(text)
    lex = _lexicon(kb)
    if any(p in folded for p in lex.crisis):
        return Safety.CRISIS
    if any(p in folded for p in lex.emergency):
        return Safety.EMERGENCY
    if any(p in folded for p in lex.medical):
        return Safety.MEDICAL
    return None


def reply_text(kb: KnowledgeBase, kind: Safety) -> str:
    s = kb.safety
    return {Safety.EMERGENCY: s.emergency_reply, Safety.CRISIS: s.crisis_reply, Safety.MEDICAL: s.medical_reply}[kind]


def redirect_for(kb: KnowledgeBase, text: str) -> Redirect | None:
    """The other service a message is about, if any (see ``Redirect.strict``)."""
    folded = fold(text)
    for redirect, words in _lexicon(kb).redirects:
        if any(w in folded for w in words):
            return redirect
    return None


def mentions_domain(kb: KnowledgeBase, text: str) -> bool:
    """Whether the text uses this bot's own vocabulary (難病, 受給者証, 上限額 …)."""
    folded = fold(text)
    return any(w in folded for w in _lexicon(kb).domain)
