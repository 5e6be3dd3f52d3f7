"""``serve``'s turn process: the one process that runs the turns, apart from the HTTP server.

Why a process of its own: the HTTP server's processes only verify, record and ack (Slack wants
an answer within 3 seconds, LINE a quick 200). A turn costs milliseconds of CPU (ranking, the
unit of work, the API posts); run in an HTTP process it holds the GIL against the threads that
ack, and under a burst every ack slows down (3–6× against a bare bolt app on 2 cores, see
docs/benchmarks.md "Performance"). Here the turns run at a lower CPU priority (``nice``), so that the acks
get the processor first and the answers follow as soon as there is room.

Where it stands in a turn's path: before it, the HTTP lane (``bot.intake.TurnRecorder``) recorded
each turn in ``pending_turn`` before the ack; here ``main`` builds the core and the outboxes and
starts the turn lane's ``bot.runner.TurnConsumer``, which takes the turns from there, answers them
(``bot.core``) and delivers them (``bot.outbox``). Nothing crosses a pipe. A turn process that
dies leaves its turns in the table with a lease that runs out; the next one (restarted by
``TurnProcess``) takes them over, and a turn whose answer was committed delivers that answer
without running again.

Why this process management is ours: uvicorn starts, watches and restarts HTTP worker
processes (``--workers``), each serving requests on the shared socket; it has no notion of a
background consumer that serves no request. So ``TurnProcess`` (in ``serve``'s main process)
does only that: start one, restart it when it dies (with growing pauses), and at shutdown, once
uvicorn has finished the requests in flight, tell it to finish what is recorded and wait.

The process ignores SIGINT and SIGTERM (a Ctrl-C or ``systemctl stop`` reaches the whole
process group, before the HTTP server has recorded its last turns): it takes its order to stop
from ``serve`` (SIGUSR1), or notices that ``serve`` is gone. Then it takes and answers every turn
still in the queue, for up to ``DRAIN_SECONDS``, and exits; what is left waits for the next start.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("nanbyo.turns")

NICENESS = 10  # lower CPU priority than the HTTP server's (see nice(2)): the acks win a contended core
RESTART_PAUSES = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before each restart, the last repeated
STABLE_SECONDS = 60.0  # a process that lived this long starts the pauses over when it dies
DRAIN_SECONDS = 60.0  # at shutdown, how long the process goes on answering what is recorded
STOP_SIGNAL = signal.SIGUSR1  # serve's order: finish what is recorded, then exit


class TurnProcess:
    """Runs ``python -m bot.turn_process`` (with this process's environment), restarts it when it
    dies, and stops it gracefully (``stop``)."""

    def __init__(self, command: list[str] | None = None) -> None:
        self.command = command or [sys.executable, "-m", "bot.turn_process"]
        self.starts = 0
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="turn-process", daemon=True)

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> None:
        # Without LOG_HASH_KEY, the random key must be in this process's environment before the
        # first start: else each (re)started turn process makes its own, and a user's id in the
        # logs changes with every restart.
        from nlp.privacy import ensure_log_hash_key

        ensure_log_hash_key()
        self._thread.start()

    def stop(self, timeout: float = DRAIN_SECONDS + 15) -> int | None:
        """Tell the process to finish what is recorded and exit; kill it after ``timeout``
        seconds. Its exit status (None if none was running)."""
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(STOP_SIGNAL)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("turn process did not finish in %.0f s: killed (its turns wait for the next start)", timeout)
            proc.kill()
            code = proc.wait()
        self._thread.join(5)
        return code

    def _watch(self) -> None:
        failures = 0
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                # stdin closed; stdout and stderr are serve's (the logs go where serve's go).
                self._proc = proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL)
                self.starts += 1
            started = time.monotonic()
            log.info("turn process started pid=%d", proc.pid)
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > STABLE_SECONDS:
                failures = 0
            pause = RESTART_PAUSES[min(failures, len(RESTART_PAUSES) - 1)]
            failures += 1
            log.error("turn process died pid=%d code=%s: restarting in %.0f s", proc.pid, code, pause)
            if self._stopping.wait(pause):
                return


def main() -> int:
    """The turn process: ``python -m bot.turn_process``, settings from the environment."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(STOP_SIGNAL, lambda *_: stop.set())
    parent = os.getppid()
    os.nice(NICENESS)

    from bot.bootstrap import build_bot, build_outboxes, configure_logging
    from bot.config import Settings
    from bot.runner import TurnConsumer
    from bot.storage.repositories import turn_queue

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    bot = build_bot(settings)
    outboxes = build_outboxes(settings)
    queue = turn_queue(bot.store, settings.database_url)
    consumer = TurnConsumer(
        bot,
        outboxes,
        store=bot.store,
        queue=queue,
        threads=settings.turn_threads,
        lease=settings.turn_lease_seconds,
        outbox_expiry=settings.outbox_expiry_seconds,
    )
    log.info("turn process ready pid=%d", os.getpid())
    while not stop.wait(0.5):
        if os.getppid() != parent:
            log.warning("serve is gone: the turn process finishes what is recorded")
            break
    finished = consumer.close(timeout=DRAIN_SECONDS)
    for outbox in outboxes.values():
        close = getattr(outbox, "close", None)
        if close is not None:
            close()
    log.info("turn process stopped pid=%d drained=%s", os.getpid(), finished)
    return 0


if __name__ == "__main__":
    sys.exit(main())
