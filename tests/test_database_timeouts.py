"""A database that hangs: every wait is bounded, /healthz says so at once, users get the apology.

The fake database (``tests/fakes/hanging_db.py``) accepts TCP connections on 127.0.0.1 and
never answers, which is what a hung PostgreSQL server or proxy looks like to a client. SQLite
cannot hang that way; its equivalent is another connection holding the write lock.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from bot.bootstrap import build_bot, build_service, dialog_forms, knowledge_and_matcher
from bot.config import Settings
from bot.core import Bot
from bot.server import start_in_thread
from bot.storage.db import CONNECT_TIMEOUT_SECONDS, SQLITE_BUSY_TIMEOUT_SECONDS, create_db_engine, make_engine
from bot.storage.repositories import Store
from bot.texts import DB_DOWN_TEXT
from tests.fakes.hanging_db import HangingDatabase
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_slack_e2e import SECRET, TOKEN, answers_to, dm, get, post_signed, texts


@pytest.fixture()
def hanging_db() -> Iterator[HangingDatabase]:
    fake = HangingDatabase()
    yield fake
    fake.close()


def _bot_on(url: str) -> Bot:
    kb, matcher = knowledge_and_matcher("gunma")
    return Bot(kb, matcher, Store(create_db_engine(url)), dialog_forms())


def test_a_hung_postgresql_server_fails_within_the_connect_timeout(hanging_db: HangingDatabase) -> None:
    started = time.monotonic()
    with pytest.raises(OperationalError):
        make_engine(hanging_db.url)
    assert time.monotonic() - started < CONNECT_TIMEOUT_SECONDS + 2
    assert hanging_db.accepted >= 1, "the fake must have been reached, else this proves nothing"


def test_healthz_answers_503_within_a_second_while_the_database_hangs(hanging_db: HangingDatabase) -> None:
    server = start_in_thread(build_service(Settings(), bot=_bot_on(hanging_db.url), durable=False))
    try:
        url = f"{server.url}/healthz"
        for _ in range(3):  # the first starts the check; the next ones find it still hanging
            started = time.monotonic()
            result = get(url)
            assert time.monotonic() - started < 1.0
            assert result.status == 503
            assert json.loads(result.body)["database"] in ("timeout", "error")
    finally:
        server.stop()


def test_healthz_is_ok_again_when_the_database_answers(db_url: str) -> None:
    server = start_in_thread(build_service(Settings(), bot=build_bot(Settings(database_url=db_url)), durable=False))
    try:
        result = get(f"{server.url}/healthz")
        assert result.status == 200 and json.loads(result.body) == {"status": "ok"}
    finally:
        server.stop()


def test_slack_user_gets_the_apology_while_postgresql_hangs(
    hanging_db: HangingDatabase, fake_slack: FakeSlackAPI
) -> None:
    settings = Settings(
        database_url=hanging_db.url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake_slack.api_url,
    )
    server = start_in_thread(build_service(settings, bot=_bot_on(hanging_db.url), durable=False))
    try:
        started = time.monotonic()
        acked = post_signed(f"{server.url}/slack/events", dm("受給者証なくした"))
        assert acked.status == 200
        assert time.monotonic() - started < 1.0, "Slack wants its ack within 3 seconds"
        answer = answers_to(fake_slack, "D1")
        assert DB_DOWN_TEXT in texts(answer)
        assert time.monotonic() - started < CONNECT_TIMEOUT_SECONDS + 3
    finally:
        server.stop()


def test_a_turn_gets_the_apology_when_sqlite_stays_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    bot = build_bot(Settings(database_url=url))
    locker = sqlite3.connect(tmp_path / "nanbyo.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process writing, and not finishing
    try:
        from handlers.messages import IncomingMessage

        started = time.monotonic()
        replies = bot.handle(IncomingMessage(channel="console", user="U1", text="受給者証なくした"))
        assert [r.text for r in replies] == [DB_DOWN_TEXT]
        assert time.monotonic() - started < SQLITE_BUSY_TIMEOUT_SECONDS + 2
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_line_user_gets_the_apology_with_the_reply_token_while_postgresql_hangs(hanging_db: HangingDatabase) -> None:
    from tests.fakes.line_api import FakeLineApi
    from tests.test_line_e2e import REPLY, sign, text_event, webhook
    from tests.test_line_e2e import SECRET as LINE_SECRET
    from tests.test_line_e2e import texts as line_texts

    with FakeLineApi.start() as line_api:
        settings = Settings(
            database_url=hanging_db.url,
            line_channel_secret=LINE_SECRET,
            line_channel_access_token=line_api.access_token,
            line_api_url=line_api.url,
        )
        server = start_in_thread(build_service(settings, bot=_bot_on(hanging_db.url), durable=False))
        try:
            body = webhook(text_event("受給者証なくした", reply_token="rt-hang"))
            started = time.monotonic()
            request = urllib.request.Request(
                f"{server.url}/line/callback",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
            assert time.monotonic() - started < 1.0
            (reply,) = line_api.wait_for(REPLY, timeout=CONNECT_TIMEOUT_SECONDS + 5)
            # Well within the reply token's minute: the apology goes out free, as a reply.
            assert reply.json["replyToken"] == "rt-hang"
            assert line_texts(reply) == [DB_DOWN_TEXT]
        finally:
            server.stop()
