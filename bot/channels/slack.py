"""The Slack channel: Slack requests in (``to_incoming``), replies out (``SlackOutbox``).

In: ``SlackIntake`` is a slack_bolt ``App`` that verifies each request (signature and timestamp,
or Socket Mode), answers ``url_verification``, and hands every payload to ``to_incoming``, a pure
function that turns it into ``(IncomingMessage, Address)`` pairs: direct messages, mentions,
button clicks, the ``/nanbyo`` command and the App Home tab opened. The pairs go to the turn
runner (``bot.intake``); the ack follows once the runner took them (recorded), or a 503 when it
refused them (Slack then delivers the event again).

Out: ``SlackOutbox.deliver`` renders replies (``render``: text as mrkdwn sections, choices as
buttons whose value is the choice value; ``home_view`` for the App Home) and posts them with the
Web API, whose client waits out HTTP 429 (``Retry-After``) and retries connection errors
(slack_sdk's retry handlers). It also sends the reminders (``send``).

What it is not: no HTTP server (``bot.server``), no wording (``bot.texts``), no scheduling of
turns (``bot.intake``), no state. Message text is never logged.

Slack facts this module is built around:

- Slack wants an HTTP answer within 3 seconds, else it retries the event (up to three times,
  with ``X-Slack-Retry-Num``). A retry, or the same event reaching a second instance, is
  answered once: the event id goes in ``IncomingMessage.event_id`` and the core records it in
  the database with the turn. Retries are not dropped blindly, because the first delivery may
  have died before it was handled.
- An event type with no listener gets a 404, which Slack treats as a failure and retries:
  every event has a listener, even when it does nothing.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryState
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.channels.slack_blocks import card_blocks
from bot.config import Settings
from bot.texts import ANSWERED_IN_DM_TEXT, split_text
from handlers.messages import FEEDBACK_PREFIX, HOME_OPENED, Address, IncomingMessage, Reply, SlackAddress

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


class Runner(Protocol):
    """Where the pairs go (``bot.intake``); raises ``RuntimeError`` when it cannot take them now."""

    def submit(self, turns: Sequence[tuple[IncomingMessage, Address]]) -> None: ...


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


def _button_text(label: str) -> str:
    return label if len(label) <= BUTTON_TEXT_LIMIT else label[: BUTTON_TEXT_LIMIT - 1] + "…"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(replies: Iterable[Reply]) -> list[dict[str, Any]]:
    """The one rendering step of this channel: the bot's replies as Slack messages.

    Each is ``{"text": fallback, "blocks": [...]}``.

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
            for piece in split_text(reply.text, SECTION_TEXT_LIMIT, _weight)
        ]
        # The buttons that lead on first; the feedback pair (handlers.feedback) in a small block of its own.
        choices = [c for c in reply.choices if not c.value.startswith(FEEDBACK_PREFIX)]
        for start in range(0, len(choices), ACTIONS_PER_BLOCK):
            blocks.append(_buttons(choices[start : start + ACTIONS_PER_BLOCK], start))
        judged = [c for c in reply.choices if c.value.startswith(FEEDBACK_PREFIX)]
        if judged:
            blocks.append(_buttons(judged, len(choices)))
        for start in range(0, len(blocks), BLOCKS_PER_MESSAGE):
            part = blocks[start : start + BLOCKS_PER_MESSAGE]
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


def _buttons(choices: Sequence[Any], start: int = 0) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": _button_text(c.label), "emoji": True},
                "value": c.value,
                "action_id": f"{ACTION_PREFIX}_{start + i}",
            }
            for i, c in enumerate(choices)
        ],
    }


def home_view(replies: Sequence[Reply]) -> dict[str, Any]:
    """The App Home tab: the core's home text (mrkdwn as written) and its menu as buttons."""
    blocks: list[dict[str, Any]] = []
    for reply in replies:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": reply.text}})
        if reply.choices:
            blocks.append(_buttons(reply.choices[:ACTIONS_PER_BLOCK]))
    return {"type": "home", "blocks": blocks[:BLOCKS_PER_MESSAGE]}


def _chosen_view(blocks: Sequence[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The clicked message's blocks with its buttons replaced by a note of what was chosen.

    A message keeps its text; its buttons go, so an answered question cannot be answered
    again by a stray second click.
    """
    out = [b for b in blocks if b.get("type") != "actions"]
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(f"選択：{label}")}]})
    return out[:BLOCKS_PER_MESSAGE]


# --- in: a verified payload → (message, address) pairs -------------------------------------------


def to_incoming(body: Mapping[str, Any], bot_user_id: str | None = None) -> list[tuple[IncomingMessage, Address]]:
    """The turns in one verified Slack payload (an Events API callback, a click, a command).

    Pure: reads ``body`` only. ``bot_user_id`` is this bot's user, whose own posts are ignored.
    Ignored (no pair): bots, edits and deletions, channel messages that do not mention the bot,
    other apps' buttons, the App Home's messages tab, event types the bot does not answer.
    """
    kind = body.get("type")
    if kind == "event_callback":
        return _from_event(body.get("event") or {}, body.get("event_id"), bot_user_id)
    if kind == "block_actions":
        return _from_click(body)
    if body.get("command") == COMMAND and body.get("user_id"):
        text = to_plain(body.get("text") or "")
        user = str(body["user_id"])
        # A command has no event id; its trigger id is unique per invocation.
        event_id = f"command:{body['trigger_id']}" if body.get("trigger_id") else None
        # `/nanbyo` alone opens the menu; `/nanbyo 質問` asks as if typed in the DM.
        msg = IncomingMessage(CHANNEL, user, text=text or None, choice=None if text else "menu", event_id=event_id)
        # Answers are personal: they go to the DM, and a command typed elsewhere gets a pointer there.
        typed_in_dm = str(body.get("channel_id") or "").startswith("D")
        return [(msg, SlackAddress(CHANNEL, user, pointer_url=None if typed_in_dm else body.get("response_url")))]
    return []


def _from_event(
    event: Mapping[str, Any], event_id: str | None, bot_user_id: str | None
) -> list[tuple[IncomingMessage, Address]]:
    user = event.get("user")
    if not user or event.get("bot_id") or user == bot_user_id:
        return []
    kind = event.get("type")
    if kind == "app_home_opened":
        if event.get("tab") != "home":
            return []  # the messages tab needs nothing published
        return [(IncomingMessage(CHANNEL, user, event=HOME_OPENED), SlackAddress(CHANNEL, user, home=True))]
    if kind == "message":
        if event.get("channel_type") != "im":
            return []  # only direct messages; in channels the bot answers mentions
        # Edits, deletions, joins and bot posts carry a subtype; the user's own words do not
        # (file_share / thread_broadcast still are the user's message).
        if event.get("subtype") not in (None, "file_share", "thread_broadcast"):
            return []
        thread = event.get("thread_ts")
    elif kind == "app_mention":
        # Answer in a thread under the mention, so the channel is not filled with the dialog.
        thread = event.get("thread_ts") or event.get("ts")
    else:
        return []
    msg = IncomingMessage(
        CHANNEL, user, text=to_plain(event.get("text") or ""), event_id=event_id, attachment=attachment_kind(event)
    )
    return [(msg, SlackAddress(CHANNEL, user, conversation=event.get("channel"), thread=thread))]


def _from_click(body: Mapping[str, Any]) -> list[tuple[IncomingMessage, Address]]:
    """The turns of a click (``block_actions``): one per button of ours, addressed by where the button was."""
    user = (body.get("user") or {}).get("id")
    if not user:
        return []
    container = body.get("container") or {}
    address = _CLICK_ADDRESSES.get(container.get("type"), _click_in_dm)
    return [
        (_click_message(user, container, action), address(body, user, action))
        for action in body.get("actions") or []
        if _is_our_button(action)
    ]


def _is_our_button(action: Mapping[str, Any]) -> bool:
    # Another app's button, or one whose action id this bot does not use: acked, nothing to do.
    return action.get("value") is not None and bool(_OUR_ACTION.match(action.get("action_id") or ""))


def _click_message(user: str, container: Mapping[str, Any], action: Mapping[str, Any]) -> IncomingMessage:
    # A click has no event id; the message (or view) it was on plus the click's own
    # timestamp identifies it, should Slack or a proxy deliver it twice.
    where = container.get("message_ts") or container.get("view_id") or ""
    event_id = f"action:{where}:{action['action_ts']}" if action.get("action_ts") else None
    return IncomingMessage(CHANNEL, user, choice=action["value"], event_id=event_id)


def _click_on_message(body: Mapping[str, Any], user: str, action: Mapping[str, Any]) -> Address:
    """A button on a message: answer beside it (its conversation and thread), noting the choice on it.

    An ephemeral note cannot be answered beside or updated: that click is answered in the DM.
    """
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel_id = container.get("channel_id") or (body.get("channel") or {}).get("id")
    if not channel_id or container.get("is_ephemeral"):
        return _click_in_dm(body, user, action)
    label = (action.get("text") or {}).get("text") or action["value"]
    clicked = (
        (channel_id, message["ts"], label, json.dumps(message.get("blocks") or [], ensure_ascii=False))
        if message.get("ts") and message.get("blocks")
        else None
    )
    return SlackAddress(CHANNEL, user, conversation=channel_id, thread=message.get("thread_ts"), clicked=clicked)


def _click_in_dm(body: Mapping[str, Any], user: str, action: Mapping[str, Any]) -> Address:
    """A button on the App Home tab (or an ephemeral note): answer in the DM."""
    return SlackAddress(CHANNEL, user)


# Where a click is answered, by the kind of container its button was in (``view``: the App Home tab).
_CLICK_ADDRESSES: dict[str | None, Callable[[Mapping[str, Any], str, Mapping[str, Any]], Address]] = {
    "message": _click_on_message,
    "view": _click_in_dm,
}


# --- in: the bolt app ----------------------------------------------------------------------------


class SlackIntake:
    """The Slack app: bolt verifies and acks, ``to_incoming`` converts, the runner takes the turns.

    The listener runs before bolt answers (``process_before_response``): it only converts and
    hands the pairs to the runner, which records them (``bot.intake``) or runs them
    (``InlineRunner``); a runner that refuses them (full, or shutting down) makes the answer a
    503, and Slack delivers the event again.

    Args:
        settings: needs ``slack_bot_token``; ``slack_signing_secret`` too unless ``socket_mode``.
        runner: where the turns go.
        client: the Web API client (bolt asks it who the bot is, once).
        socket_mode: True when the requests arrive over Socket Mode (no signature to check).

    Raises:
        ValueError: a required setting is missing.
    """

    # The hand-off desk (bot.handoff.HandoffDesk) when a staff channel is configured: it takes the
    # staff channel's messages (the staff's replies in a hand-off's thread) before any turn is made.
    staff: Any = None

    def __init__(
        self, settings: Settings, runner: Runner, client: WebClient | None = None, *, socket_mode: bool = False
    ) -> None:
        if not settings.slack_bot_token:
            raise ValueError("Slack needs SLACK_BOT_TOKEN")
        if not socket_mode and not settings.slack_signing_secret:
            raise ValueError("Slack over HTTP needs SLACK_SIGNING_SECRET")
        self.settings = settings
        self.runner = runner
        web = client or make_web_client(settings)
        # Who the bot is (its own posts are ignored): from SLACK_BOT_USER_ID, else asked once with
        # auth.test on a thread of its own. Never on the ack path: bolt's default authorization calls
        # auth.test on the first request, so an unreachable or slow Web API would hold (or fail)
        # every ack; ``authorize`` answers from what is known, at once.
        self.bot_user_id: str | None = settings.slack_bot_user_id
        if self.bot_user_id is None:
            threading.Thread(target=self._who_am_i, args=(web,), name="slack-auth-test", daemon=True).start()

        def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            # A plain function: bolt passes its arguments by their names.
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id,
                bot_token=settings.slack_bot_token,
                bot_user_id=self.bot_user_id,
            )

        self.app = App(
            signing_secret=settings.slack_signing_secret or "",
            # A client without the token: with one, bolt installs its own authorization (above).
            client=WebClient(token=None, base_url=web.base_url, timeout=web.timeout),
            authorize=authorize,
            token_verification_enabled=False,
            request_verification_enabled=True,
            logger=_bolt_logger(),
            process_before_response=True,
        )
        self.app.error(self._on_listener_error)
        self.app.event(re.compile(".*"))(self._on_payload)
        self.app.action(re.compile(".*"))(self._on_payload)
        self.app.command(COMMAND)(self._on_payload)

    def _who_am_i(self, web: WebClient, attempts: int = 5) -> None:
        """Learn the bot's user id with auth.test, off the ack path; a few tries, then do without
        (messages from bots are ignored by their ``bot_id`` anyway)."""
        for n in range(attempts):
            try:
                self.bot_user_id = str(web.auth_test()["user_id"])
                return
            except Exception as exc:  # the Web API is away: acks go on, the next try is later
                log.warning("slack auth.test failed attempt=%d error=%s", n + 1, type(exc).__name__)
                time.sleep(min(60.0, 2.0 ** (n + 1)))

    def dispatch(self, body: str, headers: Mapping[str, str], query: str = "") -> BoltResponse:
        """One HTTP request of Slack's: signature check, then the listener, then the ack.

        Returns bolt's response (401 for a forged or stale signature, 200 once acked), or 400 for
        a signed body that is not a Slack payload (a JSON array, ``actions`` not a list,
        ``payload`` not JSON …): a 5xx would make Slack retry it, and bolt would fail on it.
        """
        lower = {k.lower(): v for k, v in headers.items()}
        if not _plausible_signature_headers(lower):
            # Bolt raises (a 500) on a non-numeric timestamp or a non-ASCII signature; such a
            # request cannot be Slack's, so it is refused like a forged one.
            return BoltResponse(
                status=401, body='{"error": "invalid request"}', headers={"content-type": "application/json"}
            )
        try:
            request: BoltRequest | None = BoltRequest(body=body, query=query, headers=dict(headers))
            well_formed = request is not None and well_formed_payload(request.body)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
            # `payload=` not JSON, a JSON array, JSON nested deeper than the parser goes …
            request, well_formed = None, False
        if request is not None and well_formed:
            return self.app.dispatch(request)
        verifier = SignatureVerifier(self.settings.slack_signing_secret or "")
        if not verifier.is_valid(body, lower.get("x-slack-request-timestamp", ""), lower.get("x-slack-signature", "")):
            return BoltResponse(
                status=401, body='{"error": "invalid request"}', headers={"content-type": "application/json"}
            )
        log.warning("slack request malformed status=400 bytes=%d", len(body))
        return BoltResponse(
            status=400, body='{"error": "malformed request"}', headers={"content-type": "application/json"}
        )

    def socket_mode_handler(self, app_token: str) -> SocketModeHandler:
        """A Socket Mode connection for this app (``connect()`` it, ``close()`` it)."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        return SocketModeHandler(self.app, app_token)

    # Bolt passes listener arguments by parameter name.
    def _on_payload(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        if self.staff is not None and self.staff.take(body):  # recorded before the ack, or a 503
            ack()
            return
        turns = to_incoming(body, context.get("bot_user_id"))
        if turns:
            self.runner.submit(turns)
        ack()

    def _on_listener_error(self, error: Exception) -> BoltResponse | None:
        """Turns the runner refused (too many waiting, shutting down) get 503, which Slack retries;
        anything else stays bolt's 500. Never the payload in the log."""
        if isinstance(error, RuntimeError):
            log.warning("slack turn refused error=%s", type(error).__name__)
            return BoltResponse(status=503, body="")
        log.error("slack listener failed error=%s", type(error).__name__, exc_info=error)
        return None


# --- out: the Web API ----------------------------------------------------------------------------


class CappedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (waits ``Retry-After``), refusing to wait longer than ``max_wait``
    seconds: a caller such as the reminder dispatcher has its own, longer backoff and is better
    off failing now. The final 429 raises ``SlackApiError``."""

    def __init__(self, max_retry_count: int = 3, max_wait: float = 30.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            return float(wait[0] if isinstance(wait, (list, tuple)) else wait) <= self.max_wait
        except ValueError:
            return False


def make_web_client(settings: Settings, *, max_retries: int = 3, max_wait: float = 30.0) -> WebClient:
    """A Web API client on ``settings.slack_api_url`` that honours 429 ``Retry-After``."""
    if not settings.slack_bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return WebClient(
        token=settings.slack_bot_token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[ConnectionErrorRetryHandler(), CappedRateLimitRetryHandler(max_retries, max_wait)],
    )


class SlackOutbox:
    """Delivers replies to a Slack address, and reminders to a user (the dispatcher's ``Sender``).

    Args:
        settings: needs ``slack_bot_token``; ``slack_api_url`` for the base URL.
        client: a ready client (tests); default one from ``make_web_client``.
    """

    def __init__(self, settings: Settings, client: WebClient | None = None) -> None:
        self.client = client or make_web_client(settings)

    def deliver(self, address: Address, replies: Sequence[Reply], key: str | None = None) -> None:
        """Post ``replies`` to ``address`` in order (the App Home view when ``address.home``).

        Raises:
            SlackApiError: Slack refused (after the 429 retries) or could not be reached; the
                messages before it were posted.
        """
        address = SlackAddress.of(address)
        if address.home:
            self.client.views_publish(user_id=address.user, view=home_view(replies))
            return
        if address.clicked:
            self._mark_chosen(*address.clicked)
        if not replies:
            return
        conversation = address.conversation or open_dm(self.client, address.user)
        for n, message in enumerate(render(replies)):
            try:
                self.client.chat_postMessage(channel=conversation, thread_ts=address.thread, **message)
            except Exception as exc:
                # The messages before it are posted, and a retry of the delivery posts them again
                # (no idempotency key): the runner counts it as an answer that may show twice.
                exc.partly_delivered = n > 0  # type: ignore[attr-defined]
                raise
        if address.pointer_url:
            try:
                WebhookClient(address.pointer_url, timeout=10).send(text=ANSWERED_IN_DM_TEXT, response_type="ephemeral")
            except Exception as exc:  # the pointer is a courtesy; the answer is already posted
                log.warning("slack command pointer failed error=%s", type(exc).__name__)

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        """A reminder: ``text`` to ``user`` (a Slack user id; ``slack:`` prefix tolerated) as a DM.

        Slack has no idempotency key for ``chat.postMessage``, so the dispatcher's claim is what
        keeps a reminder from going out twice.

        Raises:
            SlackApiError: Slack refused (after the 429 retries) or could not be reached.
        """
        self.deliver(SlackAddress(CHANNEL, user.removeprefix(f"{CHANNEL}:")), [Reply(text, kind=kind)], key)

    def _mark_chosen(self, channel: str, ts: str, label: str, blocks: str) -> None:
        """The clicked message keeps its text; its buttons give way to a note of what was chosen,
        so that an answered question cannot be answered again by a stray second click."""
        try:
            self.client.chat_update(channel=channel, ts=ts, blocks=_chosen_view(json.loads(blocks), label), text=label)
        except SlackApiError as exc:  # cosmetic: the dialog goes on anyway
            log.info("slack chat.update failed error=%s", _api_error(exc))


# --- helpers -------------------------------------------------------------------------------------


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
_ACTION_STRINGS = ("value", "action_id", "action_ts", "type")
_EVENT_STRINGS = ("type", "text", "user", "channel", "channel_type", "ts", "thread_ts", "subtype", "tab", "bot_id")


def well_formed_payload(body: Any) -> bool:
    """True when a parsed Slack body has the shape our listeners and bolt read.

    Fields that are present (and not null) must have their documented type: an object at the
    top, ``event``, ``user``, ``container`` … objects, ``actions`` a list of objects with string
    values, the event's ``text``, ``user`` and ``channel`` strings, ``files`` a list. Unknown
    fields pass.
    """
    return isinstance(body, dict) and bool(body) and all(check(body) for check in _PAYLOAD_CHECKS)


def _has(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> bool:
    """True when ``key`` is absent, null, or of type ``kind``."""
    return obj.get(key) is None or isinstance(obj[key], kind)


def _top_fields_typed(body: dict[str, Any]) -> bool:
    objects = all(_has(body, k, dict) for k in _OBJECTS if k != "user") and _has(body, "user", (dict, str))
    return objects and all(_has(body, k, str) for k in _STRINGS)


def _click_user_is_object(body: dict[str, Any]) -> bool:
    # An event's user is an id; a click's is an object (``_from_click`` reads its ``id``).
    return body.get("type") != "block_actions" or _has(body, "user", dict)


def _actions_typed(body: dict[str, Any]) -> bool:
    actions = [] if body.get("actions") is None else body["actions"]
    return isinstance(actions, list) and all(
        isinstance(a, dict) and all(_has(a, k, str) for k in _ACTION_STRINGS) and _has(a, "text", dict) for a in actions
    )


def _event_typed(body: dict[str, Any]) -> bool:
    event = body.get("event") or {}
    return all(_has(event, k, str) for k in _EVENT_STRINGS) and _has(event, "files", list)


# In this order: the event is read only once the top-level fields are known to be objects.
_PAYLOAD_CHECKS: tuple[Callable[[dict[str, Any]], bool], ...] = (
    _top_fields_typed,
    _click_user_is_object,
    _actions_typed,
    _event_typed,
)


def attachment_kind(event: Mapping[str, Any]) -> str | None:
    """ "image" or "file" when a message carries uploads (never downloaded), else None."""
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


__all__ = [
    "SlackIntake",
    "SlackOutbox",
    "escape",
    "home_view",
    "make_web_client",
    "open_dm",
    "render",
    "to_incoming",
    "to_plain",
]


def _plausible_signature_headers(lower: Mapping[str, str]) -> bool:
    """True unless the timestamp is not a number or the signature is not ASCII (Slack sends neither)."""
    timestamp = lower.get("x-slack-request-timestamp")
    signature = lower.get("x-slack-signature")
    if timestamp is not None and not (timestamp.strip().isascii() and timestamp.strip().isdigit()):
        return False
    return signature is None or signature.isascii()
