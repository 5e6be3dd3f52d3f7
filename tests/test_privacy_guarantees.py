"""Issue 13, privacy half: nothing leaks (logs, database files, echoes) and deletion stays deleted.

Each test goes through a public edge: signed HTTP requests to the real server against the fake
Slack and LINE APIs on 127.0.0.1, chat turns of the real bot, or the installed CLI. Where the
database matters, the test runs on SQLite and on PostgreSQL (``database_url``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.bootstrap import QUIET_LIBRARIES, build_bot, build_service, configure_logging
from bot.channels.slack import ACTION_PREFIX
from bot.config import Settings
from bot.server import start_in_thread
from bot.storage.db import make_engine
from bot.storage.models import CostLogEntry, CostLogNotice, QuestionStat
from bot.storage.repositories import Store
from bot.texts import MY_NUMBER_TEXT, RATE_LIMIT_TEXT
from handlers.messages import IncomingMessage
from nlp.privacy import redact
from tests.conftest import FIXED_NOW, Chat, run_cli
from tests.fakes.line_api import FakeLineApi
from tests.test_line_e2e import REPLY, sign, text_event, webhook
from tests.test_line_e2e import SECRET as LINE_SECRET
from tests.test_line_e2e import rows as _rows
from tests.test_slack_e2e import SECRET as SLACK_SECRET
from tests.test_slack_e2e import TOKEN, dm, form, post_signed

SLACK_USER = "UPRIV4TE9X"
LINE_USER = "U" + "0123456789abcdef" * 2
PRIVATE_TEXT = "山田花子の受給者証をなくしました"
MY_NUMBER = "1234 5678 9012"


def _stats_id(url: str, user_key: str) -> str:
    """The keyed id under which the statistics record ``user_key`` (as any process computes it)."""
    engine = make_engine(url)
    try:
        with Store(engine).unit_of_work() as uow:
            return uow.statistics.stats_user(user_key)
    finally:
        engine.dispose()


def _user_rows(url: str, user_key: str) -> dict[str, int]:
    tables = ("conversation_state", "handled_event", "rate_window", "reminder")
    counts = {t: len(_rows(url, f"SELECT 1 FROM {t} WHERE user_key = :u", u=user_key)) for t in tables}
    counts["question_stat"] = len(
        _rows(url, "SELECT 1 FROM question_stat WHERE user_key IN (:u, :s)", u=user_key, s=_stats_id(url, user_key))
    )
    return counts


# --- 1. one redacting log configuration ----------------------------------------------------------


@pytest.fixture()
def process_logging() -> Iterator[None]:
    """Let a test call ``configure_logging`` as ``serve`` does, and put pytest's logging back after."""
    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        {name: (logging.getLogger(name).level, logging.getLogger(name).handlers[:]) for name in QUIET_LIBRARIES},
    )
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, (level, handlers) in saved[2].items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).handlers[:] = handlers


def _wait(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_debug_logs_carry_no_body_message_text_user_id_or_my_number(process_logging, capsys, db_url, fake_slack):
    configure_logging("DEBUG")  # as `serve` does with LOG_LEVEL=DEBUG: every logger, one handler
    with FakeLineApi.start() as line_api:
        settings = Settings(
            database_url=db_url,
            slack_bot_token=TOKEN,
            slack_signing_secret=SLACK_SECRET,
            slack_api_url=fake_slack.api_url,
            line_channel_secret=LINE_SECRET,
            line_channel_access_token=line_api.access_token,
            line_api_url=line_api.url,
        )
        server = start_in_thread(build_service(settings))
        base = server.url
        try:
            events = base + "/slack/events"
            assert post_signed(events, dm(PRIVATE_TEXT, user=SLACK_USER)).status == 200
            assert post_signed(events, dm(f"番号は{MY_NUMBER}です", user=SLACK_USER)).status == 200
            # Forged and stale requests: bolt's request verification used to log their whole body.
            assert post_signed(events, dm(PRIVATE_TEXT + MY_NUMBER, user=SLACK_USER), secret="wrong").status == 401
            stale = int(time.time()) - 3600
            assert post_signed(events, dm(PRIVATE_TEXT, user=SLACK_USER), timestamp=stale).status == 401
            # A signed body of the wrong shape (400), and a click whose value carries text.
            assert post_signed(events, json.dumps([PRIVATE_TEXT, SLACK_USER, MY_NUMBER])).status == 400
            click = form(
                {
                    "type": "block_actions",
                    "user": {"id": SLACK_USER},
                    "trigger_id": "t1",
                    "container": {"type": "view", "view_id": "V1"},
                    "actions": [
                        {
                            "type": "button",
                            "action_id": f"{ACTION_PREFIX}_0",
                            "value": PRIVATE_TEXT,
                            "action_ts": "1700002000.000001",
                            "text": {"type": "plain_text", "text": "x"},
                        }
                    ],
                }
            )
            assert post_signed(events, click, content_type="application/x-www-form-urlencoded").status == 200
            fake_slack.wait_for("chat.postMessage", 3)
            # LINE: a signed webhook and a forged one.
            import urllib.request

            for body, signature in (
                (webhook(text_event(PRIVATE_TEXT, user=LINE_USER)), None),
                (webhook(text_event(PRIVATE_TEXT + MY_NUMBER, user=LINE_USER)), "forged"),
            ):
                req = urllib.request.Request(
                    base + "/line/callback",
                    data=body,
                    method="POST",
                    headers={"Content-Type": "application/json", "X-Line-Signature": signature or sign(body)},
                )
                try:
                    urllib.request.urlopen(req, timeout=10).read()
                except urllib.error.HTTPError as err:
                    assert err.code == 400
            _wait(lambda: len(line_api.calls(REPLY)) >= 1)
        finally:
            server.stop()
    log = capsys.readouterr().err
    assert "status=401" in log and "status=400" in log and "path=/line/callback" in log  # the log was captured
    for secret in (
        PRIVATE_TEXT,
        "山田",
        "受給者証",
        SLACK_USER,
        LINE_USER,
        MY_NUMBER,
        "123456789012",
        "5678",
        "\\u5c71\\u7530",
    ):  # also not as JSON escapes
        assert secret not in log, secret


# --- 2. deletion is idempotent under redelivery --------------------------------------------------


@pytest.mark.parametrize("channel", ["slack", "line"])
def test_redelivered_delete_confirmation_is_answered_once_and_recreates_nothing(database_url, channel):
    bot = build_bot(Settings(database_url=database_url), clock=lambda: FIXED_NOW)
    user_key = f"{channel}:U9"

    def say(text: str, event_id: str):
        return bot.handle(IncomingMessage(channel, "U9", text=text, event_id=event_id))

    say("受給者証の色って何色ですか", "Ev1")
    assert _user_rows(database_url, user_key)["question_stat"] == 1
    say("データを削除", "Ev2")
    assert "削除しました" in "\n".join(r.text for r in say("はい", "Ev3"))
    assert not any(_user_rows(database_url, user_key).values())
    # Slack retries (X-Slack-Retry-Num) and LINE redeliveries of every event, the confirmation first.
    for event_id, said in (("Ev3", "はい"), ("Ev2", "データを削除"), ("Ev1", "受給者証の色って何色ですか")):
        assert say(said, event_id) == [], event_id
    assert _user_rows(database_url, user_key) == dict.fromkeys(_user_rows(database_url, user_key), 0)
    # The handled events are still known, without anything naming the user.
    assert len(_rows(database_url, "SELECT 1 FROM handled_event WHERE event_id IN ('Ev1', 'Ev2', 'Ev3')")) == 3


def test_slack_retry_of_the_delete_confirmation_is_not_answered_again(slack_server, fake_slack, db_url):
    user, channel = "U777", "D777"

    def answers() -> list:
        return [c for c in fake_slack.calls if c.method == "chat.postMessage" and c.args.get("channel") == channel]

    def say(body: str) -> list:
        before = len(answers())
        assert post_signed(slack_server, body).status == 200
        fake_slack.wait_for("chat.postMessage", before + 1, where=lambda c: c.args.get("channel") == channel)
        time.sleep(0.2)  # a turn may post more than one message
        return answers()[before:]

    say(dm("受給者証の色って何色ですか", user=user))
    say(dm("データを削除", user=user))
    confirm = dm("はい", user=user, event_id="EvDELETE1")
    assert "削除しました" in json.dumps([c.args for c in say(confirm)], ensure_ascii=False)
    answered = len(answers())
    # Slack did not see the ack in time and retries the very same body.
    retry = post_signed(
        slack_server, confirm, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert retry.status == 200
    post_signed(slack_server, dm("受給者証なくした", user="U778"))  # a later turn of someone else, as a marker
    fake_slack.wait_for("chat.postMessage", 1, where=lambda c: c.args.get("channel") == "D778")
    time.sleep(0.3)
    assert len(answers()) == answered
    assert not any(_user_rows(db_url, f"slack:{user}").values())


# --- 5. the My Number guard sees every digit form, on every input --------------------------------

HIDDEN_FORMS = [
    "1234_5678_9012",
    "1234.5678.9012",
    "1234/5678/9012",
    "1234,5678,9012",
    "1234\u200b5678\u200b9012",
    "12\u200d34\u206056\ufeff78901\u00ad2",
    "一二三四五六七八九〇一二",
    "番号は一二三四 五六七八 九〇一二です",
    "〇一二三四五六七八九〇一",
    "١٢٣٤٥٦٧٨٩٠١٢",
    "१२३४-५६७८-९०१२",
    "๑๒๓๔๕๖๗๘๙๐๑๒",
]


@pytest.mark.parametrize("said", HIDDEN_FORMS)
def test_my_number_in_any_digit_form_is_refused_and_never_stored(chat, settings, said):
    out = chat.text(chat.say(said))
    assert out.startswith(MY_NUMBER_TEXT[:20]), out
    url = settings.database_url
    assert _rows(url, "SELECT redacted FROM question_stat") == []  # not even redacted
    raw = b"".join(
        Path(url.removeprefix("sqlite:///") + s).read_bytes()
        for s in ("", "-wal")
        if Path(url.removeprefix("sqlite:///") + s).exists()
    )
    for piece in ("一二三四", "1234", "١٢٣٤", "१२३४", "๑๒๓๔"):
        assert piece.encode() not in raw


def test_amounts_and_dates_are_not_taken_for_a_my_number(chat):
    for said in ("5,000 5,000 2,500", "2027/3/31", "10,000円と5,000円", "090-1234-5678", "三か月", "一部負担"):
        assert MY_NUMBER_TEXT not in chat.text(chat.say(said)), said


def _to_household_caps(chat: Chat):
    replies = chat.say("自己負担いくらになるか知りたい")
    answers = {
        "welfare": "いいえ",
        "ventilator": "いいえ",
        "tax_exempt": "いいえ",
        "income_tax": "7万円",
        "high_cost_months": "ない",
    }
    for _ in range(8):
        slot = replies[-1].expecting
        if slot == "household_caps":
            return replies
        replies = chat.say(answers[slot])
    raise AssertionError(replies[-1].expecting)


def test_my_number_with_commas_at_household_caps_is_not_read_as_three_caps(chat):
    _to_household_caps(chat)
    replies = chat.say("1234,5678,9012")
    out = chat.text(replies)
    assert MY_NUMBER_TEXT in out
    for echo in ("1,234", "5,678", "9,012", "1234", "5678", "9012"):
        assert echo not in out
    assert replies[-1].expecting == "household_caps"  # asked again, nothing taken


@pytest.mark.parametrize("channel", ["slack", "line"])
def test_my_number_in_a_button_value_or_postback_is_refused(bot, settings, channel):
    replies = bot.handle(IncomingMessage(channel, "U5", choice="1234-5678-9012"))
    assert MY_NUMBER_TEXT in "\n".join(r.text for r in replies)
    assert _rows(settings.database_url, "SELECT 1 FROM question_stat") == []


def test_json_choices_get_the_my_number_guard_and_a_length_limit(tmp_path):
    lines = [
        {"user": "J1", "choice": "一二三四五六七八九〇一二"},
        {"user": "J1", "choice": "x" * 5000},
        {"user": "J1", "choice": "menu"},
    ]
    out = run_cli(
        ["chat", "--json"],
        stdin="".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"},
    )
    assert out.returncode == 0, out.stderr
    mine, long, menu = [json.loads(line)["replies"] for line in out.stdout.splitlines()]
    assert MY_NUMBER_TEXT in mine[0]["text"]
    assert "読み取れませんでした" in long[0]["text"] and "x" * 20 not in json.dumps(long, ensure_ascii=False)
    assert menu[0]["choices"]  # ordinary choices still work


def test_redaction_removes_every_digit_form():
    kept = redact("二〇二七年三月の件と ١٢٣ と ２０２７ と 12\u200b34 と一部負担")
    for digits in ("二〇二七", "三", "١٢٣", "２０２７", "2027", "12", "34"):
        assert digits not in kept, kept
    assert "一部負担" in kept  # a lone 一 of a word is not a number


def test_redaction_removes_daiji_keycaps_and_romanised_names_whole():
    kept = redact("壱弐参肆の件、弐千弐拾七年、4\ufe0f\u20e32\ufe0f\u20e3 と Hanako Yamada さん、YAMADA Hanako より")
    for piece in ("壱弐参肆", "弐千弐拾七", "4", "2", "Hanako", "Yamada", "YAMADA"):
        assert piece not in kept, kept
    assert "＊ Yamada" not in kept and "件" in kept and "より" in kept


def test_statistics_keep_no_daiji_number_or_romanised_name(chat, settings):
    chat.say("Hanako Yamada です。壱弐参肆伍陸の書類について、ゾウの飼い方を教えてください")
    kept = " ".join(r[0] for r in _rows(settings.database_url, "SELECT redacted FROM question_stat"))
    assert kept, "the unanswered question is counted"
    for piece in ("Hanako", "Yamada", "壱弐参", "伍陸"):
        assert piece not in kept, kept


# --- 6. odd bodies and odd text ------------------------------------------------------------------


@pytest.fixture()
def slack_server(db_url, fake_slack) -> Iterator[str]:
    settings = Settings(
        database_url=db_url, slack_bot_token=TOKEN, slack_signing_secret=SLACK_SECRET, slack_api_url=fake_slack.api_url
    )
    server = start_in_thread(build_service(settings))
    yield server.url + "/slack/events"
    server.stop()


MALFORMED = [
    ("[1, 2]", "application/json"),
    ('"text"', "application/json"),
    ("{not json", "application/json"),
    (json.dumps({"type": "block_actions", "user": {"id": "U1"}, "actions": "yes"}), "application/json"),
    (json.dumps({"type": "event_callback", "event": "message"}), "application/json"),
    (
        json.dumps(
            {
                "type": "event_callback",
                "event_id": "Ev9",
                "event": {"type": "message", "channel_type": "im", "user": "U1", "text": ["a"]},
            }
        ),
        "application/json",
    ),
    ("payload=not-json", "application/x-www-form-urlencoded"),
    ("payload=%5B1%5D", "application/x-www-form-urlencoded"),
    (
        form({"type": "block_actions", "user": {"id": "U1"}, "actions": {"value": "yes"}}),
        "application/x-www-form-urlencoded",
    ),
    (
        form({"type": "block_actions", "user": "U1", "actions": [{"value": "yes", "action_id": "a"}]}),
        "application/x-www-form-urlencoded",
    ),
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
def test_signed_malformed_slack_body_gets_400_not_a_retried_500(slack_server, caplog, body, content_type):
    assert post_signed(slack_server, body, content_type=content_type).status == 400
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
    # Unsigned, the same body is refused as forged.
    assert post_signed(slack_server, body, content_type=content_type, secret="wrong").status == 401


def test_line_text_with_a_lone_surrogate_gets_an_answer(bot, settings):
    with FakeLineApi.start() as api:
        line_settings = dataclasses.replace(
            settings, line_channel_secret=LINE_SECRET, line_channel_access_token=api.access_token, line_api_url=api.url
        )
        service = build_service(line_settings, bot=bot)
        try:
            # json.dumps escapes the surrogate (\ud800), as a JSON sender may.
            body = json.dumps(
                {
                    "destination": "Ubot",
                    "events": [text_event("受給者証の色\ud800は何色\x00ですか", reply_token="rt-odd")],
                }
            ).encode()
            assert service.line.handle_callback(body, sign(body)) == (200, "OK")
        finally:
            service.close()  # every accepted turn is answered first
        (rec,) = api.calls(REPLY)
    assert rec.status == 200 and rec.json["messages"][0]["text"]
    assert "エラー" not in rec.json["messages"][0]["text"]


def test_any_code_point_gets_an_answer_and_is_storable(database_url):
    bot = build_bot(Settings(database_url=database_url), clock=lambda: FIXED_NOW)
    for said in ("\ud800", "花火\udfffの日程\x00は", "\x00", "\U0010ffff\ufffe"):
        replies = bot.handle(IncomingMessage("line", "U7", text=said))
        assert replies and replies[0].text, repr(said)
    replies = bot.handle(IncomingMessage("line", "U7", choice="menu\ud800"))
    assert replies


# --- 7. deleted data does not linger in SQLite's files ------------------------------------------


def test_deleted_user_leaves_nothing_in_the_sqlite_files(tmp_path):
    path = tmp_path / "nanbyo.db"
    bot = build_bot(Settings(database_url=f"sqlite:///{path}"), clock=lambda: FIXED_NOW)
    chat = Chat(bot, user="privacy-user-7f3a")
    for said in ("受給者証の色は何色ですか", "更新を忘れないように通知して", "2027年3月31日", "はい", "太田市"):
        chat.say(said)
    traces = ("console:privacy-user-7f3a".encode(), "太田市".encode(), b"2027-03-31")

    def files() -> bytes:
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())

    assert all(t in files() for t in traces)  # the test can fail: the data is there first
    chat.say("データを削除")
    assert "削除しました" in chat.text(chat.click("yes"))
    left = files()
    assert [t for t in traces if t in left] == []


def test_the_cost_log_stays_out_of_logs_and_statistics_and_leaves_the_files(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "nanbyo.db"
    bot = build_bot(Settings(database_url=f"sqlite:///{path}"), clock=lambda: FIXED_NOW)
    chat = Chat(bot, user="costlog-user-9c2e")
    for said in ("医療費の記録をつけたい", "はい", "はい", "9月 87,654円、10月 76,543円", "11月 65,432円"):
        chat.say(said)
    assert "87,654円" in chat.text(chat.say("医療費の記録を見せて"))
    for amount in ("87,654", "87654", "76543", "65432"):
        assert amount not in caplog.text
    with Session(bot.store.engine) as s:
        assert s.exec(select(QuestionStat)).all() == []  # months typed are not questions
    key = "console:costlog-user-9c2e".encode()

    def files() -> bytes:
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())

    assert key in files()
    chat.say("データを削除")
    assert "削除しました" in chat.text(chat.click("yes"))
    with Session(bot.store.engine) as s:
        assert s.exec(select(CostLogEntry)).all() == [] and s.exec(select(CostLogNotice)).all() == []
    assert key not in files()


# --- 8. user ids in logs are keyed hashes --------------------------------------------------------


def _hash_in_child(key: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LOG_HASH_KEY"}
    if key is not None:
        env["LOG_HASH_KEY"] = key
    code = "from nlp.privacy import hash_user; print(hash_user('slack:U012AB3CD'))"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_user_ids_in_logs_are_keyed_hashes():
    plain = hashlib.sha256(b"slack:U012AB3CD").hexdigest()[:12]  # what anyone could recompute
    with_key = _hash_in_child("k1")
    assert with_key != plain and len(with_key) == 12
    assert _hash_in_child("k1") == with_key  # stable across processes and restarts with the key
    assert _hash_in_child("k2") != with_key
    assert _hash_in_child(None) != _hash_in_child(None)  # unset: a random key per run


def test_the_turn_process_logs_the_same_user_hash_as_the_server(tmp_path):
    """Without LOG_HASH_KEY, the random key is made once and passed to the spawned turn process."""
    code = (
        "import os, multiprocessing as mp\n"
        "from nlp.privacy import hash_user\n"
        "def child(q):\n"
        "    from nlp.privacy import hash_user\n"
        "    q.put(hash_user('line:U1'))\n"
        "if __name__ == '__main__':\n"
        "    mine = hash_user('line:U1')\n"
        "    ctx = mp.get_context('spawn'); q = ctx.Queue(); p = ctx.Process(target=child, args=(q,))\n"
        "    p.start(); theirs = q.get(timeout=60); p.join()\n"
        "    print(mine == theirs)\n"
    )
    script = tmp_path / "spawn_hash.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "LOG_HASH_KEY"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "True", out.stderr


# --- 9. one rate-limit notice per user and window -------------------------------------------------


def test_a_flood_gets_one_notice_per_window_and_then_silence(database_url):
    now = [FIXED_NOW]
    bot = build_bot(Settings(database_url=database_url), clock=lambda: now[0])
    results = [bot.handle(IncomingMessage("line", "F9", text="受給者証なくした", event_id=f"E{i}")) for i in range(100)]
    notices = [r for rs in results for r in rs if r.text == RATE_LIMIT_TEXT]
    assert len(notices) == 1
    assert all(rs for rs in results[:31]) and all(rs == [] for rs in results[31:])
    assert bot.handle(IncomingMessage("line", "F8", text="受給者証なくした"))  # others are not affected
    now[0] = FIXED_NOW + timedelta(seconds=61)  # the next window: answered again
    assert bot.handle(IncomingMessage("line", "F9", text="受給者証なくした"))[0].topic == "reissue"


def test_a_flood_of_line_events_gets_one_notice(bot, settings):
    with FakeLineApi.start() as api:
        service = build_service(
            dataclasses.replace(
                settings,
                line_channel_secret=LINE_SECRET,
                line_channel_access_token=api.access_token,
                line_api_url=api.url,
            ),
            bot=bot,
        )
        try:
            for _ in range(10):  # 100 events, ten per webhook as LINE batches them
                body = webhook(*(text_event("受給者証なくした", user="UFLOOD") for _ in range(10)))
                assert service.line.handle_callback(body, sign(body)) == (200, "OK")
        finally:
            service.close()  # every accepted turn is answered first
        sent = [
            m["text"]
            for path in (REPLY, "/v2/bot/message/push")
            for rec in api.calls(path)
            for m in rec.json["messages"]
        ]
    assert sent.count(RATE_LIMIT_TEXT) == 1
    assert len([t for t in sent if t != RATE_LIMIT_TEXT]) >= 30  # the first 30 were answered


# --- 8b. statistics carry a keyed id, stable across processes ------------------------------------


def test_statistics_carry_a_keyed_id_that_every_process_can_delete(database_url):
    first = build_bot(Settings(database_url=database_url), clock=lambda: FIXED_NOW)
    first.handle(IncomingMessage("slack", "U012AB3CD", text="受給者証の色って何色ですか"))
    first.handle(IncomingMessage("slack", "U012AB3CD", text="花火大会の日程"))
    kept = {row[0] for row in _rows(database_url, "SELECT user_key FROM question_stat")}
    assert len(kept) == 1 and "U012AB3CD" not in next(iter(kept))
    # Another process (a second instance, a restart) records the same user under the same id …
    second = build_bot(Settings(database_url=database_url), clock=lambda: FIXED_NOW)
    second.handle(IncomingMessage("slack", "U012AB3CD", text="受給者証なくした"))
    assert {row[0] for row in _rows(database_url, "SELECT user_key FROM question_stat")} == kept
    # … and deletes every row of the user, including those the first one wrote.
    assert second.delete_user("slack:U012AB3CD") > 0
    assert _rows(database_url, "SELECT 1 FROM question_stat") == []


def test_a_restarted_turn_process_gets_the_same_log_hash_key(tmp_path, monkeypatch):
    """Without LOG_HASH_KEY, serve makes one key before its first turn process and hands it to
    every restart: a user's id in the logs stays the same when the turn process dies."""
    from bot.turn_process import TurnProcess
    from nlp import privacy

    monkeypatch.delenv("LOG_HASH_KEY", raising=False)
    monkeypatch.setattr(privacy, "_LOG_HASH_KEY", None)
    seen = tmp_path / "keys"
    code = f"import os; open({str(seen)!r}, 'a').write(os.environ.get('LOG_HASH_KEY', '-') + '\\n')"
    turns = TurnProcess([sys.executable, "-c", code])  # exits at once: restarted after 0 s, then 1 s
    turns.start()
    _wait(lambda: seen.exists() and len(seen.read_text().split()) >= 2)
    turns.stop(timeout=5)
    first, second = seen.read_text().split()[:2]
    assert first == second and first != "-"


# --- issue 24: a LINE unfollow leaves a tombstone, not the user id --------------------------------


def test_a_turn_run_after_the_unfollow_recreates_nothing_until_the_user_unblocks(database_url):
    """Two instances: a text the user sent before blocking is run after the unfollow's deletion
    (here in that order on one bot, as the other instance would). It is dropped, writes nothing
    about them, and the tombstone holds a keyed hash, not their id; a follow undoes it."""
    from handlers.messages import FOLLOW, UNFOLLOW

    bot = build_bot(Settings(database_url=database_url), clock=lambda: FIXED_NOW)
    key = f"line:{LINE_USER}"
    for said in ("更新を忘れないように通知して", "2027年3月31日"):
        bot.handle(IncomingMessage("line", LINE_USER, text=said, event_id=f"e-{said}"))
    assert _user_rows(database_url, key)["conversation_state"] == 1  # the test can fail
    bot.handle(IncomingMessage("line", LINE_USER, event=UNFOLLOW))
    late = bot.handle(IncomingMessage("line", LINE_USER, text="はい", event_id="e-late"))
    assert late == []
    assert set(_user_rows(database_url, key).values()) == {0}
    tombstones = [r[0] for r in _rows(database_url, "SELECT key FROM unfollowed_user")]
    assert tombstones == [_stats_id(database_url, key)] and LINE_USER not in tombstones[0]
    welcome = bot.handle(IncomingMessage("line", LINE_USER, event=FOLLOW, event_id="e-follow"))
    assert welcome and _rows(database_url, "SELECT key FROM unfollowed_user") == []
    assert bot.handle(IncomingMessage("line", LINE_USER, text="受給者証なくした", event_id="e-back"))
