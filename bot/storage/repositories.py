"""The only module that reads and writes SQL. One unit of work per turn.

A turn opens a ``UnitOfWork``, claims the event id (so a redelivered event is
answered once, also across instances), loads the user's state, lets the
handlers change it in memory, saves it with a version check, and commits all
of it together.

Renewal reminders live here too: a turn registers, lists or stops them through
its unit of work; the dispatcher (``bot.reminders``) claims, marks and counts
deliveries, each step in its own short unit of work so that a claim is committed
before anything is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, func, insert, or_, text, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from bot.privacy import hash_user  # noqa: F401 - re-exported for older imports
from bot.storage.models import (
    AppSecret,
    QuestionStat,
    RateWindow,
    CLAIMED,
    FAILED,
    PENDING,
    SENT,
    SKIPPED,
    ConversationState,
    UserState,
    HandledEvent,
    PendingTurn,
    Reminder,
    TurnAnswer,
    ReminderDelivery,
    utcnow,
)

TOKYO = ZoneInfo("Asia/Tokyo")


# Question statistics are kept this long (see ``record_question`` and ``nanbyo-bot stats``).
STATS_RETENTION_DAYS = 90


class StaleStateError(Exception):
    """Another turn of the same user saved first; the caller may retry the turn."""


class DuplicateEvent(Exception):
    """The event was already handled (by this or another instance)."""


# --- renewal reminders: what the repository hands out ------------------------------------------


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
    """What ``register_reminder`` did: the reminder now set, and the expiry dates it replaced."""

    reminder: ReminderView
    replaced: tuple[date, ...]


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery this dispatcher has claimed: everything needed to send it."""

    id: int
    reminder_id: int
    offset_days: int
    attempts: int
    channel: str
    user: str
    user_key: str
    expiry_date: date
    municipality: str | None

    @property
    def key(self) -> str:
        """The idempotency key: the same for every attempt of this mark, so a channel that
        deduplicates on it (LINE's X-Line-Retry-Key) never shows the message twice."""
        return delivery_key(self.reminder_id, self.offset_days)


@dataclass(frozen=True)
class PendingCounts:
    """Pending deliveries of active reminders after a dispatch step."""

    due: int  # due now and a sender exists for the channel
    no_sender: int  # due now, but nothing here can send on that channel
    not_due: int  # due later, or waiting for a retry


@dataclass(frozen=True)
class AdoptedTurn:
    """A pending turn this instance took over from one whose lease ran out (``adopt_turns``)."""

    id: int
    kind: str
    payload: str
    attempts: int


def delivery_key(reminder_id: int, offset_days: int) -> str:
    """The idempotency key of one mark of one reminder."""
    return f"reminder-{reminder_id}-{offset_days}"


# The user key of handled events whose user's data was deleted (see ``UnitOfWork.delete_user``).
FORGOTTEN_USER = "-"


def checkpoint_sqlite(engine: Engine) -> None:
    """Copy SQLite's WAL into the database file and truncate it, so that rows just deleted (and
    overwritten there by ``secure_delete``) leave no older copy in the ``-wal`` file.

    Best effort: a reader that is in the middle of a transaction keeps the frames it needs; the
    next checkpoint (SQLite runs one every 1,000 pages, and this one after every deletion)
    removes them.
    """
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


_DELIVERY = ReminderDelivery.__table__  # type: ignore[attr-defined]  # Core table, for the hot paths
_EVENT = HandledEvent.__table__  # type: ignore[attr-defined]
_STATE = ConversationState.__table__  # type: ignore[attr-defined]
_RATE = RateWindow.__table__  # type: ignore[attr-defined]
_STAT = QuestionStat.__table__  # type: ignore[attr-defined]
_SECRET = AppSecret.__table__  # type: ignore[attr-defined]
_INSERT_SECRET_IF_NEW = {
    "postgresql": pg_insert(_SECRET).on_conflict_do_nothing(index_elements=["name"]),
    "sqlite": sqlite_insert(_SECRET).on_conflict_do_nothing(index_elements=["name"]),
}
_SELECT_SECRET = core_select(_SECRET.c.value).where(_SECRET.c.name == bindparam("b_name"))
_TURN = PendingTurn.__table__  # type: ignore[attr-defined]
_ANSWER = TurnAnswer.__table__  # type: ignore[attr-defined]

# A turn's statements, built once: building a statement costs more than SQLite running it.
# Execution parameters named like a column fill an INSERT's values or an UPDATE's SET.
_INSERT_EVENT = insert(_EVENT)
# A redelivered event is the common duplicate: ON CONFLICT DO NOTHING says so by returning no row
# instead of a failed statement (which PostgreSQL would also write to its own log each time).
_INSERT_EVENT_IF_NEW = {
    "postgresql": pg_insert(_EVENT).on_conflict_do_nothing(constraint="uq_handled_event").returning(_EVENT.c.id),
    "sqlite": sqlite_insert(_EVENT).on_conflict_do_nothing(index_elements=["channel", "event_id"])
    .returning(_EVENT.c.id),
}
_SELECT_STATE = core_select(_STATE).where(_STATE.c.user_key == bindparam("b_user_key"))
_INSERT_STATE = insert(_STATE)
_UPDATE_STATE = update(_STATE).where(
    _STATE.c.user_key == bindparam("b_user_key"), _STATE.c.version == bindparam("b_version")
)
_BUMP_RATE = (
    update(_RATE)
    .where(_RATE.c.user_key == bindparam("b_user_key"), _RATE.c.window_start > bindparam("b_since"))
    .values(count=_RATE.c.count + 1)
    .returning(_RATE.c.count)
)
_INSERT_RATE = insert(_RATE)
_UPDATE_RATE = update(_RATE).where(_RATE.c.user_key == bindparam("b_user_key"))
_INSERT_STAT = insert(_STAT)
_INSERT_TURN = insert(_TURN).returning(_TURN.c.id, sort_by_parameter_order=True)
_UPDATE_ANSWER = update(_ANSWER).where(_ANSWER.c.turn_id == bindparam("b_id"))
_INSERT_ANSWER = insert(_ANSWER)
_DELETE_TURN = delete(_TURN).where(_TURN.c.id == bindparam("b_id"))
# Built once: the dispatcher runs this once per delivery.
_MARK_SENT = (
    update(_DELIVERY)
    .where(_DELIVERY.c.id == bindparam("delivery_id"), _DELIVERY.c.status == CLAIMED,
           _DELIVERY.c.claimed_by == bindparam("worker_id"))
    .values(status=SENT, sent_at=bindparam("sent_at"), next_attempt_at=None)
)
_DELIVERED = (SENT, CLAIMED)  # a mark in these states has gone out, or is going out right now
_REPLANNABLE = (PENDING, SKIPPED, FAILED)


class UnitOfWork:
    """The statements of one transaction. A turn's own statements (event claim, rate window,
    state, statistics) are plain Core SQL on the session's connection: they run on every
    message, and the ORM's identity map and flushes cost several times the SQL itself."""

    def __init__(self, session: Session, retention: _Retention | None = None,
                 stats_key: _StatsKey | None = None) -> None:
        self.session = session
        self._retention = retention
        self._stats_key = stats_key if stats_key is not None else _StatsKey()
        self.after_commit: list[Callable[[], None]] = []  # run by Store.unit_of_work once committed

    def _conn(self) -> Connection:
        return self.session.connection()

    def claim_event(self, channel: str, event_id: str, user_key: str) -> None:
        """Record ``event_id`` as handled; raise DuplicateEvent when it already was.

        The row is inserted at once: on PostgreSQL a concurrent instance handling
        the same event waits on the unique index and then fails, so only one
        of them answers.
        """
        conn = self._conn()
        values = {"channel": channel, "event_id": event_id, "user_key": user_key, "created_at": utcnow()}
        statement = _INSERT_EVENT_IF_NEW.get(conn.dialect.name)
        if statement is None:  # another database: the unique index says it
            try:
                conn.execute(_INSERT_EVENT, values)
            except IntegrityError as exc:
                raise DuplicateEvent(event_id) from exc
            return
        if conn.execute(statement, values).first() is None:
            raise DuplicateEvent(event_id)

    def load_state(self, user_key: str) -> UserState:
        """The user's state, detached (a copy the handlers may change freely)."""
        row = self._conn().execute(_SELECT_STATE, {"b_user_key": user_key}).first()
        if row is None:
            return UserState(user_key=user_key)
        # The JSON columns are decoded afresh for every read, so nothing here is shared.
        return UserState(
            user_key=row.user_key,
            dialog=row.dialog,
            slots=row.slots,
            history=row.history,
            profile=row.profile,
            version=row.version,
            updated_at=row.updated_at,
        )

    def save_state(self, state: UserState) -> None:
        """Write ``state`` if nobody else saved this user since it was loaded."""
        values = {
            "dialog": state.dialog,
            "slots": state.slots,
            "history": state.history,
            "profile": state.profile,
            "version": state.version + 1,
            "updated_at": utcnow(),
        }
        conn = self._conn()
        if state.version == 0:
            try:
                conn.execute(_INSERT_STATE, {"user_key": state.user_key, **values})
            except IntegrityError as exc:  # another turn created this user first
                raise StaleStateError(state.user_key) from exc
        else:
            result = conn.execute(_UPDATE_STATE, {"b_user_key": state.user_key, "b_version": state.version, **values})
            if result.rowcount != 1:
                raise StaleStateError(state.user_key)
        state.version += 1

    def delete_user(self, user_key: str) -> int:
        """Delete everything stored about one user. Returns the number of rows removed.

        Handled event ids are kept, with the user key removed (``FORGOTTEN_USER``): a Slack retry
        or LINE redelivery of the very event that asked for the deletion (or of an earlier one)
        is then still a duplicate — answered once, and nothing about the user is created again.
        An event id names a delivery, not a person. On SQLite, the deleted rows' bytes are
        overwritten (``secure_delete``, see ``bot.storage.db``) and the WAL is checkpointed and
        truncated once the deletion has committed, so no copy stays in the ``-wal`` file.
        """
        removed = 0
        # Deliveries first: they reference the user's reminders.
        mine = select(Reminder.id).where(Reminder.user_key == user_key)
        removed += self.session.execute(
            delete(ReminderDelivery).where(ReminderDelivery.reminder_id.in_(mine))
        ).rowcount or 0
        for table, column in (
            (Reminder, Reminder.user_key),
            (ConversationState, ConversationState.user_key),
            (RateWindow, RateWindow.user_key),
        ):
            removed += self.session.execute(delete(table).where(column == user_key)).rowcount or 0
        # Statistics carry the keyed id; rows written before it existed carry the user key.
        removed += self.session.execute(
            delete(QuestionStat).where(QuestionStat.user_key.in_([user_key, self.stats_user(user_key)]))
        ).rowcount or 0
        removed += self.session.execute(
            update(HandledEvent).where(HandledEvent.user_key == user_key).values(user_key=FORGOTTEN_USER)
            .execution_options(synchronize_session=False)
        ).rowcount or 0
        engine = self.session.get_bind().engine
        if engine.dialect.name == "sqlite":
            self.after_commit.append(lambda: checkpoint_sqlite(engine))
        return removed

    # --- flood control and statistics -----------------------------------------------------------

    def count_message(self, user_key: str, now: datetime, window_seconds: int = 60) -> int:
        """Count one message of ``user_key``; returns how many it sent in the current window.

        One atomic UPDATE in the usual case, so two messages of one user at once on PostgreSQL
        are both counted (the row lock orders them); a new window or a new user takes a second
        statement.
        """
        conn = self._conn()
        row = conn.execute(_BUMP_RATE, {"b_user_key": user_key, "b_since": now - timedelta(seconds=window_seconds)}).first()
        if row is not None:
            return int(row[0])
        restarted = conn.execute(_UPDATE_RATE, {"b_user_key": user_key, "window_start": now, "count": 1})
        if restarted.rowcount == 1:
            return 1
        try:
            conn.execute(_INSERT_RATE, {"user_key": user_key, "window_start": now, "count": 1})
        except IntegrityError as exc:  # two first messages of one user at once: redo the turn
            raise StaleStateError(user_key) from exc
        return 1

    def stats_user(self, user_key: str) -> str:
        """The id of ``user_key`` in the statistics: an HMAC-SHA256 with the database's own secret.

        Not ``hash_user``: its key may be random per run, while a statistics row must be found
        by the deletion of its user from any process, at any later time. The secret lives in the
        database (``app_secret``), so the id is stable for as long as the rows are; it keeps the
        channel's user id out of the statistics, not out of reach of whoever holds the database.
        """
        key = self._stats_key.get()
        if key is None:
            conn = self._conn()
            statement = _INSERT_SECRET_IF_NEW.get(conn.dialect.name)
            values = {"name": "stats", "value": secrets.token_hex(32)}
            if statement is not None:
                conn.execute(statement, values)
            elif conn.execute(_SELECT_SECRET, {"b_name": "stats"}).first() is None:
                conn.execute(insert(_SECRET), values)
            value = conn.execute(_SELECT_SECRET, {"b_name": "stats"}).scalar_one()
            key = value.encode("utf-8")
            holder = self._stats_key
            self.after_commit.append(lambda: holder.set(key))  # once it is surely in the database
        return "s-" + hmac.new(key, user_key.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def record_question(self, user_key: str, day: date, topic: str | None, answered: bool,
                        redacted: str | None) -> None:
        """Record one FAQ question for the statistics (text only when unanswered, already redacted);
        the user is recorded as ``stats_user(user_key)``."""
        self._conn().execute(_INSERT_STAT, {
            "day": day, "user_key": self.stats_user(user_key), "topic": topic, "answered": answered,
            "redacted": None if answered else redacted,
        })
        # Bounded retention without a separate job: once a day per process, the first question
        # of the day deletes what has grown older than the limit.
        if self._retention is None or self._retention.due(day):
            self.purge_stats(day - timedelta(days=STATS_RETENTION_DAYS))
            if self._retention is not None:
                retention = self._retention
                self.after_commit.append(lambda: retention.done(day))

    def purge_stats(self, before: date) -> int:
        """Delete statistics older than ``before`` (the retention limit)."""
        return self.session.execute(delete(QuestionStat).where(QuestionStat.day < before)).rowcount or 0

    def question_stats(self, since: date) -> tuple[list[tuple[str | None, int, int]], list[tuple[str, int]]]:
        """Per topic (answered, not answered) counts, and the most frequent unanswered questions."""
        rows = self.session.execute(
            select(QuestionStat.topic, QuestionStat.answered, func.count())
            .where(QuestionStat.day >= since)
            .group_by(QuestionStat.topic, QuestionStat.answered)
        ).all()
        per_topic: dict[str | None, list[int]] = {}
        for topic, answered, n in rows:
            per_topic.setdefault(topic, [0, 0])[0 if answered else 1] += n
        table = sorted(((t, a, u) for t, (a, u) in per_topic.items()), key=lambda r: (-(r[1] + r[2]), r[0] or ""))
        frequent = self.session.execute(
            select(QuestionStat.redacted, func.count().label("n"))
            .where(QuestionStat.day >= since, QuestionStat.answered.is_(False), QuestionStat.redacted.is_not(None))
            .group_by(QuestionStat.redacted)
            .order_by(func.count().desc(), QuestionStat.redacted)
            .limit(20)
        ).all()
        return table, [(text, n) for text, n in frequent]

    # --- renewal reminders, within a turn -------------------------------------------------------

    def register_reminder(
        self,
        *,
        user_key: str,
        channel: str,
        user: str,
        expiry_date: date,
        municipality: str | None,
        marks: Sequence[PlannedMark],
        now: datetime,
    ) -> Registration:
        """Set the user's reminder for ``expiry_date``, replacing any other active one.

        Registering the same date again updates that reminder in place and keeps what
        was already delivered: a mark sent before is never sent again, and a missed mark
        is not sent when one at least as recent already was.

        Args:
            user_key: ``channel:user`` of the turn.
            channel: the channel to push the reminder on.
            user: the channel's user id (needed to push).
            expiry_date: the end of the certificate's validity, as the user gave it.
            municipality: the user's municipality, to name their office; None if unknown.
            marks: the plan (``handlers.reminders.plan_marks``).
            now: the turn's time (timezone-aware).

        Returns:
            The reminder as stored, and the expiry dates of the reminders it replaced.
        """
        others = self.session.exec(
            select(Reminder).where(
                Reminder.user_key == user_key, Reminder.active.is_(True), Reminder.expiry_date != expiry_date
            )
        ).all()
        replaced = tuple(sorted(r.expiry_date for r in others))
        for other in others:
            other.active = False
            self.session.add(other)
        self._skip_pending([r.id for r in others if r.id is not None])

        row = self.session.exec(
            select(Reminder).where(Reminder.user_key == user_key, Reminder.expiry_date == expiry_date)
        ).first()
        if row is None:
            row = Reminder(user_key=user_key, channel=channel, user=user, expiry_date=expiry_date,
                           municipality=municipality, created_at=now, active=True)
        else:
            row.channel, row.user, row.municipality, row.active = channel, user, municipality, True
        self.session.add(row)
        self.session.flush()
        assert row.id is not None

        existing = {
            d.offset_days: d
            for d in self.session.exec(select(ReminderDelivery).where(ReminderDelivery.reminder_id == row.id)).all()
        }
        delivered = {o for o, d in existing.items() if d.status in _DELIVERED}
        newest_delivered = min(delivered, default=None)
        for mark in marks:
            if mark.offset_days in delivered:
                continue  # it went out already (or is going out): never twice
            status = mark.status
            if (status == PENDING and mark.due_at <= now and newest_delivered is not None
                    and newest_delivered <= mark.offset_days):
                status = SKIPPED  # a missed mark, but the user already got one at least as recent
            old = existing.get(mark.offset_days)
            if old is None:
                self.session.add(ReminderDelivery(reminder_id=row.id, offset_days=mark.offset_days,
                                                  due_at=mark.due_at, status=status))
            else:
                # Conditional: a dispatcher that claimed this row meanwhile keeps it.
                self.session.execute(
                    update(ReminderDelivery)
                    .where(ReminderDelivery.id == old.id, ReminderDelivery.status.in_(_REPLANNABLE))
                    .values(due_at=mark.due_at, status=status, attempts=0, claimed_by=None, claimed_at=None,
                            sent_at=None, last_error=None, next_attempt_at=None)
                    .execution_options(synchronize_session=False)
                )
        planned = {m.offset_days for m in marks}
        dropped = [d.id for o, d in existing.items() if o not in planned and d.id is not None]
        if dropped:  # offsets no longer configured
            self.session.execute(
                update(ReminderDelivery)
                .where(ReminderDelivery.id.in_(dropped), ReminderDelivery.status == PENDING)
                .values(status=SKIPPED)
                .execution_options(synchronize_session=False)
            )
        self.session.flush()
        view = self._view(row.id)
        assert view is not None
        return Registration(view, replaced)

    def active_reminder(self, user_key: str) -> ReminderView | None:
        """The user's active reminder, or None."""
        rid = self.session.exec(
            select(Reminder.id)
            .where(Reminder.user_key == user_key, Reminder.active.is_(True))
            .order_by(Reminder.id.desc())  # type: ignore[union-attr]
        ).first()
        return None if rid is None else self._view(rid)

    def stop_reminders(self, user_key: str) -> int:
        """Stop the user's active reminders; their pending marks are skipped. Returns how many.

        A mark a dispatcher has already claimed may still go out (it is being sent).
        """
        rows = self.session.exec(
            select(Reminder).where(Reminder.user_key == user_key, Reminder.active.is_(True))
        ).all()
        for row in rows:
            row.active = False
            self.session.add(row)
        self.session.flush()
        self._skip_pending([r.id for r in rows if r.id is not None])
        return len(rows)

    def _skip_pending(self, reminder_ids: list[int]) -> None:
        if reminder_ids:
            self.session.execute(
                update(ReminderDelivery)
                .where(ReminderDelivery.reminder_id.in_(reminder_ids), ReminderDelivery.status == PENDING)
                .values(status=SKIPPED)
                .execution_options(synchronize_session=False)
            )

    def _view(self, reminder_id: int) -> ReminderView | None:
        row = self.session.get(Reminder, reminder_id, populate_existing=True)
        if row is None or row.id is None:
            return None
        marks = self.session.exec(
            select(ReminderDelivery)
            .where(ReminderDelivery.reminder_id == reminder_id)
            .order_by(ReminderDelivery.due_at)  # type: ignore[arg-type]
            .execution_options(populate_existing=True)
        ).all()
        return ReminderView(
            id=row.id,
            expiry_date=row.expiry_date,
            municipality=row.municipality,
            active=row.active,
            marks=tuple(MarkView(m.offset_days, m.due_at, m.status, m.sent_at) for m in marks),
        )

    # --- turns acked and not yet answered (bot.turn_worker), each call its own short unit of work --

    def add_pending_turn(self, *, kind: str, user_key: str, payload: str, owner: str, now: datetime) -> int:
        """Record a turn before it is acknowledged; ``owner`` runs it. Returns its id."""
        return self.add_pending_turns([(kind, user_key, payload)], owner=owner, now=now)[0]

    def add_pending_turns(self, turns: Sequence[tuple[str, str, str]], *, owner: str, now: datetime) -> list[int]:
        """Record several turns ``(kind, user_key, payload)`` at once (one statement); their ids, in order."""
        rows = [{"kind": kind, "user_key": user_key, "payload": payload, "owner": owner, "lease_at": now,
                 "attempts": 1, "created_at": now} for kind, user_key, payload in turns]
        return [int(turn_id) for turn_id in self._conn().execute(_INSERT_TURN, rows).scalars()]

    def finish_turns(self, turn_ids: Sequence[int]) -> int:
        """Delete turns whose answers are posted (one statement). Returns how many were there."""
        return self._conn().execute(delete(_TURN).where(_TURN.c.id.in_(list(turn_ids)))).rowcount or 0

    def keep_turn_replies(self, turn_id: int, replies: str) -> None:
        """Store the answer of a recorded turn, in the turn's own transaction (see ``TurnAnswer``)."""
        conn = self._conn()
        if (conn.execute(_UPDATE_ANSWER, {"b_id": turn_id, "replies": replies}).rowcount or 0) == 0:
            conn.execute(_INSERT_ANSWER, {"turn_id": turn_id, "replies": replies, "created_at": utcnow()})

    def turn_replies(self, turn_id: int) -> str | None:
        """The answer a turn committed before, or None (not run yet, or already finished)."""
        return self._conn().execute(
            core_select(_ANSWER.c.replies).where(_ANSWER.c.turn_id == turn_id)
        ).scalar()

    def purge_turn_answers(self, before: datetime) -> int:
        """Delete kept answers older than ``before`` (left by a crash after their turn was deleted)."""
        return self._conn().execute(delete(_ANSWER).where(_ANSWER.c.created_at < before)).rowcount or 0

    def forget_turn_answers(self, turn_ids: Sequence[int]) -> int:
        """Delete the kept answers of turns whose answers are posted. Returns how many."""
        return self._conn().execute(delete(_ANSWER).where(_ANSWER.c.turn_id.in_(list(turn_ids)))).rowcount or 0

    def finish_turn(self, turn_id: int) -> bool:
        """Delete a turn once its answer is posted (its message text goes with it)."""
        return (self._conn().execute(_DELETE_TURN, {"b_id": turn_id}).rowcount or 0) == 1

    def renew_turns(self, owner: str, turn_ids: Sequence[int], now: datetime) -> int:
        """Renew the lease of turns ``owner`` still runs: it is alive. Returns how many."""
        return self._conn().execute(
            update(_TURN).where(_TURN.c.owner == owner, _TURN.c.id.in_(list(turn_ids))).values(lease_at=now)
        ).rowcount or 0

    def adopt_turns(self, *, owner: str, stale_before: datetime, now: datetime, limit: int) -> list[AdoptedTurn]:
        """Take over up to ``limit`` turns whose owner died (lease older than ``stale_before``).

        As the reminder dispatcher claims deliveries: PostgreSQL ``SELECT … FOR UPDATE SKIP
        LOCKED`` then an UPDATE, so two instances never take the same turn nor wait for each
        other; SQLite one ``UPDATE … WHERE id IN (SELECT …) RETURNING``, atomic under its write lock.
        Oldest first, so that a user's turns keep their order.
        """
        if limit <= 0:
            return []
        pick = core_select(_TURN.c.id).where(_TURN.c.lease_at < stale_before).order_by(_TURN.c.id).limit(limit)
        values = {"owner": owner, "lease_at": now, "attempts": _TURN.c.attempts + 1}
        conn = self._conn()
        if conn.dialect.name == "postgresql":
            ids = list(conn.execute(pick.with_for_update(skip_locked=True)).scalars())
            if not ids:
                return []
            rows = conn.execute(update(_TURN).where(_TURN.c.id.in_(ids)).values(**values)
                                .returning(_TURN.c.id, _TURN.c.kind, _TURN.c.payload, _TURN.c.attempts)).all()
        else:
            rows = conn.execute(update(_TURN).where(_TURN.c.id.in_(pick.scalar_subquery())).values(**values)
                                .returning(_TURN.c.id, _TURN.c.kind, _TURN.c.payload, _TURN.c.attempts)).all()
        return sorted((AdoptedTurn(*row) for row in rows), key=lambda t: t.id)

    def count_pending_turns(self) -> int:
        """Turns acked and not yet answered, on every instance."""
        return int(self._conn().execute(core_select(func.count()).select_from(_TURN)).scalar_one())

    # --- renewal reminders, for the dispatcher (each call in its own short unit of work) ----------

    def _is_postgres(self) -> bool:
        bind = self.session.get_bind()
        return bind.dialect.name == "postgresql"

    def claim_deliveries(
        self,
        *,
        now: datetime,
        stale_before: datetime,
        claimed_at: datetime,
        worker_id: str,
        channels: Sequence[str],
        batch: int,
    ) -> list[ClaimedDelivery]:
        """Claim up to ``batch`` deliveries that may be sent at ``now``; commit before sending.

        Claimable: pending and due (and past any retry wait), or claimed before
        ``stale_before`` by a dispatcher that died; of an active, unexpired reminder on one
        of ``channels``; and not superseded by a more recent mark that is due as well.

        PostgreSQL: ``SELECT … FOR UPDATE OF reminder_delivery SKIP LOCKED`` then an UPDATE of
        those rows, so two dispatchers never wait for or take each other's rows. SQLite has
        no row locks (it drops FOR UPDATE silently): one ``UPDATE … WHERE id IN (SELECT …)
        RETURNING id`` runs under the database write lock, which makes picking and claiming
        one atomic step.

        Returns:
            The claimed deliveries, in due order.
        """
        if not channels or batch <= 0:
            return []
        values = {
            "status": CLAIMED,
            "claimed_by": worker_id,
            "claimed_at": claimed_at,
            "attempts": ReminderDelivery.attempts + 1,
        }
        # Two picks rather than one OR: each condition then walks the (status, due_at, id)
        # index in order and stops after `batch` rows, however many rows are pending.
        ids = self._claim(_stale_claim(now, stale_before, channels), batch, values)
        if len(ids) < batch:
            ids += self._claim(_due_pending(now, channels), batch - len(ids), values)
        if not ids:
            return []
        rows = self.session.execute(
            select(
                ReminderDelivery.id, ReminderDelivery.reminder_id, ReminderDelivery.offset_days,
                ReminderDelivery.attempts, Reminder.channel, Reminder.user, Reminder.user_key,
                Reminder.expiry_date, Reminder.municipality,
            )
            .join(Reminder, Reminder.id == ReminderDelivery.reminder_id)  # type: ignore[arg-type]
            .where(ReminderDelivery.id.in_(ids))
            .order_by(ReminderDelivery.due_at, ReminderDelivery.id)  # type: ignore[arg-type]
        ).all()
        return [ClaimedDelivery(*row) for row in rows]

    def _claim(self, condition: ColumnElement[bool], limit: int, values: dict[str, object]) -> list[int]:
        pick = (
            select(ReminderDelivery.id)
            .join(Reminder, Reminder.id == ReminderDelivery.reminder_id)  # type: ignore[arg-type]
            .where(condition)
            .order_by(ReminderDelivery.due_at, ReminderDelivery.id)  # type: ignore[arg-type]
            .limit(limit)
        )
        if self._is_postgres():
            ids = list(self.session.execute(pick.with_for_update(skip_locked=True, of=ReminderDelivery)).scalars())
            if ids:
                self.session.execute(
                    update(ReminderDelivery).where(ReminderDelivery.id.in_(ids)).values(**values)
                    .execution_options(synchronize_session=False)
                )
            return ids
        return list(self.session.execute(
            update(ReminderDelivery)
            .where(ReminderDelivery.id.in_(pick.correlate(None)))
            .values(**values)
            .returning(ReminderDelivery.id)
            .execution_options(synchronize_session=False)
        ).scalars())

    def mark_sent(self, delivery_id: int, worker_id: str, sent_at: datetime) -> bool:
        """Record a delivery as sent. False when this worker no longer holds the claim."""
        result = self.session.connection().execute(
            _MARK_SENT, {"delivery_id": delivery_id, "worker_id": worker_id, "sent_at": sent_at}
        )
        return result.rowcount == 1

    def mark_failed(self, delivery_id: int, worker_id: str, error: str, retry_at: datetime | None) -> bool:
        """Record a failed send: pending again from ``retry_at``, or failed for good when None.

        Returns False when this worker no longer holds the claim.
        """
        result = self.session.connection().execute(
            update(_DELIVERY)
            .where(_DELIVERY.c.id == delivery_id, _DELIVERY.c.status == CLAIMED, _DELIVERY.c.claimed_by == worker_id)
            .values(status=PENDING if retry_at is not None else FAILED, last_error=error[:200],
                    next_attempt_at=retry_at)
        )
        return result.rowcount == 1

    def release_claims(self, delivery_ids: Sequence[int], worker_id: str) -> int:
        """Give back claims this worker will not send (the attempt is not counted)."""
        if not delivery_ids:
            return 0
        result = self.session.execute(
            update(ReminderDelivery)
            .where(ReminderDelivery.id.in_(list(delivery_ids)), ReminderDelivery.status == CLAIMED,
                   ReminderDelivery.claimed_by == worker_id)
            .values(status=PENDING, claimed_by=None, claimed_at=None, attempts=ReminderDelivery.attempts - 1)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0

    def skip_stale_deliveries(self, *, now: datetime, stale_before: datetime) -> int:
        """Skip marks that must not go out any more. Returns how many.

        A due mark is skipped when a more recent mark of the same reminder is due too (a
        dispatcher that was down sends the latest one, not a burst), or when its reminder
        has expired or was stopped.
        """
        today = now.astimezone(TOKYO).date()
        waiting = or_(
            ReminderDelivery.status == PENDING,
            and_(ReminderDelivery.status == CLAIMED, ReminderDelivery.claimed_at <= stale_before),  # type: ignore[operator]
        )
        gone = ReminderDelivery.reminder_id.in_(
            select(Reminder.id).where(or_(Reminder.expiry_date < today, Reminder.active.is_(False)))
        )
        pick = select(ReminderDelivery.id).where(
            waiting, ReminderDelivery.due_at <= now, or_(_superseded(now), gone)
        )
        if self._is_postgres():
            pick = pick.with_for_update(skip_locked=True)  # never wait for a claimer's rows
        result = self.session.execute(
            update(ReminderDelivery)
            .where(ReminderDelivery.id.in_(pick.correlate(None)), waiting)
            .values(status=SKIPPED)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0

    def count_pending(self, *, now: datetime, channels: Sequence[str]) -> PendingCounts:
        """How many pending deliveries of active reminders are due (with/without a sender) or not."""
        due = and_(
            ReminderDelivery.due_at <= now,
            or_(ReminderDelivery.next_attempt_at.is_(None), ReminderDelivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
        )
        has_sender = Reminder.channel.in_(list(channels))
        base = (
            select(
                func.count().filter(and_(due, has_sender)),
                func.count().filter(and_(due, ~has_sender)),
                func.count().filter(~due),
            )
            .select_from(ReminderDelivery)
            .join(Reminder, Reminder.id == ReminderDelivery.reminder_id)  # type: ignore[arg-type]
            .where(ReminderDelivery.status == PENDING, Reminder.active.is_(True))
        )
        row = self.session.execute(base).one()
        return PendingCounts(due=row[0] or 0, no_sender=row[1] or 0, not_due=row[2] or 0)


class _StatsKey:
    """The database's statistics secret once read from a committed row (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: bytes | None = None

    def get(self) -> bytes | None:
        with self._lock:
            return self._key

    def set(self, key: bytes) -> None:
        with self._lock:
            self._key = key


class _Retention:
    """Remembers the last day this process purged old statistics (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._purged_on: date | None = None

    def due(self, day: date) -> bool:
        with self._lock:
            return self._purged_on != day

    def done(self, day: date) -> None:
        """Called once the purge of ``day`` is committed (a turn that rolls back leaves it due)."""
        with self._lock:
            self._purged_on = day


class Store:
    """Opens units of work on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.retention = _Retention()
        self.stats_key = _StatsKey()

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        with Session(self.engine, expire_on_commit=False) as session:
            uow = UnitOfWork(session, self.retention, self.stats_key)
            try:
                yield uow
                session.commit()
            except BaseException:
                session.rollback()
                raise
            for action in uow.after_commit:
                action()

    @contextmanager
    def autocommit(self) -> Iterator[UnitOfWork]:
        """A unit of work on one held connection where every statement commits by itself.

        For the dispatcher's marks: each ``mark_sent`` / ``mark_failed`` is one conditional
        UPDATE, durable the moment it returns, without a BEGIN/COMMIT round trip or a
        connection checkout per delivery. Not for turns (they need all-or-nothing).
        """
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # No flush to disk per mark: a crash of *this* process loses nothing (the database has
            # the commit); only a crash of the database server or the machine can lose the last
            # fraction of a second of marks, and those deliveries are then sent again after the
            # lease with the same idempotency key (see bot.reminders). It spares one WAL flush per
            # delivery, which is what bounds the dispatch rate. PostgreSQL: asynchronous commit;
            # SQLite (WAL): synchronous=NORMAL. Both are per connection and restored afterwards.
            dialect = conn.dialect.name
            if dialect == "postgresql":
                conn.execute(text("SET synchronous_commit TO off"))
            elif dialect == "sqlite":
                previous = conn.execute(text("PRAGMA synchronous")).scalar()
                conn.execute(text("PRAGMA synchronous=NORMAL"))
            try:
                with Session(bind=conn, expire_on_commit=False) as session:
                    yield UnitOfWork(session, stats_key=self.stats_key)
            finally:
                if not conn.closed and not conn.invalidated:  # the pooled connection goes back as it came
                    if dialect == "postgresql":
                        conn.execute(text("RESET synchronous_commit"))
                    elif dialect == "sqlite":
                        conn.execute(text(f"PRAGMA synchronous={int(previous or 2)}"))


def _superseded(now: datetime) -> ColumnElement[bool]:
    """A more recent mark of the same reminder is due at ``now`` (whatever its state)."""
    newer = aliased(ReminderDelivery)
    return exists().where(
        newer.reminder_id == ReminderDelivery.reminder_id,
        newer.offset_days < ReminderDelivery.offset_days,
        newer.due_at <= now,
    )


def _deliverable(now: datetime, channels: Sequence[str]) -> ColumnElement[bool]:
    """The reminder is active and not expired, its channel has a sender, no newer mark is due."""
    today = now.astimezone(TOKYO).date()
    return and_(
        Reminder.active.is_(True),
        Reminder.expiry_date >= today,
        Reminder.channel.in_(list(channels)),
        ~_superseded(now),
    )


def _due_pending(now: datetime, channels: Sequence[str]) -> ColumnElement[bool]:
    return and_(
        ReminderDelivery.status == PENDING,
        ReminderDelivery.due_at <= now,
        or_(ReminderDelivery.next_attempt_at.is_(None), ReminderDelivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
        _deliverable(now, channels),
    )


def _stale_claim(now: datetime, stale_before: datetime, channels: Sequence[str]) -> ColumnElement[bool]:
    """A claim whose dispatcher died (its lease ran out): another dispatcher may take it over."""
    return and_(
        ReminderDelivery.status == CLAIMED,
        ReminderDelivery.claimed_at <= stale_before,  # type: ignore[operator]
        _deliverable(now, channels),
    )
