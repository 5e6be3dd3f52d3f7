"""Exactly-once sending in SQL: claim due rows of a message table, then mark each sent or failed.

What this is: ``Claims``, the lease-and-claim protocol for any table with ``DispatchColumns``
(reminder deliveries, cost-log messages, hand-off notes and staff replies), on one session:

- ``claim`` / ``claim_due``: pick claimable rows and mark them claimed by one dispatcher, in one
  step no other dispatcher can interleave with. PostgreSQL: ``SELECT … FOR UPDATE OF <table>
  SKIP LOCKED`` then an ``UPDATE`` of those rows, so two dispatchers never wait for or take each
  other's rows. SQLite has no row locks (it drops FOR UPDATE silently): one ``UPDATE … WHERE id
  IN (SELECT …) RETURNING id`` runs under the database write lock, which makes picking and
  claiming one atomic step. The caller commits the claim before it sends anything.
- ``stale``: a claim older than the lease belongs to a dispatcher that died; it is claimable
  again, so the message is not lost.
- ``mark_sent`` / ``mark_failed`` / ``release_claims``: conditional on this dispatcher still
  holding the claim, so a dispatcher whose claim was taken over records nothing.

What this is not: which rows are due for a given table (its repository adds those conditions),
the send itself, or the retry policy (``bot.reminders``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Executable, FromClause, Table, and_, bindparam, or_, select, update
from sqlalchemy.sql.dml import Update
from sqlmodel import Session

from handlers.ports import CLAIMED, FAILED, PENDING, SENT

__all__ = ["Claims"]


class Claims:
    """Claims on the rows of ``table`` (one with ``DispatchColumns``), on ``session``.

    Args:
        session: the unit of work's session (a claim in its own short transaction; the marks on
            an autocommit connection, see ``Store.autocommit``).
        table: the Core table of the messages.
        cleared_when_done: columns set to NULL once a message is sent or given up (text that is
            not kept after delivery).
    """

    def __init__(self, session: Session, table: Table, *, cleared_when_done: Sequence[str] = ()) -> None:
        self.session = session
        self.table = table
        self.cleared_when_done = tuple(cleared_when_done)

    def _run(self, statement: Executable) -> CursorResult[Any]:
        """Execute in the session; typed as what it is for DML, a cursor result with ``rowcount``."""
        return cast(CursorResult[Any], self.session.execute(statement))

    # --- which rows may be claimed ---------------------------------------------------------------

    def ready(self, now: datetime) -> ColumnElement[bool]:
        """Pending and past any retry wait."""
        t = self.table.c
        return and_(t.status == PENDING, or_(t.next_attempt_at.is_(None), t.next_attempt_at <= now))

    def due(self, now: datetime) -> ColumnElement[bool]:
        """Pending, due at ``now`` and past any retry wait."""
        return and_(self.ready(now), self.table.c.due_at <= now)

    def stale(self, stale_before: datetime) -> ColumnElement[bool]:
        """Claimed at or before ``stale_before`` (the lease ran out): its dispatcher died."""
        t = self.table.c
        return and_(t.status == CLAIMED, t.claimed_at <= stale_before)

    # --- claiming ----------------------------------------------------------------------------------

    def claim_due(
        self,
        *,
        now: datetime,
        stale_before: datetime,
        where: ColumnElement[bool],
        limit: int,
        worker_id: str,
        claimed_at: datetime,
        source: FromClause | None = None,
    ) -> list[int]:
        """Claim up to ``limit`` rows matching ``where``: stale claims first, then rows due at ``now``.

        Two picks rather than one OR: each condition then walks the (status, due_at, id) index in
        order and stops after ``limit`` rows, however many rows are pending.

        Returns:
            The ids claimed (not yet committed).
        """
        ids = self.claim(
            and_(self.stale(stale_before), where),
            limit=limit,
            worker_id=worker_id,
            claimed_at=claimed_at,
            source=source,
        )
        if len(ids) < limit:
            ids += self.claim(
                and_(self.due(now), where),
                limit=limit - len(ids),
                worker_id=worker_id,
                claimed_at=claimed_at,
                source=source,
            )
        return ids

    def claim(
        self,
        condition: ColumnElement[bool],
        *,
        limit: int,
        worker_id: str,
        claimed_at: datetime,
        source: FromClause | None = None,
        order_by: Sequence[Any] | None = None,
    ) -> list[int]:
        """Claim up to ``limit`` rows matching ``condition`` for ``worker_id`` (one attempt more each).

        Args:
            condition: which rows (built from ``ready``, ``due``, ``stale`` and the table's own terms).
            limit: at most this many rows.
            worker_id: the dispatcher that will send them.
            claimed_at: the claim's time, from which its lease runs.
            source: the table joined with what ``condition`` needs (default: the table alone).
            order_by: the order rows are picked in (default: due time, then id).

        Returns:
            The ids claimed (not yet committed).
        """
        t = self.table
        pick = (
            select(t.c.id)
            .select_from(t if source is None else source)
            .where(condition)
            .order_by(*(order_by or (t.c.due_at, t.c.id)))
            .limit(limit)
        )
        values = {"status": CLAIMED, "claimed_by": worker_id, "claimed_at": claimed_at, "attempts": t.c.attempts + 1}
        if self.session.get_bind().dialect.name == "postgresql":
            ids = list(self._run(pick.with_for_update(skip_locked=True, of=t)).scalars())
            if ids:
                self._run(update(t).where(t.c.id.in_(ids)).values(**values))
            return ids
        return list(
            self._run(update(t).where(t.c.id.in_(pick.correlate(None))).values(**values).returning(t.c.id)).scalars()
        )

    # --- after the send ----------------------------------------------------------------------------

    def mark_sent(self, job_id: int, worker_id: str, sent_at: datetime) -> bool:
        """Record a message as sent. False when this worker no longer holds the claim."""
        statement = _mark_sent_statement(self.table, self.cleared_when_done)
        result = self.session.connection().execute(
            statement, {"job_id": job_id, "worker_id": worker_id, "sent_at": sent_at}
        )
        return result.rowcount == 1

    def mark_failed(self, job_id: int, worker_id: str, error: str, retry_at: datetime | None) -> bool:
        """Record a failed send: pending again from ``retry_at``, or failed for good when None.

        Returns False when this worker no longer holds the claim.
        """
        values: dict[str, Any] = {
            "status": PENDING if retry_at is not None else FAILED,
            "last_error": error[:200],
            "next_attempt_at": retry_at,
        }
        if retry_at is None:
            values.update(dict.fromkeys(self.cleared_when_done))
        statement = _held(self.table, job_id, worker_id).values(**values)
        return self.session.connection().execute(statement).rowcount == 1

    def release_claims(self, job_ids: Sequence[int], worker_id: str) -> int:
        """Give back claims this worker will not send (the attempt is not counted)."""
        if not job_ids:
            return 0
        t = self.table
        return (
            self._run(
                update(t)
                .where(t.c.id.in_(list(job_ids)), t.c.status == CLAIMED, t.c.claimed_by == worker_id)
                .values(status=PENDING, claimed_by=None, claimed_at=None, attempts=t.c.attempts - 1)
            ).rowcount
            or 0
        )


def _held(table: Table, job_id: Any, worker_id: Any) -> Update:
    """An UPDATE of one row, only while ``worker_id`` holds its claim."""
    return update(table).where(table.c.id == job_id, table.c.status == CLAIMED, table.c.claimed_by == worker_id)


@lru_cache(maxsize=None)
def _mark_sent_statement(table: Table, cleared: tuple[str, ...]) -> Update:
    """Built once per table: the dispatcher runs it once per message."""
    return _held(table, bindparam("job_id"), bindparam("worker_id")).values(
        status=SENT, sent_at=bindparam("sent_at"), next_attempt_at=None, **dict.fromkeys(cleared)
    )
