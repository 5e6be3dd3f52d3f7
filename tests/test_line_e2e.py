"""The LINE channel end to end: signed webhooks with real bytes in, a recording fake LINE API out.

Webhooks are signed exactly as LINE signs them (base64 HMAC-SHA256 of the raw body with the
channel secret) and go through ``LineWebhook.handle_callback`` (with the inline turn runner, so
that a webhook's turns are answered when it returns, unless a test says otherwise) or through the
HTTP server; the fake answers and checks the Messaging API calls (limits, bearer token, retry
keys) on 127.0.0.1, port 0.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.bootstrap import build_bot, build_service
from bot.channels.line import (
    MAX_TEXT,
    LineDeliveryError,
    LineOutbox,
    LineWebhook,
    quick_reply_items,
    retry_key,
    richmenu_image,
    richmenu_request,
    to_messages,
    truncate_label,
)
from bot.config import Settings
from bot.texts import split_text
from handlers.messages import Choice, Reply
from handlers.system import MENU_CHOICES
from tests.conftest import FIXED_NOW, run_cli
from tests.fakes.line_api import FakeLineApi

SECRET = "line-channel-secret-テスト"  # a non-ASCII secret too: LINE's are hex, but nothing may assume it
REPLY = "/v2/bot/message/reply"
PUSH = "/v2/bot/message/push"


# --- webhooks as LINE sends them -------------------------------------------------------------


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def webhook(*events: dict[str, Any]) -> bytes:
    # ensure_ascii=False: LINE sends Japanese as raw UTF-8 bytes, not \\u escapes.
    return json.dumps({"destination": "Ubot0000", "events": list(events)}, ensure_ascii=False).encode("utf-8")


def _event(
    kind: str, user: str, event_id: str | None, reply_token: str | None, redelivery: bool, **extra: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": 1763859600000,
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id or f"01J{uuid.uuid4().hex[:23].upper()}",
        "deliveryContext": {"isRedelivery": redelivery},
        **extra,
    }
    if reply_token is not False:
        event["replyToken"] = reply_token or f"rt-{uuid.uuid4().hex}"
    return event


def text_event(
    text_: str, user: str = "U1", event_id: str | None = None, reply_token: str | None = None, redelivery: bool = False
) -> dict[str, Any]:
    return _event(
        "message",
        user,
        event_id,
        reply_token,
        redelivery,
        message={"id": uuid.uuid4().hex[:16], "type": "text", "text": text_, "quoteToken": "q"},
    )


def postback_event(data: str, user: str = "U1", event_id: str | None = None) -> dict[str, Any]:
    return _event("postback", user, event_id, None, False, postback={"data": data})


def sticker_event(user: str = "U1", event_id: str | None = None, redelivery: bool = False) -> dict[str, Any]:
    return _event(
        "message",
        user,
        event_id,
        None,
        redelivery,
        message={
            "id": "s1",
            "type": "sticker",
            "packageId": "446",
            "stickerId": "1988",
            "stickerResourceType": "STATIC",
            "quoteToken": "q",
        },
    )


def image_event(user: str = "U1") -> dict[str, Any]:
    return _event(
        "message",
        user,
        None,
        None,
        False,
        message={"id": "i1", "type": "image", "contentProvider": {"type": "line"}, "quoteToken": "q"},
    )


def follow_event(user: str = "U1", event_id: str | None = None) -> dict[str, Any]:
    return _event("follow", user, event_id, None, False, follow={"isUnblocked": False})


def unfollow_event(user: str = "U1") -> dict[str, Any]:
    return _event("unfollow", user, None, False, False)  # an unfollow has no reply token


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture()
def fake() -> Iterator[FakeLineApi]:
    with FakeLineApi.start() as api:
        yield api


@pytest.fixture()
def line_settings(settings: Settings, fake: FakeLineApi) -> Settings:
    return dataclasses.replace(
        settings, line_channel_secret=SECRET, line_channel_access_token=fake.access_token, line_api_url=fake.url
    )


@pytest.fixture()
def channel(bot, line_settings: Settings) -> Iterator[LineWebhook]:
    service = build_service(line_settings, bot=bot, pooled=False)
    yield service.line
    service.close()


def deliver(channel: LineWebhook, body: bytes, signature: str | None = None) -> tuple[int, str]:
    """POST one webhook as LINE does (its turns are answered when it returns)."""
    return channel.handle_callback(body, sign(body) if signature is None else signature)


def texts(rec) -> list[str]:
    """The text of each message: a text message's text, a Flex card's altText (its plain rendering)."""
    return [m.get("text") or m["altText"] for m in rec.json["messages"]]


def quick_replies(rec) -> list[dict[str, Any]]:
    return [item["action"] for item in (rec.json["messages"][-1].get("quickReply") or {}).get("items", [])]


def rows(db_url: str, sql: str, **params: Any) -> list[tuple]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


# --- conversations -------------------------------------------------------------------------


def test_question_is_answered_with_quick_replies(channel, fake):
    body = webhook(text_event("受給者証をなくしてしまいました", reply_token="rt-q1"))
    assert deliver(channel, body) == (200, "OK")

    (rec,) = fake.calls(REPLY)
    assert rec.status == 200, rec.json
    assert rec.json["replyToken"] == "rt-q1"
    assert rec.header("Authorization") == f"Bearer {fake.access_token}"
    answer = "\n".join(texts(rec))
    assert "再交付" in answer and "出典" in answer
    actions = quick_replies(rec)
    assert actions, "an answer offers quick replies"
    for action in actions:
        assert action["type"] == "postback"
        assert 1 <= len(action["label"]) <= 20
        assert action["displayText"]  # the tap shows up in the chat as if typed
    assert not fake.calls(PUSH)


def test_menu_quick_replies_are_the_core_choices(channel, fake):
    deliver(channel, webhook(text_event("メニュー")))
    (rec,) = fake.calls(REPLY)
    assert [a["data"] for a in quick_replies(rec)] == [c.value for c in MENU_CHOICES]
    assert "マイナンバー" in texts(rec)[-1]


def test_postback_continues_the_office_dialog(channel, fake):
    deliver(channel, webhook(postback_event("office")))
    first = fake.calls(REPLY)[-1]
    assert "市町村" in texts(first)[-1]
    assert "unknown" in [a["data"] for a in quick_replies(first)]

    deliver(channel, webhook(text_event("草津町")))
    second = fake.calls(REPLY)[-1]
    assert "吾妻保健福祉事務所" in "\n".join(texts(second))


def test_tapping_a_quick_reply_works_like_typing(channel, fake):
    deliver(channel, webhook(text_event("人と話したい")))
    tapped = next(a for a in quick_replies(fake.calls(REPLY)[-1]) if a["data"] == "unknown")
    deliver(channel, webhook(postback_event(tapped["data"])))
    assert "窓口の一覧" in "\n".join(texts(fake.calls(REPLY)[-1]))


def test_redelivered_event_is_not_answered_twice(channel, fake, line_settings):
    first = text_event("自己負担の上限はいくら？", event_id="01JREDELIVERED0000000000000", reply_token="rt-a")
    again = {**first, "replyToken": "rt-b", "deliveryContext": {"isRedelivery": True}}
    deliver(channel, webhook(first))
    assert deliver(channel, webhook(again)) == (200, "OK")  # LINE must get 200, or it redelivers again

    # Another instance of the server (its own Bot, the same database) gets the redelivery too.
    other = build_service(line_settings, bot=build_bot(line_settings, clock=lambda: FIXED_NOW), pooled=False)
    try:
        assert deliver(other.line, webhook(again)) == (200, "OK")
    finally:
        other.close()
    assert len(fake.calls(REPLY)) == 1
    assert not fake.calls(PUSH)


def test_two_events_of_one_webhook_are_answered_in_order(channel, fake):
    deliver(channel, webhook(postback_event("office"), text_event("草津町")))
    first, second = fake.calls(REPLY)
    assert "市町村" in texts(first)[-1]
    assert "吾妻保健福祉事務所" in "\n".join(texts(second))


def test_webhook_through_the_http_server(bot, line_settings, fake):
    from bot.server import start_in_thread

    server = start_in_thread(build_service(line_settings, bot=bot))
    url = server.url + "/line/callback"
    try:
        body = webhook(text_event("受給者証をなくしてしまいました"))
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "X-Line-Signature": sign(body)},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
        forged = urllib.request.Request(url, data=body, method="POST", headers={"X-Line-Signature": sign(b"x")})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 400
        (rec,) = fake.wait_for(REPLY)
        assert "再交付" in "\n".join(texts(rec))
    finally:
        server.stop()


# --- the webhook's edges -------------------------------------------------------------------


def test_forged_signature_is_refused(channel, fake):
    body = webhook(text_event("こんにちは"))
    assert deliver(channel, body, signature=sign(body, "not-the-secret")) == (400, "invalid signature")
    assert deliver(channel, body, signature="") == (400, "invalid signature")
    tampered = body.replace("こんにちは".encode(), "さようなら".encode())
    assert deliver(channel, tampered, signature=sign(body)) == (400, "invalid signature")
    assert deliver(channel, body, signature="署名") == (400, "invalid signature")
    assert fake.requests == []


def test_japanese_body_verifies_over_the_raw_bytes(channel, fake):
    raw = webhook(text_event("難病の医療費助成について教えてください😊"))
    assert "難病".encode() in raw  # real UTF-8 on the wire, no \\u escapes
    assert deliver(channel, raw) == (200, "OK")
    assert len(fake.calls(REPLY)) == 1

    # The same JSON with \\u escapes is another byte string: its own signature, and only its own.
    escaped = json.dumps(
        json.loads(webhook(text_event("難病の医療費助成について教えてください😊"))), ensure_ascii=True
    ).encode("ascii")
    assert deliver(channel, raw, signature=sign(escaped)) == (400, "invalid signature")
    assert deliver(channel, escaped) == (200, "OK")
    assert len(fake.calls(REPLY)) == 2


def test_signed_body_that_is_not_a_webhook_is_refused(channel, fake):
    for body in (b"not json", '{"destination": "U"}'.encode(), b"\xff\xfe\x00broken"):
        assert deliver(channel, body)[0] == 400
    assert fake.requests == []


def test_verify_button_and_unknown_events_get_200_and_no_message(channel, fake):
    # The console's "Verify" button sends a signed webhook without events.
    assert deliver(channel, webhook()) == (200, "OK")
    unknown = _event("membership", "U1", None, None, False, membership={"type": "joined"})
    group = {**text_event("こんにちは"), "source": {"type": "group", "groupId": "G1", "userId": "U1"}}
    standby = {**text_event("こんにちは"), "mode": "standby"}
    assert deliver(channel, webhook(unknown, group, standby)) == (200, "OK")
    assert fake.requests == []


def test_webhook_is_answered_before_the_turn_runs(fake, bot, line_settings):
    gate = threading.Event()
    handle = bot.handle

    def slow_handle(msg, keep=None):
        gate.wait(10)
        return handle(msg, keep)

    bot.handle = slow_handle
    service = build_service(line_settings, bot=bot)  # as serve runs it: recorded, then answered on a pool
    try:
        started = time.monotonic()
        assert service.line.handle_callback(*_signed(webhook(text_event("こんにちは")))) == (200, "OK")
        assert time.monotonic() - started < 2
        assert fake.requests == []  # LINE has its 200; the answer follows
        gate.set()
        fake.wait_for(REPLY)
    finally:
        service.close()


def _signed(body: bytes) -> tuple[bytes, str]:
    return body, sign(body)


@pytest.mark.parametrize("said", ["", " ", "あ" * 10_000, "😀😀😀", "2027/3/31", "0" * 5000])
def test_rude_messages_get_one_answer_within_line_limits(channel, fake, said):
    deliver(channel, webhook(text_event(said)))
    (rec,) = fake.calls(REPLY)
    assert rec.status == 200, rec.json  # the fake refuses what LINE would refuse


# --- follow, unfollow, stickers ------------------------------------------------------------


def test_follow_gets_a_welcome_that_warns_about_my_number(channel, fake):
    deliver(channel, webhook(follow_event(event_id="01JFOLLOW000000000000000000")))
    (rec,) = fake.calls(REPLY)
    welcome = "\n".join(texts(rec))
    assert "マイナンバー" in welcome and "個人番号" in welcome
    assert "119" in welcome and "医学的" in welcome
    assert {"office", "start:copay"} <= {a["data"] for a in quick_replies(rec)}

    # A redelivered follow does not greet twice.
    deliver(channel, webhook(follow_event(event_id="01JFOLLOW000000000000000000")))
    assert len(fake.calls(REPLY)) == 1


def test_unfollow_deletes_the_users_data(channel, fake, db_url):
    for event in (
        postback_event("office"),
        text_event("草津町"),
        postback_event("start:reminder"),
        text_event("2027年3月31日"),
        postback_event("yes"),
    ):
        deliver(channel, webhook(event))
    deliver(channel, webhook(text_event("こんにちは", user="U2")))  # someone else, who stays
    assert "2027年3月31日" in "\n".join(texts(fake.calls(REPLY)[-2]))  # the reminder was registered
    for table in ("conversation_state", "handled_event", "reminder"):
        assert rows(db_url, f"SELECT 1 FROM {table} WHERE user_key = 'line:U1'"), table
    calls_before = len(fake.requests)

    assert deliver(channel, webhook(unfollow_event())) == (200, "OK")

    for table in ("conversation_state", "handled_event", "reminder"):
        assert not rows(db_url, f"SELECT 1 FROM {table} WHERE user_key = 'line:U1'"), table
    assert not rows(db_url, "SELECT 1 FROM reminder_delivery")
    assert rows(db_url, "SELECT 1 FROM conversation_state WHERE user_key = 'line:U2'")
    assert len(fake.requests) == calls_before  # an unfollowed user gets nothing more


def test_sticker_gets_a_kind_text_only_reply(channel, fake):
    sticker = sticker_event(event_id="01JSTICKER00000000000000000")
    deliver(channel, webhook(sticker))
    (rec,) = fake.calls(REPLY)
    assert "文字のメッセージだけ" in texts(rec)[0]
    assert "menu" in [a["data"] for a in quick_replies(rec)]

    deliver(channel, webhook({**sticker, "deliveryContext": {"isRedelivery": True}}))
    deliver(channel, webhook(image_event()))
    assert len(fake.calls(REPLY)) == 2  # the redelivered sticker once, the image once


def test_a_sticker_in_the_middle_of_a_dialog_asks_the_question_again(channel, fake):
    deliver(channel, webhook(postback_event("office")))
    assert "お住まいの市町村を教えてください" in "\n".join(texts(fake.calls(REPLY)[-1]))

    deliver(channel, webhook(sticker_event()))
    again = "\n".join(texts(fake.calls(REPLY)[-1]))
    assert "文字で答えてください" in again and "お住まいの市町村を教えてください" in again

    deliver(channel, webhook(text_event("草津町")))
    assert "吾妻保健福祉事務所" in "\n".join(texts(fake.calls(REPLY)[-1]))


# --- delivery: reply token, push, limits --------------------------------------------------


def test_expired_reply_token_falls_back_to_push(channel, fake):
    fake.invalid_reply_tokens.add("rt-expired")
    deliver(channel, webhook(text_event("受給者証をなくしてしまいました", reply_token="rt-expired")))

    (reply,) = fake.calls(REPLY)
    assert reply.status == 400
    (push,) = fake.calls(PUSH)
    assert push.status == 200
    assert push.json["to"] == "U1"
    assert push.json["messages"] == reply.json["messages"]  # the same answer, quick replies included
    assert uuid.UUID(push.header("X-Line-Retry-Key"))
    assert "再交付" in "\n".join(fake.sent_texts())


def test_long_answers_are_split_and_the_sixth_message_is_pushed(channel, fake, bot):
    long_replies = [
        Reply("長い説明です。\n" * 900),
        Reply("二つ目。" * 3000),
        Reply(
            "最後の質問です。",
            choices=tuple(Choice(f"とても長い選択肢の名前です。その番号は{i}番です", f"v{i}") for i in range(20)),
        ),
    ]
    bot.handle = lambda msg, keep=None: long_replies
    deliver(channel, webhook(text_event("こんにちは")))

    (reply,) = fake.calls(REPLY)
    (push,) = fake.calls(PUSH)
    assert reply.status == push.status == 200  # within LINE's limits, or the fake refuses
    assert len(reply.json["messages"]) == 5
    sent = texts(reply) + texts(push)
    assert "".join(sent).replace("\n", "") == "".join(r.text for r in long_replies).replace("\n", "")
    actions = quick_replies(push)  # quick replies ride on the very last message
    assert len(actions) == 13
    assert all(len(a["label"]) <= 20 for a in actions) and actions[0]["label"].endswith("…")
    assert not any("quickReply" in m for m in reply.json["messages"])


def test_rendering_respects_line_limits():
    assert truncate_label("申請に必要な書類について詳しく") == "申請に必要な書類について詳しく"
    assert truncate_label("あ" * 25) == "あ" * 19 + "…"
    assert all(len(p) <= 5000 for p in split_text("い" * 12_001, MAX_TEXT))
    assert "".join(split_text("い" * 12_001, MAX_TEXT)) == "い" * 12_001
    assert split_text("😀" * 3000, MAX_TEXT)[0] == "😀" * 2500  # an emoji counts twice in LINE's UTF-16 count
    messages = to_messages([Reply("a", choices=(Choice("x", "same"), Choice("y", "same"), Choice("z", "v" * 301)))])
    assert [i.action.data for i in messages[-1].quick_reply.items] == ["same"]


# --- reminders by push -----------------------------------------------------------------------


def test_reminder_push_is_delivered_once_per_key(line_settings, fake):
    sender = LineOutbox(line_settings)
    try:
        sender.send("U1", "受給者証の有効期限まで、あと30日です。", "reminder", "delivery-7")
        sender.send("U1", "受給者証の有効期限まで、あと30日です。", "reminder", "delivery-7")  # a retry
        sender.send("U1", "受給者証の有効期限まで、あと7日です。", "reminder", "delivery-8")
    finally:
        sender.close()
    first, retried, other = fake.calls(PUSH)
    assert first.header("X-Line-Retry-Key") == retried.header("X-Line-Retry-Key") == retry_key("delivery-7")
    assert uuid.UUID(first.header("X-Line-Retry-Key")).version == 5
    assert (first.status, retried.status, other.status) == (200, 409, 200)
    assert fake.sent_texts() == ["受給者証の有効期限まで、あと30日です。", "受給者証の有効期限まで、あと7日です。"]


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (429, False), (400, True)])
def test_reminder_push_failure_raises_for_the_dispatcher_to_retry(line_settings, fake, status, permanent):
    fake.push_status = status
    sender = LineOutbox(line_settings)
    try:
        with pytest.raises(LineDeliveryError) as caught:
            sender.send("U1", "お知らせです。", "reminder", f"delivery-{status}")
    finally:
        sender.close()
    assert caught.value.status == status
    assert caught.value.permanent is permanent


def test_reminder_push_when_line_is_unreachable_raises(line_settings):
    closed = dataclasses.replace(line_settings, line_api_url="http://127.0.0.1:9")  # discard port: refused
    sender = LineOutbox(closed)
    try:
        with pytest.raises(LineDeliveryError) as caught:
            sender.send("U1", "お知らせです。", "reminder", "delivery-x")
    finally:
        sender.close()
    assert caught.value.status is None and not caught.value.permanent


# --- the rich menu command -----------------------------------------------------------------

COMMITTED_MENU_IMAGE = Path(__file__).resolve().parent.parent / "bot" / "channels" / "assets" / "richmenu.png"
MAX_MENU_IMAGE_BYTES = 1024 * 1024  # LINE's limit for a rich-menu image


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG, each CRC checked."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG signature"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, f"bad CRC in {tag!r}"
        chunks.append((tag, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def _png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", _png_chunks(data)[0][1][:8])


def _png_pixels(data: bytes) -> list[list[tuple[int, int, int]]]:
    """Rows of RGB pixels of an 8-bit RGB or RGBA PNG, the five row filters undone (PNG spec, section 9)."""
    chunks = _png_chunks(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and colour in (2, 6) and interlace == 0, "the test decodes 8-bit RGB(A) only"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    stride = width * bpp
    assert len(raw) == height * (1 + stride), "the image data does not match the declared size"
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (1 + stride)], bytearray(raw[y * (1 + stride) + 1 : (y + 1) * (1 + stride)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x * bpp : x * bpp + 3]) for x in range(width)])
        prev = line
    return rows


def test_richmenu_command_installs_the_menu(fake, tmp_path: Path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "LINE_API_URL": fake.url,
        "LINE_CHANNEL_SECRET": SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": fake.access_token,
    }
    out = run_cli(["line", "richmenu"], env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    menu_id = out.stdout.strip()

    (create,) = fake.calls("/v2/bot/richmenu")
    menu = create.json
    assert menu["size"] == {"width": 2500, "height": 843}
    assert [(a["action"]["type"], a["action"]["label"], a["action"]["data"]) for a in menu["areas"]] == [
        ("postback", "相談する", "menu"),
        ("postback", "自己負担を計算", "start:copay"),
        ("postback", "更新のお知らせ", "start:reminder"),
        ("postback", "窓口を探す", "office"),
    ]
    assert sum(a["bounds"]["width"] for a in menu["areas"]) == 2500
    (image,) = fake.calls(f"/v2/bot/richmenu/{menu_id}/content")
    assert image.status == 200 and image.header("Content-Type") == "image/png"
    assert image.body == COMMITTED_MENU_IMAGE.read_bytes()  # the designed asset, byte for byte
    assert _png_size(image.body) == (menu["size"]["width"], menu["size"]["height"])
    assert len(image.body) < MAX_MENU_IMAGE_BYTES
    assert fake.default_rich_menu == menu_id

    # Run again: the new menu replaces the old one.
    again = run_cli(["line", "richmenu"], env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert list(fake.rich_menus) == [again.stdout.strip()] and fake.default_rich_menu == again.stdout.strip()


def test_richmenu_command_without_line_settings_exits_2(tmp_path: Path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "LINE_CHANNEL_SECRET": "",
        "LINE_CHANNEL_ACCESS_TOKEN": "",
        "LINE_API_URL": "http://127.0.0.1:9",
    }
    out = run_cli(["line", "richmenu"], env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert "LINE_CHANNEL_ACCESS_TOKEN" in out.stderr


def test_richmenu_image_is_the_committed_png_of_the_menu_size():
    data = richmenu_image()
    assert data == COMMITTED_MENU_IMAGE.read_bytes()
    request = richmenu_request()
    assert _png_size(data) == (request.size.width, request.size.height)
    assert len(data) < MAX_MENU_IMAGE_BYTES


def test_richmenu_image_has_one_coloured_tile_with_white_label_per_area():
    rows = _png_pixels(richmenu_image())
    white = (255, 255, 255)
    colours = []
    for area in richmenu_request().areas:
        b = area.bounds
        centre = b.x + b.width // 2
        colour = rows[b.y + 40][centre]  # the tile's background, above the icon
        assert colour != white, f"no tile under the area {area.action.data}"
        assert all(rows[b.y + 40][x] == colour for x in range(b.x + 60, b.x + b.width - 60)), (
            f"the tile of {area.action.data} does not span its area"
        )
        assert rows[b.y + 40][b.x + 2] == white and rows[b.y + 40][b.x + b.width - 3] == white  # a gap between tiles
        label_band = [
            px
            for y in range(b.y + b.height // 2, b.y + b.height - 60, 4)
            for px in rows[y][b.x + 40 : b.x + b.width - 40]
        ]
        assert white in label_band, f"no white label in the tile of {area.action.data}"
        colours.append(colour)
    assert len(set(colours)) == len(colours)  # each area has its own colour


def test_richmenu_script_redraws_an_image_line_accepts(tmp_path: Path):
    pytest.importorskip("PIL", reason="Pillow is needed only to redraw the image: pip install -e '.[assets]'")
    font = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
    if not font.exists():
        pytest.skip("the Noto CJK font is needed only to redraw the image: apt-get install fonts-noto-cjk")
    script = Path(__file__).resolve().parent.parent / "scripts" / "make_richmenu.py"
    out = tmp_path / "richmenu.png"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out), "--font", str(font)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert _png_size(data) == (2500, 843) and len(data) < MAX_MENU_IMAGE_BYTES


def test_line_channel_needs_its_settings(settings):
    with pytest.raises(ValueError, match="LINE_CHANNEL_SECRET"):
        LineWebhook(settings, runner=None)


# --- feedback on answers (issue 28) -------------------------------------------------------------


def test_line_answer_offers_feedback_as_the_last_quick_replies_and_unfollow_deletes_it(channel, fake, db_url):
    deliver(channel, webhook(text_event("受給者証をなくしてしまいました")))
    actions = quick_replies(fake.calls(REPLY)[-1])
    assert [a["label"] for a in actions][-2:] == ["👍 役に立った", "👎 役に立たなかった"]
    assert all(a["data"].startswith("topic:") for a in actions[:-2]), "the quick replies that lead on come first"

    deliver(channel, webhook(postback_event(actions[-1]["data"])))
    ask = fake.calls(REPLY)[-1]
    assert "足りなかったこと" in "\n".join(texts(ask))
    assert [a["data"] for a in quick_replies(ask)] == ["feedback-skip", "office"]
    deliver(channel, webhook(text_event("マイナンバーカードの番号は123456789012です")))  # refused, never a note
    deliver(channel, webhook(text_event("手続きにかかる日数")))
    assert rows(db_url, "SELECT topic, helpful, note FROM answer_feedback") == [
        ("reissue", False, "手続きにかかる日数")
    ]
    deliver(channel, webhook(text_event("受給者証をなくしてしまいました")))
    deliver(channel, webhook(text_event("役に立った")))
    assert [r[0] for r in rows(db_url, "SELECT helpful FROM answer_feedback ORDER BY id")] == [False, True]

    deliver(channel, webhook(unfollow_event()))
    assert rows(db_url, "SELECT 1 FROM answer_feedback") == []


def test_line_keeps_the_feedback_pair_when_the_quick_replies_are_full():
    leading = tuple(Choice(f"話題{i}", f"topic:t{i}") for i in range(20))
    pair = (Choice("👍 役に立った", "feedback:yes:answer:t"), Choice("👎 役に立たなかった", "feedback:no:answer:t"))
    items = quick_reply_items((*leading, *pair))
    assert len(items) == 13
    assert [i.action.data for i in items] == [c.value for c in leading[:11]] + [c.value for c in pair]
