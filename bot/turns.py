"""The turn runner: takes frozen ``(IncomingMessage, Address)`` pairs from any channel, runs
each turn through the core (``Bot.answer``) and hands the replies to the channel's outbox.

No channel knows how turns are scheduled; ``bot.bootstrap`` picks the runner:

- ``InlineRunner`` runs a turn on the caller's thread before ``submit`` returns (the console,
  the CLI, the tests that want an answer at once).
- ``TurnRecorder`` is what ``serve``'s HTTP processes hand their turns to: ``submit`` records
  them in ``pending_turn`` and returns (the channel acks). Nothing else: the turns run in the
  turn process (``bot.turn_process``), whose ``TurnConsumer`` takes them from that table. Slack
  wants an answer within 3 seconds and retries otherwise; LINE wants a quick 200 and does not
  redeliver a webhook that got one; a turn costs milliseconds of CPU, and run in the HTTP
  process it holds the GIL against the threads that ack. The row is the hand-off: no pipe,
  nothing pickled.
- ``PooledRunner`` is both in one process (the tests that run the server in a thread; and
  without a store, turns in memory only).

Why the database: Slack and LINE do not send an acknowledged event again, so a turn held only
in memory is lost when the process dies. ``submit`` writes the turn to ``pending_turn``; the
turns of concurrent acks share one transaction (``_Recorder``, a group commit), committed
before the channel acks. On SQLite the table is in a file of its own beside the database
(``turn_queue``), so that this write never queues behind the turns holding the database's one
write lock. A recorded turn has no owner; a ``TurnConsumer`` takes it (``adopt_turns``: its name
and a lease, which a thread renews), runs it, and deletes the row as soon as the answer is
delivered. A consumer whose lease ran out is dead, and any consumer (the restarted turn
process, or another instance's sharing the database) takes its turns over — ``SELECT … FOR
UPDATE SKIP LOCKED`` on PostgreSQL, an atomic ``UPDATE … RETURNING`` on SQLite, as the reminder
dispatcher claims deliveries.

What is guaranteed, and what is not:

- A turn is recorded before the ack, or refused: ``submit`` raises ``TurnsBusy`` when ``limit``
  turns already wait in the queue, and ``TurnsUnrecorded`` when the database cannot record it
  within ``record_timeout`` seconds (well under Slack's 3) or has just failed to; the channel
  answers 503 so that Slack or LINE delivers the event again later. Nothing is acked that is not
  recorded, and no apology goes out for a turn nobody will run: the apology of a database that is
  down (``bot.core.DB_DOWN_TEXT``) is only ever given by a recorded turn that runs meanwhile.
- The turn itself runs once: the core's claim of the event id (``handled_event``) commits with
  the turn, and with it the answer (``turn_answer``, through ``Bot.answer(keep=...)``). A turn
  re-run after a crash finds that answer and delivers it instead of running the dialog again.
- Its answer is delivered at least once: twice only when the process dies between delivering
  the answer and deleting the row (Slack has no idempotency key; a LINE push carries
  ``X-Line-Retry-Key`` and arrives once, a LINE reply does not).
- A turn given to ``MAX_DELIVERIES`` consumers without being finished (each time its process
  died) is dropped and logged, so that one poisonous turn cannot keep killing turn processes.
- One user's turns run one after the other, in the order recorded.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from handlers.messages import Address, IncomingMessage, Reply
from nlp.privacy import hash_user, looks_like_my_number, without_numbers
from bot.storage.models import utcnow
from bot.storage.repositories import Store, checkpoint_sqlite
from bot.storage.turn_queue import TurnWriter

log = logging.getLogger("nanbyo.turns")

Turn = tuple[IncomingMessage, Address]

MAX_DELIVERIES = 3  # consumers a turn may be given to; each of them died before finishing it
DEFAULT_LIMIT = 5000  # turns waiting in the queue before new ones are refused (503)
DEFAULT_LEASE_SECONDS = 30.0  # an owner that has not renewed its turns for this long is dead
ANSWER_RETENTION = timedelta(minutes=10)  # a kept answer older than this (and the outbox expiry) belongs to a finished turn
FAILED_SINCE = "failed_since"  # in a kept answer: when its delivery first failed (epoch seconds)
QUEUE_CHECKPOINT_SECONDS = 30.0  # SQLite: the queue's WAL is truncated this often, and at shutdown
DB_PAUSE_SECONDS = 5.0  # after a failed write, turns are refused (503) for this long before trying again
# How long an ack waits for its turn to be committed: well under Slack's 3 seconds, so that a hung
# database gets the event a 503 (and Slack or LINE delivers it again) rather than a late ack.
DEFAULT_RECORD_TIMEOUT = 2.0
# Turns a consumer holds at once per thread (running, waiting behind a turn of the same user, or
# answered and not yet deleted): enough to keep every thread busy. After a crash, at most these
# many answers are delivered again.
TAKEN_PER_THREAD = 4
FINISH_RETRY_SECONDS = 1.0  # a failed delete of answered turns is tried again after this long
POLL_SECONDS = 0.02  # how often an idle consumer looks for new turns (a read of one row at most)
CLOSE_SECONDS = 60.0  # on close, how long a consumer goes on taking the turns still in the queue
# A delivery the platform failed for a moment (5xx, 429, a timeout) is tried again after 1, 2, 4 … s
# (at most 30 s between tries, or what Retry-After says), for up to this long; then it is given up.
DEFAULT_OUTBOX_EXPIRY = 600.0
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


def today_tokyo() -> date:
    """The day in Japan, which the statistics count by."""
    return datetime.now(ZoneInfo("Asia/Tokyo")).date()


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


class TurnsUnrecorded(RuntimeError):
    """The database could not record the turn in time; the channel answers 503 and the platform
    delivers the event again."""


class DeliveryDelayed(RuntimeError):
    """The platform failed for a moment (5xx, 429, a timeout, not reached): the delivery is tried again.

    Attributes:
        retry_after: seconds the platform asked to wait (``Retry-After``), if it said.
    """

    def __init__(self, cause: Exception, retry_after: float | None, maybe_shown: bool = False) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.retry_after = retry_after
        self.maybe_shown = maybe_shown


def maybe_shown(exc: Exception) -> bool:
    """Whether the platform may have shown the message although it failed the request: a 5xx, a
    timeout or a lost connection, on a call without an idempotency key (Slack's chat.postMessage, a
    LINE reply). A 429 or a 503 says the request was not taken; a LINE push with
    ``X-Line-Retry-Key`` cannot show twice. Counted, not avoided: an upper bound of the answers a
    retry may have shown twice. A delivery whose first messages went through before one failed
    (``partly_delivered``) shows those again on a retry."""
    if getattr(exc, "partly_delivered", False):
        return True
    if getattr(exc, "idempotent", False):
        return False
    status = getattr(exc, "status", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status not in (429, 503)


def transient(exc: Exception) -> tuple[bool, float | None]:
    """Whether a delivery error may pass (and how long the platform asked to wait): a 5xx or a 429
    from Slack or LINE, or a platform not reached at all. A 4xx (the user blocked the bot, a bad
    request) is for good."""
    permanent = getattr(exc, "permanent", None)  # LineDeliveryError
    if permanent is not None:
        return not permanent, getattr(exc, "retry_after", None)
    response = getattr(exc, "response", None)  # slack_sdk's SlackApiError
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        headers = {str(k).lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
        value = headers.get("retry-after")
        return status >= 500 or status == 429, retry_after_seconds(value[0] if isinstance(value, list) else value)
    return isinstance(exc, (OSError, TimeoutError, ConnectionError)), None


def retry_after_seconds(value: object, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: a number of seconds or an HTTP date (RFC 9110);
    None when absent or unreadable (the backoff decides). Never negative."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_delay(attempt: int, retry_after: float | None, left: float, base: float = BACKOFF_SECONDS) -> float:
    """How long to wait before delivery attempt ``attempt`` + 1: what the platform asked for
    (``Retry-After``), else ``base`` × 2^(attempt-1) with "equal jitter" (half fixed, half random,
    so that the turns of one outage do not all come back at one instant), at most
    ``MAX_BACKOFF_SECONDS``; never past the ``left`` seconds before the delivery expires, so that it
    has a last try."""
    if retry_after is not None:
        delay = retry_after
    else:
        delay = min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempt - 1)) * (0.5 + random.random() / 2)
    return max(0.0, min(delay, left))


def deliver(outboxes: Mapping[str, Outbox], msg: IncomingMessage, address: Address, replies: list[Reply]) -> None:
    """Hand replies to their channel's outbox; a refusal for good is logged (never the text), not
    raised; one that may pass raises ``DeliveryDelayed`` (the runner tries again)."""
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
        passing, wait = transient(exc)
        log.error("delivery failed channel=%s user=%s error=%s status=%s%s", address.channel,
                  hash_user(msg.user_key), type(exc).__name__,
                  getattr(exc, "status", None) or getattr(getattr(exc, "response", None), "status_code", None),
                  " (will retry)" if passing else "")
        if passing:
            raise DeliveryDelayed(exc, wait, maybe_shown(exc)) from exc
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
    platform sent (a lone surrogate, NUL) is storable as it is; the core makes it readable later.

    The My Number guard runs first (``without_my_number``): a number the core would refuse is
    never written, not even to the queue or its WAL."""
    return json.dumps([{"msg": _fields(without_my_number(m)), "address": _fields(a)} for m, a in turns])


def without_my_number(msg: IncomingMessage) -> IncomingMessage:
    """``msg`` as it may be recorded: when its text or choice holds a My Number, the choice goes,
    the text keeps its words without any number (``without_numbers``: an emergency written in the
    same message is still answered) and ``my_number`` tells the core to refuse it."""
    if msg.my_number or not (looks_like_my_number(msg.text or "") or looks_like_my_number(msg.choice or "")):
        return msg
    return dataclasses.replace(msg, text=without_numbers(msg.text) if msg.text else None, choice=None,
                               my_number=True)


def _fields(frozen: Any) -> dict[str, Any]:
    """A flat dataclass's fields: ``dataclasses.asdict`` deep-copies each value, and on the ack's
    path that was a fifth of the request's CPU (bench/http_load.py --profile cpu)."""
    return {f.name: getattr(frozen, f.name) for f in dataclasses.fields(frozen)}


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
class _Waiting:
    """A turn whose answer waits for the platform: the answers made, the parts already delivered."""

    kept: dict[str, Any]
    delivered: set[str]
    since: float
    attempts: int
    maybe_shown: bool = False  # an attempt failed in a way the platform may have shown it anyway


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

    def __init__(self, store: Any, on_recorded: Callable[[], None] | None = None,
                 wait: float = DEFAULT_RECORD_TIMEOUT) -> None:
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
                batch, self._queue[:] = self._queue[:self.MAX_BATCH], self._queue[self.MAX_BATCH:]
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


class _Finisher:
    """Deletes answered turns (``pending_turn``, and with them the message text), then their kept
    answers (``turn_answer``), several per statement.

    Off the turn's thread and batched, so that it takes the queue's write lock (on SQLite shared
    with the HTTP processes recording turns) once for many turns. A crash before it ran leaves
    those turns to be taken over: they deliver their kept answer again (at least once). A crash
    between the two deletes leaves a few answers, which the lease loop purges later.
    """

    def __init__(self, queue: Store | None, store: Store | None, finished: Callable[[list[int]], None]) -> None:
        self._queue = queue
        self._store = store
        self._finished = finished  # told once the rows are deleted (or could not be)
        self._cond = threading.Condition()
        self._done: list[int] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="turn-finish", daemon=True)
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
                if self._queue is not None:
                    with self._queue.autocommit() as uow:
                        uow.turns.finish_turns(batch)
            except Exception as exc:  # the database is away: try again, the turns stay ours
                log.error("answered turns not deleted count=%d error=%s", len(batch), type(exc).__name__)
                if not self._closing:
                    # Not left to the leases: a turn taken over when its lease ran out would run
                    # again, and a user who had the apology of a database that was down would get
                    # the answer as well. Pending here, they are renewed, not taken over.
                    with self._cond:
                        self._done[:0] = batch
                        self._cond.wait(FINISH_RETRY_SECONDS)
                    continue
                self._finished(batch)
                continue
            self._finished(batch)
            try:
                if self._store is not None:
                    with self._store.autocommit() as uow:
                        uow.turns.forget_turn_answers(batch)
            except Exception as exc:
                log.warning("kept answers not deleted count=%d error=%s", len(batch), type(exc).__name__)


class TurnRecorder:
    """``serve``'s HTTP side: ``submit`` records the turns in ``pending_turn`` and returns (the
    channel acks); a ``TurnConsumer`` (the turn process) takes them from there.

    Args:
        queue: where ``pending_turn`` is (``turn_queue``).
        limit: turns that may wait in the queue (recorded, not yet answered); one more is
            refused with ``TurnsBusy``.
        record_timeout: seconds an ack waits for the commit; beyond it the turn is refused with
            ``TurnsUnrecorded`` (503), as it is while the database has just failed.
        on_recorded: called after each commit (``PooledRunner`` wakes its consumer).
    """

    def __init__(self, queue: Store, *, limit: int = DEFAULT_LIMIT, record_timeout: float = DEFAULT_RECORD_TIMEOUT,
                 on_recorded: Callable[[], None] | None = None) -> None:
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


class TurnConsumer:
    """The turn side: takes turns from ``pending_turn`` (or, without a queue, from ``push``),
    runs them on a thread pool, delivers their answers and deletes them.

    Args:
        bot: the core.
        outboxes: the configured channels' outboxes, by channel name.
        store: the database's store (``Bot.store``), where turn answers are kept; None for
            turns in memory only.
        queue: where ``pending_turn`` is (``turn_queue``); None takes no recorded turns.
        threads: turns run at once (they mostly wait for the database and the platform's API).
        lease: seconds after which the turns of a consumer that stopped renewing them are
            taken over.
        poll: seconds between looks for new turns when idle (``wake`` looks at once).
    """

    def __init__(self, bot: Answers, outboxes: Mapping[str, Outbox], *, store: Store | None, queue: Store | None,
                 threads: int = 8, lease: float = DEFAULT_LEASE_SECONDS, poll: float = POLL_SECONDS,
                 outbox_expiry: float = DEFAULT_OUTBOX_EXPIRY, backoff: float = BACKOFF_SECONDS) -> None:
        self.bot, self.outboxes = bot, outboxes
        self.outbox_expiry, self.backoff = outbox_expiry, backoff
        if queue is not None and hasattr(bot, "turn_queue"):
            bot.turn_queue = queue  # a user's deletion removes their waiting turns too
        self.store, self.queue = store, queue  # turn answers are kept in the one, turns wait in the other
        self.lease, self.poll = lease, poll
        self.capacity = threads * TAKEN_PER_THREAD
        self.owner = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.adopted = 0  # turns taken over from a consumer that died
        self._lock = threading.Lock()  # guards _pending, _users, _seq
        self._pending: set[int] = set()  # recorded turns have their row id, unrecorded ones a negative number
        self._users: dict[str, deque[tuple[int, list[Turn], bool]]] = {}  # users with a turn running: the next ones
        self._waiting: dict[int, _Waiting] = {}  # turns whose delivery waits for the platform to come back
        self._held: set[str] = set()  # users whose next turns wait behind such a turn (in _users)
        self.redelivered = 0  # deliveries tried again after the platform failed (Slack may show those twice)
        self._seq = 0
        self._wake = threading.Event()
        self._draining = threading.Event()
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="turn")
        self._finisher = _Finisher(queue, store, self._finished) if queue is not None else None
        self._threads: list[threading.Thread] = []
        if queue is not None:
            self._threads = [threading.Thread(target=self._take_loop, name="turn-take", daemon=True),
                             threading.Thread(target=self._lease_loop, name="turn-lease", daemon=True)]
            for thread in self._threads:
                thread.start()

    @property
    def pending(self) -> int:
        """Turns taken and not yet answered."""
        with self._lock:
            return len(self._pending)

    @property
    def busy(self) -> int:
        """Turns taken that hold room here: those whose delivery waits for the platform to come
        back hold no thread, so a Slack outage does not stop the LINE turns (nor new Slack turns
        from being answered and kept)."""
        with self._lock:
            behind = sum(len(self._users.get(user, ())) for user in self._held)
            return len(self._pending) - len(self._waiting) - behind

    def wake(self) -> None:
        """Look for new turns now."""
        self._wake.set()

    def push(self, group: list[Turn]) -> None:
        """Run one user's turns that are not recorded (memory only: lost if the process dies)."""
        with self._lock:
            self._seq -= 1
            seq = self._seq
            self._pending.add(seq)
        self._dispatch(seq, group, False)

    def close(self, timeout: float | None = None) -> bool:
        """Finish: take and answer every turn still in the queue (and those pushed), then stop.
        After ``timeout`` seconds, stop taking (what is left waits for the next consumer).
        True when nothing was left. Idempotent."""
        self._draining.set()
        self._wake.set()
        finished = self._stopped.wait(timeout) if self._threads else True
        self._stopped.set()
        self._wake.set()
        for thread in self._threads:
            thread.join()
        self._pool.shutdown(wait=True)
        if self._finisher is not None:
            self._finisher.close()
        self._checkpoint()
        if self.pending:
            log.error("turn runner stopped with %d turns unanswered", self.pending)
        return finished

    # -- taking turns ---------------------------------------------------------------------------

    def _take_loop(self) -> None:
        """Take new turns (and those of dead consumers) while there is room; when draining, stop
        once the queue has nothing left to take and every turn taken is answered."""
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                taken = self._take()
            except Exception as exc:  # the database is away: try again a little later
                log.warning("turns not taken error=%s", type(exc).__name__)
                taken = -1
            if taken == 0 and self._draining.is_set() and self.pending == 0:
                self._stopped.set()
                return
            if taken <= 0 or self.busy >= self.capacity:
                self._wake.wait(self.poll if taken == 0 else 1.0)

    def _take(self) -> int:
        """Take as many turns as there is room for; how many (0: none to take, or no room)."""
        assert self.queue is not None
        room = self.capacity - self.busy
        if room <= 0:
            return 0
        now = utcnow()
        stale_before = now - timedelta(seconds=self.lease)
        with self.queue.unit_of_work() as uow:
            if not uow.turns.any_to_adopt(stale_before):
                return 0
        with self._writing() as uow:
            taken = uow.turns.adopt_turns(owner=self.owner, stale_before=stale_before, now=now, limit=room)
        dead: list[int] = []
        for turn in taken:
            with self._lock:
                if turn.id in self._pending:
                    continue  # ours, still running: the lease loop was late to renew it, nobody died
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
            retry = turn.attempts > 1
            with self._lock:
                self._pending.add(turn.id)
                self.adopted += retry
            if retry:
                log.warning("turn taken over turn=%d kind=%s attempt=%d", turn.id, turn.kind, turn.attempts)
            self._dispatch(turn.id, group, retry)
        if dead:
            self._drop(dead)
        return len(taken)

    def _writing(self) -> AbstractContextManager[Any]:
        """Where this consumer writes to the queue. On SQLite each of its writes is one statement
        committing by itself (``Store.autocommit``, not flushed to disk: a lost take or renewal
        only makes a turn be taken again, which delivers its kept answer): its write lock, which
        the HTTP processes record under, is held within that statement only — not across Python
        work in a process of lower priority that may be descheduled meanwhile (measured: acks
        waited 52 ms on average for their record, bench/http_load.py --profile wall). On
        PostgreSQL, a transaction (``adopt_turns`` locks rows, then updates them)."""
        assert self.queue is not None
        if self.queue.engine.dialect.name == "sqlite":
            return self.queue.autocommit()
        return self.queue.unit_of_work()

    def _drop(self, dead: list[int]) -> None:
        assert self.queue is not None and self.store is not None
        try:
            with self.queue.unit_of_work() as uow:
                uow.turns.finish_turns(dead)
            with self.store.unit_of_work() as uow:
                uow.turns.forget_turn_answers(dead)
        except Exception as exc:
            log.error("dropped turns not deleted error=%s", type(exc).__name__)

    def _dispatch(self, seq: int, group: list[Turn], retry: bool) -> None:
        """Run a user's turns after those of theirs already running (in order, one at a time)."""
        user = group[0][0].user_key
        with self._lock:
            if user in self._users:
                self._users[user].append((seq, group, retry))
                return
            self._users[user] = deque()
        self._pool.submit(self._run_user, user, seq, group, retry)

    def _run_user(self, user: str, seq: int, group: list[Turn], retry: bool) -> None:
        while True:
            if self._run(seq, group, retry):
                # Its delivery waits for the platform: the user's next turns wait behind it (their
                # answers come after this one), and its retry goes on with them (``_retry``).
                return
            with self._lock:
                waiting = self._users[user]
                if not waiting:
                    del self._users[user]
                    break
                seq, group, retry = waiting.popleft()

    # -- running one -----------------------------------------------------------------------------

    def _run(self, seq: int, group: list[Turn], retry: bool) -> bool:
        """Run one recorded row's turns and deliver them; True when the delivery waits for the
        platform (tried again later, the row kept)."""
        with self._lock:
            waiting = self._waiting.pop(seq, None)
        later = False
        try:
            kept: dict[str, Any] = waiting.kept if waiting else self._kept(seq) if retry and seq > 0 else {}
            delivered: set[str] = waiting.delivered if waiting else set()
            for index, (msg, address) in enumerate(group):
                if str(index) in delivered:
                    continue  # delivered before the platform failed on a later part
                if waiting is not None and address.reply_token is not None:
                    # A LINE reply token lives about a minute and may have been spent by the failed
                    # call: the next tries push, with X-Line-Retry-Key, so that they cannot repeat.
                    address = dataclasses.replace(address, reply_token=None)
                with working(self.outboxes, address):
                    replies = self._answer(seq, str(index), msg, kept)
                deliver(self.outboxes, msg, address, replies)
                delivered.add(str(index))
            if waiting is not None:
                self._count(group, "delivered_late")
                if waiting.maybe_shown:
                    self._count(group, "maybe_twice")
        except DeliveryDelayed as exc:
            later = self._later(seq, group, waiting, kept, delivered, exc)
        except Exception:  # a bug in a channel: logged, and the turn is finished anyway
            log.exception("turn failed")
        finally:
            if later:
                pass  # still pending: its lease is renewed, and a crash meanwhile leaves it to be taken over
            elif seq > 0 and self._finisher is not None:
                # Answered: the row goes at once, and the message text with it — the fewer answers
                # delivered and not yet recorded, the fewer a crash repeats. It stays pending here
                # until it is deleted: its lease is renewed, and it is not taken again meanwhile.
                self._finisher.add(seq)
            else:
                self._finished([seq])
        return later

    def _later(self, seq: int, group: list[Turn], waiting: _Waiting | None, kept: dict[str, Any],
               delivered: set[str], exc: DeliveryDelayed) -> bool:
        """Try the delivery again after a backoff (or what the platform asked for), with the answers
        already made (the turn does not run twice); False when it has waited ``outbox_expiry``."""
        since = waiting.since if waiting else self._failed_since(seq, kept)
        attempts = (waiting.attempts if waiting else 0) + 1
        if time.monotonic() - since >= self.outbox_expiry:
            log.error("delivery given up turn=%d attempts=%d after=%.0fs", seq, attempts, time.monotonic() - since)
            self._count(group, "given_up")
            return False
        delay = backoff_delay(attempts, exc.retry_after, self.outbox_expiry - (time.monotonic() - since),
                              self.backoff)
        shown = exc.maybe_shown or (waiting.maybe_shown if waiting else False)
        with self._lock:
            self._waiting[seq] = _Waiting(kept, delivered, since, attempts, shown)
            self._held.add(group[0][0].user_key)
            self.redelivered += 1
        self._count(group, "retried")
        timer = threading.Timer(delay, self._retry, args=(seq, group))
        timer.daemon = True
        timer.start()
        log.warning("delivery delayed turn=%d attempt=%d retry_in=%.1fs", seq, attempts, delay)
        return True

    def _failed_since(self, seq: int, kept: dict[str, Any]) -> float:
        """When the delivery first failed (``time.monotonic()`` terms), kept with the turn's answer
        so that a turn taken over after a restart still expires ``outbox_expiry`` after its first
        failure, not after the restart."""
        now_wall, now = time.time(), time.monotonic()
        first = kept.get(FAILED_SINCE)
        if isinstance(first, (int, float)):
            return now - max(0.0, now_wall - first)
        kept[FAILED_SINCE] = now_wall
        if seq > 0 and self.store is not None:
            try:
                with self.store.unit_of_work() as uow:
                    uow.turns.keep_turn_replies(seq, json.dumps(kept, ensure_ascii=False))
            except Exception as exc:  # the database is away: the expiry counts from a takeover
                log.warning("delivery failure time not kept turn=%d error=%s", seq, type(exc).__name__)
        return now

    def _retry(self, seq: int, group: list[Turn]) -> None:
        """Deliver a waiting turn again; once this consumer has stopped, leave it in the queue (not
        deleted, no longer renewed) for the next consumer, which delivers its kept answer."""
        user = group[0][0].user_key
        if not self._stopped.is_set():
            with self._lock:
                self._held.discard(user)
            try:
                self._pool.submit(self._run_user, user, seq, group, True)
                return
            except RuntimeError:  # the pool shut down meanwhile
                pass
        with self._lock:
            # Left in the queue, with the user's turns waiting behind it, for the next consumer.
            self._waiting.pop(seq, None)
            self._pending.discard(seq)

    def _count(self, group: list[Turn], outcome: str) -> None:
        """Count a delivery outcome for ``nanbyo-bot stats`` (the day, the channel; nobody's id)."""
        if self.store is None:
            return
        try:
            with self.store.unit_of_work() as uow:
                uow.statistics.count_delivery(today_tokyo(), group[0][1].channel, outcome)
        except Exception as exc:  # the database is away: the count is lost, not the answer
            log.warning("delivery not counted outcome=%s error=%s", outcome, type(exc).__name__)

    def _finished(self, seqs: list[int]) -> None:
        with self._lock:
            self._pending.difference_update(seqs)
        self._wake.set()  # room for more

    def _kept(self, seq: int) -> dict[str, Any]:
        """The answers a dead consumer committed for this turn, by index within the row."""
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

    # -- leases: this consumer is alive -----------------------------------------------------------

    def _lease_loop(self) -> None:
        """Renew the leases of the turns taken here, every third of a lease, and purge answers left
        by a crash."""
        checkpointed = time.monotonic()
        while not self._stopped.wait(self.lease / 3):
            try:
                self._renew()
            except Exception as exc:  # the database is away: try again next time
                log.warning("turn leases not renewed error=%s", type(exc).__name__)
            if time.monotonic() - checkpointed >= QUEUE_CHECKPOINT_SECONDS:
                checkpointed = time.monotonic()
                self._checkpoint()

    def _checkpoint(self) -> None:
        """On SQLite, copy the queue's WAL into its file and truncate it: the turns answered since
        (their message text, their user's id: a deleted user's too) leave no copy in ``-wal``
        (the file itself overwrites deleted rows, ``secure_delete``)."""
        if self.queue is None or self.queue.engine.dialect.name != "sqlite":
            return
        try:
            checkpoint_sqlite(self.queue.engine)
        except Exception as exc:  # busy or away: the next one does it
            log.warning("turn queue not checkpointed error=%s", type(exc).__name__)

    def _renew(self) -> None:
        assert self.queue is not None and self.store is not None
        now = utcnow()
        with self._lock:
            mine = [seq for seq in self._pending if seq > 0]
        with self.store.unit_of_work() as uow:
            # Answers left by a crash between deleting a turn and its answer.
            # A turn waiting for the platform keeps its answer for up to outbox_expiry more.
            uow.turns.purge_turn_answers(before=now - ANSWER_RETENTION - timedelta(seconds=self.outbox_expiry))
        if mine:
            with self._writing() as uow:
                uow.turns.renew_turns(self.owner, mine, now)


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

    def __init__(self, bot: Answers, outboxes: Mapping[str, Outbox], *, store: Store | None = None,
                 database_url: str = "", threads: int = 8, limit: int = DEFAULT_LIMIT,
                 lease: float = DEFAULT_LEASE_SECONDS, record_timeout: float = DEFAULT_RECORD_TIMEOUT,
                 outbox_expiry: float = DEFAULT_OUTBOX_EXPIRY, backoff: float = BACKOFF_SECONDS) -> None:
        self.queue = turn_queue(store, database_url) if store is not None else None
        self.limit = limit
        self.consumer = TurnConsumer(bot, outboxes, store=store, queue=self.queue, threads=threads, lease=lease,
                                     outbox_expiry=outbox_expiry, backoff=backoff)
        self.recorder = TurnRecorder(self.queue, limit=limit, record_timeout=record_timeout,
                                     on_recorded=self.consumer.wake) if self.queue is not None else None
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
