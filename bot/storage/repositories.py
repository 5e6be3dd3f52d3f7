"""The unit of work: one transaction, one repository per aggregate, all on one session.

A turn opens a ``UnitOfWork``, claims the event id (so a redelivered event is answered once,
also across instances), loads the user's state, lets the handlers change it in memory, saves
it with a version check, and commits all of it together. The repositories, each in its own
module:

- ``conversations``: handled events, conversation state, the flood window (``bot.storage.conversations``);
- ``statistics``: the operator's question statistics (``bot.storage.statistics``);
- ``reminders``: renewal reminders and their deliveries (``bot.storage.reminders``);
- ``cost_log``: the monthly cost log and the messages about it (``bot.storage.cost_log``);
- ``turns``: turns acknowledged and not yet answered (``bot.storage.turn_queue``).

The messages sent later, outside a turn (reminder deliveries, cost-log messages, hand-off notes
and staff replies), are claimed and marked by ``bot.storage.claims.Claims``.

Only ``bot.storage`` reads and writes SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import delete, insert, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.storage.conversations import Conversations
from bot.storage.cost_log import CostLogRepository
from bot.storage.handoff import Handoffs
from bot.storage.models import UnfollowedUser, utcnow
from bot.storage.reminders import Reminders
from bot.storage.statistics import Retention, Statistics, StatsKey
from bot.storage.turn_queue import TurnQueue

_UNFOLLOWED = UnfollowedUser.__table__  # type: ignore[attr-defined]


def checkpoint_sqlite(engine: Engine) -> None:
    """Copy SQLite's WAL into the database file and truncate it, so that rows just deleted (and
    overwritten there by ``secure_delete``) leave no older copy in the ``-wal`` file.

    Best effort: a reader that is in the middle of a transaction keeps the frames it needs; the
    next checkpoint (SQLite runs one every 1,000 pages, and this one after every deletion)
    removes them.
    """
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


class UnitOfWork:
    """The repositories of one transaction, sharing its session.

    ``after_commit``: actions ``Store.unit_of_work`` runs once the transaction has committed.
    """

    def __init__(self, session: Session, retention: Retention | None = None, stats_key: StatsKey | None = None) -> None:
        self.session = session
        self.retention = retention
        self.after_commit: list[Callable[[], None]] = []
        self.conversations = Conversations(session)
        self.statistics = Statistics(session, self.after_commit, retention, stats_key)
        self.reminders = Reminders(session)
        self.cost_log = CostLogRepository(session)
        self.turns = TurnQueue(session)
        self.handoffs = Handoffs(session)  # hand-offs to a person (bot.handoff)

    def delete_user(self, user_key: str) -> int:
        """Delete everything stored about one user, in every repository. Returns the rows touched.

        Handled event ids stay, without the user (see ``Conversations.forget``). On SQLite, the
        deleted rows' bytes are overwritten (``secure_delete``, see ``bot.storage.db``) and the
        WAL is checkpointed and truncated once the deletion has committed, so no copy stays in
        the ``-wal`` file.
        """
        removed = self.reminders.forget(user_key)
        removed += self.cost_log.delete_user(user_key)  # the cost log and its messages
        removed += self.conversations.forget(user_key)
        removed += self.statistics.forget(user_key)
        removed += self.handoffs.delete_user(user_key)
        engine = self.session.get_bind().engine
        if engine.dialect.name == "sqlite":
            self.after_commit.append(lambda: checkpoint_sqlite(engine))
        return removed

    def sweep_expired(self, now: datetime) -> int:
        """Once an hour per process (the first turn of the hour): delete what outlived its
        retention period (``Retention``): handled event ids and unfollow tombstones, and the
        answers of abandoned dialogs. Returns the rows touched."""
        retention = self.retention
        if retention is None or not retention.sweep_due(now):
            return 0
        removed = self.conversations.purge(events_before=now - retention.events, dialogs_before=now - retention.dialog)
        removed += self.handoffs.purge(
            recent_before=now - retention.handoff_recent, handoffs_before=now - retention.handoffs
        )
        removed += (
            self.session.connection()
            .execute(delete(_UNFOLLOWED).where(_UNFOLLOWED.c.created_at < now - retention.events))
            .rowcount
            or 0
        )
        self.after_commit.append(lambda: retention.swept(now))
        return removed

    def mark_unfollowed(self, user_key: str) -> None:
        """Leave the tombstone of a user who blocked the bot (``UnfollowedUser``: a keyed hash)."""
        key = self.statistics.stats_user(user_key)
        conn = self.session.connection()
        conn.execute(delete(_UNFOLLOWED).where(_UNFOLLOWED.c.key == key))
        conn.execute(insert(_UNFOLLOWED).values(key=key, created_at=utcnow()))

    def unfollowed(self, user_key: str) -> bool:
        """Whether the user blocked the bot and has not unblocked it since."""
        key = self.statistics.stats_user(user_key)
        return (
            self.session.connection().execute(select(_UNFOLLOWED.c.key).where(_UNFOLLOWED.c.key == key)).first()
            is not None
        )

    def clear_unfollowed(self, user_key: str) -> int:
        """Remove the tombstone (the user unblocked the bot: a LINE follow)."""
        key = self.statistics.stats_user(user_key)
        return self.session.connection().execute(delete(_UNFOLLOWED).where(_UNFOLLOWED.c.key == key)).rowcount or 0


class Store:
    """Opens units of work on one engine."""

    def __init__(self, engine: Engine, retention: Retention | None = None) -> None:
        self.engine = engine
        self.retention = retention or Retention()
        self.stats_key = StatsKey()

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


def turn_queue(store: Store, database_url: str) -> Store:
    """Where ``pending_turn`` is: the database itself (PostgreSQL), or on SQLite a file of its own
    beside it (``bot.storage.db.turn_queue_url``)."""
    from bot.storage.db import make_turn_queue_engine, turn_queue_url

    if turn_queue_url(database_url) is None:
        return store
    return Store(make_turn_queue_engine(database_url))
