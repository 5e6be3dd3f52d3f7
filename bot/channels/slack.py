"""The Slack channel: a slack_bolt ``App`` that turns Slack payloads into ``IncomingMessage``.

What it is: a thin adapter. Direct messages (``message.im``), mentions (``app_mention``),
button clicks (``block_actions``), the ``/nanbyo`` slash command and the App Home tab
become ``Bot.handle`` calls; the bot's ``list[Reply]`` is rendered as Block Kit (text as
mrkdwn sections, choices as buttons whose value is the choice value) and posted with the
Web API. ``SlackSender`` pushes reminders as DMs. ``render`` is pure and tested on its own.

What it is not: no HTTP server (``bot.server`` feeds ``SlackChannel.dispatch`` or runs
Socket Mode), no wording beyond a few channel notes, no state. Message text is never
logged: logs carry event ids, hashed users, counts and durations.

Slack facts this module is built around:

- Slack wants an HTTP answer within 3 seconds, else it retries the event (up to three
  times, with ``X-Slack-Retry-Num``). Bolt acks events before the listener runs (our
  listeners run afterwards on ``listener_executor``); button and command listeners call
  ``ack()`` first thing.
- A retry, or the same event reaching a second instance, is answered once: the event id
  goes in ``IncomingMessage.event_id`` and the core records it in the database in the
  same unit of work as the turn. Retries are not dropped blindly, because the first
  delivery may have died before it was handled.
- An event type with no listener gets a 404, which Slack treats as a failure and
  retries: every subscribed event has a listener, even when it does nothing.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RetryHandler, RetryState
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.signature import SignatureVerifier

from bot.channels.slack_blocks import card_blocks
from bot.config import Settings
from handlers.messages import Choice, IncomingMessage, Reply
from bot.storage.repositories import hash_user

if TYPE_CHECKING:  # pragma: no cover - typing only
    from slack_bolt.adapter.socket_mode import SocketModeHandler

log = logging.getLogger("nanbyo.slack")

CHANNEL = "slack"

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
SECTION_TEXT_LIMIT = 3000
ACTIONS_PER_BLOCK = 25
BUTTON_TEXT_LIMIT = 75
BLOCKS_PER_MESSAGE = 50
FALLBACK_TEXT_LIMIT = 3000  # the notification text; the blocks carry the whole answer

ACTION_PREFIX = "nanbyo_choice"
_OUR_ACTION = re.compile(rf"^{ACTION_PREFIX}_\d+$")
COMMAND = "/nanbyo"

ERROR_TEXT = "申し訳ありません。内部でエラーが起きました。少し時間をおいて、もう一度送ってください。"
ANSWERED_IN_DM_TEXT = "ダイレクトメッセージでお答えしました。アプリの「メッセージ」タブをご覧ください。"

# The App Home menu. The values are choice values the router already understands
# (handlers.system.MENU_CHOICES, plus "menu"); a test checks that they stay in step.
HOME_CHOICES: tuple[Choice, ...] = (
    Choice("相談する", "menu"),
    Choice("自己負担を計算", "start:copay"),
    Choice("更新のお知らせ", "start:reminder"),
    Choice("データを削除", "delete"),
)
HOME_TEXT = (
    "*指定難病の医療費助成（特定医療費）のご相談*\n"
    "制度や申請のご質問に資料をもとにお答えし、自己負担の月額上限の計算や、受給者証の更新のお知らせができます。\n"
    "「メッセージ」タブで、いつでも文章でご質問ください。マイナンバー（個人番号）は送らないでください。"
)


class Handles(Protocol):
    """What the channel needs of the core: ``bot.core.Bot`` satisfies it."""

    def handle(self, msg: IncomingMessage) -> list[Reply]: ...


# --- text in and out -----------------------------------------------------------------------------

def escape(text: str) -> str:
    """Escape the three characters Slack reserves for its markup (and nothing else)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_ANGLE = re.compile(r"<([^<>]*)>")


def to_plain(text: str) -> str:
    """What the user typed, from Slack's markup (a message's or command's ``text``).

    Every user mention is dropped, the bot's own included (a mention carries nothing the
    FAQ could use); links become their label; ``&amp;``, ``&lt;``, ``&gt;`` are undone.
    """

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):  # <@U123> or <@U123|name>: a person (or this bot)
            return ""
        if target.startswith("#"):  # <#C123|general>
            return f"#{label}" if label else ""
        if target.startswith("!"):  # <!here>, <!channel>, <!date^...|fallback>
            return label
        return label or target  # <https://...|label> or <https://...>

    plain = _ANGLE.sub(one, text)
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t\u3000]{2,}", " ", plain).strip()


def _weight(ch: str) -> int:
    # Count what the escaped character costs, and astral characters (emoji) twice, in case
    # Slack counts UTF-16 units: a section is then never over the limit, only a little under.
    return len(escape(ch)) * (2 if ord(ch) > 0xFFFF else 1)


def split_text(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Cut ``text`` into pieces whose escaped form fits in ``limit`` characters.

    Cuts at a blank line, a line break, a 「。」 or 「、」 or a space when there is one in the
    second half of the piece, else anywhere. Line breaks at a cut are dropped.
    """
    pieces: list[str] = []
    rest = text
    while rest:
        total = 0
        cut = len(rest)
        for i, ch in enumerate(rest):
            total += _weight(ch)
            if total > limit:
                cut = i
                break
        if cut < len(rest):
            window = rest[:cut]
            for sep in ("\n\n", "\n", "。", "、", " ", "　"):
                at = window.rfind(sep)
                if at >= cut // 2:
                    cut = at + len(sep)
                    break
        piece, rest = rest[:cut].rstrip("\n"), rest[cut:].lstrip("\n")
        if piece.strip():
            pieces.append(piece)
    return pieces


def _button_text(label: str) -> str:
    return label if len(label) <= BUTTON_TEXT_LIMIT else label[: BUTTON_TEXT_LIMIT - 1] + "…"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(replies: Iterable[Reply]) -> list[dict[str, Any]]:
    """The bot's replies as Slack messages: ``[{"text": fallback, "blocks": [...]}, ...]``.

    One reply becomes one message, or several when it needs more than 50 blocks. Its text
    becomes mrkdwn sections of at most 3,000 characters; its choices become buttons, at
    most 25 per actions block, whose ``value`` is the choice value and whose
    ``action_id`` is unique in the message. A reply with a result or an office is rendered
    as Block Kit fields instead of its text (``bot.channels.slack_blocks``). ``text`` is the
    plain fallback Slack shows in notifications (for a card, the reply's whole text).
    """
    messages: list[dict[str, Any]] = []
    for reply in replies:
        # A result or an office as Block Kit fields; anything else as text sections.
        card = card_blocks(reply)
        blocks: list[dict[str, Any]] = card or [
            {"type": "section", "text": {"type": "mrkdwn", "text": escape(piece)}}
            for piece in split_text(reply.text)
        ]
        choices = list(reply.choices)
        for start in range(0, len(choices), ACTIONS_PER_BLOCK):
            blocks.append({"type": "actions", "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": _button_text(c.label), "emoji": True},
                    "value": c.value,
                    "action_id": f"{ACTION_PREFIX}_{start + i}",
                }
                for i, c in enumerate(choices[start:start + ACTIONS_PER_BLOCK])
            ]})
        for start in range(0, len(blocks), BLOCKS_PER_MESSAGE):
            part = blocks[start:start + BLOCKS_PER_MESSAGE]
            fallback = _truncate(escape(reply.text), FALLBACK_TEXT_LIMIT) if card else _fallback(part)
            messages.append({"text": fallback, "blocks": part})
    return messages


def _fallback(blocks: Sequence[dict[str, Any]]) -> str:
    """Plain text for notifications and screen readers: the sections, else the button labels."""
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    if texts:
        return _truncate("\n".join(texts), FALLBACK_TEXT_LIMIT)
    labels = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    return _truncate("選択肢：" + " / ".join(labels), FALLBACK_TEXT_LIMIT)


def home_view() -> dict[str, Any]:
    """The App Home tab: a short introduction and the menu as buttons."""
    return {
        "type": "home",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": HOME_TEXT}},
            {"type": "actions", "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": c.label, "emoji": True},
                    "value": c.value,
                    "action_id": f"{ACTION_PREFIX}_{i}",
                }
                for i, c in enumerate(HOME_CHOICES)
            ]},
        ],
    }


def _chosen_view(blocks: Sequence[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The clicked message's blocks with its buttons replaced by a note of what was chosen.

    A message keeps its text; its buttons go, so an answered question cannot be answered
    again by a stray second click.
    """
    out = [b for b in blocks if b.get("type") != "actions"]
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(f"選択：{label}")}]})
    return out[:BLOCKS_PER_MESSAGE]


# --- Web API client ------------------------------------------------------------------------------

def _header(response: HttpResponse | None, name: str) -> str | None:
    if response is None:
        return None
    for key, values in response.headers.items():
        if key.lower() == name and values:
            return values[0] if isinstance(values, (list, tuple)) else str(values)
    return None


class RetryAfterHandler(RetryHandler):
    """On HTTP 429, wait as long as Slack's ``Retry-After`` says, then try again.

    Bounded twice: at most ``max_retry_count`` retries per call, and never a wait longer
    than ``max_wait`` seconds (a caller such as the reminder dispatcher has its own,
    longer backoff and is better off failing now). The final 429 raises ``SlackApiError``.
    """

    def __init__(self, max_retry_count: int = 3, max_wait: float = 30.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        return self._wait_of(response) <= self.max_wait

    @staticmethod
    def _wait_of(response: HttpResponse) -> float:
        raw = _header(response, "retry-after")
        try:
            return max(0.0, float(raw)) if raw is not None else 1.0
        except ValueError:
            return 1.0

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:
        assert response is not None  # _can_retry only says yes to a response
        wait = self._wait_of(response)
        log.info("slack rate limited retry_after=%.1f attempt=%d", wait, state.current_attempt + 1)
        # A little jitter so that several threads limited at once do not come back together.
        time.sleep(wait + random.uniform(0, 0.2))
        state.next_attempt_requested = True
        state.increment_current_attempt()


def make_web_client(settings: Settings, *, max_retries: int = 3, max_wait: float = 30.0) -> WebClient:
    """A Web API client on ``settings.slack_api_url`` that honours 429 ``Retry-After``."""
    if not settings.slack_bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return WebClient(
        token=settings.slack_bot_token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[ConnectionErrorRetryHandler(), RetryAfterHandler(max_retries, max_wait)],
    )


def _short(user: str | None) -> str:
    """The user as logs show it: the same short hash the core logs (never the raw Slack id)."""
    return hash_user(f"{CHANNEL}:{user}") if user else "-"


# --- the channel ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Destination:
    """Where a turn's replies go: a conversation, and a thread in it if the user wrote in one."""

    channel: str
    thread_ts: str | None = None


class TurnSink(Protocol):
    """Takes a turn to run elsewhere (``bot.turn_worker.TurnProcess``): ``submit("slack", msg, dest)``."""

    def submit(self, kind: str, *args: Any) -> None: ...


class SlackChannel:
    """The Slack app: Events API and interactivity in, Web API out.

    Args:
        bot: the core (``bot.core.Bot``).
        settings: needs ``slack_bot_token``; ``slack_signing_secret`` too unless ``socket_mode``.
        socket_mode: True when the requests arrive over Socket Mode (no signature to check).
        listener_workers: threads that run listeners after the ack.
        turns: where a turn goes once its message and destination are known: None runs it
            here, on the listener thread; ``serve`` passes a ``bot.turn_worker.TurnProcess``
            (anything with ``submit(msg, dest)``), whose child process calls ``answer``.

    Raises:
        ValueError: a required setting is missing.
    """

    def __init__(self, bot: Handles, settings: Settings, *, socket_mode: bool = False,
                 listener_workers: int = 8, turns: TurnSink | None = None) -> None:
        if not settings.slack_bot_token:
            raise ValueError("Slack needs SLACK_BOT_TOKEN")
        if not socket_mode and not settings.slack_signing_secret:
            raise ValueError("Slack over HTTP needs SLACK_SIGNING_SECRET")
        self.bot = bot
        self.settings = settings
        self.turns = turns
        self.client = make_web_client(settings)
        # Our own executor, so that close() can wait for the turns still running.
        self.executor = ThreadPoolExecutor(max_workers=listener_workers, thread_name_prefix="slack-listener")
        # Turns recorded before the ack (``serve``'s turn process): the listener, which only
        # converts and records, runs before bolt answers, so that a turn that could not be
        # recorded gets 503 (and Slack delivers it again) instead of an ack.
        durable = bool(getattr(turns, "durable", False))
        self.app = App(
            signing_secret=settings.slack_signing_secret or "",
            client=self.client,
            # No auth.test in __init__: the server starts without network; bolt calls it
            # lazily on the first request and caches the bot's ids.
            token_verification_enabled=False,
            request_verification_enabled=True,
            listener_executor=self.executor,
            logger=_bolt_logger(),
            process_before_response=durable,
        )
        if durable:
            self.app.error(self._on_listener_error)
        self._register()

    # -- entry points ---------------------------------------------------------------------------

    def dispatch(self, body: str, headers: Mapping[str, str], query: str = "") -> BoltResponse:
        """Hand one HTTP request of Slack's to bolt: signature check, ack, listener in the background.

        Returns bolt's response (401 for a forged or stale signature, 200 once acked), or 400 for
        a signed body that is not a Slack payload (a JSON array, ``actions`` not a list,
        ``payload`` not JSON …): a 5xx would make Slack retry it, and bolt would fail on it.
        """
        try:
            request: BoltRequest | None = BoltRequest(body=body, query=query, headers=dict(headers))
            well_formed = request is not None and well_formed_payload(request.body)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):  # `payload=` not JSON, a JSON array …
            request, well_formed = None, False
        if request is not None and well_formed:
            return self.app.dispatch(request)
        lower = {k.lower(): v for k, v in headers.items()}
        verifier = SignatureVerifier(self.settings.slack_signing_secret or "")
        if not verifier.is_valid(body, lower.get("x-slack-request-timestamp", ""),
                                 lower.get("x-slack-signature", "")):
            return BoltResponse(status=401, body='{"error": "invalid request"}',
                                headers={"content-type": "application/json"})
        log.warning("slack request malformed status=400 bytes=%d", len(body))
        return BoltResponse(status=400, body='{"error": "malformed request"}',
                            headers={"content-type": "application/json"})

    def socket_mode_handler(self, app_token: str) -> SocketModeHandler:
        """A Socket Mode connection for this app (``connect()`` it, ``close()`` it)."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        return SocketModeHandler(self.app, app_token)

    def close(self, wait: bool = True) -> None:
        """Stop taking work; with ``wait``, let the turns already acked finish and post."""
        self.executor.shutdown(wait=wait)

    # -- listeners ------------------------------------------------------------------------------
    # Bolt passes listener arguments by parameter name (body, context, ack, ...).

    def _register(self) -> None:
        app = self.app
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_mention)
        app.event("app_home_opened")(self._on_home_opened)
        app.action(_OUR_ACTION)(self._on_choice)
        app.command(COMMAND)(self._on_command)
        # Buttons of an older layout, or anything else interactive: ack so Slack shows no error.
        app.action(re.compile(".*"))(self._ack_only)
        # Events a workspace admin may add to the app later: ack rather than 404 (which Slack retries).
        app.event(re.compile(".*"))(self._ignore_event)

    def _on_message(self, body: dict[str, Any], context: Any) -> None:
        event = body.get("event") or {}
        if event.get("channel_type") != "im":
            return  # only direct messages; in channels the bot answers mentions
        # Edits, deletions, joins and bot posts carry a subtype; the user's own words do not
        # (file_share / thread_broadcast still are the user's message).
        if event.get("subtype") not in (None, "file_share", "thread_broadcast"):
            return
        user = event.get("user")
        if event.get("bot_id") or not user or user == context.get("bot_user_id"):
            return
        msg = IncomingMessage(channel=CHANNEL, user=user, text=to_plain(event.get("text") or ""),
                              event_id=body.get("event_id"), attachment=attachment_kind(event))
        self._turn(msg, Destination(event["channel"], event.get("thread_ts")))

    def _on_mention(self, body: dict[str, Any], context: Any) -> None:
        event = body.get("event") or {}
        user = event.get("user")
        if event.get("bot_id") or not user or user == context.get("bot_user_id"):
            return
        # Answer in a thread under the mention, so the channel is not filled with the dialog.
        dest = Destination(event["channel"], event.get("thread_ts") or event.get("ts"))
        msg = IncomingMessage(channel=CHANNEL, user=user, text=to_plain(event.get("text") or ""),
                              event_id=body.get("event_id"), attachment=attachment_kind(event))
        self._turn(msg, dest)

    def _on_home_opened(self, body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        if event.get("tab") != "home" or not event.get("user"):
            return  # the messages tab needs nothing published
        started = time.perf_counter()
        try:
            self.client.views_publish(user_id=event["user"], view=home_view())
        except SlackApiError as exc:
            log.warning("slack home publish failed user=%s error=%s", _short(event["user"]), _api_error(exc))
            return
        log.info("slack home published user=%s ms=%.1f", _short(event["user"]), (time.perf_counter() - started) * 1000)

    def _on_choice(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()  # first: Slack shows the user an error if a click is not acked within 3 seconds
        user = (body.get("user") or {}).get("id")
        value = action.get("value")
        if not user or value is None:
            return
        container = body.get("container") or {}
        message = body.get("message") or {}
        # A click has no event id; the message (or view) it was on plus the click's own
        # timestamp identifies it, should Slack or a proxy deliver it twice.
        where = container.get("message_ts") or container.get("view_id") or ""
        event_id = f"action:{where}:{action['action_ts']}" if action.get("action_ts") else None
        channel_id = container.get("channel_id") or (body.get("channel") or {}).get("id")
        if container.get("type") == "message" and channel_id and not container.get("is_ephemeral"):
            dest: Destination | None = Destination(channel_id, message.get("thread_ts"))
            label = ((action.get("text") or {}).get("text")) or value
        else:
            dest = self._open_dm(user)  # the App Home tab or an ephemeral note: answer in the DM
        if dest is None:
            return
        self._turn(IncomingMessage(channel=CHANNEL, user=user, choice=value, event_id=event_id), dest)
        if container.get("type") == "message" and channel_id and not container.get("is_ephemeral"):
            # After the turn is handed over: a click refused (503) keeps its buttons, to be clicked again.
            self._mark_chosen(channel_id, message, label)

    def _on_command(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()  # first, within 3 seconds; the answer follows as a DM
        user = body.get("user_id")
        if not user:
            return
        text = to_plain(body.get("text") or "")
        # A command has no event id; its trigger id is unique per invocation.
        event_id = f"command:{body['trigger_id']}" if body.get("trigger_id") else None
        # `/nanbyo` alone opens the menu; `/nanbyo 質問` asks as if typed in the DM.
        if text:
            msg = IncomingMessage(channel=CHANNEL, user=user, text=text, event_id=event_id)
        else:
            msg = IncomingMessage(channel=CHANNEL, user=user, choice="menu", event_id=event_id)
        dest = self._open_dm(user)
        if dest is None:
            return
        self._turn(msg, dest)
        # Answers are personal: they go to the DM, and a command typed elsewhere gets a pointer there.
        if body.get("channel_id") != dest.channel:
            try:
                respond(text=ANSWERED_IN_DM_TEXT, response_type="ephemeral")
            except Exception as exc:  # the pointer is a courtesy; the answer is already posted
                log.warning("slack command pointer failed user=%s error=%s", _short(user), type(exc).__name__)

    def _on_listener_error(self, error: Exception) -> BoltResponse | None:
        """A turn that could not be handed over (too many waiting, shutting down) gets 503, which
        Slack retries; anything else stays bolt's 500. Never the payload in the log."""
        if isinstance(error, RuntimeError):
            log.warning("slack turn refused error=%s", type(error).__name__)
            return BoltResponse(status=503, body="")
        log.error("slack listener failed error=%s", type(error).__name__, exc_info=error)
        return None

    def _ack_only(self, ack: Any) -> None:
        ack()

    def _ignore_event(self) -> None:
        return None

    # -- a turn -------------------------------------------------------------------------------

    def _turn(self, msg: IncomingMessage, dest: Destination) -> None:
        if self.turns is None:
            self.answer(msg, dest)
        else:
            self.turns.submit(CHANNEL, msg, dest)

    def answer(self, msg: IncomingMessage, dest: Destination) -> None:
        """Run one turn and post its replies to ``dest`` (an apology if the turn fails)."""
        started = time.perf_counter()
        try:
            replies = self.bot.handle(msg)
        except Exception:  # the user gets an apology; the log names the error, never the text
            log.exception("slack turn failed event=%s user=%s", msg.event_id, _short(msg.user))
            replies = [Reply(ERROR_TEXT, kind="error")]
        posted = self.post(dest, replies)
        log.info("slack turn event=%s user=%s replies=%d messages=%d ms=%.1f", msg.event_id, _short(msg.user),
                 len(replies), posted, (time.perf_counter() - started) * 1000)

    def post(self, dest: Destination, replies: Sequence[Reply]) -> int:
        """Post the rendered replies in order; stop at the first failure. Returns messages posted."""
        posted = 0
        for message in render(replies):
            try:
                self.client.chat_postMessage(channel=dest.channel, thread_ts=dest.thread_ts, **message)
            except SlackApiError as exc:
                log.warning("slack post failed error=%s posted=%d", _api_error(exc), posted)
                break
            posted += 1
        return posted

    def _open_dm(self, user: str) -> Destination | None:
        try:
            return Destination(open_dm(self.client, user))
        except SlackApiError as exc:
            log.warning("slack conversations.open failed user=%s error=%s", _short(user), _api_error(exc))
            return None

    def _mark_chosen(self, channel: str, message: dict[str, Any], label: str) -> None:
        blocks = message.get("blocks")
        if not blocks or not message.get("ts"):
            return
        try:
            self.client.chat_update(channel=channel, ts=message["ts"], blocks=_chosen_view(blocks, label),
                                    text=message.get("text") or label)
        except SlackApiError as exc:  # cosmetic: the dialog goes on anyway
            log.info("slack chat.update failed error=%s", _api_error(exc))


class _DropClientTokenNote(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when it is given a client, then warns
    at every start that the token is unused: true, expected here, and alarming in an operator's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("nanbyo.slack.bolt")
    if not any(isinstance(f, _DropClientTokenNote) for f in logger.filters):
        logger.addFilter(_DropClientTokenNote())
    return logger


_OBJECTS = ("event", "user", "team", "container", "channel", "message", "view", "enterprise")
_STRINGS = ("type", "event_id", "trigger_id", "user_id", "text", "channel_id", "challenge", "response_url")


def well_formed_payload(body: Any) -> bool:
    """True when a parsed Slack body has the shape our listeners and bolt read.

    Fields that are present (and not null) must have their documented type: an object at the
    top, ``event``, ``user``, ``container`` … objects, ``actions`` a list of objects with string
    values, the event's ``text``, ``user`` and ``channel`` strings, ``files`` a list. Unknown
    fields pass.
    """

    def has(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> bool:
        return obj.get(key) is None or isinstance(obj[key], kind)

    if not isinstance(body, dict) or not body:
        return False
    if not all(has(body, k, dict) for k in _OBJECTS if k != "user") or not has(body, "user", (dict, str)):
        return False
    if not all(has(body, k, str) for k in _STRINGS):
        return False
    actions = [] if body.get("actions") is None else body["actions"]
    if not isinstance(actions, list) or not all(
        isinstance(a, dict) and all(has(a, k, str) for k in ("value", "action_id", "action_ts", "type"))
        and has(a, "text", dict)
        for a in actions
    ):
        return False
    event = body.get("event") or {}
    if not all(has(event, k, str) for k in
               ("type", "text", "user", "channel", "channel_type", "ts", "thread_ts", "subtype", "tab", "bot_id")):
        return False
    return has(event, "files", list)


def attachment_kind(event: Mapping[str, Any]) -> str | None:
    """"image" or "file" when a message carries uploads (never downloaded), else None."""
    files = event.get("files") or []
    if not files:
        return None
    if all(str(f.get("mimetype") or "").startswith("image/") for f in files if isinstance(f, Mapping)):
        return "image"
    return "file"


def open_dm(client: WebClient, user: str) -> str:
    """The id of the bot's direct-message conversation with ``user`` (``conversations.open``)."""
    response = client.conversations_open(users=user)
    return str(response["channel"]["id"])


def _api_error(exc: SlackApiError) -> str:
    response = getattr(exc, "response", None)
    try:
        return f"{response.status_code}:{response.get('error')}" if response is not None else type(exc).__name__
    except Exception:  # pragma: no cover - defensive: a malformed response
        return type(exc).__name__


class SlackSender:
    """Pushes one message to one Slack user as a DM (the reminder dispatcher's ``Sender``).

    ``conversations.open`` then ``chat.postMessage``. A 429 is waited out (``Retry-After``)
    a bounded number of times; any final failure raises, and the dispatcher retries later
    with its own backoff. Slack has no idempotency key for ``chat.postMessage``, so the
    dispatcher's claim is what keeps a reminder from going out twice.

    Args:
        settings: needs ``slack_bot_token``; ``slack_api_url`` for the base URL.
        client: a ready client (tests); default one from ``make_web_client``.
    """

    def __init__(self, settings: Settings, client: WebClient | None = None) -> None:
        self.client = client or make_web_client(settings)

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        """Send ``text`` to ``user`` (a Slack user id; ``slack:`` prefix tolerated).

        Raises:
            SlackApiError: Slack refused (after the 429 retries) or could not be reached.
        """
        started = time.perf_counter()
        user_id = user.removeprefix(f"{CHANNEL}:")
        channel = open_dm(self.client, user_id)
        for message in render([Reply(text, kind=kind)]):
            self.client.chat_postMessage(channel=channel, **message)
        log.info("slack push kind=%s key=%s user=%s ms=%.1f", kind, key, _short(user_id),
                 (time.perf_counter() - started) * 1000)


__all__ = [
    "Destination", "HOME_CHOICES", "RetryAfterHandler", "SlackChannel", "SlackSender", "escape", "home_view",
    "make_web_client", "open_dm", "render", "split_text", "to_plain",
]
