"""The turn lane: take a recorded turn from the queue, answer it, deliver it, finish it.

Before: the HTTP lane (``bot.intake.TurnRecorder``) recorded one user's turns in ``pending_turn``
(``bot.storage.turn_queue``) and the channel acked. Here ``TurnConsumer``, in the turn process
(``bot.turn_process``), is woken (PostgreSQL's ``NOTIFY``; on SQLite its own looks, further apart
while idle), takes the row (``adopt_turns``: its name and a lease, which a thread renews),
decodes it (``bot.turn_codec``), runs each turn through the core (``bot.core.Bot.answer``), hands
the replies to the channel's outbox (``bot.outbox.deliver``) and deletes the row as soon as the
answer is delivered (``_Finisher``). After: nothing; the turn is done.

A consumer whose lease ran out is dead, and any consumer (the restarted turn process, or another
instance's sharing the database) takes its turns over — ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL, an atomic ``UPDATE … RETURNING`` on SQLite, as the reminder dispatcher claims
deliveries.

What is guaranteed, and what is not:

- The turn itself runs once: the core's claim of the event id (``handled_event``) commits with
  the turn, and with it the answer (``turn_answer``, through the ``AnswerKeeper`` given to
  ``Bot.answer``). A turn re-run after a crash finds that answer and delivers it instead of
  running the dialog again.
- Its answer is delivered at least once: twice only when the process dies between delivering
  the answer and deleting the row (Slack has no idempotency key; a LINE push carries
  ``X-Line-Retry-Key`` and arrives once, a LINE reply does not).
- A turn given to ``MAX_DELIVERIES`` consumers without being finished (each time its process
  died) is dropped and logged, so that one poisonous turn cannot keep killing turn processes.
- One user's turns run one after the other, in the order recorded.
- The apology of a database that is down (``bot.texts.DB_DOWN_TEXT``) is only ever given by a
  recorded turn that runs meanwhile.
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
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from bot.core import AnswerKeeper
from bot.outbox import BACKOFF_SECONDS, DEFAULT_OUTBOX_EXPIRY, DeliveryDelayed, Outbox, backoff_delay, deliver, working
from bot.storage.models import utcnow
from bot.storage.repositories import Store, UnitOfWork, checkpoint_sqlite
from bot.storage.turn_queue import TurnNotices
from bot.turn_codec import Turn, decode_replies, decode_turns, encode_replies
from handlers.messages import IncomingMessage, Reply

log = logging.getLogger("nanbyo.turns")

MAX_DELIVERIES = 3  # consumers a turn may be given to; each of them died before finishing it
DEFAULT_LEASE_SECONDS = 30.0  # an owner that has not renewed its turns for this long is dead
# A kept answer older than this (and the outbox expiry) belongs to a finished turn.
ANSWER_RETENTION = timedelta(minutes=10)
FAILED_SINCE = "failed_since"  # in a kept answer: when its delivery first failed (epoch seconds)
QUEUE_CHECKPOINT_SECONDS = 30.0  # SQLite: the queue's WAL is truncated this often, and at shutdown

# Turns a consumer holds at once per thread (running, waiting behind a turn of the same user, or
# answered and not yet deleted): enough to keep every thread busy. After a crash, at most these
# many answers are delivered again.
TAKEN_PER_THREAD = 4
FINISH_RETRY_SECONDS = 1.0  # a failed delete of answered turns is tried again after this long
FINISHED_MEMORY = 4096  # how many finished turns a consumer remembers (see ``TurnConsumer._finished_lately``)
# How an idle consumer looks for new turns (a read of one row at most each time). SQLite: again after
# 20 ms, then 40, 80 … ms, at most 500 ms apart; a turn taken starts over, and a turn recorded in this
# process wakes it at once (``wake``). PostgreSQL: the NOTIFY of a recorded turn wakes it
# (``TurnNotices``), and a look every second finds what no notification announced (one sent while
# the listener reconnected, the turns of a consumer that died).
IDLE_FIRST_SECONDS = 0.02
IDLE_MOST_SECONDS = 0.5
LISTENING_POLL_SECONDS = 1.0
LISTEN_WAIT_SECONDS = 0.25  # the listener's wait between looks at whether the consumer stopped
LISTEN_RETRY_SECONDS = 5.0  # after the listening connection failed


def today_tokyo() -> date:
    """The day in Japan, which the statistics count by."""
    return datetime.now(ZoneInfo("Asia/Tokyo")).date()


class Answers(Protocol):
    """What the runner needs of the core: ``bot.core.Bot`` satisfies it."""

    def answer(self, msg: IncomingMessage, keeper: AnswerKeeper = ...) -> list[Reply]: ...


@dataclasses.dataclass(frozen=True)
class KeptWithTurn:
    """The ``AnswerKeeper`` of a recorded turn: part ``index`` of row ``seq`` keeps its answer in
    ``turn_answer`` beside the parts answered before it (``kept``), in the turn's transaction."""

    seq: int
    index: str
    kept: dict[str, Any]

    def keep(self, uow: UnitOfWork, replies: list[Reply]) -> None:
        answers = {**self.kept, self.index: encode_replies(replies)}
        uow.turns.keep_turn_replies(self.seq, json.dumps(answers, ensure_ascii=False))


class IdleBackoff:
    """The pauses of an idle consumer between looks for new turns: ``first``, doubling up to
    ``most``; ``reset`` when a look found work."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self._next = first

    def reset(self) -> None:
        self._next = self.first

    def pause(self) -> float:
        """How long to wait now; the next pause is twice as long (at most ``most``)."""
        pause, self._next = self._next, min(self._next * 2, self.most)
        return pause


@dataclasses.dataclass
class _Waiting:
    """A turn whose answer waits for the platform: the answers made, the parts already delivered."""

    kept: dict[str, Any]
    delivered: set[str]
    since: float
    attempts: int
    maybe_shown: bool = False  # an attempt failed in a way the platform may have shown it anyway


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
    """

    def __init__(
        self,
        bot: Answers,
        outboxes: Mapping[str, Outbox],
        *,
        store: Store | None,
        queue: Store | None,
        threads: int = 8,
        lease: float = DEFAULT_LEASE_SECONDS,
        outbox_expiry: float = DEFAULT_OUTBOX_EXPIRY,
        backoff: float = BACKOFF_SECONDS,
    ) -> None:
        self.bot, self.outboxes = bot, outboxes
        self.outbox_expiry, self.backoff = outbox_expiry, backoff
        if queue is not None and hasattr(bot, "turn_queue"):
            bot.turn_queue = queue  # a user's deletion removes their waiting turns too
        self.store, self.queue = store, queue  # turn answers are kept in the one, turns wait in the other
        self.lease = lease
        self.listening = queue is not None and queue.engine.dialect.name == "postgresql"
        self.capacity = threads * TAKEN_PER_THREAD
        self.owner = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.adopted = 0  # turns taken over from a consumer that died
        self._lock = threading.Lock()  # guards _pending, _users, _seq
        self._pending: set[int] = set()  # recorded turns have their row id, unrecorded ones a negative number
        # Turns this consumer finished lately. A take that locked a turn's row (its lease ran out while
        # the database was away) just before the finisher's delete went through finds it gone from
        # ``_pending`` and must not run it again (row ids are never reused).
        self._finished_lately: set[int] = set()
        self._finished_order: deque[int] = deque()
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
            self._threads = [
                threading.Thread(target=self._take_loop, name="turn-take", daemon=True),
                threading.Thread(target=self._lease_loop, name="turn-lease", daemon=True),
            ]
            if self.listening:
                self._threads.append(threading.Thread(target=self._listen_loop, name="turn-listen", daemon=True))
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
        if self.listening:
            idle = IdleBackoff(LISTENING_POLL_SECONDS, LISTENING_POLL_SECONDS)
        else:
            idle = IdleBackoff(IDLE_FIRST_SECONDS, IDLE_MOST_SECONDS)
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
            if taken > 0:
                idle.reset()
            if taken <= 0 or self.busy >= self.capacity:
                self._wake.wait(idle.pause() if taken == 0 else 1.0)

    def _listen_loop(self) -> None:
        """PostgreSQL: wake the take loop when a turn is recorded (``TurnNotices``), on any instance."""
        assert self.queue is not None
        notices = TurnNotices(self.queue.engine)
        try:
            while not self._stopped.is_set():
                try:
                    if notices.wait(LISTEN_WAIT_SECONDS):
                        self._wake.set()
                except Exception as exc:  # the database is away: the slow poll goes on meanwhile
                    log.warning("turn notifications not received error=%s", type(exc).__name__)
                    self._stopped.wait(LISTEN_RETRY_SECONDS)
        finally:
            notices.close()

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
                if turn.id in self._pending or turn.id in self._finished_lately:
                    # Ours, still running or being deleted: the lease loop was late to renew it (the
                    # database was away), nobody died.
                    continue
            if turn.attempts > MAX_DELIVERIES:
                log.error(
                    "turn dropped turn=%d: taken over %d times without being answered", turn.id, turn.attempts - 1
                )
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
                if waiting is not None:
                    address = address.for_redelivery()  # LINE: pushed, the reply token may be spent
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

    def _later(
        self,
        seq: int,
        group: list[Turn],
        waiting: _Waiting | None,
        kept: dict[str, Any],
        delivered: set[str],
        exc: DeliveryDelayed,
    ) -> bool:
        """Try the delivery again after a backoff (or what the platform asked for), with the answers
        already made (the turn does not run twice); False when it has waited ``outbox_expiry``."""
        since = waiting.since if waiting else self._failed_since(seq, kept)
        attempts = (waiting.attempts if waiting else 0) + 1
        if time.monotonic() - since >= self.outbox_expiry:
            log.error("delivery given up turn=%d attempts=%d after=%.0fs", seq, attempts, time.monotonic() - since)
            self._count(group, "given_up")
            return False
        delay = backoff_delay(attempts, exc.retry_after, self.outbox_expiry - (time.monotonic() - since), self.backoff)
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
            self._finished_lately.update(seqs)
            self._finished_order.extend(seqs)
            while len(self._finished_order) > FINISHED_MEMORY:
                self._finished_lately.discard(self._finished_order.popleft())
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
        replies = self.bot.answer(msg, KeptWithTurn(seq, index, kept))
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
