"""Settings read from the environment (and ``.env`` when present).

Only ``Settings.from_env`` reads the environment; everything else receives a
``Settings``. The variables are those of CONTRACT.md, documented in ``.env.example``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


def _offsets(raw: str) -> tuple[int, ...]:
    values = sorted({int(part) for part in raw.replace(" ", "").split(",") if part}, reverse=True)
    if not values or any(v < 0 or v > 365 for v in values):
        raise ValueError(f"REMINDER_OFFSETS_DAYS must be days between 0 and 365, got {raw!r}")
    return tuple(values)


def _seconds_or_off(name: str, raw: str | None, default: float | None) -> float | None:
    """A number of seconds, or None for "off" (``off``, ``none`` or a negative number)."""
    if raw is None:
        return default
    if raw.strip().lower() in {"off", "none", "no", "false"}:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds or 'off', got {raw!r}") from None
    return None if value < 0 else value


# Handled event ids must outlive LINE's redelivery (about a day) or a redelivered event would be
# answered twice: a shorter EVENT_RETENTION_DAYS is raised to this.
MIN_EVENT_RETENTION_DAYS = 2.0


def _positive(name: str, raw: str | None, default: float) -> float:
    """A retention period: a positive number (hours or days, as the name says)."""
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///nanbyo.db"
    prefecture: str = "gunma"
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_bot_user_id: str | None = None  # the bot's own user id (U…); else asked once with auth.test
    line_channel_secret: str | None = None
    line_channel_access_token: str | None = None
    line_api_url: str = "https://api.line.me"
    line_loading_after_seconds: float | None = 1.0  # None: never show LINE's loading animation
    port: int = 3000
    reminder_offsets_days: tuple[int, ...] = (60, 30, 7)
    log_level: str = "INFO"
    turn_queue_limit: int = 5000
    turn_lease_seconds: float = 30.0
    record_timeout_seconds: float = 2.0  # an ack waits this long for its turn to be recorded, else 503
    outbox_expiry_seconds: float = 600.0  # a reply the platform keeps failing is tried again for this long
    turn_threads: int = 8  # turns the turn process runs at once
    # Retention (docs/privacy.md): an abandoned dialog's answers, handled event ids and unfollow
    # tombstones (beyond Slack's and LINE's redelivery windows), the statistics and their text.
    dialog_retention_hours: float = 24.0
    event_retention_days: float = 7.0
    stats_retention_days: int = 90
    # A person to reach (bot.handoff): the staff's Slack channel for hand-off notes (None: no hand-off,
    # the office only), how long a user's last questions are kept for a note, and a hand-off for replies.
    staff_slack_channel: str | None = None
    handoff_recent_minutes: float = 20.0
    handoff_retention_days: float = 7.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: bool = True) -> Settings:
        """Build settings from ``env`` (default ``os.environ``), loading ``.env`` first if asked."""
        if env is None:
            if dotenv:
                try:
                    from dotenv import load_dotenv

                    load_dotenv(override=False)
                except ImportError:  # pragma: no cover - declared dependency
                    pass
            env = os.environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        return cls(
            database_url=get("DATABASE_URL") or cls.database_url,
            prefecture=get("NANBYO_PREFECTURE") or cls.prefecture,
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_app_token=get("SLACK_APP_TOKEN"),
            slack_api_url=get("SLACK_API_URL") or cls.slack_api_url,
            slack_bot_user_id=get("SLACK_BOT_USER_ID"),
            line_channel_secret=get("LINE_CHANNEL_SECRET"),
            line_channel_access_token=get("LINE_CHANNEL_ACCESS_TOKEN"),
            line_api_url=get("LINE_API_URL") or cls.line_api_url,
            line_loading_after_seconds=_seconds_or_off(
                "LINE_LOADING_AFTER_SECONDS", get("LINE_LOADING_AFTER_SECONDS"), cls.line_loading_after_seconds
            ),
            port=int(get("PORT") or cls.port),
            reminder_offsets_days=_offsets(get("REMINDER_OFFSETS_DAYS") or "60,30,7"),
            log_level=(get("LOG_LEVEL") or cls.log_level).upper(),
            turn_queue_limit=int(get("TURN_QUEUE_LIMIT") or cls.turn_queue_limit),
            turn_lease_seconds=float(get("TURN_LEASE_SECONDS") or cls.turn_lease_seconds),
            record_timeout_seconds=float(get("RECORD_TIMEOUT_SECONDS") or cls.record_timeout_seconds),
            outbox_expiry_seconds=float(get("OUTBOX_EXPIRY_SECONDS") or cls.outbox_expiry_seconds),
            turn_threads=int(get("TURN_THREADS") or cls.turn_threads),
            dialog_retention_hours=_positive(
                "DIALOG_RETENTION_HOURS", get("DIALOG_RETENTION_HOURS"), cls.dialog_retention_hours
            ),
            event_retention_days=max(
                _positive("EVENT_RETENTION_DAYS", get("EVENT_RETENTION_DAYS"), cls.event_retention_days),
                MIN_EVENT_RETENTION_DAYS,
            ),
            stats_retention_days=int(
                _positive("STATS_RETENTION_DAYS", get("STATS_RETENTION_DAYS"), cls.stats_retention_days)
            ),
            staff_slack_channel=get("STAFF_SLACK_CHANNEL"),
            handoff_recent_minutes=_positive(
                "HANDOFF_RECENT_MINUTES", get("HANDOFF_RECENT_MINUTES"), cls.handoff_recent_minutes
            ),
            handoff_retention_days=_positive(
                "HANDOFF_RETENTION_DAYS", get("HANDOFF_RETENTION_DAYS"), cls.handoff_retention_days
            ),
        )
