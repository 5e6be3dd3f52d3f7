"""``nanbyo-bot review``: the knowledge-base editor's list for the period.

What went unanswered (the fallback), what was answered unsure, and what users marked
「役に立たなかった」 — read from the question statistics and the feedback (``bot.storage.statistics``),
which hold no user id and only redacted texts — grouped by similarity as the bot's own matcher
reads them (``Matcher.similarity``), each group with its count, a few example wordings (redacted
once more here), and the topic it is closest to; then the topics and sources whose facts are due
to be checked again (``KnowledgeBase.stale``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from handlers.faq import SUGGEST_THRESHOLD
from knowledge import KnowledgeBase
from knowledge.models import Stale
from nlp.matcher import Matcher
from nlp.privacy import redact

# Two texts this alike (Matcher.similarity, 0-100) are one group; a group is the texts linked by a
# chain of such pairs. 30 puts 「受給者証の色が変わったのはなぜ」「受給者証の色が前と違う」 together
# and keeps 「更新はいつ？」 apart from 「更新の時期が載っていない」 (tests/test_review.py).
GROUP_SIMILARITY = 30.0
EXAMPLES = 3
# A topic this close (confidence, 0-100) is named as a group's closest; the bot offers topics as
# buttons from the same value (handlers.faq.SUGGEST_THRESHOLD).
CLOSE_ENOUGH = SUGGEST_THRESHOLD
# What each kind of group is, in the order the review lists them.
KINDS = {
    "unanswered": "not answered (the bot said it did not know)",
    "unsure": "answered, but unsure (low confidence or a close second topic)",
    "unhelpful": "marked 役に立たなかった by the user",
}


@dataclass(frozen=True)
class Group:
    kind: str  # unanswered | unsure | unhelpful
    count: int
    examples: tuple[str, ...]  # redacted wordings (the notes, for unhelpful), most frequent first
    topic: str | None  # the topic the group is closest to
    label: str | None  # that topic's button label
    answer_kind: str | None = None  # unhelpful: the kind of reply judged (answer, office, copay-result …)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "examples": list(self.examples),
            "topic": self.topic,
            "label": self.label,
            "answer_kind": self.answer_kind,
        }


@dataclass(frozen=True)
class Review:
    since: date
    until: date
    helpful: int
    unhelpful: int
    groups: tuple[Group, ...]
    stale: tuple[Stale, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "feedback": {"helpful": self.helpful, "unhelpful": self.unhelpful},
            "groups": [g.to_json() for g in self.groups],
            "stale": [s.to_json() for s in self.stale],
        }

    def report(self) -> str:
        lines = [
            f"review of {self.since.isoformat()} to {self.until.isoformat()}: "
            f"feedback {self.helpful} helpful, {self.unhelpful} not helpful"
        ]
        for kind, title in KINDS.items():
            groups = [g for g in self.groups if g.kind == kind]
            lines += ["", f"{kind}: {title}"]
            for g in groups:
                about = f"{g.topic} ({g.label})" if g.topic else "(no close topic)"
                if g.answer_kind:
                    about += f" [{g.answer_kind}]"
                lines.append(f"{g.count:>5}  closest: {about}")
                lines += [f"         「{e}」" for e in g.examples]
            if not groups:
                lines.append("    (none)")
        lines += ["", "facts due to be checked again:"]
        lines += [
            f"  {s.kind} {s.id}: checked {s.checked.isoformat()}, due {s.due.isoformat()} "
            f"(every {s.recheck_days} days) {s.file}"
            for s in self.stale
        ] or ["    (none)"]
        return "\n".join(lines)


def _clusters(matcher: Matcher, texts: list[str]) -> list[list[int]]:
    """Indices of ``texts`` grouped: single linkage over ``Matcher.similarity`` ≥ ``GROUP_SIMILARITY``.

    Our own few lines (a union-find) rather than a clustering library: the lists are a week's
    questions, tens to hundreds, and the similarity is the bot's own.
    """
    distinct = list(dict.fromkeys(texts))
    parent = list(range(len(distinct)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(distinct)):
        for j in range(i + 1, len(distinct)):
            if root(i) != root(j) and matcher.similarity(distinct[i], distinct[j]) >= GROUP_SIMILARITY:
                parent[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    position = {t: k for k, t in enumerate(distinct)}
    for index, text in enumerate(texts):
        members.setdefault(root(position[text]), []).append(index)
    return list(members.values())


def _closest(kb: KnowledgeBase, matcher: Matcher, texts: list[str]) -> str | None:
    """The topic the matcher puts first for most of the group's texts, counting only a topic at least
    as close as one the bot would offer as a button (``CLOSE_ENOUGH``); None when none is."""
    votes: Counter[str] = Counter()
    for text in dict.fromkeys(texts):
        ranked = [m for m in matcher.rank(text, limit=12) if m.id in kb.topics]
        if ranked and ranked[0].confidence >= CLOSE_ENOUGH:
            votes[ranked[0].id] += texts.count(text)
    return votes.most_common(1)[0][0] if votes else None


def _examples(texts: list[str]) -> tuple[str, ...]:
    shown = (redact(t) for t, _ in Counter(texts).most_common())
    return tuple(t for t in dict.fromkeys(shown) if t)[:EXAMPLES]


def _text_groups(kb: KnowledgeBase, matcher: Matcher, kind: str, rows: list[tuple[str, str | None]]) -> list[Group]:
    texts = [text for text, _ in rows]
    groups = []
    for members in _clusters(matcher, texts):
        topic = _closest(kb, matcher, [texts[i] for i in members])
        groups.append(
            Group(
                kind,
                len(members),
                _examples([texts[i] for i in members]),
                topic,
                kb.topics[topic].label if topic else None,
            )
        )
    return groups


def build_review(
    kb: KnowledgeBase,
    matcher: Matcher,
    since: date,
    until: date,
    rows: tuple[list[tuple[str, str | None]], list[tuple[str, str | None]], list[tuple[str | None, str, str | None]]],
    feedback: tuple[int, int],
    today: date,
) -> Review:
    """The review of ``rows`` (``Statistics.review_rows``), largest groups first within each kind."""
    unanswered, unsure, unhelpful = rows
    groups = _text_groups(kb, matcher, "unanswered", unanswered) + _text_groups(kb, matcher, "unsure", unsure)
    # Unhelpful marks are grouped by what was judged (the topic and the kind of reply); their notes are the examples.
    judged: dict[tuple[str | None, str], list[str]] = {}
    counts: Counter[tuple[str | None, str]] = Counter()
    for topic, answer_kind, note in unhelpful:
        key = (topic if topic in kb.topics else None, answer_kind)
        counts[key] += 1
        judged.setdefault(key, [])
        if note:
            judged[key].append(note)
    for (topic, answer_kind), notes in judged.items():
        groups.append(
            Group(
                "unhelpful",
                counts[(topic, answer_kind)],
                _examples(notes),
                topic,
                kb.topics[topic].label if topic else None,
                answer_kind,
            )
        )
    order = list(KINDS)
    groups.sort(key=lambda g: (order.index(g.kind), -g.count, g.topic or "", g.examples))
    return Review(since, until, feedback[0], feedback[1], tuple(groups), tuple(kb.stale(today)))
