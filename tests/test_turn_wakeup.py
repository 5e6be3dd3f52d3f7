"""An idle turn process leaves the database alone, yet answers a new turn at once.

A turn recorded by another process (``serve``'s HTTP side) reaches the runner by PostgreSQL's
NOTIFY, or on SQLite by the runner's own looks, which grow apart while nothing comes (at most
500 ms). The queries are counted on the engines themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.core import NOT_KEPT, AnswerKeeper
from bot.intake import TurnRecorder
from bot.runner import TurnConsumer
from bot.storage.db import make_engine
from bot.storage.repositories import Store, turn_queue
from handlers.messages import Address, IncomingMessage, Reply

IDLE_SECONDS = 2.0
MOST_QUERIES_IDLE = 10  # SQLite about 6 (looks 0.5 s apart), PostgreSQL about 2; it was about 100


class Stamped:
    """A core that answers at once and notes when each turn reached it."""

    def __init__(self) -> None:
        self.reached: dict[str, float] = {}
        self.answered = threading.Event()

    def answer(self, msg: IncomingMessage, keeper: AnswerKeeper = NOT_KEPT) -> list[Reply]:
        self.reached[msg.event_id or ""] = time.monotonic()
        self.answered.set()
        return [Reply("ok")]


class Silent:
    """An outbox that sends nothing."""

    def deliver(self, address: Address, replies: object, key: str | None = None) -> None:
        return None


@contextmanager
def counted(*engines: Engine) -> Iterator[list[str]]:
    """The statements the engines run meanwhile."""
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        seen.append(statement.split()[0])

    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", note)


def test_an_idle_runner_looks_rarely_and_answers_a_turn_recorded_elsewhere_within_a_second(database_url: str) -> None:
    store = Store(make_engine(database_url))
    queue = turn_queue(store, database_url)
    core = Stamped()
    consumer = TurnConsumer(core, {"slack": Silent()}, store=store, queue=queue)
    recorder = TurnRecorder(queue)  # as serve's HTTP process: it cannot call the consumer's wake
    try:
        time.sleep(1.0)  # the looks have grown apart
        with counted(*{store.engine, queue.engine}) as seen:
            time.sleep(IDLE_SECONDS)
        assert len(seen) <= MOST_QUERIES_IDLE, f"{len(seen)} statements in {IDLE_SECONDS} s idle"

        recorded = time.monotonic()
        recorder.submit([(IncomingMessage("slack", "U1", text="こんにちは", event_id="Ev1"), Address("slack", "U1"))])
        assert core.answered.wait(5)
        assert core.reached["Ev1"] - recorded < 1.0, f"taken {core.reached['Ev1'] - recorded:.2f} s after recorded"
    finally:
        recorder.close()
        consumer.close(timeout=10)
        store.engine.dispose()


def test_a_turn_recorded_in_the_runners_own_process_wakes_it_at_once(database_url: str) -> None:
    store = Store(make_engine(database_url))
    queue = turn_queue(store, database_url)
    core = Stamped()
    consumer = TurnConsumer(core, {"slack": Silent()}, store=store, queue=queue)
    recorder = TurnRecorder(queue, on_recorded=consumer.wake)  # as PooledRunner
    try:
        time.sleep(1.5)  # idle: on SQLite the looks are 500 ms apart by now
        recorded = time.monotonic()
        recorder.submit([(IncomingMessage("slack", "U2", text="こんにちは", event_id="Ev2"), Address("slack", "U2"))])
        assert core.answered.wait(5)
        assert core.reached["Ev2"] - recorded < 0.3, f"taken {core.reached['Ev2'] - recorded:.2f} s after recorded"
    finally:
        recorder.close()
        consumer.close(timeout=10)
        store.engine.dispose()
