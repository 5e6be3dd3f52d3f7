"""An outbox that survives the platform (issue 24): a reply that Slack or LINE fails for a moment
(5xx, 429, not reached) is delivered again with backoff, from the answer kept in the database (the
turn does not run twice), until it succeeds or OUTBOX_EXPIRY_SECONDS pass; a restart meanwhile
loses nothing. The fakes on 127.0.0.1 play the outage; the database is real."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter

from bot.bootstrap import build_bot, build_service
from bot.config import Settings
from bot.server import start_in_thread
from tests.fakes.line_api import FakeLineApi
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_durable_turns import pending_turns
from tests.test_line_e2e import PUSH, REPLY, SECRET as LINE_SECRET, sign, text_event, webhook
from tests.test_slack_e2e import SECRET, TOKEN, dm, post_signed

OUTAGE = 3.0


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def test_slack_messages_acked_during_an_outage_are_answered_after_it(database_url: str, fake_slack: FakeSlackAPI) -> None:
    url = database_url
    settings = Settings(database_url=url, slack_bot_token=TOKEN, slack_signing_secret=SECRET,
                        slack_api_url=fake_slack.api_url, slack_bot_user_id="UBOT")
    service = build_service(settings, bot=build_bot(settings))
    server = start_in_thread(service)
    users = [f"U{300 + n}" for n in range(8)]
    try:
        fake_slack.outage(OUTAGE)
        for user in users:
            assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user=user)).status == 200
        answered = lambda: {c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")}  # noqa: E731
        _wait(lambda: {"D" + u[1:] for u in users} <= answered(), timeout=OUTAGE + 20)
        _wait(lambda: pending_turns(url) == 0)
    finally:
        server.stop()
    refused = [c for c in fake_slack.calls_to("chat.postMessage", ok_only=False) if c.status == 503]
    assert refused, "the outage was met, else this proves nothing"
    posts = Counter(c.args["channel"] for c in fake_slack.calls_to("chat.postMessage"))
    assert all(posts["D" + u[1:]] >= 1 for u in users)
    assert service.runner.consumer.redelivered >= len(users), "each retried delivery is counted"


def _post_line(url: str, user: str, token: str) -> int:
    body = webhook(text_event("受給者証なくした", user=user, reply_token=token))
    request = urllib.request.Request(url + "/line/callback", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def _line_sent(line_api: FakeLineApi) -> Counter[str]:
    """Successful sends per user: a reply (by its token) or a push."""
    sent: Counter[str] = Counter()
    for rec in line_api.requests:
        if rec.status != 200:
            continue
        if rec.path == PUSH:
            sent[rec.json["to"]] += 1
        elif rec.path == REPLY:
            sent[rec.json["replyToken"].removeprefix("rt-")] += 1
    return sent


def test_line_messages_acked_during_an_outage_are_answered_exactly_once(database_url: str) -> None:
    url = database_url
    with FakeLineApi.start() as line_api:
        settings = Settings(database_url=url, line_channel_secret=LINE_SECRET,
                            line_channel_access_token=line_api.access_token, line_api_url=line_api.url)
        server = start_in_thread(build_service(settings, bot=build_bot(settings)))
        users = [f"L{400 + n}" for n in range(6)]
        try:
            line_api.outage(OUTAGE)
            for user in users:
                assert _post_line(server.url, user, f"rt-{user}") == 200
            _wait(lambda: set(users) <= set(_line_sent(line_api)), timeout=OUTAGE + 20)
            _wait(lambda: pending_turns(url) == 0)
        finally:
            server.stop()
        assert any(r.status == 503 for r in line_api.requests), "the outage was met"
        sent = _line_sent(line_api)
        assert all(sent[u] == 1 for u in users), sent  # LINE: a reply token or X-Line-Retry-Key, once


def test_a_restart_during_an_outage_loses_no_answer(database_url: str) -> None:
    """The answers wait in the database: a turn runner stopped while the platform is down leaves
    them in the queue, and the next one delivers them (kept, not run again) once it is back."""
    from bot.turns import PooledRunner

    url = database_url
    with FakeLineApi.start() as line_api:
        settings = Settings(database_url=url, line_channel_secret=LINE_SECRET,
                            line_channel_access_token=line_api.access_token, line_api_url=line_api.url)
        bot = build_bot(settings)
        service = build_service(settings, bot=bot)
        server = start_in_thread(service)
        users = [f"L{500 + n}" for n in range(4)]
        line_api.outage(60)
        for user in users:
            assert _post_line(server.url, user, f"rt-{user}") == 200
        _wait(lambda: service.runner.consumer.redelivered >= len(users))
        service.runner.consumer.close(timeout=0.5)  # stopped while LINE is still down: nothing delivered
        assert pending_turns(url) == len(users), "the turns wait in the queue"
        server.stop()
        line_api.outage_until = 0.0  # LINE is back
        second = PooledRunner(build_bot(settings), service.outboxes, store=bot.store, database_url=url, lease=0.3)
        try:
            _wait(lambda: set(users) <= set(_line_sent(line_api)), timeout=30)
            _wait(lambda: pending_turns(url) == 0)
        finally:
            second.close()
        sent = _line_sent(line_api)
        assert all(sent[u] == 1 for u in users), sent
