"""Engine creation. Nothing is opened at import time."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, create_engine

from bot.storage import models  # noqa: F401  (registers the tables)


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` and make sure the tables exist.

    SQLite gets a busy timeout and WAL so that a second process (a second
    terminal, the scheduler) waits instead of failing with "database is locked",
    and ``secure_delete``. Statement parameters (user keys, dialog answers) are
    left out of error messages (``hide_parameters``), since those end up in logs.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15},
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten with zeros rather than left in free pages, so a user's
            # deleted data cannot be read back from the file (see UnitOfWork.delete_user).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    SQLModel.metadata.create_all(engine)
    return engine
