"""Turn state and events: the claim of a channel event, the user's conversation state and the
flood window. Every statement here runs on every message, so each is plain Core SQL built once
(building a statement costs more than SQLite running it; the ORM's identity map and flushes
cost several times the SQL itself). Execution parameters named like a column fill an INSERT's
values or an UPDATE's SET.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.storage.models import ConversationState, HandledEvent, RateWindow, utcnow
from handlers.ports import UserState


class StaleStateError(Exception):
    """Another turn of the same user saved first; the caller may retry the turn."""


class DuplicateEvent(Exception):
    """The event was already handled (by this or another instance)."""


# The user key of handled events whose user's data was deleted (see ``Conversations.forget``).
FORGOTTEN_USER = "-"

_EVENT = HandledEvent.__table__  # type: ignore[attr-defined]  # Core tables, for the hot paths
_STATE = ConversationState.__table__  # type: ignore[attr-defined]
_RATE = RateWindow.__table__  # type: ignore[attr-defined]

_INSERT_EVENT = insert(_EVENT)
# A redelivered event is the common duplicate: ON CONFLICT DO NOTHING says so by returning no row
# instead of a failed statement (which PostgreSQL would also write to its own log each time).
_INSERT_EVENT_IF_NEW = {
    "postgresql": pg_insert(_EVENT).on_conflict_do_nothing(constraint="uq_handled_event").returning(_EVENT.c.id),
    "sqlite": sqlite_insert(_EVENT)
    .on_conflict_do_nothing(index_elements=["channel", "event_id"])
    .returning(_EVENT.c.id),
}
_SELECT_STATE = core_select(_STATE).where(_STATE.c.user_key == bindparam("b_user_key"))
_INSERT_STATE = insert(_STATE)
_UPDATE_STATE = update(_STATE).where(
    _STATE.c.user_key == bindparam("b_user_key"), _STATE.c.version == bindparam("b_version")
)
_BUMP_RATE = (
    update(_RATE)
    .where(_RATE.c.user_key == bindparam("b_user_key"), _RATE.c.window_start > bindparam("b_since"))
    .values(count=_RATE.c.count + 1)
    .returning(_RATE.c.count)
)
_INSERT_RATE = insert(_RATE)
_UPDATE_RATE = update(_RATE).where(_RATE.c.user_key == bindparam("b_user_key"))


class Conversations:
    """Handled events, conversation states and flood windows, on the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _conn(self) -> Connection:
        return self.session.connection()

    def claim_event(self, channel: str, event_id: str, user_key: str) -> None:
        """Record ``event_id`` as handled; raise DuplicateEvent when it already was.

        The row is inserted at once: on PostgreSQL a concurrent instance handling
        the same event waits on the unique index and then fails, so only one
        of them answers.
        """
        conn = self._conn()
        values = {"channel": channel, "event_id": event_id, "user_key": user_key, "created_at": utcnow()}
        statement = _INSERT_EVENT_IF_NEW.get(conn.dialect.name)
        if statement is None:  # another database: the unique index says it
            try:
                conn.execute(_INSERT_EVENT, values)
            except IntegrityError as exc:
                raise DuplicateEvent(event_id) from exc
            return
        if conn.execute(statement, values).first() is None:
            raise DuplicateEvent(event_id)

    def load_state(self, user_key: str) -> UserState:
        """The user's state, detached (a copy the handlers may change freely)."""
        row = self._conn().execute(_SELECT_STATE, {"b_user_key": user_key}).first()
        if row is None:
            return UserState(user_key=user_key)
        # The JSON columns are decoded afresh for every read, so nothing here is shared.
        return UserState(
            user_key=row.user_key,
            dialog=row.dialog,
            slots=row.slots,
            history=row.history,
            profile=row.profile,
            version=row.version,
            updated_at=row.updated_at,
        )

    def save_state(self, state: UserState) -> None:
        """Write ``state`` if nobody else saved this user since it was loaded."""
        values = {
            "dialog": state.dialog,
            "slots": state.slots,
            "history": state.history,
            "profile": state.profile,
            "version": state.version + 1,
            "updated_at": utcnow(),
        }
        conn = self._conn()
        if state.version == 0:
            try:
                conn.execute(_INSERT_STATE, {"user_key": state.user_key, **values})
            except IntegrityError as exc:  # another turn created this user first
                raise StaleStateError(state.user_key) from exc
        else:
            result = conn.execute(_UPDATE_STATE, {"b_user_key": state.user_key, "b_version": state.version, **values})
            if result.rowcount != 1:
                raise StaleStateError(state.user_key)
        state.version += 1

    def count_message(self, user_key: str, now: datetime, window_seconds: int = 60) -> int:
        """Count one message of ``user_key``; returns how many it sent in the current window.

        One atomic UPDATE in the usual case, so two messages of one user at once on PostgreSQL
        are both counted (the row lock orders them); a new window or a new user takes a second
        statement.
        """
        conn = self._conn()
        row = conn.execute(
            _BUMP_RATE, {"b_user_key": user_key, "b_since": now - timedelta(seconds=window_seconds)}
        ).first()
        if row is not None:
            return int(row[0])
        restarted = conn.execute(_UPDATE_RATE, {"b_user_key": user_key, "window_start": now, "count": 1})
        if restarted.rowcount == 1:
            return 1
        try:
            conn.execute(_INSERT_RATE, {"user_key": user_key, "window_start": now, "count": 1})
        except IntegrityError as exc:  # two first messages of one user at once: redo the turn
            raise StaleStateError(user_key) from exc
        return 1

    def purge(self, *, events_before: datetime, dialogs_before: datetime) -> int:
        """Delete handled event ids older than ``events_before`` (past every redelivery window),
        and end dialogs left since before ``dialogs_before``: their answers go, the dialog is
        gone (the user's profile and history stay). Returns the rows touched."""
        conn = self._conn()
        removed = conn.execute(delete(_EVENT).where(_EVENT.c.created_at < events_before)).rowcount or 0
        removed += (
            conn.execute(
                update(_STATE)
                .where(_STATE.c.dialog.is_not(None), _STATE.c.updated_at < dialogs_before)
                .values(dialog=None, slots={}, version=_STATE.c.version + 1)
            ).rowcount
            or 0
        )
        return removed

    def forget(self, user_key: str) -> int:
        """Delete the user's state and flood window; returns the rows touched.

        Handled event ids are kept, with the user key removed (``FORGOTTEN_USER``): a Slack retry
        or LINE redelivery of the very event that asked for the deletion (or of an earlier one)
        is then still a duplicate — answered once, and nothing about the user is created again.
        An event id names a delivery, not a person.
        """
        conn = self._conn()
        removed = conn.execute(delete(_STATE).where(_STATE.c.user_key == user_key)).rowcount or 0
        removed += conn.execute(delete(_RATE).where(_RATE.c.user_key == user_key)).rowcount or 0
        removed += (
            conn.execute(update(_EVENT).where(_EVENT.c.user_key == user_key).values(user_key=FORGOTTEN_USER)).rowcount
            or 0
        )
        return removed
