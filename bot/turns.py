"""How a channel's turns are run: the three runners ``bot.bootstrap`` picks from. No channel knows
which one it hands its ``(IncomingMessage, Address)`` pairs to (``submit``).

- ``bot.intake.TurnRecorder``: ``serve``'s HTTP processes. The HTTP lane only: ``submit`` records
  the turns in ``pending_turn`` and returns (the channel acks); the turn process
  (``bot.turn_process``) runs them with a ``bot.runner.TurnConsumer``. Slack wants an answer within
  3 seconds and retries otherwise; LINE wants a quick 200 and does not redeliver a webhook that
  got one; a turn costs milliseconds of CPU, and run in the HTTP process it holds the GIL against
  the threads that ack. The row is the hand-off: no pipe, nothing pickled.
- ``PooledRunner``: both lanes in one process, a recorder and a consumer (the tests that serve in
  a thread; and without a store, turns in memory only).
- ``InlineRunner``: no lanes at all, each turn runs on the caller's thread before ``submit``
  returns (the tests that want an answer at once; the console calls the core itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.intake import DEFAULT_LIMIT, DEFAULT_RECORD_TIMEOUT, TurnRecorder, TurnsBusy
from bot.outbox import BACKOFF_SECONDS, DEFAULT_OUTBOX_EXPIRY, Outbox, deliver, working
from bot.runner import DEFAULT_LEASE_SECONDS, Answers, TurnConsumer
from bot.storage.repositories import Store, turn_queue
from bot.turn_codec import Turn, by_user

CLOSE_SECONDS = 60.0  # on close, how long a consumer goes on taking the turns still in the queue


class InlineRunner:
    """Runs each turn on the caller's thread, before ``submit`` returns."""

    def __init__(self, bot: Answers, outboxes: Mapping[str, Outbox]) -> None:
        self.bot = bot
        self.outboxes = outboxes

    def submit(self, turns: Sequence[Turn]) -> None:
        for msg, address in turns:
            with working(self.outboxes, address):
                replies = self.bot.answer(msg)
            deliver(self.outboxes, msg, address, replies)

    def close(self) -> None:
        return None


class PooledRunner:
    """A ``TurnRecorder`` and a ``TurnConsumer`` in one process: turns recorded, then run on a
    thread pool here (the tests that serve in a thread). Without a store, turns are run from
    memory only (lost if the process dies).

    Args:
        bot: the core.
        outboxes: the configured channels' outboxes, by channel name.
        store: the database's store (``Bot.store``); None keeps turns in memory only.
        database_url: where ``store`` is (to find the turn queue's file on SQLite).
        threads: turns run at once.
        limit: turns that may wait (recorded, not yet answered); one more is refused with ``TurnsBusy``.
        lease: seconds after which the turns of a consumer that stopped renewing them are taken over.
    """

    def __init__(
        self,
        bot: Answers,
        outboxes: Mapping[str, Outbox],
        *,
        store: Store | None = None,
        database_url: str = "",
        threads: int = 8,
        limit: int = DEFAULT_LIMIT,
        lease: float = DEFAULT_LEASE_SECONDS,
        record_timeout: float = DEFAULT_RECORD_TIMEOUT,
        outbox_expiry: float = DEFAULT_OUTBOX_EXPIRY,
        backoff: float = BACKOFF_SECONDS,
    ) -> None:
        self.queue = turn_queue(store, database_url) if store is not None else None
        self.limit = limit
        self.consumer = TurnConsumer(
            bot,
            outboxes,
            store=store,
            queue=self.queue,
            threads=threads,
            lease=lease,
            outbox_expiry=outbox_expiry,
            backoff=backoff,
        )
        self.recorder = (
            TurnRecorder(self.queue, limit=limit, record_timeout=record_timeout, on_recorded=self.consumer.wake)
            if self.queue is not None
            else None
        )
        self._closing = False

    @property
    def pending(self) -> int:
        """Turns taken and not yet answered."""
        return self.consumer.pending

    @property
    def adopted(self) -> int:
        return self.consumer.adopted

    def submit(self, turns: Sequence[Turn]) -> None:
        """Record the turns, then they run here; as ``TurnRecorder.submit``."""
        if self.recorder is not None:
            self.recorder.submit(turns)
            return
        for group in by_user(turns):
            if self._closing:
                raise RuntimeError("the turn runner is closed")
            if self.consumer.pending >= self.limit:
                raise TurnsBusy(f"{self.consumer.pending} turns wait already")
            self.consumer.push(group)

    def close(self) -> None:
        """Refuse new turns, let those accepted finish and be delivered, then stop. Idempotent."""
        self._closing = True
        if self.recorder is not None:
            self.recorder.close()
        self.consumer.close(timeout=CLOSE_SECONDS)
