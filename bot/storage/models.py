"""Database tables (sqlmodel). SQLite by default, PostgreSQL when DATABASE_URL says so.

Personal data is kept to the minimum: the conversation state of a user's open
dialog, the municipality they told us (to name their office), the ids of
events already handled, and reminders they asked for. Message text is stored only while its
turn waits to run (``PendingTurn``), and deleted once it ran.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from handlers.ports import PENDING


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ConversationState(SQLModel, table=True):
    """One row per user: the open dialog, its answers so far, and a small profile.

    ``version`` grows by one on every save; a save that finds another version
    fails instead of silently merging two concurrent turns.
    """

    __tablename__ = "conversation_state"

    user_key: str = Field(primary_key=True, max_length=200)
    dialog: str | None = Field(default=None, max_length=50)
    slots: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    history: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    profile: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = Field(default=0)
    updated_at: datetime = Field(default_factory=utcnow)


class HandledEvent(SQLModel, table=True):
    """A channel event already answered: the unique key makes a redelivery a no-op."""

    __tablename__ = "handled_event"
    __table_args__ = (UniqueConstraint("channel", "event_id", name="uq_handled_event"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    event_id: str = Field(max_length=200)
    user_key: str = Field(max_length=200, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class UnfollowedUser(SQLModel, table=True):
    """A LINE user who blocked the bot, as a tombstone: a turn of theirs recorded before the
    unfollow and run after its deletion (by another instance, or later in the queue) is dropped
    instead of creating their rows again (``bot.core``); a follow (unblocking) removes it.

    ``key`` is not the user id — that would keep exactly what the deletion removes — but its
    keyed hash (``Statistics.stats_user``: HMAC-SHA256 with the database's own secret, the same
    in every process and instance, which a plain hash of known LINE ids would not protect).
    """

    __tablename__ = "unfollowed_user"

    key: str = Field(primary_key=True, max_length=80)
    created_at: datetime = Field(default_factory=utcnow, index=True)


# --- renewal reminders ---------------------------------------------------------------------


class Reminder(SQLModel, table=True):
    """A renewal reminder a user asked for: one row per user and certificate (expiry date).

    ``channel`` and ``user`` are kept because a reminder is pushed later, outside any turn.
    ``active`` turns False when the user stops it or registers another date.
    """

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("user_key", "expiry_date", name="uq_reminder_user_expiry"),)

    id: int | None = Field(default=None, primary_key=True)
    user_key: str = Field(max_length=200, index=True)
    channel: str = Field(max_length=20)
    user: str = Field(max_length=200)
    expiry_date: date
    municipality: str | None = Field(default=None, max_length=50)
    created_at: datetime = Field(default_factory=utcnow)
    active: bool = Field(default=True)


class DispatchColumns(SQLModel):
    """The columns of a message the reminder dispatcher sends exactly once (``bot.reminders``):
    when it is due, its status (see ``handlers.ports`` for the states), and the claim — which
    dispatcher took it and when, its attempts, the last error and when to try again."""

    due_at: datetime  # stored in UTC
    status: str = Field(default=PENDING, max_length=10)
    attempts: int = Field(default=0)
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=200)
    next_attempt_at: datetime | None = None


class ReminderDelivery(DispatchColumns, table=True):
    """One message of a reminder (a mark, e.g. 30 days before expiry).

    The unique (reminder_id, offset_days) means a mark exists once; the status and
    ``claimed_by`` mean only the dispatcher that claimed it sends it.
    """

    __tablename__ = "reminder_delivery"
    __table_args__ = (
        UniqueConstraint("reminder_id", "offset_days", name="uq_reminder_delivery"),
        # The dispatcher's claim: rows of one status in due order, read in index order.
        Index("ix_reminder_delivery_status_due", "status", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reminder_id: int = Field(foreign_key="reminder.id")
    offset_days: int  # due at 09:00 Asia/Tokyo on the mark's day


class QuestionStat(SQLModel, table=True):
    """One FAQ question, for the operator's statistics (``nanbyo-bot stats``).

    Only unanswered questions and questions answered without certainty keep their
    text, and only after redaction (digits and personal names removed). ``user_key`` holds a keyed hash of the user key
    (``Statistics.stats_user``), never the channel's user id. Rows are kept for a
    bounded time and deleted with the user's other data.
    """

    __tablename__ = "question_stat"
    __table_args__ = (Index("ix_question_stat_day", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    user_key: str = Field(max_length=200, index=True)
    topic: str | None = Field(default=None, max_length=80)  # answered topic, or the closest one when not answered
    answered: bool  # an answered row with a text was answered unsure (handlers.feedback.unsure)
    redacted: str | None = Field(default=None, max_length=200)


class DeliveryStat(SQLModel, table=True):
    """How deliveries fared when the message API failed for a moment, per day and channel
    (``nanbyo-bot stats``): counts only, nobody's id or text.

    ``outcome``: ``retried`` (an attempt failed and the delivery was tried again), ``delivered_late``
    (a delivery that had failed got through), ``maybe_twice`` (one of those after an attempt the
    platform may have shown anyway: no idempotency key, a 5xx or a timeout), ``given_up`` (still
    failing after ``OUTBOX_EXPIRY_SECONDS``).
    """

    __tablename__ = "delivery_stat"

    day: date = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=20)
    outcome: str = Field(primary_key=True, max_length=20)
    count: int = 0


class AnswerFeedback(SQLModel, table=True):
    """A user's 「役に立った」/「役に立たなかった」 on one answer, for the operator (``nanbyo-bot review``).

    What was answered (its topic, or the closest one, and the kind of reply), whether it helped,
    and the optional note on what was missing, redacted as the statistics' texts are. The user is
    the statistics' keyed id (``Statistics.stats_user``); kept for ``STATS_RETENTION_DAYS`` and
    deleted with the user's other data.
    """

    __tablename__ = "answer_feedback"
    __table_args__ = (Index("ix_answer_feedback_day", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    user_key: str = Field(max_length=200, index=True)
    topic: str | None = Field(default=None, max_length=80)
    kind: str = Field(max_length=30)  # the reply's kind: answer, fallback, office, copay-result …
    helpful: bool
    note: str | None = Field(default=None, max_length=200)


class AppSecret(SQLModel, table=True):
    """A random secret made once per database, shared by every process and instance using it.

    ``stats``: the key of the keyed user ids in ``question_stat`` (see
    ``Statistics.stats_user``); it lives beside the rows it keys, so that deletion finds them
    from any process, whatever LOG_HASH_KEY says.
    """

    __tablename__ = "app_secret"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=200)


class RateWindow(SQLModel, table=True):
    """Messages of one user in the current minute, to slow down a flood politely."""

    __tablename__ = "rate_window"

    user_key: str = Field(primary_key=True, max_length=200)
    window_start: datetime
    count: int = 0


class PendingTurn(SQLModel, table=True):
    """A Slack or LINE turn acknowledged to the platform and not answered yet (``bot.turns``).

    Written before the acknowledgement, so that a crash of every process loses nothing Slack
    or LINE will not send again; deleted as soon as the answer is posted. It is the one place
    where a message's text is stored, for as long as its turn takes (usually well under a
    second; longer only while the database or the turn process is down).

    The HTTP server writes it with no ``owner`` (``""``); a turn runner takes it (``owner``, the
    runner's name), renews ``lease_at`` while it lives, and another runner (a restarted turn
    process, or another instance's) takes over a turn whose lease ran out. On SQLite the table lives in a file
    of its own beside the database (``bot.storage.db.turn_queue_url``), so that recording a turn
    before the ack never waits for the database's one write lock behind the turns being run.
    Ids are never reused (``AUTOINCREMENT``): a ``TurnAnswer`` names its turn by id.
    """

    __tablename__ = "pending_turn"
    __table_args__ = (Index("ix_pending_turn_lease", "lease_at", "id"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # "slack" or "line"
    user_key: str = Field(max_length=200, index=True)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON: the message(s) and where to answer
    owner: str = Field(max_length=100)
    lease_at: datetime
    attempts: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow)


class TurnAnswer(SQLModel, table=True):
    """The answer a recorded turn committed, written in the turn's own transaction.

    So that a turn re-run after a crash (its answer maybe not posted) posts that answer again
    instead of running the dialog twice: the turn's event is already claimed. Deleted, with
    its ``PendingTurn``, once the answer is posted.
    """

    __tablename__ = "turn_answer"

    turn_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    replies: str = Field(sa_column=Column(Text, nullable=False))  # JSON, by part of the turn
    created_at: datetime = Field(default_factory=utcnow)


# --- the monthly cost log -----------------------------------------------------------------------

# What an amount of the cost log is: the month's total medical cost (10割, what 高額かつ長期 and
# 軽症高額 count), or only what the patient paid (自己負担), which says nothing about the total.
from handlers.ports import COST_TOTAL  # noqa: E402  (the kinds of a logged amount: handlers.ports)


class CostLogEntry(SQLModel, table=True):
    """One month of a user's cost log: personal health data, so nothing but the four columns.

    ``month`` is the first day of the month. Deleted with the user's other data; never in
    logs or statistics.
    """

    __tablename__ = "cost_log_entry"
    __table_args__ = (UniqueConstraint("user_key", "month", "kind", name="uq_cost_log_entry"),)

    id: int | None = Field(default=None, primary_key=True)
    user_key: str = Field(max_length=200, index=True)
    month: date
    amount: int
    kind: str = Field(default=COST_TOTAL, max_length=10)


class CostLogNotice(DispatchColumns, table=True):
    """A message of the cost log that the reminder dispatcher sends (``bot.reminders.dispatch_due``).

    ``kind`` is ``nudge`` (asks for the total of ``month``), ``high-cost`` or ``mild`` (the
    month the sixth month over 50,000円, or the third over 33,330円, arrived). The unique
    (user_key, kind, month) is what makes each of them go out once; the claim columns are those
    of ``ReminderDelivery`` (``DispatchColumns``). The channel's user id is the part of ``user_key`` after
    the channel.
    """

    __tablename__ = "cost_log_notice"
    __table_args__ = (
        UniqueConstraint("user_key", "kind", "month", name="uq_cost_log_notice"),
        Index("ix_cost_log_notice_status_due", "status", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_key: str = Field(max_length=200, index=True)
    channel: str = Field(max_length=20)
    kind: str = Field(max_length=10)
    month: date
