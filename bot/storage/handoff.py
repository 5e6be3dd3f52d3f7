"""The hand-off to a person's SQL: a user's last questions (briefly), hand-off notes, staff replies.

What this is: three tables and ``Handoffs``, their repository on a unit of work's session.

- ``handoff_recent``: at most ``RECENT_KEPT`` questions of a user, redacted (``nlp.privacy.redact``),
  kept ``HANDOFF_RECENT_MINUTES`` (default 20): what a hand-off note quotes.
- ``handoff``: one note the user agreed, in that moment, to send to the staff Slack channel; sent
  exactly once by the hand-off dispatcher (``bot.handoff``) and then known by its thread in Slack.
- ``handoff_reply``: one staff reply in that thread, keyed by the Slack message (``channel:ts``), so a
  reply Slack delivers twice is one row and one message to the user; it is also the audit row (who,
  when, which hand-off, sent when). Its text is kept only until it is sent.

Notes and replies are claimed like the reminders' deliveries (``bot.storage.claims.Claims``): a
pending row (or one whose claim is older than the lease) is claimed, and the claim committed,
before the send, so two dispatchers never send the same row. Everything here goes with ``delete_user`` and the retention
sweep (``purge``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Column, ColumnElement, Index, Text, UniqueConstraint, and_, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql import Executable
from sqlmodel import Field, Session, SQLModel

from bot.storage.claims import Claims
from bot.storage.models import DispatchColumns, utcnow
from handlers.ports import PENDING
from nlp.privacy import hash_user

__all__ = [
    "ClaimedNote",
    "ClaimedReply",
    "Handoff",
    "HandoffRecent",
    "HandoffReply",
    "Handoffs",
    "RECENT_KEPT",
    "UserHandoffs",
]

RECENT_KEPT = 3  # a user's last questions a note may quote


class HandoffRecent(SQLModel, table=True):
    """One recent question of a user, redacted, for a hand-off note; gone after a few minutes."""

    __tablename__ = "handoff_recent"

    id: int | None = Field(default=None, primary_key=True)
    user_key: str = Field(max_length=200, index=True)
    asked_at: datetime = Field(default_factory=utcnow, index=True)
    text: str = Field(max_length=200)  # redacted: no digits, names or e-mail addresses
    topic: str | None = Field(default=None, max_length=80)


class Handoff(DispatchColumns, table=True):
    """A hand-off note the user agreed to send: posted once to the staff channel, then its thread."""

    __tablename__ = "handoff"
    __table_args__ = (
        Index("ix_handoff_status_due", "status", "due_at", "id"),
        Index("ix_handoff_thread", "staff_channel", "staff_ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=40, unique=True)  # the reference staff and user see (a keyed hash)
    user_key: str = Field(max_length=200, index=True)
    channel: str = Field(max_length=20)
    user: str = Field(max_length=200)  # to reach the user with the staff's reply, as reminders do
    topic: str | None = Field(default=None, max_length=80)
    note: str | None = Field(default=None, sa_column=Column(Text))  # redacted; cleared once posted
    staff_channel: str = Field(max_length=40)
    staff_ts: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class HandoffReply(DispatchColumns, table=True):
    """A staff reply in a hand-off's thread, sent to the user once; the audit row of the reply."""

    __tablename__ = "handoff_reply"
    __table_args__ = (
        UniqueConstraint("delivery_key", name="uq_handoff_reply_key"),
        Index("ix_handoff_reply_status_due", "status", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_key: str = Field(max_length=100)  # the Slack message: "<channel>:<ts>"
    handoff_id: int = Field(index=True)
    staff_user: str = Field(max_length=40)  # who answered (a Slack user id of the staff)
    text: str | None = Field(default=None, sa_column=Column(Text))  # cleared once sent or given up
    received_at: datetime = Field(default_factory=utcnow)


_RECENT = HandoffRecent.__table__  # type: ignore[attr-defined]
_HANDOFF = Handoff.__table__  # type: ignore[attr-defined]
_REPLY = HandoffReply.__table__  # type: ignore[attr-defined]
_REPLY_WITH_HANDOFF = _REPLY.join(_HANDOFF, _HANDOFF.c.id == _REPLY.c.handoff_id)


@dataclass(frozen=True)
class ClaimedNote:
    """A hand-off note this dispatcher claimed, to post to the staff channel."""

    id: int
    ref: str
    note: str
    staff_channel: str
    attempts: int
    user_key: str

    @property
    def user(self) -> str:
        return self.staff_channel

    @property
    def key(self) -> str:
        return f"handoff-{self.id}"


@dataclass(frozen=True)
class ClaimedReply:
    """A staff reply this dispatcher claimed, to send to the user on their channel."""

    id: int
    handoff_id: int
    ref: str
    channel: str
    user: str
    user_key: str
    text: str
    attempts: int
    staff_channel: str
    staff_ts: str

    @property
    def key(self) -> str:
        """The same for every attempt: LINE's X-Line-Retry-Key is made from it."""
        return f"handoff-reply-{self.id}"


def _insert_ignore(conn: Any, table: Any, values: dict[str, Any], key: list[str]) -> bool:
    maker = {"postgresql": pg_insert, "sqlite": sqlite_insert}[conn.dialect.name]
    statement = (
        maker(table)
        .values(**values)
        .on_conflict_do_nothing(  # type: ignore[attr-defined]
            index_elements=key
        )
        .returning(table.c.id)
    )
    return conn.execute(statement).first() is not None


class Handoffs:
    """Reads and writes the hand-off tables on ``session`` (a turn's, the intake's or the dispatcher's)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.notes = Claims(session, _HANDOFF)  # for the dispatcher: mark_sent, mark_failed, release_claims
        self.replies = Claims(session, _REPLY, cleared_when_done=("text",))  # the staff's words go once done

    def _run(self, statement: Executable) -> CursorResult[Any]:
        return cast(CursorResult[Any], self.session.execute(statement))

    # --- within a turn -----------------------------------------------------------------------

    def remember(self, user_key: str, text: str, topic: str | None, now: datetime, keep: timedelta) -> None:
        """Keep one (already redacted) question; the user's older ones beyond the last three and
        those older than ``keep`` go at once."""
        self._run(delete(_RECENT).where(_RECENT.c.user_key == user_key, _RECENT.c.asked_at < now - keep))
        self._run(insert(_RECENT).values(user_key=user_key, text=text[:200], topic=topic, asked_at=now))
        ids = [
            row.id
            for row in self._run(
                select(_RECENT.c.id).where(_RECENT.c.user_key == user_key).order_by(_RECENT.c.id.desc())
            ).all()
        ]
        if len(ids) > RECENT_KEPT:
            self._run(delete(_RECENT).where(_RECENT.c.id.in_(ids[RECENT_KEPT:])))

    def recent(self, user_key: str, now: datetime, keep: timedelta) -> list[tuple[str, str | None]]:
        """The user's last questions within ``keep``, oldest first: (redacted text, topic)."""
        rows = self._run(
            select(_RECENT.c.text, _RECENT.c.topic)
            .where(_RECENT.c.user_key == user_key, _RECENT.c.asked_at >= now - keep)
            .order_by(_RECENT.c.id)
        ).all()
        return [(row.text, row.topic) for row in rows][-RECENT_KEPT:]

    def open(
        self,
        *,
        ref: str,
        user_key: str,
        channel: str,
        user: str,
        topic: str | None,
        note: str,
        staff_channel: str,
        now: datetime,
    ) -> int:
        """Record a note to post (pending); returns its id."""
        result = self._run(
            insert(_HANDOFF).values(
                ref=ref,
                user_key=user_key,
                channel=channel,
                user=user,
                topic=topic,
                note=note,
                staff_channel=staff_channel,
                created_at=now,
                due_at=now,
                status=PENDING,
                attempts=0,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    # --- the staff's replies (the Slack intake) ----------------------------------------------

    def take_reply(
        self, *, staff_channel: str, thread_ts: str, ts: str, staff_user: str, text: str, now: datetime
    ) -> bool | None:
        """Record a staff reply in a hand-off's thread once (its key is the Slack message).

        Returns True when recorded, False when that message was recorded already (Slack delivered
        it again), None when the thread is no hand-off of ours (or one already deleted)."""
        handoff = self._run(
            select(_HANDOFF.c.id).where(_HANDOFF.c.staff_channel == staff_channel, _HANDOFF.c.staff_ts == thread_ts)
        ).first()
        if handoff is None:
            return None
        return _insert_ignore(
            self.session.connection(),
            _REPLY,
            {
                "delivery_key": f"{staff_channel}:{ts}",
                "handoff_id": handoff.id,
                "staff_user": staff_user[:40],
                "text": text,
                "received_at": now,
                "due_at": now,
                "status": PENDING,
                "attempts": 0,
            },
            ["delivery_key"],
        )

    # --- for the dispatcher ------------------------------------------------------------------

    def claim_notes(
        self, *, now: datetime, stale_before: datetime, worker_id: str, batch: int = 50
    ) -> list[ClaimedNote]:
        """Claim up to ``batch`` notes to post (pending, or claimed before ``stale_before``); commit before posting."""
        claimed = self.notes.claim(
            self._claimable(self.notes, now, stale_before),
            limit=batch,
            worker_id=worker_id,
            claimed_at=now,
            order_by=(_HANDOFF.c.id,),
        )
        if not claimed:
            return []
        rows = self._run(select(_HANDOFF).where(_HANDOFF.c.id.in_(claimed)).order_by(_HANDOFF.c.id)).all()
        return [ClaimedNote(r.id, r.ref, r.note or "", r.staff_channel, r.attempts, r.user_key) for r in rows]

    def claim_replies(
        self, *, now: datetime, stale_before: datetime, worker_id: str, channels: list[str], batch: int = 50
    ) -> list[ClaimedReply]:
        """Claim up to ``batch`` staff replies to users on ``channels``; commit before sending."""
        claimed = self.replies.claim(
            and_(self._claimable(self.replies, now, stale_before), _HANDOFF.c.channel.in_(channels)),
            limit=batch,
            worker_id=worker_id,
            claimed_at=now,
            source=_REPLY_WITH_HANDOFF,
            order_by=(_REPLY.c.id,),
        )
        if not claimed:
            return []
        rows = self._run(
            select(
                _REPLY.c.id,
                _REPLY.c.handoff_id,
                _REPLY.c.text,
                _REPLY.c.attempts,
                _HANDOFF.c.ref,
                _HANDOFF.c.channel,
                _HANDOFF.c.user,
                _HANDOFF.c.user_key,
                _HANDOFF.c.staff_channel,
                _HANDOFF.c.staff_ts,
            )
            .select_from(_REPLY_WITH_HANDOFF)
            .where(_REPLY.c.id.in_(claimed))
            .order_by(_REPLY.c.id)
        ).all()
        return [
            ClaimedReply(
                r.id,
                r.handoff_id,
                r.ref,
                r.channel,
                r.user,
                r.user_key,
                r.text or "",
                r.attempts,
                r.staff_channel,
                r.staff_ts or "",
            )
            for r in rows
        ]

    @staticmethod
    def _claimable(claims: Claims, now: datetime, stale_before: datetime) -> ColumnElement[bool]:
        """Pending and past any retry wait (a note or reply is due when it is written), or a stale claim."""
        return or_(claims.ready(now), claims.stale(stale_before))

    def record_thread(self, note_id: int, ts: str) -> None:
        """The posted note is Slack message ``ts``, the thread of the staff's replies; its text goes."""
        self._run(update(_HANDOFF).where(_HANDOFF.c.id == note_id).values(staff_ts=ts, note=None))

    def purge(self, *, recent_before: datetime, handoffs_before: datetime) -> int:
        """The retention sweep: questions older than their few minutes, hand-offs (and their
        replies) older than HANDOFF_RETENTION_DAYS."""
        removed = self._run(delete(_RECENT).where(_RECENT.c.asked_at < recent_before)).rowcount or 0
        old = select(_HANDOFF.c.id).where(_HANDOFF.c.created_at < handoffs_before)
        removed += self._run(delete(_REPLY).where(_REPLY.c.handoff_id.in_(old))).rowcount or 0
        return removed + (self._run(delete(_HANDOFF).where(_HANDOFF.c.created_at < handoffs_before)).rowcount or 0)

    def delete_user(self, user_key: str) -> int:
        """Everything of the user: recent questions, hand-offs and the replies to them."""
        removed = self._run(delete(_RECENT).where(_RECENT.c.user_key == user_key)).rowcount or 0
        mine = select(_HANDOFF.c.id).where(_HANDOFF.c.user_key == user_key)
        removed += self._run(delete(_REPLY).where(_REPLY.c.handoff_id.in_(mine))).rowcount or 0
        return removed + (self._run(delete(_HANDOFF).where(_HANDOFF.c.user_key == user_key)).rowcount or 0)

    def audit(self, ref: str) -> list[dict[str, Any]]:
        """The audit rows of one hand-off: who answered, when, when it was sent (no text)."""
        rows = self._run(
            select(_REPLY.c.staff_user, _REPLY.c.received_at, _REPLY.c.status, _REPLY.c.sent_at, _REPLY.c.text)
            .join(_HANDOFF, _HANDOFF.c.id == _REPLY.c.handoff_id)
            .where(_HANDOFF.c.ref == ref)
            .order_by(_REPLY.c.id)
        ).all()
        return [dict(row._mapping) for row in rows]


class UserHandoffs:
    """The ``handlers.ports.HandoffDesk`` of one turn: the user's hand-offs on the turn's unit of work.

    ``on_open`` is called once the turn that queued a note has committed (the desk posts it then).
    """

    def __init__(
        self,
        repo: Handoffs,
        *,
        channel: str,
        user: str,
        user_key: str,
        now: datetime,
        keep: timedelta,
        staff_channel: str,
        after_commit: list[Any] | None = None,
        on_open: Any = None,
    ) -> None:
        self.repo, self.channel, self.user, self.user_key = repo, channel, user, user_key
        self.now, self.keep, self.staff_channel = now, keep, staff_channel
        self._after_commit, self._on_open = after_commit, on_open

    def remember(self, redacted: str, topic: str | None) -> None:
        self.repo.remember(self.user_key, redacted, topic, self.now, self.keep)

    def recent(self) -> list[tuple[str, str | None]]:
        return self.repo.recent(self.user_key, self.now, self.keep)

    def open(self, topic: str | None, note: str) -> str:
        # The reference staff and user see: the user's keyed log id (LOG_HASH_KEY, as in the logs),
        # cut short, and a random part that tells this hand-off from the user's others.
        ref = f"{hash_user(self.user_key)[:6]}-{secrets.token_hex(2)}"
        self.repo.open(
            ref=ref,
            user_key=self.user_key,
            channel=self.channel,
            user=self.user,
            topic=topic,
            note=f"相談の引き継ぎ（受付番号 {ref}）\n{note}",
            staff_channel=self.staff_channel,
            now=self.now,
        )
        if self._after_commit is not None and self._on_open is not None:
            self._after_commit.append(self._on_open)
        return ref
