"""The consultation: answer a question from the knowledge base, or say honestly that we do not know.

``consult`` is shared by the chat (through the router) and by ``nanbyo-bot ask``
and ``nanbyo-bot eval``, so all three answer the same way.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field, replace

from handlers.messages import Choice, Office, Reply, Source
from nlp.matcher import Match, Matcher
from nlp.normalize import fold
from nlp.text import Text, as_text
from handlers.base import office_hint, topic_choice
from handlers import understand
from handlers.office import index_for, office_block, office_card
from handlers.safety import Safety, classify, mentions_domain, redirect_for, reply_text
from knowledge import KnowledgeBase

# Confidence (0-100, see Matcher) needed to answer. Below it the bot does not
# guess: it offers the closest topics and names the office to ask.
ANSWER_THRESHOLD = 50.0
# When the question names another service (介護保険, 障害年金 …), a topic must match much better.
REDIRECT_THRESHOLD = 75.0
# Without this bot's own words, only a topic this sure outweighs a service named in the question
# (「生活保護受けてるけど、保険証のコピーはどうなる？」 is the subsidy's question; 「生活保護の医療扶助って何」 is not).
SURE_THRESHOLD = 95.0
# Confidence an action (「データ全部消してほしい」) or a service next door needs when ranked first.
ACTION_THRESHOLD = 50.0
SERVICE_THRESHOLD = 50.0
# Within this many points of each other, an action and a topic are both offered.
UNSURE_MARGIN = 8.0
# A message that asks the bot to do something: its best action, if this close, is done.
REQUEST_ACTION_THRESHOLD = 40.0
REQUEST_MARGIN = 20.0
# An action this close to the first one is chosen when the message has its cue words.
CUE_MARGIN = 12.0
# Mid-dialog a message that is no answer needs less to be taken as a request (「取りやめ」).
IN_DIALOG_ACTION_THRESHOLD = 40.0
SERVICE_PREFIX = "service:"
SUGGEST_THRESHOLD = 20.0
SUGGEST_ACTION_THRESHOLD = 25.0
# When no topic answers, an action this close is done if the message has its cue words.
CUED_ACTION_THRESHOLD = 25.0
# An action this close to an answered topic (and at least this sure) is offered as its first button.
NEAR_ACTION_THRESHOLD = 40.0
NEAR_ACTION_MARGIN = 15.0


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

    def reply(self) -> Reply:
        return Reply(self.text, choices=self.choices, topic=self.topic, kind=self.kind, office=self.office,
                     source=self.source)


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


def consult(kb: KnowledgeBase, matcher: Matcher, text: Text | str, municipality: str | None = None,
            action_threshold: float | None = None) -> Consultation:
    """Answer ``text`` from the knowledge base (see module docstring).

    Args:
        text: the question; a chat turn passes its ``Text``, whose forms every check below shares.
        municipality: the user's municipality if known; the answer then names their office.
    """
    text = as_text(text)
    safety = classify(kb, text)
    if safety is not None:
        menu: tuple[Choice, ...] = (Choice("メニュー", "menu"),) if safety is Safety.MEDICAL else ()
        return Consultation(None, 0.0, reply_text(kb, safety), kind=safety.value, choices=menu)

    found = index_for(kb.prefecture).find(text)
    if found and found.municipality:
        municipality = found.municipality

    ranked = understand.applicable(kb, text, matcher.rank(text, limit=12))
    matches = [m for m in ranked if ":" not in m.id][:5]  # topics; actions and services are "kind:id"
    best = matches[0] if matches else None
    top = ranked[0] if ranked else None
    alternatives = tuple(m.id for m in matches[1:3])

    redirect = redirect_for(kb, text)  # another service named in the question, if any
    # A request for one of the bot's own actions (「データ全部消してほしい」), ranked with the topics.
    bar = ACTION_THRESHOLD if action_threshold is None else action_threshold
    first = next((m for m in ranked if m.id.startswith(understand.ACTION_PREFIX)), None)
    if top is not None and first is not None and not top.id.startswith(understand.ACTION_PREFIX) \
            and first.confidence >= REQUEST_ACTION_THRESHOLD and top.confidence - first.confidence < REQUEST_MARGIN \
            and understand.wants(kb, text, first.id.removeprefix(understand.ACTION_PREFIX),
                                 tuple(m.id for m in matches if m.confidence > first.confidence),
                                 top.confidence - first.confidence):
        # A topic ranked first, but the message asks for what its neighbouring action does.
        top = replace(first, confidence=max(first.confidence, bar))
    elif first is not None and first.confidence >= CUED_ACTION_THRESHOLD \
            and (best is None or best.confidence < ANSWER_THRESHOLD) and redirect is None:
        # No topic answers it, and it has an action's own words (「切れる2週間前に教えて」): that action,
        # unless it asks for a fact.
        first = understand.cued(kb, text, ranked, first, CUE_MARGIN)
        aid = first.id.removeprefix(understand.ACTION_PREFIX)
        if understand.has_cue(kb, text, aid) and (understand.requests(kb, text) or not understand.asks_fact(text)):
            top = replace(first, confidence=max(first.confidence, bar))
    if top is not None and top.id.startswith(understand.ACTION_PREFIX):
        top = understand.cued(kb, text, ranked, top, CUE_MARGIN)
    if top is not None and top.id.startswith(understand.ACTION_PREFIX) and top.confidence >= bar:
        act = understand.action(kb, top.id.removeprefix(understand.ACTION_PREFIX))
        # Ranked first, the action is done; a topic almost as close is offered beside it as a button.
        close = (best.id,) if best is not None and best.confidence >= ANSWER_THRESHOLD \
            and top.confidence - best.confidence < UNSURE_MARGIN else ()
        if close and best is not None and understand.asks_fact(text) and not understand.requests(kb, text) \
                and not understand.has_cue(kb, text, act.id) and not understand.personal(kb, text):
            # A question (「更新の時期っていつ？」) that is nearly as close to a topic: the answer, with
            # the action as its first button.
            body, choices = render_topic(kb, best.id, municipality)
            choices = (understand.button(act),) + tuple(c for c in choices if c.value != act.does)
            return Consultation(best.id, best.confidence, body, alternatives, choices, "answer",
                                tuple(matches), found.municipality if found else None)
        return Consultation(None, top.confidence, "", close, tuple(topic_choice(kb, t) for t in close), kind="action",
                            candidates=tuple(matches), municipality=found.municipality if found else None,
                            action=act.id)

    if redirect is None and top is not None and top.id.startswith(SERVICE_PREFIX) and top.confidence >= SERVICE_THRESHOLD \
            and (best is None or top.confidence - best.confidence >= UNSURE_MARGIN or not mentions_domain(kb, text)):
        # A question for the service next door, in words its lexicon does not list: ranked first, it is
        # theirs, unless it also speaks of this subsidy (難病, 受給者証 …) and a topic is as close.
        redirect = next(r for r in kb.services if r.id == top.id.removeprefix(SERVICE_PREFIX))
    threshold = ANSWER_THRESHOLD
    if redirect is not None:
        # Another service is named: answer from our topics only when the question also speaks of
        # this bot's own subject (難病, 受給者証 …) and the match is confident.
        threshold = 101.0 if redirect.strict else REDIRECT_THRESHOLD if mentions_domain(kb, text) else SURE_THRESHOLD
    if best is not None and best.confidence >= threshold:
        body, choices = render_topic(kb, best.id, municipality)
        # An action nearly as close as the answer is one tap away (「…いつから対象になりますか」 → 開始日を計算).
        near = next((m for m in ranked if m.id.startswith(understand.ACTION_PREFIX)
                     and m.confidence >= max(NEAR_ACTION_THRESHOLD, best.confidence - NEAR_ACTION_MARGIN)), None)
        if near is not None:
            act = understand.action(kb, near.id.removeprefix(understand.ACTION_PREFIX))
            if act.does not in {c.value for c in choices}:
                choices = (understand.button(act), *choices)
        return Consultation(best.id, best.confidence, body, alternatives, choices, "answer", tuple(matches),
                            found.municipality if found else None)

    suggestions = tuple(m.id for m in matches if m.confidence >= SUGGEST_THRESHOLD)[:3]
    choices = tuple(topic_choice(kb, t) for t in suggestions)
    # Not sure: the closest of the bot's actions is offered too (「切れる2週間前に教えて」 → register).
    near_action = next((m for m in ranked if m.id.startswith(understand.ACTION_PREFIX)
                        and m.confidence >= SUGGEST_ACTION_THRESHOLD), None)
    if near_action is not None:
        choices = (understand.button(understand.action(kb, near_action.id.removeprefix(understand.ACTION_PREFIX))),
                   *choices)
    if redirect is not None:
        # Someone else's business: say who handles it, and offer the nearest subsidy topics.
        related = tuple(dict.fromkeys((*redirect.related, *suggestions)))[:3]
        return Consultation(None, best.confidence if best else 0.0, redirect.reply.strip(), related,
                            tuple(topic_choice(kb, t) for t in related), "redirect", tuple(matches))
    if found and found.municipality and _names_a_place_only(text, found.municipality):
        # A municipality alone, or 「〇〇市に住んでます」: no question to be sorry about; here is their office.
        body = office_block(kb.prefecture, found.office, found.municipality)
        source = "出典：" + kb.sources[kb.prefecture.sources[0]].cite()
        return Consultation(None, 0.0, body + "\n\n" + source, suggestions, choices, "office", tuple(matches),
                            found.municipality, office=office_card(kb.prefecture, found.office, found.municipality),
                            source=Source(source))
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


def _names_a_place_only(text: Text, municipality: str) -> bool:
    """Whether a message says no more than a municipality (and where it lives, or its office)."""
    folded = text.plain
    short = fold(re.sub(r"(市|町|村)$", "", municipality))
    return bool(re.match(_PLACE_ONLY.pattern.replace("{name}", re.escape(short)), folded))
