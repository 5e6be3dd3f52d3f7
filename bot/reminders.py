"""Delivering renewal reminders and cost-log messages, each once: ``dispatch_due``, the senders, the CLI,
the scheduler.

What this is: the one core function ``dispatch_due(store, now, senders)`` — for each outbox (renewal
reminders, then the cost log's messages) skip what must not go out any more, claim due messages in
batches (a claim is committed before anything is sent), send each through its channel's ``Sender``
with an idempotency key, mark it sent (or record the failure and when to retry) — plus
``run_due_main`` for ``nanbyo-bot reminders run-due [--now ISO]`` and ``start_scheduler`` for
``serve``, which both only call ``dispatch_due``. ``send_claimed`` and ``UnrecordedSends`` are the
send-and-mark step, shared with the hand-off desk (``bot.handoff``).

What this is not: no dialog and no wording (``handlers.reminders`` and ``handlers.cost_log`` write
the texts), no SQL (the claims are ``bot.storage.claims.Claims``), no LINE or Slack client (the
server passes their senders in). Nothing here reads the clock except the two entry points.

Exactly once, and where it is only at least once:

- Two dispatchers never send the same mark: a delivery is claimed first (PostgreSQL:
  ``FOR UPDATE SKIP LOCKED``; SQLite: one conditional ``UPDATE … RETURNING`` under the
  write lock), and only the claimer sends and marks it.
- A dispatcher that dies after claiming leaves the claim behind; after ``LEASE`` another
  run takes it over, so the reminder is not lost.
- The one window left is a crash (or a lost database connection) *after* a send and
  *before* its mark commits: the next run after the lease sends it again. Every attempt
  carries the same key ``reminder-{reminder_id}-{offset}``; LINE deduplicates on it
  (``X-Line-Retry-Key``, see ``bot.channels.line``), so there the user still sees it once.
  The console/JSON sender has nothing to deduplicate with: for it the window is
  at-least-once (a consumer of the JSON lines may drop repeated keys if it must).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, Protocol, TextIO, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from bot.config import Settings
from bot.storage.cost_log import ClaimedNotice
from bot.storage.reminders import ClaimedDelivery
from bot.storage.repositories import Store, UnitOfWork
from handlers.cost_log import message_text
from handlers.reminders import in_sending_hours, reminder_text
from knowledge import KnowledgeBase
from nlp.privacy import hash_user

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("nanbyo.reminders")

TOKYO = ZoneInfo("Asia/Tokyo")
# A claim older than this belongs to a dispatcher that died; another run may take it over.
LEASE = timedelta(minutes=10)
# Failed sends are retried after 10, 20, 40, 80, 160 minutes (capped at 6 hours), then given up.
MAX_ATTEMPTS = 6
RETRY_BASE = timedelta(minutes=10)
RETRY_CAP = timedelta(hours=6)
DEFAULT_BATCH = 200
JOB_ID = "reminders-dispatch-due"
KIND = "reminder"


class Sender(Protocol):
    """Pushes one message to one user of a channel; raises on failure.

    ``key`` is the same for every attempt of the same mark. A channel that can
    deduplicate should: the LINE sender passes ``bot.channels.line.retry_key(key)`` as
    ``X-Line-Retry-Key`` and treats its 409 (already accepted) as success.
    """

    def send(self, user: str, text: str, kind: str, key: str) -> None: ...


class Ledger(Protocol):
    """Where a dispatcher records its sends: the ``bot.storage.claims.Claims`` of one message table."""

    def mark_sent(self, job_id: int, worker_id: str, sent_at: datetime) -> bool: ...

    def mark_failed(self, job_id: int, worker_id: str, error: str, retry_at: datetime | None) -> bool: ...

    def release_claims(self, job_ids: Sequence[int], worker_id: str) -> int: ...


class Job(Protocol):
    """A claimed message: a reminder delivery, a cost-log message, a hand-off note or staff reply."""

    @property
    def id(self) -> int: ...

    @property
    def attempts(self) -> int: ...

    @property
    def user(self) -> str: ...

    @property
    def user_key(self) -> str: ...

    @property
    def key(self) -> str: ...


class _ChannelJob(Job, Protocol):
    """A claimed message to a user, sent through the sender of its channel."""

    @property
    def channel(self) -> str: ...


class ConsoleSender:
    """Writes each message as a JSON line ``{"user", "text", "kind"}`` (console and ``--json`` users).

    At-least-once: a crash between writing a line and recording it as sent writes it
    again on the run after the lease (see the module docstring).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        self.stream.write(json.dumps({"user": user, "text": text, "kind": kind}, ensure_ascii=False) + "\n")
        self.stream.flush()


@dataclass(frozen=True)
class DispatchSummary:
    """What one ``dispatch_due`` run did.

    Attributes:
        sent: deliveries sent and recorded.
        failed: sends that failed this run (retried later, or given up: see ``gave_up``).
        skipped: marks skipped (a newer mark is due too, or the reminder expired or stopped).
        not_due: pending deliveries that may not go out yet (later day, retry wait, quiet hours).
        no_sender: due deliveries on a channel this process has no sender for (left pending).
        gave_up: of ``failed``, those that reached the last attempt.
        lost: sent, but the claim had been taken over meanwhile (see the module docstring).
        quiet: the run fell outside 09:00–20:00 Japan time and sent nothing.
    """

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    not_due: int = 0
    no_sender: int = 0
    gave_up: int = 0
    lost: int = 0
    quiet: bool = False

    def line(self) -> str:
        """The one-line summary ``run-due`` prints."""
        text = f"reminders: {self.sent} sent, {self.failed} failed, {self.skipped} skipped, {self.not_due} not due"
        if self.no_sender:
            text += f", {self.no_sender} waiting for a channel"
        if self.quiet:
            text += " (quiet hours: sending resumes at 09:00 JST)"
        return text


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the ``attempts``-th failed attempt."""
    delay: timedelta = RETRY_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, RETRY_CAP)


def default_worker_id() -> str:
    """Unique per process: a claim names its dispatcher."""
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@lru_cache(maxsize=4)
def _knowledge(prefecture: str) -> KnowledgeBase:
    from knowledge import load_knowledge

    return load_knowledge(prefecture)


class UnrecordedSends:
    """Messages that went out while the database could not record them.

    A send that succeeded is remembered here when its ``mark_sent`` fails (the database went
    away between the send and the mark), and recorded at the start of this process's next run,
    well within the claim's lease. Without this, the claim would run out and the message would
    be sent again: harmless on LINE (its retry key), a duplicate message on Slack. A process
    that dies with entries here still falls back to the lease.

    Args:
        ledger: where the marks are written, on a unit of work (e.g. ``lambda uow: uow.reminders``).
    """

    def __init__(self, ledger: Callable[[UnitOfWork], Ledger]) -> None:
        self._lock = threading.Lock()
        self._marks: dict[int, tuple[str, datetime]] = {}  # job id -> (worker id, sent at)
        self._ledger = ledger

    def add(self, job_id: int, worker_id: str, sent_at: datetime) -> None:
        with self._lock:
            self._marks[job_id] = (worker_id, sent_at)

    def __len__(self) -> int:
        with self._lock:
            return len(self._marks)

    def record(self, store: Store) -> int:
        """Write the remembered marks; raises (keeping them) if the database is still away."""
        with self._lock:
            marks = dict(self._marks)
        if not marks:
            return 0
        with store.autocommit() as uow:
            ledger = self._ledger(uow)
            for job_id, (worker_id, sent_at) in marks.items():
                ledger.mark_sent(job_id, worker_id, sent_at)
                with self._lock:
                    self._marks.pop(job_id, None)
        log.info("reminders recorded late marks=%d", len(marks))
        return len(marks)


J = TypeVar("J", bound=_ChannelJob)
J_co = TypeVar("J_co", bound=_ChannelJob, covariant=True)


class _Claim(Protocol[J_co]):
    """A repository's claim of due messages (``Reminders.claim_deliveries``, ``CostLogRepository.claim_notices``)."""

    def __call__(
        self,
        *,
        now: datetime,
        stale_before: datetime,
        claimed_at: datetime,
        worker_id: str,
        channels: Sequence[str],
        batch: int,
    ) -> Sequence[J_co]: ...


@dataclass(frozen=True)
class _Outbox(Generic[J]):
    """One kind of message ``dispatch_due`` sends exactly once: where its rows are, and its words.

    Attributes:
        name: names the outbox's buffer of unrecorded sends.
        ledger: the claims of its table, on a unit of work.
        claim: its repository's claim of due messages, on a unit of work.
        skip_stale: skips what must not go out any more, at (now, stale_before); returns how many.
        message: (kind, text) of a claimed message; the text is made only when sent, from the marks' unit of work.
    """

    name: str
    ledger: Callable[[UnitOfWork], Ledger]
    claim: Callable[[UnitOfWork], _Claim[J]]
    skip_stale: Callable[[UnitOfWork, datetime, datetime], int]
    message: Callable[[UnitOfWork, J, KnowledgeBase, date], tuple[str, Callable[[], str]]]


def _reminder_message(
    marks: UnitOfWork, delivery: ClaimedDelivery, kb: KnowledgeBase, today: date
) -> tuple[str, Callable[[], str]]:
    """A renewal reminder's kind and text."""
    return KIND, lambda: reminder_text(
        kb,
        expiry=delivery.expiry_date,
        offset_days=delivery.offset_days,
        municipality=delivery.municipality,
        today=today,
    )


def _notice_message(
    marks: UnitOfWork, notice: ClaimedNotice, kb: KnowledgeBase, today: date
) -> tuple[str, Callable[[], str]]:
    """A cost-log message's kind and text, from the user's log and profile as they are now."""

    def text() -> str:
        entries = marks.cost_log.entries(notice.user_key)
        profile = marks.conversations.load_state(notice.user_key).profile
        return message_text(kb, notice.kind, notice.month, entries, profile, today)

    return f"costlog-{notice.kind}", text


# Sent in this order, through the same claims, hours and senders.
_OUTBOXES: tuple[_Outbox[Any], ...] = (
    _Outbox[ClaimedDelivery](
        name="reminders",
        ledger=lambda uow: uow.reminders,
        claim=lambda uow: uow.reminders.claim_deliveries,
        skip_stale=lambda uow, now, stale_before: uow.reminders.skip_stale_deliveries(
            now=now, stale_before=stale_before
        ),
        message=_reminder_message,
    ),
    # The cost log's messages: the monthly nudge, and the one that says a rule is met.
    _Outbox[ClaimedNotice](
        name="cost-log",
        ledger=lambda uow: uow.cost_log,
        claim=lambda uow: uow.cost_log.claim_notices,
        skip_stale=lambda uow, now, stale_before: uow.cost_log.skip_stale_nudges(now),
        message=_notice_message,
    ),
)

# One buffer of unrecorded sends per database (a process may hold several stores, e.g. in tests)
# and outbox.
_UNRECORDED: weakref.WeakKeyDictionary[Store, dict[str, UnrecordedSends]] = weakref.WeakKeyDictionary()
_UNRECORDED_LOCK = threading.Lock()


def _unrecorded(store: Store) -> dict[str, UnrecordedSends]:
    with _UNRECORDED_LOCK:
        if store not in _UNRECORDED:
            _UNRECORDED[store] = {outbox.name: UnrecordedSends(outbox.ledger) for outbox in _OUTBOXES}
        return _UNRECORDED[store]


@dataclass(frozen=True)
class _Run:
    """One ``dispatch_due`` run: its moment, senders and limits."""

    store: Store
    now: datetime
    senders: Mapping[str, Sender]
    worker_id: str
    batch: int
    kb: KnowledgeBase
    lease: timedelta
    max_attempts: int
    started: float  # time.monotonic() at the start

    @property
    def channels(self) -> list[str]:
        return sorted(self.senders)

    @property
    def today(self) -> date:
        return self.now.astimezone(TOKYO).date()

    def moment(self) -> datetime:
        """The run's ``now`` advanced by the time the run has taken: claims and sends are stamped
        accurately without reading the wall clock here."""
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def stale_before(self) -> datetime:
        """Claims made before this belong to a dispatcher that died."""
        return self.moment() - self.lease


def dispatch_due(
    store: Store,
    now: datetime,
    senders: Mapping[str, Sender],
    *,
    worker_id: str,
    batch: int = DEFAULT_BATCH,
    kb: KnowledgeBase | None = None,
    lease: timedelta = LEASE,
    max_attempts: int = MAX_ATTEMPTS,
) -> DispatchSummary:
    """Send every reminder and cost-log message due at ``now`` once, through ``senders[channel]``.

    Outside 09:00–20:00 Japan time nothing is sent (the marks wait for the next allowed
    run). Otherwise, for each outbox (reminders, then the cost log's messages): stale
    messages are skipped, then due ones are claimed ``batch`` at a time and sent; a failure
    is recorded and retried later with exponential backoff, and given up after
    ``max_attempts``. Messages on a channel with no sender stay pending. Run twice for the
    same ``now``, the second run sends nothing.

    Args:
        store: the database.
        now: the moment to dispatch for, timezone-aware.
        senders: channel name ("line", "slack", "json", "console") → sender.
        worker_id: names this dispatcher in its claims; unique per process.
        batch: messages claimed per transaction.
        kb: the knowledge base for the message text (default: the default prefecture's).
        lease: how long a claim protects a message from other dispatchers.
        max_attempts: attempts before a message is marked failed for good.

    Returns:
        The counts of this run.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    started = time.monotonic()
    channels = sorted(senders)
    for unrecorded in _unrecorded(store).values():
        unrecorded.record(store)  # sends of an earlier run the database could not take at the time
    if not in_sending_hours(now):
        # Quiet hours: nobody gets a reminder at night; due marks go out at 09:00.
        with store.unit_of_work() as uow:
            counts = uow.reminders.count_pending(now=now, channels=channels)
        log.debug("reminders quiet hours worker=%s due_waiting=%d", worker_id, counts.due)
        return DispatchSummary(not_due=counts.not_due + counts.due, no_sender=counts.no_sender, quiet=True)

    run = _Run(
        store=store,
        now=now,
        senders=senders,
        worker_id=worker_id,
        batch=batch,
        kb=kb or _knowledge(Settings.prefecture),
        lease=lease,
        max_attempts=max_attempts,
        started=started,
    )
    outcomes: Counter[str] = Counter()
    skipped = 0
    for outbox in _OUTBOXES:
        with store.unit_of_work() as uow:
            skipped += outbox.skip_stale(uow, now, run.stale_before())
        _drain(outbox, run, outcomes)
    with store.unit_of_work() as uow:
        counts = uow.reminders.count_pending(now=now, channels=channels)
    summary = DispatchSummary(
        sent=outcomes["sent"],
        failed=outcomes["failed"] + outcomes["gave_up"],
        skipped=skipped,
        not_due=counts.not_due,
        no_sender=counts.no_sender,
        gave_up=outcomes["gave_up"],
        lost=outcomes["lost"],
    )
    _log_summary(summary, run)
    return summary


def _drain(outbox: _Outbox[J], run: _Run, outcomes: Counter[str]) -> None:
    """Claim the outbox's due messages ``run.batch`` at a time, and send each once."""
    while True:
        with run.store.unit_of_work() as uow:  # committed before the first send
            claimed = outbox.claim(uow)(
                now=run.now,
                stale_before=run.stale_before(),
                claimed_at=run.moment(),
                worker_id=run.worker_id,
                channels=run.channels,
                batch=run.batch,
            )
        if not claimed:
            return
        _send_batch(outbox, claimed, run, outcomes)
        if len(claimed) < run.batch:
            return


def _send_batch(outbox: _Outbox[J], claimed: Sequence[J], run: _Run, outcomes: Counter[str]) -> None:
    """Send one batch of claimed messages, each mark committed on its own right after its send."""
    claim_started = time.monotonic()
    unrecorded = _unrecorded(run.store)[outbox.name]
    # One held connection for the batch.
    with run.store.autocommit() as marks:
        ledger = outbox.ledger(marks)
        for index, job in enumerate(claimed):
            if time.monotonic() - claim_started > run.lease.total_seconds() / 2:
                # This batch is slow to send: give the rest back long before our lease could
                # run out, or another dispatcher would take them over while we still send.
                ledger.release_claims([j.id for j in claimed[index:]], run.worker_id)
                return
            kind, text = outbox.message(marks, job, run.kb, run.today)
            outcomes[
                send_claimed(
                    ledger,
                    job,
                    run.senders[job.channel],
                    text,
                    kind=kind,
                    worker_id=run.worker_id,
                    moment=run.moment,
                    max_attempts=run.max_attempts,
                    unrecorded=unrecorded,
                )
            ] += 1


def _log_summary(summary: DispatchSummary, run: _Run) -> None:
    # The scheduler runs this every minute: a run that did nothing is not worth an INFO line.
    # Due reminders on a channel nobody here can send on stay pending and are counted here.
    busy = summary.sent or summary.failed or summary.skipped or summary.lost or summary.no_sender
    log.log(
        logging.INFO if busy else logging.DEBUG,
        "reminders dispatched worker=%s sent=%d failed=%d gave_up=%d skipped=%d lost=%d "
        "no_sender=%d channels=%s ms=%.0f",
        run.worker_id,
        summary.sent,
        summary.failed,
        summary.gave_up,
        summary.skipped,
        summary.lost,
        summary.no_sender,
        ",".join(run.channels) or "-",
        (time.monotonic() - run.started) * 1000,
    )


def send_claimed(
    ledger: Ledger,
    job: Job,
    sender: Sender,
    text: Callable[[], str],
    *,
    kind: str,
    worker_id: str,
    moment: Callable[[], datetime],
    max_attempts: int,
    unrecorded: UnrecordedSends,
) -> str:
    """Send one claimed message and record the outcome: "sent", "failed", "gave_up" or "lost".

    The text is made inside the attempt: a message that cannot be worded counts as a failed send.

    Raises:
        DBAPIError: the database went away; a send that went out is kept in ``unrecorded``.
    """
    try:
        sender.send(job.user, text(), kind, job.key)
    except Exception as exc:  # any sender failure: record, retry later; never lose or duplicate
        final = job.attempts >= max_attempts
        retry_at = None if final else moment() + retry_delay(job.attempts)
        ledger.mark_failed(job.id, worker_id, type(exc).__name__, retry_at)
        # The exception's text may quote the message or the user: only its type is logged.
        log.warning(
            "%s send failed id=%d attempt=%d/%d error=%s user=%s final=%s",
            kind,
            job.id,
            job.attempts,
            max_attempts,
            type(exc).__name__,
            hash_user(job.user_key),
            final,
        )
        return "gave_up" if final else "failed"
    sent_at = moment()
    try:
        recorded = ledger.mark_sent(job.id, worker_id, sent_at)
    except DBAPIError:
        unrecorded.add(job.id, worker_id, sent_at)
        log.error("%s sent but not recorded (database error) id=%d: recorded at the next run", kind, job.id)
        raise
    if not recorded:
        log.warning("%s claim lost before it was marked id=%d user=%s", kind, job.id, hash_user(job.user_key))
        return "lost"
    return "sent"


# --- entry points --------------------------------------------------------------------------------


def now_tokyo() -> datetime:
    """The current time in Japan (read only by the entry points)."""
    return datetime.now(TOKYO)


def parse_now(text: str | None, clock: Callable[[], datetime] = now_tokyo) -> datetime:
    """``--now``: an ISO-8601 moment; without an offset it is Japan time. None: the clock.

    Raises:
        ValueError: the text is not an ISO-8601 date or date-time.
    """
    if text is None or not text.strip():
        return clock().astimezone(TOKYO)
    value = datetime.fromisoformat(text.strip())
    if value.utcoffset() is None:
        value = value.replace(tzinfo=TOKYO)
    return value.astimezone(TOKYO)


def run_due_main(args: argparse.Namespace, settings: Settings) -> int:
    """``nanbyo-bot reminders run-due [--now ISO]``: dispatch once, JSON lines then a summary line.

    Console and ``--json`` users get their reminders as JSON lines on stdout. LINE and
    Slack users are reached by the server's scheduler, which has their clients; here
    their due reminders stay pending and are counted as waiting for a channel.
    """
    from bot.storage.db import make_engine

    try:
        now = parse_now(getattr(args, "now", None))
    except ValueError:
        print(
            f"error: --now must be an ISO-8601 date-time such as 2027-01-30T09:00+09:00, got {args.now!r}",
            file=sys.stderr,
        )
        return 2
    store = Store(make_engine(settings.database_url))
    console = ConsoleSender(sys.stdout)
    summary = dispatch_due(
        store,
        now,
        {"console": console, "json": console},
        worker_id=default_worker_id(),
        kb=_knowledge(settings.prefecture),
    )
    print(summary.line(), flush=True)
    return 0


def start_scheduler(
    settings: Settings,
    senders: Mapping[str, Sender],
    *,
    clock: Callable[[], datetime] = now_tokyo,
    store: Store | None = None,
) -> BackgroundScheduler:
    """Start a background scheduler whose only job runs ``dispatch_due`` every minute.

    The job store is in memory and keeps nothing of its own: all state is in the
    reminder tables, so several ``serve`` processes may each run one (claims keep them
    from sending twice) and a restart loses nothing. The first run is at once, which
    catches up after downtime. The caller shuts it down (``scheduler.shutdown()``).

    Args:
        settings: database URL and prefecture.
        senders: channel name → sender (e.g. the LINE and Slack senders of the server).
        clock: returns the current time (tests pass a fixed one).
        store: the store to use (default: one on ``settings.database_url``).

    Returns:
        The started scheduler.
    """
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.storage.db import make_engine

    store = store or Store(make_engine(settings.database_url))
    kb = _knowledge(settings.prefecture)
    worker_id = default_worker_id()
    frozen_senders = dict(senders)

    def tick() -> None:
        try:
            dispatch_due(store, clock(), frozen_senders, worker_id=worker_id, kb=kb)
        except Exception:  # the next tick tries again; claims make that safe
            log.exception("reminder dispatch failed worker=%s", worker_id)

    scheduler = BackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        timezone=TOKYO,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    )
    # Explicit id + replace_existing: adding the job again never makes a second copy.
    # The first run is now (by the scheduler's own clock), to catch up after downtime.
    scheduler.add_job(tick, "interval", minutes=1, id=JOB_ID, replace_existing=True, next_run_time=datetime.now(TOKYO))
    scheduler.start()
    log.info("reminder scheduler started worker=%s channels=%s", worker_id, ",".join(sorted(frozen_senders)) or "-")
    return scheduler


__all__ = [
    "ConsoleSender",
    "DispatchSummary",
    "Job",
    "LEASE",
    "Ledger",
    "MAX_ATTEMPTS",
    "Sender",
    "UnrecordedSends",
    "default_worker_id",
    "dispatch_due",
    "parse_now",
    "retry_delay",
    "run_due_main",
    "send_claimed",
    "start_scheduler",
]
