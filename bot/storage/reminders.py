"""Renewal reminders and their deliveries: registered, listed and stopped within a turn (through
``UserReminders``, the handlers' ``ReminderBook``), claimed, marked and counted by the dispatcher
(``bot.reminders``) through ``bot.storage.claims.Claims``, each dispatcher step in its own short
unit of work so that a claim is committed before anything is sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CursorResult, Result, and_, delete, exists, func, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.storage.claims import Claims
from bot.storage.models import Reminder, ReminderDelivery
from handlers.ports import CLAIMED, FAILED, PENDING, SENT, SKIPPED, MarkView, PlannedMark, Registration, ReminderView

TOKYO = ZoneInfo("Asia/Tokyo")


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


def delivery_key(reminder_id: int, offset_days: int) -> str:
    """The idempotency key of one mark of one reminder."""
    return f"reminder-{reminder_id}-{offset_days}"


_DELIVERY = ReminderDelivery.__table__  # type: ignore[attr-defined]  # Core table, for the claims
_REMINDER = Reminder.__table__  # type: ignore[attr-defined]
_WITH_REMINDER = _DELIVERY.join(_REMINDER, _REMINDER.c.id == _DELIVERY.c.reminder_id)
_DELIVERED = (SENT, CLAIMED)  # a mark in these states has gone out, or is going out right now
_REPLANNABLE = (PENDING, SKIPPED, FAILED)


class Reminders(Claims):
    """Reminders and deliveries, on the unit of work's session; for the dispatcher, the deliveries'
    claims (``Claims``: ``mark_sent``, ``mark_failed``, ``release_claims``)."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, _DELIVERY)

    # --- within a turn ------------------------------------------------------------------------

    def register(
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
        replaced = self._retire_others(user_key, expiry_date)
        reminder_id = self._upsert(
            user_key=user_key, channel=channel, user=user, expiry_date=expiry_date, municipality=municipality, now=now
        )
        self._plan_deliveries(reminder_id, marks, now)
        self.session.flush()
        view = self._view(reminder_id)
        assert view is not None
        return Registration(view, replaced)

    def _retire_others(self, user_key: str, expiry_date: date) -> tuple[date, ...]:
        """Stop the user's active reminders for other dates (their pending marks are skipped).

        Returns:
            Their expiry dates, in order.
        """
        others = self.session.exec(
            select(Reminder).where(
                col(Reminder.user_key) == user_key,
                col(Reminder.active).is_(True),
                col(Reminder.expiry_date) != expiry_date,
            )
        ).all()
        replaced = tuple(sorted(r.expiry_date for r in others))
        for other in others:
            other.active = False
            self.session.add(other)
        self._skip_pending([r.id for r in others if r.id is not None])
        return replaced

    def _upsert(
        self, *, user_key: str, channel: str, user: str, expiry_date: date, municipality: str | None, now: datetime
    ) -> int:
        """The user's reminder for ``expiry_date``, created or updated in place, and active. Returns its id."""
        row = self.session.exec(
            select(Reminder).where(col(Reminder.user_key) == user_key, col(Reminder.expiry_date) == expiry_date)
        ).first()
        if row is None:
            row = Reminder(
                user_key=user_key,
                channel=channel,
                user=user,
                expiry_date=expiry_date,
                municipality=municipality,
                created_at=now,
                active=True,
            )
        else:
            row.channel, row.user, row.municipality, row.active = channel, user, municipality, True
        self.session.add(row)
        self.session.flush()
        assert row.id is not None
        return row.id

    def _plan_deliveries(self, reminder_id: int, marks: Sequence[PlannedMark], now: datetime) -> None:
        """Write the plan's marks of one reminder; a mark that went out (or is going out) stays as it is,
        and a pending mark the plan no longer has is skipped."""
        existing = {
            d.offset_days: d
            for d in self.session.exec(
                select(ReminderDelivery).where(col(ReminderDelivery.reminder_id) == reminder_id)
            ).all()
        }
        delivered = {o for o, d in existing.items() if d.status in _DELIVERED}
        newest_delivered = min(delivered, default=None)
        for mark in marks:
            if mark.offset_days in delivered:
                continue  # it went out already (or is going out): never twice
            status = _planned_status(mark, now, newest_delivered)
            old = existing.get(mark.offset_days)
            if old is None:
                self.session.add(
                    ReminderDelivery(
                        reminder_id=reminder_id, offset_days=mark.offset_days, due_at=mark.due_at, status=status
                    )
                )
            else:
                self._replan(old.id, mark, status)
        planned = {m.offset_days for m in marks}
        self._skip_unplanned([d.id for o, d in existing.items() if o not in planned and d.id is not None])

    def _replan(self, delivery_id: int | None, mark: PlannedMark, status: str) -> None:
        """Plan an existing delivery afresh; conditional: a dispatcher that claimed it meanwhile keeps it."""
        self.session.execute(
            update(ReminderDelivery)
            .where(col(ReminderDelivery.id) == delivery_id, col(ReminderDelivery.status).in_(_REPLANNABLE))
            .values(
                due_at=mark.due_at,
                status=status,
                attempts=0,
                claimed_by=None,
                claimed_at=None,
                sent_at=None,
                last_error=None,
                next_attempt_at=None,
            )
            .execution_options(synchronize_session=False)
        )

    def _skip_unplanned(self, delivery_ids: list[int]) -> None:
        """Skip the pending deliveries of offsets no longer configured."""
        if delivery_ids:
            self.session.execute(
                update(ReminderDelivery)
                .where(col(ReminderDelivery.id).in_(delivery_ids), col(ReminderDelivery.status) == PENDING)
                .values(status=SKIPPED)
                .execution_options(synchronize_session=False)
            )

    def active(self, user_key: str) -> ReminderView | None:
        """The user's active reminder, or None."""
        rid = self.session.exec(
            select(col(Reminder.id))
            .where(col(Reminder.user_key) == user_key, col(Reminder.active).is_(True))
            .order_by(col(Reminder.id).desc())
        ).first()
        return None if rid is None else self._view(rid)

    def stop(self, user_key: str) -> int:
        """Stop the user's active reminders; their pending marks are skipped. Returns how many.

        A mark a dispatcher has already claimed may still go out (it is being sent).
        """
        rows = self.session.exec(
            select(Reminder).where(col(Reminder.user_key) == user_key, col(Reminder.active).is_(True))
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
                .where(col(ReminderDelivery.reminder_id).in_(reminder_ids), col(ReminderDelivery.status) == PENDING)
                .values(status=SKIPPED)
                .execution_options(synchronize_session=False)
            )

    def _view(self, reminder_id: int) -> ReminderView | None:
        row = self.session.get(Reminder, reminder_id, populate_existing=True)
        if row is None or row.id is None:
            return None
        marks = self.session.exec(
            select(ReminderDelivery)
            .where(col(ReminderDelivery.reminder_id) == reminder_id)
            .order_by(col(ReminderDelivery.due_at))
            .execution_options(populate_existing=True)
        ).all()
        return ReminderView(
            id=row.id,
            expiry_date=row.expiry_date,
            municipality=row.municipality,
            active=row.active,
            marks=tuple(MarkView(m.offset_days, m.due_at, m.status, m.sent_at) for m in marks),
        )

    def forget(self, user_key: str) -> int:
        """Delete the user's reminders and their deliveries. Returns the rows removed."""
        # Deliveries first: they reference the user's reminders.
        mine = select(col(Reminder.id)).where(col(Reminder.user_key) == user_key)
        removed = _count(
            self.session.execute(delete(ReminderDelivery).where(col(ReminderDelivery.reminder_id).in_(mine)))
        )
        removed += _count(self.session.execute(delete(Reminder).where(col(Reminder.user_key) == user_key)))
        return removed

    # --- for the dispatcher (each call in its own short unit of work) ---------------------------

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

        Claimable (``Claims.claim_due``): pending and due (and past any retry wait), or claimed
        before ``stale_before`` by a dispatcher that died; of an active, unexpired reminder on
        one of ``channels``; and not superseded by a more recent mark that is due as well.

        Returns:
            The claimed deliveries, in due order.
        """
        if not channels or batch <= 0:
            return []
        ids = self.claim_due(
            now=now,
            stale_before=stale_before,
            where=_deliverable(now, channels),
            limit=batch,
            worker_id=worker_id,
            claimed_at=claimed_at,
            source=_WITH_REMINDER,
        )
        if not ids:
            return []
        rows = self.session.execute(
            core_select(  # sqlmodel's select is typed for up to four columns
                col(ReminderDelivery.id),
                col(ReminderDelivery.reminder_id),
                col(ReminderDelivery.offset_days),
                col(ReminderDelivery.attempts),
                col(Reminder.channel),
                col(Reminder.user),
                col(Reminder.user_key),
                col(Reminder.expiry_date),
                col(Reminder.municipality),
            )
            .join(Reminder, col(Reminder.id) == col(ReminderDelivery.reminder_id))
            .where(col(ReminderDelivery.id).in_(ids))
            .order_by(col(ReminderDelivery.due_at), col(ReminderDelivery.id))
        ).all()
        return [ClaimedDelivery(*row) for row in rows]

    def skip_stale_deliveries(self, *, now: datetime, stale_before: datetime) -> int:
        """Skip marks that must not go out any more. Returns how many.

        A due mark is skipped when a more recent mark of the same reminder is due too (a
        dispatcher that was down sends the latest one, not a burst), or when its reminder
        has expired or was stopped.
        """
        today = now.astimezone(TOKYO).date()
        waiting = or_(
            col(ReminderDelivery.status) == PENDING,
            and_(col(ReminderDelivery.status) == CLAIMED, col(ReminderDelivery.claimed_at) <= stale_before),
        )
        gone = col(ReminderDelivery.reminder_id).in_(
            select(col(Reminder.id)).where(or_(col(Reminder.expiry_date) < today, col(Reminder.active).is_(False)))
        )
        pick = select(col(ReminderDelivery.id)).where(
            waiting, col(ReminderDelivery.due_at) <= now, or_(_superseded(now), gone)
        )
        if self._is_postgres():
            pick = pick.with_for_update(skip_locked=True)  # never wait for a claimer's rows
        result = self.session.execute(
            update(ReminderDelivery)
            .where(col(ReminderDelivery.id).in_(pick.correlate(None)), waiting)
            .values(status=SKIPPED)
            .execution_options(synchronize_session=False)
        )
        return _count(result)

    def count_pending(self, *, now: datetime, channels: Sequence[str]) -> PendingCounts:
        """How many pending deliveries of active reminders are due (with/without a sender) or not."""
        due = and_(
            col(ReminderDelivery.due_at) <= now,
            or_(col(ReminderDelivery.next_attempt_at).is_(None), col(ReminderDelivery.next_attempt_at) <= now),
        )
        has_sender = col(Reminder.channel).in_(list(channels))
        base = (
            select(
                func.count().filter(and_(due, has_sender)),
                func.count().filter(and_(due, ~has_sender)),
                func.count().filter(~due),
            )
            .select_from(ReminderDelivery)
            .join(Reminder, col(Reminder.id) == col(ReminderDelivery.reminder_id))
            .where(col(ReminderDelivery.status) == PENDING, col(Reminder.active).is_(True))
        )
        row = self.session.execute(base).one()
        return PendingCounts(due=row[0] or 0, no_sender=row[1] or 0, not_due=row[2] or 0)


class UserReminders:
    """``handlers.ports.ReminderBook`` for one user: the reminders bound to the turn's user."""

    def __init__(self, reminders: Reminders, channel: str, user: str, user_key: str) -> None:
        self._reminders = reminders
        self._channel = channel
        self._user = user
        self._user_key = user_key

    def active(self) -> ReminderView | None:
        return self._reminders.active(self._user_key)

    def register(
        self, *, expiry_date: date, municipality: str | None, marks: Sequence[PlannedMark], now: datetime
    ) -> Registration:
        return self._reminders.register(
            user_key=self._user_key,
            channel=self._channel,
            user=self._user,
            expiry_date=expiry_date,
            municipality=municipality,
            marks=marks,
            now=now,
        )

    def stop(self) -> int:
        return self._reminders.stop(self._user_key)


def _count(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE touched (``Session.execute`` types its result as a plain ``Result``)."""
    return cast(CursorResult[Any], result).rowcount or 0


def _planned_status(mark: PlannedMark, now: datetime, newest_delivered: int | None) -> str:
    """The status a planned mark is written with: a missed mark is skipped when the user already got
    one at least as recent (``newest_delivered``: the smallest offset delivered, or None)."""
    if (
        mark.status == PENDING
        and mark.due_at <= now
        and newest_delivered is not None
        and newest_delivered <= mark.offset_days
    ):
        return SKIPPED
    return mark.status


def _superseded(now: datetime) -> ColumnElement[bool]:
    """A more recent mark of the same reminder is due at ``now`` (whatever its state)."""
    newer = aliased(ReminderDelivery)
    return exists().where(
        col(newer.reminder_id) == col(ReminderDelivery.reminder_id),
        col(newer.offset_days) < col(ReminderDelivery.offset_days),
        col(newer.due_at) <= now,
    )


def _deliverable(now: datetime, channels: Sequence[str]) -> ColumnElement[bool]:
    """The reminder is active and not expired, its channel has a sender, no newer mark is due."""
    today = now.astimezone(TOKYO).date()
    return and_(
        col(Reminder.active).is_(True),
        col(Reminder.expiry_date) >= today,
        col(Reminder.channel).in_(list(channels)),
        ~_superseded(now),
    )
