"""Reminder claims on PostgreSQL: SKIP LOCKED, leases, and two dispatcher processes racing.

Runs against ``TEST_DATABASE_URL`` (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test),
each test in a fresh schema that is dropped afterwards; skipped when it is not set.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from bot.bootstrap import build_bot
from bot.config import Settings
from bot.reminders import LEASE, dispatch_due
from bot.storage.db import make_engine
from bot.storage.models import ReminderDelivery
from bot.storage.repositories import Store
from handlers.reminders import plan_marks
from tests.conftest import FIXED_NOW, TOKYO, Chat

BASE_URL = os.environ.get("TEST_DATABASE_URL")
if not BASE_URL:
    pytest.skip("TEST_DATABASE_URL not set: PostgreSQL tests need a server (CI sets it)", allow_module_level=True)

EXPIRY = date(2027, 3, 31)
MARK_60 = datetime(2027, 1, 30, 9, 0, tzinfo=TOKYO)


def schema_url(base: str, schema: str) -> str:
    """The same database, with ``schema`` first on the search path (tables are created there)."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture()
def pg_url() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(BASE_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema_url(BASE_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed(store: Store, count: int, *, now: datetime = FIXED_NOW) -> None:
    """``count`` json-channel users with a reminder for EXPIRY (marks 60/30/7, none due at ``now``)."""
    with store.unit_of_work() as uow:
        for i in range(count):
            uow.reminders.register(
                user_key=f"json:U{i}",
                channel="json",
                user=f"U{i}",
                expiry_date=EXPIRY,
                municipality="太田市",
                marks=plan_marks(EXPIRY, (60, 30, 7), now),
                now=now,
            )


def statuses(store: Store) -> Counter[str]:
    with Session(store.engine) as s:
        return Counter(s.exec(select(ReminderDelivery.status)).all())


class FileSender:
    """Appends one line per message to a file shared by the processes (O_APPEND: whole lines)."""

    def __init__(self, path: str, worker: str) -> None:
        self.path, self.worker = path, worker

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        time.sleep(0.001)  # a send takes a moment, so both processes are surely still running together
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{key} {self.worker}\n".encode())
        finally:
            os.close(fd)


def _dispatcher(url: str, log_path: str, worker: str, barrier) -> None:  # runs in a child process
    store = Store(make_engine(url))
    barrier.wait()
    dispatch_due(store, MARK_60, {"json": FileSender(log_path, worker)}, worker_id=worker, batch=7)


def test_two_dispatcher_processes_send_each_reminder_exactly_once(pg_url, tmp_path: Path):
    store = Store(make_engine(pg_url))
    seed(store, 300)
    log_path = str(tmp_path / "sent.log")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_dispatcher, args=(pg_url, log_path, f"worker-{n}", barrier)) for n in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = Path(log_path).read_text().splitlines()
    keys = Counter(line.split()[0] for line in lines)
    assert len(keys) == 300 and max(keys.values()) == 1, "every 60-day mark sent, none twice"
    workers = Counter(line.split()[1] for line in lines)
    assert set(workers) == {"worker-1", "worker-2"}, f"both processes took part: {workers}"
    assert statuses(store) == Counter({"sent": 300, "pending": 600})
    # A third run for the same moment finds nothing.
    assert dispatch_due(store, MARK_60, {"json": FileSender(log_path, "late")}, worker_id="late").sent == 0


def test_claims_skip_rows_another_dispatcher_holds(pg_url):
    store = Store(make_engine(pg_url))
    seed(store, 10)
    stale = MARK_60 - LEASE
    with store.unit_of_work() as first:  # its transaction stays open: rows locked
        a = first.reminders.claim_deliveries(
            now=MARK_60, stale_before=stale, claimed_at=MARK_60, worker_id="a", channels=["json"], batch=4
        )
        with store.unit_of_work() as second:
            b = second.reminders.claim_deliveries(
                now=MARK_60, stale_before=stale, claimed_at=MARK_60, worker_id="b", channels=["json"], batch=100
            )
    assert len(a) == 4 and len(b) == 6
    assert not {d.id for d in a} & {d.id for d in b}


def test_a_dead_dispatchers_claim_is_taken_over_after_the_lease(pg_url):
    store = Store(make_engine(pg_url))
    seed(store, 3)
    with store.unit_of_work() as uow:
        uow.reminders.claim_deliveries(
            now=MARK_60,
            stale_before=MARK_60 - LEASE,
            claimed_at=MARK_60,
            worker_id="dead",
            channels=["json"],
            batch=100,
        )
    sent: list[str] = []

    class Recorder:
        def send(self, user, text, kind, key):
            sent.append(key)

    assert dispatch_due(store, MARK_60 + timedelta(minutes=3), {"json": Recorder()}, worker_id="w").sent == 0
    assert dispatch_due(store, MARK_60 + LEASE + timedelta(seconds=1), {"json": Recorder()}, worker_id="w").sent == 3
    assert dispatch_due(store, MARK_60 + LEASE + timedelta(minutes=1), {"json": Recorder()}, worker_id="w").sent == 0
    assert len(sent) == len(set(sent)) == 3


def test_chat_registration_and_dispatch_on_postgres(pg_url):
    bot = build_bot(Settings(database_url=pg_url), clock=lambda: FIXED_NOW)
    chat = Chat(bot, channel="json")
    chat.say("更新を忘れないように通知して")
    chat.say("令和9年3月31日")
    chat.click("yes")
    assert "登録しました" in chat.say("高崎市")[-1].text
    sent: list[tuple[str, str]] = []

    class Recorder:
        def send(self, user, text, kind, key):
            sent.append((user, text))

    assert dispatch_due(bot.store, MARK_60, {"json": Recorder()}, worker_id="w").sent == 1
    assert "高崎市保健所" in sent[0][1]
    assert "停止しました" in chat.say("通知をやめて")[-1].text
    chat.say("データを削除")
    chat.click("yes")
    assert statuses(bot.store) == Counter()


def test_connections_killed_mid_dispatch_lose_and_duplicate_nothing(pg_url):
    """A real outage: every connection of the dispatcher is terminated right after a send."""
    name = f"nb_{uuid.uuid4().hex[:10]}"
    store = Store(make_engine(f"{pg_url}&application_name={name}"))
    seed(store, 3, now=FIXED_NOW)
    admin = create_engine(BASE_URL)
    sent: list[str] = []

    class KillsTheDatabaseAfterTheSecondSend:
        def send(self, user, message, kind, key):
            sent.append(key)
            if len(sent) == 2:
                with admin.begin() as conn:
                    conn.execute(
                        text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                        {"name": name},
                    )

    sender = KillsTheDatabaseAfterTheSecondSend()
    try:
        with pytest.raises(Exception):
            dispatch_due(store, MARK_60, {"json": sender}, worker_id="w1", batch=10)
        assert len(sent) == 2
        # The next run reconnects, records the second send, and leaves the third to the lease.
        dispatch_due(store, MARK_60 + timedelta(minutes=1), {"json": sender}, worker_id="w1", batch=10)
        assert len(sent) == 2
        dispatch_due(store, MARK_60 + LEASE + timedelta(minutes=1), {"json": sender}, worker_id="w1", batch=10)
    finally:
        admin.dispose()
        store.engine.dispose()
    assert sorted(sent) == sorted(set(sent)) and len(sent) == 3, sent
    assert statuses(store)["sent"] == 3
