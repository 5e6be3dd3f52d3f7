"""A person to reach (issue 28): 「人と話したい」 → the office, and with consent a hand-off note to the
staff's Slack channel whose thread replies reach the user once — through `chat --json`, the terminal,
and signed Slack and LINE requests against the fake APIs (tests/fakes/)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.bootstrap import Service, build_bot, build_service
from bot.config import Settings
from handlers.handoff import FROM_STAFF, NO, YES
from handlers.messages import IncomingMessage
from tests.conftest import TOKYO, run_cli
from tests.fakes.line_api import FakeLineApi
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_line_e2e import SECRET as LINE_SECRET
from tests.test_line_e2e import postback_event, sign, text_event, webhook
from tests.test_slack_e2e import SECRET, TOKEN, dm, event_callback, signature

STAFF = "CSTAFF0001"
PUSH = "/v2/bot/message/push"
PERSONAL = ("090", "1234", "5678", "山田", "太郎")


def now() -> datetime:
    return datetime.now(TOKYO)


def staff_notes(fake: FakeSlackAPI) -> list[Any]:
    return [
        c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == STAFF and not c.args.get("thread_ts")
    ]


@pytest.fixture()
def fake_line() -> Iterator[FakeLineApi]:
    with FakeLineApi.start() as api:
        yield api


@pytest.fixture()
def staff_settings(database_url: str, fake_slack: FakeSlackAPI, fake_line: FakeLineApi) -> Settings:
    """Slack with a staff channel, and LINE, on SQLite and then PostgreSQL (TEST_DATABASE_URL)."""
    return Settings(
        database_url=database_url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake_slack.api_url,
        staff_slack_channel=STAFF,
        slack_bot_user_id="UBOT",
        line_channel_secret=LINE_SECRET,
        line_channel_access_token=fake_line.access_token,
        line_api_url=fake_line.url,
    )


@pytest.fixture()
def service(staff_settings: Settings) -> Iterator[Service]:
    service = build_service(staff_settings, bot=build_bot(staff_settings, clock=now), pooled=False)
    yield service
    service.close()


def slack(service: Service, body: str, retry: int | None = None) -> int:
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(body, ts),
    }
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return service.slack.dispatch(body, headers).status


def line(service: Service, *events: dict[str, Any]) -> None:
    body = webhook(*events)
    assert service.line.handle_callback(body, sign(body)) == (200, "OK")


def staff_reply(thread_ts: str, words: str, ts: str, user: str = "USTAFF01") -> str:
    return event_callback(
        {
            "type": "message",
            "channel": STAFF,
            "channel_type": "channel",
            "user": user,
            "text": words,
            "ts": ts,
            "thread_ts": thread_ts,
            "event_ts": ts,
        },
        event_id=f"Ev-staff-{ts}",
    )


def thread_of(service: Service, fake: FakeSlackAPI) -> str:
    """The ts of the posted note, once the desk has recorded it as the hand-off's thread."""
    posted = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == STAFF)[0].response["ts"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with service.store.engine.connect() as conn:
            if conn.execute(text("SELECT staff_ts FROM handoff")).scalar() == posted:
                return str(posted)
        time.sleep(0.02)
    raise AssertionError("the note's thread was not recorded")


def rows(service: Service, table: str) -> int:
    with service.store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())  # noqa: S608 - our names


# --- the terminal and chat --json ----------------------------------------------------------------


def _json_chat(tmp_path: Path, fake_slack: FakeSlackAPI, lines: list[dict[str, str]]) -> list[dict[str, Any]]:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}",
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": fake_slack.api_url,
        "STAFF_SLACK_CHANNEL": STAFF,
        "LINE_CHANNEL_SECRET": "",
    }
    stdin = "".join(json.dumps({"user": "U9", **line}, ensure_ascii=False) + "\n" for line in lines)
    done = run_cli(["chat", "--json"], stdin, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [json.loads(out) for out in done.stdout.splitlines()]


def test_chat_json_without_consent_posts_nothing(tmp_path: Path, fake_slack: FakeSlackAPI) -> None:
    out = _json_chat(
        tmp_path,
        fake_slack,
        [{"text": "受給者証をなくした"}, {"text": "人と話したい"}, {"text": "前橋市"}, {"choice": NO}],
    )
    person = "\n".join(r["text"] for r in out[2]["replies"])
    assert "027-220-5785" in person and "受給者証" in person and "保険証" in person  # phone, hours, at hand
    assert "受付" in person and "お伝えしてよいですか" in person
    assert [c["value"] for c in out[2]["replies"][-1]["choices"]] == [YES, NO]
    assert "お伝えしていません" in out[3]["replies"][0]["text"]
    assert staff_notes(fake_slack) == []


def test_chat_json_with_consent_posts_a_redacted_note_to_the_staff_channel(
    tmp_path: Path, fake_slack: FakeSlackAPI
) -> None:
    out = _json_chat(
        tmp_path,
        fake_slack,
        [
            {"text": "受給者証をなくしました。山田太郎です。090-1234-5678"},
            {"text": "担当の人に聞きたい"},
            {"text": "前橋市"},
            {"choice": YES},
        ],
    )
    assert "受付番号" in out[3]["replies"][0]["text"] and "ターミナルには" in out[3]["replies"][0]["text"]
    notes = fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == STAFF)
    assert len(notes) == 1
    note = notes[0].args["text"]
    assert "受給者証をなくしました" in note and "再交付" in note and "JSON" in note and "前橋市" in note
    assert not [p for p in PERSONAL if p in note], note
    assert "U9" not in note  # a keyed reference, never the user id


def test_a_yes_after_moving_on_is_no_consent(staff_settings: Settings) -> None:
    bot = build_bot(staff_settings, clock=now)

    def say(words: str | None = None, choice: str | None = None) -> list[Any]:
        return bot.handle(IncomingMessage("console", "U5", text=words, choice=choice))

    say("前橋市に住んでいます")
    asked = say("人間に代わって")
    assert asked[-1].kind == "handoff-consent"
    say("更新の手続きはいつ？")  # the question on the screen is gone
    say("はい")
    say(choice=YES)
    with bot.store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM handoff")).scalar_one() == 0
    # Asked again, a yes is a yes for that one note; the next hand-off asks again.
    say("電話で相談したい")
    assert "受付番号" in say("はい")[0].text
    assert say("人と話したい")[-1].kind == "handoff-consent"


# --- Slack and LINE ------------------------------------------------------------------------------


def test_slack_user_without_consent_no_note_with_consent_a_note(service: Service, fake_slack: FakeSlackAPI) -> None:
    for words in ("受給者証をなくした", "人と話したい", "高崎市", "いいえ"):
        assert slack(service, dm(words)) == 200
    service.handoff.tick()
    assert staff_notes(fake_slack) == []
    for words in ("人と話したい", "はい"):
        assert slack(service, dm(words)) == 200
    note = fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == STAFF)[0].args["text"]
    assert "Slack" in note and "受給者証をなくした" in note and "U1" not in note


def test_a_staff_reply_delivered_twice_reaches_the_line_user_once(
    service: Service, fake_slack: FakeSlackAPI, fake_line: FakeLineApi
) -> None:
    line(service, text_event("受給者証をなくした。電話は090-1234-5678", user="Uline1"))
    line(service, text_event("人と話したい", user="Uline1"))
    line(service, text_event("前橋市", user="Uline1"))
    line(service, postback_event(YES, user="Uline1"))
    note = fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == STAFF)[0]
    assert "LINE" in note.args["text"] and not [p for p in PERSONAL if p in note.args["text"]]
    thread = thread_of(service, fake_slack)
    body = staff_reply(thread, "再交付申請書は窓口でお渡しします。お電話ください。", "1700009000.000100")
    assert slack(service, body) == 200
    assert slack(service, body, retry=1) == 200  # Slack delivers the same event again
    pushes = fake_line.wait_for(PUSH)
    service.handoff.tick()
    time.sleep(0.3)
    pushes = [p for p in fake_line.calls(PUSH) if FROM_STAFF in json.dumps(p.json, ensure_ascii=False)]
    assert len(pushes) == 1
    sent = pushes[0].json
    assert sent["to"] == "Uline1" and sent["messages"][0]["text"].startswith(FROM_STAFF)
    assert "再交付申請書は窓口でお渡しします" in sent["messages"][0]["text"]
    assert pushes[0].header("X-Line-Retry-Key")
    # The staff see in the thread that it reached the user; the bot answers no staff message itself.
    fake_slack.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == thread)
    # The audit: who and when, which hand-off, sent; the staff's words are not kept once sent.
    with service.store.engine.connect() as conn:
        audit = conn.execute(text("SELECT staff_user, status, sent_at, text, handoff_id FROM handoff_reply")).all()
    assert len(audit) == 1 and audit[0][0] == "USTAFF01" and audit[0][1] == "sent"
    assert audit[0][2] is not None and audit[0][3] is None


def test_a_staff_reply_reaches_the_slack_user_as_a_dm(service: Service, fake_slack: FakeSlackAPI) -> None:
    for words in ("更新の書類は？", "人と話したい", "太田市", "はい"):
        slack(service, dm(words, user="U7"))
    thread = thread_of(service, fake_slack)
    slack(service, staff_reply(thread, "更新の書類は来月お送りします。", "1700009100.000200"))
    got = fake_slack.wait_for("chat.postMessage", where=lambda c: str(c.args.get("text")).startswith(FROM_STAFF))
    assert len(got) == 1 and got[0].args["channel"] == "D7"


def test_a_message_in_the_staff_channel_outside_a_hand_off_is_not_answered(
    service: Service, fake_slack: FakeSlackAPI
) -> None:
    before = len(fake_slack.calls_to("chat.postMessage"))
    slack(service, staff_reply("1600000000.000001", "関係ない話", "1700009200.000300"))
    assert (
        slack(
            service,
            event_callback(
                {
                    "type": "app_mention",
                    "channel": STAFF,
                    "user": "USTAFF01",
                    "text": "<@UBOT> こんにちは",
                    "ts": "1700009300.0",
                }
            ),
        )
        == 200
    )
    service.handoff.tick()
    assert len(fake_slack.calls_to("chat.postMessage")) == before


def test_deleting_my_data_removes_the_hand_off_rows(
    service: Service, fake_slack: FakeSlackAPI, fake_line: FakeLineApi
) -> None:
    for event in (
        text_event("受給者証をなくした", user="Uline2"),
        text_event("人と話したい", user="Uline2"),
        text_event("前橋市", user="Uline2"),
        postback_event(YES, user="Uline2"),
    ):
        line(service, event)
    thread = thread_of(service, fake_slack)
    slack(service, staff_reply(thread, "承知しました。", "1700009400.000400"))
    fake_line.wait_for(PUSH)
    assert (
        rows(service, "handoff") == 1 and rows(service, "handoff_reply") == 1 and rows(service, "handoff_recent") >= 1
    )
    line(service, text_event("データを削除", user="Uline2"))
    line(service, postback_event("yes", user="Uline2"))
    assert (rows(service, "handoff"), rows(service, "handoff_reply"), rows(service, "handoff_recent")) == (0, 0, 0)
    # A later staff reply in that thread reaches nobody.
    slack(service, staff_reply(thread, "まだいらっしゃいますか", "1700009500.000500"))
    service.handoff.tick()
    assert rows(service, "handoff_reply") == 0


def test_without_a_staff_channel_the_office_only(settings: Settings) -> None:
    bot = build_bot(dataclasses.replace(settings), clock=now)
    replies = bot.handle(IncomingMessage("console", "U6", text="人と話したい"))
    assert replies[-1].expecting == "municipality"
    replies = bot.handle(IncomingMessage("console", "U6", text="草津町"))
    assert "0279-75-3303" in replies[0].text and "保険証" in replies[1].text
    assert all(r.kind != "handoff-consent" for r in replies)


def test_a_family_member_using_the_bot_on_someones_behalf_is_not_asking_for_a_person(chat):
    """「代わって」 here is 「母に代わって」 (on her behalf), not 「人に代わって」."""
    first = chat.say("母に代わって使ってみたいのですが、操作方法を教えてください")[0]
    assert first.kind == "menu"
    assert chat.say("人間に代わってください")[-1].kind != "menu"
