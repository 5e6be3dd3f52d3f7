"""Slack and LINE turns in a child process, so that ``serve`` keeps acknowledging at full speed.

Why: Slack wants every request answered within 3 seconds and retries otherwise (LINE wants a
quick 200 too), so the ack is the part that must stay fast under a burst. A turn (FAQ
ranking, a unit of work, the Web API posts) costs a few milliseconds of CPU; run in the
server's own process it holds the GIL against the threads that ack, and a burst of events
then slows every ack down. With ``TurnProcess`` the server process only verifies, acks and
hands the work over a pipe — a Slack ``(message, destination)``, or one LINE user's events of
a webhook — and a child process with its own ``Bot`` runs the turns on a thread pool and
posts the answers. The child runs at a lower CPU priority (``nice``), so under a burst the
acks get the processor first and the answers follow as soon as there is room.

What it is not: a durable queue. The child reports each turn it has finished. A child that
dies is replaced (with a growing pause while starting keeps failing, e.g. while the database
is down) and gets every turn it had not finished, in order; ``submit`` never waits for that,
it only queues. A turn handed to ``MAX_DELIVERIES`` children that all died is dropped and
logged, so that one poisonous turn cannot keep killing its children. A turn that had committed
but not yet posted its answer when its child died is not answered (its event id is recorded,
so the re-run does nothing): after the commit, at most once. Turns in memory are lost if the
server process itself dies, as they were with turns in threads of one process (Slack and LINE
do not redeliver an acknowledged event).

Shutdown: ``stop()`` gives up any restart in progress; ``close()`` sends an end marker, the
child answers everything it has received, then exits. The child ignores SIGINT and SIGTERM (a
Ctrl-C or ``systemctl stop`` reaches the whole process group) and takes its orders from the
pipe only; if the parent disappears, the pipe reports end-of-file and the child finishes its
work and exits too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

from bot.config import Settings

log = logging.getLogger("nanbyo.turns")

# How much lower the child's CPU priority is than the server's (see nice(2)): enough for the
# acks to win a contended core, not so much that answers starve on a busy shared machine.
CHILD_NICENESS = 10
START_TIMEOUT_SECONDS = 120.0  # building the child's Bot loads the Sudachi dictionary and the index
MAX_DELIVERIES = 3  # children a turn may be handed to; each of them died before finishing it
RESTART_PAUSES = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before each start attempt, the last repeated
READY = "ready"
KINDS = ("slack", "line")


class TurnProcess:
    """Hands Slack and LINE turns to a child process that answers them.

    Args:
        settings: the server's settings; the child builds its ``Bot``, and the Slack and LINE
            clients of the channels configured there, from them.
        threads: turns the child runs at once (they mostly wait for the database and Slack).
        niceness: added to the child's nice value.

    Raises:
        RuntimeError: the first child did not become ready within ``START_TIMEOUT_SECONDS``.
    """

    def __init__(self, settings: Settings, *, threads: int = 8, niceness: int = CHILD_NICENESS) -> None:
        self._args = (settings, threads, niceness)
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._lock = threading.Lock()  # guards _conn's sending side, _pending, _seq, _closing
        self._pending: dict[int, tuple[bytes, int]] = {}  # seq -> (pickled job, children handed to)
        self._seq = 0
        self._closing = False
        self._stopping = threading.Event()
        self.restarts = 0
        self.dropped = 0
        self._process, self._conn = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="turn-process-watch", daemon=True)
        self._watcher.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def pending(self) -> int:
        """Turns handed over and not yet reported done."""
        with self._lock:
            return len(self._pending)

    def submit(self, kind: str, *args: Any) -> None:
        """Queue work for the child, after the ack: ``("slack", msg, dest)`` from bolt's listener
        threads, ``("line", events)`` from the LINE webhook (one user's events, in order).
        Never waits for a child being started: the turn is then sent when it is ready.

        Raises:
            RuntimeError: the turn process is closed (shutting down).
            ValueError: an unknown kind.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown kind of turn: {kind}")
        with self._lock:
            if self._closing:
                raise RuntimeError("the turn process is closed")
            self._seq += 1
            seq = self._seq
            data = bytes(ForkingPickler.dumps((seq, kind, args)))  # fails here, before anything is kept
            self._pending[seq] = (data, 1)
            if self._conn is not None:
                try:
                    self._conn.send_bytes(data)
                except OSError:
                    pass  # the child is gone: the watcher starts another and hands it every pending turn

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
        with self._lock:
            for seq, (data, handed) in sorted(self._pending.items()):
                if handed >= MAX_DELIVERIES:
                    del self._pending[seq]
                    self.dropped += 1
                    log.error("turn dropped seq=%d: %d turn processes died before finishing it", seq, handed)
                else:
                    self._pending[seq] = (data, handed + 1)
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
    bot = build_bot(settings)
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

    def run(seq: int, kind: str, args: tuple[Any, ...]) -> None:
        try:
            handler = handlers.get(kind)
            if handler is None:
                log.error("turn of a channel not configured here kind=%s", kind)
            else:
                handler(*args)  # never raises for a failed turn: it posts an apology
        except Exception:  # a bug in a channel: logged, and the turn is reported done anyway
            log.exception("turn failed kind=%s", kind)
        finally:
            with send_lock:
                try:
                    conn.send(seq)
                except OSError:
                    pass  # the parent is gone

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
            pool.submit(run, *job)
    finally:
        pool.shutdown(wait=True)
        for close in closers:
            close()
        conn.close()
