"""A database that hangs or vanishes while serve runs: events get 503 at once (Slack and LINE deliver
them again), never a late ack and never an apology for a turn nobody will run (issue 24).

PostgreSQL is real; a proxy on 127.0.0.1 (``tests/fakes/db_proxy.py``) plays the hang and the loss.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from bot.bootstrap import build_service
from bot.config import Settings
from bot.server import start_in_thread
from bot.storage.db import make_engine
from tests.fakes.db_proxy import DatabaseProxy
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_slack_e2e import SECRET, TOKEN, dm, post_signed, slack_app_settings

RECORD_TIMEOUT = 1.0


@pytest.fixture()
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the proxy plays a PostgreSQL server; SQLite's locked file is in test_database_timeouts")
    make_engine(database_url).dispose()  # the schema, created before the proxy is put in front
    return database_url


@pytest.fixture()
def proxy(pg_url: str) -> Iterator[DatabaseProxy]:
    base = os.environ["TEST_DATABASE_URL"]
    host_port = base.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":") if ":" in host_port else (host_port, "5432")
    fake = DatabaseProxy(host, int(port))
    yield fake
    fake.close()


def _serve(url: str, fake_slack: FakeSlackAPI):
    settings = slack_app_settings(url, fake_slack, record_timeout_seconds=RECORD_TIMEOUT)
    return start_in_thread(build_service(settings, record_only=True))


def test_events_during_a_hung_postgresql_get_503_within_the_bound_and_are_taken_when_it_answers(
    pg_url: str, proxy: DatabaseProxy, fake_slack: FakeSlackAPI
) -> None:
    server = _serve(proxy.url(pg_url), fake_slack)
    try:
        assert post_signed(server.url + "/slack/events", dm("はじめまして", user="U1")).status == 200
        proxy.hang()
        events = [dm("受給者証なくした", user=f"U{10 + n}", event_id=f"EvHang{n}") for n in range(5)]
        for body in events:
            started = time.monotonic()
            assert post_signed(server.url + "/slack/events", body).status == 503
            assert time.monotonic() - started < RECORD_TIMEOUT + 1.0 < 3.0, "Slack wants its answer within 3 s"
        proxy.resume()
        time.sleep(5.2)  # DB_PAUSE_SECONDS: the events of the pause are refused at once, then tried again
        statuses = [post_signed(server.url + "/slack/events", body).status for body in events]  # Slack's retries
        assert statuses == [200] * 5
    finally:
        server.stop()
    assert not fake_slack.calls_to("chat.postMessage"), "no apology from the HTTP side"


def test_events_after_postgresql_vanished_get_503_at_once(
    pg_url: str, proxy: DatabaseProxy, fake_slack: FakeSlackAPI
) -> None:
    server = _serve(proxy.url(pg_url), fake_slack)
    try:
        proxy.vanish()
        for n in range(20):
            started = time.monotonic()
            assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user=f"U{50 + n}")).status == 503
            assert time.monotonic() - started < 3.0
    finally:
        server.stop()
    assert not fake_slack.calls_to("chat.postMessage")


def test_a_line_webhook_after_postgresql_vanished_gets_503_for_redelivery(pg_url: str, proxy: DatabaseProxy) -> None:
    import urllib.error
    import urllib.request

    from tests.fakes.line_api import FakeLineApi
    from tests.test_line_e2e import SECRET as LINE_SECRET
    from tests.test_line_e2e import sign, text_event, webhook

    with FakeLineApi.start() as line_api:
        settings = Settings(
            database_url=proxy.url(pg_url),
            line_channel_secret=LINE_SECRET,
            line_channel_access_token=line_api.access_token,
            line_api_url=line_api.url,
            record_timeout_seconds=RECORD_TIMEOUT,
        )
        server = start_in_thread(build_service(settings, record_only=True))
        try:
            proxy.vanish()
            body = webhook(text_event("受給者証なくした", reply_token="rt-gone"))
            request = urllib.request.Request(
                f"{server.url}/line/callback",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
            )
            started = time.monotonic()
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 503
            assert time.monotonic() - started < 3.0
        finally:
            server.stop()
        assert not line_api.calls("/v2/bot/message/reply") and not line_api.calls("/v2/bot/message/push"), (
            "nothing sent: LINE delivers the webhook again"
        )


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slack_events_are_acked_at_once_while_the_web_api_is_unreachable(tmp_path) -> None:
    """No outbound call on the ack path: bolt's auth.test would hold (or fail) every ack."""
    from tests.test_durable_turns import pending_turns

    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    settings = Settings(
        database_url=url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=f"http://127.0.0.1:{_closed_port()}/api/",
    )
    server = start_in_thread(build_service(settings, record_only=True))
    try:
        for n in range(3):
            started = time.monotonic()
            assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user=f"U{90 + n}")).status == 200
            assert time.monotonic() - started < 1.0
    finally:
        server.stop()
    assert pending_turns(url) == 3


def test_slack_events_are_acked_at_once_while_the_web_api_is_slow(tmp_path, fake_slack: FakeSlackAPI) -> None:
    """auth.test taking 4 s (the probe saw 5 s acks; Slack waits 3): asked once, at start, off the ack path."""
    from tests.test_durable_turns import pending_turns

    fake_slack.auth_delay = 4.0
    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    settings = Settings(
        database_url=url, slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=fake_slack.api_url
    )
    server = start_in_thread(build_service(settings, record_only=True))
    try:
        for n in range(3):
            acked = post_signed(server.url + "/slack/events", dm("受給者証なくした", user=f"U{80 + n}"))
            assert acked.status == 200 and acked.seconds < 1.0
    finally:
        server.stop()
    assert pending_turns(url) == 3
    assert len(fake_slack.calls_to("auth.test", ok_only=False)) <= 1


def test_with_the_bot_user_id_configured_slack_is_never_asked_who_the_bot_is(
    tmp_path, fake_slack: FakeSlackAPI
) -> None:
    settings = slack_app_settings(f"sqlite:///{tmp_path / 'nanbyo.db'}", fake_slack, slack_bot_user_id="UBOT")
    server = start_in_thread(build_service(settings, record_only=True))
    try:
        assert post_signed(server.url + "/slack/events", dm("こんにちは", user="U95")).status == 200
        # The bot's own post, echoed back by Slack, is no turn.
        assert post_signed(server.url + "/slack/events", dm("ご案内です", user="UBOT")).status == 200
    finally:
        server.stop()
    assert not fake_slack.calls_to("auth.test", ok_only=False)


# --- malformed and stalled requests, a locked queue file -------------------------------------------

DEEP = 50_000  # far beyond what Python's JSON parser can nest


def _service_both(tmp_path, fake_slack: FakeSlackAPI):
    from tests.test_line_e2e import SECRET as LINE_SECRET

    settings = slack_app_settings(
        f"sqlite:///{tmp_path / 'nanbyo.db'}",
        fake_slack,
        slack_bot_user_id="UBOT",
        line_channel_secret=LINE_SECRET,
        line_channel_access_token="token",
        line_api_url="http://127.0.0.1:9",
    )
    return build_service(settings, record_only=True)


def test_json_nested_deeper_than_the_parser_goes_gets_400_not_500(tmp_path, fake_slack: FakeSlackAPI) -> None:
    import urllib.error
    import urllib.parse
    import urllib.request

    from tests.test_line_e2e import sign

    server = start_in_thread(_service_both(tmp_path, fake_slack))
    try:
        deep = "[" * DEEP + "]" * DEEP
        assert (
            post_signed(server.url + "/slack/events", '{"type": "event_callback", "event": ' + deep + "}").status == 400
        )
        form = "payload=" + urllib.parse.quote(deep)
        assert (
            post_signed(server.url + "/slack/events", form, content_type="application/x-www-form-urlencoded").status
            == 400
        )
        body = ('{"destination": "U1", "events": ' + deep + "}").encode()
        request = urllib.request.Request(
            server.url + "/line/callback",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400
        assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user="U77")).status == 200, (
            "still serving"
        )
    finally:
        server.stop()


def test_a_body_that_stalls_gets_408_within_the_bound(tmp_path, fake_slack: FakeSlackAPI, monkeypatch) -> None:
    import socket

    import bot.server

    monkeypatch.setattr(bot.server, "BODY_TIMEOUT_SECONDS", 0.5)
    server = start_in_thread(_service_both(tmp_path, fake_slack))
    try:
        for path in ("/slack/events", "/line/callback"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
                conn.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    'Content-Length: 1000\r\n\r\n{"type":'.encode()
                )
                started = time.monotonic()
                answer = conn.recv(4096).decode("latin-1")
                assert answer.startswith("HTTP/1.1 408"), answer[:80]
                assert time.monotonic() - started < 3.0
    finally:
        server.stop()


def test_healthz_says_503_while_the_turn_queue_file_is_locked(tmp_path, fake_slack: FakeSlackAPI) -> None:
    import json
    import sqlite3

    from tests.test_slack_e2e import get

    server = start_in_thread(_service_both(tmp_path, fake_slack))
    try:
        assert get(server.url + "/healthz").status == 200
        locker = sqlite3.connect(tmp_path / "nanbyo-turns.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another writer holds the queue and does not finish
        try:
            started = time.monotonic()
            locked = get(server.url + "/healthz")
            assert locked.status == 503 and json.loads(locked.body)["status"] == "unavailable"
            assert time.monotonic() - started < 1.5
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        for _ in range(100):  # the probe that waited on the lock finishes, then a new one runs
            if get(server.url + "/healthz").status == 200:
                break
            time.sleep(0.1)
        assert get(server.url + "/healthz").status == 200
    finally:
        server.stop()


def test_slow_header_connections_are_closed_and_real_events_go_on(
    tmp_path, fake_slack: FakeSlackAPI, monkeypatch
) -> None:
    """Connections that send their headers a byte at a time fill uvicorn's connection cap (503 for
    everyone beyond it); each is closed when its headers are not complete in time."""
    import socket

    import bot.server

    monkeypatch.setattr(bot.server, "MAX_CONNECTIONS", 30)
    monkeypatch.setattr(bot.server, "HEADER_TIMEOUT_SECONDS", 1.0)
    server = start_in_thread(_service_both(tmp_path, fake_slack))
    slow = []
    try:
        for _ in range(40):  # more than the cap
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(conn)
        started = time.monotonic()
        for conn in slow[:30]:  # each is closed by the server, without an answer (some, to make room)
            try:
                assert conn.recv(4096) == b""
            except ConnectionResetError:
                pass  # closed before the server had read what it sent: a reset, as good a close
        assert time.monotonic() - started < 4.0
        acked = post_signed(server.url + "/slack/events", dm("受給者証なくした", user="U88"))
        assert acked.status == 200 and acked.seconds < 1.0
    finally:
        for conn in slow:
            conn.close()
        server.stop()


def test_a_kept_alive_connection_that_trickles_its_next_request_headers_is_closed(
    tmp_path, fake_slack: FakeSlackAPI, monkeypatch
) -> None:
    """uvicorn's keep-alive timeout stops at the next request's first byte; the header deadline
    starts again after each response, so the second request's headers are bounded too."""
    import socket

    import bot.server

    monkeypatch.setattr(bot.server, "HEADER_TIMEOUT_SECONDS", 1.0)
    server = start_in_thread(_service_both(tmp_path, fake_slack))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200"), "a first request, answered; the connection stays open"
            conn.settimeout(0.2)
            started = time.monotonic()
            closed_after = None
            for byte in b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
                try:
                    conn.sendall(bytes([byte]))
                    if conn.recv(4096) == b"":
                        closed_after = time.monotonic() - started
                        break
                except TimeoutError:
                    continue  # still open: the next byte
                except OSError:
                    closed_after = time.monotonic() - started
                    break
            assert closed_after is not None, "a client sending a byte every 0.2 s held the connection for 10 s"
            print(f"the trickled second request closed after {closed_after:.2f} s")
            assert closed_after < 2.5
    finally:
        server.stop()


def test_a_thousand_slow_connections_at_the_real_cap_hold_events_and_healthz_back_at_most_until_their_deadlines(
    tmp_path, fake_slack: FakeSlackAPI, monkeypatch
) -> None:
    """1,100 unauthenticated connections (slow headers and slow bodies) at the real connection cap
    (1,000): real events and /healthz answer within seconds (room is made at the cap; the header and
    body deadlines close the rest)."""
    import socket

    import bot.server
    from tests.test_slack_e2e import get

    monkeypatch.setattr(bot.server, "HEADER_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(bot.server, "BODY_TIMEOUT_SECONDS", 1.0)
    assert bot.server.MAX_CONNECTIONS == 1000
    server = start_in_thread(_service_both(tmp_path, fake_slack))
    slow = []
    try:
        started = time.monotonic()
        for n in range(1100):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if n < 400:  # complete headers, a body that never comes
                conn.sendall(
                    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\n\r\n{"
                )
            else:  # headers that never end
                conn.sendall(b"POST /line/callback HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(conn)
        opened = time.monotonic()

        def ok(result_of) -> bool:
            try:
                return result_of().status == 200
            except OSError:
                return False

        statuses = []
        health_back = event_back = None
        while (health_back is None or event_back is None) and time.monotonic() - opened < 10:
            if health_back is None:
                health = ok(lambda: get(server.url + "/healthz"))
                statuses.append(health)
                if health:
                    health_back = time.monotonic() - opened
            if event_back is None and ok(
                lambda: post_signed(server.url + "/slack/events", dm("受給者証なくした", user="U89"))
            ):
                event_back = time.monotonic() - opened
            time.sleep(0.05)
        assert statuses, "measured while the 1,100 connections were open"
        assert health_back is not None and event_back is not None
        print(
            f"1,100 opened in {opened - started:.2f} s; then /healthz back after {health_back:.2f} s, "
            f"a real event after {event_back:.2f} s"
        )
        assert health_back < 3.0 and event_back < 3.0
    finally:
        for conn in slow:
            conn.close()
        server.stop()


def test_a_turn_that_got_the_apology_is_not_answered_again_when_the_database_is_back(
    tmp_path, fake_slack: FakeSlackAPI
) -> None:
    """SQLite, the whole serve in process: the database is held by another writer while a recorded
    turn runs (it apologises), and the queue file too while the answered turn is deleted. Once both
    are free, the turn is deleted, not taken over and run again: no user gets the apology and then
    the answer (issue 24's 24-32 users)."""
    import sqlite3

    from bot.texts import DB_DOWN_TEXT

    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    settings = slack_app_settings(url, fake_slack, slack_bot_user_id="UBOT", turn_lease_seconds=1.0)
    server = start_in_thread(build_service(settings))
    lockers = []
    try:
        assert post_signed(server.url + "/slack/events", dm("こんにちは", user="U60")).status == 200
        fake_slack.wait_for("chat.postMessage", 1)  # the schema is made, the user known
        for name in ("nanbyo.db", "nanbyo-turns.db"):
            locker = sqlite3.connect(tmp_path / name, isolation_level=None)
            lockers.append(locker)
        lockers[0].execute("BEGIN EXCLUSIVE")  # the database: the turn will wait 5 s, then apologise
        assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user="U61")).status == 200
        time.sleep(0.5)  # recorded and running; now the queue file too, for the delete after the apology
        lockers[1].execute("BEGIN EXCLUSIVE")
        apology = fake_slack.wait_for("chat.postMessage", 2, timeout=15)[-1]
        assert apology.args["text"].startswith(DB_DOWN_TEXT[:10])
        time.sleep(6.0)  # the delete waits out the busy timeout and fails; the turn's lease runs out
        for locker in lockers:
            locker.execute("ROLLBACK")
        time.sleep(3.0)  # a turn left to its lease would be taken over and answered now
    finally:
        for locker in lockers:
            locker.close()
        server.stop()
    to_u61 = [c for c in fake_slack.calls_to("chat.postMessage") if c.args.get("channel") == "D61"]
    assert len(to_u61) == 1, [c.args.get("text", "")[:30] for c in to_u61]


def test_on_postgresql_a_turn_that_got_the_apology_is_not_answered_again(pg_url: str, fake_slack: FakeSlackAPI) -> None:
    """PostgreSQL, the whole serve in process: another session holds the dialog tables while a
    recorded turn runs (it apologises after the lock timeout), then the queue table while the turn
    is deleted. Once both are free, the turn is deleted, not taken over and answered as well."""
    from sqlalchemy import create_engine, text

    from bot.texts import DB_DOWN_TEXT

    settings = slack_app_settings(pg_url, fake_slack, slack_bot_user_id="UBOT", turn_lease_seconds=1.0)
    server = start_in_thread(build_service(settings))
    other = create_engine(pg_url)
    dialog, queue = other.connect(), other.connect()
    try:
        assert post_signed(server.url + "/slack/events", dm("こんにちは", user="U60")).status == 200
        fake_slack.wait_for("chat.postMessage", 1)
        dialog.begin()
        dialog.execute(text("LOCK TABLE handled_event, conversation_state IN ACCESS EXCLUSIVE MODE"))
        assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user="U61")).status == 200
        time.sleep(0.5)  # recorded and running; now the queue, for the delete after the apology
        queue.begin()
        queue.execute(text("LOCK TABLE pending_turn IN ACCESS EXCLUSIVE MODE"))
        apology = fake_slack.wait_for("chat.postMessage", 2, timeout=15)[-1]
        assert apology.args["text"].startswith(DB_DOWN_TEXT[:10])
        time.sleep(6.0)  # the delete waits out the lock timeout and fails; the turn's lease runs out
        dialog.rollback()
        queue.rollback()
        time.sleep(3.0)  # a turn left to its lease would be taken over and answered now
    finally:
        dialog.close()
        queue.close()
        other.dispose()
        server.stop()
    to_u61 = [c for c in fake_slack.calls_to("chat.postMessage") if c.args.get("channel") == "D61"]
    assert len(to_u61) == 1, [c.args.get("text", "")[:30] for c in to_u61]


def test_events_refused_during_a_hung_postgresql_are_answered_once_when_delivered_again(
    pg_url: str, proxy: DatabaseProxy, fake_slack: FakeSlackAPI
) -> None:
    """The whole serve (turns run too): the events of the hang get 503 and nothing else; delivered
    again after it, each user gets one answer, and no apology."""
    from bot.texts import DB_DOWN_TEXT

    settings = slack_app_settings(
        proxy.url(pg_url), fake_slack, slack_bot_user_id="UBOT", record_timeout_seconds=RECORD_TIMEOUT
    )
    server = start_in_thread(build_service(settings))
    try:
        assert post_signed(server.url + "/slack/events", dm("はじめまして", user="U1")).status == 200
        fake_slack.wait_for("chat.postMessage", 1)
        proxy.hang()
        events = [dm("受給者証なくした", user=f"U{20 + n}", event_id=f"EvAgain{n}") for n in range(5)]
        for body in events:
            refused = post_signed(server.url + "/slack/events", body)
            assert refused.status == 503 and refused.seconds < 3.0
        proxy.resume()
        time.sleep(5.2)  # DB_PAUSE_SECONDS
        assert [post_signed(server.url + "/slack/events", body).status for body in events] == [200] * 5
        fake_slack.wait_for("chat.postMessage", 6, timeout=20)
        time.sleep(0.5)  # room for a second message, if one were coming
    finally:
        server.stop()
    posts = fake_slack.calls_to("chat.postMessage")
    for n in range(5):
        to_user = [c.args.get("text", "") for c in posts if c.args.get("channel") == f"D{20 + n}"]
        assert len(to_user) == 1 and not to_user[0].startswith(DB_DOWN_TEXT[:10]), to_user


def test_two_hundred_slow_header_connections_never_hold_the_cap_real_events_and_healthz_answer_at_once(
    tmp_path, fake_slack: FakeSlackAPI, monkeypatch
) -> None:
    """The probe's 1,100 slow clients, scaled to a cap of 50: while 200 connections trickle their
    headers (and the header deadline is far off), a real event and /healthz are answered 200 within
    a second — the connections that waited longest for their headers make room."""
    import socket

    import bot.server
    from tests.test_slack_e2e import get

    monkeypatch.setattr(bot.server, "MAX_CONNECTIONS", 50)
    monkeypatch.setattr(bot.server, "HEADER_TIMEOUT_SECONDS", 60.0)  # not what saves us here
    server = start_in_thread(_service_both(tmp_path, fake_slack))
    slow = []
    try:
        for n in range(200):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(conn)
        for round_ in range(3):
            for conn in slow[-20:]:  # the newest slow clients go on trickling, a byte each
                try:
                    conn.sendall(b"a")
                except OSError:
                    pass
            acked = post_signed(
                server.url + "/slack/events", dm("受給者証なくした", user=f"U9{round_}", event_id=f"EvSlow{round_}")
            )
            assert acked.status == 200 and acked.seconds < 1.0, (acked.status, acked.seconds)
            started = time.monotonic()
            assert get(server.url + "/healthz").status == 200
            assert time.monotonic() - started < 1.0
        closed = 0
        for conn in slow[:100]:  # the oldest were closed without an answer
            conn.settimeout(2)
            try:
                closed += conn.recv(4096) == b""
            except OSError:
                closed += 1
        assert closed == 100
    finally:
        for conn in slow:
            conn.close()
        server.stop()


def test_a_kept_alive_connection_that_trickles_its_next_request_is_closed(
    tmp_path, fake_slack: FakeSlackAPI, monkeypatch
) -> None:
    """The header deadline starts again after each response: one quick request does not buy a
    connection that then sends the next request's headers a byte at a time."""
    import socket

    import bot.server

    monkeypatch.setattr(bot.server, "HEADER_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(bot.server, "KEEP_ALIVE_SECONDS", 30)  # not what saves us here
    server = start_in_thread(_service_both(tmp_path, fake_slack))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = b""
            while not first.endswith(b'{"status":"ok"}'):  # the whole first response, however it arrives
                chunk = conn.recv(4096)
                assert chunk, first
                first += chunk
            assert first.startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            answer = b"x"
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":
                try:
                    conn.sendall(bytes([byte]))
                    conn.settimeout(0.1)
                    answer = conn.recv(4096)
                    break
                except socket.timeout:
                    continue
                except OSError:
                    answer = b""
                    break
            assert answer == b"", answer[:80]
            assert time.monotonic() - started < 2.0
    finally:
        server.stop()


def test_slow_body_connections_make_room_for_real_events(tmp_path, fake_slack: FakeSlackAPI, monkeypatch) -> None:
    """100 connections that send their headers and then trickle the body, at a cap of 50 and with
    the body deadline far off: a real event is still acked within a second."""
    import socket

    import bot.server

    monkeypatch.setattr(bot.server, "MAX_CONNECTIONS", 50)
    monkeypatch.setattr(bot.server, "BODY_TIMEOUT_SECONDS", 60.0)  # not what saves us here
    server = start_in_thread(_service_both(tmp_path, fake_slack))
    slow = []
    try:
        for n in range(100):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            conn.sendall(
                b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"type":'
            )
            slow.append(conn)
            time.sleep(0.002)  # each one's headers are read before the next connects
        for round_ in range(3):
            acked = post_signed(
                server.url + "/slack/events", dm("受給者証なくした", user=f"U8{round_}", event_id=f"EvBody{round_}")
            )
            assert acked.status == 200 and acked.seconds < 1.0, (acked.status, acked.seconds)
        closed = 0
        for conn in slow[:40]:  # the oldest were closed to make room, without an answer
            conn.settimeout(2)
            try:
                closed += conn.recv(4096) == b""
            except OSError:
                closed += 1
        assert closed == 40
    finally:
        for conn in slow:
            conn.close()
        server.stop()
