"""An outbox that survives the platform (issue 24): a reply that Slack or LINE fails for a moment
(5xx, 429, not reached) is delivered again with backoff, from the answer kept in the database (the
turn does not run twice), until it succeeds or OUTBOX_EXPIRY_SECONDS pass; a restart meanwhile
loses nothing. The fakes on 127.0.0.1 play the outage; the database is real."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from pathlib import Path

from bot.bootstrap import build_bot, build_service
from bot.config import Settings
from bot.server import start_in_thread
from tests.fakes.line_api import FakeLineApi
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_durable_turns import pending_turns
from tests.test_line_e2e import PUSH, REPLY, sign, text_event, webhook
from tests.test_line_e2e import SECRET as LINE_SECRET
from tests.test_slack_e2e import dm, post_signed, slack_app_settings

OUTAGE = 3.0


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def test_slack_messages_acked_during_an_outage_are_answered_after_it(
    database_url: str, fake_slack: FakeSlackAPI
) -> None:
    url = database_url
    settings = slack_app_settings(url, fake_slack, slack_bot_user_id="UBOT")
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


def _line_settings(url: str, line_api: FakeLineApi) -> Settings:
    return Settings(
        database_url=url,
        line_channel_secret=LINE_SECRET,
        line_channel_access_token=line_api.access_token,
        line_api_url=line_api.url,
    )


def _post_line(url: str, user: str, token: str) -> int:
    body = webhook(text_event("受給者証なくした", user=user, reply_token=token))
    request = urllib.request.Request(
        url + "/line/callback",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
    )
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
        settings = _line_settings(url, line_api)
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
        settings = _line_settings(url, line_api)
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


# -- Retry-After and the backoff ---------------------------------------------------------------------


def test_retry_after_in_seconds_or_as_an_http_date_and_the_backoff_within_the_expiry() -> None:
    from datetime import datetime, timezone

    from bot.outbox import MAX_BACKOFF_SECONDS, backoff_delay, retry_after_seconds

    now = datetime(2026, 12, 5, 17, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 2.5 ") == 2.5
    assert retry_after_seconds("Sat, 05 Dec 2026 17:00:07 GMT", now) == 7.0
    assert retry_after_seconds("Sat, 05 Dec 2026 16:59:00 GMT", now) == 0.0  # past: at once
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("-4") == 0.0
    # Exponential with jitter: attempt n waits between half and all of base * 2^(n-1), capped.
    for attempt in (1, 2, 3, 4):
        full = 0.1 * 2 ** (attempt - 1)
        assert all(full / 2 <= backoff_delay(attempt, None, 600, 0.1) <= full for _ in range(50))
    assert backoff_delay(40, None, 600) <= MAX_BACKOFF_SECONDS
    assert backoff_delay(1, 120.0, 600) == 120.0  # what the platform asked for
    assert backoff_delay(1, 3600.0, 45.0) == 45.0  # never past the expiry: one last try before it


def test_line_429_with_retry_after_is_waited_out_and_answered_once(tmp_path: Path) -> None:
    """LINE limiting (429, Retry-After: 1) for 2.5 s: the consumer's own backoff is tiny here, so
    only Retry-After spaces the attempts; each message is answered once after the window."""
    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    with FakeLineApi.start() as line_api:
        settings = _line_settings(url, line_api)
        service = build_service(settings, bot=build_bot(settings))
        service.runner.consumer.backoff = 0.01
        server = start_in_thread(service)
        users = [f"L{600 + n}" for n in range(3)]
        try:
            line_api.outage(2.5, status=429, retry_after="1")
            for user in users:
                assert _post_line(server.url, user, f"rt-{user}") == 200
            _wait(lambda: set(users) <= set(_line_sent(line_api)), timeout=20)
            _wait(lambda: pending_turns(url) == 0)
        finally:
            server.stop()
        refused = [r for r in line_api.requests if r.status == 429]
        assert len(refused) >= len(users), "the limit was met"
        assert len(refused) <= len(users) * 4, "Retry-After spaced the attempts (the backoff alone is 10 ms)"
        from bot.runner import today_tokyo

        with service.bot.store.unit_of_work() as uow:
            counts = uow.statistics.delivery_stats(today_tokyo())["line"]
        assert counts["retried"] == len(refused) and counts["delivered_late"] == len(users), counts
        sent = _line_sent(line_api)
        assert all(sent[u] == 1 for u in users), sent


def test_slack_503_with_an_http_date_retry_after_still_answers(tmp_path: Path, fake_slack: FakeSlackAPI) -> None:
    """A Retry-After given as an HTTP date (RFC 9110 allows it) is read, not a crash that drops the answer."""
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    settings = slack_app_settings(url, fake_slack, slack_bot_user_id="UBOT")
    service = build_service(settings, bot=build_bot(settings))
    service.runner.consumer.backoff = 0.01
    server = start_in_thread(service)
    try:
        when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=1), usegmt=True)
        fake_slack.outage(1.0, retry_after=when)
        assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user="U700")).status == 200
        _wait(lambda: any(c.args["channel"] == "D700" for c in fake_slack.calls_to("chat.postMessage")), timeout=20)
        _wait(lambda: pending_turns(url) == 0)
    finally:
        server.stop()
    assert any(c.status == 503 for c in fake_slack.calls_to("chat.postMessage", ok_only=False)), "the outage was met"


def test_a_slack_500_outage_is_answered_after_it_and_the_maybe_twice_counted_in_stats(
    database_url: str, fake_slack: FakeSlackAPI
) -> None:
    """Slack answered 500 (it may have posted anyway; chat.postMessage has no idempotency key): each
    message is answered after the outage, and `nanbyo-bot stats` counts the retries, the late
    deliveries and those that may show twice, on both databases."""
    from tests.conftest import run_cli

    settings = slack_app_settings(database_url, fake_slack, slack_bot_user_id="UBOT")
    service = build_service(settings, bot=build_bot(settings))
    service.runner.consumer.backoff = 0.05
    server = start_in_thread(service)
    users = [f"U{800 + n}" for n in range(3)]
    try:
        fake_slack.outage(1.5, status=500)
        for user in users:
            assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user=user)).status == 200
        answered = lambda: {c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")}  # noqa: E731
        _wait(lambda: {"D" + u[1:] for u in users} <= answered(), timeout=20)
        _wait(lambda: pending_turns(database_url) == 0)
    finally:
        server.stop()
    failed = [c for c in fake_slack.calls_to("chat.postMessage", ok_only=False) if c.status == 500]
    assert len(failed) >= len(users), "the outage was met"
    out = run_cli(["stats"], env={"DATABASE_URL": database_url})
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("slack "))
    retries, late, twice, given_up = (int(n) for n in row.split()[1:])
    assert retries == len(failed)  # each failed attempt was tried again
    assert late == len(users) and twice == len(users) and given_up == 0


def test_a_turn_process_killed_during_a_slack_outage_is_restarted_and_delivers_every_answer_once(
    tmp_path: Path, fake_slack: FakeSlackAPI, monkeypatch
) -> None:
    """`nanbyo-bot serve` as run in production: its turn process is killed (SIGKILL) while Slack
    answers 503; serve starts another, which takes the waiting turns over and, once Slack is back,
    posts each kept answer once (a 503 is a refusal: nothing was posted before)."""
    import os
    import signal

    from tests.test_turn_process import start

    monkeypatch.setenv("TURN_LEASE_SECONDS", "2")
    serve = start(tmp_path, fake_slack)
    users = [f"U{900 + n}" for n in range(4)]
    try:
        first = serve.wait_turn_process_ready()
        fake_slack.outage(120)
        for user in users:
            assert post_signed(serve.events, dm("受給者証なくした", user=user)).status == 200
        _wait(lambda: serve.stderr().count("delivery delayed") >= len(users))
        os.kill(first, signal.SIGKILL)
        assert serve.wait_turn_process_ready(times=2) != first
        _wait(lambda: serve.stderr().count("turn taken over") >= len(users))
        fake_slack.outage(0)  # Slack is back
        answered = lambda: {c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")}  # noqa: E731
        _wait(lambda: {"D" + u[1:] for u in users} <= answered(), timeout=60)
    finally:
        code = serve.stop()
    assert code == 0, serve.stderr()
    posts = Counter(c.args["channel"] for c in fake_slack.calls_to("chat.postMessage"))
    assert all(posts["D" + u[1:]] == 1 for u in users), posts
    assert serve.stderr().count("turn answer replayed") >= len(users), "the kept answers, not a second run"


def test_a_line_reply_that_failed_is_pushed_with_one_retry_key_and_counted(tmp_path: Path) -> None:
    """LINE answers 500 to the reply (it may have shown it: a reply has no idempotency key): the
    answer is pushed with X-Line-Retry-Key, the same key on every try, and `stats` counts it as one
    that may show twice."""
    from tests.conftest import run_cli

    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    with FakeLineApi.start() as line_api:
        settings = _line_settings(url, line_api)
        service = build_service(settings, bot=build_bot(settings))
        service.runner.consumer.backoff = 0.05
        server = start_in_thread(service)
        try:
            line_api.outage(1.0, status=500)
            assert _post_line(server.url, "L950", "rt-L950") == 200
            _wait(lambda: _line_sent(line_api)["L950"] >= 1, timeout=20)
            _wait(lambda: pending_turns(url) == 0)
        finally:
            server.stop()
        replies = [r for r in line_api.requests if r.path == REPLY]
        pushes = [r for r in line_api.requests if r.path == PUSH]
        assert [r.status for r in replies] == [500], "the reply token is tried once"
        keys = {next(v for k, v in r.headers.items() if k.lower() == "x-line-retry-key") for r in pushes}
        assert len(keys) == 1 and pushes[-1].status == 200
        assert _line_sent(line_api)["L950"] == 1
    out = run_cli(["stats"], env={"DATABASE_URL": url})
    row = next(line for line in out.stdout.splitlines() if line.startswith("line "))
    retries, late, twice, given_up = (int(n) for n in row.split()[1:])
    assert retries == len(pushes) and late == 1 and twice == 1 and given_up == 0


def test_the_expiry_counts_from_the_first_failure_across_a_restart(tmp_path: Path) -> None:
    """OUTBOX_EXPIRY_SECONDS runs from the delivery's first failure, kept with the turn's answer: a
    turn taken over after a restart, already past it, is tried once and given up, not for another
    full period (an answer hours late helps nobody)."""
    from bot.turns import PooledRunner

    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    with FakeLineApi.start() as line_api:
        settings = _line_settings(url, line_api)
        bot = build_bot(settings)
        service = build_service(settings, bot=bot)
        server = start_in_thread(service)
        line_api.outage(120)
        assert _post_line(server.url, "L960", "rt-L960") == 200
        _wait(lambda: service.runner.consumer.redelivered >= 1)
        time.sleep(1.5)
        service.runner.consumer.close(timeout=0.2)
        server.stop()
        before = len(line_api.requests)
        second = PooledRunner(
            build_bot(settings),
            service.outboxes,
            store=bot.store,
            database_url=url,
            lease=0.3,
            outbox_expiry=1.0,
            backoff=0.05,
        )
        try:
            _wait(lambda: pending_turns(url) == 0)
        finally:
            second.close()
        tried = [r for r in line_api.requests[before:] if r.path in (REPLY, PUSH)]
        assert len(tried) == 1, "tried once after the restart, then given up: its expiry had passed"
        with bot.store.unit_of_work() as uow:
            from bot.runner import today_tokyo

            assert uow.statistics.delivery_stats(today_tokyo())["line"]["given_up"] == 1


def test_a_users_next_message_is_answered_after_the_one_that_waits_for_the_platform(
    tmp_path: Path, fake_slack: FakeSlackAPI
) -> None:
    """Two messages of one user, the first acked during the outage, the second just after it: the
    answers arrive in the order of the messages, not the second before the delayed first."""
    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    settings = slack_app_settings(url, fake_slack, slack_bot_user_id="UBOT")
    service = build_service(settings, bot=build_bot(settings))
    service.runner.consumer.backoff = 1.0
    server = start_in_thread(service)
    try:
        fake_slack.outage(0.5)
        assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user="U970")).status == 200
        _wait(lambda: service.runner.consumer.redelivered >= 1)
        time.sleep(0.6)  # the outage is over; the first answer's retry is still ahead
        assert post_signed(server.url + "/slack/events", dm("更新の手続きは？", user="U970")).status == 200
        _wait(lambda: len([c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "D970"]) >= 2)
        _wait(lambda: pending_turns(url) == 0)
    finally:
        server.stop()
    texts = [c.args["text"] for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "D970"]
    assert len(texts) == 2
    assert "再交付" in texts[0] and "再交付" not in texts[1], texts


def test_an_outage_between_two_messages_of_one_answer_is_counted_as_shown_twice(
    tmp_path: Path, fake_slack: FakeSlackAPI
) -> None:
    """「メニュー」 is answered with two Slack messages; Slack fails (503) from the second one on. The
    retry posts the whole answer again (chat.postMessage has no idempotency key), so the first
    message shows twice — and stats counts that answer as one that may show twice."""
    from tests.conftest import run_cli

    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    settings = slack_app_settings(url, fake_slack, slack_bot_user_id="UBOT")
    service = build_service(settings, bot=build_bot(settings))
    service.runner.consumer.backoff = 0.05
    server = start_in_thread(service)
    try:
        fake_slack.outage_after(1, 0.5, status=503)
        assert post_signed(server.url + "/slack/events", dm("上限額を計算したい", user="U980")).status == 200
        _wait(lambda: pending_turns(url) == 0, timeout=20)
    finally:
        server.stop()
    posts = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "D980"]
    assert len(posts) == 3, "the first message, then the whole answer again once Slack was back"
    out = run_cli(["stats"], env={"DATABASE_URL": url})
    row = next(line for line in out.stdout.splitlines() if line.startswith("slack "))
    retries, late, twice, given_up = (int(n) for n in row.split()[1:])
    assert late == 1 and twice == 1 and given_up == 0


def test_a_deletion_removes_the_users_turns_still_waiting_for_the_platform(database_url: str) -> None:
    """A reply waiting for Slack or LINE to come back keeps its turn (and the message text) in the
    queue; the user's one-command deletion removes those rows and their kept answers too."""
    import json as _json

    from bot.runner import TurnConsumer
    from bot.storage.models import utcnow
    from bot.storage.repositories import turn_queue
    from bot.turn_codec import encode_turns
    from handlers.messages import Address, IncomingMessage

    settings = Settings(database_url=database_url)
    bot = build_bot(settings)
    queue = turn_queue(bot.store, database_url)
    runner = TurnConsumer(build_bot(settings), {}, store=bot.store, queue=queue)
    assert runner.bot.turn_queue is queue, "the runner that takes the turns tells the core where they wait"
    runner.close(timeout=1)
    bot.turn_queue = queue  # this core's deletion, with no runner taking the rows meanwhile
    msg = IncomingMessage("line", "L900", text="受給者証なくした 太田市に住んでます")
    with queue.unit_of_work() as uow:
        waiting = uow.turns.add_pending_turn(
            kind="line",
            user_key="line:L900",
            payload=encode_turns([(msg, Address("line", "L900"))]),
            owner="a-runner",
            now=utcnow(),
        )
        other = uow.turns.add_pending_turn(
            kind="line",
            user_key="line:L901",
            payload=encode_turns([(msg, Address("line", "L901"))]),
            owner="a-runner",
            now=utcnow(),
        )
    with bot.store.unit_of_work() as uow:
        uow.turns.keep_turn_replies(waiting, _json.dumps({"0": []}))
    bot.delete_user("line:L900")
    with queue.unit_of_work() as uow:
        assert uow.turns.count_pending_turns() == 1, "only the other user's turn is left"
    with bot.store.unit_of_work() as uow:
        assert uow.turns.turn_replies(waiting) is None
    assert other > waiting
