"""The LINE channel: the webhook in, replies and push messages out (Messaging API, line-bot-sdk v3).

What it is: a thin adapter. ``LineChannel.handle_callback`` verifies the
``X-Line-Signature`` of a webhook, parses the events with the SDK's
``WebhookParser`` and turns each into an ``IncomingMessage`` for ``Bot.handle``
(typed text, a tapped quick reply / rich-menu postback); it renders the
``list[Reply]`` as LINE text messages with quick-reply buttons and sends them
with the reply token, or by push when the token is no longer usable.
``LineSender`` pushes renewal reminders; ``richmenu_main`` installs the rich
menu (``nanbyo-bot line richmenu``) with the image shipped beside this module
(``assets/richmenu.png``, drawn by ``scripts/make_richmenu.py``).

What it is not: no dialog logic, no storage of its own and no HTTP server
(``bot.server`` mounts ``handle_callback`` on ``POST /line/callback``). Only
``bot/channels/`` knows LINE exists. Message text and LINE user ids are never
logged; logs carry event kinds, hashed user keys, HTTP statuses and durations.

Threading choice: ``handle_callback`` answers 200 as soon as the signature is
checked and the events are parsed, and the turns run in a small thread pool
(4 workers by default, one task per user and webhook so a user's events keep
their order). LINE expects the webhook to be answered within a few seconds and
recommends processing events asynchronously; a turn plus the reply call is
usually well under a second, but a webhook may carry several events and the
LINE API may be slow. The cost: an event accepted with 200 and lost in a crash
is not redelivered by LINE. ``LineChannel(..., workers=0)`` processes
synchronously instead (the answer waits for the turns). ``nanbyo-bot serve`` passes
``turns``: the same per-user tasks then run in its child process (``bot.turn_worker``),
which calls ``process``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from importlib import resources
from typing import TYPE_CHECKING, Any

import urllib3
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    MessagingApiBlob,
    Message,
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

from bot.channels.line_cards import flex_message
from bot.channels.line_loading import LOADING_SECONDS, loading_while_slow
from bot.config import Settings
from handlers.messages import Choice, IncomingMessage, Reply
from bot.storage.repositories import hash_user

if TYPE_CHECKING:
    from bot.core import Bot

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

WELCOME_TEXT = (
    "友だち追加ありがとうございます。指定難病の医療費助成（特定医療費）についてご案内するチャットです。\n"
    "【できること】制度や申請についてのご質問に資料をもとにお答えします（出典つき）。"
    "自己負担の月額上限の計算、受給者証の更新のお知らせ、お住まいの地域の窓口のご案内もできます。\n"
    "【できないこと】病気や薬についての医学的な判断・助言はできません。"
    "急な症状など緊急のときは、ためらわず119番に電話してください。\n"
    "【お願い】マイナンバー（個人番号）は、このチャットに送らないでください。\n"
    "下のメニューやボタンからも選べます。ブロックすると、このチャットでお預かりしたあなたのデータは削除されます。"
)

ERROR_TEXT = "申し訳ありません。内部でエラーが起きました。少し時間をおいて、もう一度送ってください。"


# --- rendering: Reply → LINE text messages ------------------------------------------------

def _units(text: str) -> int:
    """Length as LINE counts it, conservatively: UTF-16 code units (an emoji may count twice)."""
    return len(text.encode("utf-16-le")) // 2


def truncate_label(label: str, limit: int = MAX_LABEL) -> str:
    """A label cut to ``limit`` characters, ending in "…" when it was cut."""
    if _units(label) <= limit:
        return label
    out = ""
    for ch in label:
        if _units(out + ch) > limit - 1:
            break
        out += ch
    return out + "…"


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a long text into messages of at most ``limit`` characters, at line breaks when possible."""
    parts: list[str] = []
    rest = text
    while _units(rest) > limit:
        cut = 0
        for i, ch in enumerate(rest):  # the longest prefix that fits
            cut += 2 if ord(ch) > 0xFFFF else 1
            if cut > limit:
                cut = i
                break
        # Prefer a paragraph or line break in the second half of the piece, so sentences stay whole.
        brk = max(rest.rfind("\n\n", 0, cut), rest.rfind("\n", 0, cut))
        if brk >= cut // 2:
            cut = brk + 1
        parts.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:].lstrip("\n")
    if rest.strip():
        parts.append(rest)
    return [p for p in parts if p.strip()]


def quick_reply_items(choices: Sequence[Choice]) -> list[QuickReplyItem]:
    """Choices as postback quick replies (data = the choice value), within LINE's limits."""
    items: list[QuickReplyItem] = []
    seen: set[str] = set()
    for c in choices:
        if c.value in seen:
            continue
        if _units(c.value) > MAX_POSTBACK_DATA:
            # Cannot be shortened without changing its meaning; the core never makes such values.
            log.warning("choice value too long for LINE postback data, dropped (%d chars)", len(c.value))
            continue
        seen.add(c.value)
        display = c.label if _units(c.label) <= MAX_POSTBACK_DATA else truncate_label(c.label, MAX_POSTBACK_DATA)
        items.append(QuickReplyItem(action=PostbackAction(label=truncate_label(c.label), data=c.value,
                                                          display_text=display)))
        if len(items) == MAX_QUICK_REPLIES:
            break
    return items


def to_messages(replies: Sequence[Reply]) -> list[Message]:
    """Render replies as LINE messages: text, or a Flex card for a reply with a result or an office.

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
        messages += [card] if card is not None else [TextMessage(text=part) for part in split_text(r.text)]
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
    return [list(messages[i:i + MAX_MESSAGES]) for i in range(0, len(messages), MAX_MESSAGES)]


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

    def __init__(self, status: int | None, what: str) -> None:
        super().__init__(f"LINE {what} failed" + (f" with HTTP {status}" if status is not None else " (not reached)"))
        self.status = status
        self.permanent = status is not None and 400 <= status < 500 and status != 429


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
        self._api.reply_message(ReplyMessageRequest(reply_token=reply_token, messages=list(messages)),
                                _request_timeout=REQUEST_TIMEOUT)

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
            self._api.push_message(PushMessageRequest(to=to, messages=list(messages)), x_line_retry_key=key,
                                   _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 409 and key is not None:
                return False
            raise LineDeliveryError(exc.status, "push") from None
        except urllib3.exceptions.HTTPError as exc:
            raise LineDeliveryError(None, f"push ({type(exc).__name__})") from None
        return True

    def show_loading(self, user_id: str, seconds: int = LOADING_SECONDS) -> None:
        """Show the loading animation in the user's chat until our next message (or ``seconds``)."""
        self._api.show_loading_animation(ShowLoadingAnimationRequest(chat_id=user_id, loading_seconds=seconds),
                                         _request_timeout=LOADING_TIMEOUT)

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


class LineChannel:
    """The LINE webhook: verify, parse, convert, answer.

    Args:
        bot: the core (``Bot.handle``, ``Bot.delete_user``, ``Bot.store`` for event claims).
        settings: needs ``line_channel_secret``, ``line_channel_access_token``, ``line_api_url``.
        workers: threads that run the turns after the webhook was answered; 0 processes
            every event before ``handle_callback`` returns.
        turns: where the turns run instead, when given: ``submit("line", events)`` with one
            user's events of a webhook (``serve`` passes a ``bot.turn_worker.TurnProcess``,
            whose child process calls ``process``).
    """

    def __init__(self, bot: Bot, settings: Settings, workers: int = 4, turns: Any = None) -> None:
        if not settings.line_channel_secret or not settings.line_channel_access_token:
            raise ValueError("LINE is not configured: set LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN")
        self.bot = bot
        self._secret = settings.line_channel_secret
        self._parser = WebhookParser(settings.line_channel_secret)
        self._api = LineApi(settings)
        self._loading_after = settings.line_loading_after_seconds
        # Threads start on the first submit, not here.
        self._turns = turns
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="line") \
            if workers > 0 and turns is None else None
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def handle_callback(self, body: bytes, signature: str) -> tuple[int, str]:
        """Handle one POST /line/callback.

        Args:
            body: the raw request body, exactly as received.
            signature: the X-Line-Signature header ("" when missing).

        Returns:
            (HTTP status, response text): 200 once the events are accepted, 400 for a
            missing or wrong signature or a body that is not a LINE webhook, 503 while
            shutting down (LINE then redelivers, when redelivery is on).
        """
        if not verify_signature(self._secret, body, signature or ""):
            log.warning("line callback refused: invalid signature bytes=%d", len(body))
            return 400, "invalid signature"
        try:
            # Verified above over the raw bytes; the parser checks again on the decoded text, which
            # for valid UTF-8 is the same bytes, and gives the SDK's typed events (unknown ones kept).
            events = self._parser.parse(body.decode("utf-8"), signature.strip())
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, InvalidSignatureError):
            log.warning("line callback refused: not a webhook body bytes=%d", len(body))
            return 400, "bad request"

        by_user: dict[str, list[Any]] = {}
        for event in events:
            if self._wanted(event):
                by_user.setdefault(event.source.user_id, []).append(event)
        for user_events in by_user.values():
            if self._turns is not None:
                try:
                    self._turns.submit(CHANNEL, user_events)
                except RuntimeError:  # shutting down: let LINE redeliver to a live instance
                    return 503, "shutting down"
                continue
            if self._pool is None:
                self.process(user_events)
                continue
            try:
                future = self._pool.submit(self.process, user_events)
            except RuntimeError:  # the pool is shut down: let LINE redeliver to a live instance
                return 503, "shutting down"
            with self._lock:
                self._pending.add(future)
            future.add_done_callback(self._forget)
        return 200, "OK"

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until the events accepted so far are processed. True when none is left."""
        with self._lock:
            pending = set(self._pending)
        if not pending:
            return True
        _, not_done = wait(pending, timeout=timeout)
        return not not_done

    def close(self) -> None:
        """Finish the accepted events, then release the threads and connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._api.close()

    # -- inside ---------------------------------------------------------------------------

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    @staticmethod
    def _wanted(event: Any) -> bool:
        # Standby events belong to another channel module that is active; group and room events
        # are ignored because answers about a person's illness and income must not go to a group.
        if getattr(event, "mode", None) == EventMode.STANDBY:
            log.info("line event ignored kind=%s reason=standby", _kind(event))
            return False
        if not isinstance(getattr(event, "source", None), UserSource) or not event.source.user_id:
            log.info("line event ignored kind=%s reason=not-a-user-chat", _kind(event))
            return False
        return True

    def process(self, events: list[Any]) -> None:
        """Handle one user's events of a webhook, in order; a failing event does not stop the rest."""
        for event in events:
            started = time.perf_counter()
            user_key = f"{CHANNEL}:{event.source.user_id}"
            try:
                self._process(event)
            except Exception as exc:  # one bad event must not stop the others; no text in the log
                status = getattr(exc, "status", None)
                log.error("line event failed kind=%s user=%s error=%s status=%s\n%s", _kind(event),
                          hash_user(user_key), type(exc).__name__, status,
                          "".join(traceback.format_tb(exc.__traceback__)))
            else:
                redelivery = bool(getattr(getattr(event, "delivery_context", None), "is_redelivery", False))
                log.info("line event kind=%s user=%s redelivery=%s ms=%.1f", _kind(event), hash_user(user_key),
                         redelivery, (time.perf_counter() - started) * 1000)

    def _process(self, event: Any) -> None:
        user_id: str = event.source.user_id
        user_key = f"{CHANNEL}:{user_id}"
        # The same webhookEventId comes back when LINE redelivers (deliveryContext.isRedelivery);
        # the core records it with the turn, so a redelivered event is answered once, on any instance.
        event_id: str | None = getattr(event, "webhook_event_id", None)

        if isinstance(event, UnfollowEvent):
            # Blocked or removed: nothing can be sent any more, and what we kept about them goes.
            self.bot.delete_user(user_key)
            return
        if isinstance(event, FollowEvent):
            # Through the core's menu turn, so a redelivered follow greets once; its choices are the menu's.
            replies = self.bot.handle(IncomingMessage(channel=CHANNEL, user=user_id, choice="menu", event_id=event_id))
            replies = [Reply(WELCOME_TEXT, choices=replies[-1].choices, kind="welcome")] if replies else []
        elif isinstance(event, PostbackEvent):
            # A tapped quick reply or rich-menu area: the choice value, exactly like a clicked button.
            replies = self._turn(IncomingMessage(channel=CHANNEL, user=user_id, choice=event.postback.data,
                                                 event_id=event_id))
        elif isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
            replies = self._turn(IncomingMessage(channel=CHANNEL, user=user_id, text=event.message.text,
                                                 event_id=event_id))
        elif isinstance(event, MessageEvent):
            # Stickers, images, files ...: never downloaded. The core answers that only text is
            # read (or asks a dialog's question again), and counts it like any message.
            kind = str(getattr(event.message, "type", None) or "unknown")
            replies = self._turn(IncomingMessage(channel=CHANNEL, user=user_id, attachment=kind, event_id=event_id))
        else:
            return  # join, leave, beacon, unknown future events: nothing to say
        if replies:
            self._deliver(user_id, getattr(event, "reply_token", None), to_messages(replies), event_id)

    def _turn(self, msg: IncomingMessage) -> list[Reply]:
        try:
            # A turn that takes longer than a moment shows LINE's loading animation meanwhile.
            with loading_while_slow(self._loading_after, lambda: self._api.show_loading(msg.user)):
                return self.bot.handle(msg)
        except Exception as exc:
            log.error("turn failed channel=line user=%s error=%s\n%s", hash_user(msg.user_key), type(exc).__name__,
                      "".join(traceback.format_tb(exc.__traceback__)))
            return [Reply(ERROR_TEXT, kind="error")]

    def _deliver(self, user_id: str, reply_token: str | None, messages: list[Message],
                 event_id: str | None) -> None:
        """Reply with the token (free, and the answer appears at once); push what cannot go that way.

        A reply call takes at most 5 messages: the rest follows by push. A reply token expires
        about a minute after the event (a slow turn, a late redelivery): then everything goes by push.
        Pushes carry a retry key derived from the event id, so a retried push is delivered once.
        """
        for n, batch in enumerate(_batches(messages)):
            if n == 0 and reply_token:
                try:
                    self._api.reply(reply_token, batch)
                    continue
                except ApiException as exc:
                    if not _is_invalid_reply_token(exc):
                        raise LineDeliveryError(exc.status, "reply") from None
                    log.info("line reply token refused, pushing instead user=%s", hash_user(f"{CHANNEL}:{user_id}"))
            key = retry_key(f"line-event:{event_id}:{n}") if event_id else None
            self._api.push(user_id, batch, key)


# --- reminders ------------------------------------------------------------------------------

class LineSender:
    """Pushes reminder messages to LINE users (the reminder dispatcher's sender for channel "line").

    Args:
        settings: needs ``line_channel_access_token`` and ``line_api_url``.
    """

    def __init__(self, settings: Settings) -> None:
        self._api = LineApi(settings)

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        """Push ``text`` to ``user`` exactly once per ``key``.

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
        messages = [TextMessage(text=part) for part in split_text(text)]
        for n, batch in enumerate(_batches(messages)):
            accepted = self._api.push(user, batch, retry_key(key if n == 0 else f"{key}#{n}"))
            log.info("line push kind=%s user=%s part=%d %s", kind, hash_user(f"{CHANNEL}:{user}"), n,
                     "sent" if accepted else "already-accepted")

    def close(self) -> None:
        self._api.close()


# --- the rich menu --------------------------------------------------------------------------

RICH_MENU_NAME = "nanbyo-bot main menu"
RICH_MENU_WIDTH = 2500
RICH_MENU_HEIGHT = 843  # LINE's "compact" size; 1686 is the full one
# Label and postback data (the core's choice values) of each area, left to right.
RICH_MENU_AREAS: tuple[tuple[str, str], ...] = (
    ("相談する", "menu"),
    ("自己負担を計算", "start:copay"),
    ("更新のお知らせ", "start:reminder"),
    ("窓口を探す", "office"),
)

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
        areas.append(RichMenuArea(
            bounds=RichMenuBounds(x=i * tile, y=0, width=w, height=RICH_MENU_HEIGHT),
            action=PostbackAction(label=truncate_label(label), data=data, display_text=label),
        ))
    return RichMenuRequest(size=RichMenuSize(width=RICH_MENU_WIDTH, height=RICH_MENU_HEIGHT), selected=True,
                           name=RICH_MENU_NAME, chat_bar_text="メニュー", areas=areas)


def _remove_old_menus(api: MessagingApi, keep: str) -> None:
    """Delete the menus an earlier run installed; the new one is already the default, so a failure only warns."""
    try:
        for old in api.get_rich_menu_list(_request_timeout=REQUEST_TIMEOUT).richmenus or []:
            if old.name == RICH_MENU_NAME and old.rich_menu_id != keep:
                api.delete_rich_menu(old.rich_menu_id, _request_timeout=REQUEST_TIMEOUT)
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        print(f"warning: could not remove the previous rich menus ({type(exc).__name__}); "
              "delete them in the LINE Official Account Manager if you like", file=sys.stderr)


def richmenu_main(args: Any, settings: Settings) -> int:
    """``nanbyo-bot line richmenu``: create the rich menu, upload its image, make it the default.

    Rich menus this command installed before (same name) are deleted afterwards, so running it
    again replaces the menu. Prints the new rich menu id.

    Returns:
        0 on success, 1 when LINE refused a step, 2 when LINE is not configured.
    """
    if not settings.line_channel_access_token:
        print("error: LINE is not configured: set LINE_CHANNEL_ACCESS_TOKEN (and LINE_CHANNEL_SECRET) "
              "to the Messaging API channel's values", file=sys.stderr)
        return 2
    step = "create the rich menu"
    try:
        with ApiClient(_configuration(settings)) as client, \
                ApiClient(_configuration(settings, data=True)) as data_client:
            api = MessagingApi(client)
            menu_id = api.create_rich_menu(richmenu_request(), _request_timeout=REQUEST_TIMEOUT).rich_menu_id
            step = "upload the rich menu image"
            MessagingApiBlob(data_client).set_rich_menu_image(
                menu_id, richmenu_image(), _headers={"Content-Type": "image/png"}, _request_timeout=REQUEST_TIMEOUT)
            step = "set the default rich menu"
            api.set_default_rich_menu(menu_id, _request_timeout=REQUEST_TIMEOUT)
            _remove_old_menus(api, keep=menu_id)
    except ApiException as exc:
        print(f"error: LINE refused to {step}: HTTP {exc.status} {_body_text(exc)[:500]}", file=sys.stderr)
        return 1
    except urllib3.exceptions.HTTPError as exc:
        print(f"error: could not reach LINE at {settings.line_api_url} to {step}: {type(exc).__name__}",
              file=sys.stderr)
        return 1
    print(menu_id)
    return 0


__all__ = ["LineApi", "LineChannel", "LineDeliveryError", "LineSender", "richmenu_main", "to_messages",
           "verify_signature"]
