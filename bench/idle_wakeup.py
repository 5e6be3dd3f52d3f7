"""What an idle turn process costs the database, and how soon it takes a turn recorded elsewhere.

Starts a ``TurnConsumer`` (the turn process's runner) on an empty queue with a core that answers at
once, counts the statements it runs while idle (a SQLAlchemy event on its engines), then records
``--turns`` turns one by one with a ``TurnRecorder`` that cannot wake it (as ``serve``'s HTTP process
records them) and prints how long after each commit the core had it.

    .venv/bin/python bench/idle_wakeup.py                                  # SQLite (a temp file)
    .venv/bin/python bench/idle_wakeup.py --database-url postgresql+psycopg://postgres@127.0.0.1/nanbyo

2026-12-05, this machine (2 shared cores, under load), ``--idle 5 --turns 6``:

| queue      | wake-up                              | statements/s idle | taken after (median, max) |
|------------|--------------------------------------|-------------------|---------------------------|
| SQLite     | a look every 20 ms                   | 45.6              | 18 ms, 29 ms              |
| SQLite     | looks 20 ms doubling to 500 ms apart | 2.0               | 126 ms, 175 ms            |
| PostgreSQL | a look every 20 ms                   | 38.4              | 32 ms, 53 ms              |
| PostgreSQL | LISTEN/NOTIFY, a look every second   | 1.0               | 16 ms, 25 ms              |
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import event  # noqa: E402

from bot.core import NOT_KEPT, AnswerKeeper  # noqa: E402
from bot.intake import TurnRecorder  # noqa: E402
from bot.runner import TurnConsumer  # noqa: E402
from bot.storage.db import make_engine  # noqa: E402
from bot.storage.repositories import Store, turn_queue  # noqa: E402
from handlers.messages import Address, IncomingMessage, Reply  # noqa: E402


class _Stamped:
    def __init__(self) -> None:
        self.reached: dict[str, float] = {}
        self.changed = threading.Condition()

    def answer(self, msg: IncomingMessage, keeper: AnswerKeeper = NOT_KEPT) -> list[Reply]:
        with self.changed:
            self.reached[msg.event_id or ""] = time.monotonic()
            self.changed.notify_all()
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds counted idle (after 2 s to settle)")
    parser.add_argument("--turns", type=int, default=10, help="turns recorded one by one, 1.5 s apart")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/nanbyo.db"
    store = Store(make_engine(url))
    queue = turn_queue(store, url)
    core = _Stamped()
    consumer = TurnConsumer(core, {}, store=store, queue=queue)
    recorder = TurnRecorder(queue)
    seen: list[str] = []

    def note(*_: Any) -> None:
        seen.append("")

    try:
        time.sleep(2.0)
        for engine in {store.engine, queue.engine}:
            event.listen(engine, "before_cursor_execute", note)
        time.sleep(args.idle)
        idle_rate = len(seen) / args.idle
        delays = []
        for n in range(args.turns):
            time.sleep(1.5)  # idle again between turns
            recorded = time.monotonic()
            recorder.submit(
                [(IncomingMessage("bench", "U1", text="こんにちは", event_id=f"Ev{n}"), Address("bench", "U1"))]
            )
            with core.changed:
                core.changed.wait_for(lambda n=n: f"Ev{n}" in core.reached, timeout=10)
            delays.append(core.reached[f"Ev{n}"] - recorded)
    finally:
        recorder.close()
        consumer.close(timeout=10)
    print(
        f"{store.engine.dialect.name}: {idle_rate:.1f} statements/s idle; a turn recorded elsewhere taken after "
        f"{statistics.median(delays) * 1000:.0f} ms (median), {max(delays) * 1000:.0f} ms (max) of {len(delays)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
