"""What every handler receives, the forms its dialogs are declared with, and small helpers to build replies.

A handler is ``(message, context) -> list[Reply]``. It may change
``context.state`` (the user's conversation state, saved by the core after the
turn), use the narrow ports of ``handlers.ports`` the context carries, and ask
the core for an effect; it never sends, commits or reads the environment.

A dialog is a ``Form`` of ``Slot``s, declared here beside the ``Context`` it is given and that
carries it (``Context.forms``); ``handlers.dialog`` runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from handlers.messages import Choice, IncomingMessage, Reply
from handlers.ports import CostLogBook, Effect, HandoffDesk, QuestionLog, ReminderBook, UserState
from knowledge import KnowledgeBase
from nlp.matcher import Matcher
from nlp.text import Text

CANCEL = Choice("やめる", "cancel")
BACK = Choice("戻る", "back")
MENU = Choice("メニュー", "menu")


@dataclass
class Context:
    """Everything a handler may use during one turn.

    ``channel`` and ``user`` name who is talking ("line", the LINE user id). ``text`` is what they
    said (``text_of`` the message) in the forms the understanding compares, made once for the turn
    (``nlp.text.Text``): handlers read its forms rather than folding the text again. ``reminders`` and
    ``questions`` and ``cost_log`` are bound to that user and write in the turn's transaction: the core commits
    them together with the state, or not at all. ``effects`` are what the handler asks the core
    to do once it has returned (``handlers.ports.DeleteMyData``).
    """

    kb: KnowledgeBase
    matcher: Matcher
    state: UserState
    now: datetime  # timezone-aware, Asia/Tokyo
    channel: str
    user: str
    reminders: ReminderBook
    questions: QuestionLog
    cost_log: CostLogBook
    text: Text
    forms: dict[str, Form] = field(default_factory=dict)
    reminder_offsets: tuple[int, ...] = (60, 30, 7)
    effects: list[Effect] = field(default_factory=list)
    handoff: HandoffDesk | None = None  # the hand-off to staff, where a staff channel is configured

    @property
    def today(self) -> date:
        return self.now.date()


# --- dialogs as data (run by handlers.dialog) ----------------------------------

Answers = Mapping[str, Any]
Parser = Callable[[Text, Context], Any]


def always(_answers: Answers) -> bool:
    return True


@dataclass(frozen=True)
class Slot:
    """One question of a form.

    Attributes:
        name: the contract slot name, shown as ``expecting``.
        ask: the question, or a function of the answers so far that writes it.
        parse: turns the user's text (or a button value) into a value, UNKNOWN or Invalid(hint).
        choices: buttons offered with the question; each value must parse.
        ask_if: the slot is asked only when this holds for the answers so far.
        unknown_help: said when the user answers わからない (where to find the figure).
        allow_unknown: whether わからない is an acceptable answer; if not, ``unknown_help`` is said and the
            question repeated.
        reset_on_no: names of slots to forget when this slot's answer is False (a "no" to a confirmation).
        amends: for a confirmation, the slot it confirms: an answer that is not yes or no but a
            valid answer to that slot replaces it, and the confirmation is asked again
            (「2027年4月30日」 typed at 「この日付でよろしいですか？」 corrects the date).
        label: a short name of the answer, on the buttons that offer to change it after a result.
        unit: what a number answered here counts, said after it on those buttons (円, か月).
    """

    name: str
    ask: str | Callable[[Answers, Context], str]
    parse: Parser
    choices: tuple[Choice, ...] = ()
    ask_if: Callable[[Answers], bool] = always
    unknown_help: str | None = None
    allow_unknown: bool = True
    expecting: str | None = None
    reset_on_no: tuple[str, ...] = ()
    amends: str | None = None
    label: str = ""
    unit: str = ""

    def question(self, answers: Answers, ctx: Context) -> str:
        return self.ask(answers, ctx) if callable(self.ask) else self.ask


@dataclass(frozen=True)
class Form:
    """A dialog as data.

    Attributes:
        name: stored in the state while the dialog is open.
        intro: said once when the dialog starts.
        slots: the questions, in order.
        finish: builds the closing replies from the answers.
        prefill: answers known before the dialog starts (e.g. the municipality already given).
        situation: a note said with the intro when the message that started the dialog names a
            situation the dialog does not fit as it stands (a child, at the adult copay calculator).
        details: the full working behind a result, shown by its 「くわしく」 button; a form with
            details keeps its answers after the result (``LAST``), so that one answer can be
            changed (「間違えた」) and the result seen again.
    """

    name: str
    intro: str
    slots: tuple[Slot, ...]
    finish: Callable[[Answers, Context], list[Reply]]
    prefill: Callable[[Context], dict[str, Any]] = field(default=lambda ctx: {})
    details: Callable[[Answers, Context], list[Reply]] | None = None
    situation: Callable[[Context], str | None] = field(default=lambda ctx: None)

    def slot(self, name: str) -> Slot:
        return next(s for s in self.slots if s.name == name)


# --- replies ------------------------------------------------------------------


def text_of(msg: IncomingMessage) -> str:
    """What the user said: the typed text, or the value of the clicked choice."""
    if msg.choice is not None:
        return msg.choice
    return msg.text or ""


def topic_choice(kb: KnowledgeBase, topic_id: str) -> Choice:
    return Choice(kb.topics[topic_id].label, f"topic:{topic_id}")


def office_text(kb: KnowledgeBase, municipality: str) -> str:
    """The window that serves ``municipality``, with address, phone and fax."""
    from handlers.office import index_for, office_block

    return office_block(kb.prefecture, index_for(kb.prefecture).office_of(municipality), municipality)


def office_hint(kb: KnowledgeBase) -> str:
    """Where to ask when the user's municipality is not known."""
    pref = kb.prefecture
    return (
        f"詳しくは、{pref.office_hint}にお問い合わせください。"
        f"受付は{pref.hours}です。お住まいの市町村名を送っていただければ、窓口の電話番号をお知らせします。"
    )


def municipality_examples(kb: KnowledgeBase) -> str:
    """「（例：…）」 with the prefecture's examples, shown wherever a municipality is asked."""
    return "（例：" + "、".join(kb.prefecture.municipality_examples) + "）"


def known_office(ctx: Context) -> str:
    """The user's office if we know their municipality, else how to find it."""
    muni = ctx.state.profile.get("municipality")
    if muni and any(m.name == muni for m in ctx.kb.prefecture.municipalities):
        return office_text(ctx.kb, muni)
    return office_hint(ctx.kb)
