"""The turn runner: takes frozen ``(IncomingMessage, Address)`` pairs from any channel, runs
each turn through the core (``Bot.answer``) and hands the replies to the channel's outbox.

No channel knows how turns are scheduled; ``bot.bootstrap`` picks the runner:

- ``InlineRunner`` runs a turn on the caller's thread before ``submit`` returns (the console,
  the CLI, the tests that want an answer at once).
- ``PooledRunner`` is ``serve``'s: ``submit`` records the turns durably and returns (the channel
  acks), and a thread pool runs them. Slack wants an answer within 3 seconds and retries
  otherwise; LINE wants a quick 200 and does not redeliver a webhook that got one.

Why the database (``PooledRunner`` with a store): Slack and LINE do not send an acknowledged
event again, so a turn held only in memory is lost when the process dies. ``submit`` first
writes the turn to ``pending_turn`` and only then queues it; the turns of concurrent acks share
one transaction (``_Recorder``, a group commit), committed before the channel acks. On SQLite
the table is in a file of its own beside the database (``turn_queue``), so that this write
never queues behind the turns holding the database's one write lock. The row is deleted as soon
as the answer is delivered. The row names its owner (this worker process), whose lease a thread
here renews; a worker whose lease ran out is dead, and any worker (a restarted one, or another
instance sharing the database) takes its turns over — ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL, an atomic ``UPDATE … RETURNING`` on SQLite, as the reminder dispatcher claims
deliveries. A worker that dies is restarted by the HTTP server's process manager (uvicorn's
supervisor); the turns it held are taken over once its lease ran out.

What is guaranteed, and what is not:

- A turn is recorded before the ack, or refused: ``submit`` raises ``TurnsBusy`` when ``limit``
  turns already wait here, and the channel answers 503 so that Slack or LINE delivers the event
  again later. The only exception: when the database itself fails, the turn is queued in
  memory, unrecorded (at most once), so that the user still gets an answer — the apology,
  while the database is down.
- The turn itself runs once: the core's claim of the event id (``handled_event``) commits with
  the turn, and with it the answer (``turn_answer``, through ``Bot.answer(keep=...)``). A turn
  re-run after a crash finds that answer and delivers it instead of running the dialog again.
- Its answer is delivered at least once: twice only when the process dies between delivering
  the answer and deleting the row (Slack has no idempotency key; a LINE push carries
  ``X-Line-Retry-Key`` and arrives once, a LINE reply does not).
- A turn taken over ``MAX_DELIVERIES`` times without being finished (each time its worker died)
  is dropped and logged, so that one poisonous turn cannot keep killing workers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError

from handlers.messages import Address, IncomingMessage, Reply
from nlp.privacy import hash_user
from bot.storage.models import utcnow
from bot.storage.repositories import Store

log = logging.getLogger("nanbyo.turns")

Turn = tuple[IncomingMessage, Address]

MAX_DELIVERIES = 3  # workers a turn may be handed to; each of them died before finishing it
DEFAULT_LIMIT = 5000  # turns waiting per worker before new ones are refused (503)
DEFAULT_LEASE_SECONDS = 30.0  # an owner that has not renewed its turns for this long is dead
ANSWER_RETENTION = timedelta(minutes=10)  # a kept answer older than this belongs to a finished turn
DB_PAUSE_SECONDS = 5.0  # after a failed write, turns are queued in memory for this long before trying again


class Outbox(Protocol):
    """A channel's way out: deliver one turn's replies to an address."""

    def deliver(self, address: Address, replies: Sequence[Reply], key: str | None) -> None:
        """Render and send ``replies``; ``key`` (the event id, or None) makes a retried send idempotent
        where the platform allows it. Raises when the platform refused."""
        ...


class Answers(Protocol):
    """What the runner needs of the core: ``bot.core.Bot`` satisfies it."""

    def answer(self, msg: IncomingMessage, keep: Any = None) -> list[Reply]: ...


class TurnsBusy(RuntimeError):
    """Too many turns wait already: refuse this one (Slack and LINE then deliver it again later)."""


def deliver(outboxes: Mapping[str, Outbox], msg: IncomingMessage, address: Address, replies: list[Reply]) -> None:
    """Hand replies to their channel's outbox; a refusal is logged (never the text), not raised."""
    if not replies and not address.clicked:
        return
    outbox = outboxes.get(address.channel)
    started = time.perf_counter()
    if outbox is None:
        log.error("no outbox for channel=%s", address.channel)
        return
    try:
        outbox.deliver(address, replies, msg.event_id)
    except Exception as exc:
        log.error("delivery failed channel=%s user=%s error=%s status=%s", address.channel,
                  hash_user(msg.user_key), type(exc).__name__, getattr(exc, "status", None))
        return
    log.info("%s turn event=%s user=%s replies=%d ms=%.1f", address.channel, msg.event_id, hash_user(msg.user_key),
             len(replies), (time.perf_counter() - started) * 1000)


def working(outboxes: Mapping[str, Outbox], address: Address) -> AbstractContextManager[None]:
    """Around a turn: the channel's sign that the bot is working, if its outbox has one
    (``while_working``: LINE's loading animation for a turn that takes longer than a moment)."""
    show = getattr(outboxes.get(address.channel), "while_working", None)
    return show(address) if show is not None else nullcontext()


def by_user(turns: Iterable[Turn]) -> list[list[Turn]]:
    """Turns grouped per user, each group in the order received (a user's turns run in order)."""
    groups: dict[str, list[Turn]] = {}
    for msg, address in turns:
        groups.setdefault(msg.user_key, []).append((msg, address))
    return list(groups.values())


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


# --- what is stored: the turns, and their answers ------------------------------------------------

def encode_turns(turns: Sequence[Turn]) -> str:
    """One user's turns as stored in ``pending_turn.payload``: ASCII JSON, so that any text the
    platform sent (a lone surrogate, NUL) is storable as it is; the core makes it readable later."""
    return json.dumps([{"msg": dataclasses.asdict(m), "address": dataclasses.asdict(a)} for m, a in turns])


def decode_turns(payload: str) -> list[Turn]:
    """The inverse of ``encode_turns``."""
    turns: list[Turn] = []
    for raw in json.loads(payload):
        address = dict(raw["address"])
        if address.get("clicked") is not None:
            address["clicked"] = tuple(address["clicked"])
        turns.append((IncomingMessage(**raw["msg"]), Address(**address)))
    return turns


def encode_replies(replies: list[Reply]) -> list[dict[str, Any]]:
    """Replies as JSON-ready data, cards included (a kept turn answer)."""
    return [r.to_record() for r in replies]


def decode_replies(raw: list[dict[str, Any]]) -> list[Reply]:
    """The inverse of ``encode_replies``."""
    return [Reply.from_record(r) for r in raw]


def turn_queue(store: Store, database_url: str) -> Store:
    """Where ``pending_turn`` is: the database itself (PostgreSQL), or on SQLite a file of its own
    beside it (``bot.storage.db.turn_queue_url``)."""
    from bot.storage.db import make_turn_queue_engine, turn_queue_url

    if turn_queue_url(database_url) is None:
        return store
    return Store(make_turn_queue_engine(database_url))


@dataclasses.dataclass
class _Entry:
    kind: str
    user_key: str
    payload: str
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    turn_id: int | None = None
    error: Exception | None = None


class _Recorder:
    """Writes the turns submitted at the same moment in one transaction (a group commit).

    Under a burst, many request threads submit at once; each waiting for a commit of its own
    would queue them on the database's write lock (SQLite has one per database) behind each
    other. One thread here takes whatever is waiting, inserts it in one statement and one
    commit, and wakes each submitter with its row id.
    """

    MAX_BATCH = 200
    WAIT_SECONDS = 10.0  # beyond the database's own timeouts: only a hung commit gets here

    def __init__(self, store: Any, owner: str) -> None:
        self._store = store
        self._owner = owner
        self._cond = threading.Condition()
        self._queue: list[_Entry] = []
        threading.Thread(target=self._run, name="turn-recorder", daemon=True).start()

    def record(self, kind: str, user_key: str, payload: str) -> int:
        """The committed row id of this turn. Raises what the database raised, or TimeoutError."""
        entry = _Entry(kind, user_key, payload)
        with self._cond:
            self._queue.append(entry)
            self._cond.notify()
        if not entry.done.wait(self.WAIT_SECONDS):
            raise TimeoutError("the turn was not recorded in time")
        if entry.error is not None:
            raise entry.error
        assert entry.turn_id is not None
        return entry.turn_id

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                batch, self._queue[:] = self._queue[:self.MAX_BATCH], self._queue[self.MAX_BATCH:]
            try:
                with self._store.unit_of_work() as uow:
                    ids = uow.turns.add_pending_turns([(e.kind, e.user_key, e.payload) for e in batch], owner=self._owner,
                                                now=utcnow())
                for entry, turn_id in zip(batch, ids, strict=True):
                    entry.turn_id = turn_id
            except Exception as exc:
                for entry in batch:
                    entry.error = exc
            for entry in batch:
                entry.done.set()


class _Forgetter:
    """Deletes the kept answers of answered turns (``turn_answer``), several per statement.

    Off the turn's thread and batched, so that it takes the database's write lock once for many
    turns. A crash before it ran leaves a few answers, which the lease loop purges later (their
    turns are gone, so they are never delivered).
    """

    def __init__(self, store: Any) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._done: list[int] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="turn-answers", daemon=True)
        self._thread.start()

    def add(self, turn_id: int) -> None:
        with self._cond:
            self._done.append(turn_id)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._done and not self._closing:
                    self._cond.wait()
                if not self._done and self._closing:
                    return
                batch, self._done = self._done, []
            try:
                with self._store.autocommit() as uow:
                    uow.turns.forget_turn_answers(batch)
            except Exception as exc:
                log.warning("kept answers not deleted count=%d error=%s", len(batch), type(exc).__name__)


class PooledRunner:
    """Records turns (when given a store), then runs them on a thread pool.

    Args:
        bot: the core.
        outboxes: the configured channels' outboxes, by channel name.
        store: the database's store (``Bot.store``): turns are recorded before ``submit``
            returns, in ``pending_turn`` (on SQLite in a file of its own, see ``turn_queue``);
            None keeps them in memory only (lost if the process dies).
        database_url: where ``store`` is (to find the turn queue's file on SQLite).
        threads: turns run at once (they mostly wait for the database and the platform's API).
        limit: turns that may wait here (recorded, not yet answered); one more is refused with
            ``TurnsBusy``.
        lease: seconds after which the turns of an owner that stopped renewing them are taken over.
    """

    def __init__(self, bot: Any, outboxes: Mapping[str, Outbox], *, store: Store | None = None,
                 database_url: str = "", threads: int = 8, limit: int = DEFAULT_LIMIT,
                 lease: float = DEFAULT_LEASE_SECONDS) -> None:
        self.bot = bot
        self.outboxes = outboxes
        self.store = store
        self.queue = turn_queue(store, database_url) if store is not None else None
        self.limit = limit
        self.lease = lease
        self.owner = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.adopted = 0
        self._lock = threading.Lock()  # guards _pending, _seq, _closing
        self._pending: set[int] = set()  # recorded turns have their row id, unrecorded ones a negative number
        self._seq = 0
        self._closing = False
        self._stopping = threading.Event()
        self._db_paused_until = 0.0
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="turn")
        self._recorder = _Recorder(self.queue, self.owner) if self.queue is not None else None
        self._forgetter = _Forgetter(store) if store is not None else None
        self._leaser: threading.Thread | None = None
        if self.queue is not None:
            self._leaser = threading.Thread(target=self._lease_loop, name="turn-lease", daemon=True)
            self._leaser.start()

    @property
    def pending(self) -> int:
        """Turns accepted and not yet answered."""
        with self._lock:
            return len(self._pending)

    def submit(self, turns: Sequence[Turn]) -> None:
        """Record the turns (one job per user, in order), then queue them. When it returns, they are
        recorded (see the module docstring for the one exception) and the channel may ack.

        Raises:
            TurnsBusy: ``limit`` turns wait already; the channel answers 503.
            RuntimeError: the runner is closed (shutting down); the channel answers 503.
        """
        for group in by_user(turns):
            with self._lock:
                if self._closing:
                    raise RuntimeError("the turn runner is closed")
                if len(self._pending) >= self.limit:
                    raise TurnsBusy(f"{len(self._pending)} turns wait already")
            seq = self._record(group)
            with self._lock:
                if seq is None:
                    self._seq -= 1
                    seq = self._seq
                self._pending.add(seq)
            self._pool.submit(self._run, seq, group, False)

    def close(self) -> None:
        """Refuse new turns, let those accepted finish and be delivered, then stop. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._stopping.set()
        if self._leaser is not None:
            self._leaser.join()
        self._pool.shutdown(wait=True)
        if self._forgetter is not None:
            self._forgetter.close()
        with self._lock:
            if self._pending:
                log.error("turn runner stopped with %d turns unanswered", len(self._pending))

    # -- inside ---------------------------------------------------------------------------------

    def _record(self, group: list[Turn]) -> int | None:
        """Write one user's turns to ``pending_turn``; the row id, or None when it could not be written."""
        if self._recorder is None or time.monotonic() < self._db_paused_until:
            return None
        msg, address = group[0]
        try:
            return self._recorder.record(address.channel, msg.user_key, encode_turns(group))
        except (DBAPIError, TimeoutError) as exc:
            # The database is down: the turn will apologise (it cannot run either). Trying again
            # for every event would hold each ack for the connect timeout.
            self._db_paused_until = time.monotonic() + DB_PAUSE_SECONDS
            log.error("turn not recorded, queued in memory error=%s", type(exc).__name__)
            return None

    def _run(self, seq: int, group: list[Turn], retry: bool) -> None:
        try:
            kept: dict[str, Any] = self._kept(seq) if retry and seq > 0 else {}
            for index, (msg, address) in enumerate(group):
                with working(self.outboxes, address):
                    replies = self._answer(seq, str(index), msg, kept)
                deliver(self.outboxes, msg, address, replies)
        except Exception:  # a bug in a channel: logged, and the turn is finished anyway
            log.exception("turn failed")
        finally:
            if seq > 0:
                # Answered: the row goes at once, and the message text with it — the fewer answers
                # delivered and not yet recorded, the fewer a crash repeats. Until it is deleted,
                # its lease is renewed.
                try:
                    with self.queue.autocommit() as uow:  # type: ignore[union-attr]
                        uow.turns.finish_turn(seq)
                except Exception as exc:  # the database is away: the lease runs out, the turn is re-run
                    log.error("answered turn not deleted turn=%d error=%s", seq, type(exc).__name__)
                if self._forgetter is not None:
                    self._forgetter.add(seq)
            with self._lock:
                self._pending.discard(seq)

    def _kept(self, seq: int) -> dict[str, Any]:
        """The answers a dead worker committed for this turn, by index within the job."""
        try:
            with self.store.unit_of_work() as uow:  # type: ignore[union-attr]
                raw = uow.turns.turn_replies(seq)
        except DBAPIError:
            return {}  # the turn below fails the same way and apologises
        return json.loads(raw) if raw else {}

    def _answer(self, seq: int, index: str, msg: IncomingMessage, kept: dict[str, Any]) -> list[Reply]:
        """Run one turn; a recorded turn keeps its answer in the turn's own transaction, and a turn
        whose answer is kept already (run again after a crash) gets that answer without running:
        the event is claimed, and the dialog must not advance twice."""
        if index in kept:
            log.info("turn answer replayed turn=%d part=%s", seq, index)
            return decode_replies(kept[index])
        if seq <= 0 or self.store is None:
            return self.bot.answer(msg)

        def keep(uow: Any, replies: list[Reply]) -> None:
            uow.turns.keep_turn_replies(seq, json.dumps({**kept, index: encode_replies(replies)}, ensure_ascii=False))

        replies = self.bot.answer(msg, keep=keep)
        kept[index] = encode_replies(replies)
        return replies

    # -- leases: this worker's turns, and those of workers that died ----------------------------

    def _lease_loop(self) -> None:
        """Renew this worker's leases and take over the turns of dead ones, every third of a lease."""
        while True:
            try:
                self._renew_and_adopt()
            except Exception as exc:  # the database is away: try again next time
                log.warning("turn leases not renewed error=%s", type(exc).__name__)
            if self._stopping.wait(self.lease / 3):
                return

    def _renew_and_adopt(self) -> None:
        assert self.queue is not None and self.store is not None
        now = utcnow()
        with self._lock:
            room = self.limit - len(self._pending)
            mine = [seq for seq in self._pending if seq > 0]
        with self.store.unit_of_work() as uow:
            # Answers left by a crash between deleting a turn and its answer.
            uow.turns.purge_turn_answers(before=now - ANSWER_RETENTION)
        with self.queue.unit_of_work() as uow:
            if mine:
                uow.turns.renew_turns(self.owner, mine, now)
            adopted = uow.turns.adopt_turns(owner=self.owner, stale_before=now - timedelta(seconds=self.lease),
                                      now=now, limit=max(room, 0))
        dead: list[int] = []
        for turn in adopted:
            with self._lock:
                if turn.id in self._pending:
                    continue  # ours, still running: this loop was late to renew it, nobody died
            if turn.attempts > MAX_DELIVERIES:
                log.error("turn dropped turn=%d: taken over %d times without being answered", turn.id,
                          turn.attempts - 1)
                dead.append(turn.id)
                continue
            try:
                group = decode_turns(turn.payload)
            except Exception:
                log.exception("turn dropped turn=%d: unreadable", turn.id)
                dead.append(turn.id)
                continue
            with self._lock:
                if self._closing:
                    break  # left to the next owner (its lease runs out)
                self._pending.add(turn.id)
                self.adopted += 1
            log.warning("turn taken over turn=%d kind=%s attempt=%d", turn.id, turn.kind, turn.attempts)
            self._pool.submit(self._run, turn.id, group, True)
        if dead:
            try:
                with self.queue.unit_of_work() as uow:
                    uow.turns.finish_turns(dead)
                with self.store.unit_of_work() as uow:
                    uow.turns.forget_turn_answers(dead)
            except Exception as exc:
                log.error("dropped turns not deleted error=%s", type(exc).__name__)
