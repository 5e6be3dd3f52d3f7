"""The per-user message window behind the flood limit, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from bot.storage.conversations import StaleStateError
from bot.storage.repositories import Store
from tests.conftest import FIXED_NOW


def count(store: Store, user: str, at) -> int:
    with store.unit_of_work() as uow:
        return uow.conversations.count_message(user, at)


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
