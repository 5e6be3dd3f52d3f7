"""An event id is answered once: the claim in the turn's unit of work, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from bot.storage.conversations import DuplicateEvent
from bot.storage.repositories import Store


def claim(store: Store, event_id: str, channel: str = "slack") -> bool:
    try:
        with store.unit_of_work() as uow:
            uow.conversations.claim_event(channel, event_id, f"{channel}:U1")
    except DuplicateEvent:
        return False
    return True


def test_a_redelivered_event_is_a_duplicate(store: Store) -> None:
    assert claim(store, "Ev1")
    assert not claim(store, "Ev1")
    assert claim(store, "Ev1", channel="line"), "ids are per channel"
    assert claim(store, "Ev2")


def test_the_same_event_claimed_at_once_is_claimed_once(store: Store) -> None:
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        for _ in range(20):  # SQLite: a writer may find the database busy for a moment
            try:
                won = claim(store, "EvRACE")
                break
            except Exception as exc:  # noqa: BLE001
                if "locked" not in str(exc):
                    raise
        with lock:
            results.append(won)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [False] * 7 + [True]
