"""Issue 24: what users leave behind expires after the periods the operator sets (docs/privacy.md,
"Retention periods"): an abandoned dialog's answers (``DIALOG_RETENTION_HOURS``, a day by default), handled
event ids and unfollow tombstones (``EVENT_RETENTION_DAYS``, a week, never under LINE's
redelivery window), the statistics and their redacted text (``STATS_RETENTION_DAYS``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from bot.bootstrap import build_bot
from bot.config import Settings
from bot.storage.models import utcnow
from bot.texts import DIALOG_EXPIRED_TEXT
from handlers.messages import IncomingMessage
from tests.conftest import FIXED_NOW
from tests.test_line_e2e import rows


def _execute(url: str, sql: str, **params) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _say(bot, said: str, user: str = "R1", event_id: str | None = None):
    return bot.handle(IncomingMessage("line", user, text=said, event_id=event_id))


def _in_a_dialog(bot, user: str) -> None:
    replies = _say(bot, "自己負担いくらになるか知りたい", user)
    assert replies[-1].expecting, "the copay dialog asks a question"
    replies = _say(bot, "いいえ", user)  # an answer kept in the dialog's slots
    state = rows(
        bot.store.engine.url.render_as_string(hide_password=False),
        "SELECT dialog, slots FROM conversation_state WHERE user_key = :u",
        u=f"line:{user}",
    )
    assert state and state[0][0] is not None and state[0][1] not in ({}, "{}")  # the test can fail


def test_a_user_back_after_the_dialog_expired_is_told_and_the_answers_are_gone(database_url):
    bot = build_bot(Settings(database_url=database_url), clock=lambda: FIXED_NOW)
    _in_a_dialog(bot, "R1")
    _execute(
        database_url,
        "UPDATE conversation_state SET updated_at = :t WHERE user_key = 'line:R1'",
        t=utcnow() - timedelta(hours=25),
    )
    out = "\n".join(r.text for r in _say(bot, "受給者証をなくしました", "R1"))
    assert DIALOG_EXPIRED_TEXT in out and "再交付" in out  # told kindly, and the question answered
    assert rows(database_url, "SELECT dialog, slots FROM conversation_state WHERE user_key = 'line:R1'")[0][0] is None


def test_a_dialog_within_the_period_goes_on(database_url):
    bot = build_bot(Settings(database_url=database_url), clock=lambda: FIXED_NOW)
    _in_a_dialog(bot, "R1")
    _execute(
        database_url,
        "UPDATE conversation_state SET updated_at = :t WHERE user_key = 'line:R1'",
        t=utcnow() - timedelta(hours=23),
    )
    replies = _say(bot, "いいえ", "R1")
    assert DIALOG_EXPIRED_TEXT not in "\n".join(r.text for r in replies) and replies[-1].expecting


def test_abandoned_dialogs_and_old_event_ids_are_purged_without_the_user_coming_back(database_url):
    settings = Settings(database_url=database_url, dialog_retention_hours=2, event_retention_days=3)
    bot = build_bot(settings, clock=lambda: FIXED_NOW)
    _in_a_dialog(bot, "GONE")
    _say(bot, "受給者証なくした", "GONE", event_id="ev-old")
    _say(bot, "受給者証なくした", "STAY", event_id="ev-recent")
    _execute(
        database_url,
        "UPDATE conversation_state SET updated_at = :t WHERE user_key = 'line:GONE'",
        t=utcnow() - timedelta(hours=3),
    )
    _execute(
        database_url,
        "UPDATE handled_event SET created_at = :t WHERE event_id = 'ev-old'",
        t=utcnow() - timedelta(days=4),
    )
    _execute(
        database_url,
        "UPDATE handled_event SET created_at = :t WHERE event_id = 'ev-recent'",
        t=utcnow() - timedelta(days=2),
    )
    later = build_bot(settings, clock=lambda: FIXED_NOW)  # a new process: its first turn sweeps
    _say(later, "受給者証なくした", "SOMEONE")
    state = rows(database_url, "SELECT dialog, slots FROM conversation_state WHERE user_key = 'line:GONE'")
    assert state[0][0] is None and state[0][1] in ({}, "{}")
    assert [r[0] for r in rows(database_url, "SELECT event_id FROM handled_event ORDER BY event_id")] == ["ev-recent"]
    assert _say(later, "受給者証なくした", "STAY", event_id="ev-recent") == []  # still exactly once


def test_statistics_are_purged_after_the_period_the_operator_sets(database_url):
    bot = build_bot(Settings(database_url=database_url, stats_retention_days=5), clock=lambda: FIXED_NOW)
    _execute(
        database_url,
        "INSERT INTO question_stat (day, user_key, topic, answered, redacted) "
        "VALUES (:d, 's-x', NULL, false, '古い質問の文')",
        d=FIXED_NOW.date() - timedelta(days=6),
    )
    _execute(
        database_url,
        "INSERT INTO question_stat (day, user_key, topic, answered, redacted) "
        "VALUES (:d, 's-y', NULL, false, '新しい質問の文')",
        d=FIXED_NOW.date() - timedelta(days=4),
    )
    _say(bot, "ゾウの飼い方を教えてください", "R2")
    kept = [r[0] for r in rows(database_url, "SELECT redacted FROM question_stat")]
    assert "古い質問の文" not in kept and "新しい質問の文" in kept


def test_retention_settings_are_read_from_the_environment():
    s = Settings.from_env(
        {"DIALOG_RETENTION_HOURS": "6", "EVENT_RETENTION_DAYS": "30", "STATS_RETENTION_DAYS": "14"}, dotenv=False
    )
    assert (s.dialog_retention_hours, s.event_retention_days, s.stats_retention_days) == (6, 30, 14)
    defaults = Settings.from_env({}, dotenv=False)
    assert (defaults.dialog_retention_hours, defaults.event_retention_days, defaults.stats_retention_days) == (
        24,
        7,
        90,
    )
    # Never shorter than LINE's redelivery window: a redelivered event must stay a duplicate.
    assert Settings.from_env({"EVENT_RETENTION_DAYS": "0.5"}, dotenv=False).event_retention_days == 2
    with pytest.raises(ValueError, match="DIALOG_RETENTION_HOURS"):
        Settings.from_env({"DIALOG_RETENTION_HOURS": "0"}, dotenv=False)
