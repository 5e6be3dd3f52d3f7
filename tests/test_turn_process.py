"""``nanbyo-bot serve``: uvicorn acks, the turn process answers; every acked turn is answered,
on SIGTERM, when the turn process dies, and while it is down.

Through the installed command, with requests signed as Slack and LINE sign them and the fake
APIs on 127.0.0.1: every turn acked before a SIGTERM is still answered before the exit; the
turn process killed mid-work is restarted by ``serve`` and its turns are taken over, none run
twice; while it is down the server still acks, and those turns are answered once when it is
back; with ``--workers 2`` an HTTP worker killed is restarted by uvicorn's supervisor; Socket
Mode over a real websocket; and a turn that kills every turn process that takes it over is
dropped after ``bot.runner.MAX_DELIVERIES`` attempts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.slack_api import FakeSlackAPI
from tests.test_slack_e2e import SECRET, TOKEN, _free_port, _wait_healthy, answers_to, dm, get, post_signed, texts


@dataclass
class Serve:
    proc: subprocess.Popen
    url: str
    log: Path

    @property
    def events(self) -> str:
        return self.url + "/slack/events"

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> list[int]:
        """The HTTP worker processes uvicorn's supervisor runs (children of serve)."""
        return self._children(b"spawn_main")  # not the resource tracker, not the turn process

    def turn_processes(self) -> list[int]:
        """The turn process serve runs (a list: empty while it is down)."""
        return self._children(b"bot.turn_process")

    def _children(self, marker: bytes) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and entry.name != str(self.proc.pid):
                try:
                    if (
                        _parent_of(int(entry.name)) == self.proc.pid
                        and _running(int(entry.name))
                        and marker in (entry / "cmdline").read_bytes()
                    ):
                        found.append(int(entry.name))
                except (FileNotFoundError, ProcessLookupError, ValueError):
                    continue
        return sorted(found)

    def wait_turn_process_ready(self, times: int = 1) -> int:
        """Wait until the turn process has said it is ready ``times`` times (started or restarted)."""
        deadline = time.monotonic() + 60
        while self.stderr().count("turn process ready") < times or not self.turn_processes():
            assert time.monotonic() < deadline, self.stderr()[-3000:]
            time.sleep(0.05)
        return self.turn_processes()[0]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def start(tmp_path: Path, fake_slack: FakeSlackAPI, *args: str) -> Serve:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "LOG_LEVEL": "INFO",
    }
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"):
        env.pop(name, None)
    log = tmp_path / "serve.stderr"
    exe = Path(sys.executable).with_name("nanbyo-bot")
    with log.open("w") as err:  # a file: the logs of both processes must never block on a full pipe
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler", *args],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    running = Serve(proc, f"http://127.0.0.1:{port}", log)
    _wait_healthy(running.url, proc)
    return running


@pytest.fixture()
def serve(tmp_path: Path, fake_slack: FakeSlackAPI) -> Iterator[Serve]:
    running = start(tmp_path, fake_slack)
    proc = running.proc
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _running(pid: int) -> bool:
    """Not yet fully dead. A killed child stays a zombie until its parent reaps it, and its main
    thread turns zombie before its other threads have exited and its sockets are closed: what
    counts is that it holds no file descriptor any more."""
    try:
        return bool(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, PermissionError):
        return False


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_every_acked_turn_is_answered_on_sigterm(serve: Serve, fake_slack: FakeSlackAPI) -> None:
    serve.wait_turn_process_ready()
    fake_slack.delay = 1.0  # each answer takes a while: most are still to come when the signal arrives
    users = [f"U{700 + i}" for i in range(20)]
    for user in users:
        assert post_signed(serve.events, dm("受給者証なくした", user=user)).status == 200
    assert len(fake_slack.calls_to("chat.postMessage")) < len(users)

    assert serve.stop() == 0, serve.stderr()

    answered = [c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")]
    assert sorted(answered) == sorted("D" + u.removeprefix("U") for u in users), "each acked turn answered once"
    assert "再交付" in texts(fake_slack.calls_to("chat.postMessage"))
    assert "turn process stopped" in serve.stderr() and not serve.turn_processes()


def test_a_turn_process_that_dies_is_restarted_and_its_turns_are_answered_without_running_twice(
    tmp_path: Path, fake_slack: FakeSlackAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURN_LEASE_SECONDS", "2")
    serve = start(tmp_path, fake_slack)
    try:
        first = serve.wait_turn_process_ready()
        fake_slack.delay = 3.0  # the Web API is slow: the turns are still running when the process dies
        users = [f"U{810 + i}" for i in range(8)]
        for user in users:
            assert post_signed(serve.events, dm("受給者証なくした", user=user)).status == 200
        time.sleep(1.0)  # the turns are running (their answers wait for the slow Web API)
        os.kill(first, signal.SIGKILL)
        second = serve.wait_turn_process_ready(times=2)
        assert second != first, "serve started a new turn process"
        fake_slack.delay = 0.0
        deadline = time.monotonic() + 60
        while {c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")} != {"D" + u[1:] for u in users}:
            assert time.monotonic() < deadline, "acked turns lost with the turn process\n" + serve.stderr()[-3000:]
            time.sleep(0.2)
        assert get(serve.url + "/healthz").status == 200
    finally:
        code = serve.stop()
    assert code == 0, serve.stderr()
    log = serve.stderr()
    assert "turn process died" in log and "turn taken over" in log, "the dead process's turns were taken over"
    posts = fake_slack.calls_to("chat.postMessage")
    for user in users:
        mine = [c.args["text"] for c in posts if c.args["channel"] == "D" + user[1:]]
        # An answer the dead process was posting may be posted again: the same answer, kept with
        # the turn and replayed, never a second run of the turn.
        assert len(mine) in (1, 2) and len(set(mine)) == 1, mine
    repeats = sum(1 for user in users if sum(c.args["channel"] == "D" + user[1:] for c in posts) == 2)
    # Every second post is a replay; a replay can also follow a post the dead process had begun but
    # that never reached the fake (killed mid-request on a loaded machine), so there may be more
    # replays than second posts, never more than turns.
    assert repeats <= log.count("turn answer replayed") <= len(users)
    assert not serve.turn_processes(), "the turn process ends with serve"


def test_the_server_acks_while_the_turn_process_is_down_and_answers_once_it_is_back(
    tmp_path: Path, fake_slack: FakeSlackAPI
) -> None:
    serve = start(tmp_path, fake_slack)
    try:
        os.kill(serve.wait_turn_process_ready(), signal.SIGKILL)
        users = [f"U{830 + i}" for i in range(6)]
        for user in users:  # serve restarts it at once, and it takes seconds to load: these arrive meanwhile
            assert post_signed(serve.events, dm("受給者証なくした", user=user)).status == 200
        assert serve.stderr().count("turn process ready") == 1, "acked while no turn process was running"
        serve.wait_turn_process_ready(times=2)
        deadline = time.monotonic() + 60
        while len(fake_slack.calls_to("chat.postMessage")) < len(users):
            assert time.monotonic() < deadline, serve.stderr()[-3000:]
            time.sleep(0.1)
    finally:
        code = serve.stop()
    assert code == 0, serve.stderr()
    answered = [c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")]
    assert sorted(answered) == sorted("D" + u[1:] for u in users), "each answered once"
    assert "再交付" in texts(fake_slack.calls_to("chat.postMessage"))


def test_an_http_worker_that_dies_is_restarted_by_uvicorn_and_the_acks_go_on(
    tmp_path: Path, fake_slack: FakeSlackAPI
) -> None:
    serve = start(tmp_path, fake_slack, "--workers", "2")
    try:
        deadline = time.monotonic() + 60
        while len(serve.workers()) < 2:
            assert time.monotonic() < deadline, serve.stderr()
            time.sleep(0.1)
        first = serve.workers()
        turns = serve.turn_processes()
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        while set(serve.workers()) & set(first) or len(serve.workers()) < 2:
            assert time.monotonic() < deadline + 30, "the dead workers were not replaced\n" + serve.stderr()
            time.sleep(0.1)
        users = [f"U{850 + i}" for i in range(4)]
        for user in users:
            assert post_signed(serve.events, dm("受給者証なくした", user=user)).status == 200
        deadline = time.monotonic() + 60
        while len(fake_slack.calls_to("chat.postMessage")) < len(users):
            assert time.monotonic() < deadline, serve.stderr()[-3000:]
            time.sleep(0.1)
        assert serve.turn_processes() == turns, "the turn process is not the HTTP workers' business"
    finally:
        code = serve.stop()
    assert code == 0, serve.stderr()
    assert not serve.workers() and not serve.turn_processes(), "the workers and the turn process end with serve"


# --- Socket Mode: the same server over a WebSocket instead of /slack/events -------------------------


def test_socket_mode_over_a_real_websocket_answers_once_and_closes_on_sigterm(
    tmp_path: Path, fake_slack: FakeSlackAPI
) -> None:
    from tests.fakes.slack_socket import FakeSocketMode

    socket_mode = FakeSocketMode()
    fake_slack.socket_mode_url = socket_mode.url
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}",
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_APP_TOKEN": "xapp-test-token",
        "SLACK_API_URL": fake_slack.api_url,
        "LOG_LEVEL": "INFO",
    }
    for name in ("SLACK_SIGNING_SECRET", "LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"):
        env.pop(name, None)
    log = tmp_path / "serve.stderr"
    exe = Path(sys.executable).with_name("nanbyo-bot")
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(exe), "serve", "--socket-mode", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    serve = Serve(proc, f"http://127.0.0.1:{port}", log)
    try:
        _wait_healthy(serve.url, proc)
        socket_mode.wait_connected()
        deadline = time.monotonic() + 30
        while "slack connected over socket mode" not in serve.stderr():
            assert time.monotonic() < deadline, serve.stderr()
            time.sleep(0.05)
        [opened] = fake_slack.calls_to("apps.connections.open")
        assert opened.headers["authorization"] == "Bearer xapp-test-token", "the app-level token opens the socket"
        assert "slack over socket mode" in serve.stderr()

        body = json.loads(dm("受給者証なくした", user="U91", event_id="EvSOCKET1"))
        first = socket_mode.send_event(body)
        assert socket_mode.wait_ack(first)["envelope_id"] == first
        [answer] = answers_to(fake_slack, "D91")
        assert "再交付" in texts([answer])

        retry = socket_mode.send_event(body, retry_attempt=1)  # Slack sends an unacked event again
        socket_mode.wait_ack(retry)
        assert get(serve.url + "/slack/events").status == 404, "no HTTP events route in Socket Mode"
    finally:
        code = serve.stop()
        socket_mode.close()
    assert code == 0, serve.stderr()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1, "the redelivered event is answered once"
    assert "受給者証なくした" not in serve.stderr()


# --- LINE: the webhook answered at once, the events handled after it, all of them before the exit ------


def test_line_webhook_events_are_answered_after_the_200_and_drained_on_sigterm(tmp_path: Path) -> None:
    from tests.fakes.line_api import FakeLineApi
    from tests.test_line_e2e import REPLY, sign, text_event, texts, webhook
    from tests.test_line_e2e import SECRET as LINE_SECRET

    with FakeLineApi.start() as line_api:
        port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'line.db'}",
            "LINE_API_URL": line_api.url,
            "LINE_CHANNEL_SECRET": LINE_SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": line_api.access_token,
            "LOG_LEVEL": "INFO",
        }
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
            env.pop(name, None)
        log = tmp_path / "serve.stderr"
        exe = Path(sys.executable).with_name("nanbyo-bot")
        with log.open("w") as err:
            proc = subprocess.Popen(
                [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        serve = Serve(proc, f"http://127.0.0.1:{port}", log)
        try:
            _wait_healthy(serve.url, proc)
            deadline = time.monotonic() + 30
            while "listening on" not in serve.stderr():
                assert time.monotonic() < deadline, serve.stderr()
                time.sleep(0.05)
            users = [f"U{800 + i}" for i in range(10)]
            for user in users:
                body = webhook(text_event("受給者証なくした", user=user))
                request = urllib.request.Request(
                    serve.url + "/line/callback",
                    data=body,
                    method="POST",
                    headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
        finally:
            code = serve.stop()
        assert code == 0, serve.stderr()
        replies = line_api.calls(REPLY)
        assert len(replies) == len(users), "every accepted event was answered before the exit"
        assert all("再交付" in "\n".join(texts(r)) for r in replies)
        assert "line turn event=" in serve.stderr()


# --- a turn that kills every worker that takes it over ----------------------------------------------


def test_a_turn_taken_over_too_often_is_dropped_and_the_next_turns_are_answered(
    tmp_path: Path, fake_slack: FakeSlackAPI
) -> None:
    from datetime import timedelta

    from sqlalchemy import text as sql

    from bot.bootstrap import build_service
    from bot.config import Settings
    from bot.runner import MAX_DELIVERIES
    from bot.storage.models import utcnow
    from bot.turn_codec import encode_turns
    from handlers.messages import IncomingMessage, SlackAddress

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'poison.db'}",
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake_slack.api_url,
        turn_lease_seconds=0.3,
    )
    poison = (
        IncomingMessage("slack", "U94", text="受給者証なくした", event_id="EvPOISON"),
        SlackAddress("slack", "U94", "D94"),
    )
    service = build_service(settings)
    runner = service.runner
    try:
        # A turn whose earlier owners all died with it: taken over MAX_DELIVERIES times already.
        with runner.queue.unit_of_work() as uow:
            turn_id = uow.turns.add_pending_turn(
                kind="slack",
                user_key="slack:U94",
                payload=encode_turns([poison]),
                owner="dead",
                now=utcnow() - timedelta(minutes=5),
            )
        with runner.queue.engine.begin() as conn:
            conn.execute(
                sql("UPDATE pending_turn SET attempts = :n WHERE id = :id"), {"n": MAX_DELIVERIES, "id": turn_id}
            )
        deadline = time.monotonic() + 30
        while True:
            with runner.queue.unit_of_work() as uow:
                if uow.turns.count_pending_turns() == 0:
                    break
            assert time.monotonic() < deadline, "the poisonous turn was never dropped"
            time.sleep(0.1)

        runner.submit(
            [
                (
                    IncomingMessage("slack", "U95", text="受給者証なくした", event_id="EvAFTER"),
                    SlackAddress("slack", "U95", "D95"),
                )
            ]
        )
        [answer] = answers_to(fake_slack, "D95")
        assert "再交付" in texts([answer])
    finally:
        service.close()
    assert runner.pending == 0
    assert all(c.args["channel"] != "D94" for c in fake_slack.calls_to("chat.postMessage")), "dropped, never run"
