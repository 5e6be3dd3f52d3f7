"""Benchmark: many due reminders dispatched to a no-op sender, by one and by two worker processes.

What it measures: the real ``bot.reminders.dispatch_due`` (claims in batches, the message
text, one committed mark per delivery) on SQLite and, when a URL is given, PostgreSQL;
for each backend and worker count it prints the time from the start signal until every
worker is done, the rate, and the number of duplicate and missing sends (each worker's
sender records the keys it was given; the parent counts them and checks the rows).

What it is not: a test of any channel's API (the sender does nothing) or of the chat.

    .venv/bin/python bench/reminders.py                          # 100,000 on SQLite (+ PostgreSQL if TEST_DATABASE_URL)
    .venv/bin/python bench/reminders.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/reminders.py --count 2000 --workers 2  # a short mode for CI

Each run starts from an empty database: a temporary SQLite file, or a fresh PostgreSQL
schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, insert, select, text  # noqa: E402
from sqlalchemy import func as sql_func  # noqa: E402

from bot.reminders import dispatch_due  # noqa: E402
from bot.storage.db import make_engine  # noqa: E402
from bot.storage.models import Reminder, ReminderDelivery  # noqa: E402
from bot.storage.repositories import Store  # noqa: E402
from handlers.reminders import mark_due_at  # noqa: E402

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2027, 3, 24, 10, 0, tzinfo=TOKYO)  # inside the sending hours
EXPIRY = date(2027, 3, 31)
OFFSET = 7  # every reminder's 7-day mark is due at NOW
CHUNK = 10_000


class NoopSender:
    """Sends nothing; remembers the keys so duplicates can be counted."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        self.keys.append(key)


def seed(url: str, count: int) -> None:
    """``count`` reminders, each with one delivery due at NOW, in the prefecture's first municipality."""
    from knowledge import load_knowledge

    municipality = load_knowledge().prefecture.municipalities[0].name
    engine = make_engine(url)
    created = datetime(2026, 11, 23, tzinfo=TOKYO)
    due = mark_due_at(EXPIRY, OFFSET)
    with engine.begin() as conn:
        for start in range(1, count + 1, CHUNK):
            ids = range(start, min(start + CHUNK, count + 1))
            conn.execute(
                insert(Reminder),
                [
                    {
                        "id": i,
                        "user_key": f"json:B{i}",
                        "channel": "json",
                        "user": f"B{i}",
                        "expiry_date": EXPIRY,
                        "municipality": municipality,
                        "created_at": created,
                        "active": True,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(ReminderDelivery),
                [
                    {
                        "id": i,
                        "reminder_id": i,
                        "offset_days": OFFSET,
                        "due_at": due,
                        "status": "pending",
                        "attempts": 0,
                    }
                    for i in ids
                ],
            )
    with engine.begin() as conn:
        # Planner statistics, as autovacuum / a routine ANALYZE would have them in production;
        # without them PostgreSQL believes the freshly filled table is empty and sorts every
        # due row for each claim instead of reading the (status, due_at, id) index in order.
        conn.execute(text("ANALYZE"))
    engine.dispose()


def worker(url: str, name: str, batch: int, barrier, out_dir: str) -> None:  # a child process
    from knowledge import load_knowledge

    store = Store(make_engine(url))
    kb = load_knowledge()
    sender = NoopSender()
    barrier.wait()  # everything loaded: start together
    summary = dispatch_due(store, NOW, {"json": sender}, worker_id=name, batch=batch, kb=kb)
    Path(out_dir, f"{name}.keys").write_text("\n".join(sender.keys))
    Path(out_dir, f"{name}.sent").write_text(str(summary.sent))


@dataclass(frozen=True)
class Result:
    backend: str
    workers: int
    count: int
    seconds: float
    sent_rows: int
    duplicates: int
    missing: int
    per_worker: tuple[int, ...]

    def line(self) -> str:
        return (
            f"{self.backend:<10} workers={self.workers} count={self.count:,} time={self.seconds:.1f}s "
            f"rate={self.count / self.seconds:,.0f}/s duplicates={self.duplicates} missing={self.missing} "
            f"sent_rows={self.sent_rows:,} per_worker={list(self.per_worker)}"
        )


def run_once(backend: str, url: str, count: int, workers: int, batch: int) -> Result:
    seed(url, count)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    with tempfile.TemporaryDirectory() as out:
        procs = [ctx.Process(target=worker, args=(url, f"w{n}", batch, barrier, out)) for n in range(workers)]
        for p in procs:
            p.start()
        barrier.wait()
        started = time.perf_counter()
        for p in procs:
            p.join()
        seconds = time.perf_counter() - started
        if any(p.exitcode != 0 for p in procs):
            raise SystemExit(f"a worker failed on {backend}")
        keys: Counter[str] = Counter()
        per_worker = []
        for n in range(workers):
            sent = [k for k in Path(out, f"w{n}.keys").read_text().splitlines() if k]
            keys.update(sent)
            per_worker.append(len(sent))
    engine = make_engine(url)
    with engine.connect() as conn:
        sent_rows = conn.execute(
            select(sql_func.count()).select_from(ReminderDelivery).where(ReminderDelivery.status == "sent")
        ).scalar_one()
    engine.dispose()
    duplicates = sum(keys.values()) - len(keys)
    return Result(backend, workers, count, seconds, sent_rows, duplicates, count - len(keys), tuple(per_worker))


def sqlite_run(count: int, workers: int, batch: int) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        return run_once("sqlite", f"sqlite:///{tmp}/bench.db", count, workers, batch)


def postgres_run(base: str, count: int, workers: int, batch: int) -> Result:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base else "?"
        return run_once("postgresql", f"{base}{sep}options=-csearch_path%3D{schema}", count, workers, batch)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="due reminders per run (default 100,000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker processes (default: 1 2)")
    parser.add_argument("--batch", type=int, default=200, help="deliveries claimed per transaction")
    parser.add_argument(
        "--pg",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="PostgreSQL URL (default: TEST_DATABASE_URL; PostgreSQL is skipped when neither)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)

    results: list[Result] = []
    for workers in args.workers:
        if not args.no_sqlite:
            results.append(sqlite_run(args.count, workers, args.batch))
            print(results[-1].line(), flush=True)
        if args.pg:
            results.append(postgres_run(args.pg, args.count, workers, args.batch))
            print(results[-1].line(), flush=True)
    if not args.pg:
        print("postgresql: skipped (no --pg and no TEST_DATABASE_URL)")
    bad = [r for r in results if r.duplicates or r.missing or r.sent_rows != r.count]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
