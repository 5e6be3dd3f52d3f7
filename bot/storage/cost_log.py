"""The cost log's SQL: a user's monthly amounts, and the messages the dispatcher sends about them.

What this is: ``CostLogRepository`` on a unit of work's session. Within a turn it records and
reads a user's months (``record``, ``entries``), turns the monthly nudge on and off, and
schedules the one message that says a rule is met (``schedule_notice``); for the dispatcher
(``bot.reminders.dispatch_due``) it claims due messages and marks them sent or failed through
``bot.storage.claims.Claims``, as reminder deliveries are (a unique row per message, a claim
committed before the send, a lease after which a dead dispatcher's claim is taken over).

What this is not: no wording, no counting (``handlers.calc.cost_log``), no clock.
The rows are personal health data: nothing here logs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from bot.storage.claims import Claims
from bot.storage.models import CostLogEntry, CostLogNotice
from handlers.ports import NUDGE, PENDING, SKIPPED, CostEntry

__all__ = ["ClaimedNotice", "CostLogRepository", "Entry", "NUDGE", "NOTICE_KINDS", "NUDGE_STALE_AFTER", "UserCostLog"]

# The messages that say a rule is met: 高額かつ長期 and 軽症高額 (``handlers.calc.cost_log.RULES``).
NOTICE_KINDS = ("high-cost", "mild")
# A nudge that could not go out within this long after its day asks about a month long gone: skipped.
NUDGE_STALE_AFTER = timedelta(days=20)

_ENTRY = CostLogEntry.__table__  # type: ignore[attr-defined]
_NOTICE = CostLogNotice.__table__  # type: ignore[attr-defined]


Entry = CostEntry  # the value the handlers' port hands out


@dataclass(frozen=True)
class ClaimedNotice:
    """A cost-log message this dispatcher has claimed: everything needed to send it."""

    id: int
    user_key: str
    channel: str
    kind: str
    month: date
    attempts: int

    @property
    def user(self) -> str:
        """The channel's user id (``user_key`` is ``channel:user``)."""
        return self.user_key.partition(":")[2]

    @property
    def key(self) -> str:
        """The idempotency key, the same for every attempt (LINE's X-Line-Retry-Key)."""
        return f"costlog-{self.id}"


class CostLogRepository(Claims):
    """Reads and writes the cost log on ``session`` (the turn's, or the dispatcher's); for the
    dispatcher, the messages' claims (``Claims``: ``mark_sent``, ``mark_failed``, ``release_claims``)."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, _NOTICE)

    # --- within a turn ---------------------------------------------------------------------

    def entries(self, user_key: str) -> list[Entry]:
        """Every logged month of the user, oldest first."""
        rows = self._run(
            select(_ENTRY.c.month, _ENTRY.c.amount, _ENTRY.c.kind)
            .where(_ENTRY.c.user_key == user_key)
            .order_by(_ENTRY.c.month, _ENTRY.c.kind)
        ).all()
        return [Entry(**row._mapping) for row in rows]

    def record(self, user_key: str, month: date, amount: int, kind: str) -> bool:
        """Set the amount of one month and kind (a second one replaces the first). True when it replaced one."""
        where = and_(_ENTRY.c.user_key == user_key, _ENTRY.c.month == month, _ENTRY.c.kind == kind)
        replaced: bool = self._run(update(_ENTRY).where(where).values(amount=amount)).rowcount == 1
        if not replaced:
            self._run(insert(_ENTRY).values(user_key=user_key, month=month, amount=amount, kind=kind))
        return replaced

    def nudging(self, user_key: str) -> bool:
        """Whether the monthly nudge is on (a nudge is still planned)."""
        return (
            self._run(
                select(_NOTICE.c.id)
                .where(_NOTICE.c.user_key == user_key, _NOTICE.c.kind == NUDGE, _NOTICE.c.status == PENDING)
                .limit(1)
            ).first()
            is not None
        )

    def plan_nudges(self, user_key: str, channel: str, plan: Sequence[tuple[date, datetime]]) -> int:
        """Plan nudges: (month asked about, when to send). One already planned or sent stays as it is."""
        return sum(self._insert_new(user_key, channel, NUDGE, month, due_at) for month, due_at in plan)

    def stop_nudges(self, user_key: str) -> int:
        """Turn the nudge off: planned nudges are deleted (one being sent right now may still go out)."""
        return (
            self._run(
                delete(_NOTICE).where(
                    _NOTICE.c.user_key == user_key, _NOTICE.c.kind == NUDGE, _NOTICE.c.status == PENDING
                )
            ).rowcount
            or 0
        )

    def schedule_notice(self, user_key: str, channel: str, kind: str, month: date, due_at: datetime) -> bool:
        """Schedule the message that a rule was met in ``month``; False when it was already scheduled."""
        if kind not in NOTICE_KINDS:
            raise ValueError(f"unknown notice kind {kind!r}")
        return self._insert_new(user_key, channel, kind, month, due_at)

    def _insert_new(self, user_key: str, channel: str, kind: str, month: date, due_at: datetime) -> bool:
        values = {
            "user_key": user_key,
            "channel": channel,
            "kind": kind,
            "month": month,
            "due_at": due_at,
            "status": PENDING,
            "attempts": 0,
        }
        conn = self.session.connection()
        maker = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(conn.dialect.name)
        if maker is None:  # pragma: no cover - only PostgreSQL and SQLite are supported
            raise RuntimeError(f"unsupported database {conn.dialect.name}")
        # The unique (user_key, kind, month) says whether it exists: told once, whatever races.
        statement = (
            maker(_NOTICE)
            .values(**values)
            .on_conflict_do_nothing(  # type: ignore[attr-defined]
                index_elements=["user_key", "kind", "month"]
            )
            .returning(_NOTICE.c.id)
        )
        return conn.execute(statement).first() is not None  # no row back: it existed already

    def delete_user(self, user_key: str) -> int:
        """Delete the user's months and messages. Returns the number of rows removed."""
        removed = self._run(delete(_ENTRY).where(_ENTRY.c.user_key == user_key)).rowcount or 0
        return removed + (self._run(delete(_NOTICE).where(_NOTICE.c.user_key == user_key)).rowcount or 0)

    # --- for the dispatcher (each call in its own short unit of work) --------------------------

    def skip_stale_nudges(self, now: datetime) -> int:
        """Skip nudges that could not go out in time (``NUDGE_STALE_AFTER``)."""
        return (
            self._run(
                update(_NOTICE)
                .where(_NOTICE.c.kind == NUDGE, _NOTICE.c.status == PENDING, _NOTICE.c.due_at < now - NUDGE_STALE_AFTER)
                .values(status=SKIPPED)
            ).rowcount
            or 0
        )

    def claim_notices(
        self,
        *,
        now: datetime,
        stale_before: datetime,
        claimed_at: datetime,
        worker_id: str,
        channels: Sequence[str],
        batch: int,
    ) -> list[ClaimedNotice]:
        """Claim up to ``batch`` messages due at ``now`` on ``channels``; commit before sending.

        Claimable (``Claims.claim_due``): pending, due and past any retry wait, or claimed before
        ``stale_before`` by a dispatcher that died.

        Returns:
            The claimed messages, in id order.
        """
        if not channels or batch <= 0:
            return []
        ids = self.claim_due(
            now=now,
            stale_before=stale_before,
            where=_NOTICE.c.channel.in_(list(channels)),
            limit=batch,
            worker_id=worker_id,
            claimed_at=claimed_at,
        )
        if not ids:
            return []
        rows = self._run(
            select(
                _NOTICE.c.id, _NOTICE.c.user_key, _NOTICE.c.channel, _NOTICE.c.kind, _NOTICE.c.month, _NOTICE.c.attempts
            )
            .where(_NOTICE.c.id.in_(ids))
            .order_by(_NOTICE.c.id)
        ).all()
        return [ClaimedNotice(**row._mapping) for row in rows]


class UserCostLog:
    """``handlers.ports.CostLogBook`` for one user: the cost log bound to the turn's user."""

    def __init__(self, repo: CostLogRepository, channel: str, user_key: str) -> None:
        self._repo = repo
        self._channel = channel
        self._user_key = user_key

    def entries(self) -> list[CostEntry]:
        return self._repo.entries(self._user_key)

    def record(self, month: date, amount: int, kind: str) -> bool:
        return self._repo.record(self._user_key, month, amount, kind)

    def nudging(self) -> bool:
        return self._repo.nudging(self._user_key)

    def plan_nudges(self, plan: Sequence[tuple[date, datetime]]) -> int:
        return self._repo.plan_nudges(self._user_key, self._channel, plan)

    def stop_nudges(self) -> int:
        return self._repo.stop_nudges(self._user_key)

    def schedule_notice(self, kind: str, month: date, due_at: datetime) -> bool:
        return self._repo.schedule_notice(self._user_key, self._channel, kind, month, due_at)
