"""The consultation: answer a question from the knowledge base, or say honestly that we do not know.

``consult`` is shared by the chat (through the router) and by ``nanbyo-bot ask``
and ``nanbyo-bot eval``, so all three answer the same way.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field

from bot.messages import Choice, Reply
from bot.nlp.matcher import Match, Matcher
from bot.nlp.normalize import fold, strip_fillers
from handlers.base import office_hint, topic_choice
from handlers.copay import CALCULATOR_FOR_TOPIC
from handlers.office import index_for, office_block
from handlers.safety import Safety, classify, mentions_domain, redirect_for, reply_text
from knowledge import KnowledgeBase

# Confidence (0-100, see Matcher) needed to answer. Below it the bot does not
# guess: it offers the closest topics and names the office to ask.
ANSWER_THRESHOLD = 50.0
# When the question names another service (介護保険, 障害年金 …), a topic must match much better.
REDIRECT_THRESHOLD = 75.0
SUGGEST_THRESHOLD = 20.0


@dataclass(frozen=True)
class Consultation:
    topic: str | None
    score: float
    text: str
    alternatives: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    kind: str = "answer"  # answer | fallback | redirect | emergency | crisis | medical
    candidates: tuple[Match, ...] = field(default=(), compare=False)
    municipality: str | None = None  # named in the question, if any

    def reply(self) -> Reply:
        return Reply(self.text, choices=self.choices, topic=self.topic, kind=self.kind)


def render_topic(kb: KnowledgeBase, topic_id: str, municipality: str | None = None) -> tuple[str, tuple[Choice, ...]]:
    """The full answer of a topic: text, the user's office when relevant, and the source."""
    topic = kb.topics[topic_id]
    parts = [topic.answer.strip()]
    if municipality and topic_id in kb.prefecture.office_topics:
        idx = index_for(kb.prefecture)
        parts.append(office_block(kb.prefecture, idx.office_of(municipality), municipality))
    parts.append(kb.cite(topic))
    choices = tuple(topic_choice(kb, rel) for rel in topic.related[:3])
    calculator = CALCULATOR_FOR_TOPIC.get(topic_id)
    if calculator is not None:
        choices = (calculator,) + choices
    return "\n\n".join(parts), choices


def consult(kb: KnowledgeBase, matcher: Matcher, text: str, municipality: str | None = None) -> Consultation:
    """Answer ``text`` from the knowledge base (see module docstring).

    Args:
        municipality: the user's municipality if known; the answer then names their office.
    """
    safety = classify(kb, text)
    if safety is not None:
        choices = () if safety is not Safety.MEDICAL else (Choice("メニュー", "menu"),)
        return Consultation(None, 0.0, reply_text(kb, safety), kind=safety.value, choices=choices)

    found = index_for(kb.prefecture).find(text)
    if found and found.municipality:
        municipality = found.municipality

    matches = matcher.rank(text, limit=5)
    best = matches[0] if matches else None
    redirect = redirect_for(kb, text)
    threshold = ANSWER_THRESHOLD
    if redirect is not None:
        # Another service is named: answer from our topics only when the question also speaks of
        # this bot's own subject (難病, 受給者証 …) and the match is confident.
        threshold = REDIRECT_THRESHOLD if (not redirect.strict and mentions_domain(kb, text)) else 101.0
    alternatives = tuple(m.id for m in matches[1:3])

    if best is not None and best.confidence >= threshold:
        body, choices = render_topic(kb, best.id, municipality)
        return Consultation(best.id, best.confidence, body, alternatives, choices, "answer", tuple(matches),
                            found.municipality if found else None)

    suggestions = tuple(m.id for m in matches if m.confidence >= SUGGEST_THRESHOLD)[:3]
    choices = tuple(topic_choice(kb, t) for t in suggestions)
    if redirect is not None:
        return Consultation(None, best.confidence if best else 0.0, redirect.reply.strip(), suggestions, choices,
                            "redirect", tuple(matches))
    if found and found.municipality and _names_a_place_only(text, found.municipality):
        # 「太田市」, 「前橋に住んでます」: no question to be sorry about; here is their office.
        body = office_block(kb.prefecture, found.office, found.municipality)
        return Consultation(None, 0.0, body + "\n\n出典：" + kb.sources[kb.prefecture.sources[0]].cite(), suggestions,
                            choices, "office", tuple(matches), found.municipality)
    lines = ["申し訳ありません。そのご質問に確かにお答えできる情報が、手元の資料には見つかりませんでした。推測でお答えすることは控えます。"]
    if suggestions:
        lines.append("もしかすると、次のどれかのことでしょうか。下のボタンからお選びください。")
    if found and found.municipality:
        lines.append(office_block(kb.prefecture, found.office, found.municipality))
    elif municipality:
        lines.append(office_block(kb.prefecture, index_for(kb.prefecture).office_of(municipality), municipality))
    else:
        lines.append(office_hint(kb))
    return Consultation(None, best.confidence if best else 0.0, "\n\n".join(lines), suggestions, choices,
                        "fallback", tuple(matches))


# What may surround a municipality's name in a message that only says where the user lives.
_PLACE_ONLY = re.compile(r"^(?:私は|わたしは|うちは|家は|住所は|住んでいるのは)?(?:{name})(?:市|町|村)?"
                         r"(?:です|に住んでいます|に住んでます|に住んでる|在住です|在住|住み|に住んでいる|の者です|から|の窓口|"
                         r"の窓口は|の窓口はどこ|の窓口を教えて|の担当|の保健所)?(?:ですか|か)?$")


def _names_a_place_only(text: str, municipality: str) -> bool:
    """Whether a message says no more than a municipality (and where it lives, or its office)."""
    folded = strip_fillers(fold(text))
    short = fold(re.sub(r"(市|町|村)$", "", municipality))
    return bool(re.match(_PLACE_ONLY.pattern.replace("{name}", re.escape(short)), folded))
