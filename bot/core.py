"""The core of a turn: guards, state, router, save. Channel-agnostic.

Where it stands in a turn's path: before it, the turn lane's runner (``bot.runner``) took a Slack or
LINE turn from the queue (the console calls ``Bot.answer`` itself); after it, the runner hands the
replies to the channel's outbox (``bot.outbox``). Within:

turn runner → ``Bot.answer(msg)`` → dedupe on event id → guards (empty, very
long, My Number) → load state → router → handler → save → replies.

Also the events that are not messages (``handlers.messages.FOLLOW``, ``UNFOLLOW``, ``HOME_OPENED``)
and the apology when a turn fails. Nothing here knows Slack or LINE. Message text is never
logged or stored.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from bot.storage.conversations import DuplicateEvent, StaleStateError
from bot.storage.cost_log import UserCostLog
from bot.storage.handoff import UserHandoffs
from bot.storage.models import utcnow
from bot.storage.reminders import UserReminders
from bot.storage.repositories import Store, UnitOfWork, checkpoint_sqlite
from bot.storage.statistics import UserQuestions
from bot.texts import (
    ATTACHMENT_NOTE,
    BAD_CHOICE_TEXT,
    DB_DOWN_TEXT,
    DIALOG_EXPIRED_TEXT,
    EMPTY_PREFIX,
    EMPTY_TEXT,
    ERROR_TEXT,
    HOME_CHOICES,
    HOME_TEXT,
    MENU_AND_OFFICE,
    MENU_ONLY,
    MY_NUMBER_TEXT,
    NOT_TEXT_IN_DIALOG,
    NOT_TEXT_TEXT,
    RATE_LIMIT_TEXT,
    WELCOME_TEXT,
    too_long_text,
)
from handlers import dialog
from handlers.base import Context, Form, text_of
from handlers.messages import FOLLOW, HOME_OPENED, UNFOLLOW, IncomingMessage, Reply
from handlers.ports import DeleteMyData, UserState
from handlers.routes import route, urgent, urgent_in
from handlers.safety import Detection
from knowledge import KnowledgeBase
from nlp.matcher import Matcher
from nlp.privacy import hash_user, looks_like_my_number
from nlp.text import Text

log = logging.getLogger("nanbyo.turn")

# The id of the turn being handled, added to every log line (see bootstrap.configure_logging).
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")

TOKYO = ZoneInfo("Asia/Tokyo")
MAX_CHARS = 1000
# Our own choice values are short ids ("yes", "start:copay"); a button value, a LINE postback or
# a JSON choice is still client input and gets a limit of its own.
MAX_CHOICE_CHARS = 100

# Lone surrogates (not encodable as UTF-8: the database and the tokenizer refuse them) and NUL
# (PostgreSQL text refuses it) become U+FFFD, so that any text, however odd, gets an answer.
_UNENCODABLE = re.compile("[\ud800-\udfff\x00]")


def end_expired_dialog(state: UserState, period: timedelta) -> bool:
    """End a dialog the user left more than ``period`` ago (``Retention.dialog``): its answers
    (income, dates) go. True when it did; the turn then says so kindly. The hourly sweep
    (``UnitOfWork.sweep_expired``) does the same for users who do not come back."""
    if state.dialog is None or state.updated_at is None:
        return False
    updated = state.updated_at if state.updated_at.tzinfo else state.updated_at.replace(tzinfo=timezone.utc)
    if utcnow() - updated <= period:
        return False
    state.dialog, state.slots = None, {}
    return True


def now_tokyo() -> datetime:
    return datetime.now(TOKYO)


def _encodable(value: str | None) -> str | None:
    return _UNENCODABLE.sub("\ufffd", value) if value else value


class AnswerKeeper(Protocol):
    """Where a turn's answer is kept: in the turn's own unit of work, just before it commits.

    The durable runner (``bot.runner``) stores the answer with the recorded turn, so that a turn
    run again after a crash delivers that answer rather than none (its event is claimed by then).
    """

    def keep(self, uow: UnitOfWork, replies: list[Reply]) -> None:
        """Store ``replies`` on ``uow``; called once per turn that commits, with [] for a silent one."""
        ...


class NothingKept:
    """The keeper of a turn nobody recorded (the console, the CLI, turns in memory only)."""

    def keep(self, uow: UnitOfWork, replies: list[Reply]) -> None:
        return None


NOT_KEPT = NothingKept()


@dataclasses.dataclass(frozen=True)
class _WelcomeKept:
    """A follow is answered by the menu turn: what is kept is the welcome made of its replies."""

    keeper: AnswerKeeper

    def keep(self, uow: UnitOfWork, replies: list[Reply]) -> None:
        self.keeper.keep(uow, _welcome(replies))


def _welcome(replies: list[Reply]) -> list[Reply]:
    """The LINE welcome, with the menu's choices (the last reply of the menu turn)."""
    return [Reply(WELCOME_TEXT, choices=replies[-1].choices, kind="welcome")] if replies else []


class Bot:
    """One assistant, whatever the channel.

    Args:
        kb: the knowledge base.
        matcher: the FAQ matcher built over ``kb``.
        store: where conversation state lives.
        forms: dialogs by name (office, delete, copay, reminder …).
        clock: returns the current time in Asia/Tokyo; tests pass a fixed one.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: Matcher,
        store: Store,
        forms: dict[str, Form],
        clock: Callable[[], datetime] = now_tokyo,
        reminder_offsets: tuple[int, ...] = (60, 30, 7),
        max_per_minute: int = 30,
        staff_channel: str | None = None,
    ) -> None:
        self.max_per_minute = max_per_minute
        # A person to reach (bot.handoff): the staff Slack channel of hand-off notes, None without one;
        # ``on_handoff`` is called after a turn that queued a note has committed (the desk posts it).
        self.staff_channel = staff_channel
        self.on_handoff: Callable[[], None] | None = None
        self.kb = kb
        self.matcher = matcher
        self.store = store
        self.forms = forms
        self.clock = clock
        self.reminder_offsets = reminder_offsets
        # Where recorded turns wait (set by the turn runner that takes them): a deletion removes the
        # user's waiting turns too (a reply waiting for Slack or LINE to come back holds its text).
        self.turn_queue: Store | None = None

    def answer(self, msg: IncomingMessage, keeper: AnswerKeeper = NOT_KEPT) -> list[Reply]:
        """``handle``, with an apology instead of an exception: what every channel's turn calls."""
        try:
            return self.handle(msg, keeper)
        except Exception:  # the user gets an apology; the log names the error, never the text
            log.exception("turn failed channel=%s user=%s", msg.channel, hash_user(msg.user_key))
            return [Reply(ERROR_TEXT, kind="error")]

    def handle(self, msg: IncomingMessage, keeper: AnswerKeeper = NOT_KEPT) -> list[Reply]:
        """Answer one incoming message or event. Returns [] for an event already handled.

        ``keeper`` gets the turn's unit of work and its replies just before the turn commits: the
        durable turn runner (``bot.runner``) stores the answer with the turn, so that a turn re-run
        after a crash posts the same answer rather than none.
        """
        if msg.event == HOME_OPENED:  # the same for everyone: nothing to read or store
            return [Reply(HOME_TEXT, choices=HOME_CHOICES, kind="home")]
        if msg.event == UNFOLLOW:  # blocked: nothing can be sent any more, and what we kept goes
            self.delete_user(msg.user_key, unfollowed=True)
            return []
        if msg.event == FOLLOW:
            with self.store.unit_of_work() as uow:  # unblocked: their turns are run again
                uow.clear_unfollowed(msg.user_key)
            # Through the menu turn, so that a redelivered follow greets once; its choices are the menu's.
            menu = dataclasses.replace(msg, event=None, choice="menu", text=None)
            return _welcome(self.handle(menu, _WelcomeKept(keeper)))
        started = time.perf_counter()
        REQUEST_ID.set(uuid.uuid4().hex[:12])
        if _UNENCODABLE.search(msg.text or "") or _UNENCODABLE.search(msg.choice or ""):
            msg = dataclasses.replace(msg, text=_encodable(msg.text), choice=_encodable(msg.choice))
        text = Text(text_of(msg))  # the message's forms, folded and read once for the whole turn
        for attempt in range(3):
            try:
                name, replies = self._turn(msg, text, keeper)
                break
            except DuplicateEvent:
                log.info("duplicate event channel=%s user=%s", msg.channel, hash_user(msg.user_key))
                return []
            except StaleStateError:
                # Another turn of this user saved first (two messages at once): redo on fresh state.
                if attempt == 2:
                    raise
            except DBAPIError:
                # The database is away for a moment: the unit of work rolled back, so nothing is
                # half-written; the user gets an apology and the next message works again.
                log.exception("database unavailable channel=%s user=%s", msg.channel, hash_user(msg.user_key))
                return [Reply(DB_DOWN_TEXT, kind="error")]
        log.info(
            "turn channel=%s user=%s route=%s topics=%s ms=%.1f",
            msg.channel,
            hash_user(msg.user_key),
            name,
            ",".join(r.topic for r in replies if r.topic) or "-",
            (time.perf_counter() - started) * 1000,
        )
        return replies

    def _turn(self, msg: IncomingMessage, text: Text, keeper: AnswerKeeper) -> tuple[str, list[Reply]]:
        """One unit of work: the turn's steps, then its answer kept (``keeper``) and all committed."""
        with self.store.unit_of_work() as uow:
            name, replies = self._steps(uow, msg, text)
            keeper.keep(uow, replies)
            return name, replies

    def _steps(self, uow: UnitOfWork, msg: IncomingMessage, text: Text) -> tuple[str, list[Reply]]:
        """Claim the event, count it against the flood limit, load the state, reply, save."""
        if msg.channel == "line" and uow.unfollowed(msg.user_key):
            # Recorded before the user blocked the bot, run after the deletion: dropped before
            # anything (event claim, flood window, state) is written about them again.
            return "unfollowed", []
        uow.sweep_expired(utcnow())
        if msg.event_id:
            uow.conversations.claim_event(msg.channel, msg.event_id, msg.user_key)
        now = self.clock()
        sent = uow.conversations.count_message(msg.user_key, now)
        # Safety first: an emergency or a crisis is answered in every state, before the flood
        # limit and the guards (a My Number, a very long text), and the dialog stays where it was.
        found = urgent_in(msg, text, self.kb)
        if sent > self.max_per_minute and found is None:
            return self._flooded(sent)
        state = uow.conversations.load_state(msg.user_key)
        expired = end_expired_dialog(state, self.store.retention.dialog)
        ctx = self.context(uow, msg, state, now, text)
        name, replies = self._reply(msg, ctx, found)
        if expired and found is None:
            replies = [Reply(DIALOG_EXPIRED_TEXT, kind="dialog-expired"), *replies]
        if any(isinstance(effect, DeleteMyData) for effect in ctx.effects):
            uow.delete_user(msg.user_key)  # and the state is not saved again
        else:
            uow.conversations.save_state(state)
        return name, replies

    def _flooded(self, sent: int) -> tuple[str, list[Reply]]:
        """A flood from one user (or a stuck client): one polite notice per window, then silence
        until the window ends; nothing else is touched."""
        if sent == self.max_per_minute + 1:
            return "rate-limited", [Reply(RATE_LIMIT_TEXT, kind="rate-limited")]
        return "rate-limited-quiet", []

    def _reply(self, msg: IncomingMessage, ctx: Context, found: Detection | None) -> tuple[str, list[Reply]]:
        """The turn's replies: an emergency's, a guard's (``_guard``), or the router's."""
        if found is not None:
            replies = urgent(msg, ctx, found)
            if msg.my_number or looks_like_my_number(msg.text or ""):  # read for safety only, never kept
                replies.insert(1, Reply(MY_NUMBER_TEXT, kind="mynumber"))
            return "urgent", replies
        guarded = self._guard(msg, ctx)
        if guarded is not None:
            return guarded
        name, replies = route(msg, ctx)
        if msg.attachment and msg.choice is None:  # text with a photo or file: say what was read
            replies = [Reply(ATTACHMENT_NOTE, kind="attachment-note"), *replies]
        return name, replies

    def context(
        self, uow: UnitOfWork, msg: IncomingMessage, state: UserState, now: datetime, text: Text | None = None
    ) -> Context:
        """What the handlers get for the turn of ``msg``: its text's forms and its user's ports on ``uow``, no more."""
        return Context(
            kb=self.kb,
            matcher=self.matcher,
            state=state,
            now=now,
            channel=msg.channel,
            user=msg.user,
            reminders=UserReminders(uow.reminders, msg.channel, msg.user, msg.user_key),
            cost_log=UserCostLog(uow.cost_log, msg.channel, msg.user_key),
            text=Text(text_of(msg)) if text is None else text,
            questions=UserQuestions(uow.statistics, msg.user_key),
            forms=self.forms,
            reminder_offsets=self.reminder_offsets,
            handoff=None
            if self.staff_channel is None
            else UserHandoffs(
                uow.handoffs,
                channel=msg.channel,
                user=msg.user,
                user_key=msg.user_key,
                now=now.astimezone(timezone.utc),
                keep=self.store.retention.handoff_recent,
                staff_channel=self.staff_channel,
                after_commit=uow.after_commit,
                on_open=self.on_handoff,
            ),
        )

    def delete_user(self, user_key: str, *, unfollowed: bool = False) -> int:
        """Delete everything stored about a user. Returns rows removed. ``unfollowed`` (a LINE
        unfollow) leaves a tombstone too (``UnfollowedUser``), in the same transaction."""
        with self.store.unit_of_work() as uow:
            removed = uow.delete_user(user_key)
            if unfollowed:
                uow.mark_unfollowed(user_key)
        if self.turn_queue is not None:
            with self.turn_queue.unit_of_work() as uow:
                turns = uow.turns.forget_user_turns(user_key)
            if turns:
                with self.store.unit_of_work() as uow:
                    uow.turns.forget_turn_answers(turns)
                engine = self.turn_queue.engine
                if engine.dialect.name == "sqlite":
                    checkpoint_sqlite(engine)  # no copy of the text left in the queue's -wal
            removed += len(turns)
        log.info("deleted user=%s rows=%d", hash_user(user_key), removed)
        return removed

    def _guard(self, msg: IncomingMessage, ctx: Context) -> tuple[str, list[Reply]] | None:
        """Empty, very long and My Number messages never reach the router; the state is kept.

        Choices (button values, LINE postbacks, JSON ``choice``) come from the client too: they
        get the My Number check and a length limit of their own.
        """
        pending = ctx.forms.get(ctx.state.dialog or "")
        if msg.my_number or looks_like_my_number(msg.choice if msg.choice is not None else msg.text or ""):
            replies = [Reply(MY_NUMBER_TEXT, kind="mynumber")]
            if pending:
                replies += dialog.ask(pending, ctx)
            return "mynumber", replies
        if msg.choice is not None:
            if len(msg.choice) <= MAX_CHOICE_CHARS:
                return None
            if pending:
                return "bad-choice", dialog.ask(pending, ctx, prefix=BAD_CHOICE_TEXT)
            return "bad-choice", [Reply(BAD_CHOICE_TEXT, choices=MENU_ONLY, kind="bad-choice")]
        text = msg.text or ""
        if msg.attachment and not text.strip():
            if pending:
                return "not-text", dialog.ask(pending, ctx, prefix=NOT_TEXT_IN_DIALOG)
            return "not-text", [Reply(NOT_TEXT_TEXT, choices=MENU_AND_OFFICE, kind="not-text")]
        if not text.strip():
            if pending:
                return "empty", dialog.ask(pending, ctx, prefix=EMPTY_PREFIX)
            return "empty", [Reply(EMPTY_TEXT, choices=MENU_AND_OFFICE, kind="empty")]
        if len(text) > MAX_CHARS:
            note = too_long_text(len(text), MAX_CHARS)
            if pending:
                return "too-long", dialog.ask(pending, ctx, prefix=note)
            return "too-long", [Reply(note, choices=MENU_ONLY, kind="too-long")]
        return None
