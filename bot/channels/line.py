"""The LINE channel: webhooks in (``to_incoming``), replies and pushes out (``LineOutbox``),
with line-bot-sdk v3.

In: ``LineWebhook.handle_callback`` verifies ``X-Line-Signature`` over the raw body, parses the
events with the SDK's ``WebhookParser`` and turns them into ``(IncomingMessage, Address)`` pairs
(``to_incoming``, pure) for the turn runner (``bot.intake``); it answers 200 once the runner has
taken (recorded) them. LINE expects a quick answer and recommends processing events
asynchronously, and does not redeliver a webhook that got 200.

Out: ``LineOutbox.deliver`` renders replies (``to_messages``: text messages with quick-reply
buttons) and sends them with the event's reply token, or by push when the token is no longer
usable; ``send`` pushes reminders. ``richmenu_main`` installs the rich menu
(``nanbyo-bot line richmenu``) with the image shipped beside this module
(``assets/richmenu.png``, drawn by ``scripts/make_richmenu.py``).

What it is not: no dialog logic, no wording (``bot.texts``), no storage and no HTTP server
(``bot.server`` mounts ``handle_callback`` on ``POST /line/callback``). Message text and LINE
user ids are never logged; logs carry event kinds, hashed user keys, HTTP statuses and durations.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import sys
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from importlib import resources
from typing import Any

import urllib3
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    Message,
    MessagingApi,
    MessagingApiBlob,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    RichMenuArea,
    RichMenuBounds,
    RichMenuRequest,
    RichMenuSize,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.webhooks import (
    EventMode,
    FollowEvent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
    UserSource,
)

from bot.channels.line_cards import cut_to, flex_message
from bot.channels.line_cards import units as _units
from bot.channels.line_loading import LOADING_SECONDS, loading_while_slow
from bot.config import Settings
from bot.outbox import retry_after_seconds
from bot.texts import RICH_MENU_CHOICES, split_text
from handlers.messages import FEEDBACK_PREFIX, FOLLOW, UNFOLLOW, Address, Choice, IncomingMessage, LineAddress, Reply
from nlp.privacy import hash_user

log = logging.getLogger("nanbyo.line")

CHANNEL = "line"

# LINE Messaging API limits (https://developers.line.biz/en/reference/messaging-api/).
MAX_TEXT = 5000  # characters of one text message
MAX_MESSAGES = 5  # messages per reply or push call
MAX_QUICK_REPLIES = 13  # quick-reply buttons on one message
MAX_LABEL = 20  # characters of a quick-reply / action label
MAX_POSTBACK_DATA = 300  # characters of postback data (and of its displayText)

DEFAULT_API_URL = "https://api.line.me"
# Rich-menu images are uploaded to a separate host in real LINE; when LINE_API_URL is overridden
# (a test fake, a proxy) the same base is used for both, since such a stand-in serves one host.
DEFAULT_DATA_API_URL = "https://api-data.line.me"

# Timeouts of one LINE API call (connect, read) in seconds: a hung API must not pin a worker.
REQUEST_TIMEOUT = (5.0, 15.0)
# The loading animation is a courtesy: it may not hold a turn up for long.
LOADING_TIMEOUT = (2.0, 3.0)

# X-Line-Retry-Key values are UUIDs derived from our own delivery keys, so that the same
# message retried (by the reminder dispatcher, or after a lost response) always carries the
# same key and LINE delivers it at most once (it answers 409 for a key it already accepted).
# The derivation: uuid5(URL, "nanbyo-bot:<key>").
RETRY_KEY_NAMESPACE = uuid.NAMESPACE_URL
RETRY_KEY_PREFIX = "nanbyo-bot:"

# --- rendering: Reply → LINE text messages ------------------------------------------------


def truncate_label(label: str, limit: int = MAX_LABEL) -> str:
    """A label cut to ``limit`` characters, ending in "…" when it was cut."""
    return label if _units(label) <= limit else cut_to(label, limit) + "…"


def quick_reply_items(choices: Sequence[Choice]) -> list[QuickReplyItem]:
    """Choices as postback quick replies (data = the choice value), within LINE's limits."""
    items: list[QuickReplyItem] = []
    seen: set[str] = set()
    # The feedback pair (handlers.feedback) stays last and is never the one cut by the limit.
    judged = [c for c in choices if c.value.startswith(FEEDBACK_PREFIX)]
    leading = [c for c in choices if not c.value.startswith(FEEDBACK_PREFIX)]
    choices = [*leading[: MAX_QUICK_REPLIES - len(judged)], *judged]
    for c in choices:
        if c.value in seen:
            continue
        if _units(c.value) > MAX_POSTBACK_DATA:
            # Cannot be shortened without changing its meaning; the core never makes such values.
            log.warning("choice value too long for LINE postback data, dropped (%d chars)", len(c.value))
            continue
        seen.add(c.value)
        display = c.label if _units(c.label) <= MAX_POSTBACK_DATA else truncate_label(c.label, MAX_POSTBACK_DATA)
        items.append(
            QuickReplyItem(action=PostbackAction(label=truncate_label(c.label), data=c.value, display_text=display))
        )
        if len(items) == MAX_QUICK_REPLIES:
            break
    return items


def to_messages(replies: Sequence[Reply]) -> list[Message]:
    """The one rendering step of this channel: text messages, or a Flex card for a reply with a
    result or an office (its text as the altText).

    Long texts are split into several messages. LINE shows quick replies only on the
    last message of a batch, so the choices of the last reply that offers any go there.

    Args:
        replies: the bot's replies of one turn.

    Returns:
        The messages in order (may be more than 5; the caller batches them).
    """
    messages: list[Message] = []
    for r in replies:
        card = flex_message(r)  # a result or an office as a Flex card, its text as the altText
        messages += [card] if card is not None else [TextMessage(text=part) for part in split_text(r.text, MAX_TEXT)]
    if not messages:
        return []
    choices = next((r.choices for r in reversed(replies) if r.choices), ())
    items = quick_reply_items(choices)
    if items:
        messages[-1].quick_reply = QuickReply(items=items)
    return messages


def retry_key(key: str) -> str:
    """The X-Line-Retry-Key for a delivery key: a UUID, the same for the same key, always."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, RETRY_KEY_PREFIX + key))


def _batches(messages: Sequence[Message]) -> list[list[Message]]:
    return [list(messages[i : i + MAX_MESSAGES]) for i in range(0, len(messages), MAX_MESSAGES)]


def _body_text(exc: ApiException) -> str:
    body = exc.body or b""
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


def _is_invalid_reply_token(exc: ApiException) -> bool:
    # LINE answers 400 {"message": "Invalid reply token"} for a token that expired (it is meant to be
    # used within about a minute of the event) or was already used; a redelivered event's token may
    # be one of those.
    return exc.status == 400 and "invalid reply token" in _body_text(exc).lower()


# --- the Messaging API calls --------------------------------------------------------------


class LineDeliveryError(RuntimeError):
    """LINE did not accept a message.

    Attributes:
        status: the HTTP status LINE answered, or None when LINE was not reached.
        permanent: True when retrying cannot help (a 4xx other than 429, e.g. the user blocked us).
    """

    def __init__(
        self, status: int | None, what: str, retry_after: float | None = None, idempotent: bool = False
    ) -> None:
        super().__init__(f"LINE {what} failed" + (f" with HTTP {status}" if status is not None else " (not reached)"))
        self.status = status
        self.permanent = status is not None and 400 <= status < 500 and status != 429
        self.retry_after = retry_after  # seconds LINE asked to wait (Retry-After), if it said
        # A push with X-Line-Retry-Key: sending it again cannot show it twice (LINE answers 409).
        self.idempotent = idempotent
        self.partly_delivered = False  # an earlier part went by reply token, which a retry cannot repeat safely


def _retry_after(exc: ApiException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    return retry_after_seconds(value)


def _configuration(settings: Settings, data: bool = False) -> Configuration:
    base = settings.line_api_url.rstrip("/")
    if data and base == DEFAULT_API_URL:
        base = DEFAULT_DATA_API_URL
    return Configuration(host=base, access_token=settings.line_channel_access_token or "")


class LineApi:
    """The few Messaging API calls the bot makes: reply and push. Thread-safe (urllib3 pool)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.line_channel_access_token:
            raise ValueError("LINE_CHANNEL_ACCESS_TOKEN is not set")
        self._client = ApiClient(_configuration(settings))
        self._api = MessagingApi(self._client)

    def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        """Send up to 5 messages with a reply token. Raises ApiException as the SDK does."""
        self._api.reply_message(
            ReplyMessageRequest(reply_token=reply_token, messages=list(messages)), _request_timeout=REQUEST_TIMEOUT
        )

    def push(self, to: str, messages: Sequence[Message], key: str | None = None) -> bool:
        """Push up to 5 messages to a user.

        Args:
            to: the LINE user id.
            messages: at most 5 messages.
            key: the X-Line-Retry-Key (a UUID), or None.

        Returns:
            True when LINE accepted the messages now, False when it had already accepted
            this retry key (409): the messages were delivered by the earlier request.

        Raises:
            LineDeliveryError: LINE refused the messages or could not be reached.
        """
        try:
            self._api.push_message(
                PushMessageRequest(to=to, messages=list(messages)),
                x_line_retry_key=key,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 409 and key is not None:
                return False
            raise LineDeliveryError(exc.status, "push", _retry_after(exc), idempotent=key is not None) from None
        except urllib3.exceptions.HTTPError as exc:
            raise LineDeliveryError(None, f"push ({type(exc).__name__})", idempotent=key is not None) from None
        return True

    def show_loading(self, user_id: str, seconds: int = LOADING_SECONDS) -> None:
        """Show the loading animation in the user's chat until our next message (or ``seconds``)."""
        self._api.show_loading_animation(
            ShowLoadingAnimationRequest(chat_id=user_id, loading_seconds=seconds), _request_timeout=LOADING_TIMEOUT
        )

    def close(self) -> None:
        self._client.close()
        self._client.rest_client.pool_manager.clear()


# --- the webhook ----------------------------------------------------------------------------


def verify_signature(channel_secret: str, body: bytes, signature: str) -> bool:
    """Check X-Line-Signature: base64 HMAC-SHA256 of the raw request body with the channel secret.

    The HMAC is computed over the bytes exactly as received: decoding and re-encoding
    could change them (and with them the digest), so nothing is decoded before this check.
    """
    if not signature:
        return False
    expected = base64.b64encode(hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest())
    try:
        given = signature.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)


def _kind(event: Any) -> str:
    if isinstance(event, MessageEvent):
        return f"message/{getattr(event.message, 'type', '?')}"
    return str(getattr(event, "type", type(event).__name__))


def to_incoming(events: Sequence[Any]) -> list[tuple[IncomingMessage, Address]]:
    """The turns in a verified webhook's events (the SDK's typed events), in order.

    Pure. Typed text, a tapped quick reply or rich-menu postback, a sticker or photo (never
    downloaded: the core says only text is read), following and blocking the account. Ignored:
    standby events (another channel module is active), group and room chats (answers about a
    person's illness and income are only given in the 1:1 chat), and events the bot does not
    answer (join, leave, beacon, unknown future events).
    """
    turns: list[tuple[IncomingMessage, Address]] = []
    for event in events:
        if getattr(event, "mode", None) == EventMode.STANDBY:
            log.info("line event ignored kind=%s reason=standby", _kind(event))
            continue
        if not isinstance(getattr(event, "source", None), UserSource) or not event.source.user_id:
            log.info("line event ignored kind=%s reason=not-a-user-chat", _kind(event))
            continue
        user: str = event.source.user_id
        # The same webhookEventId comes back when LINE redelivers (deliveryContext.isRedelivery);
        # the core records it with the turn, so a redelivered event is answered once, on any instance.
        event_id: str | None = getattr(event, "webhook_event_id", None)
        if isinstance(event, UnfollowEvent):
            msg = IncomingMessage(CHANNEL, user, event=UNFOLLOW, event_id=event_id)
        elif isinstance(event, FollowEvent):
            msg = IncomingMessage(CHANNEL, user, event=FOLLOW, event_id=event_id)
        elif isinstance(event, PostbackEvent):
            msg = IncomingMessage(CHANNEL, user, choice=event.postback.data, event_id=event_id)
        elif isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
            msg = IncomingMessage(CHANNEL, user, text=event.message.text, event_id=event_id)
        elif isinstance(event, MessageEvent):
            kind = str(getattr(event.message, "type", None) or "unknown")
            msg = IncomingMessage(CHANNEL, user, attachment=kind, event_id=event_id)
        else:
            continue
        turns.append((msg, LineAddress(CHANNEL, user, reply_token=getattr(event, "reply_token", None))))
    return turns


class LineWebhook:
    """``POST /line/callback``: verify, parse, convert, hand the turns to the runner.

    Args:
        settings: needs ``line_channel_secret``.
        runner: where the turns go (``bot.intake``).
    """

    def __init__(self, settings: Settings, runner: Any) -> None:
        if not settings.line_channel_secret or not settings.line_channel_access_token:
            raise ValueError("LINE is not configured: set LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN")
        self._secret = settings.line_channel_secret
        self._parser = WebhookParser(settings.line_channel_secret)
        self.runner = runner

    def handle_callback(self, body: bytes, signature: str) -> tuple[int, str]:
        """Handle one POST /line/callback.

        Args:
            body: the raw request body, exactly as received.
            signature: the X-Line-Signature header ("" when missing).

        Returns:
            (HTTP status, response text): 200 once the runner took the events (recorded), 400
            for a missing or wrong signature or a body that is not a LINE webhook, 503 when the
            runner refused them (full, or shutting down: LINE then redelivers, when
            redelivery is on).
        """
        if not verify_signature(self._secret, body, signature or ""):
            log.warning("line callback refused: invalid signature bytes=%d", len(body))
            return 400, "invalid signature"
        try:
            # Verified above over the raw bytes; the parser checks again on the decoded text, which
            # for valid UTF-8 is the same bytes, and gives the SDK's typed events (unknown ones kept).
            events = self._parser.parse(body.decode("utf-8"), signature.strip())
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, InvalidSignatureError, RecursionError):
            # RecursionError: JSON nested deeper than the parser goes (caught before RuntimeError below)
            log.warning("line callback refused: not a webhook body bytes=%d", len(body))
            return 400, "bad request"
        turns = to_incoming(events)
        if turns:
            try:
                self.runner.submit(turns)
            except RuntimeError as exc:  # full or shutting down: let LINE redeliver
                log.warning("line turns refused error=%s", type(exc).__name__)
                return 503, "busy"
        return 200, "OK"


class LineOutbox:
    """Delivers replies to a LINE address, and reminders to a user (the dispatcher's ``Sender``).

    Args:
        settings: needs ``line_channel_access_token`` and ``line_api_url``.
    """

    def __init__(self, settings: Settings) -> None:
        self._api = LineApi(settings)
        self._loading_after = settings.line_loading_after_seconds

    def while_working(self, address: Address) -> AbstractContextManager[None]:
        """Around a turn: LINE's loading animation once it has run ``LINE_LOADING_AFTER_SECONDS``."""
        return loading_while_slow(self._loading_after, lambda: self._api.show_loading(address.user))

    def deliver(self, address: Address, replies: Sequence[Reply], key: str | None = None) -> None:
        """Reply with the token (free, and the answer appears at once); push what cannot go that way.

        A reply call takes at most 5 messages: the rest follows by push. A reply token expires
        about a minute after the event (a slow turn, a late redelivery): then everything goes by
        push. Pushes carry a retry key derived from ``key`` (the event id), so a retried push is
        delivered once.

        Raises:
            LineDeliveryError: LINE refused a message or could not be reached.
        """
        address = LineAddress.of(address)
        replied = False
        for n, batch in enumerate(_batches(to_messages(replies))):
            if n == 0 and address.reply_token:
                try:
                    self._api.reply(address.reply_token, batch)
                    replied = True
                    continue
                except urllib3.exceptions.HTTPError as exc:
                    raise LineDeliveryError(None, f"reply ({type(exc).__name__})") from None
                except ApiException as exc:
                    if not _is_invalid_reply_token(exc):
                        raise LineDeliveryError(exc.status, "reply", _retry_after(exc)) from None
                    log.info(
                        "line reply token refused, pushing instead user=%s", hash_user(f"{CHANNEL}:{address.user}")
                    )
            try:
                self._api.push(address.user, batch, retry_key(f"line-event:{key}:{n}") if key else None)
            except LineDeliveryError as exc:
                # The first batch went by reply, without a key: a retry pushes it again.
                exc.partly_delivered = replied
                raise

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        """A reminder: push ``text`` to ``user`` exactly once per ``key``.

        Each push request carries X-Line-Retry-Key = uuid5(``key``): LINE delivers a key once and
        answers 409 to a repeat, which counts as success here, so the dispatcher may retry freely
        (LINE keeps retry keys for 24 hours).

        Args:
            user: the LINE user id.
            text: the message (split into several when longer than 5,000 characters).
            kind: what the message is (for logs only).
            key: a stable id of this delivery, e.g. the reminder delivery row.

        Raises:
            LineDeliveryError: LINE refused the message or could not be reached (``permanent``
                says whether a retry can help).
        """
        for n, batch in enumerate(_batches(to_messages([Reply(text, kind=kind)]))):
            accepted = self._api.push(user, batch, retry_key(key if n == 0 else f"{key}#{n}"))
            log.info(
                "line push kind=%s user=%s part=%d %s",
                kind,
                hash_user(f"{CHANNEL}:{user}"),
                n,
                "sent" if accepted else "already-accepted",
            )

    def close(self) -> None:
        self._api.close()


# --- the rich menu --------------------------------------------------------------------------

RICH_MENU_NAME = "nanbyo-bot main menu"
RICH_MENU_WIDTH = 2500
RICH_MENU_HEIGHT = 843  # LINE's "compact" size; 1686 is the full one
# Label and postback data (the core's choice values) of each area, left to right.
RICH_MENU_AREAS: tuple[tuple[str, str], ...] = tuple((c.label, c.value) for c in RICH_MENU_CHOICES)

# The menu's picture: four tiles matching the areas above, drawn by scripts/make_richmenu.py
# (Pillow and Noto Sans CJK JP, needed only to redraw it) and shipped as package data.
RICH_MENU_IMAGE = "assets/richmenu.png"


def richmenu_image() -> bytes:
    """The rich-menu PNG shipped in the package (``bot/channels/assets/richmenu.png``)."""
    return resources.files("bot.channels").joinpath(RICH_MENU_IMAGE).read_bytes()


def richmenu_request() -> RichMenuRequest:
    """The rich menu: one row of tappable areas whose postback data are the core's choice values."""
    tile = RICH_MENU_WIDTH // len(RICH_MENU_AREAS)
    areas = []
    for i, (label, data) in enumerate(RICH_MENU_AREAS):
        w = tile if i < len(RICH_MENU_AREAS) - 1 else RICH_MENU_WIDTH - tile * i
        areas.append(
            RichMenuArea(
                bounds=RichMenuBounds(x=i * tile, y=0, width=w, height=RICH_MENU_HEIGHT),
                action=PostbackAction(label=truncate_label(label), data=data, display_text=label),
            )
        )
    return RichMenuRequest(
        size=RichMenuSize(width=RICH_MENU_WIDTH, height=RICH_MENU_HEIGHT),
        selected=True,
        name=RICH_MENU_NAME,
        chat_bar_text="メニュー",
        areas=areas,
    )


def _remove_old_menus(api: MessagingApi, keep: str) -> None:
    """Delete the menus an earlier run installed; the new one is already the default, so a failure only warns."""
    try:
        for old in api.get_rich_menu_list(_request_timeout=REQUEST_TIMEOUT).richmenus or []:
            if old.name == RICH_MENU_NAME and old.rich_menu_id != keep:
                api.delete_rich_menu(old.rich_menu_id, _request_timeout=REQUEST_TIMEOUT)
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        print(
            f"warning: could not remove the previous rich menus ({type(exc).__name__}); "
            "delete them in the LINE Official Account Manager if you like",
            file=sys.stderr,
        )


def richmenu_main(args: Any, settings: Settings) -> int:
    """``nanbyo-bot line richmenu``: create the rich menu, upload its image, make it the default.

    Rich menus this command installed before (same name) are deleted afterwards, so running it
    again replaces the menu. Prints the new rich menu id.

    Returns:
        0 on success, 1 when LINE refused a step, 2 when LINE is not configured.
    """
    if not settings.line_channel_access_token:
        print(
            "error: LINE is not configured: set LINE_CHANNEL_ACCESS_TOKEN (and LINE_CHANNEL_SECRET) "
            "to the Messaging API channel's values",
            file=sys.stderr,
        )
        return 2
    step = "create the rich menu"
    try:
        with (
            ApiClient(_configuration(settings)) as client,
            ApiClient(_configuration(settings, data=True)) as data_client,
        ):
            api = MessagingApi(client)
            menu_id = api.create_rich_menu(richmenu_request(), _request_timeout=REQUEST_TIMEOUT).rich_menu_id
            step = "upload the rich menu image"
            MessagingApiBlob(data_client).set_rich_menu_image(
                menu_id, richmenu_image(), _headers={"Content-Type": "image/png"}, _request_timeout=REQUEST_TIMEOUT
            )
            step = "set the default rich menu"
            api.set_default_rich_menu(menu_id, _request_timeout=REQUEST_TIMEOUT)
            _remove_old_menus(api, keep=menu_id)
    except ApiException as exc:
        print(f"error: LINE refused to {step}: HTTP {exc.status} {_body_text(exc)[:500]}", file=sys.stderr)
        return 1
    except urllib3.exceptions.HTTPError as exc:
        print(
            f"error: could not reach LINE at {settings.line_api_url} to {step}: {type(exc).__name__}", file=sys.stderr
        )
        return 1
    print(menu_id)
    return 0


__all__ = [
    "LineApi",
    "LineDeliveryError",
    "LineOutbox",
    "LineWebhook",
    "richmenu_main",
    "to_incoming",
    "to_messages",
    "verify_signature",
]
