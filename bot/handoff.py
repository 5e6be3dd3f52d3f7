"""A person to reach: hand-off notes to the staff's Slack channel, and the staff's replies to the user.

What this is: ``HandoffDesk``, built where ``STAFF_SLACK_CHANNEL`` (and ``SLACK_BOT_TOKEN``) is set:

- ``post_notes``: a note the user agreed to (``handlers.handoff``; a ``handoff`` row queued in the
  turn's transaction) is claimed, posted to the staff channel with ``chat.postMessage`` and marked
  with the message's ``ts``, which is the thread the staff answer in. The note's text is deleted
  once posted.
- ``take(body)``: the Slack intake hands it every verified payload first; a message in the staff
  channel is the desk's. A staff member's reply in a hand-off's thread is recorded (``handoff_reply``,
  unique per Slack message ``channel:ts``) before the ack, so a reply Slack delivers twice is one
  row; other messages of the staff channel are ignored (the bot does not answer staff).
- ``deliver_replies``: each recorded reply is claimed and sent to the user on their channel (Slack
  DM, LINE push) through the reminders' senders and ``bot.reminders.send_claimed``, prefixed ``FROM_STAFF``, with
  the key ``handoff-reply-<id>`` (LINE: ``X-Line-Retry-Key``, so a resend after a crash is not a
  second message). Its text is deleted once sent or given up; the row stays as the audit (who,
  when, which hand-off, when sent) until the hand-off's retention ends.

``kick`` runs both in a background thread (after a consenting turn commits, after a staff reply is
recorded); ``serve``'s scheduler runs ``tick`` every ``POLL_SECONDS`` for retries and the purge.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from bot.channels.slack import to_plain
from bot.config import Settings
from bot.reminders import LEASE, MAX_ATTEMPTS, Sender, UnrecordedSends, default_worker_id, send_claimed
from bot.storage.handoff import ClaimedNote, ClaimedReply
from bot.storage.repositories import Store
from handlers.handoff import FROM_STAFF
from nlp.privacy import hash_user

log = logging.getLogger("nanbyo.handoff")

POLL_SECONDS = 15
KIND = "handoff-reply"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _StaffChannel:
    """The staff channel as a ``Sender`` of notes: posts, and remembers the ``ts`` of each post."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.posted: dict[str, str] = {}

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        response = self.client.chat_postMessage(channel=user, text=text, unfurl_links=False)
        self.posted[key] = str(response["ts"])


def staff_reply(body: Mapping[str, Any], staff_channel: str) -> tuple[bool, dict[str, str] | None]:
    """(whether the payload is the staff channel's, the reply it carries or None). Pure.

    A reply is a person's plain message (no bot, no edit or deletion) in a thread of the channel."""
    if body.get("type") != "event_callback":
        return False, None
    event = body.get("event") or {}
    if event.get("channel") != staff_channel:
        return False, None
    if event.get("type") != "message" or event.get("bot_id") or not event.get("user"):
        return True, None
    if event.get("subtype") not in (None, "thread_broadcast"):
        return True, None
    thread, ts = event.get("thread_ts"), event.get("ts")
    if not thread or not ts or thread == ts:
        return True, None
    text = to_plain(str(event.get("text") or ""))
    if not text:
        return True, None
    return True, {"thread": str(thread), "ts": str(ts), "user": str(event["user"]), "text": text}


class HandoffDesk:
    """The hand-off's sending side (see the module docstring).

    Args:
        settings: ``staff_slack_channel`` and the Slack token (for the staff channel's client).
        store: the database.
        senders: channel → sender for the staff's replies (the outboxes); set later by the wiring.
        client: the Slack Web API client of the staff channel (default: one from the settings).
    """

    def __init__(
        self, settings: Settings, store: Store, senders: Mapping[str, Sender] | None = None, client: Any = None
    ) -> None:
        if not settings.staff_slack_channel:
            raise ValueError("a hand-off desk needs STAFF_SLACK_CHANNEL")
        self.staff_channel = settings.staff_slack_channel
        self.settings = settings
        self.store = store
        self.senders: dict[str, Sender] = dict(senders or {})
        if client is None:  # made now: a kick's thread may run while the process ends (no imports then)
            from bot.channels.slack import make_web_client

            client = make_web_client(settings)
        self.client = client
        self.worker_id = default_worker_id()
        self._unrecorded_notes = UnrecordedSends(lambda uow: uow.handoffs.notes)
        self._unrecorded_replies = UnrecordedSends(lambda uow: uow.handoffs.replies)
        self._lock = threading.Lock()
        self._again = threading.Event()

    # --- in: the Slack intake ------------------------------------------------------------------

    def take(self, body: Mapping[str, Any]) -> bool:
        """Whether the payload was the staff channel's (then the bot does not answer it); a staff
        reply in a hand-off's thread is recorded first, once per Slack message.

        Raises:
            RuntimeError: the reply could not be recorded (the database is away): the intake
                answers 503 and Slack delivers the event again.
        """
        ours, reply = staff_reply(body, self.staff_channel)
        if reply is None:
            return ours
        try:
            with self.store.unit_of_work() as uow:
                taken = uow.handoffs.take_reply(
                    staff_channel=self.staff_channel,
                    thread_ts=reply["thread"],
                    ts=reply["ts"],
                    staff_user=reply["user"],
                    text=reply["text"],
                    now=_utcnow(),
                )
        except Exception as exc:
            raise RuntimeError("staff reply not recorded") from exc
        log.info("handoff staff reply %s", {True: "recorded", False: "duplicate", None: "no-handoff"}[taken])
        if taken:
            self.kick()
        return True

    # --- out -------------------------------------------------------------------------------------

    def kick(self) -> None:
        """Run the desk now on a thread of its own (a run in progress runs once more afterwards)."""
        # Not a daemon: a process that ends (the terminal chat) still posts the note it just queued.
        threading.Thread(target=self._kicked, name="handoff-desk", daemon=False).start()

    def _kicked(self) -> None:
        self._again.set()
        if not self._lock.acquire(blocking=False):
            return  # the running pass sees the flag and goes again
        try:
            while self._again.is_set():
                self._again.clear()
                self.tick()
        finally:
            self._lock.release()

    def tick(self, now: datetime | None = None) -> tuple[int, int]:
        """Post the notes and deliver the replies due; never raises (the next tick tries again)."""
        try:
            return self.post_notes(now), self.deliver_replies(now)
        except Exception:
            log.exception("handoff desk failed worker=%s", self.worker_id)
            return 0, 0

    def post_notes(self, now: datetime | None = None) -> int:
        """Post every queued note to the staff channel once. Returns how many were posted."""
        now = now or _utcnow()
        self._unrecorded_notes.record(self.store)
        staff = _StaffChannel(self.client)
        with self.store.unit_of_work() as uow:
            notes = uow.handoffs.claim_notes(now=now, stale_before=now - LEASE, worker_id=self.worker_id)
        posted = 0
        for note in notes:
            posted += self._post(staff, note, now)
        return posted

    def _post(self, staff: _StaffChannel, note: ClaimedNote, now: datetime) -> int:
        with self.store.autocommit() as uow:
            outcome = send_claimed(
                uow.handoffs.notes,
                note,
                staff,
                lambda: note.note,
                kind="handoff-note",
                worker_id=self.worker_id,
                moment=lambda: now,
                max_attempts=MAX_ATTEMPTS,
                unrecorded=self._unrecorded_notes,
            )
            if outcome == "sent" and note.key in staff.posted:
                # Posted: its ts is the thread the staff answer in, and the note's text goes.
                uow.handoffs.record_thread(note.id, staff.posted[note.key])
        log.info("handoff note %s user=%s", outcome, hash_user(note.user_key))
        return outcome == "sent"

    def deliver_replies(self, now: datetime | None = None) -> int:
        """Send every recorded staff reply to its user once. Returns how many were sent."""
        now = now or _utcnow()
        self._unrecorded_replies.record(self.store)
        channels = sorted(self.senders)
        with self.store.unit_of_work() as uow:
            replies = uow.handoffs.claim_replies(
                now=now, stale_before=now - LEASE, worker_id=self.worker_id, channels=channels
            )
        sent = 0
        for reply in replies:
            sent += self._deliver(reply, now)
        return sent

    def _deliver(self, reply: ClaimedReply, now: datetime) -> int:
        words = f"{FROM_STAFF}\n{reply.text}"
        with self.store.autocommit() as uow:
            outcome = send_claimed(
                uow.handoffs.replies,
                reply,
                self.senders[reply.channel],
                lambda: words,
                kind=KIND,
                worker_id=self.worker_id,
                moment=lambda: now,
                max_attempts=MAX_ATTEMPTS,
                unrecorded=self._unrecorded_replies,
            )
        log.info("handoff reply %s channel=%s user=%s", outcome, reply.channel, hash_user(reply.user_key))
        if outcome != "sent":
            return 0
        self._mark_delivered(reply.staff_channel, reply.staff_ts, reply.channel)
        return 1

    def _mark_delivered(self, channel: str, thread: str, user_channel: str) -> None:
        """A courtesy to the staff: a short note in the thread that the reply reached the user."""
        try:
            self.client.chat_postMessage(
                channel=channel, thread_ts=thread, text=f"（利用者の{user_channel.upper()}に届けました）"
            )
        except Exception as exc:  # cosmetic: the reply went out
            log.info("handoff delivered-note failed error=%s", type(exc).__name__)


def start_polling(desk: HandoffDesk, scheduler: Any) -> None:
    """Add the desk's tick to ``serve``'s scheduler (retries, and notes a lost kick left queued)."""
    scheduler.add_job(desk.tick, "interval", seconds=POLL_SECONDS, id="handoff-desk", replace_existing=True)


__all__ = ["FROM_STAFF", "HandoffDesk", "POLL_SECONDS", "staff_reply", "start_polling"]
