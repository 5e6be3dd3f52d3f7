"""What handlers may ask of the rest of the bot during a turn, and what they may ask it to do.

Handlers never see the unit of work. They get narrow ports, bound to the user of the turn:

- ``ReminderBook``: the user's renewal reminders (list, register, stop);
- ``QuestionLog``: the operator's statistics of questions;
- ``CostLogBook``: the user's monthly cost log (months, the monthly nudge, the notice that a rule is met);

and they ask for what only the core may do with an *effect* (``Context.effects``), which the
core applies once the handler has returned — today one: ``DeleteMyData``, since deleting the
user's rows and saving their state must be decided in one place.

The storage (``bot.storage``) implements the ports; the values they hand out are defined here,
so that dependencies point one way: core → handlers, never back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

# Delivery states of a reminder's mark. A delivery moves pending → claimed → sent; a failed send
# goes back to pending with a later next attempt, and to failed after the last attempt; a mark
# that is superseded (a newer mark is already due), stopped, replaced or past the expiry is skipped.
PENDING = "pending"
CLAIMED = "claimed"
SENT = "sent"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass
class UserState:
    """One user's conversation state as the handlers see it: a plain copy of the stored state
    (``version`` 0 when the user has none yet), which they may change freely; the core saves
    it after the turn with a version check."""

    user_key: str
    dialog: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    updated_at: datetime | None = None


# --- renewal reminders -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedMark:
    """One mark of a reminder as planned at registration (``handlers.reminders.plan_marks``).

    Attributes:
        offset_days: days before the expiry date.
        due_at: when it may be sent (timezone-aware; 09:00 Asia/Tokyo on its day).
        status: ``pending``, or ``skipped`` for a missed mark older than the latest missed one.
    """

    offset_days: int
    due_at: datetime
    status: str


@dataclass(frozen=True)
class MarkView:
    """A mark of a registered reminder, as stored."""

    offset_days: int
    due_at: datetime
    status: str
    sent_at: datetime | None


@dataclass(frozen=True)
class ReminderView:
    """A registered reminder and its marks, earliest first."""

    id: int
    expiry_date: date
    municipality: str | None
    active: bool
    marks: tuple[MarkView, ...]


@dataclass(frozen=True)
class Registration:
    """What ``ReminderBook.register`` did: the reminder now set, and the expiry dates it replaced."""

    reminder: ReminderView
    replaced: tuple[date, ...]


class ReminderBook(Protocol):
    """The renewal reminders of the turn's user; written in the turn's transaction."""

    def active(self) -> ReminderView | None:
        """The user's active reminder, or None."""
        ...

    def register(
        self, *, expiry_date: date, municipality: str | None, marks: Sequence[PlannedMark], now: datetime
    ) -> Registration:
        """Set the user's reminder for ``expiry_date``, replacing any other active one."""
        ...

    def stop(self) -> int:
        """Stop the user's active reminders. Returns how many."""
        ...


class QuestionLog(Protocol):
    """The operator's statistics of the questions asked (``nanbyo-bot stats``)."""

    def record(self, day: date, topic: str | None, answered: bool, redacted: str | None) -> None:
        """Record one question of the turn's user: its topic (or the closest one), and for an
        unanswered question, or one answered unsure, its text, already redacted (None otherwise)."""
        ...

    def feedback(self, day: date, topic: str | None, kind: str, helpful: bool) -> int:
        """Record the user's 「役に立った」 (``helpful``) or 「役に立たなかった」 on an answer of ``kind``
        about ``topic``; returns the feedback's id."""
        ...

    def feedback_note(self, feedback_id: int, note: str) -> bool:
        """Add what was missing (already redacted) to the user's feedback ``feedback_id``."""
        ...


class HandoffDesk(Protocol):
    """The hand-off to a person of the turn's user (``bot.handoff``), present only where the operator
    configured a staff channel; written in the turn's transaction."""

    def remember(self, redacted: str, topic: str | None) -> None:
        """Keep one question of the user, already redacted, for a few minutes (at most the last three)."""
        ...

    def recent(self) -> list[tuple[str, str | None]]:
        """The user's last questions still kept, oldest first: (redacted text, topic)."""
        ...

    def open(self, topic: str | None, note: str) -> str:
        """Queue the hand-off note (already redacted) for the staff channel; returns its reference."""
        ...


# --- the monthly cost log ----------------------------------------------------------------------

# Kinds of a logged amount: the month's total medical cost (10割), or what the user paid (自己負担).
COST_TOTAL = "total"
COST_PAID = "paid"
# The kind of the monthly message that asks for last month's total.
NUDGE = "nudge"


@dataclass(frozen=True)
class CostEntry:
    """One logged month: ``month`` is its first day; ``kind`` is ``COST_TOTAL`` or ``COST_PAID``."""

    month: date
    amount: int
    kind: str


class CostLogBook(Protocol):
    """The monthly cost log of the turn's user; written in the turn's transaction."""

    def entries(self) -> list[CostEntry]:
        """The user's logged months, earliest first."""
        ...

    def record(self, month: date, amount: int, kind: str) -> bool:
        """Log (or replace) one month's amount. Returns whether a month was already there."""
        ...

    def nudging(self) -> bool:
        """Whether the monthly nudge is on."""
        ...

    def plan_nudges(self, plan: Sequence[tuple[date, datetime]]) -> int:
        """Plan the nudges (the month asked about, when to ask); returns how many are new."""
        ...

    def stop_nudges(self) -> int:
        """Stop the nudges not yet sent. Returns how many."""
        ...

    def schedule_notice(self, kind: str, month: date, due_at: datetime) -> bool:
        """Schedule the one message that says rule ``kind`` is met; False when it already was."""
        ...


# --- effects the core applies after the handler ---------------------------------------------


@dataclass(frozen=True)
class DeleteMyData:
    """Delete everything stored about the turn's user once the turn is done (its state is then
    not saved again); in the turn's transaction, so the reply and the deletion go together."""


Effect = DeleteMyData
