"""The HTTP lane of a turn: record it in the queue before the channel acks, or refuse it at once.

Before: a channel (``bot.channels.slack.SlackIntake``, ``bot.channels.line.LineWebhook``) verified
a request and turned it into ``(IncomingMessage, Address)`` pairs. Here ``TurnRecorder.submit``
encodes one user's pairs (``bot.turn_codec``) and writes them to ``pending_turn``
(``bot.storage.turn_queue``; on PostgreSQL its commit notifies the runners), then returns: the
channel acks. After: the turn lane's runner (``bot.runner.TurnConsumer``, in the turn process
``bot.turn_process``) takes the row, answers it and delivers the replies.

Why the database: Slack and LINE do not send an acknowledged event again, so a turn held only in
memory is lost when the process dies. The turns of concurrent acks share one transaction
(``_Recorder``, a group commit), committed before the channel acks. On SQLite the table is in a
file of its own beside the database, so that this write never queues behind the turns holding
the database's one write lock.

Fail fast: ``submit`` raises ``TurnsBusy`` when ``limit`` turns already wait, and
``TurnsUnrecorded`` when the database cannot record the turn within ``record_timeout`` seconds
(well under Slack's 3) or has just failed to; the channel answers 503 so that Slack or LINE
delivers the event again later. Nothing is acked that is not recorded. Nothing here runs a turn:
this lane holds no core.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError

from bot.storage.models import utcnow
from bot.storage.repositories import Store
from bot.storage.turn_queue import TurnWriter
from bot.turn_codec import Turn, by_user, encode_turns

log = logging.getLogger("nanbyo.turns")

DEFAULT_LIMIT = 5000  # turns waiting in the queue before new ones are refused (503)
DB_PAUSE_SECONDS = 5.0  # after a failed write, turns are refused (503) for this long before trying again
# How long an ack waits for its turn to be committed: well under Slack's 3 seconds, so that a hung
# database gets the event a 503 (and Slack or LINE delivers it again) rather than a late ack.
DEFAULT_RECORD_TIMEOUT = 2.0


class TurnsBusy(RuntimeError):
    """Too many turns wait already: refuse this one (Slack and LINE then deliver it again later)."""


class TurnsUnrecorded(RuntimeError):
    """The database could not record the turn in time; the channel answers 503 and the platform
    delivers the event again."""


@dataclasses.dataclass
class _Entry:
    kind: str
    user_key: str
    payload: str
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    error: Exception | None = None


class _Recorder:
    """Writes the turns submitted at the same moment in one transaction (a group commit).

    Under a burst, many request threads submit at once; each waiting for a commit of its own
    would queue them on the database's write lock (SQLite has one per database) behind each
    other. One thread here takes whatever is waiting, inserts it in one statement and one
    commit, and wakes each submitter. ``waiting`` is an upper bound of the
    turns in the queue (the last count, plus what was recorded since), for the limit.
    """

    MAX_BATCH = 200

    def __init__(
        self, store: Any, on_recorded: Callable[[], None] | None = None, wait: float = DEFAULT_RECORD_TIMEOUT
    ) -> None:
        self.wait = wait  # how long ``record`` waits for the commit
        self._store = store
        self._writer = TurnWriter(store.engine)
        self._on_recorded = on_recorded
        self._cond = threading.Condition()
        self._queue: list[_Entry] = []
        self.waiting = 0  # turns in the queue at the last count, plus those recorded since
        threading.Thread(target=self._run, name="turn-recorder", daemon=True).start()

    def record(self, kind: str, user_key: str, payload: str) -> None:
        """Returns once this turn is committed. Raises what the database raised, or TimeoutError."""
        entry = _Entry(kind, user_key, payload)
        with self._cond:
            self._queue.append(entry)
            self._cond.notify()
        if not entry.done.wait(self.wait):
            raise TimeoutError("the turn was not recorded in time")
        if entry.error is not None:
            raise entry.error

    def count(self) -> int:
        """Count the turns in the queue now."""
        with self._store.unit_of_work() as uow:
            self.waiting = uow.turns.count_pending_turns()
        return self.waiting

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                batch, self._queue[:] = self._queue[: self.MAX_BATCH], self._queue[self.MAX_BATCH :]
            try:
                self._writer.enqueue([(e.kind, e.user_key, e.payload) for e in batch], now=utcnow())
                self.waiting += len(batch)  # at most: the consumer deletes what it answered (see count)
            except Exception as exc:
                for entry in batch:
                    entry.error = exc
            for entry in batch:
                entry.done.set()
            if self._on_recorded is not None:
                self._on_recorded()


class TurnRecorder:
    """``serve``'s HTTP side: ``submit`` records the turns in ``pending_turn`` and returns (the
    channel acks); a ``TurnConsumer`` (the turn process) takes them from there.

    Args:
        queue: where ``pending_turn`` is (``bot.storage.repositories.turn_queue``).
        limit: turns that may wait in the queue (recorded, not yet answered); one more is
            refused with ``TurnsBusy``.
        record_timeout: seconds an ack waits for the commit; beyond it the turn is refused with
            ``TurnsUnrecorded`` (503), as it is while the database has just failed.
        on_recorded: called after each commit (``PooledRunner`` wakes its consumer).
    """

    def __init__(
        self,
        queue: Store,
        *,
        limit: int = DEFAULT_LIMIT,
        record_timeout: float = DEFAULT_RECORD_TIMEOUT,
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        self.queue = queue
        self.limit = limit
        self._recorder = _Recorder(queue, on_recorded, wait=record_timeout)
        self._lock = threading.Lock()
        self._closing = False
        self._db_paused_until = 0.0

    def submit(self, turns: Sequence[Turn]) -> None:
        """Record the turns (one row per user, in order). When it returns, they are recorded and the
        channel may ack.

        Raises:
            TurnsBusy: ``limit`` turns wait already; the channel answers 503.
            TurnsUnrecorded: the database did not record them in time; the channel answers 503.
            RuntimeError: shutting down; the channel answers 503.
        """
        for group in by_user(turns):
            with self._lock:
                if self._closing:
                    raise RuntimeError("the turn runner is closed")
            self._admit()
            self._record(group)

    def close(self) -> None:
        """Refuse new turns (those recorded stay in the queue for the consumer)."""
        with self._lock:
            self._closing = True

    def _admit(self) -> None:
        """Raise ``TurnsBusy`` when the queue is full. The upper bound decides; only when it says
        full is the queue counted (the consumer may have emptied it since)."""
        if self._recorder.waiting < self.limit or time.monotonic() < self._db_paused_until:
            return
        try:
            waiting = self._recorder.count()
        except Exception:  # the database is away: the record below fails the same way
            return
        if waiting >= self.limit:
            raise TurnsBusy(f"{waiting} turns wait already")

    def _record(self, group: list[Turn]) -> None:
        """Write one user's turns to ``pending_turn``, or raise ``TurnsUnrecorded``."""
        if time.monotonic() < self._db_paused_until:
            raise TurnsUnrecorded("the database failed a moment ago")
        msg, address = group[0]
        try:
            self._recorder.record(address.channel, msg.user_key, encode_turns(group))
        except (DBAPIError, TimeoutError) as exc:
            # The database is down or hung: trying again for every event would hold each ack for
            # the timeout; for a while every event gets its 503 at once.
            self._db_paused_until = time.monotonic() + DB_PAUSE_SECONDS
            log.error("turn not recorded, answered 503 for redelivery error=%s", type(exc).__name__)
            raise TurnsUnrecorded(type(exc).__name__) from exc
