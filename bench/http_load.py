"""Benchmark: signed Slack DMs through ``nanbyo-bot serve``, against a bare bolt app that only acks.

What it measures, in one run and on 127.0.0.1 only:

* **bare** — a slack-bolt ``App`` with one ``message`` listener that only calls ``ack()``,
  on the same server as ours: uvicorn with ``bot.server.create_app``'s Starlette app and route
  code and ``bot.server.uvicorn_config``'s settings, checking the same signatures;
* **ours** — the installed ``nanbyo-bot serve`` (a subprocess, SQLite file in a temporary
  folder unless ``--database-url``, scheduler on, ``LOG_LEVEL=INFO`` as in production).

Both get the same signed ``event_callback`` DM events (unique event ids, one new user per
event, texts from ``../shared/eval/questions.jsonl``) from a pool of ``--clients`` threads,
each waiting for its answer before sending the next, each request on a new TCP connection
(as Slack's deliveries arrive). Printed per server: requests per second and latency (p50,
p99, max) of the HTTP acknowledgement; for ours also the **end-to-end drain** — from the first
request until the last ``chat.postMessage`` reached the fake Slack Web API, because our server
records the turn, acks, and its turn process does the work afterwards. Then the
ratios bare/ours (targets: throughput within 1.5x, p99 within 2x).

The fake Web API is ``tests.fakes.slack_api.FakeSlackAPI`` in its own process (so that it
does not share a GIL with the clients), counting calls instead of keeping them. How many
messages each event must produce is computed beforehand with an in-process ``Bot`` and
``render``: a fresh user's first message always gets the same answer.

``--workers N`` runs ``serve --workers N`` (uvicorn worker processes). Experiments change one
thing in the servers for a run, without editing them: ``--backlog`` (the listen queue of both;
each overflow costs a client a 1 s SYN retry or a reset connection — the bench counts them),
and, in ``serve`` only, ``--runner-threads``, ``--switch-interval`` and ``--ack-only`` (no turn
is taken: the ack path alone). ``--profile cpu|wall`` prints where ``serve``'s process spends
its time, per kind of thread (the event loop and its request threads; the turn process is not profiled).

What it is not: a test (nothing is asserted), nor a measure of Slack's own latency.

    .venv/bin/python bench/http_load.py                 # 2,000 events x 3 rounds, 16 clients
    .venv/bin/python bench/http_load.py --quick         # 200 events, 1 round, 8 clients (CI)
    .venv/bin/python bench/http_load.py --workers 2     # two worker processes
    .venv/bin/python bench/http_load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/http_load.py``, Python puts bench/ first on sys.path, where this very file
# would shadow the standard library's ``http`` package (http.client, http.server). Drop it
# before anything imports ``http``.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"
TEAM_ID = "T1"
BOT_USER_ID = "UBOT"
QUESTIONS = REPO.parent / "shared" / "eval" / "questions.jsonl"
FALLBACK_TEXTS = ("メニュー", "受給者証をなくしました", "自己負担の上限額はいくら？", "{municipality}の窓口を教えて")
START_TIMEOUT = 60.0  # seconds for a server to come up
DRAIN_TIMEOUT = 300.0  # seconds for every answer to reach the fake API
REQUEST_TIMEOUT = 30.0


# --- Slack's signing and payloads ------------------------------------------------------------------


def sign(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    """``X-Slack-Signature`` of ``body``: HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def dm_body(user: str, text: str, event_id: str, n: int) -> bytes:
    """An ``event_callback`` carrying a ``message.im`` from ``user`` in the DM ``D<user>``."""
    channel = "D" + user.removeprefix("U")
    ts = f"1700001000.{n % 1_000_000:06d}"
    return json.dumps(
        {
            "token": "legacy-unused",
            "team_id": TEAM_ID,
            "api_app_id": "A1",
            "type": "event_callback",
            "event": {
                "type": "message",
                "channel": channel,
                "channel_type": "im",
                "user": user,
                "text": text,
                "ts": ts,
                "event_ts": ts,
            },
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True, "is_enterprise_install": False}
            ],
        },
        ensure_ascii=False,
    ).encode()


@dataclass(frozen=True)
class Signed:
    """A request ready to send: the body and its headers (signed when it was built)."""

    body: bytes
    headers: dict[str, str]


def signed(body: bytes, timestamp: int | None = None) -> Signed:
    ts = int(time.time()) if timestamp is None else timestamp
    return Signed(
        body,
        {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(body, ts)},
    )


def post(port: int, request: Signed, path: str = "/slack/events") -> tuple[int | str, float]:
    """POST on a new connection; returns (status, seconds), or (the error's name, seconds)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request("POST", path, body=request.body, headers=request.headers)
        resp = conn.getresponse()
        resp.read()
        status: int | str = resp.status
    except (OSError, http.client.HTTPException) as exc:
        status = type(exc).__name__
    finally:
        conn.close()
    return status, time.perf_counter() - started


def get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return 0
    finally:
        conn.close()


def listen_overflows() -> int | None:
    """Linux's count of connections dropped because a listen queue was full (``TcpExt ListenOverflows``).

    A dropped SYN is retried by the client's kernel after one second, so each overflow shows
    up as a request of about 1 s. None where /proc/net/netstat is not available.
    """
    try:
        rows = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(rows[::2], rows[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table["ListenOverflows"]) if "ListenOverflows" in table else None
    return None


def load_texts(path: Path = QUESTIONS) -> list[str]:
    """The evaluation questions (a realistic mix of lengths), or a few fixed texts without them."""
    if not path.exists():
        from knowledge import load_knowledge

        municipality = load_knowledge().prefecture.municipalities[-1].name
        return [t.format(municipality=municipality) for t in FALLBACK_TEXTS]
    return [json.loads(line)["q"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def messages_per_text(texts: Sequence[str]) -> dict[str, int]:
    """How many ``chat.postMessage`` calls a new user's first message produces, text by text.

    Computed with an in-process ``Bot`` on a throw-away SQLite file and the Slack ``render``:
    a fresh user's first message has no state, so the server answers it the same way.
    """
    from bot.bootstrap import build_bot
    from bot.channels.slack import render
    from bot.config import Settings
    from handlers.messages import IncomingMessage

    with tempfile.TemporaryDirectory() as tmp:
        bot = build_bot(Settings(database_url=f"sqlite:///{tmp}/reference.db"))
        counts = {}
        for i, text in enumerate(dict.fromkeys(texts)):
            counts[text] = len(render(bot.handle(IncomingMessage(channel="slack", user=f"UREF{i}", text=text))))
        bot.store.engine.dispose()
    return counts


# --- the fake Slack Web API, in its own process ------------------------------------------------------


def run_fake_slack() -> int:
    """``--role fake-slack``: serve the project's fake Web API, counting calls; print the port."""
    from tests.fakes.slack_api import FakeSlackAPI

    class CountingSlackAPI(FakeSlackAPI):
        """The fake, folding its recorded calls into counters so that a long run stays small.

        ``_answer`` runs with the fake's lock held, before the current call is recorded, so
        every call before a ``bench.stats`` call is counted in its answer.
        """

        def __init__(self) -> None:
            self.posts = 0
            self.channels: Counter[str] = Counter()
            self.last_post_at: float | None = None
            self.methods: Counter[str] = Counter()
            super().__init__()

        def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
            for call in self.calls:
                self.methods[call.method] += 1
                if call.method == "chat.postMessage" and call.status == 200:
                    self.posts += 1
                    self.channels[str(call.args.get("channel"))] += 1
                    self.last_post_at = call.at if self.last_post_at is None else max(self.last_post_at, call.at)
            self.calls.clear()
            if method == "bench.stats":
                return {
                    "ok": True,
                    "posts": self.posts,
                    "channels": len(self.channels),
                    "last_post_at": self.last_post_at,
                    "methods": dict(self.methods),
                }
            return super()._answer(method, args)

    fake = CountingSlackAPI()
    print(fake.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    fake.close()
    return 0


@dataclass(frozen=True)
class FakeStats:
    posts: int
    channels: int
    last_post_at: float | None  # time.monotonic() of the fake process: CLOCK_MONOTONIC, shared on Linux
    methods: dict[str, int]


class FakeSlack:
    """Handle on the fake Web API process: ``api_url`` for the servers, ``stats()`` for the counts."""

    def __init__(self, port: int, proc: subprocess.Popen[str]) -> None:
        self.port = port
        self.proc = proc
        self.api_url = f"http://127.0.0.1:{port}/api/"

    def stats(self) -> FakeStats:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/api/bench.stats", body=b"{}", headers={"Content-Type": "application/json"})
            data = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return FakeStats(data["posts"], data["channels"], data["last_post_at"], data["methods"])

    def wait_posts(self, total: int, timeout: float = DRAIN_TIMEOUT) -> FakeStats:
        """Poll until ``total`` messages arrived (or ``timeout``); returns the last stats."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats.posts >= total or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)


@contextmanager
def fake_slack() -> Iterator[FakeSlack]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--role", "fake-slack"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip() or 0)
        if not port:
            raise RuntimeError("the fake Slack API did not start")
        yield FakeSlack(port, proc)
    finally:
        stop(proc)


# --- the two servers ---------------------------------------------------------------------------------


def run_bare_server(api_url: str, log_level: str, backlog: int | None) -> int:
    """``--role bare``: a bolt App that only acks, on the same server as ``serve``: uvicorn with
    ``bot.server.create_app``'s Starlette app and route code, the same settings, the same logging."""
    import socket
    from types import SimpleNamespace

    import uvicorn
    from slack_bolt import App, BoltRequest
    from slack_sdk import WebClient

    import bot.server
    from bot.bootstrap import configure_logging

    configure_logging(log_level)  # the same logging as `serve`, so the access log costs the same
    app = App(
        signing_secret=SECRET,
        client=WebClient(token=TOKEN, base_url=api_url),
        token_verification_enabled=False,
        request_verification_enabled=True,
        logger=logging.getLogger("bench.bare"),
    )

    @app.event("message")
    def _ack_only(ack: Any) -> None:
        ack()

    class Intake:  # what the /slack/events route calls: SlackIntake.dispatch's signature
        def dispatch(self, body: str, headers: dict[str, str], query: str = "") -> Any:
            return app.dispatch(BoltRequest(body=body, query=query, headers=dict(headers)))

    service = SimpleNamespace(store=SimpleNamespace(engine=None), slack=Intake(), line=None, close=lambda: None)
    if backlog:
        bot.server.BACKLOG = backlog
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    server = uvicorn.Server(
        bot.server.uvicorn_config(
            bot.server.create_app(service),
            "127.0.0.1",  # type: ignore[arg-type]
            sock.getsockname()[1],
        )
    )
    server.run(sockets=[sock])  # until SIGTERM
    return 0


@dataclass(frozen=True)
class Experiment:
    """One thing changed in ``serve`` for a run, to try a fix without editing the server."""

    backlog: int | None = None  # the listen queue (bot.server.BACKLOG)
    runner_threads: int | None = None  # turns the turn process runs at once (TURN_THREADS, default 8)
    switch_interval: float | None = None  # sys.setswitchinterval, seconds (Python's default 0.005)
    ack_only: bool = False  # the requests are verified and acked, but no turn is taken: the ack path alone

    def args(self) -> list[str]:
        out = ["--ack-only"] if self.ack_only else []
        for name, value in (
            ("--backlog", self.backlog),
            ("--runner-threads", self.runner_threads),
            ("--switch-interval", self.switch_interval),
        ):
            if value:
                out += [name, str(value)]
        return out

    def apply(self) -> None:
        import bot.channels.slack
        import bot.server

        if self.backlog:
            bot.server.BACKLOG = self.backlog
        if self.runner_threads:
            os.environ["TURN_THREADS"] = str(self.runner_threads)  # the turn process inherits it
        if self.switch_interval:
            sys.setswitchinterval(self.switch_interval)
        if self.ack_only:
            bot.channels.slack.SlackIntake._on_payload = lambda intake, ack, body, context: ack()


def run_serve(
    serve_args: Sequence[str], experiment: Experiment, profile_out: str | None, profile_clock: str = "cpu"
) -> int:
    """``--role serve``: ``nanbyo-bot serve`` through ``bot.cli.main``, changed by ``experiment``.

    ``profile_out`` runs a ``cProfile`` profiler in every thread (timed
    with that thread's CPU time, or with the wall clock for ``profile_clock="wall"``, which also
    counts waiting: for locks, the database, the network) and,
    when the server has stopped, writes one merged profile per kind of thread:
    ``<profile_out>.request`` (the event loop and its thread pool: read, verify, record, ack),
    ``<profile_out>.turn`` (the turn runner's pool: the turn and the Web API posts) and
    ``<profile_out>.other``.
    """
    import cProfile
    import pstats

    import bot.cli

    experiment.apply()
    if not profile_out:
        return bot.cli.main(list(serve_args))
    profiles: list[tuple[str, cProfile.Profile]] = []
    lock = threading.Lock()

    def start_profiler(frame: Any, event: str, arg: Any) -> None:
        # threading calls this once in each new thread; the profiler then replaces it.
        profiler = cProfile.Profile(time.thread_time) if profile_clock == "cpu" else cProfile.Profile()
        with lock:
            profiles.append((threading.current_thread().name, profiler))
        profiler.enable()

    threading.setprofile(start_profiler)
    try:
        return bot.cli.main(list(serve_args))
    finally:
        threading.setprofile(None)
        groups: dict[str, list[cProfile.Profile]] = {}
        for name, profiler in profiles:  # every thread has ended: serve joins its threads on stop
            kind = (
                "turn"
                if name.startswith("turn_")
                else ("request" if name == "MainThread" or name.startswith("AnyIO") else "other")
            )
            groups.setdefault(kind, []).append(profiler)
        for kind, members in groups.items():
            pstats.Stats(*members).dump_stats(f"{profile_out}.{kind}")


def summarize_profile(path: Path, top: int = 12) -> str:
    """The functions with the most own time, and our own code by cumulative time, of one profile."""
    import pstats

    stats = pstats.Stats(str(path))
    rows = stats.stats  # {(file, line, func): (calls, primitive calls, tottime, cumtime, callers)}
    total = sum(v[2] for v in rows.values()) or 1.0

    def where(key: tuple[str, int, str]) -> str:
        file, line_no, func = key
        short = file.split("site-packages/")[-1].split("/lib/python3")[-1].replace(str(REPO) + "/", "")
        return f"{short}:{line_no}({func})"

    lines = [f"{path.name}: {total:.2f} s profiled in these threads", "  own time (tottime), top functions:"]
    for key, v in sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:top]:
        lines.append(f"    {v[2]:7.2f} s {100 * v[2] / total:5.1f}%  {v[0]:>8} calls  {where(key)}")
    ours = [(k, v) for k, v in rows.items() if k[0].startswith(str(REPO)) and "/bench/" not in k[0]]
    if ours:
        lines.append("  our code by cumulative time:")
        for key, v in sorted(ours, key=lambda kv: kv[1][3], reverse=True)[:top]:
            lines.append(f"    {v[3]:7.2f} s {100 * v[3] / total:5.1f}%  {v[0]:>8} calls  {where(key)}")
    return "\n".join(lines)


def tracebacks(log: str, max_lines: int = 40) -> list[str]:
    """The tracebacks in a log: from the log line before "Traceback" to the exception's own line."""
    lines = log.splitlines()
    found = []
    for i, text in enumerate(lines):
        if text.startswith("Traceback"):
            end = i + 1
            while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
                end += 1
            found.append("\n".join(lines[max(0, i - 1) : min(end + 1, i + max_lines)]))
    return found


@contextmanager
def database(url: str | None, workdir: Path) -> Iterator[str]:
    """The database of ``serve``: a SQLite file in ``workdir``, or a fresh PostgreSQL schema of ``url``.

    On PostgreSQL the tables go to a new schema (first on the search path), dropped afterwards,
    so a run neither sees nor leaves rows of another.
    """
    if not url:
        yield f"sqlite:///{workdir / 'serve.db'}"
        return
    if not url.startswith("postgresql"):
        yield url
        return
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[Any]
    stderr_path: Path
    command: str


def stop(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM, wait, and kill only if it will not stop (this process's own child only)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def server_env(api_url: str, database_url: str, log_level: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": api_url,
        "LOG_LEVEL": log_level,
    }
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    return env


def start_ours(
    api_url: str,
    database_url: str,
    workdir: Path,
    log_level: str,
    extra_args: Sequence[str] = (),
    experiment: Experiment = Experiment(),
    profile_out: Path | None = None,
    profile_clock: str = "cpu",
) -> Server:
    """``nanbyo-bot serve --host 127.0.0.1 --port 0``; the bound port is read from its start-up line.

    With an ``experiment`` or ``profile_out``, the same command runs through ``bot.cli.main``
    in ``--role serve`` (see ``run_serve``).
    """
    serve = ["serve", "--host", "127.0.0.1", "--port", "0", *extra_args]
    if experiment.args() or profile_out:
        args = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--role",
            "serve",
            *experiment.args(),
            *(["--profile-out", str(profile_out), "--profile", profile_clock] if profile_out else []),
            "--",
            *serve,
        ]
    else:
        args = [str(Path(sys.executable).with_name("nanbyo-bot")), *serve]
    stderr_path = workdir / "serve.stderr"
    with stderr_path.open("w") as err:  # a file, not a pipe: INFO logs would fill a pipe and block it
        proc = subprocess.Popen(
            args, env=server_env(api_url, database_url, log_level), cwd=workdir, stdout=subprocess.DEVNULL, stderr=err
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        started = stderr_path.read_text(errors="replace")
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", started)
        # Ready once its turn process is: that one loads the knowledge base and the matcher (seconds
        # of CPU), which would otherwise land on the first requests measured.
        if found and "turn process ready" in started and get(int(found.group(1)), "/healthz") == 200:
            return Server("nanbyo-bot serve", int(found.group(1)), proc, stderr_path, shlex.join(args))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError("nanbyo-bot serve did not start:\n" + stderr_path.read_text(errors="replace")[-3000:])


def start_bare(api_url: str, workdir: Path, log_level: str, backlog: int | None = None) -> Server:
    args = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        "bare",
        "--api-url",
        api_url,
        "--log-level",
        log_level,
        *(["--backlog", str(backlog)] if backlog else []),
    ]
    stderr_path = workdir / "bare.stderr"
    with stderr_path.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, cwd=workdir)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        stop(proc)
        raise RuntimeError("the bare bolt app did not start:\n" + stderr_path.read_text(errors="replace")[-3000:])
    return Server("bare bolt app", int(line), proc, stderr_path, shlex.join(args))


# --- the load ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    requests: int
    clients: int
    seconds: float
    latencies: tuple[float, ...]  # sorted, seconds
    errors: Counter[str]  # anything but 200, by status or error name
    answered: tuple[int, ...]  # indexes of the requests acked with 200
    started_at: float  # time.monotonic()
    overflows: int | None  # listen-queue overflows during the load (machine-wide counter)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """The q-quantile latency in ms (nearest rank)."""
        if not self.latencies:
            return 0.0
        k = min(len(self.latencies) - 1, max(0, math.ceil(q * len(self.latencies)) - 1))
        return self.latencies[k] * 1000


def build_requests(count: int, texts: Sequence[str], tag: str) -> list[Signed]:
    """``count`` DM events, each from a new user (``U<tag><n>``) with a unique event id."""
    now = int(time.time())
    out = []
    for n in range(count):
        user = f"U{tag}{n:06d}"
        out.append(signed(dm_body(user, texts[n % len(texts)], f"Ev{tag}{n:06d}", n), now))
    return out


def load(port: int, requests: Sequence[Signed], clients: int) -> LoadResult:
    """Send every request from ``clients`` threads (closed loop: one request in flight per client)."""
    overflows_before = listen_overflows()
    started_at = time.monotonic()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="client") as pool:
        results = list(pool.map(lambda r: post(port, r), requests))
    seconds = time.perf_counter() - started
    latencies = tuple(sorted(s for _, s in results))
    errors = Counter(str(status) for status, _ in results if status != 200)
    answered = tuple(i for i, (status, _) in enumerate(results) if status == 200)
    overflows_after = listen_overflows()
    overflows = None if overflows_before is None or overflows_after is None else overflows_after - overflows_before
    return LoadResult(len(requests), clients, seconds, latencies, errors, answered, started_at, overflows)


@dataclass(frozen=True)
class Round:
    bare: LoadResult
    ours: LoadResult
    drain_seconds: float | None  # None: not every answer arrived within DRAIN_TIMEOUT
    posts: int
    posts_expected: int


def one_round(
    index: int,
    bare: Server,
    ours: Server,
    fake: FakeSlack,
    texts: Sequence[str],
    per_text: dict[str, int],
    count: int,
    clients: int,
) -> Round:
    tag = f"R{index}{uuid.uuid4().hex[:4].upper()}"
    bare_result = load(bare.port, build_requests(count, texts, tag + "B"), clients)
    before = fake.stats().posts
    requests = build_requests(count, texts, tag + "O")
    ours_result = load(ours.port, requests, clients)
    # Only an acked event is answered (a request that failed never reached bolt).
    expected = sum(per_text[texts[n % len(texts)]] for n in ours_result.answered)
    stats = fake.wait_posts(before + expected)
    done = stats.posts >= before + expected and stats.last_post_at is not None
    drain = (stats.last_post_at - ours_result.started_at) if done and stats.last_post_at else None
    return Round(bare_result, ours_result, drain, stats.posts - before, expected)


def warm_up(server: Server, fake: FakeSlack, texts: Sequence[str], per_text: dict[str, int], count: int) -> None:
    """A few events first (bolt's lazy auth.test, imports, the tokenizer); wait for their answers."""
    before = fake.stats().posts
    requests = build_requests(count, texts, "W" + uuid.uuid4().hex[:4].upper())
    result = load(server.port, requests, 4)
    if server.name != "bare bolt app":
        fake.wait_posts(before + sum(per_text[texts[n % len(texts)]] for n in result.answered), timeout=60)


def line(name: str, r: LoadResult) -> str:
    worst = r.latencies[-1] * 1000 if r.latencies else 0.0
    errors = f"{sum(r.errors.values())}" + (f" {dict(r.errors)}" if r.errors else "")
    overflows = "?" if r.overflows is None else str(r.overflows)
    return (
        f"{name:<18} {r.requests:>6} req  {r.seconds:6.2f} s  {r.rps:8.1f} req/s  "
        f"p50 {r.pct(0.50):6.1f} ms  p99 {r.pct(0.99):7.1f} ms  max {worst:7.1f} ms  "
        f"errors {errors}  listen-queue overflows {overflows}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 events, 1 round, 8 clients")
    parser.add_argument("--requests", type=int, help="events per server and round (default 2000)")
    parser.add_argument("--clients", type=int, help="concurrent client threads (default 16)")
    parser.add_argument("--rounds", type=int, help="bare/ours rounds, alternating (default 3)")
    parser.add_argument(
        "--database-url",
        help="database of `serve` (default: a temporary SQLite file; on PostgreSQL a fresh schema, dropped afterwards)",
    )
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of both servers (default INFO, as deployed)")
    parser.add_argument("--no-scheduler", action="store_true", help="start `serve` without the reminder scheduler")
    parser.add_argument(
        "--backlog", type=int, help="experiment: listen queue of both servers (default: unchanged, bot.server.BACKLOG)"
    )
    parser.add_argument(
        "--runner-threads", type=int, help="experiment: turns a worker of `serve` runs at once (default: unchanged, 8)"
    )
    parser.add_argument(
        "--ack-only",
        action="store_true",
        help="experiment: `serve` skips the turn after the ack (no answers): its ack path alone",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="experiment: sys.setswitchinterval of `serve`, seconds (default: unchanged, 0.005)",
    )
    parser.add_argument(
        "--workers", type=int, help="`serve --workers`: uvicorn worker processes (default: serve's own, 1)"
    )
    parser.add_argument(
        "--profile",
        choices=("cpu", "wall"),
        help="profile `serve` (cProfile in every thread, timed by the thread's CPU time or by "
        "the wall clock) and print where its time goes; a profiled server is slower, so "
        "the figures of that run are not comparable",
    )
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("serve_args", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=("fake-slack", "bare", "serve"), help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role == "fake-slack":
        return run_fake_slack()
    if args.role == "bare":
        return run_bare_server(args.api_url, args.log_level, args.backlog)
    experiment = Experiment(args.backlog, args.runner_threads, args.switch_interval, args.ack_only)
    if args.role == "serve":
        return run_serve(args.serve_args, experiment, args.profile_out, args.profile or "cpu")

    count = args.requests or (200 if args.quick else 2000)
    clients = args.clients or (8 if args.quick else 16)
    rounds = args.rounds or (1 if args.quick else 3)
    texts = load_texts()
    per_text = messages_per_text(texts)

    print(
        "HTTP benchmark: signed Slack event_callback DMs on 127.0.0.1 "
        f"({count} events per server and round, {clients} client threads, {rounds} round(s))"
    )
    print(
        "  command: "
        + shlex.join([Path(sys.executable).name, "bench/http_load.py", *(argv if argv is not None else sys.argv[1:])])
    )
    print(
        f"  each request on a new TCP connection (as Slack delivers); "
        f"listen queue {args.backlog or 'unchanged (bot.server.BACKLOG)'}; machine: {os.cpu_count()} cores"
    )
    if args.runner_threads or args.switch_interval or args.ack_only:
        print(
            f"  experiment on `serve` only: runner threads {args.runner_threads or 'unchanged (8)'}, "
            f"switch interval {args.switch_interval or 'unchanged (0.005 s)'}"
            + (", turns skipped after the ack (no answers are posted)" if args.ack_only else "")
        )
    if args.ack_only:
        per_text = dict.fromkeys(per_text, 0)

    with (
        tempfile.TemporaryDirectory(prefix="nanbyo-bench-http-") as tmp,
        fake_slack() as fake,
        database(args.database_url, Path(tmp)) as database_url,
    ):
        workdir = Path(tmp)
        bare = start_bare(fake.api_url, workdir, args.log_level, args.backlog)
        try:
            ours = start_ours(
                fake.api_url,
                database_url,
                workdir,
                args.log_level,
                (["--no-scheduler"] if args.no_scheduler else [])
                + (["--workers", str(args.workers)] if args.workers else []),
                experiment,
                workdir / "serve.prof" if args.profile else None,
                args.profile or "cpu",
            )
        except Exception:
            stop(bare.proc)
            raise
        try:
            print(
                f"  ours: {ours.command}   (DATABASE_URL: "
                f"{'a fresh schema of the given database' if args.database_url else 'a temporary SQLite file'})"
            )
            print(f"  bare: {bare.command}")
            warm_up(bare, fake, texts, per_text, 20)
            warm_up(ours, fake, texts, per_text, 20)
            results = []
            for i in range(rounds):
                r = one_round(i + 1, bare, ours, fake, texts, per_text, count, clients)
                results.append(r)
                print(f"round {i + 1}", flush=True)
                print("  " + line("bare bolt app", r.bare))
                print("  " + line("nanbyo-bot serve", r.ours))
                if r.posts_expected == 0:
                    print("  end-to-end drain: no answers are posted (--ack-only)")
                elif r.drain_seconds is not None:
                    print(
                        f"  {'end-to-end drain':<18} {r.drain_seconds:6.2f} s from the first request until the last of "
                        f"{r.posts_expected} answers reached the fake API "
                        f"({r.ours.requests / r.drain_seconds:.1f} turns/s)"
                    )
                else:
                    print(
                        f"  end-to-end drain: only {r.posts} of {r.posts_expected} answers arrived "
                        f"within {DRAIN_TIMEOUT:.0f} s"
                    )
                sys.stdout.flush()
        finally:
            stop(ours.proc)
            stop(bare.proc)
        for path in (ours.stderr_path, bare.stderr_path):
            found = tracebacks(path.read_text(errors="replace"))
            if found:
                print(f"  note: {path.name} holds {len(found)} traceback(s); the last one:\n{found[-1]}")
        if args.profile:
            print(
                f"profile of `serve` (cProfile in every thread, {args.profile} time; it slows the server, so "
                "the figures above are not comparable with an unprofiled run)"
            )
            for kind in ("request", "turn", "other"):
                path = workdir / f"serve.prof.{kind}"
                if path.exists():
                    print(summarize_profile(path))

    rps_ratio = statistics.median(r.bare.rps / r.ours.rps for r in results if r.ours.rps)
    p99_ratio = statistics.median(r.ours.pct(0.99) / r.bare.pct(0.99) for r in results if r.bare.pct(0.99))
    drains = [r.drain_seconds for r in results if r.drain_seconds is not None]
    print("summary (median of rounds)")
    print(
        f"  throughput  bare {statistics.median(r.bare.rps for r in results):.1f} req/s, "
        f"ours {statistics.median(r.ours.rps for r in results):.1f} req/s: bare/ours = {rps_ratio:.2f}x"
    )
    print(
        f"  p99 latency bare {statistics.median(r.bare.pct(0.99) for r in results):.1f} ms, "
        f"ours {statistics.median(r.ours.pct(0.99) for r in results):.1f} ms: ours/bare = {p99_ratio:.2f}x"
    )
    if drains:
        print(
            f"  end-to-end drain {statistics.median(drains):.2f} s for {count} events "
            f"({count / statistics.median(drains):.1f} answered turns/s)"
        )
    verdict = "yes" if rps_ratio <= 1.5 and p99_ratio <= 2 else "no"
    print(f"  within 1.5x of the bare app's throughput and 2x of its p99: {verdict}")
    overflows = sum(r.overflows or 0 for r in results for r in (r.bare, r.ours))
    if overflows:
        print(
            f"  note: {overflows} listen-queue overflows. Each costs its client a 1 s SYN retry, or a "
            "connection reset, which Slack would retry: the p99 above then measures that, not the apps. "
            "Compare with a larger --backlog."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
