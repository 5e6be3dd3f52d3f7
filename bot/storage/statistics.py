"""Question statistics for the operator (``nanbyo-bot stats`` and ``review``): one row per FAQ
question, the user under a keyed id, the text only of unanswered (or unsure) questions and only
redacted; the users' feedback on answers (its note redacted too); both kept for
``STATS_RETENTION_DAYS``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from bot.storage.models import AnswerFeedback, AppSecret, DeliveryStat, QuestionStat

# Question statistics are kept this long (see ``Statistics.record_question`` and ``nanbyo-bot stats``).
STATS_RETENTION_DAYS = 90  # the statistics (and their redacted free text), by default
# An abandoned dialog's answers (income, dates), by default: a day, then the dialog is gone.
DIALOG_RETENTION_HOURS = 24.0
# Handled event ids (exactly-once for redeliveries) and unfollow tombstones, by default. Slack
# retries within minutes and LINE redelivers within about a day: a week is well beyond both.
EVENT_RETENTION_DAYS = 7.0

_STAT = QuestionStat.__table__  # type: ignore[attr-defined]
_FEEDBACK = AnswerFeedback.__table__  # type: ignore[attr-defined]
_SECRET = AppSecret.__table__  # type: ignore[attr-defined]
_DELIVERY = DeliveryStat.__table__  # type: ignore[attr-defined]
_COUNT_DELIVERY = {
    name: dialect_insert(_DELIVERY).on_conflict_do_update(
        index_elements=["day", "channel", "outcome"], set_={"count": _DELIVERY.c.count + 1}
    )
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_INSERT_STAT = insert(_STAT)
_INSERT_SECRET_IF_NEW = {
    "postgresql": pg_insert(_SECRET).on_conflict_do_nothing(index_elements=["name"]),
    "sqlite": sqlite_insert(_SECRET).on_conflict_do_nothing(index_elements=["name"]),
}
_SELECT_SECRET = core_select(_SECRET.c.value).where(_SECRET.c.name == bindparam("b_name"))


class StatsKey:
    """The database's statistics secret once read from a committed row (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: bytes | None = None

    def get(self) -> bytes | None:
        with self._lock:
            return self._key

    def set(self, key: bytes) -> None:
        with self._lock:
            self._key = key


class Retention:
    """How long what users leave behind is kept, and when this process last purged (thread-safe).

    The periods are the operator's (``Settings``: ``DIALOG_RETENTION_HOURS``,
    ``EVENT_RETENTION_DAYS``, ``STATS_RETENTION_DAYS``; docs/privacy.md). The statistics are
    purged by a day's first question (``Statistics.record_question``); abandoned dialogs, handled
    event ids and unfollow tombstones by the first turn of each hour (``UnitOfWork.sweep_expired``).
    """

    def __init__(
        self,
        *,
        dialog_hours: float = DIALOG_RETENTION_HOURS,
        event_days: float = EVENT_RETENTION_DAYS,
        stats_days: int = STATS_RETENTION_DAYS,
        handoff_recent_minutes: float = 20.0,
        handoff_days: float = 7.0,
    ) -> None:
        self.dialog = timedelta(hours=dialog_hours)
        # Hand-offs to a person (bot.handoff): a user's last questions, and the hand-offs themselves.
        self.handoff_recent = timedelta(minutes=handoff_recent_minutes)
        self.handoffs = timedelta(days=handoff_days)
        self.events = timedelta(days=event_days)
        self.stats_days = stats_days
        self._lock = threading.Lock()
        self._purged_on: date | None = None
        self._swept_hour: datetime | None = None

    def due(self, day: date) -> bool:
        with self._lock:
            return self._purged_on != day

    def done(self, day: date) -> None:
        """Called once the purge of ``day`` is committed (a turn that rolls back leaves it due)."""
        with self._lock:
            self._purged_on = day

    def sweep_due(self, now: datetime) -> bool:
        with self._lock:
            return self._swept_hour != now.replace(minute=0, second=0, microsecond=0)

    def swept(self, now: datetime) -> None:
        """Called once the sweep of ``now``'s hour is committed."""
        with self._lock:
            self._swept_hour = now.replace(minute=0, second=0, microsecond=0)


class Statistics:
    """The question statistics, on the unit of work's session.

    ``after_commit`` is the unit of work's list of actions run once it has committed: the
    secret and the day's purge are remembered only when they are surely in the database.
    """

    def __init__(
        self,
        session: Session,
        after_commit: list[Callable[[], None]],
        retention: Retention | None = None,
        stats_key: StatsKey | None = None,
    ) -> None:
        self.session = session
        self._after_commit = after_commit
        self._retention = retention
        self._stats_key = stats_key if stats_key is not None else StatsKey()

    def _conn(self) -> Connection:
        return self.session.connection()

    def stats_user(self, user_key: str) -> str:
        """The id of ``user_key`` in the statistics: an HMAC-SHA256 with the database's own secret.

        Not ``hash_user``: its key may be random per run, while a statistics row must be found
        by the deletion of its user from any process, at any later time. The secret lives in the
        database (``app_secret``), so the id is stable for as long as the rows are; it keeps the
        channel's user id out of the statistics, not out of reach of whoever holds the database.
        """
        key = self._stats_key.get()
        if key is None:
            conn = self._conn()
            statement = _INSERT_SECRET_IF_NEW.get(conn.dialect.name)
            values = {"name": "stats", "value": secrets.token_hex(32)}
            if statement is not None:
                conn.execute(statement, values)
            elif conn.execute(_SELECT_SECRET, {"b_name": "stats"}).first() is None:
                conn.execute(insert(_SECRET), values)
            value = conn.execute(_SELECT_SECRET, {"b_name": "stats"}).scalar_one()
            read: bytes = value.encode("utf-8")
            holder = self._stats_key
            self._after_commit.append(lambda: holder.set(read))  # once it is surely in the database
            key = read
        return "s-" + hmac.new(key, user_key.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def record_question(
        self, user_key: str, day: date, topic: str | None, answered: bool, redacted: str | None
    ) -> None:
        """Record one FAQ question for the statistics (text only when unanswered or answered
        unsure — the caller passes None for a sure answer —, already redacted); the user is
        recorded as ``stats_user(user_key)``."""
        self._conn().execute(
            _INSERT_STAT,
            {
                "day": day,
                "user_key": self.stats_user(user_key),
                "topic": topic,
                "answered": answered,
                "redacted": redacted,
            },
        )
        # Bounded retention without a separate job: once a day per process, the first question
        # of the day deletes what has grown older than the limit.
        if self._retention is None:
            self.purge_stats(day - timedelta(days=STATS_RETENTION_DAYS))
        elif self._retention.due(day):
            retention = self._retention
            self.purge_stats(day - timedelta(days=retention.stats_days))
            self._after_commit.append(lambda: retention.done(day))

    def count_delivery(self, day: date, channel: str, outcome: str) -> None:
        """Add one to the day's count of a delivery outcome (``DeliveryStat``)."""
        self._conn().execute(
            _COUNT_DELIVERY[self._conn().dialect.name], {"day": day, "channel": channel, "outcome": outcome, "count": 1}
        )

    def delivery_stats(self, since: date) -> dict[str, dict[str, int]]:
        """Outcome counts per channel since ``since``: ``{"slack": {"retried": 3, ...}}``."""
        rows = self._conn().execute(
            core_select(_DELIVERY.c.channel, _DELIVERY.c.outcome, func.sum(_DELIVERY.c.count))
            .where(_DELIVERY.c.day >= since)
            .group_by(_DELIVERY.c.channel, _DELIVERY.c.outcome)
        )
        counts: dict[str, dict[str, int]] = {}
        for channel, outcome, n in rows:
            counts.setdefault(channel, {})[outcome] = int(n)
        return counts

    def purge_stats(self, before: date) -> int:
        """Delete statistics and feedback older than ``before`` (the retention limit)."""
        conn = self._conn()
        conn.execute(delete(_DELIVERY).where(_DELIVERY.c.day < before))
        removed = conn.execute(delete(_STAT).where(_STAT.c.day < before)).rowcount or 0
        return removed + (conn.execute(delete(_FEEDBACK).where(_FEEDBACK.c.day < before)).rowcount or 0)

    def record_feedback(self, user_key: str, day: date, topic: str | None, kind: str, helpful: bool) -> int:
        """Record a user's feedback on one answer; returns its id (for the note that may follow)."""
        result = self._conn().execute(
            insert(_FEEDBACK).returning(_FEEDBACK.c.id),
            {
                "day": day,
                "user_key": self.stats_user(user_key),
                "topic": topic,
                "kind": kind[:30],
                "helpful": helpful,
            },
        )
        return int(result.scalar_one())

    def note_feedback(self, user_key: str, feedback_id: int, note: str) -> bool:
        """Add the (already redacted) note to the user's own feedback ``feedback_id``."""
        return bool(
            self._conn()
            .execute(
                update(_FEEDBACK)
                .where(_FEEDBACK.c.id == feedback_id, _FEEDBACK.c.user_key == self.stats_user(user_key))
                .values(note=note[:200])
            )
            .rowcount
        )

    def review_rows(
        self, since: date, until: date
    ) -> tuple[list[tuple[str, str | None]], list[tuple[str, str | None]], list[tuple[str | None, str, str | None]]]:
        """What ``nanbyo-bot review`` groups, since ``since``: the unanswered questions' and the unsure
        answers' redacted texts with their (closest) topic, and the unhelpful feedback (topic, kind, note);
        ``until`` is the period's last day."""
        rows = self.session.execute(
            core_select(_STAT.c.redacted, _STAT.c.topic, _STAT.c.answered)
            .where(_STAT.c.day >= since, _STAT.c.day <= until, _STAT.c.redacted.is_not(None))
            .order_by(_STAT.c.id)
        ).all()
        unanswered = [(text, topic) for text, topic, answered in rows if not answered]
        unsure = [(text, topic) for text, topic, answered in rows if answered]
        unhelpful = [
            (topic, kind, note)
            for topic, kind, note in self.session.execute(
                core_select(_FEEDBACK.c.topic, _FEEDBACK.c.kind, _FEEDBACK.c.note)
                .where(_FEEDBACK.c.day >= since, _FEEDBACK.c.day <= until, _FEEDBACK.c.helpful.is_(False))
                .order_by(_FEEDBACK.c.id)
            ).all()
        ]
        return unanswered, unsure, unhelpful

    def feedback_counts(self, since: date, until: date) -> tuple[int, int]:
        """(helpful, not helpful) feedback from ``since`` to ``until``."""
        rows = self.session.execute(
            core_select(_FEEDBACK.c.helpful, func.count())
            .where(_FEEDBACK.c.day >= since, _FEEDBACK.c.day <= until)
            .group_by(_FEEDBACK.c.helpful)
        ).all()
        counts = {bool(h): int(n) for h, n in rows}
        return counts.get(True, 0), counts.get(False, 0)

    def question_stats(self, since: date) -> tuple[list[tuple[str | None, int, int]], list[tuple[str, int]]]:
        """Per topic (answered, not answered) counts, and the most frequent unanswered questions."""
        rows = self.session.execute(
            select(col(QuestionStat.topic), col(QuestionStat.answered), func.count())
            .where(col(QuestionStat.day) >= since)
            .group_by(col(QuestionStat.topic), col(QuestionStat.answered))
        ).all()
        per_topic: dict[str | None, list[int]] = {}
        for topic, answered, n in rows:
            per_topic.setdefault(topic, [0, 0])[0 if answered else 1] += n
        table = sorted(((t, a, u) for t, (a, u) in per_topic.items()), key=lambda r: (-(r[1] + r[2]), r[0] or ""))
        frequent = self.session.execute(
            select(col(QuestionStat.redacted), func.count().label("n"))
            .where(
                col(QuestionStat.day) >= since,
                col(QuestionStat.answered).is_(False),
                col(QuestionStat.redacted).is_not(None),
            )
            .group_by(col(QuestionStat.redacted))
            .order_by(func.count().desc(), col(QuestionStat.redacted))
            .limit(20)
        ).all()
        return table, [(text, n) for text, n in frequent]

    def forget(self, user_key: str) -> int:
        """Delete the user's statistics and feedback rows. They carry the keyed id; statistics
        written before it existed carry the user key."""
        keys = [user_key, self.stats_user(user_key)]
        conn = self._conn()
        removed = conn.execute(delete(_STAT).where(_STAT.c.user_key.in_(keys))).rowcount or 0
        return removed + (conn.execute(delete(_FEEDBACK).where(_FEEDBACK.c.user_key.in_(keys))).rowcount or 0)


class UserQuestions:
    """``handlers.ports.QuestionLog`` for one user: the statistics bound to the turn's user."""

    def __init__(self, statistics: Statistics, user_key: str) -> None:
        self._statistics = statistics
        self._user_key = user_key

    def record(self, day: date, topic: str | None, answered: bool, redacted: str | None) -> None:
        self._statistics.record_question(self._user_key, day, topic, answered, redacted)

    def feedback(self, day: date, topic: str | None, kind: str, helpful: bool) -> int:
        return self._statistics.record_feedback(self._user_key, day, topic, kind, helpful)

    def feedback_note(self, feedback_id: int, note: str) -> bool:
        return self._statistics.note_feedback(self._user_key, feedback_id, note)
