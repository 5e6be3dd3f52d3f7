"""Slack and LINE turns in a child process, so that ``serve`` keeps acknowledging at full speed.

Why: Slack wants every request answered within 3 seconds and retries otherwise (LINE wants a
quick 200 too), so the ack is the part that must stay fast under a burst. A turn (FAQ ranking, a unit of work, the Web
API posts) costs a few milliseconds of CPU; run in the server's own process it holds the
GIL against the threads that ack, and a burst of events then slows every ack down. With
``TurnProcess`` the server process only verifies, acks and hands the work over a pipe — a
Slack ``(message, destination)``, or one LINE user's events of a webhook — and a child
process with its own ``Bot`` runs the turns on a thread pool and posts the answers. The child runs at a lower CPU priority (``nice``), so under a burst the acks
get the processor first and the answers follow as soon as there is room.

What it is not: a durable queue. The child reports each turn it has finished; a child that
dies is started again at once and gets every turn it had not finished, in order (a turn that
had already committed is then recognised by its event id and not answered twice). Turns still
in memory are lost only if the server process itself dies, as they were with turns in threads
of one process (Slack does not redeliver an acked event).

Shutdown: ``close()`` sends an end marker; the child answers everything it has received, then
exits. The child ignores SIGINT and SIGTERM (a Ctrl-C or ``systemctl stop`` reaches the whole
process group) and takes its orders from the pipe only; if the parent disappears, the pipe
reports end-of-file and the child finishes its work and exits too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from collections.abc import Callable
from typing import Any

from bot.config import Settings

log = logging.getLogger("nanbyo.turns")

# How much lower the child's CPU priority is than the server's (see nice(2)): enough for the
# acks to win a contended core, not so much that answers starve on a busy shared machine.
CHILD_NICENESS = 10
START_TIMEOUT_SECONDS = 120.0  # building the child's Bot loads the Sudachi dictionary and the index
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
        RuntimeError: the child did not become ready within ``START_TIMEOUT_SECONDS``.
    """

    def __init__(self, settings: Settings, *, threads: int = 8, niceness: int = CHILD_NICENESS) -> None:
        self._args = (settings, threads, niceness)
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._lock = threading.Lock()  # guards the pipe's sending side, _pending, _seq and the child
        self._pending: dict[int, tuple[str, tuple[Any, ...]]] = {}  # handed over, not reported done
        self._seq = 0
        self._closing = False
        self._stopping = threading.Event()  # set by close() before it waits for the lock
        self.restarts = 0
        self._process: Any = None
        self._conn: Connection | None = None
        self._start()
        self._watcher = threading.Thread(target=self._watch, name="turn-process-watch", daemon=True)
        self._watcher.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def pending(self) -> int:
        """Turns handed to the child and not yet reported done."""
        with self._lock:
            return len(self._pending)

    def submit(self, kind: str, *args: Any) -> None:
        """Queue work for the child, after the ack: ``("slack", msg, dest)`` from bolt's listener
        threads, ``("line", events)`` from the LINE webhook (one user's events, in order).

        Raises:
            RuntimeError: the turn process is closed (shutting down).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown kind of turn: {kind}")
        with self._lock:
            if self._closing:
                raise RuntimeError("the turn process is closed")
            self._seq += 1
            self._pending[self._seq] = (kind, args)
            try:
                self._conn.send((self._seq, kind, args))  # type: ignore[union-attr]
            except OSError:
                pass  # the child is gone: the watcher starts a new one and hands it every pending turn

    def close(self, timeout: float = 60.0) -> None:
        """Let the child answer every turn it was given, then stop it. Idempotent."""
        self._stopping.set()  # a restart that keeps failing gives up and lets close() have the lock
        with self._lock:
            if self._closing:
                return
            self._closing = True
            try:
                self._conn.send(None)  # type: ignore[union-attr]  # the end marker: finish, then exit
            except OSError:
                pass
        self._watcher.join(timeout)
        process = self._process
        process.join(1.0 if not self._watcher.is_alive() else 0)
        if process.is_alive():
            log.error("turn process did not finish within %.0f s: killed", timeout)
            process.kill()
            process.join()
        if self._pending:
            log.error("turn process stopped with %d turns unanswered", len(self._pending))
        self._conn.close()  # type: ignore[union-attr]

    # -- inside ---------------------------------------------------------------------------------

    def _start(self) -> None:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_child_main, args=(child_end, *self._args),
                                        name="nanbyo-turns", daemon=False)
        started = time.perf_counter()
        process.start()
        child_end.close()
        if not parent_end.poll(START_TIMEOUT_SECONDS) or parent_end.recv() != READY:
            process.kill()
            process.join()
            raise RuntimeError("the turn process did not start")
        self._process, self._conn = process, parent_end
        log.info("turn process ready pid=%s ms=%.0f", process.pid, (time.perf_counter() - started) * 1000)

    def _watch(self) -> None:
        """Read the child's reports; when it dies unasked, start another and hand it the rest."""
        while True:
            conn = self._conn
            try:
                done = conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                with self._lock:
                    if self._closing:
                        return  # the child finished and exited as asked
                    self._restart()
                    if self._closing:
                        return
                continue
            with self._lock:
                self._pending.pop(done, None)

    def _restart(self) -> None:
        """Called with the lock held: replace a dead child and resend the pending turns in order."""
        old = self._process
        old.join(5.0)
        log.error("turn process gone exitcode=%s pending=%d: starting a new one", old.exitcode, len(self._pending))
        self._conn.close()  # type: ignore[union-attr]
        while True:
            try:
                self._start()
                break
            except Exception:
                if self._stopping.wait(1.0):
                    self._closing = True  # shutting down: nothing left to hand the turns to
                    log.error("turn process not restarted (shutting down): %d turns unanswered", len(self._pending))
                    return
                log.exception("turn process restart failed: trying again")
        self.restarts += 1
        for seq in sorted(self._pending):
            kind, args = self._pending[seq]
            self._conn.send((seq, kind, args))  # type: ignore[union-attr]


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
            if job is None:
                break
            pool.submit(run, *job)
    finally:
        pool.shutdown(wait=True)
        for close in closers:
            close()
        conn.close()
