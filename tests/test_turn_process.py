"""``nanbyo-bot serve`` acks Slack in its own process and runs the turns in a child process.

Through the installed command, with requests signed as Slack signs them and the fake Web API
on 127.0.0.1: the child really is another process, every turn acked before a SIGTERM is
still answered, and a child that dies is replaced at once without the server going down.
"""

from __future__ import annotations

import json
import os
import re
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

    def child_pid(self) -> int:
        found = re.search(r"turns in process (\d+)", self.stderr())
        assert found, self.stderr()
        return int(found.group(1))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture()
def serve(tmp_path: Path, fake_slack: FakeSlackAPI) -> Iterator[Serve]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "SLACK_BOT_TOKEN": TOKEN,
           "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake_slack.api_url, "LOG_LEVEL": "INFO"}
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"):
        env.pop(name, None)
    log = tmp_path / "serve.stderr"
    exe = Path(sys.executable).with_name("nanbyo-bot")
    with log.open("w") as err:  # a file: the logs of both processes must never block on a full pipe
        proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    running = Serve(proc, f"http://127.0.0.1:{port}", log)
    try:
        _wait_healthy(running.url, proc)
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


def test_turns_run_in_a_child_process_and_every_acked_turn_is_answered_on_sigterm(
        serve: Serve, fake_slack: FakeSlackAPI) -> None:
    child = serve.child_pid()
    assert child != serve.proc.pid and _parent_of(child) == serve.proc.pid
    users = [f"U{700 + i}" for i in range(20)]
    for user in users:  # acked at once; most answers are still to come when the signal arrives
        assert post_signed(serve.events, dm("受給者証なくした", user=user)).status == 200

    assert serve.stop() == 0, serve.stderr()

    answered = {c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")}
    assert answered == {"D" + u.removeprefix("U") for u in users}, "every acked turn was answered before the exit"
    assert "再交付" in texts(fake_slack.calls_to("chat.postMessage"))
    assert not _alive(child), "the child ends with the server"


def test_a_child_that_dies_is_replaced_and_the_next_message_is_answered(
        serve: Serve, fake_slack: FakeSlackAPI) -> None:
    assert post_signed(serve.events, dm("メニュー", user="U81")).status == 200
    answers_to(fake_slack, "D81")
    first = serve.child_pid()

    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _running(first):
        assert time.monotonic() < deadline, "the killed child did not die"
        time.sleep(0.05)

    assert post_signed(serve.events, dm("受給者証なくした", user="U82")).status == 200
    try:
        [answer] = answers_to(fake_slack, "D82")  # after the new child has started
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- serve's log:\n{serve.stderr()}") from None
    assert "再交付" in texts([answer])
    assert get(serve.url + "/healthz").status == 200
    assert "turn process gone" in serve.stderr()
    assert serve.stop() == 0, serve.stderr()
    # The child was killed right after posting D81's answer, maybe before deleting its turn: the
    # new child then posts the answer the turn committed (the turn itself does not run again).
    posts = fake_slack.calls_to("chat.postMessage", ok_only=False)
    to_d81 = [c for c in posts if c.args["channel"] == "D81"]
    assert len([c for c in posts if c.args["channel"] == "D82"]) == 1
    assert 1 <= len(to_d81) <= 2 and len({json.dumps(c.args["blocks"]) for c in to_d81}) == 1


# --- Socket Mode: the same server over a WebSocket instead of /slack/events -------------------------

def test_socket_mode_over_a_real_websocket_answers_once_and_closes_on_sigterm(
        tmp_path: Path, fake_slack: FakeSlackAPI) -> None:
    from tests.fakes.slack_socket import FakeSocketMode

    socket_mode = FakeSocketMode()
    fake_slack.socket_mode_url = socket_mode.url
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}", "SLACK_BOT_TOKEN": TOKEN,
           "SLACK_APP_TOKEN": "xapp-test-token", "SLACK_API_URL": fake_slack.api_url, "LOG_LEVEL": "INFO"}
    for name in ("SLACK_SIGNING_SECRET", "LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"):
        env.pop(name, None)
    log = tmp_path / "serve.stderr"
    exe = Path(sys.executable).with_name("nanbyo-bot")
    with log.open("w") as err:
        proc = subprocess.Popen([str(exe), "serve", "--socket-mode", "--host", "127.0.0.1", "--port", str(port),
                                 "--no-scheduler"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    serve = Serve(proc, f"http://127.0.0.1:{port}", log)
    try:
        _wait_healthy(serve.url, proc)
        socket_mode.wait_connected()
        deadline = time.monotonic() + 30
        while "listening on" not in serve.stderr():  # printed once the socket is connected
            assert time.monotonic() < deadline, serve.stderr()
            time.sleep(0.05)
        [opened] = fake_slack.calls_to("apps.connections.open")
        assert opened.headers["authorization"] == "Bearer xapp-test-token", "the app-level token opens the socket"
        assert "slack over socket mode" in serve.stderr() and "turns in process" in serve.stderr()

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


# --- LINE: the webhook answered by the server process, the events handled in the child ----------------

def test_line_webhook_events_are_handled_in_the_child_and_drained_on_sigterm(tmp_path: Path) -> None:
    from tests.fakes.line_api import FakeLineApi
    from tests.test_line_e2e import REPLY, SECRET as LINE_SECRET, sign, text_event, texts, webhook

    with FakeLineApi.start() as line_api:
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'line.db'}", "LINE_API_URL": line_api.url,
               "LINE_CHANNEL_SECRET": LINE_SECRET, "LINE_CHANNEL_ACCESS_TOKEN": line_api.access_token,
               "LOG_LEVEL": "INFO"}
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
            env.pop(name, None)
        log = tmp_path / "serve.stderr"
        exe = Path(sys.executable).with_name("nanbyo-bot")
        with log.open("w") as err:
            proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                                    env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
        serve = Serve(proc, f"http://127.0.0.1:{port}", log)
        try:
            _wait_healthy(serve.url, proc)
            deadline = time.monotonic() + 30
            while "listening on" not in serve.stderr():
                assert time.monotonic() < deadline, serve.stderr()
                time.sleep(0.05)
            child = serve.child_pid()
            users = [f"U{800 + i}" for i in range(10)]
            for user in users:
                body = webhook(text_event("受給者証なくした", user=user))
                request = urllib.request.Request(serve.url + "/line/callback", data=body, method="POST",
                                                 headers={"Content-Type": "application/json",
                                                          "X-Line-Signature": sign(body)})
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
        finally:
            code = serve.stop()
        assert code == 0, serve.stderr()
        replies = line_api.calls(REPLY)
        assert len(replies) == len(users), "every accepted event was answered before the exit"
        assert all("再交付" in "\n".join(texts(r)) for r in replies)
        assert not _alive(child)
        assert "line event kind=message" in serve.stderr()


# --- the turn process on its own: a turn that kills every child it reaches ----------------------------

class _KillsTheChild:
    """Unpickling this in the child ends the child at once, as a native crash would."""

    def __reduce__(self):
        return (os._exit, (3,))


def test_a_turn_that_kills_its_children_is_dropped_and_the_next_turns_are_answered(
        tmp_path: Path, fake_slack: FakeSlackAPI) -> None:
    from bot.channels.slack import Destination
    from bot.config import Settings
    from handlers.messages import IncomingMessage
    from bot.turn_worker import MAX_DELIVERIES, TurnProcess

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'poison.db'}", slack_bot_token=TOKEN,
                        slack_signing_secret=SECRET, slack_api_url=fake_slack.api_url)
    turns = TurnProcess(settings)
    try:
        first_child = turns.pid
        started = time.monotonic()
        turns.submit("slack", _KillsTheChild(), Destination("D0"))
        assert time.monotonic() - started < 1, "submit only queues, it never waits for a child"
        deadline = time.monotonic() + 60
        # Handed to MAX_DELIVERIES children, all killed by it; the next child starts without it.
        while not (turns.dropped == 1 and turns.restarts == MAX_DELIVERIES):
            assert time.monotonic() < deadline, (turns.dropped, turns.restarts)
            time.sleep(0.1)
        assert turns.pid != first_child

        turns.submit("slack", IncomingMessage("slack", "U95", text="受給者証なくした", event_id="EvAFTER"),
                     Destination("D95"))
        [answer] = answers_to(fake_slack, "D95")
        assert "再交付" in texts([answer])
    finally:
        turns.close()
    assert turns.pending == 0
