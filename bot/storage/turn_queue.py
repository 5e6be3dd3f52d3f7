"""The queue between the two lanes of a turn: ``pending_turn`` (turns acknowledged and not yet
answered) and ``turn_answer`` (the answers they committed); each call its own short unit of work.

The HTTP lane (``bot.intake``) writes a row here with ``TurnWriter`` before the channel acks; the
turn lane (``bot.runner``) takes it (``adopt_turns``), keeps its answer (``keep_turn_replies``)
and deletes it once delivered (``finish_turns``). ``turn_queue`` says where the table is.

On PostgreSQL a recorded turn also wakes the turn lane: the insert's transaction sends ``NOTIFY``
(delivered when it commits), and ``TurnNotices`` waits for it on a connection that ``LISTEN``s,
so that an idle runner need not look in the table many times a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, text, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot.storage.models import PendingTurn, TurnAnswer, utcnow

_TURN = PendingTurn.__table__  # type: ignore[attr-defined]
_ANSWER = TurnAnswer.__table__  # type: ignore[attr-defined]
_INSERT_TURN = insert(_TURN).returning(_TURN.c.id, sort_by_parameter_order=True)
_UPDATE_ANSWER = update(_ANSWER).where(_ANSWER.c.turn_id == bindparam("b_id"))
_INSERT_ANSWER = insert(_ANSWER)
_DELETE_TURN = delete(_TURN).where(_TURN.c.id == bindparam("b_id"))

# PostgreSQL: the notification channel of recorded turns (one per database: every instance's runner
# listens, whichever takes the turn). Sent in the insert's transaction, delivered when it commits.
NEW_TURNS = "nanbyo_new_turns"
_NOTIFY = text(f"NOTIFY {NEW_TURNS}")

# The lease of a turn recorded and not yet taken by a turn runner: long run out, so that the
# first runner to look takes it (``adopt_turns``), as it takes the turns of a dead one.
UNCLAIMED = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _rows(turns: Sequence[tuple[str, str, str]], owner: str | None, now: datetime) -> list[dict[str, object]]:
    return [
        {
            "kind": kind,
            "user_key": user_key,
            "payload": payload,
            "owner": owner or "",
            "lease_at": now if owner else UNCLAIMED,
            "attempts": 1 if owner else 0,
            "created_at": now,
        }
        for kind, user_key, payload in turns
    ]


class TurnWriter:
    """The group commit's writer (``bot.intake``): records turns for whichever turn runner takes
    them first, on one connection it holds, a transaction per batch.

    Why not a unit of work per batch: a session and a pool checkout each time double the Python
    work of a commit, and in the HTTP process every bit of it is paid again in waits for the GIL
    by the acks behind it. A connection the database dropped (a restart) is replaced once and the
    batch written again; a second failure is raised.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def enqueue(self, turns: Sequence[tuple[str, str, str]], *, now: datetime) -> None:
        """Record turns ``(kind, user_key, payload)`` as ``TurnQueue.add_pending_turns`` with no
        owner, committed when it returns, without reading their ids back: with no ``RETURNING``
        the driver sends the rows as one ``executemany`` (on SQLite, ``RETURNING`` in order costs
        a statement per row)."""
        rows = _rows(turns, None, now)
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._engine.connect()
            try:
                with self._conn.begin():
                    self._conn.execute(_TURN.insert(), rows)
                    _notify(self._conn)
                return
            except DBAPIError as exc:
                self.close()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken: nothing to give back
                pass
            self._conn = None


def _notify(conn: Connection) -> None:
    """PostgreSQL: tell the listening runners (``TurnNotices``) once this transaction commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY)


class TurnNotices:
    """PostgreSQL: waits for the ``NOTIFY`` of recorded turns, on a connection of its own.

    The connection is made by ``engine``'s pool (its timeouts and keepalives) and detached from it,
    so that it holds no room of the pool; put in autocommit so that ``LISTEN`` holds at once; and
    closed on ``close`` or on an error: the next ``wait`` connects again. A notification sent while
    nobody listened is lost; the runner's slow poll finds that turn.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._raw: Any = None  # the listening connection, detached from the pool

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when turns were recorded meanwhile (the
        notifications that came together count once). Raises when the database is away."""
        try:
            if self._raw is None:
                self._raw = self._listen()
            return any(True for _ in self._raw.dbapi_connection.notifies(timeout=timeout, stop_after=1))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop listening: the connection is closed."""
        raw, self._raw = self._raw, None
        if raw is not None:
            try:
                raw.close()
            except Exception:  # already broken: nothing to give back
                pass

    def _listen(self) -> Any:
        self._raw = raw = self._engine.raw_connection()
        raw.detach()
        dbapi: Any = raw.dbapi_connection  # psycopg's own connection: ``notifies`` is no DB-API
        dbapi.rollback()  # whatever the pool's ping began: autocommit needs no transaction open
        dbapi.autocommit = True
        dbapi.execute(f"LISTEN {NEW_TURNS}")
        return raw


@dataclass(frozen=True)
class AdoptedTurn:
    """A pending turn a runner took (``adopt_turns``): new, or from a runner whose lease ran out."""

    id: int
    kind: str
    payload: str
    attempts: int


class TurnQueue:
    """Pending turns and their kept answers, on the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _conn(self) -> Connection:
        return self.session.connection()

    def add_pending_turn(self, *, kind: str, user_key: str, payload: str, owner: str | None, now: datetime) -> int:
        """Record a turn before it is acknowledged; ``owner`` runs it. Returns its id."""
        return self.add_pending_turns([(kind, user_key, payload)], owner=owner, now=now)[0]

    def add_pending_turns(
        self, turns: Sequence[tuple[str, str, str]], *, owner: str | None, now: datetime
    ) -> list[int]:
        """Record several turns ``(kind, user_key, payload)`` at once (one statement); their ids, in order.

        ``owner`` None leaves them to whichever turn runner takes them first (``adopt_turns``,
        ``attempts`` 0); a name makes them that runner's, running (``attempts`` 1).
        """
        conn = self._conn()
        ids = [int(turn_id) for turn_id in conn.execute(_INSERT_TURN, _rows(turns, owner, now)).scalars()]
        _notify(conn)
        return ids

    def finish_turns(self, turn_ids: Sequence[int]) -> int:
        """Delete turns whose answers are posted (one statement). Returns how many were there."""
        return self._conn().execute(delete(_TURN).where(_TURN.c.id.in_(list(turn_ids)))).rowcount or 0

    def forget_user_turns(self, user_key: str) -> list[int]:
        """Delete a user's recorded turns (their message text), answered or not: their data is being
        deleted. Returns the ids, whose kept answers go too (``forget_turn_answers``)."""
        conn = self._conn()
        ids = [int(i) for i in conn.execute(core_select(_TURN.c.id).where(_TURN.c.user_key == user_key)).scalars()]
        if ids:
            conn.execute(delete(_TURN).where(_TURN.c.id.in_(ids)))
        return ids

    def keep_turn_replies(self, turn_id: int, replies: str) -> None:
        """Store the answer of a recorded turn, in the turn's own transaction (see ``TurnAnswer``)."""
        conn = self._conn()
        if (conn.execute(_UPDATE_ANSWER, {"b_id": turn_id, "replies": replies}).rowcount or 0) == 0:
            conn.execute(_INSERT_ANSWER, {"turn_id": turn_id, "replies": replies, "created_at": utcnow()})

    def turn_replies(self, turn_id: int) -> str | None:
        """The answer a turn committed before, or None (not run yet, or already finished)."""
        return self._conn().execute(core_select(_ANSWER.c.replies).where(_ANSWER.c.turn_id == turn_id)).scalar()

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
        return (
            self._conn()
            .execute(update(_TURN).where(_TURN.c.owner == owner, _TURN.c.id.in_(list(turn_ids))).values(lease_at=now))
            .rowcount
            or 0
        )

    def any_to_adopt(self, stale_before: datetime) -> bool:
        """Whether ``adopt_turns`` would find a turn: a read only, so that a turn runner looking for
        work does not take the write lock when there is none."""
        return (
            self._conn().execute(core_select(_TURN.c.id).where(_TURN.c.lease_at < stale_before).limit(1)).first()
            is not None
        )

    def adopt_turns(self, *, owner: str, stale_before: datetime, now: datetime, limit: int) -> list[AdoptedTurn]:
        """Take up to ``limit`` turns nobody runs: recorded and not taken yet, or whose owner died
        (lease older than ``stale_before``). ``attempts`` counts the runners a turn was given to.

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
            rows = conn.execute(
                update(_TURN)
                .where(_TURN.c.id.in_(ids))
                .values(**values)
                .returning(_TURN.c.id, _TURN.c.kind, _TURN.c.payload, _TURN.c.attempts)
            ).all()
        else:
            rows = conn.execute(
                update(_TURN)
                .where(_TURN.c.id.in_(pick.scalar_subquery()))
                .values(**values)
                .returning(_TURN.c.id, _TURN.c.kind, _TURN.c.payload, _TURN.c.attempts)
            ).all()
        return sorted((AdoptedTurn(*row) for row in rows), key=lambda t: t.id)

    def count_pending_turns(self) -> int:
        """Turns acked and not yet answered, on every instance."""
        return int(self._conn().execute(core_select(func.count()).select_from(_TURN)).scalar_one())
