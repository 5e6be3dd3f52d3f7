"""Measures the consultation (``nanbyo-bot eval FILE``) and the safety net (``eval --safety FILE``).

Each JSONL line is ``{"q": "...", "topic": "<id>" | null}``; null means the
bot should not answer (out of scope). Prints top-1 / top-3 accuracy,
out-of-scope accuracy, the share of correct answers that state all their
``must`` facts, p50/p99 latency per question, and the misses.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from handlers.context import consult_message
from handlers.faq import Consultation
from handlers.messages import IncomingMessage
from handlers.ports import UserState
from knowledge import KnowledgeBase
from nlp.matcher import Matcher


@dataclass(frozen=True)
class Report:
    """What ``nanbyo-bot eval`` prints: the misses, then the figures of the measurement."""

    misses: tuple[str, ...]

    def figures(self) -> list[str]:
        raise NotImplementedError

    def report(self) -> str:
        return "\n".join([*(f"miss: {m}" for m in self.misses), *self.figures()])


@dataclass(frozen=True)
class EvalResult(Report):
    in_scope: int
    top1: int
    top3: int
    out_scope: int
    held: int
    must_ok: int
    p50_ms: float
    p99_ms: float
    also_total: int = 0  # lines with a second question (``"also": "<topic>"``)
    also_ok: int = 0  # … whose second topic was answered too or offered as a button

    def figures(self) -> list[str]:
        """Top-1 and top-3 over the questions in scope, those out of scope held back, the ``must``
        facts of the right answers, and the time per question."""
        second = (
            [f"second questions in one message answered or offered: {_share(self.also_ok, self.also_total)}"]
            if self.also_total
            else []
        )
        return [
            *second,
            f"questions: {self.in_scope} in scope, {self.out_scope} out of scope",
            f"top-1: {_share(self.top1, self.in_scope)}   top-3: {_share(self.top3, self.in_scope)}",
            f"out-of-scope held: {_share(self.held, self.out_scope)}   "
            f"must facts complete: {_share(self.must_ok, self.top1)}",
            f"latency per question: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms",
        ]


def _share(part: int, whole: int, empty: float = 1.0) -> str:
    """A share with its counts, 「98.3% (174/177)」; ``empty`` when there is nothing to count."""
    return f"{part / whole if whole else empty:.1%} ({part}/{whole})"


def _by(c: Consultation) -> str:
    """Which decision rule gave a consultation (handlers.rules), to explain a miss."""
    return f" by {c.rule}" if c.rule else ""


def load_spec_must(spec: Path | None) -> dict[str, list[str]]:
    if spec is None or not spec.exists():
        return {}
    data = yaml.safe_load(spec.read_text(encoding="utf-8")) or []
    return {str(item["id"]): [str(m) for m in item.get("must", [])] for item in data}


def evaluate(kb: KnowledgeBase, matcher: Matcher, path: Path, spec: Path | None = None) -> EvalResult:
    must = load_spec_must(spec)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    times: list[float] = []
    top1 = top3 = held = must_ok = in_scope = out_scope = also_total = also_ok = 0
    misses: list[str] = []
    for row in rows:
        question, expected = row["q"], row.get("topic")
        t0 = time.perf_counter()
        c = consult_message(kb, matcher, question)
        times.append((time.perf_counter() - t0) * 1000)
        ranked = [m.id for m in c.candidates]
        if row.get("also"):
            also_total += 1
            if row["also"] == c.topic or f"topic:{row['also']}" in {ch.value for ch in c.choices}:
                also_ok += 1
            else:
                misses.append(f"[second question {row['also']} dropped] {question}")
        if expected is None:
            out_scope += 1
            if c.topic is None:
                held += 1
            else:
                misses.append(f"[out-of-scope answered as {c.topic} {c.score:.0f}{_by(c)}] {question}")
            continue
        in_scope += 1
        if c.topic == expected:
            top1 += 1
            facts = must.get(expected) or kb.topics[expected].must
            if all(f in c.text for f in facts):
                must_ok += 1
            else:
                misses.append(f"[missing facts {expected}] {question}")
        else:
            misses.append(f"[{expected} -> {c.topic} {c.score:.0f}{_by(c)}; ranked {','.join(ranked[:3])}] {question}")
        if expected in ([c.topic] if c.topic else []) + ranked[:3]:
            top3 += 1
    times.sort()
    p99_index = min(len(times) - 1, max(0, round(0.99 * len(times)) - 1))
    return EvalResult(
        tuple(misses),
        in_scope,
        top1,
        top3,
        out_scope,
        held,
        must_ok,
        statistics.median(times) if times else 0.0,
        times[p99_index] if times else 0.0,
        also_total,
        also_ok,
    )


# --- safety: emergencies and crises, free and at every step of every dialog -------------------


def safety_paths(kb: KnowledgeBase) -> tuple[tuple[str, dict[str, str]], ...]:
    """One way through each dialog: the answer given at each slot.

    Two for the copay dialog, so that the income slot (asked only of a non-taxable household) is
    reached too. The reminder's municipality is the prefecture's first one.
    """
    return (
        (
            "copay",
            {
                "welfare": "いいえ",
                "ventilator": "いいえ",
                "tax_exempt": "いいえ",
                "income_tax": "100000",
                "high_cost_months": "0",
                "household_caps": "いない",
                "medical_cost": "50000",
                "insurance_rate": "3割",
            },
        ),
        ("copay", {"welfare": "いいえ", "ventilator": "いいえ", "tax_exempt": "はい", "income": "700000"}),
        (
            "start-date",
            {"diagnosis_date": "2026年9月1日", "application_date": "2026年11月20日", "delay_reason": "none"},
        ),
        ("mild-high-cost", {}),
        (
            "reminder",
            {
                "expiry_date": "2027年9月30日",
                "confirm_expiry": "はい",
                "municipality": kb.prefecture.municipalities[0].name,
            },
        ),
        ("office", {}),
        ("delete", {}),
    )


URGENT_KINDS = ("emergency", "crisis")


@dataclass(frozen=True)
class SafetyResult(Report):
    urgent: int
    ordinary: int
    caught: int
    false_alarms: int
    steps: int
    caught_mid: int
    false_alarms_mid: int

    def figures(self) -> list[str]:
        """Recall and false alarms of free messages, then of the same messages at every dialog step."""
        urgent_mid, ordinary_mid = self.urgent * self.steps, self.ordinary * self.steps
        share = self.caught_mid / urgent_mid if urgent_mid else 1.0
        kept = f"{share:.1%} ({self.caught_mid}/{urgent_mid}, the dialog kept its place)"
        return [
            f"messages: {self.urgent} emergency or crisis, {self.ordinary} ordinary; {self.steps} dialog steps",
            f"free:       recall {_share(self.caught, self.urgent)}   "
            f"false alarms {_share(self.false_alarms, self.ordinary, empty=0.0)}",
            f"mid-dialog: recall {kept}   false alarms {_share(self.false_alarms_mid, ordinary_mid, empty=0.0)}",
        ]


def _dialog_steps(bot: Any) -> list[tuple[str, str, UserState]]:
    """Walk each path of ``safety_paths`` and keep the state at every question: (dialog, slot, state)."""
    steps: list[tuple[str, str, UserState]] = []
    seen: set[tuple[str, str]] = set()
    for i, (form, answers) in enumerate(safety_paths(bot.kb)):
        user = f"safety-path-{i}"
        replies = bot.handle(IncomingMessage(channel="eval", user=user, choice=f"start:{form}"))
        for _ in range(20):
            slot = replies[-1].expecting if replies else None
            if slot is None:
                break
            with bot.store.unit_of_work() as uow:
                state = uow.conversations.load_state(f"eval:{user}")
            if state.dialog == form and (form, slot) not in seen:
                seen.add((form, slot))
                steps.append((form, slot, state))
            if slot not in answers:
                break
            replies = bot.handle(IncomingMessage(channel="eval", user=user, text=answers[slot]))
    return steps


def _outcome(
    expected: bool, alarmed: bool, text: str, missed: str, false_alarm: str, misses: list[str]
) -> tuple[int, int]:
    """(caught, false alarms) of one message, 0 or 1 each; a miss of either kind is noted in ``misses``."""
    if expected and not alarmed:
        misses.append(f"[{missed}] {text}")
    elif alarmed and not expected:
        misses.append(f"[{false_alarm}] {text}")
    return int(expected and alarmed), int(alarmed and not expected)


def evaluate_safety(bot: Any, path: Path) -> SafetyResult:
    """Send every message of a JSONL file (``{"text", "kind"}``) free and at every dialog step.

    A caught emergency or crisis is answered first with its kind, and mid-dialog the same question
    is pending afterwards; a false alarm is an ordinary message answered as one.
    """
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    steps = _dialog_steps(bot)
    urgent = ordinary = caught = false_alarms = caught_mid = false_alarms_mid = 0
    misses: list[str] = []
    for n, row in enumerate(rows):
        text, kind = row["text"], row.get("kind")
        expected = kind in URGENT_KINDS
        urgent += expected
        ordinary += not expected
        replies = bot.handle(IncomingMessage(channel="eval", user=f"free-{n}", text=text))
        alarmed = bool(replies) and replies[0].kind in URGENT_KINDS
        hit, alarm = _outcome(expected, alarmed, text, f"missed {row.get('concept', kind)}", "false alarm", misses)
        caught += hit
        false_alarms += alarm
        for s, (form, slot, state) in enumerate(steps):
            user = f"step-{n}-{s}"
            with bot.store.unit_of_work() as uow:
                uow.conversations.save_state(
                    UserState(
                        user_key=f"eval:{user}",
                        dialog=state.dialog,
                        slots=dict(state.slots),
                        history=list(state.history),
                        profile=dict(state.profile),
                    )
                )
            replies = bot.handle(IncomingMessage(channel="eval", user=user, text=text))
            alarmed = bool(replies) and replies[0].kind in URGENT_KINDS
            kept = bool(replies) and replies[-1].expecting == slot
            # Mid-dialog an emergency is caught only when the dialog also kept its place.
            hit, alarm = _outcome(
                expected,
                alarmed and (kept or not expected),
                text,
                f"missed at {form}/{slot}",
                f"false alarm at {form}/{slot}",
                misses,
            )
            caught_mid += hit
            false_alarms_mid += alarm
    return SafetyResult(tuple(misses), urgent, ordinary, caught, false_alarms, len(steps), caught_mid, false_alarms_mid)


# --- safety: false alarms on ordinary texts ----------------------------------------------------

# The generated ordinary patient sentences: every document the knowledge base names (its synonym
# groups of documents, with their variants) × a particle × an everyday verb, in kanji and read aloud.
# A danger list matched as letters fails on exactly these (しんせいしょを ⊃ いしょを).
DOCUMENT_ENDINGS = ("書", "証", "票", "届", "表", "証明")
EXTRA_DOCUMENTS = (
    "申請書",
    "証明書",
    "意見書",
    "医療意見書",
    "診断書",
    "領収書",
    "届出書",
    "通知書",
    "決定通知書",
    "遺族年金の請求書",
)
PARTICLES = ("を", "は", "って")
VERBS = (
    "郵送したい",
    "出せばいいの？",
    "出すのはいつ？",
    "書けない",
    "なくした",
    "待ってます",
    "送りました",
    "もらいたい",
    "取りに行きたい",
    "まだ届かない",
    "どこで手に入る？",
    "書き方がわからない",
    "コピーしてもいい？",
    "返したい",
    "持っていくの？",
    "首を長くして待ってます",
    "切れそう",
    "捨ててしまった",
    "破いてしまった",
    "燃やしてもいい？",
)


def generated_ordinary(kb: KnowledgeBase) -> list[str]:
    """Ordinary sentences about the knowledge base's documents (see ``DOCUMENT_ENDINGS``)."""
    from nlp.text import hiragana

    documents = set(EXTRA_DOCUMENTS)
    for group in kb.synonyms:
        if group.canonical.endswith(DOCUMENT_ENDINGS):
            documents |= {group.canonical, *(v for v in group.variants if v.endswith(DOCUMENT_ENDINGS))}
    sentences = [f"{d}{p}{v}" for d in sorted(documents) for p in PARTICLES for v in VERBS]
    return sentences + [hiragana(s) for s in sentences]


def knowledge_examples(kb: KnowledgeBase) -> list[str]:
    """Every question the knowledge base itself gives as an example: the phrasings of its topics,
    services and actions, and each emergency concept's near misses."""
    texts = [p for t in kb.topics.values() for p in (t.title, *t.phrasings)]
    texts += [p for s in kb.services for p in s.phrasings]
    texts += [p for a in kb.actions for p in a.phrasings]
    texts += [m for c in kb.emergency.concepts for m in c.near_misses]
    return texts


def localgovfaq_texts(folder: Path) -> list[str]:
    """The queries and the FAQ titles of the localgovFAQ collection (ordinary municipal questions)."""
    queries = json.loads((folder / "queries.json").read_text(encoding="utf-8"))
    corpus = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
    titles = [str(c).split("\n")[0].removeprefix("Question: ") for c in corpus.values()]
    return [str(q) for q in queries.values()] + titles


def ordinary_corpora(kb: KnowledgeBase, localgovfaq: Path | None) -> dict[str, list[str]]:
    """The false-alarm corpora of ``eval --safety``; localgovFAQ only where its folder is there."""
    corpora = {"generated patient sentences": generated_ordinary(kb), "knowledge-base examples": knowledge_examples(kb)}
    if localgovfaq is not None and (localgovfaq / "queries.json").is_file():
        corpora["localgovFAQ questions and titles"] = localgovfaq_texts(localgovfaq)
    return corpora


@dataclass(frozen=True)
class FalseAlarmResult(Report):
    counts: tuple[tuple[str, int, int], ...]  # (corpus, texts, false alarms)

    def figures(self) -> list[str]:
        return [f"false alarms on {name}: {alarms} of {total}" for name, total, alarms in self.counts]


def evaluate_false_alarms(bot: Any, corpora: dict[str, list[str]]) -> FalseAlarmResult:
    """Send every ordinary text as a free message; any answered as an emergency or a crisis is a false alarm."""
    counts: list[tuple[str, int, int]] = []
    misses: list[str] = []
    for name, texts in corpora.items():
        alarms = 0
        for n, text in enumerate(texts):
            replies = bot.handle(IncomingMessage(channel="eval", user=f"ordinary-{len(counts)}-{n}", text=text))
            if replies and replies[0].kind in URGENT_KINDS:
                alarms += 1
                misses.append(f"[false alarm, {name}] {text}")
        counts.append((name, len(texts), alarms))
    return FalseAlarmResult(tuple(misses), tuple(counts))


# --- actions: requests for what the bot does ------------------------------------------------


@dataclass(frozen=True)
class ActionResult(Report):
    total: int
    direct: int
    one_click: int

    def figures(self) -> list[str]:
        """The requests the message itself started, and those a button of the reply starts."""
        return [
            f"requests: {self.total}",
            f"action started by the message itself: {_share(self.direct, self.total)}   "
            f"within one click: {_share(self.one_click, self.total)}",
        ]


def _performed(does: str, replies: list[Any], state: UserState) -> bool:
    kinds = {r.kind for r in replies}
    if does.startswith("start:"):
        return state.dialog == does.removeprefix("start:")
    return {
        # The office finder's work is done when the user's own office is shown (by any route).
        "office": state.dialog == "office"
        or "office" in kinds
        or any("にお住まいの方の窓口は" in r.text for r in replies),
        "delete": state.dialog == "delete",
        "menu": "menu" in kinds,
        "cancel": "cancel" in kinds and state.dialog is None,
        "restart": "restart" in kinds,
        "reminder-list": "reminder-list" in kinds,
        "reminder-stop": "reminder-stop" in kinds,
        "costlog-show": "costlog-table" in kinds,
        "costlog-stop": "costlog-nudge-off" in kinds,
    }[does]


def evaluate_actions(bot: Any, path: Path) -> ActionResult:
    """Send each request of a JSONL file (``{"q", "action"}``) as a new user and check what happened.

    Cancel and start-over are sent inside an open copay dialog (one answer given), the others
    outside any dialog. Direct: the message itself did it. One click: a button of the reply does.
    """
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    does = {a.id: a.does for a in bot.kb.actions}
    direct = one_click = 0
    misses: list[str] = []
    for n, row in enumerate(rows):
        text, action = row["q"], row["action"]
        user = f"action-{n}"
        if action in ("cancel", "restart"):
            bot.handle(IncomingMessage(channel="eval", user=user, choice="start:copay"))
            bot.handle(IncomingMessage(channel="eval", user=user, text="いいえ"))
        replies = bot.handle(IncomingMessage(channel="eval", user=user, text=text))
        with bot.store.unit_of_work() as uow:
            state = uow.conversations.load_state(f"eval:{user}")
        if _performed(does[action], replies, state):
            direct += 1
            one_click += 1
        elif any(c.value == does[action] for r in replies for c in r.choices):
            one_click += 1
            misses.append(f"[{action}: one click away] {text}")
        else:
            got = ",".join(sorted({r.kind for r in replies})) + (f" dialog={state.dialog}" if state.dialog else "")
            misses.append(f"[{action}: got {got}] {text}")
    return ActionResult(tuple(misses), len(rows), direct, one_click)


# --- conversations: a follow-up read in the light of the message before it ---------------------


@dataclass(frozen=True)
class ConversationResult(Report):
    total: int
    in_context: int

    def figures(self) -> list[str]:
        return [
            f"conversations: {self.total}",
            f"follow-ups answered in context: {_share(self.in_context, self.total)}",
        ]


def _second_right(bot: Any, row: dict[str, Any], replies: list[Any], state: UserState) -> bool:
    """Whether the reply to the second message is what the conversation asks for: its topic, its action
    done, or (``"topic": null``) no topic of this subsidy given as the answer."""
    first = replies[0] if replies else None
    if row.get("action"):
        does = {a.id: a.does for a in bot.kb.actions}[row["action"]]
        return _performed(does, replies, state)
    if row.get("topic") is None:
        return first is not None and (first.topic is None or first.kind != "answer")
    return first is not None and first.topic == row["topic"] and first.kind == "answer"


def evaluate_conversations(bot: Any, path: Path) -> ConversationResult:
    """Send each conversation (``{"turns": [first, second], "topic" | "action"}``) as a new user, turn
    by turn, and judge the reply to the last turn: the follow-up must be read with what came before."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    right = 0
    misses: list[str] = []
    for n, row in enumerate(rows):
        user = f"conversation-{n}"
        replies: list[Any] = []
        for text in row["turns"]:
            replies = bot.handle(IncomingMessage(channel="eval", user=user, text=text))
        with bot.store.unit_of_work() as uow:
            state = uow.conversations.load_state(f"eval:{user}")
        if _second_right(bot, row, replies, state):
            right += 1
        else:
            first = replies[0] if replies else None
            got = f"{first.kind}:{first.topic}" if first is not None else "nothing"
            want = row.get("action") or row.get("topic")
            misses.append(f"[{want} -> {got}] " + " / ".join(row["turns"]))
    return ConversationResult(tuple(misses), len(rows), right)
