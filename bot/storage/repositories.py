"""The only module that reads and writes SQL. One unit of work per turn.

A turn opens a ``UnitOfWork``, claims the event id (so a redelivered event is
answered once, also across instances), loads the user's state, lets the
handlers change it in memory, saves it with a version check, and commits all
of it together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.storage.models import ConversationState, HandledEvent, utcnow


class StaleStateError(Exception):
    """Another turn of the same user saved first; the caller may retry the turn."""


class DuplicateEvent(Exception):
    """The event was already handled (by this or another instance)."""


def hash_user(user_key: str) -> str:
    """A short stable id for logs, so that logs never carry the channel's user id."""
    return hashlib.sha256(user_key.encode()).hexdigest()[:12]


class UnitOfWork:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim_event(self, channel: str, event_id: str, user_key: str) -> None:
        """Record ``event_id`` as handled; raise DuplicateEvent when it already was.

        The row is flushed at once: on PostgreSQL a concurrent instance handling
        the same event waits on the unique index and then fails, so only one
        of them answers.
        """
        exists = self.session.exec(
            select(HandledEvent.id).where(HandledEvent.channel == channel, HandledEvent.event_id == event_id)
        ).first()
        if exists is not None:
            raise DuplicateEvent(event_id)
        self.session.add(HandledEvent(channel=channel, event_id=event_id, user_key=user_key))
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise DuplicateEvent(event_id) from exc

    def load_state(self, user_key: str) -> ConversationState:
        """The user's state, detached (a copy the handlers may change freely)."""
        row = self.session.get(ConversationState, user_key)
        if row is None:
            return ConversationState(user_key=user_key, version=0)
        return ConversationState(
            user_key=row.user_key,
            dialog=row.dialog,
            slots=deepcopy(row.slots),
            history=list(row.history),
            profile=deepcopy(row.profile),
            version=row.version,
            updated_at=row.updated_at,
        )

    def save_state(self, state: ConversationState) -> None:
        """Write ``state`` if nobody else saved this user since it was loaded."""
        values = {
            "dialog": state.dialog,
            "slots": state.slots,
            "history": state.history,
            "profile": state.profile,
            "version": state.version + 1,
            "updated_at": utcnow(),
        }
        if state.version == 0:
            if self.session.get(ConversationState, state.user_key) is not None:
                raise StaleStateError(state.user_key)
            self.session.add(ConversationState(user_key=state.user_key, **values))
            try:
                self.session.flush()
            except IntegrityError as exc:
                raise StaleStateError(state.user_key) from exc
        else:
            result = self.session.execute(
                update(ConversationState)
                .where(ConversationState.user_key == state.user_key, ConversationState.version == state.version)
                .values(**values)
            )
            if result.rowcount != 1:
                raise StaleStateError(state.user_key)
        state.version += 1

    def delete_user(self, user_key: str) -> int:
        """Delete everything stored about one user. Returns the number of rows removed."""
        removed = 0
        for table, column in ((ConversationState, ConversationState.user_key), (HandledEvent, HandledEvent.user_key)):
            removed += self.session.execute(delete(table).where(column == user_key)).rowcount or 0
        return removed


class Store:
    """Opens units of work on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        with Session(self.engine, expire_on_commit=False) as session:
            uow = UnitOfWork(session)
            try:
                yield uow
                session.commit()
            except BaseException:
                session.rollback()
                raise
