"""What every handler receives, and small helpers to build replies.

A handler is ``(message, context) -> list[Reply]``. It may change
``context.state`` (the user's conversation state, saved by the core after the
turn), use the narrow ports of ``handlers.ports`` the context carries, and ask
the core for an effect; it never sends, commits or reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from handlers.messages import Choice, IncomingMessage
from nlp.matcher import Matcher
from nlp.text import Text
from handlers.ports import CostLogBook, Effect, HandoffDesk, QuestionLog, ReminderBook, UserState
from knowledge import KnowledgeBase

if TYPE_CHECKING:
    from handlers.dialog import Form

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
