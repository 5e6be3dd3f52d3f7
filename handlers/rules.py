"""The intent decision: an ordered table of named rules over signals computed once per message.

``signals`` reads a message once (safety class, the ranked matches, the municipality it names,
the service it names …); ``decide`` walks ``RULES`` in order and the first rule that fires gives a
``Decision``: what to do (answer a topic, start an action, redirect, …), never how to say it.
Rendering (texts, office blocks, citations, buttons) is ``handlers.faq``'s.

The rules, in order (each with the thresholds it uses, defined just above it):

1. ``safety`` — an emergency, a crisis or a medical question gets its safety path, nothing else.
2. ``fact-question-near-action`` — the message points to an action sure enough to be done (3–5
   below), but it asks for a fact (「更新の時期っていつ？」) and a topic is nearly as close: the topic's
   answer, with the action as its first button.
3. ``request-action-over-topic`` — a topic is ranked first, but the message asks for what a close
   action does (計算して, 見せて …; ``understand.wants``): that action.
4. ``cued-action-when-no-topic`` — no topic answers, no service is named, and the message has an
   action's own cue words and no question of fact (「切れる2週間前に教えて」): that action.
5. ``action-ranked-first`` — an action is ranked first, sure enough: it is done; a topic almost as
   close is offered beside it.
6. ``answer-topic`` — no other service is concerned and the best topic is sure enough: its answer
   (an action nearly as close is one tap away).
7. ``answer-beside-service`` — another service is concerned (named, or ranked first: rule 9) but the
   question also speaks of this subsidy and the topic is surer still: the topic's answer.
8. ``redirect`` — another service is named (介護保険, 障害年金 …): say who handles it.
9. ``service-next-door`` — a service next door ranked first, in words its lexicon does not list: the
   same redirect.
10. ``place-only`` — the message only names a municipality (「前橋市に住んでます」): its office.
11. ``fallback`` — nothing fits: say so honestly, offer the closest topics and name the office.

Before any rule, the best topics are reread once (``_reread``): among close ones, the subject of a
comparison (「新規とおなじ？」) or the head of 「AのB」 comes first.

Rules 3–5 share one signal, ``Signals.pick``: the action the message points to and how it was
found (by a request, by cue words, or ranked first), already moved to the action whose cue word
comes last (``understand.cued``). To add a rule (e.g. conversation context), add what it reads to
``Signals`` and the rule at its place in ``RULES``; the first rule that fires wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

from handlers import understand
from handlers.office import Found, index_for
from handlers.safety import Safety, classify, mentions_domain, redirect_for
from knowledge import KnowledgeBase
from knowledge.models import Redirect
from nlp.matcher import Match, Matcher
from nlp.normalize import fold
from nlp.text import Text

ACTION_PREFIX = understand.ACTION_PREFIX
SERVICE_PREFIX = "service:"

Kind = Literal["answer", "action", "fallback", "redirect", "office", "emergency", "crisis", "medical"]


@dataclass(frozen=True)
class Decision:
    """What the bot does with a message; ``handlers.faq`` renders it."""

    rule: str  # the name of the rule that fired
    kind: Kind
    confidence: float = 0.0
    topic: str | None = None  # kind "answer": the topic answered
    action: str | None = None  # kind "action": the action done; else an action offered as a button
    action_first: bool = False  # the action's button goes first even if the topic offers it already
    service: Redirect | None = None  # kind "redirect": the service that handles it
    safety: Safety | None = None  # kinds emergency, crisis, medical
    alternatives: tuple[str, ...] = ()  # topic ids offered as buttons (or as alternatives)


@dataclass(frozen=True)
class Signals:
    """What the rules read of one message; each computed once (the costlier ones when first asked)."""

    kb: KnowledgeBase
    text: Text
    safety: Safety | None
    found: Found | None  # a municipality (and its office) the message names
    municipality: str | None  # the one named, else the user's known one
    ranked: tuple[Match, ...]  # topics, actions (``action:``) and services (``service:``), best first
    topics: tuple[Match, ...]  # the five best topics
    named_service: Redirect | None  # another service named in the message (``safety.redirect_for``)
    action_bar: float  # confidence an action needs to be done (lower mid-dialog)

    @property
    def best(self) -> Match | None:
        return self.topics[0] if self.topics else None

    @property
    def top(self) -> Match | None:
        return self.ranked[0] if self.ranked else None

    @property
    def first_action(self) -> Match | None:
        return next((m for m in self.ranked if m.id.startswith(ACTION_PREFIX)), None)

    @property
    def found_municipality(self) -> str | None:
        return self.found.municipality if self.found else None

    @cached_property
    def requests(self) -> bool:
        return understand.requests(self.kb, self.text)

    @cached_property
    def asks_fact(self) -> bool:
        return understand.asks_fact(self.text)

    @cached_property
    def personal(self) -> bool:
        return understand.personal(self.kb, self.text)

    @cached_property
    def mentions_domain(self) -> bool:
        return mentions_domain(self.kb, self.text)

    def has_cue(self, action_id: str) -> bool:
        return understand.has_cue(self.kb, self.text, action_id)

    @cached_property
    def pick(self) -> tuple[str, Match] | None:
        """The action the message points to, and how: ``request`` (rule 3), ``cue`` (4), ``ranked`` (5)."""
        return _pick(self)

    @cached_property
    def service(self) -> Redirect | None:
        """The other service concerned: the one named, else one ranked first (rule 9)."""
        return self.named_service or _next_door(self)


def signals(
    kb: KnowledgeBase,
    matcher: Matcher,
    text: Text,
    municipality: str | None = None,
    action_threshold: float | None = None,
) -> Signals:
    found = index_for(kb.prefecture).find(text)
    ranked = tuple(understand.applicable(kb, text, matcher.rank(text, limit=12)))
    return Signals(
        kb=kb,
        text=text,
        safety=classify(kb, text),
        found=found,
        municipality=found.municipality if found and found.municipality else municipality,
        ranked=ranked,
        topics=_reread(kb, matcher, text, tuple(m for m in ranked if ":" not in m.id)[:5]),
        named_service=redirect_for(kb, text),
        action_bar=ACTION_THRESHOLD if action_threshold is None else action_threshold,
    )


# Topics this close to the best one are told apart by where their own words (label, keywords) end in
# the question: Japanese puts what is asked last (「臨床調査個人票の診断年月日って何」 asks about the date,
# not the form; 「クローン病のほかに消化器系の難病ってある？」 about the list, not one disease).
HEAD_MARGIN = 5.0
# What may follow a word that ends where it stands (a particle, a copula), not inside a longer word
# (訪問看護 in 訪問看護ステーション).
_WORD_END = set("のをはがにへでともやかつっだじ")
# The question a message asks ends at its last question mark: a statement after it (「…コピーいりますか？
# 母はまだ国保です」) adds a fact, not what is asked.
_ASKED = re.compile(r"^(.*[?？])")

_NAMES: dict[tuple[int, int], dict[str, tuple[str, ...]]] = {}


def _names(kb: KnowledgeBase, matcher: Matcher) -> dict[str, tuple[str, ...]]:
    """Each topic's own words (label, keywords), spelt as the matcher reads a message (folded, synonyms
    rewritten)."""
    names = _NAMES.get((id(kb), id(matcher)))
    if names is None:
        names = _NAMES[(id(kb), id(matcher))] = {
            t.id: tuple(
                w for w in (matcher.analyzer.surface(Text(n)) for n in (_label(t.label), *t.keywords)) if len(w) >= 2
            )
            for t in kb.topics.values()
        }
    return names


def _reread(kb: KnowledgeBase, matcher: Matcher, text: Text, topics: tuple[Match, ...]) -> tuple[Match, ...]:
    """The best topics, with a close second put first where the wording says what is asked: the subject
    of a comparison, else the head of the question."""
    if _STANDARD.search(text.raw):  # the standard's name would pass for the head (「…新規の時と違うの？」)
        return not_the_standard(matcher, text, topics)
    return head_last(kb, matcher, text, topics)


# What a question compares its subject with is no subject of its own (「更新の書類って新規とおなじ？」
# asks about renewal, measured against a new application): the message is ranked again without it,
# and a topic this close that then comes first is the one asked about.
COMPARE_MARGIN = 10.0
_STANDARD = re.compile(
    r"[一-龥ァ-ヶー]+(?:の(?:時|とき|場合|もの))?"
    r"(?=と(?:同じ|おなじ|一緒|いっしょ|違|ちが|比べ|くらべ))"
)


def not_the_standard(matcher: Matcher, text: Text, topics: tuple[Match, ...]) -> tuple[Match, ...]:
    """``topics`` with the topic asked about first, when the message compares it with another (see above)."""
    if len(topics) < 2 or not _STANDARD.search(text.raw):
        return topics
    without = [m for m in matcher.rank(Text(_STANDARD.sub("", text.raw)), limit=12) if ":" not in m.id]
    if not without or without[0].id == topics[0].id:
        return topics
    for m in topics[1:]:
        if topics[0].confidence - m.confidence >= COMPARE_MARGIN:
            break
        if m.id == without[0].id:
            return (m, *(t for t in topics if t is not m))
    return topics


def _label(label: str) -> str:
    return re.sub(r"[（(].*?[）)]", "", label)


def head_last(kb: KnowledgeBase, matcher: Matcher, text: Text, topics: tuple[Match, ...]) -> tuple[Match, ...]:
    """``topics`` with, among those within ``HEAD_MARGIN`` of the best, the one whose own word ends last
    in the question put first (on a tie, the better ranked), when the best names one of its own."""
    if len(topics) < 2 or topics[0].confidence - topics[1].confidence >= HEAD_MARGIN:
        return topics
    asked = _ASKED.match(text.raw.strip())
    surface, names = matcher.analyzer.surface(Text(asked.group(1)) if asked else text), _names(kb, matcher)

    def end(m: Match) -> int:
        return max((_last_end(surface, w) for w in names.get(m.id, ())), default=-1)

    if end(topics[0]) < 0:  # the best names none of its words: what is asked is no name (「どうやって決める」)
        return topics
    close = [m for m in topics if topics[0].confidence - m.confidence < HEAD_MARGIN]
    head = max(close, key=end)
    return (head, *(m for m in topics if m is not head))


def _last_end(surface: str, word: str) -> int:
    """Where the last whole occurrence of ``word`` in ``surface`` ends, or -1."""
    start = surface.rfind(word)
    while start >= 0:
        end = start + len(word)
        if end == len(surface) or surface[end] in _WORD_END:
            return end
        start = surface.rfind(word, 0, start + len(word) - 1)
    return -1


# --- picking the action (rules 3-5) ---------------------------------------------------------------

# Confidence an action (「データ全部消してほしい」) needs when ranked first (rule 5; the default bar).
ACTION_THRESHOLD = 50.0
# Rule 3: a message that asks the bot to do something: its best action, if at least this sure and
# within this many points of the topic ranked first, is done.
REQUEST_ACTION_THRESHOLD = 40.0
REQUEST_MARGIN = 20.0
# Rule 4: when no topic answers, an action this sure is done if the message has its cue words.
CUED_ACTION_THRESHOLD = 25.0
# An action this close to the first one is chosen when the message has its cue words (rules 3-5).
CUE_MARGIN = 12.0
# Confidence (0-100, see Matcher) a topic needs to be answered (rules 4, 6). Below it the bot does
# not guess: it offers the closest topics and names the office to ask.
ANSWER_THRESHOLD = 50.0


def _pick(s: Signals) -> tuple[str, Match] | None:
    top, first = s.top, s.first_action
    if top is None:
        return None
    if first is not None and not top.id.startswith(ACTION_PREFIX) and _wants(s, top, first):
        return "request", _cued(s, _raised(s, first))
    if (
        first is not None
        and first.confidence >= CUED_ACTION_THRESHOLD
        and s.named_service is None
        and (s.best is None or s.best.confidence < ANSWER_THRESHOLD)
    ):
        cued = _cued(s, first)
        if s.has_cue(_aid(cued)) and (s.requests or not s.asks_fact):
            return "cue", _cued(s, _raised(s, cued))
    if top.id.startswith(ACTION_PREFIX):
        return "ranked", _cued(s, top)
    return None


def _wants(s: Signals, top: Match, first: Match) -> bool:
    behind = top.confidence - first.confidence
    return (
        first.confidence >= REQUEST_ACTION_THRESHOLD
        and behind < REQUEST_MARGIN
        and understand.wants(
            s.kb, s.text, _aid(first), tuple(m.id for m in s.topics if m.confidence > first.confidence), behind
        )
    )


def _raised(s: Signals, m: Match) -> Match:
    return replace(m, confidence=max(m.confidence, s.action_bar))


def _cued(s: Signals, m: Match) -> Match:
    return understand.cued(s.kb, s.text, list(s.ranked), m, CUE_MARGIN)


def _aid(m: Match) -> str:
    return m.id.removeprefix(ACTION_PREFIX)


def _acting(s: Signals, how: str) -> Match | None:
    """The picked action if it was picked ``how`` and is sure enough to be done."""
    if s.pick is None or s.pick[0] != how or s.pick[1].confidence < s.action_bar:
        return None
    return s.pick[1]


# --- the rules ------------------------------------------------------------------------------------


def safety_rule(s: Signals) -> Decision | None:
    if s.safety is None:
        return None
    return Decision("safety", s.safety.value, safety=s.safety)


# Within this many points of each other, an action and a topic are both offered (rules 2, 5, 9).
UNSURE_MARGIN = 8.0


def _close_topic(s: Signals, act: Match) -> Match | None:
    best = s.best
    if best is not None and best.confidence >= ANSWER_THRESHOLD and act.confidence - best.confidence < UNSURE_MARGIN:
        return best
    return None


def fact_question_near_action(s: Signals) -> Decision | None:
    act = s.pick[1] if s.pick is not None and s.pick[1].confidence >= s.action_bar else None
    best = _close_topic(s, act) if act is not None else None
    if act is None or best is None or not s.asks_fact or s.requests or s.has_cue(_aid(act)) or s.personal:
        return None
    return Decision(
        "fact-question-near-action",
        "answer",
        best.confidence,
        topic=best.id,
        action=_aid(act),
        action_first=True,
        alternatives=_alternatives(s),
    )


def _act(name: str, how: str) -> Callable[[Signals], Decision | None]:
    def rule(s: Signals) -> Decision | None:
        act = _acting(s, how)
        if act is None:
            return None
        close = _close_topic(s, act)
        return Decision(name, "action", act.confidence, action=_aid(act), alternatives=(close.id,) if close else ())

    rule.__name__ = name
    return rule


# Rule 6: an action this close to an answered topic (and at least this sure) is offered as its
# first button (「…いつから対象になりますか」 → 開始日を計算).
NEAR_ACTION_THRESHOLD = 40.0
NEAR_ACTION_MARGIN = 15.0


def answer_topic(s: Signals) -> Decision | None:
    best = s.best
    if s.service is not None or best is None or best.confidence < ANSWER_THRESHOLD:
        return None
    return _answer("answer-topic", s, best)


def _answer(name: str, s: Signals, best: Match) -> Decision:
    near = next(
        (
            m
            for m in s.ranked
            if m.id.startswith(ACTION_PREFIX)
            and m.confidence >= max(NEAR_ACTION_THRESHOLD, best.confidence - NEAR_ACTION_MARGIN)
        ),
        None,
    )
    return Decision(
        name,
        "answer",
        best.confidence,
        topic=best.id,
        action=_aid(near) if near else None,
        alternatives=_alternatives(s),
    )


def _alternatives(s: Signals) -> tuple[str, ...]:
    return tuple(m.id for m in s.topics[1:3])


# Rule 7: when the question names another service, a topic must match this well, and the question
# must speak of this subsidy (難病, 受給者証 …); a strict service is never answered from our topics.
REDIRECT_THRESHOLD = 75.0
# Without this bot's own words, only a topic this sure outweighs a service named in the question
# (「生活保護受けてるけど、保険証のコピーはどうなる？」 is the subsidy's question; 「生活保護の医療扶助って何」 is not).
SURE_THRESHOLD = 95.0


def answer_beside_service(s: Signals) -> Decision | None:
    best, service = s.best, s.service
    if service is None or best is None:
        return None
    bar = 101.0 if service.strict else REDIRECT_THRESHOLD if s.mentions_domain else SURE_THRESHOLD
    return _answer("answer-beside-service", s, best) if best.confidence >= bar else None


# Fallback, office and redirect answers offer topics at least this sure (up to three), and the
# closest action at least this sure as a button.
SUGGEST_THRESHOLD = 20.0
SUGGEST_ACTION_THRESHOLD = 25.0


def _not_sure(name: str, kind: Kind, s: Signals, service: Redirect | None = None) -> Decision:
    suggestions = tuple(m.id for m in s.topics if m.confidence >= SUGGEST_THRESHOLD)[:3]
    near = next(
        (m for m in s.ranked if m.id.startswith(ACTION_PREFIX) and m.confidence >= SUGGEST_ACTION_THRESHOLD), None
    )
    if service is not None:  # the service's own related topics first, then the nearest of ours
        suggestions = tuple(dict.fromkeys((*service.related, *suggestions)))[:3]
        near = None
    confidence = s.best.confidence if s.best and kind != "office" else 0.0
    return Decision(
        name,
        kind,
        confidence,
        action=_aid(near) if near else None,
        action_first=True,
        service=service,
        alternatives=suggestions,
    )


def redirect_rule(s: Signals) -> Decision | None:
    return _not_sure("redirect", "redirect", s, s.named_service) if s.named_service is not None else None


# Rule 9: a service next door ranked first needs this confidence, and must lead the best topic by
# UNSURE_MARGIN when the message also speaks of this subsidy.
SERVICE_THRESHOLD = 50.0


def _next_door(s: Signals) -> Redirect | None:
    top = s.pick[1] if s.pick is not None else s.top  # an action picked (even below its bar) leads
    if top is None or not top.id.startswith(SERVICE_PREFIX) or top.confidence < SERVICE_THRESHOLD:
        return None
    best = s.best
    if best is not None and top.confidence - best.confidence < UNSURE_MARGIN and s.mentions_domain:
        return None  # it also speaks of this subsidy, and a topic is as close
    return next(r for r in s.kb.services if r.id == top.id.removeprefix(SERVICE_PREFIX))


def service_next_door(s: Signals) -> Decision | None:
    return _not_sure("service-next-door", "redirect", s, s.service) if s.service is not None else None


def place_only(s: Signals) -> Decision | None:
    muni = s.found_municipality
    if muni is None or not names_a_place_only(s.text, muni):
        return None
    return _not_sure("place-only", "office", s)


def fallback(s: Signals) -> Decision | None:
    return _not_sure("fallback", "fallback", s)


@dataclass(frozen=True)
class Rule:
    name: str
    fires: Callable[[Signals], Decision | None]  # a decision, or None to pass to the next rule


RULES: tuple[Rule, ...] = (
    Rule("safety", safety_rule),
    Rule("fact-question-near-action", fact_question_near_action),
    Rule("request-action-over-topic", _act("request-action-over-topic", "request")),
    Rule("cued-action-when-no-topic", _act("cued-action-when-no-topic", "cue")),
    Rule("action-ranked-first", _act("action-ranked-first", "ranked")),
    Rule("answer-topic", answer_topic),
    Rule("answer-beside-service", answer_beside_service),
    Rule("redirect", redirect_rule),
    Rule("service-next-door", service_next_door),
    Rule("place-only", place_only),
    Rule("fallback", fallback),
)


def decide(s: Signals, rules: tuple[Rule, ...] = RULES) -> Decision:
    """The first rule of ``rules`` that fires (``fallback`` always does)."""
    for rule in rules:
        decision = rule.fires(s)
        if decision is not None:
            return replace(decision, rule=rule.name)  # the table's name is the one reported
    raise AssertionError("the fallback rule always fires")


# What may surround a municipality's name in a message that only says where the user lives.
_PLACE_ONLY = re.compile(
    r"^(?:私は|わたしは|うちは|家は|住所は|住んでいるのは)?(?:{name})(?:市|町|村)?"
    r"(?:です|に住んでいます|に住んでます|に住んでる|在住です|在住|住み|に住んでいる|の者です|から|の窓口|"
    r"の窓口は|の窓口はどこ|の窓口を教えて|の担当|の保健所)?(?:ですか|か)?$"
)


def names_a_place_only(text: Text, municipality: str) -> bool:
    """Whether a message says no more than a municipality (and where it lives, or its office)."""
    folded = text.plain
    short = fold(re.sub(r"(市|町|村)$", "", municipality))
    return bool(re.match(_PLACE_ONLY.pattern.replace("{name}", re.escape(short)), folded))
