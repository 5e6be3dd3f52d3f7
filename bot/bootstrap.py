"""Wiring: builds the knowledge base, matcher, storage and bot from settings.

The only place that decides which concrete pieces are used. Importing it does
nothing; call ``build_bot``.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

from bot.config import Settings
from bot.core import Bot
from bot.messages import IncomingMessage, Reply
from bot.nlp.matcher import Entry, Matcher
from bot.nlp.normalize import Synonyms, fold
from bot.storage.db import make_engine
from bot.storage.repositories import Store
from handlers import DEFAULT_FORMS
from knowledge import KnowledgeBase, load_knowledge


def build_matcher(kb: KnowledgeBase) -> Matcher:
    """The FAQ matcher over every topic: title and phrasings strong, answer weak."""
    synonyms = Synonyms((g.canonical, g.variants) for g in kb.synonyms)
    entries = [
        Entry(t.id, (t.title, *t.phrasings), tuple(t.keywords), t.answer) for t in kb.topics.values()
    ]
    return Matcher(entries, synonyms)


@lru_cache(maxsize=4)
def knowledge_and_matcher(prefecture: str) -> tuple[KnowledgeBase, Matcher]:
    """Loaded once per process: the knowledge base is read-only."""
    kb = load_knowledge(prefecture)
    return kb, build_matcher(kb)


def dialog_forms() -> tuple[dict, dict[str, tuple[str, ...]]]:
    """All dialogs and the phrases that start them."""
    forms = dict(DEFAULT_FORMS)
    starters: dict[str, tuple[str, ...]] = {}
    from handlers.copay import (
        COPAY_FORM,
        COPAY_STARTERS,
        MILD_FORM,
        MILD_STARTERS,
        START_DATE_FORM,
        START_DATE_STARTERS,
    )

    for form, phrases in ((COPAY_FORM, COPAY_STARTERS), (START_DATE_FORM, START_DATE_STARTERS), (MILD_FORM, MILD_STARTERS)):
        forms[form.name] = form
        starters[form.name] = tuple(fold(p) for p in phrases)
    try:
        from handlers.reminders import REMINDER_FORM, REMINDER_STARTERS
    except ImportError:
        pass
    else:
        forms[REMINDER_FORM.name] = REMINDER_FORM
        starters[REMINDER_FORM.name] = tuple(fold(p) for p in REMINDER_STARTERS)
    return forms, starters


def build_bot(settings: Settings, clock=None) -> Bot:
    kb, matcher = knowledge_and_matcher(settings.prefecture)
    store = Store(make_engine(settings.database_url))
    forms, starters = dialog_forms()
    kwargs = {"clock": clock} if clock is not None else {}
    return Bot(kb, matcher, store, forms, starters, reminder_offsets=settings.reminder_offsets_days, **kwargs)


class LazyBot:
    """A ``Bot`` whose knowledge base and matcher are built on first use, with its store at once.

    For ``serve`` when its turns run in a child process: the server process then only needs the
    database (``/healthz``) and never ranks a question, so it does not hold a second copy of the
    matcher (about 55 MiB beside the shared dictionary pages). Should a turn run here after all,
    it works: the real ``Bot`` is built then.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.store = Store(make_engine(settings.database_url))
        self._bot: Bot | None = None
        self._lock = threading.Lock()

    def _real(self) -> Bot:
        with self._lock:
            if self._bot is None:
                kb, matcher = knowledge_and_matcher(self._settings.prefecture)
                forms, starters = dialog_forms()
                self._bot = Bot(kb, matcher, self.store, forms, starters,
                                reminder_offsets=self._settings.reminder_offsets_days)
            return self._bot

    @property
    def built(self) -> bool:
        return self._bot is not None

    def handle(self, msg: IncomingMessage) -> list[Reply]:
        return self._real().handle(msg)

    def delete_user(self, user_key: str) -> int:
        return self._real().delete_user(user_key)


class _RequestIdFilter(logging.Filter):
    """Adds the current turn's request id to each record (``rid=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from bot.core import REQUEST_ID

        record.rid = REQUEST_ID.get()
        return True


def configure_logging(level: str = "WARNING") -> None:
    """Structured, text-free logs on stderr: time, level, logger, request id, key=value fields."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s rid=%(rid)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
