"""The consultation: answer a question from the knowledge base, or say honestly that we do not know.

``consult`` is shared by the chat (through the router) and by ``nanbyo-bot ask``
and ``nanbyo-bot eval``, so all three answer the same way. It does not decide: ``handlers.rules``
reads the message once into ``Signals`` and its ordered table of named rules gives a ``Decision``;
this module renders it (texts, office blocks, citations, buttons).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers import understand
from handlers.base import office_hint, topic_choice
from handlers.messages import Choice, Office, Reply, Source
from handlers.office import index_for, office_block, office_card
from handlers.rules import (  # noqa: F401  (re-exported: the router, context and tests use these names)
    ACTION_THRESHOLD,
    ANSWER_THRESHOLD,
    SUGGEST_THRESHOLD,
    Decision,
    Signals,
    decide,
    signals,
)
from handlers.safety import Safety, reply_text
from knowledge import KnowledgeBase
from nlp.matcher import Match, Matcher
from nlp.text import Text, as_text

# Mid-dialog a message that is no answer needs less to be taken as a request (「取りやめ」).
IN_DIALOG_ACTION_THRESHOLD = 40.0


@dataclass(frozen=True)
class Consultation:
    topic: str | None
    score: float
    text: str
    alternatives: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    kind: str = "answer"  # answer | action | fallback | redirect | office | emergency | crisis | medical
    candidates: tuple[Match, ...] = field(default=(), compare=False)  # topics only, best first
    municipality: str | None = None  # named in the question, if any
    action: str | None = None  # kind "action": the id of the action the message asks for
    office: Office | None = None  # kind "office": the office as a card
    source: Source | None = None
    rule: str = field(default="", compare=False)  # the decision rule that fired (handlers.rules.RULES)

    def reply(self) -> Reply:
        return Reply(
            self.text, choices=self.choices, topic=self.topic, kind=self.kind, office=self.office, source=self.source
        )


def render_topic(kb: KnowledgeBase, topic_id: str, municipality: str | None = None) -> tuple[str, tuple[Choice, ...]]:
    """The full answer of a topic: text, the user's office when relevant, and the source."""
    topic = kb.topics[topic_id]
    parts = [topic.answer.strip()]
    if municipality and topic_id in kb.prefecture.office_topics:
        idx = index_for(kb.prefecture)
        parts.append(office_block(kb.prefecture, idx.office_of(municipality), municipality))
    parts.append(kb.cite(topic))
    choices = understand.offered_by(kb, topic_id) + tuple(topic_choice(kb, rel) for rel in topic.related[:3])
    return "\n\n".join(parts), choices


def consult(
    kb: KnowledgeBase,
    matcher: Matcher,
    text: Text | str,
    municipality: str | None = None,
    action_threshold: float | None = None,
) -> Consultation:
    """Answer ``text`` from the knowledge base (see module docstring).

    Reads the message once (``rules.signals``), lets the rules decide (``rules.decide``), and
    renders the decision here.

    Args:
        text: the question; a chat turn passes its ``Text``, whose forms every check shares.
        municipality: the user's municipality if known; the answer then names their office.
        action_threshold: the confidence an action needs to be done (lower mid-dialog).
    """
    s = signals(kb, matcher, as_text(text), municipality, action_threshold)
    return render(s, decide(s))


def render(s: Signals, d: Decision) -> Consultation:
    """The words and buttons of a decision."""
    if d.safety is not None:
        return _render_safety(s.kb, d.safety, d.rule)
    if d.kind == "answer":
        return _render_answer(s, d)
    if d.kind == "action":
        return Consultation(
            None,
            d.confidence,
            "",
            d.alternatives,
            _topic_choices(s.kb, d.alternatives),
            kind="action",
            candidates=s.topics,
            municipality=s.found_municipality,
            action=d.action,
            rule=d.rule,
        )
    choices = _with_action(s.kb, _topic_choices(s.kb, d.alternatives), d.action, first=True)
    if d.kind == "redirect":
        assert d.service is not None
        # Someone else's business: say who handles it, and offer the nearest subsidy topics.
        return Consultation(
            None, d.confidence, d.service.reply.strip(), d.alternatives, choices, "redirect", s.topics, rule=d.rule
        )
    if d.kind == "office":
        return _render_office(s, d, choices)
    return _render_fallback(s, d, choices)


def _render_safety(kb: KnowledgeBase, safety: Safety, rule: str) -> Consultation:
    menu: tuple[Choice, ...] = (Choice("メニュー", "menu"),) if safety is Safety.MEDICAL else ()
    return Consultation(None, 0.0, reply_text(kb, safety), kind=safety.value, choices=menu, rule=rule)


def _render_answer(s: Signals, d: Decision) -> Consultation:
    assert d.topic is not None
    body, choices = render_topic(s.kb, d.topic, s.municipality)
    choices = _with_action(s.kb, choices, d.action, first=d.action_first)
    return Consultation(
        d.topic, d.confidence, body, d.alternatives, choices, "answer", s.topics, s.found_municipality, rule=d.rule
    )


def _render_office(s: Signals, d: Decision, choices: tuple[Choice, ...]) -> Consultation:
    # A municipality alone, or 「〇〇市に住んでます」: no question to be sorry about; here is their office.
    found, kb = s.found, s.kb
    assert found is not None and found.municipality is not None
    body = office_block(kb.prefecture, found.office, found.municipality)
    source = "出典：" + kb.sources[kb.prefecture.sources[0]].cite()
    return Consultation(
        None,
        d.confidence,
        body + "\n\n" + source,
        d.alternatives,
        choices,
        "office",
        s.topics,
        found.municipality,
        office=office_card(kb.prefecture, found.office, found.municipality),
        source=Source(source),
        rule=d.rule,
    )


def _render_fallback(s: Signals, d: Decision, choices: tuple[Choice, ...]) -> Consultation:
    kb, found = s.kb, s.found
    lines = [
        "申し訳ありません。そのご質問に確かにお答えできる情報が、手元の資料には見つかりませんでした。推測でお答えすることは控えます。"
    ]
    if d.alternatives:
        lines.append("もしかすると、次のどれかのことでしょうか。下のボタンからお選びください。")
    if found and found.municipality:
        lines.append(office_block(kb.prefecture, found.office, found.municipality))
    elif s.municipality:
        lines.append(office_block(kb.prefecture, index_for(kb.prefecture).office_of(s.municipality), s.municipality))
    else:
        lines.append(office_hint(kb))
    return Consultation(
        None, d.confidence, "\n\n".join(lines), d.alternatives, choices, "fallback", s.topics, rule=d.rule
    )


def _topic_choices(kb: KnowledgeBase, topic_ids: tuple[str, ...]) -> tuple[Choice, ...]:
    return tuple(topic_choice(kb, t) for t in topic_ids)


def _with_action(
    kb: KnowledgeBase, choices: tuple[Choice, ...], action_id: str | None, first: bool
) -> tuple[Choice, ...]:
    """``choices`` with an action's button in front: moved there with ``first``, else added if missing."""
    if action_id is None:
        return choices
    act = understand.action(kb, action_id)
    if first:
        return (understand.button(act), *(c for c in choices if c.value != act.does))
    if act.does in {c.value for c in choices}:
        return choices
    return (understand.button(act), *choices)
