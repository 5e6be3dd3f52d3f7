"""Database tables (sqlmodel). SQLite by default, PostgreSQL when DATABASE_URL says so.

Personal data is kept to the minimum: the conversation state of a user's open
dialog, the municipality they told us (to name their office), the ids of
events already handled, and reminders they asked for. Message text is never stored.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ConversationState(SQLModel, table=True):
    """One row per user: the open dialog, its answers so far, and a small profile.

    ``version`` grows by one on every save; a save that finds another version
    fails instead of silently merging two concurrent turns.
    """

    __tablename__ = "conversation_state"

    user_key: str = Field(primary_key=True, max_length=200)
    dialog: str | None = Field(default=None, max_length=50)
    slots: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    history: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    profile: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = Field(default=0)
    updated_at: datetime = Field(default_factory=utcnow)


class HandledEvent(SQLModel, table=True):
    """A channel event already answered: the unique key makes a redelivery a no-op."""

    __tablename__ = "handled_event"
    __table_args__ = (UniqueConstraint("channel", "event_id", name="uq_handled_event"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    event_id: str = Field(max_length=200)
    user_key: str = Field(max_length=200, index=True)
    created_at: datetime = Field(default_factory=utcnow)
