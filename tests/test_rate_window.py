"""The per-user message window behind the flood limit, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.storage.db import make_engine
from bot.storage.repositories import StaleStateError, Store
from tests.conftest import FIXED_NOW


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'rate.db'}")
        yield Store(engine)
        engine.dispose()
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL not set: the PostgreSQL run needs a server (CI sets it)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}")
    try:
        yield Store(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def count(store: Store, user: str, at) -> int:
    with store.unit_of_work() as uow:
        return uow.count_message(user, at)


def test_messages_are_counted_per_minute_and_per_user(store: Store) -> None:
    t = FIXED_NOW  # Japan time; stored in UTC
    assert [count(store, "console:A", t + timedelta(seconds=s)) for s in (0, 10, 59)] == [1, 2, 3]
    assert count(store, "console:B", t) == 1, "another user has a window of their own"
    assert count(store, "console:A", t + timedelta(seconds=61)) == 1, "a new minute starts a new window"
    assert count(store, "console:A", t + timedelta(seconds=70)) == 2


def test_messages_of_one_user_at_once_are_all_counted(store: Store) -> None:
    count(store, "console:C", FIXED_NOW)  # the window exists; now 20 messages arrive together
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def one() -> None:
        barrier.wait()
        for _ in range(5):  # SQLite may refuse a writer for a moment; the turn would be retried
            try:
                count(store, "console:C", FIXED_NOW + timedelta(seconds=1))
                return
            except StaleStateError:
                continue
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=one) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert count(store, "console:C", FIXED_NOW + timedelta(seconds=2)) == 22
