"""Slack end to end: requests signed as Slack signs them, to the real server, against a fake Web API.

The server is the app of ``nanbyo-bot serve`` on uvicorn in this process
(``bot.server.start_in_thread``, port 0, a SQLite file per test), or the installed
``nanbyo-bot serve`` in a subprocess. The request is acked once the turn is recorded and the
turn runs afterwards, so tests wait on the fake's calls with a timeout; to assert that something
did NOT happen, they stop the server first (``shutdown()`` waits for every turn already acked),
then count.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine

from bot.bootstrap import build_bot, build_outboxes, build_service
from bot.channels.slack import (
    ACTIONS_PER_BLOCK,
    BLOCKS_PER_MESSAGE,
    BUTTON_TEXT_LIMIT,
    SECTION_TEXT_LIMIT,
    SlackOutbox,
    escape,
    render,
    to_plain,
)
from bot.config import Settings
from bot.server import start_in_thread
from bot.storage.repositories import Store
from bot.texts import HOME_CHOICES
from handlers.messages import Choice, IncomingMessage, Reply
from handlers.system import MENU_CHOICES
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, Call, FakeSlackAPI

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
MENU_TEXT_START = "指定難病の医療費助成（特定医療費）についてご案内するチャットです"


# --- signing and payloads, as Slack does them ------------------------------------------------------


def signature(body: str, timestamp: int, secret: str = SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: str
    seconds: float


def post_signed(
    url: str,
    body: str,
    *,
    content_type: str = "application/json",
    secret: str = SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResult:
    ts = int(time.time()) if timestamp is None else timestamp
    req = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature(body, ts, secret),
            **(headers or {}),
        },
    )
    return _open(req)


def _open(req: urllib.request.Request) -> HttpResult:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return HttpResult(resp.status, resp.read().decode(), time.monotonic() - started)
    except urllib.error.HTTPError as err:
        return HttpResult(err.code, err.read().decode(), time.monotonic() - started)


def get(url: str) -> HttpResult:
    return _open(urllib.request.Request(url, method="GET"))


_counter = iter(range(1, 1_000_000))


def event_callback(event: dict[str, Any], event_id: str | None = None) -> str:
    n = next(_counter)
    return json.dumps(
        {
            "token": "legacy-unused",
            "team_id": TEAM_ID,
            "api_app_id": "A1",
            "type": "event_callback",
            "event": event,
            "event_id": event_id or f"Ev{n:08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True, "is_enterprise_install": False}
            ],
        },
        ensure_ascii=False,
    )


def dm_event(text: str, user: str = "U1", **extra: Any) -> dict[str, Any]:
    n = next(_counter)
    return {
        "type": "message",
        "channel": "D" + user.removeprefix("U"),
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": f"1700001000.{n:06d}",
        "event_ts": f"1700001000.{n:06d}",
        **extra,
    }


def dm(text: str, user: str = "U1", event_id: str | None = None) -> str:
    return event_callback(dm_event(text, user), event_id)


def form(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


def click(message: Call, value: str, response_url: str, user: str = "U1") -> str:
    """A block_actions payload for clicking the button with ``value`` on a message the bot posted."""
    blocks = message.args["blocks"]
    for block in blocks:
        for element in block.get("elements", []):
            if block["type"] == "actions" and element.get("value") == value:
                n = next(_counter)
                ts = message.response["ts"]
                return form(
                    {
                        "type": "block_actions",
                        "user": {"id": user, "team_id": TEAM_ID},
                        "team": {"id": TEAM_ID},
                        "api_app_id": "A1",
                        "trigger_id": f"trig{n}",
                        "response_url": response_url,
                        "container": {
                            "type": "message",
                            "message_ts": ts,
                            "channel_id": message.args["channel"],
                            "is_ephemeral": False,
                        },
                        "channel": {"id": message.args["channel"]},
                        "message": {
                            "type": "message",
                            "ts": ts,
                            "text": message.args["text"],
                            "blocks": blocks,
                            "bot_id": BOT_ID,
                        },
                        "actions": [
                            {
                                "type": "button",
                                "action_id": element["action_id"],
                                "block_id": "b1",
                                "value": value,
                                "text": element["text"],
                                "action_ts": f"1700002000.{n:06d}",
                            }
                        ],
                    }
                )
    raise AssertionError(f"no button with value {value!r} in {blocks}")


def texts(calls: list[Call]) -> str:
    """What the posted messages show: section texts and fields, and headers (a card's figure or office)."""
    return "\n".join(
        t["text"]
        for c in calls
        for block in c.args.get("blocks") or []
        if block["type"] in ("section", "header")
        for t in ([block["text"]] if "text" in block else []) + block.get("fields", [])
    )


def button_values(call: Call) -> list[str]:
    return [e["value"] for b in call.args.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture()
def slack_settings(db_url: str, fake_slack: FakeSlackAPI) -> Settings:
    return slack_app_settings(db_url, fake_slack)


def slack_app_settings(db_url: str, fake_slack: FakeSlackAPI, **more: Any) -> Settings:
    """Settings of a Slack app on ``db_url`` that talks to ``fake_slack`` (and ``more`` settings)."""
    return Settings(
        database_url=db_url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake_slack.api_url,
        **more,
    )


@dataclass
class Running:
    url: str
    shutdown: Callable[[], None]

    @property
    def events(self) -> str:
        return self.url + "/slack/events"


@pytest.fixture()
def start_server(slack_settings: Settings) -> Iterator[Callable[..., Running]]:
    stops: list[Callable[[], None]] = []

    def start(settings: Settings | None = None, bot: Any = None) -> Running:
        settings = settings or slack_settings
        server = start_in_thread(build_service(settings, bot=bot or build_bot(settings)))
        stops.append(server.stop)
        return Running(server.url, server.stop)

    yield start
    for stop in stops:
        stop()


@pytest.fixture()
def server(start_server: Callable[..., Running]) -> Running:
    return start_server()


def answers_to(fake: FakeSlackAPI, channel: str, count: int = 1) -> list[Call]:
    return fake.wait_for("chat.postMessage", count, where=lambda c: c.args.get("channel") == channel)


# --- a DM, a click, the dialog -----------------------------------------------------------------------


def test_slack_dm_is_answered_with_text_and_buttons(server: Running, fake_slack: FakeSlackAPI) -> None:
    result = post_signed(server.events, dm("メニュー"))

    assert result.status == 200
    assert result.seconds < 3, "Slack needs the ack within 3 seconds"
    [answer] = answers_to(fake_slack, "D1")
    assert MENU_TEXT_START in texts([answer])
    assert MENU_TEXT_START in answer.args["text"], "the plain fallback carries the text too"
    assert [c.value for c in MENU_CHOICES] == [v for v in button_values(answer) if v in {c.value for c in MENU_CHOICES}]
    assert answer.headers["authorization"] == f"Bearer {TOKEN}"


def test_slack_button_click_continues_the_dialog(server: Running, fake_slack: FakeSlackAPI) -> None:
    post_signed(server.events, dm("メニュー"))
    [menu] = answers_to(fake_slack, "D1")

    result = post_signed(
        server.events,
        click(menu, "office", fake_slack.response_url()),
        content_type="application/x-www-form-urlencoded",
    )
    assert result.status == 200 and result.seconds < 3
    asked = answers_to(fake_slack, "D1", 3)[1:]
    assert "お住まいの市町村を教えてください" in texts(asked)
    # The clicked message keeps its text and shows what was chosen instead of its buttons.
    [update] = fake_slack.wait_for("chat.update")
    assert update.args["ts"] == menu.response["ts"]
    assert not [b for b in update.args["blocks"] if b["type"] == "actions"]
    assert "窓口を探す" in json.dumps(update.args["blocks"], ensure_ascii=False)

    post_signed(server.events, dm("草津町"))
    office = answers_to(fake_slack, "D1", 4)[3:]
    assert "吾妻保健福祉事務所" in texts(office)


def test_slack_mention_is_answered_in_a_thread_without_the_mention(server: Running, fake_slack: FakeSlackAPI) -> None:
    event = {
        "type": "app_mention",
        "channel": "C9",
        "user": "U7",
        "text": f"<@{BOT_USER_ID}> メニュー",
        "ts": "1700003000.000100",
        "event_ts": "1700003000.000100",
    }
    assert post_signed(server.events, event_callback(event)).status == 200

    [answer] = answers_to(fake_slack, "C9")
    assert answer.args["thread_ts"] == "1700003000.000100"
    assert MENU_TEXT_START in texts([answer]), "「<@bot> メニュー」 is the menu word once the mention is gone"


# --- uploads: never downloaded, said so kindly -----------------------------------------------------


def _upload(mimetype: str, name: str) -> dict[str, Any]:
    return {
        "id": "F" + name.upper()[:6],
        "name": name,
        "mimetype": mimetype,
        "filetype": name.rsplit(".", 1)[-1],
        "url_private": "https://files.slack.com/files-pri/T1-F1/" + name,
    }


def test_a_photo_alone_gets_a_text_only_note_and_nothing_is_downloaded(
    server: Running, fake_slack: FakeSlackAPI
) -> None:
    event = dm_event("", subtype="file_share", files=[_upload("image/jpeg", "jukyusha.jpg")])
    assert post_signed(server.events, event_callback(event)).status == 200

    [answer] = answers_to(fake_slack, "D1")
    said = texts([answer])
    assert "文字のメッセージだけ" in said and "写真は送らないでください" in said
    assert {"menu", "office"} <= set(button_values(answer))
    server.shutdown()
    assert {c.method for c in fake_slack.calls} <= {"auth.test", "chat.postMessage"}, "no file was fetched"


def test_a_question_with_a_file_is_answered_with_a_note(server: Running, fake_slack: FakeSlackAPI) -> None:
    event = dm_event("受給者証なくした", subtype="file_share", files=[_upload("application/pdf", "shinsei.pdf")])
    assert post_signed(server.events, event_callback(event)).status == 200

    note, answer = answers_to(fake_slack, "D1", 2)
    assert "読み取れないため" in texts([note]) and "文章の部分にお答えします" in texts([note])
    assert "再交付" in texts([answer])


def test_a_photo_in_the_middle_of_a_dialog_asks_the_question_again(server: Running, fake_slack: FakeSlackAPI) -> None:
    post_signed(server.events, dm("窓口を探したい"))
    asked = answers_to(fake_slack, "D1", 2)
    assert "お住まいの市町村を教えてください" in texts(asked)

    post_signed(
        server.events, event_callback(dm_event("", subtype="file_share", files=[_upload("image/png", "map.png")]))
    )
    again = answers_to(fake_slack, "D1", 3)[2:]
    assert "文字で答えてください" in texts(again) and "お住まいの市町村を教えてください" in texts(again)

    post_signed(server.events, dm("草津町"))  # the dialog goes on where it was
    assert "吾妻保健福祉事務所" in texts(answers_to(fake_slack, "D1", 4)[3:])


# --- exactly once ----------------------------------------------------------------------------------


def test_slack_retry_is_not_answered_twice(server: Running, fake_slack: FakeSlackAPI) -> None:
    body = dm("メニュー", event_id="EvRETRY1")
    assert post_signed(server.events, body).status == 200
    answers_to(fake_slack, "D1")
    retry = post_signed(server.events, body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status == 200, "a retry is acked, else Slack keeps retrying"

    server.shutdown()  # waits for the retry's turn to finish
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_same_event_on_two_instances_sharing_a_database_is_answered_once(
    start_server: Callable[..., Running], fake_slack: FakeSlackAPI
) -> None:
    first, second = start_server(), start_server()
    body = dm("メニュー", event_id="EvTWICE1")
    results: list[HttpResult] = []
    threads = [
        threading.Thread(target=lambda url=url: results.append(post_signed(url, body)))
        for url in (first.events, second.events)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [r.status for r in results] == [200, 200]
    first.shutdown()
    second.shutdown()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


# --- refused and ignored -----------------------------------------------------------------------------


def test_forged_signature_is_refused(server: Running, fake_slack: FakeSlackAPI) -> None:
    result = post_signed(server.events, dm("メニュー"), secret="not-the-secret")

    assert result.status == 401
    server.shutdown()
    assert fake_slack.calls_to("chat.postMessage") == []


def test_stale_timestamp_is_refused(server: Running, fake_slack: FakeSlackAPI) -> None:
    six_minutes_ago = int(time.time()) - 6 * 60
    result = post_signed(server.events, dm("メニュー"), timestamp=six_minutes_ago)

    assert result.status == 401
    server.shutdown()
    assert fake_slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    "bad_header",
    [
        {"X-Slack-Request-Timestamp": "not-a-number"},
        {"X-Slack-Signature": "v0=\u00e9t\u00e9"},
    ],
)
def test_malformed_signature_headers_are_refused_not_a_server_error(
    server: Running, fake_slack: FakeSlackAPI, bad_header: dict[str, str]
) -> None:
    result = post_signed(server.events, dm("メニュー"), headers=bad_header)

    assert result.status == 401
    server.shutdown()
    assert fake_slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    "event",
    [
        dm_event("私はボットです", user="U5", bot_id="B999", subtype="bot_message"),
        dm_event("私もボットです", user="U5", bot_id="B999"),
        dm_event("自分の投稿", user=BOT_USER_ID, bot_id=BOT_ID),
        dm_event("", user="U5", subtype="message_changed", message={"text": "メニュー", "user": "U5"}),
        dm_event("", user="U5", subtype="message_deleted"),
        {
            "type": "message",
            "channel": "C5",
            "channel_type": "channel",
            "user": "U5",
            "text": "メニュー",
            "ts": "1700004000.000001",
        },
    ],
    ids=["bot_message", "bot_id", "self", "edited", "deleted", "not-a-dm"],
)
def test_bot_and_edit_messages_are_ignored(server: Running, fake_slack: FakeSlackAPI, event: dict) -> None:
    result = post_signed(server.events, event_callback(event))

    assert result.status == 200, "acked (never 404, which Slack would retry)"
    server.shutdown()
    assert fake_slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize("event_type", ["app_home_opened", "tokens_revoked", "member_joined_channel"])
def test_every_event_type_is_acked(server: Running, event_type: str) -> None:
    event = {"type": event_type, "user": "U1", "tab": "messages", "channel": "D1"}

    assert post_signed(server.events, event_callback(event)).status == 200


def test_url_verification_answers_the_challenge(server: Running) -> None:
    body = json.dumps({"token": "x", "challenge": "abc123", "type": "url_verification"})
    result = post_signed(server.events, body)

    assert result.status == 200
    assert json.loads(result.body) == {"challenge": "abc123"}


# --- App Home and /nanbyo -------------------------------------------------------------------------


def test_app_home_publishes_the_menu_and_its_buttons_answer_in_the_dm(
    server: Running, fake_slack: FakeSlackAPI
) -> None:
    event = {"type": "app_home_opened", "user": "U3", "channel": "D3", "tab": "home", "event_ts": "1700005000.1"}
    assert post_signed(server.events, event_callback(event)).status == 200

    [published] = fake_slack.wait_for("views.publish")
    assert published.args["user_id"] == "U3"
    view = published.args["view"]
    assert view["type"] == "home"
    buttons = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["相談する", "自己負担を計算", "更新のお知らせ", "データを削除"]

    consult = next(b for b in buttons if b["text"]["text"] == "相談する")
    payload = form(
        {
            "type": "block_actions",
            "user": {"id": "U3"},
            "team": {"id": TEAM_ID},
            "api_app_id": "A1",
            "trigger_id": "trigH",
            "container": {"type": "view", "view_id": "V1"},
            "view": {"id": "V1", "type": "home"},
            "actions": [
                {
                    "type": "button",
                    "action_id": consult["action_id"],
                    "block_id": "h1",
                    "value": consult["value"],
                    "text": consult["text"],
                    "action_ts": "1700005001.000001",
                }
            ],
        }
    )
    assert post_signed(server.events, payload, content_type="application/x-www-form-urlencoded").status == 200
    [opened] = fake_slack.wait_for("conversations.open")
    assert opened.args["users"] == "U3"
    [answer] = answers_to(fake_slack, "D3")
    assert MENU_TEXT_START in texts([answer])


def test_home_buttons_are_choices_the_router_knows() -> None:
    known = {c.value for c in MENU_CHOICES} | {"menu"}
    assert {c.value for c in HOME_CHOICES} <= known


def _command(text: str, response_url: str, channel: str = "C42") -> str:
    return urlencode(
        {
            "token": "legacy",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": "U4",
            "user_name": "patient",
            "command": "/nanbyo",
            "text": text,
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": f"trigC{next(_counter)}",
        }
    )


def test_nanbyo_command_alone_opens_the_menu_in_the_dm(server: Running, fake_slack: FakeSlackAPI) -> None:
    result = post_signed(
        server.events, _command("", fake_slack.response_url("cmd")), content_type="application/x-www-form-urlencoded"
    )

    assert result.status == 200 and result.seconds < 3
    [answer] = answers_to(fake_slack, "D4")
    assert MENU_TEXT_START in texts([answer])
    [pointer] = fake_slack.wait_for("respond")
    assert pointer.path == "/respond/cmd" and pointer.args["response_type"] == "ephemeral"


def test_nanbyo_command_with_text_is_answered_like_a_message(server: Running, fake_slack: FakeSlackAPI) -> None:
    post_signed(
        server.events,
        _command("草津町の窓口を教えて", fake_slack.response_url()),
        content_type="application/x-www-form-urlencoded",
    )

    answers = answers_to(fake_slack, "D4")
    assert answers[0].args["channel"] == "D4"
    assert "/nanbyo" not in texts(answers)


# --- rendering within Slack's limits ---------------------------------------------------------------


class LongAnswerBot:
    """Answers everything with one very long reply and many choices (no knowledge base needed)."""

    def __init__(self, text: str, choices: tuple[Choice, ...], store: Store) -> None:
        self.reply = Reply(text, choices=choices)
        self.store = store

    def answer(self, msg: IncomingMessage, keep: Any = None) -> list[Reply]:
        return [self.reply]


def _long_text() -> str:
    paragraph = "指定難病の医療費助成について（A&B <注意>）。" * 40 + "😀\n"
    return "\n".join(paragraph for _ in range(180))  # ≈ 190,000 characters: more than 50 sections


def assert_within_limits(messages: list[dict[str, Any]]) -> None:
    for message in messages:
        assert 1 <= len(message["blocks"]) <= BLOCKS_PER_MESSAGE
        assert message["text"]
        ids = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert len(ids) == len(set(ids)), "action_id unique within a message"
        for block in message["blocks"]:
            if block["type"] == "section":
                assert block["text"]["type"] == "mrkdwn"
                assert 0 < len(block["text"]["text"]) <= SECTION_TEXT_LIMIT
            else:
                assert block["type"] == "actions"
                assert 1 <= len(block["elements"]) <= ACTIONS_PER_BLOCK
                assert all(len(e["text"]["text"]) <= BUTTON_TEXT_LIMIT for e in block["elements"])


def test_long_answer_is_split_within_block_limits(
    start_server: Callable[..., Running], slack_settings: Settings, fake_slack: FakeSlackAPI
) -> None:
    text = _long_text()
    choices = tuple(Choice(f"選択肢{i}" + "あ" * (100 if i == 0 else 0), f"v{i}") for i in range(60))
    server = start_server(bot=LongAnswerBot(text, choices, build_bot(slack_settings).store))

    post_signed(server.events, dm("長い答えをください"))
    server.shutdown()

    posted = fake_slack.calls_to("chat.postMessage")
    assert len(posted) >= 2, "more than 50 blocks go out as several messages"
    assert_within_limits([c.args for c in posted])
    assert [v for c in posted for v in button_values(c)] == [c.value for c in choices]
    joined = "".join(b["text"]["text"] for c in posted for b in c.args["blocks"] if b["type"] == "section")
    assert joined.replace("\n", "") == escape(text).replace("\n", ""), "nothing lost, nothing reordered"


@pytest.mark.parametrize("text", ["", "短い", "a&b<c>d", "😀" * 2000, "あ" * 10_000, "&" * 4000, "。\n" * 5000])
def test_render_keeps_every_reply_within_limits(text: str) -> None:
    messages = render([Reply(text, choices=(Choice("はい", "yes"),))])

    assert_within_limits(messages)
    assert messages[-1]["blocks"][-1]["elements"][0]["value"] == "yes"


def test_render_escapes_slack_markup_only() -> None:
    [message] = render([Reply("1割<2割 & *太字ではない* <@U1>")])

    assert message["blocks"][0]["text"]["text"] == "1割&lt;2割 &amp; *太字ではない* &lt;@U1&gt;"


@pytest.mark.parametrize(
    "raw, plain",
    [
        (f"<@{BOT_USER_ID}> 上限額は？", "上限額は？"),
        ("<@U2|taro> 1割&lt;2割 &amp; 3割&gt;", "1割<2割 & 3割>"),
        ("<https://www.nanbyou.or.jp/|難病情報センター> を見ました", "難病情報センター を見ました"),
        ("<#C1|general> で聞きました <!here>", "#general で聞きました"),
    ],
)
def test_incoming_markup_becomes_plain_text(raw: str, plain: str) -> None:
    assert to_plain(raw) == plain


# --- rude inputs through the real app ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("あ" * 10_000, "長すぎる"),
        ("", "メッセージが空のようです"),
        ("😀🙏", None),
        ("2027年3月31日", None),
    ],
)
def test_rude_dms_get_a_polite_answer(
    server: Running, fake_slack: FakeSlackAPI, text: str, expected: str | None
) -> None:
    assert post_signed(server.events, dm(text)).status == 200

    answers = answers_to(fake_slack, "D1")
    assert texts(answers)
    if expected:
        assert expected in texts(answers)


# --- health and routes -----------------------------------------------------------------------------


def test_healthz_reports_ok(server: Running) -> None:
    result = get(server.url + "/healthz")

    assert result.status == 200
    assert json.loads(result.body) == {"status": "ok"}


def test_healthz_reports_503_when_the_database_is_away(
    start_server: Callable[..., Running], slack_settings: Settings, tmp_path: Path
) -> None:
    bot = build_bot(slack_settings)
    bot.store = Store(create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"))
    server = start_server(bot=bot)

    result = get(server.url + "/healthz")

    assert result.status == 503


def test_unknown_paths_and_unconfigured_slack_give_404(start_server: Callable[..., Running], db_url: str) -> None:
    server = start_server(settings=Settings(database_url=db_url))

    assert post_signed(server.url + "/slack/events", dm("メニュー")).status == 404
    assert get(server.url + "/nowhere").status == 404
    assert get(server.url + "/slack/events").status == 404
    assert post_signed(server.url + "/healthz", "{}").status == 405


# --- reminders through SlackOutbox ------------------------------------------------------------------


def test_reminder_is_delivered_as_a_dm(slack_settings: Settings, fake_slack: FakeSlackAPI) -> None:
    SlackOutbox(slack_settings).send("U8", "受給者証の有効期限が近づいています。", "reminder", "reminder-1-60")

    [opened] = fake_slack.calls_to("conversations.open")
    assert opened.args["users"] == "U8"
    [posted] = fake_slack.calls_to("chat.postMessage")
    assert posted.args["channel"] == "D8"
    assert "受給者証の有効期限が近づいています。" in posted.args["text"]


def test_rate_limited_reminder_waits_for_retry_after_and_is_delivered_once(
    slack_settings: Settings, fake_slack: FakeSlackAPI
) -> None:
    fake_slack.rate_limit(1, retry_after=1, method="chat.postMessage")
    started = time.monotonic()

    SlackOutbox(slack_settings).send("U8", "更新のお知らせです。", "reminder", "reminder-2-30")

    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert len(fake_slack.calls_to("chat.postMessage", ok_only=False)) == 2
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_rate_limited_beyond_the_retries_raises(slack_settings: Settings, fake_slack: FakeSlackAPI) -> None:
    from slack_sdk.errors import SlackApiError

    fake_slack.rate_limit(10, retry_after=0, method="chat.postMessage")

    with pytest.raises(SlackApiError):
        SlackOutbox(slack_settings).send("U8", "更新のお知らせです。", "reminder", "reminder-3-7")
    assert fake_slack.calls_to("chat.postMessage") == []


def test_server_gives_the_scheduler_a_slack_sender(slack_settings: Settings) -> None:
    assert isinstance(build_outboxes(slack_settings)["slack"], SlackOutbox)
    assert build_outboxes(Settings(database_url=slack_settings.database_url)) == {}


# --- the installed command ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if get(url + "/healthz").status == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not become healthy")


def test_nanbyo_bot_serve_answers_a_dm_and_stops_on_sigterm(tmp_path: Path, fake_slack: FakeSlackAPI) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "LOG_LEVEL": "INFO",
    }
    env.pop("LINE_CHANNEL_SECRET", None)
    env.pop("LINE_CHANNEL_ACCESS_TOKEN", None)
    exe = Path(sys.executable).with_name("nanbyo-bot")
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        secret_words = "草津町に住んでいます"
        assert post_signed(url + "/slack/events", dm(secret_words)).status == 200
        answers_to(fake_slack, "D1")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, stderr
    assert f"listening on http://127.0.0.1:{port}" in stderr
    assert "scheduler on" in stderr
    assert "slack turn event=" in stderr, "the turn is logged ..."
    assert secret_words not in stderr, "... without the message text"


def test_socket_mode_without_app_token_is_a_clear_error(db_url: str) -> None:
    from tests.conftest import run_cli

    result = run_cli(
        ["serve", "--socket-mode", "--port", "0"],
        env={"DATABASE_URL": db_url, "SLACK_APP_TOKEN": "", "SLACK_BOT_TOKEN": TOKEN},
    )

    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr


# --- Socket Mode, LINE and the scheduler, as the server mounts them ---------------------------------


def test_socket_mode_request_is_answered_without_a_signature(
    slack_settings: Settings, fake_slack: FakeSlackAPI
) -> None:
    from dataclasses import replace

    from slack_bolt import BoltRequest

    settings = replace(slack_settings, slack_signing_secret=None)
    service = build_service(settings, pooled=False, socket_mode=True)
    assert service.slack.socket_mode_handler("xapp-test").app is service.slack.app

    # What SocketModeHandler hands to bolt for an events_api envelope.
    response = service.slack.app.dispatch(BoltRequest(body=json.loads(dm("メニュー")), mode="socket_mode"))
    service.close()

    assert response.status == 200
    assert MENU_TEXT_START in texts(fake_slack.calls_to("chat.postMessage"))


def test_slack_over_http_needs_the_signing_secret(slack_settings: Settings) -> None:
    from dataclasses import replace

    from bot.channels.slack import SlackIntake

    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        SlackIntake(replace(slack_settings, slack_signing_secret=None), runner=object())  # type: ignore[arg-type]


@pytest.fixture()
def line_settings(slack_settings: Settings) -> Settings:
    from dataclasses import replace

    return replace(slack_settings, line_channel_secret="line-secret", line_channel_access_token="line-token")


def test_the_scheduler_gets_a_sender_per_configured_channel(line_settings: Settings) -> None:
    from bot.channels.line import LineOutbox

    senders = build_outboxes(line_settings)
    assert isinstance(senders["slack"], SlackOutbox) and isinstance(senders["line"], LineOutbox)


def test_scheduler_is_started_with_the_senders(monkeypatch: pytest.MonkeyPatch, slack_settings: Settings) -> None:
    import types

    from bot.server import start_reminders

    started: list[tuple[Settings, dict]] = []
    module = types.ModuleType("bot.reminders")
    module.start_scheduler = lambda settings, senders: started.append((settings, senders)) or "scheduler"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.reminders", module)
    senders = build_outboxes(slack_settings)

    assert start_reminders(slack_settings, senders) == "scheduler"
    assert started == [(slack_settings, senders)]


def test_manifest_matches_what_the_server_handles(server: Running) -> None:
    import yaml

    from bot.channels.slack import COMMAND

    manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "slack" / "manifest.yml").read_text())
    settings = manifest["settings"]
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [COMMAND]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
    ]
    assert all(u.endswith("/slack/events") for u in urls)
    for subscribed in settings["event_subscriptions"]["bot_events"]:
        event = {
            "type": subscribed.split(".")[0],
            "user": "U1",
            "channel": "D1",
            "tab": "messages",
            "channel_type": "im",
            "subtype": "channel_join",
            "ts": "1.1",
        }
        assert post_signed(server.events, event_callback(event)).status == 200, subscribed


@pytest.mark.parametrize("choice", HOME_CHOICES, ids=lambda c: c.value)
def test_each_home_button_gets_its_own_answer(chat: Any, choice: Choice) -> None:
    chat.channel = "slack"

    replies = chat.click(choice.value)

    assert replies and all(r.kind != "fallback" for r in replies)
    if choice.value.startswith("start:") or choice.value == "delete":
        assert replies[-1].expecting or replies[-1].choices, "a dialog starts and asks its first question"


def test_real_line_channel_is_mounted_and_refuses_a_forged_signature(
    line_settings: Settings, start_server: Callable[..., Running]
) -> None:
    server = start_server(settings=line_settings)

    forged = _open(
        urllib.request.Request(
            server.url + "/line/callback",
            data=b'{"events":[]}',
            method="POST",
            headers={"X-Line-Signature": "Zm9yZ2Vk"},
        )
    )

    assert forged.status == 400


# --- feedback on answers (issue 28) ------------------------------------------------------------------


def test_slack_answer_ends_with_a_feedback_block_whose_click_and_note_are_recorded(
    server: Running, fake_slack: FakeSlackAPI, db_url: str
) -> None:
    from sqlalchemy import text as sql

    post_signed(server.events, dm("受給者証なくした"))
    [answer] = answers_to(fake_slack, "D1")
    actions = [b for b in answer.args["blocks"] if b["type"] == "actions"]
    assert len(actions) == 2, "the buttons that lead on, then the feedback pair in a block of its own"
    assert all(e["value"].startswith("topic:") for e in actions[0]["elements"])
    assert [e["text"]["text"] for e in actions[1]["elements"]] == ["👍 役に立った", "👎 役に立たなかった"]
    action_ids = [e["action_id"] for b in actions for e in b["elements"]]
    assert len(set(action_ids)) == len(action_ids), "action ids stay unique in the message"

    no = actions[1]["elements"][1]["value"]
    post_signed(
        server.events, click(answer, no, fake_slack.response_url()), content_type="application/x-www-form-urlencoded"
    )
    ask = answers_to(fake_slack, "D1", 2)[1]
    assert "足りなかったこと" in texts([ask])
    assert button_values(ask) == ["feedback-skip", "office"]

    post_signed(server.events, dm("鈴木です。再発行にかかる日数が知りたかった 080-1111-2222"))
    assert "ありがとうございます" in texts(answers_to(fake_slack, "D1", 3)[2:])
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sql("SELECT topic, kind, helpful, note, user_key FROM answer_feedback")).all()
    engine.dispose()
    [(topic, kind, helpful, note, user_key)] = rows
    assert (topic, kind, bool(helpful)) == ("reissue", "answer", False)
    assert "再発行にかかる日数が知りたかった" in note and "鈴木" not in note and "080" not in note
    assert "U1" not in user_key


def test_render_puts_the_feedback_pair_after_every_leading_button() -> None:
    leading = tuple(Choice(f"話題{i}", f"topic:t{i}") for i in range(30))
    reply = Reply(
        "答え",
        choices=(
            *leading,
            Choice("👍 役に立った", "feedback:yes:answer:t"),
            Choice("👎 役に立たなかった", "feedback:no:answer:t"),
        ),
    )
    [message] = render([reply])
    values = [e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert values[:30] == [c.value for c in leading]
    assert values[30:] == ["feedback:yes:answer:t", "feedback:no:answer:t"]
    assert [e["value"] for e in message["blocks"][-1]["elements"]] == values[30:]
