"""Shared fixtures: a real SQLite file per test, a bot with a fixed clock, transcripts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.bootstrap import build_bot, knowledge_and_matcher
from bot.config import Settings
from bot.storage.db import make_engine
from bot.storage.repositories import Store
from handlers.messages import IncomingMessage, Reply
from tests.fakes.slack_api import FakeSlackAPI

REPO = Path(__file__).resolve().parents[1]
# The seeds, domain notes, spec, eval sets and peer data, kept beside the clone rather than in it.
SHARED = REPO.parent / "shared"
TOKYO = ZoneInfo("Asia/Tokyo")
FIXED_NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TOKYO)


def shared_missing(*rels: str) -> str | None:
    """Why a test that reads ``../shared/<rel>`` cannot run here, or None when every ``rel`` is there."""
    for rel in rels:
        if not (SHARED / rel).exists():
            return (
                f"../shared/{rel} not found: the folder beside the clone ({SHARED}) holds the seeds, domain, "
                "spec, eval and peer data; a clone of the repository alone has none"
            )
    return None


def shared_path(rel: str) -> Path:
    """``../shared/<rel>``, or a skip of the test that asked for it, saying why, when it is absent."""
    reason = shared_missing(rel)
    if reason is not None:
        pytest.skip(reason)
    return SHARED / rel


def needs_shared(*rels: str) -> pytest.MarkDecorator:
    """A mark that skips a test (one whose cases are read at collection, too) when ``../shared/<rel>`` is absent."""
    reason = shared_missing(*rels)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(scope="session")
def kb_and_matcher():
    return knowledge_and_matcher("gunma")


@pytest.fixture(scope="session")
def kb(kb_and_matcher):
    return kb_and_matcher[0]


@pytest.fixture(scope="session")
def matcher(kb_and_matcher):
    return kb_and_matcher[1]


@pytest.fixture()
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nanbyo.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, then a fresh schema of ``TEST_DATABASE_URL`` (dropped afterwards), or a skip."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nanbyo.db'}"
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL not set: the PostgreSQL run needs a server (CI sets it)")
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture()
def store(database_url: str) -> Iterator[Store]:
    """A ``Store`` on ``database_url`` (SQLite, then PostgreSQL)."""
    engine = make_engine(database_url)
    yield Store(engine)
    engine.dispose()


@pytest.fixture()
def fake_slack() -> Iterator[FakeSlackAPI]:
    """The fake Slack Web API on 127.0.0.1 (``tests/fakes/slack_api.py``)."""
    fake = FakeSlackAPI()
    yield fake
    fake.close()


@pytest.fixture()
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture()
def bot(settings: Settings):
    return build_bot(settings, clock=lambda: FIXED_NOW)


@dataclass
class Chat:
    """Talk to a bot as one user, turn by turn."""

    bot: object
    user: str = "U1"
    channel: str = "console"

    def say(self, text: str) -> list[Reply]:
        return self.bot.handle(IncomingMessage(channel=self.channel, user=self.user, text=text))

    def click(self, value: str) -> list[Reply]:
        return self.bot.handle(IncomingMessage(channel=self.channel, user=self.user, choice=value))

    @staticmethod
    def text(replies: list[Reply]) -> str:
        return "\n".join(r.text for r in replies)


@pytest.fixture()
def chat(bot) -> Chat:
    return Chat(bot)


def run_cli(
    args: list[str], stdin: str = "", env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``nanbyo-bot`` command as a user would."""
    exe = Path(sys.executable).with_name("nanbyo-bot")
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(exe), *args], input=stdin, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )
