"""No acked turn is lost: ``serve`` records each Slack and LINE turn before acking it.

Through the installed command, with requests signed as Slack and LINE sign them and the fake
APIs on 127.0.0.1: a burst of events, every process of ``serve`` killed with SIGKILL in the
middle of it, a restart on the same database — and every event that had been acked is
answered, by the restarted instance taking over the dead one's turns once their lease ran out.
The turn's answer is committed with its event claim, so a turn whose answer was being posted
when the processes died is posted again with the same answer, never run twice; those are
the only repeats. And a queue that is full answers 503 rather than acking.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.runner import TAKEN_PER_THREAD
from bot.storage.db import turn_queue_url
from tests.fakes.line_api import FakeLineApi
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_line_e2e import SECRET as LINE_SECRET
from tests.test_line_e2e import sign, text_event, webhook
from tests.test_slack_e2e import SECRET, TOKEN, _free_port, _wait_healthy, dm, post_signed

RUNNER_THREADS = 8  # Settings.turn_threads' default: turns the turn process runs at once
LEASE_SECONDS = 2


@pytest.fixture()
def line_api() -> Iterator[FakeLineApi]:
    with FakeLineApi.start() as fake:
        yield fake


@dataclass
class Serve:
    proc: subprocess.Popen
    url: str
    log: Path

    def kill_all(self) -> None:
        """SIGKILL to every process of serve at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def start_serve(
    tmp_path: Path, database_url: str, fake_slack: FakeSlackAPI, line_api: FakeLineApi, name: str, **extra: str
) -> Serve:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "LINE_API_URL": line_api.url,
        "LINE_CHANNEL_SECRET": LINE_SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": line_api.access_token,
        "LOG_LEVEL": "INFO",
        "TURN_LEASE_SECONDS": str(LEASE_SECONDS),
        **extra,
    }
    env.pop("SLACK_APP_TOKEN", None)
    log = tmp_path / f"{name}.stderr"
    exe = Path(sys.executable).with_name("nanbyo-bot")
    with log.open("w") as err:  # a file: the logs of both processes must never block on a full pipe
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )  # its own process group: killpg reaches all of serve
    serve = Serve(proc, f"http://127.0.0.1:{port}", log)
    _wait_healthy(serve.url, proc)
    deadline = time.monotonic() + 60
    while "turn process ready" not in log.read_text(errors="replace"):  # turns are taken from now on
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.05)
    return serve


def post_line(url: str, user: str) -> int:
    body = webhook(text_event("受給者証なくした", user=user, reply_token=f"rt-{user}"))
    request = urllib.request.Request(
        url + "/line/callback",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def slack_answers(fake: FakeSlackAPI) -> Counter[str]:
    """Answers per Slack user (each test user has a DM channel of their own)."""
    return Counter("U" + c.args["channel"].removeprefix("D") for c in fake.calls_to("chat.postMessage"))


def line_answers(fake: FakeLineApi) -> Counter[str]:
    """Answers per LINE user: replies (the reply token names the user) and pushes LINE accepted."""
    answered: Counter[str] = Counter()
    for r in fake.calls("/v2/bot/message/reply"):
        if r.status == 200:
            answered[r.json["replyToken"].removeprefix("rt-")] += 1
    for r in fake.calls("/v2/bot/message/push"):
        if r.status == 200:
            answered[r.json["to"]] += 1
    return answered


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def pending_turns(database_url: str) -> int:
    """Recorded turns not answered yet: the only rows that hold a message's text."""
    return _count(turn_queue_url(database_url) or database_url, "pending_turn")


def kept_answers(database_url: str) -> int:
    return _count(database_url, "turn_answer")


def test_every_acked_event_is_answered_after_every_process_is_killed(
    tmp_path: Path, database_url: str, fake_slack: FakeSlackAPI, line_api: FakeLineApi
) -> None:
    first = start_serve(tmp_path, database_url, fake_slack, line_api, "first")
    total, kill_after = 400, 150
    acked: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()
    posted_at_kill: list[int] = []  # requests the fake Slack and LINE APIs had received when serve died

    def send(n: int) -> None:
        user = f"U{5000 + n}" if n % 2 else f"L{5000 + n}"  # Slack and LINE, one user per event
        try:
            if user.startswith("U"):
                status = post_signed(first.url + "/slack/events", dm("受給者証なくした", user=user)).status
            else:
                status = post_line(first.url, user)
        except (OSError, urllib.error.URLError):
            return  # the server died under this request: not acked, so Slack or LINE would send it again
        if status == 200:
            with lock:
                acked.append(user)
                if len(acked) == kill_after and not killed.is_set():
                    killed.set()
                    first.kill_all()
                    posted_at_kill.extend(
                        (len(fake_slack.calls_to("chat.postMessage", ok_only=False)), len(line_api.requests))
                    )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(total)))
    assert killed.is_set(), first.log.read_text(errors="replace")
    assert len(acked) >= kill_after

    second = start_serve(tmp_path, database_url, fake_slack, line_api, "second")
    try:
        deadline = time.monotonic() + 90
        while True:
            answered = slack_answers(fake_slack) + line_answers(line_api)
            lost = [u for u in acked if answered[u] == 0]
            if not lost and pending_turns(database_url) == 0:
                break
            assert time.monotonic() < deadline, (
                f"{len(lost)} acked events never answered, e.g. {lost[:5]}; "
                f"{pending_turns(database_url)} turns left\n" + second.log.read_text(errors="replace")[-3000:]
            )
            time.sleep(0.2)
    finally:
        assert second.stop() == 0

    answered = slack_answers(fake_slack) + line_answers(line_api)
    repeated = sorted(u for u in acked if answered[u] > 1)
    print(f"kill -9: {len(repeated)} of {len(acked)} acked events answered twice")  # docs/reliability.md (pytest -s)
    # Only an answer posted and not yet deleted at the kill is posted again (replayed from the
    # database, the turn does not run twice): no more of them than the turn process holds at once.
    assert len(repeated) <= TAKEN_PER_THREAD * RUNNER_THREADS, repeated
    assert all(answered[u] == 2 for u in repeated), {u: answered[u] for u in repeated}
    slack_posts = fake_slack.calls_to("chat.postMessage", ok_only=False)
    for user in repeated:
        # The same answer twice: replayed, not a second run of the turn; and the first was posted
        # before the kill, by the instance that died before it could record it done.
        if user.startswith("U"):
            posts = [i for i, c in enumerate(slack_posts) if c.args["channel"] == "D" + user[1:]]
            assert slack_posts[posts[0]].args["blocks"] == slack_posts[posts[1]].args["blocks"]
            assert posts[0] < posted_at_kill[0]
        else:
            sent = [
                (i, [m["text"] for m in r.json["messages"]])
                for i, r in enumerate(line_api.requests)
                if r.status == 200 and (r.json.get("to") == user or r.json.get("replyToken") == f"rt-{user}")
            ]
            assert sent[0][1] == sent[1][1]
            assert sent[0][0] < posted_at_kill[1]
    # Answers are forgotten with their turns; only a kill between the two can leave one behind
    # (purged by the lease loop after bot.runner.ANSWER_RETENTION).
    assert kept_answers(database_url) <= TAKEN_PER_THREAD * RUNNER_THREADS
    assert "turn taken over" in second.log.read_text(errors="replace")
    # The acked events were recorded before the ack, and answered: nothing else was answered.
    assert set(answered) <= {f"U{5000 + n}" if n % 2 else f"L{5000 + n}" for n in range(total)}


def test_a_full_queue_answers_503_and_the_turns_it_took_are_answered(
    db_url: str, fake_slack: FakeSlackAPI, line_api: FakeLineApi
) -> None:
    from bot.bootstrap import build_bot, build_service
    from bot.config import Settings
    from bot.server import start_in_thread

    settings = Settings(
        database_url=db_url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake_slack.api_url,
        line_api_url=line_api.url,
        line_channel_secret=LINE_SECRET,
        line_channel_access_token=line_api.access_token,
        turn_queue_limit=3,
    )
    bot = build_bot(settings)
    gate = threading.Event()
    handle = bot.handle

    def stuck(msg, keep=None):  # the turns stop getting anywhere: they pile up
        gate.wait(30)
        return handle(msg, keep)

    bot.handle = stuck
    server = start_in_thread(build_service(settings, bot=bot))
    try:
        statuses = [
            post_signed(server.url + "/slack/events", dm("受給者証なくした", user=f"U{6000 + n}")).status
            for n in range(4)
        ]
        line_status = post_line(server.url, "L6100")
        gate.set()
        assert statuses == [200, 200, 200, 503], "three wait; the fourth is refused, and Slack sends it again"
        assert line_status == 503
        deadline = time.monotonic() + 30
        while sorted(slack_answers(fake_slack)) != ["U6000", "U6001", "U6002"] or pending_turns(db_url):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # Once there is room again, Slack's retry is taken.
        assert post_signed(server.url + "/slack/events", dm("受給者証なくした", user="U6003")).status == 200
    finally:
        gate.set()
        server.stop()
    assert slack_answers(fake_slack) == Counter({"U6000": 1, "U6001": 1, "U6002": 1, "U6003": 1})
    assert pending_turns(db_url) == 0, "message text is deleted once its turn ran"
    assert kept_answers(db_url) == 0


# --- the repository: taking over the turns of a dead instance ----------------------------------------


def test_turns_of_a_dead_instance_are_taken_over_once_by_instances_racing_for_them(store) -> None:
    from datetime import timedelta

    from bot.storage.models import utcnow

    now = utcnow()
    with store.unit_of_work() as uow:
        dead = [
            uow.turns.add_pending_turn(
                kind="slack", user_key=f"slack:U{n}", payload="{}", owner="dead", now=now - timedelta(minutes=5)
            )
            for n in range(12)
        ]
        alive = uow.turns.add_pending_turn(kind="slack", user_key="slack:U99", payload="{}", owner="alive", now=now)
    taken: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def adopt(owner: str) -> None:
        barrier.wait()
        mine: list[int] = []
        while True:
            with store.unit_of_work() as uow:
                got = uow.turns.adopt_turns(owner=owner, stale_before=now - timedelta(minutes=1), now=utcnow(), limit=2)
            if not got:
                break
            mine += [t.id for t in got]
        taken[owner] = mine

    threads = [threading.Thread(target=adopt, args=(f"instance-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    everything = [turn_id for ids in taken.values() for turn_id in ids]
    assert sorted(everything) == dead, "each dead turn taken over exactly once"
    assert alive not in everything, "a live instance's turn is left alone"
    with store.unit_of_work() as uow:
        assert uow.turns.count_pending_turns() == 13
        assert all(uow.turns.finish_turn(turn_id) for turn_id in dead)
        assert uow.turns.count_pending_turns() == 1


def test_a_turn_answer_is_kept_until_it_is_forgotten(store) -> None:
    with store.unit_of_work() as uow:
        assert uow.turns.turn_replies(7) is None
        uow.turns.keep_turn_replies(7, '{"0": []}')
    with store.unit_of_work() as uow:
        assert uow.turns.turn_replies(7) == '{"0": []}'
        uow.turns.keep_turn_replies(7, '{"0": [], "1": []}')  # the next event of the same LINE turn
    with store.unit_of_work() as uow:
        assert uow.turns.turn_replies(7) == '{"0": [], "1": []}'
        assert uow.turns.forget_turn_answers([7, 8]) == 1
        assert uow.turns.turn_replies(7) is None


def test_a_turn_run_again_after_a_crash_posts_its_committed_answer_and_does_not_run_again(
    bot, fake_slack: FakeSlackAPI
) -> None:
    from datetime import timedelta

    from bot.channels.slack import SlackOutbox
    from bot.config import Settings
    from bot.runner import KeptWithTurn
    from bot.storage.models import utcnow
    from bot.storage.repositories import turn_queue
    from bot.turn_codec import encode_turns
    from bot.turns import PooledRunner
    from handlers.messages import IncomingMessage, SlackAddress

    msg = IncomingMessage("slack", "U1", text="自己負担いくらになるか知りたい", event_id="EvCRASH")
    url = bot.store.engine.url.render_as_string(hide_password=False)
    with turn_queue(bot.store, url).unit_of_work() as uow:  # recorded by a worker that then died ...
        turn_id = uow.turns.add_pending_turn(
            kind="slack",
            user_key="slack:U1",
            payload=encode_turns([(msg, SlackAddress("slack", "U1", "D1"))]),
            owner="dead",
            now=utcnow() - timedelta(minutes=5),
        )
    # ... after the turn committed with its answer, before the answer was posted.
    first = bot.answer(msg, KeptWithTurn(turn_id, "0", {}))
    assert first and bot.handle(msg) == [], "the event is claimed: run again, the turn would say nothing"

    outbox = SlackOutbox(Settings(slack_bot_token=TOKEN, slack_api_url=fake_slack.api_url))
    runner = PooledRunner(bot, {"slack": outbox}, store=bot.store, database_url=url, lease=0.3)
    try:
        [posted] = answers_to_d1(fake_slack)
    finally:
        runner.close()
    assert posted.args["text"].startswith(first[0].text[:20]), "the committed answer, taken over and posted"
    with bot.store.unit_of_work() as uow:
        assert uow.conversations.load_state("slack:U1").version == 1, "the dialog advanced once"
    assert runner.adopted == 1


def answers_to_d1(fake: FakeSlackAPI):
    return fake.wait_for("chat.postMessage", 1, timeout=30, where=lambda c: c.args.get("channel") == "D1")


def test_a_turn_the_database_cannot_record_gets_503_at_once_and_no_apology(
    tmp_path: Path, fake_slack: FakeSlackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """As serve's HTTP processes do it: a turn that is not recorded is not acked. The 503 makes Slack
    deliver the event again; nobody gets an apology for a turn nobody will run; the next events skip
    the database for a while (503 at once); once it records again, the redelivered event is acked."""
    from sqlalchemy.exc import OperationalError

    from bot.bootstrap import build_service
    from bot.config import Settings
    from bot.server import start_in_thread

    class RefusingWriter:
        """The database refuses the write of the record."""

        def enqueue(self, turns, *, now):
            raise OperationalError("INSERT INTO pending_turn", {}, ConnectionError("gone"))

    url = f"sqlite:///{tmp_path / 'nanbyo.db'}"
    settings = Settings(
        database_url=url, slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=fake_slack.api_url
    )
    service = build_service(settings, record_only=True)
    assert service.bot is None, "the HTTP side runs no turn"
    recorder = service.runner._recorder
    writer, recorder._writer = recorder._writer, RefusingWriter()
    server = start_in_thread(service)
    event = dm("受給者証なくした", user="U7000", event_id="Ev7000")
    try:
        for body in (event, dm("受給者証なくした", user="U7001")):
            started = time.monotonic()
            assert post_signed(server.url + "/slack/events", body).status == 503
            assert time.monotonic() - started < 1.0, "the 503 is not held up"
        assert caplog.text.count("turn not recorded") == 1, "the next turns skip the database for a while"
        assert pending_turns(url) == 0
        recorder._writer = writer
        service.runner._db_paused_until = 0.0  # the pause is over
        assert post_signed(server.url + "/slack/events", event).status == 200  # Slack's retry
        assert pending_turns(url) == 1, "recorded for the turn process"
    finally:
        server.stop()
    assert not fake_slack.calls_to("chat.postMessage"), "no apology for a turn nobody runs"
