"""Issue 24, "nothing left behind": through ``serve``, a LINE user who typed a phone number, an
amount and a My Number in many forms, then blocked the bot, leaves none of it — nor their user
id — in any file the bot wrote (SQLite; the log too), nor in any live row (PostgreSQL), after a
clean shutdown. The My Number is
refused before the turn is recorded (``bot.turn_codec.encode_turns``), and the turn queue's WAL is
checkpointed and truncated (``TurnConsumer``), besides the database's after the deletion.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, text

from bot.texts import MY_NUMBER_TEXT
from tests.fakes.line_api import FakeLineApi
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_durable_turns import line_api, pending_turns, start_serve  # noqa: F401  (line_api: a fixture)
from tests.test_line_e2e import sign, text_event, unfollow_event, webhook

USER = "U4f0c2a9e71b35d8812aa0c6e3b9d7f51"
REFUSED = [
    "4289 1573 6042",
    "4289〜1573〜6042",
    "(4289)1573-6042",
    "４２８９－１５７３－６０４２",
    "肆弐捌玖壱伍漆参陸零肆弐",
    "".join(d + "\ufe0f\u20e3" for d in "428915736042"),
]
PHONE, AMOUNT = "090-8765-4321", "87,654"


def _post(url: str, *events: dict) -> None:
    body = webhook(*events)
    request = urllib.request.Request(
        url + "/line/callback",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _traces() -> list[bytes]:
    out = [USER.encode(), b"87654", AMOUNT.encode(), b"8765-4321", b"87654321", b"428915736042"]
    for form in REFUSED:
        out.append(form.encode())
        out.append(form.encode("unicode_escape"))  # the queue's payload is ASCII JSON
    # Pieces of the number, long enough not to turn up by chance in a timestamp or a random hex key.
    for piece in ("４２８９", "肆弐捌玖", "42891573", "15736042", "4289-1573", "1573-6042"):
        out += [piece.encode(), piece.encode("unicode_escape")]
    return out


def _table_text(url: str) -> bytes:
    """Every live row of every table of the (PostgreSQL) database, as text."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
            return "\n".join(
                str(row[0]) for table in list(tables) for row in conn.execute(text(f'SELECT t::text FROM "{table}" t'))
            ).encode()
    finally:
        engine.dispose()


def test_a_line_user_who_blocks_leaves_nothing_in_any_file_after_a_clean_shutdown(
    tmp_path: Path, database_url: str, fake_slack: FakeSlackAPI, line_api: FakeLineApi
) -> None:  # noqa: F811
    url = database_url
    postgres = url.startswith("postgresql")
    serve = start_serve(tmp_path, url, fake_slack, line_api, "serve")
    try:
        replies = 0
        for said in ["自己負担いくらになるか知りたい", *REFUSED, f"電話は{PHONE}、先月は{AMOUNT}円かかりました"]:
            _post(serve.url, text_event(said, user=USER))
            replies += 1
            line_api.wait_for("/v2/bot/message/reply", replies, timeout=30)
        refused = [r.json["messages"] for r in line_api.calls("/v2/bot/message/reply")[1 : 1 + len(REFUSED)]]
        for messages in refused:  # each form refused, and the dialog's question asked again
            texts = [m.get("text") or m.get("altText") for m in messages]
            assert texts[0].startswith(MY_NUMBER_TEXT[:20]) and len(texts) >= 2, texts
        files = [p for p in tmp_path.iterdir() if p.is_file()]
        before = _table_text(url) if postgres else b"".join(p.read_bytes() for p in files)
        assert b"8765" in before or USER.encode() in before, "the test can fail: the data is there before the deletion"
        _post(serve.url, unfollow_event(user=USER))
        deadline = time.monotonic() + 30
        while pending_turns(url) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert serve.stop() == 0
    left = {p.name: [t for t in _traces() if t in p.read_bytes()] for p in tmp_path.iterdir() if p.is_file()}
    if postgres:  # the rows are deleted, not marked: no live row of any table holds any of it
        left["(every PostgreSQL table)"] = [t for t in _traces() if t in _table_text(url)]
        assert _table_text(url)  # the tables were there to search
    else:
        assert {"nanbyo.db", "nanbyo-turns.db"} <= set(left)  # the files were there to search
    assert {name: found for name, found in left.items() if found} == {}
