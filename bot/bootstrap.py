"""Wiring: builds the knowledge base, matcher, storage, bot, outboxes, turn runner and channels
from settings, and the process's logging.

The only place that decides which concrete pieces are used: ``serve`` (``bot.server``), the CLI
and the tests all build through here. Importing it does nothing; call ``build_bot`` (the core
alone) or ``build_service`` (everything ``serve`` runs).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from bot.config import Settings
from bot.core import Bot, now_tokyo
from bot.storage.db import make_engine
from bot.storage.repositories import Store
from bot.storage.statistics import Retention
from handlers.base import Form
from handlers.routes import DEFAULT_FORMS
from knowledge import KnowledgeBase, load_knowledge
from nlp.matcher import Entry, Matcher
from nlp.normalize import Synonyms


def build_matcher(kb: KnowledgeBase) -> Matcher:
    """The FAQ matcher over every topic: title and phrasings strong, answer weak."""
    synonyms = Synonyms((g.canonical, g.variants) for g in kb.synonyms)
    entries = [Entry(t.id, (t.title, *t.phrasings), tuple(t.keywords), t.answer) for t in kb.topics.values()]
    # The bot's actions and the services next door are ranked with the topics (one matcher).
    entries += [Entry(f"action:{a.id}", (a.label, *a.commands, *a.phrasings), tuple(a.keywords)) for a in kb.actions]
    entries += [
        Entry(f"service:{r.id}", tuple(r.phrasings) or tuple(r.words), tuple(r.keywords) or tuple(r.words))
        for r in kb.services
    ]
    # Whole-word typos (受給者症, 交新) are spelled as the knowledge base's words, its synonyms included.
    return Matcher(entries, synonyms, respell=[w for g in kb.synonyms for w in (g.canonical, *g.variants)])


@lru_cache(maxsize=4)
def knowledge_and_matcher(prefecture: str) -> tuple[KnowledgeBase, Matcher]:
    """Loaded once per process: the knowledge base is read-only."""
    kb = load_knowledge(prefecture)
    return kb, build_matcher(kb)


def dialog_forms() -> dict[str, Form]:
    """All dialogs, by name (the actions of knowledge/actions.yaml start them)."""
    from handlers.copay import COPAY_FORM, MILD_FORM, START_DATE_FORM
    from handlers.cost_log import COST_LOG_FORM
    from handlers.reminders import REMINDER_FORM

    forms = dict(DEFAULT_FORMS)
    for form in (COPAY_FORM, START_DATE_FORM, MILD_FORM, REMINDER_FORM, COST_LOG_FORM):
        forms[form.name] = form
    return forms


def retention(settings: Settings) -> Retention:
    """The retention periods the operator set (docs/privacy.md)."""
    return Retention(
        dialog_hours=settings.dialog_retention_hours,
        event_days=settings.event_retention_days,
        stats_days=settings.stats_retention_days,
        handoff_recent_minutes=settings.handoff_recent_minutes,
        handoff_days=settings.handoff_retention_days,
    )


def build_bot(settings: Settings, clock: Callable[[], datetime] | None = None) -> Bot:
    """The core on the configured database; ``clock`` (the time in Asia/Tokyo) is fixed by the tests."""
    kb, matcher = knowledge_and_matcher(settings.prefecture)
    store = Store(make_engine(settings.database_url), retention(settings))
    bot = Bot(
        kb,
        matcher,
        store,
        dialog_forms(),
        reminder_offsets=settings.reminder_offsets_days,
        clock=now_tokyo if clock is None else clock,
        staff_channel=settings.staff_slack_channel if settings.slack_bot_token else None,
    )
    if bot.staff_channel is not None:  # a hand-off note is posted once its turn has committed (bot.handoff)
        from bot.handoff import HandoffDesk

        desk = HandoffDesk(settings, store)
        bot.on_handoff = desk.kick
    return bot


@dataclass
class Service:
    """Everything a running bot is made of, as ``serve`` and the tests use it.

    Attributes:
        bot: the core; None in ``serve``'s HTTP processes (the turn process runs the turns).
        store: the database (``/healthz`` asks it).
        outboxes: the configured channels' outboxes by channel name (they send reminders too).
        runner: where the channels hand their turns (``bot.intake``).
        slack: the Slack intake when Slack is configured (over HTTP, or Socket Mode), else None.
        line: the LINE webhook when LINE is configured, else None.
    """

    bot: Bot | None
    store: Store
    outboxes: dict[str, Any]
    runner: Any
    slack: Any = None
    line: Any = None
    handoff: Any = None  # bot.handoff.HandoffDesk, where a staff Slack channel is configured

    def close(self) -> None:
        """Refuse new turns, finish those accepted, then close the outboxes' connections."""
        self.runner.close()
        for outbox in self.outboxes.values():
            close = getattr(outbox, "close", None)
            if close is not None:
                close()


def build_outboxes(settings: Settings) -> dict[str, Any]:
    """The outboxes of the configured channels: ``{"slack": SlackOutbox, "line": LineOutbox}``.

    They are also the reminder dispatcher's senders (``send(user, text, kind, key)``).
    """
    outboxes: dict[str, Any] = {}
    if settings.slack_bot_token:
        from bot.channels.slack import SlackOutbox

        outboxes["slack"] = SlackOutbox(settings)
    if settings.line_channel_secret and settings.line_channel_access_token:
        from bot.channels.line import LineOutbox

        outboxes["line"] = LineOutbox(settings)
    return outboxes


def build_service(
    settings: Settings,
    *,
    bot: Bot | None = None,
    pooled: bool = True,
    durable: bool = True,
    socket_mode: bool = False,
    threads: int = 8,
    record_only: bool = False,
) -> Service:
    """The bot, its outboxes, a turn runner and the configured channels' intakes.

    Args:
        settings: what is configured decides what is built.
        bot: a ready core (tests pass one with a fixed clock or a stand-in); default ``build_bot``.
        pooled: True to answer the request before the turn runs (``PooledRunner``: recorded,
            then run on a thread pool here), False to run each turn before the request is
            answered (``InlineRunner``).
        durable: with ``pooled``, record each turn in the database before the ack.
        socket_mode: Slack reaches the bot over Socket Mode (no signing secret needed).
        threads: turns a pooled runner runs at once.
        record_only: ``serve``'s HTTP processes: no core at all, the turns are recorded
            (``TurnRecorder``) for the turn process (``bot.turn_process``) to run.
    """
    from bot.intake import TurnRecorder
    from bot.storage.repositories import turn_queue
    from bot.turns import InlineRunner, PooledRunner

    outboxes = build_outboxes(settings)
    runner: Any
    if record_only:
        bot = None
        store = Store(make_engine(settings.database_url))
        runner = TurnRecorder(
            turn_queue(store, settings.database_url),
            limit=settings.turn_queue_limit,
            record_timeout=settings.record_timeout_seconds,
        )
    else:
        bot = bot or build_bot(settings)
        store = bot.store
        if pooled:
            runner = PooledRunner(
                bot,
                outboxes,
                store=bot.store if durable else None,
                database_url=settings.database_url,
                threads=threads,
                limit=settings.turn_queue_limit,
                lease=settings.turn_lease_seconds,
                record_timeout=settings.record_timeout_seconds,
                outbox_expiry=settings.outbox_expiry_seconds,
            )
        else:
            runner = InlineRunner(bot, outboxes)
    service = Service(bot, store, outboxes, runner)
    if settings.slack_bot_token and (settings.slack_signing_secret or socket_mode):
        from bot.channels.slack import SlackIntake

        service.slack = SlackIntake(settings, runner, outboxes["slack"].client, socket_mode=socket_mode)
    if settings.staff_slack_channel and "slack" in outboxes:
        # A person to reach: notes to the staff channel, the staff's replies to the users (bot.handoff).
        from bot.handoff import HandoffDesk

        service.handoff = HandoffDesk(settings, store, outboxes, client=outboxes["slack"].client)
        if bot is not None:
            bot.on_handoff = service.handoff.kick
        if service.slack is not None:
            service.slack.staff = service.handoff
    if "line" in outboxes:
        from bot.channels.line import LineWebhook

        service.line = LineWebhook(settings, runner)
    return service


class _RequestIdFilter(logging.Filter):
    """Adds the current turn's request id to each record (``rid=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from bot.core import REQUEST_ID

        record.rid = REQUEST_ID.get()
        return True


# Libraries that log what they receive or send: bolt logs a request that fails its signature
# check with the whole body (INFO), slack_sdk every API call's body (DEBUG), urllib3 and the LINE
# SDK their requests, SQLAlchemy statements with their parameters and result rows (INFO/DEBUG).
# Whatever LOG_LEVEL says, they speak only from WARNING up, and then redacted.
QUIET_LIBRARIES = (
    "slack_bolt",
    "slack_sdk",
    "slack",
    "linebot",
    "urllib3",
    "requests",
    "websocket",
    "sqlalchemy",
    "apscheduler",
    "uvicorn",
    "nanbyo.slack.bolt",
)

# What may identify a person even in a library's warning: Slack user ids (U/W + 8 or more),
# LINE user ids (U + 32 hex), e-mail addresses, and numbers of four digits or more.
_SLACK_ID = re.compile(r"\b[UW][A-Z0-9]{8,}\b")
_LINE_ID = re.compile(r"\bU[0-9a-f]{32}\b")
_EMAIL = re.compile(r"[^\s@'\"]+@[^\s@'\"]+")
_NUMBER = re.compile(r"[0-9](?:[\s\-_./,]?[0-9]){3,}")
# A payload a library quotes in its message: JSON / dict bodies, form bodies, quoted strings.
_BODY = re.compile(r"\{.*\}|\[.*\]|(?:body|payload|text|data)[=:]\s*\S.*", re.DOTALL)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def redact_log_text(text: str, *, library: bool) -> str:
    """A log message or traceback with nothing about a person left in it.

    Args:
        text: the formatted message (or exception text).
        library: True for a third-party logger, whose messages may quote bodies and message
            text: bodies and quoted strings go too. Our own messages carry only ids, kinds and
            durations; for them ids of people and My Number-like numbers are masked.
    """
    from nlp.privacy import fold_digits, looks_like_my_number

    if library:
        text = _BODY.sub("[withheld]", text)
        text = _QUOTED.sub("'…'", text)
        text = _NUMBER.sub("#", text)
    elif looks_like_my_number(text):
        text = _NUMBER.sub("#", fold_digits(text))
    text = _LINE_ID.sub("U…", text)
    text = _SLACK_ID.sub("U…", text)
    return _EMAIL.sub("…@…", text)


class RedactingFilter(logging.Filter):
    """The one redaction every log record of the process goes through (on the root handler).

    A record of ours is kept as it is, with ids of people and My Number-like numbers masked; a
    library's record is reduced to what cannot carry a body (see ``redact_log_text``).
    Exception text is redacted the same way.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        library = not record.name.startswith(("nanbyo.", "bot.", "handlers.")) or record.name.startswith(
            "nanbyo.slack.bolt"
        )
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string: keep the template only
            message = str(record.msg)
        record.msg = redact_log_text(message, library=library)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text, library=True)
        if record.stack_info:
            record.stack_info = redact_log_text(record.stack_info, library=True)
        return True


def configure_logging(level: str = "WARNING") -> None:
    """Structured, text-free logs on stderr: time, level, logger, request id, key=value fields.

    Every logger of the process — ours, slack_bolt, slack_sdk, linebot, urllib3, SQLAlchemy,
    APScheduler — ends at this one handler and its ``RedactingFilter``; the libraries in
    ``QUIET_LIBRARIES`` are held at WARNING or above, since below that they log bodies.
    """
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s rid=%(rid)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    wanted = getattr(logging, level.upper(), logging.WARNING)
    root.setLevel(wanted)
    for name in QUIET_LIBRARIES:
        library = logging.getLogger(name)
        library.setLevel(max(wanted, logging.WARNING))
        # A library that brought a handler of its own would bypass the redaction: its records
        # go to the root handler only.
        library.handlers[:] = []
        library.propagate = True
