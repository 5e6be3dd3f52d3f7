"""Slack and LINE turns in a child process, so that ``serve`` keeps acknowledging at full speed,
recorded in the database before the acknowledgement, so that no acknowledged turn is lost.

Why a child: Slack wants every request answered within 3 seconds and retries otherwise (LINE
wants a quick 200 too), so the ack is the part that must stay fast under a burst. A turn (FAQ
ranking, a unit of work, the Web API posts) costs a few milliseconds of CPU; run in the
server's own process it holds the GIL against the threads that ack, and a burst of events
then slows every ack down. With ``TurnProcess`` the server process only verifies, records,
acks and hands the work over a pipe — a Slack ``(message, destination)``, or one LINE user's
events of a webhook — and a child process with its own ``Bot`` runs the turns on a thread pool
and posts the answers. The child runs at a lower CPU priority (``nice``), so under a burst the
acks get the processor first and the answers follow as soon as there is room.

Why the database: Slack and LINE do not send an acknowledged event again, so a turn held only
in memory is lost when the processes die. With a ``store``, ``submit`` first writes the turn
to ``pending_turn`` and only then hands it to the child; the turns of concurrent acks share
one transaction (``_Recorder``, a group commit), committed before the channel acks. On SQLite
the table is in a file of its own beside the database (``turn_queue``), so that this write
never queues behind the turns holding the database's one write lock. The child deletes the
row as soon as the answer is posted. The row names its owner (this instance), whose
lease a thread here renews; an instance whose lease ran out is dead, and any instance (this
one after a restart, or another sharing the database) takes its turns over — ``SELECT … FOR
UPDATE SKIP LOCKED`` on PostgreSQL, an atomic ``UPDATE … RETURNING`` on SQLite, as the reminder
dispatcher claims deliveries.

What is guaranteed, and what is not:

- A turn is recorded before the ack, or refused: ``submit`` raises ``TurnsBusy`` when
  ``limit`` turns already wait here, and the channel answers 503 so that Slack or LINE
  delivers the event again later. The only exception: when the database itself fails, the
  turn is handed over in memory, unrecorded (at most once), so that the user still gets an
  answer — the apology, while the database is down.
- The turn itself runs once: the core's claim of the event id (``handled_event``) commits with
  the turn, and with it the answer (``turn_answer``, through ``Bot.handle(keep=...)``).
  A turn re-run after a crash finds that answer and posts it instead of running the dialog
  again.
- Its answer is posted at least once: twice only when the process dies between posting the
  answer and deleting the row (Slack has no idempotency key; a LINE push carries
  ``X-Line-Retry-Key`` and arrives once, a LINE reply does not).
- A turn handed to ``MAX_DELIVERIES`` children (or taken over that many times) that all died
  is dropped and logged, so that one poisonous turn cannot keep killing its children.

Without a ``store`` (tests, and the module's own unit of use) the turns wait in memory only,
as they did before: a child that dies is replaced and gets every turn it had not finished,
but a crash of the server process loses them.

Shutdown: ``stop()`` gives up any restart in progress; ``close()`` sends an end marker, the
child answers everything it has received, then exits. The child ignores SIGINT and SIGTERM (a
Ctrl-C or ``systemctl stop`` reaches the whole process group) and takes its orders from the
pipe only; if the parent disappears, the pipe reports end-of-file and the child finishes its
work and exits too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from datetime import timedelta
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

from sqlalchemy.exc import DBAPIError

from bot.config import Settings
from handlers.messages import IncomingMessage, Reply
from bot.storage.models import utcnow
from bot.storage.repositories import Store

log = logging.getLogger("nanbyo.turns")

# How much lower the child's CPU priority is than the server's (see nice(2)): enough for the
# acks to win a contended core, not so much that answers starve on a busy shared machine.
CHILD_NICENESS = 10
START_TIMEOUT_SECONDS = 120.0  # building the child's Bot loads the Sudachi dictionary and the index
MAX_DELIVERIES = 3  # children a turn may be handed to; each of them died before finishing it
RESTART_PAUSES = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before each start attempt, the last repeated
READY = "ready"
RETRY = "retry"  # sent before a job that an earlier child (or instance) may have run
KINDS = ("slack", "line")
DEFAULT_LIMIT = 5000  # turns waiting per instance before new ones are refused (503)
DEFAULT_LEASE_SECONDS = 30.0  # an owner that has not renewed its turns for this long is dead
ANSWER_RETENTION = timedelta(minutes=10)  # a kept answer older than this belongs to a finished turn
DB_PAUSE_SECONDS = 5.0  # after a failed write, turns go over in memory for this long before trying again


def turn_queue(store: Store, database_url: str) -> Store:
    """Where ``pending_turn`` is: the database itself (PostgreSQL), or on SQLite a file of its own
    beside it (``bot.storage.db.turn_queue_url``)."""
    from bot.storage.db import make_turn_queue_engine, turn_queue_url

    if turn_queue_url(database_url) is None:
        return store
    return Store(make_turn_queue_engine(database_url))


class TurnsBusy(RuntimeError):
    """Too many turns wait already: refuse this one (Slack and LINE then deliver it again later)."""


# --- what is stored: the turn's message(s), and its answer -------------------------------------

def encode_job(kind: str, args: tuple[Any, ...]) -> tuple[str, str]:
    """A job as stored in ``pending_turn``: ``(user_key, payload JSON)``."""
    if kind == "slack":
        msg, dest = args
        payload = {"msg": dataclasses.asdict(msg), "dest": dataclasses.asdict(dest)}
        return msg.user_key, json.dumps(payload, ensure_ascii=False)
    if kind == "line":
        (events,) = args
        user_key = f"line:{events[0].source.user_id}"
        return user_key, json.dumps({"events": [e.to_dict() for e in events]}, ensure_ascii=False)
    raise ValueError(f"unknown kind of turn: {kind}")


def decode_job(kind: str, payload: str) -> tuple[Any, ...]:
    """The arguments of a job from its stored payload (the inverse of ``encode_job``)."""
    data = json.loads(payload)
    if kind == "slack":
        from bot.channels.slack import Destination

        return IncomingMessage(**data["msg"]), Destination(**data["dest"])
    if kind == "line":
        from linebot.v3.webhooks import Event
        from linebot.v3.models.events import UnknownEvent

        events = []
        for raw in data["events"]:
            try:
                events.append(Event.from_dict(raw))
            except ValueError:  # as WebhookParser does with an event it does not know
                events.append(UnknownEvent.new_from_json_dict(raw))
        return (events,)
    raise ValueError(f"unknown kind of turn: {kind}")


def encode_replies(replies: list[Reply]) -> list[dict[str, Any]]:
    return [r.to_record() for r in replies]


def decode_replies(raw: list[dict[str, Any]]) -> list[Reply]:
    return [Reply.from_record(r) for r in raw]


@dataclasses.dataclass
class _TurnContext:
    """The stored turn a child thread is running: its row, and the answers committed so far."""

    turn_id: int
    retry: bool
    calls: int = 0
    kept: dict[str, Any] | None = None


_CURRENT: ContextVar[_TurnContext | None] = ContextVar("pending_turn", default=None)


class ReplayingBot:
    """The child's ``Bot`` as the channels see it: a stored turn's answer is kept with the turn.

    Each ``handle`` of a stored turn (one per Slack turn, one per LINE event of the job) stores
    its replies in the turn's row, in the turn's own transaction. When the turn runs again (its
    child or its instance died before the row was deleted), a ``handle`` whose answer is stored
    returns it without running the turn: the event is already claimed, and the dialog must not
    advance twice.
    """

    def __init__(self, bot: Any) -> None:
        self._bot = bot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bot, name)

    def handle(self, msg: IncomingMessage) -> list[Reply]:
        ctx = _CURRENT.get()
        if ctx is None:
            return self._bot.handle(msg)
        index = str(ctx.calls)
        ctx.calls += 1
        if ctx.retry and ctx.kept is None:
            try:
                with self._bot.store.unit_of_work() as uow:
                    raw = uow.turns.turn_replies(ctx.turn_id)
                ctx.kept = json.loads(raw) if raw else {}
            except DBAPIError:
                ctx.kept = {}  # the turn below fails the same way and apologises
        if ctx.kept and index in ctx.kept:
            log.info("turn answer replayed turn=%d part=%s", ctx.turn_id, index)
            return decode_replies(ctx.kept[index])
        committed: dict[str, Any] = {}

        def keep(uow: Any, replies: list[Reply]) -> None:
            kept = {**(ctx.kept or {}), index: encode_replies(replies)}
            uow.turns.keep_turn_replies(ctx.turn_id, json.dumps(kept, ensure_ascii=False))
            committed.clear()
            committed.update(kept)

        replies = self._bot.handle(msg, keep=keep)
        if committed:
            ctx.kept = committed
        return replies


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
    other and behind the child's turns. One thread here takes whatever is waiting, inserts it
    in one statement and one commit, and wakes each submitter with its row id.
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


class TurnProcess:
    """Records Slack and LINE turns, and hands them to a child process that answers them.

    Args:
        settings: the server's settings; the child builds its ``Bot``, and the Slack and LINE
            clients of the channels configured there, from them.
        store: the database's store (``Bot.store``): turns are recorded before the ack, in
            ``pending_turn`` (on SQLite in a file of its own, see ``turn_queue``); None keeps them in
            memory only (see the module docstring).
        threads: turns the child runs at once (they mostly wait for the database and Slack).
        niceness: added to the child's nice value.
        limit: turns that may wait here (recorded or handed over, not yet answered); one more is
            refused with ``TurnsBusy``.
        lease: seconds after which the turns of an owner that stopped renewing them are taken over.

    Raises:
        RuntimeError: the first child did not become ready within ``START_TIMEOUT_SECONDS``.
    """

    def __init__(self, settings: Settings, *, store: Any = None, threads: int = 8,
                 niceness: int = CHILD_NICENESS, limit: int = DEFAULT_LIMIT,
                 lease: float = DEFAULT_LEASE_SECONDS) -> None:
        self._args = (settings, threads, niceness)
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._lock = threading.Lock()  # guards _conn's sending side, _pending, _seq, _closing
        self._pending: dict[int, tuple[bytes, int]] = {}  # seq -> (pickled job, children handed to)
        self._seq = 0  # turns not recorded get negative numbers; recorded ones are their row id
        self._closing = False
        self._stopping = threading.Event()
        self.store = store
        self.queue = turn_queue(store, settings.database_url) if store is not None else None
        self.limit = limit
        self.lease = lease
        self.owner = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._db_paused_until = 0.0
        self._recorder = _Recorder(self.queue, self.owner) if self.queue is not None else None
        self.restarts = 0
        self.dropped = 0
        self.adopted = 0
        self._process, self._conn = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="turn-process-watch", daemon=True)
        self._watcher.start()
        self._leaser: threading.Thread | None = None
        if store is not None:
            self._leaser = threading.Thread(target=self._lease_loop, name="turn-lease", daemon=True)
            self._leaser.start()

    @property
    def durable(self) -> bool:
        """True when turns are recorded before the ack (the channels then ack only after ``submit``)."""
        return self.store is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def pending(self) -> int:
        """Turns handed over and not yet reported done."""
        with self._lock:
            return len(self._pending)

    def submit(self, kind: str, *args: Any) -> None:
        """Record a turn, then queue it for the child: ``("slack", msg, dest)`` from bolt's
        listeners, ``("line", events)`` from the LINE webhook (one user's events, in order).
        When it returns, the turn is recorded (see the module docstring for the one exception)
        and the channel may ack. Never waits for a child being started.

        Raises:
            TurnsBusy: ``limit`` turns wait already; the channel answers 503.
            RuntimeError: the turn process is closed (shutting down).
            ValueError: an unknown kind.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown kind of turn: {kind}")
        with self._lock:
            if self._closing:
                raise RuntimeError("the turn process is closed")
            if len(self._pending) >= self.limit:
                raise TurnsBusy(f"{len(self._pending)} turns wait already")
        seq = self._record(kind, args)
        with self._lock:
            if seq is None:
                self._seq -= 1
                seq = self._seq
            data = bytes(ForkingPickler.dumps((seq, kind, args)))  # fails here, before anything is kept
            self._pending[seq] = (data, 1)
            if self._conn is not None:
                try:
                    self._conn.send_bytes(data)
                except OSError:
                    pass  # the child is gone: the watcher starts another and hands it every pending turn

    def _record(self, kind: str, args: tuple[Any, ...]) -> int | None:
        """Write the turn to ``pending_turn``; its row id, or None when it could not be written."""
        if self._recorder is None or time.monotonic() < self._db_paused_until:
            return None
        user_key, payload = encode_job(kind, args)
        try:
            return self._recorder.record(kind, user_key, payload)
        except (DBAPIError, TimeoutError) as exc:
            # The database is down: the child will apologise (it cannot run the turn either).
            # Trying again for every event would hold each ack for the connect timeout.
            self._db_paused_until = time.monotonic() + DB_PAUSE_SECONDS
            log.error("turn not recorded, handed over in memory error=%s", type(exc).__name__)
            return None

    def stop(self) -> None:
        """Give up a restart in progress (the first thing to do when the server shuts down)."""
        self._stopping.set()

    def close(self, timeout: float = 60.0) -> None:
        """Let the child answer every turn it was given, then stop it. Idempotent."""
        deadline = time.monotonic() + timeout
        self.stop()
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self._conn is not None:  # else a restart is under way: it sends the end marker itself
                try:
                    self._conn.send(None)
                except OSError:
                    pass
        self._watcher.join(max(0.0, deadline - time.monotonic()))
        process = self._process
        if process is not None:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                log.error("turn process did not finish within %.0f s: killed", timeout)
                process.kill()
                process.join()
        with self._lock:
            if self._pending:
                log.error("turn process stopped with %d turns unanswered", len(self._pending))
            if self._conn is not None:
                self._conn.close()

    # -- inside ---------------------------------------------------------------------------------

    def _spawn(self) -> tuple[Any, Connection]:
        """Start a child and wait until it is ready. Raises RuntimeError when it does not get there."""
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_child_main, args=(child_end, *self._args),
                                        name="nanbyo-turns", daemon=False)
        started = time.perf_counter()
        process.start()
        child_end.close()
        try:
            ready = parent_end.poll(START_TIMEOUT_SECONDS) and parent_end.recv() == READY
        except (EOFError, OSError):  # it died while starting (an import error, no database ...)
            ready = False
        if not ready:
            parent_end.close()
            if process.is_alive():
                process.kill()
            process.join()
            raise RuntimeError(f"the turn process did not start (exit code {process.exitcode})")
        log.info("turn process ready pid=%s ms=%.0f", process.pid, (time.perf_counter() - started) * 1000)
        return process, parent_end

    def _watch(self) -> None:
        """Read the child's reports; when it dies unasked, start another and hand it the rest."""
        while True:
            conn = self._conn
            try:
                if conn is None:
                    raise EOFError
                done = conn.recv()
            except (EOFError, OSError):
                with self._lock:
                    if self._closing and conn is not None:
                        return  # the child finished and exited as asked
                if self._stopping.is_set() and self._closing:
                    return
                try:
                    self._restart()
                except Exception:  # never let the watcher die: turns would pile up unanswered
                    log.exception("turn process restart failed")
                    if self._stopping.wait(1.0):
                        return
                continue
            except Exception:  # a report that does not unpickle: ignore it, keep reading
                log.exception("unreadable report from the turn process")
                continue
            with self._lock:
                self._pending.pop(done, None)

    # -- leases: this instance's turns, and those of instances that died ------------------------

    def _lease_loop(self) -> None:
        """Renew this instance's leases and take over the turns of dead ones, every third of a lease."""
        while True:
            try:
                self._renew_and_adopt()
            except Exception as exc:  # the database is away: try again next time
                log.warning("turn leases not renewed error=%s", type(exc).__name__)
            if self._stopping.wait(self.lease / 3):
                return

    def _renew_and_adopt(self) -> None:
        now = utcnow()
        with self._lock:
            room = self.limit - len(self._pending)
            mine = [seq for seq in self._pending if seq > 0]
        if self.store is not None:
            with self.store.unit_of_work() as uow:
                # Answers left by a crash between deleting a turn and its answer.
                uow.turns.purge_turn_answers(before=now - ANSWER_RETENTION)
        with self.queue.unit_of_work() as uow:
            if mine:
                uow.turns.renew_turns(self.owner, mine, now)
            adopted = uow.turns.adopt_turns(owner=self.owner, stale_before=now - timedelta(seconds=self.lease),
                                      now=now, limit=room)
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
                args = decode_job(turn.kind, turn.payload)
                data = bytes(ForkingPickler.dumps((turn.id, turn.kind, args)))
            except Exception:
                log.exception("turn dropped turn=%d: unreadable", turn.id)
                dead.append(turn.id)
                continue
            with self._lock:
                if self._closing:
                    break  # left to the next owner (its lease runs out)
                self._pending[turn.id] = (data, 2)  # counted as a retry: its first owner may have answered
                self.adopted += 1
                log.warning("turn taken over turn=%d kind=%s attempt=%d", turn.id, turn.kind, turn.attempts)
                if self._conn is not None:
                    try:
                        self._conn.send((RETRY, turn.id))
                        self._conn.send_bytes(data)
                    except OSError:
                        pass
        self._forget(dead)

    def _forget(self, turn_ids: list[int]) -> None:
        """Delete rows of turns given up on (their text must not stay)."""
        if not turn_ids or self.store is None or self.queue is None:
            return
        try:
            with self.queue.unit_of_work() as uow:
                uow.turns.finish_turns(turn_ids)
            with self.store.unit_of_work() as uow:
                uow.turns.forget_turn_answers(turn_ids)
        except Exception as exc:
            log.error("dropped turns not deleted error=%s", type(exc).__name__)

    def _restart(self) -> None:
        """Replace a dead child: start another (outside the lock, so submits only queue meanwhile),
        then resend the pending turns in order, dropping those that already killed enough children."""
        with self._lock:
            old_process, old_conn = self._process, self._conn
            self._conn = None
        if old_conn is not None:
            old_conn.close()
        if old_process is not None:
            old_process.join(5.0)
            if old_process.is_alive():
                old_process.kill()
                old_process.join()
            log.error("turn process gone exitcode=%s pending=%d: starting a new one", old_process.exitcode,
                      self.pending)
        dropped: list[int] = []
        with self._lock:
            for seq, (data, handed) in sorted(self._pending.items()):
                if handed >= MAX_DELIVERIES:
                    del self._pending[seq]
                    self.dropped += 1
                    dropped.append(seq)
                    log.error("turn dropped seq=%d: %d turn processes died before finishing it", seq, handed)
                else:
                    self._pending[seq] = (data, handed + 1)
        self._forget([seq for seq in dropped if seq > 0])
        attempt = 0
        while True:
            pause = RESTART_PAUSES[min(attempt, len(RESTART_PAUSES) - 1)]
            if self._stopping.wait(pause):
                with self._lock:
                    log.error("turn process not restarted (shutting down): %d turns unanswered", len(self._pending))
                    self._closing = True
                return
            try:
                process, conn = self._spawn()
                break
            except Exception:
                attempt += 1
                log.exception("turn process start failed attempt=%d", attempt)
        with self._lock:
            self._process, self._conn = process, conn
            self.restarts += 1
            try:
                for seq in sorted(self._pending):
                    # A retry: the child first looks for an answer the dead one committed.
                    conn.send((RETRY, seq))
                    conn.send_bytes(self._pending[seq][0])
                if self._closing:
                    conn.send(None)  # close() came during the restart: finish these, then exit
            except OSError:
                pass  # this one died too: the next recv() says so, and the watcher restarts again


def _child_main(conn: Connection, settings: Settings, threads: int, niceness: int) -> None:
    """The child: build a Bot and the configured channels, then run the turns read from ``conn``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if niceness:
        try:
            os.nice(niceness)
        except OSError:  # not allowed here: run at the same priority
            pass
    from bot.bootstrap import build_bot, configure_logging

    configure_logging(settings.log_level)
    real_bot = build_bot(settings)
    bot: Any = ReplayingBot(real_bot)
    handlers: dict[str, Callable[..., None]] = {}
    closers: list[Callable[[], None]] = []
    if settings.slack_bot_token:
        from bot.channels.slack import SlackChannel

        slack = SlackChannel(bot, settings, socket_mode=True, listener_workers=1)  # no requests to verify here
        handlers["slack"] = slack.answer
        closers.append(lambda: slack.close(wait=True))
    if settings.line_channel_secret and settings.line_channel_access_token:
        from bot.channels.line import LineChannel

        line = LineChannel(bot, settings, workers=0)
        handlers["line"] = line.process
        closers.append(line.close)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="turn")
    send_lock = threading.Lock()
    retries: set[int] = set()

    def run(seq: int, kind: str, args: tuple[Any, ...], retry: bool = False) -> None:
        token = _CURRENT.set(_TurnContext(seq, retry) if seq > 0 else None)
        try:
            handler = handlers.get(kind)
            if handler is None:
                log.error("turn of a channel not configured here kind=%s", kind)
            else:
                handler(*args)  # never raises for a failed turn: it posts an apology
        except Exception:  # a bug in a channel: logged, and the turn is reported done anyway
            log.exception("turn failed kind=%s", kind)
        finally:
            _CURRENT.reset(token)
            if seq > 0:
                # Answered: the row goes at once, and the message text with it — the fewer
                # answers posted and not yet recorded, the fewer a crash repeats. Autocommit,
                # without a flush to disk: a crash of this process loses nothing; a crash of the
                # database server or the machine may leave the last rows (their answers are then
                # posted again). Reported done only once deleted: until then its lease is renewed.
                try:
                    with queue.autocommit() as uow:
                        uow.turns.finish_turn(seq)
                except Exception as exc:  # the database is away: the lease runs out, the turn is re-run
                    log.error("answered turn not deleted turn=%d error=%s", seq, type(exc).__name__)
                report([seq])
                forgetter.add(seq)  # its kept answer, a few at a time
            else:
                report([seq])

    def report(seqs: list[int]) -> None:
        with send_lock:
            try:
                for seq in seqs:
                    conn.send(seq)
            except OSError:
                pass  # the parent is gone

    queue = turn_queue(real_bot.store, settings.database_url)
    forgetter = _Forgetter(real_bot.store)

    conn.send(READY)
    try:
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone: finish what was received
            except Exception:  # a job that does not unpickle here: skip it (it is never reported done)
                log.exception("unreadable job")
                continue
            if job is None:
                break
            if job[0] == RETRY:  # the next job with this number was handed to a child before
                retries.add(job[1])
                continue
            pool.submit(run, *job, job[0] in retries)
            retries.discard(job[0])
    finally:
        pool.shutdown(wait=True)
        forgetter.close()
        for close in closers:
            close()
        conn.close()


class _Forgetter:
    """Deletes the kept answers of answered turns (``turn_answer``), several per statement.

    Off the turn's thread and batched, so that it takes the database's write lock once for many
    turns. A crash before it ran leaves a few answers, which the owner's lease loop purges later
    (their turns are gone, so they are never posted).
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
