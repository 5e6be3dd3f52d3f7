"""Delivering a turn's replies: the last step of a turn, in the turn lane.

Before: the runner (``bot.runner``) had the core (``bot.core``) answer a turn. Here ``deliver``
hands the replies to their channel's ``Outbox`` (``bot.channels.slack.SlackOutbox``,
``bot.channels.line.LineOutbox``), which renders and posts them. After: the runner deletes the
answered turn from the queue, or, when the platform failed for a moment (``DeliveryDelayed``),
tries again after a backoff (``backoff_delay``).

Which errors may pass (``transient``), how long the platform asked to wait
(``retry_after_seconds``) and whether a failed post may have been shown anyway (``maybe_shown``)
are decided here, from the error alone; the channels raise their SDK's errors as they are.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from typing import Protocol

from handlers.messages import Address, IncomingMessage, Reply
from nlp.privacy import hash_user

log = logging.getLogger("nanbyo.turns")

# A delivery the platform failed for a moment (5xx, 429, a timeout) is tried again after 1, 2, 4 … s
# (at most 30 s between tries, or what Retry-After says), for up to this long; then it is given up.
DEFAULT_OUTBOX_EXPIRY = 600.0
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


class Outbox(Protocol):
    """A channel's way out: deliver one turn's replies to an address."""

    def deliver(self, address: Address, replies: Sequence[Reply], key: str | None) -> None:
        """Render and send ``replies``; ``key`` (the event id, or None) makes a retried send idempotent
        where the platform allows it. Raises when the platform refused."""
        ...


class DeliveryDelayed(RuntimeError):
    """The platform failed for a moment (5xx, 429, a timeout, not reached): the delivery is tried again.

    Attributes:
        retry_after: seconds the platform asked to wait (``Retry-After``), if it said.
    """

    def __init__(self, cause: Exception, retry_after: float | None, maybe_shown: bool = False) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.retry_after = retry_after
        self.maybe_shown = maybe_shown


def maybe_shown(exc: Exception) -> bool:
    """Whether the platform may have shown the message although it failed the request: a 5xx, a
    timeout or a lost connection, on a call without an idempotency key (Slack's chat.postMessage, a
    LINE reply). A 429 or a 503 says the request was not taken; a LINE push with
    ``X-Line-Retry-Key`` cannot show twice. Counted, not avoided: an upper bound of the answers a
    retry may have shown twice. A delivery whose first messages went through before one failed
    (``partly_delivered``) shows those again on a retry."""
    if getattr(exc, "partly_delivered", False):
        return True
    if getattr(exc, "idempotent", False):
        return False
    status = getattr(exc, "status", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status not in (429, 503)


def transient(exc: Exception) -> tuple[bool, float | None]:
    """Whether a delivery error may pass (and how long the platform asked to wait): a 5xx or a 429
    from Slack or LINE, or a platform not reached at all. A 4xx (the user blocked the bot, a bad
    request) is for good."""
    permanent = getattr(exc, "permanent", None)  # LineDeliveryError
    if permanent is not None:
        return not permanent, getattr(exc, "retry_after", None)
    response = getattr(exc, "response", None)  # slack_sdk's SlackApiError
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        headers = {str(k).lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
        value = headers.get("retry-after")
        return status >= 500 or status == 429, retry_after_seconds(value[0] if isinstance(value, list) else value)
    return isinstance(exc, (OSError, TimeoutError, ConnectionError)), None


def retry_after_seconds(value: object, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: a number of seconds or an HTTP date (RFC 9110);
    None when absent or unreadable (the backoff decides). Never negative."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_delay(attempt: int, retry_after: float | None, left: float, base: float = BACKOFF_SECONDS) -> float:
    """How long to wait before delivery attempt ``attempt`` + 1: what the platform asked for
    (``Retry-After``), else ``base`` × 2^(attempt-1) with "equal jitter" (half fixed, half random,
    so that the turns of one outage do not all come back at one instant), at most
    ``MAX_BACKOFF_SECONDS``; never past the ``left`` seconds before the delivery expires, so that it
    has a last try."""
    if retry_after is not None:
        delay = retry_after
    else:
        delay = min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempt - 1)) * (0.5 + random.random() / 2)
    return max(0.0, min(delay, left))


def deliver(outboxes: Mapping[str, Outbox], msg: IncomingMessage, address: Address, replies: list[Reply]) -> None:
    """Hand replies to their channel's outbox; a refusal for good is logged (never the text), not
    raised; one that may pass raises ``DeliveryDelayed`` (the runner tries again)."""
    if not replies and not address.acts_without_replies:
        return
    outbox = outboxes.get(address.channel)
    started = time.perf_counter()
    if outbox is None:
        log.error("no outbox for channel=%s", address.channel)
        return
    try:
        outbox.deliver(address, replies, msg.event_id)
    except Exception as exc:
        passing, wait = transient(exc)
        log.error(
            "delivery failed channel=%s user=%s error=%s status=%s%s",
            address.channel,
            hash_user(msg.user_key),
            type(exc).__name__,
            getattr(exc, "status", None) or getattr(getattr(exc, "response", None), "status_code", None),
            " (will retry)" if passing else "",
        )
        if passing:
            raise DeliveryDelayed(exc, wait, maybe_shown(exc)) from exc
        return
    log.info(
        "%s turn event=%s user=%s replies=%d ms=%.1f",
        address.channel,
        msg.event_id,
        hash_user(msg.user_key),
        len(replies),
        (time.perf_counter() - started) * 1000,
    )


def working(outboxes: Mapping[str, Outbox], address: Address) -> AbstractContextManager[None]:
    """Around a turn: the channel's sign that the bot is working, if its outbox has one
    (``while_working``: LINE's loading animation for a turn that takes longer than a moment)."""
    show = getattr(outboxes.get(address.channel), "while_working", None)
    return show(address) if show is not None else nullcontext()
