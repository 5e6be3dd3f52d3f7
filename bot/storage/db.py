"""Engine creation, with timeouts everywhere. Nothing is opened at import time.

Why the timeouts: a database that accepts connections and then never answers (a hung
server, a stuck proxy, a full disk) must not hold every worker thread forever. Each wait
has a bound:

- connecting: PostgreSQL ``connect_timeout`` (libpq counts whole seconds, 2 at least);
- a statement: PostgreSQL ``statement_timeout`` and ``lock_timeout`` (set on each new
  connection; the server enforces them); SQLite's busy timeout (a statement waits that long
  for another writer's lock, then fails with "database is locked");
- a connection from the pool: ``pool_timeout``.

A turn that hits one of them fails with a ``DBAPIError``: the core rolls back and answers
with its apology (``bot.texts.DB_DOWN_TEXT``). What no setting here bounds: a PostgreSQL server
that stops answering in the middle of an open connection (the kernel still acknowledges our
bytes); ``/healthz`` guards against that with a deadline of its own (``bot.server``).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel, create_engine

from bot.storage import handoff as _handoff_tables  # noqa: F401  (registers the hand-off tables)
from bot.storage import models  # noqa: F401  (registers the tables)

CONNECT_TIMEOUT_SECONDS = 2  # PostgreSQL: libpq's minimum
STATEMENT_TIMEOUT_MS = 10_000  # PostgreSQL: no statement of ours takes a fraction of this
LOCK_TIMEOUT_MS = 5_000  # PostgreSQL: waiting for another transaction's row lock
SQLITE_BUSY_TIMEOUT_SECONDS = 5  # SQLite: waiting for another writer
POOL_TIMEOUT_SECONDS = 5  # both: waiting for a free connection of the pool


def create_db_engine(url: str) -> Engine:
    """An engine for ``url`` with the timeouts above; connects lazily, creates nothing.

    Statement parameters (user keys, dialog answers) are left out of error messages
    (``hide_parameters``), since those end up in logs.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            pool_timeout=POOL_TIMEOUT_SECONDS,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
            cur.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten with zeros rather than left in free pages, so a user's
            # deleted data cannot be read back from the file (see UnitOfWork.delete_user).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    connect_args: dict[str, object] = {}
    if url.startswith("postgresql"):
        # TCP keepalives: a server that went away (host down, cable cut) is noticed in about 30 s
        # rather than after the kernel's two hours.
        connect_args = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
    engine = create_engine(
        url, pool_pre_ping=True, pool_timeout=POOL_TIMEOUT_SECONDS, connect_args=connect_args, hide_parameters=True
    )
    if url.startswith("postgresql"):

        @event.listens_for(engine, "connect")
        def _pg_timeouts(dbapi_conn: Any, _record: object) -> None:  # pragma: no cover - trivial
            # Per connection rather than in ``options``: the URL may carry options of its own
            # (a search_path), which connect_args would replace.
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
                cur.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
            dbapi_conn.autocommit = autocommit

    return engine


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` (see ``create_db_engine``) and make sure the tables exist.

    SQLite gets a busy timeout and WAL so that a second process (a second
    terminal, the scheduler) waits instead of failing with "database is locked",
    and ``secure_delete``.
    """
    engine = create_db_engine(url)
    SQLModel.metadata.create_all(engine)
    return engine


def turn_queue_url(url: str) -> str | None:
    """Where ``pending_turn`` lives when not in the database itself: for a SQLite file
    ``…/nanbyo.db``, the file ``…/nanbyo-turns.db`` beside it (its own write lock, so that
    recording a turn before the ack does not queue behind the turns being run); None for
    PostgreSQL and for an in-memory SQLite, where the table is in the database.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = PurePosixPath(parsed.database)
    return parsed.set(database=str(path.with_name(f"{path.stem}-turns{path.suffix or '.db'}"))).render_as_string(
        hide_password=False
    )


def make_turn_queue_engine(url: str) -> Engine:
    """An engine on ``turn_queue_url(url)`` with the ``pending_turn`` table created."""
    queue_url = turn_queue_url(url)
    if queue_url is None:
        raise ValueError("the turn queue of this database is in the database itself")
    engine = create_db_engine(queue_url)
    models.PendingTurn.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    return engine
