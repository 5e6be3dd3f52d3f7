"""``nanbyo-bot serve``: the HTTP server, the Slack and LINE mounts, and the reminder scheduler.

What it is: a standard-library ``ThreadingHTTPServer`` with three routes —
``POST /slack/events`` (Slack Events API and interactivity, handed to bolt),
``POST /line/callback`` (handed to ``bot.channels.line.LineChannel``) and
``GET /healthz`` (a trivial database query) — plus, unless ``--no-scheduler``, the reminder
scheduler of ``bot.reminders`` with the Slack and LINE senders. ``--socket-mode`` reaches
Slack over a websocket instead of ``/slack/events``; the HTTP server then still serves
``/healthz`` and LINE.

What it is not: no web framework, no TLS (put a reverse proxy in front), no wording, no
Slack or LINE logic beyond mounting their channels. Request bodies are never logged;
the access log has method, path, status and duration.

``make_server`` is what tests use: it binds (port 0 picks a free port; read it back
from ``server.server_address``), serves in a thread, and returns a thread-safe shutdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text as sql_text

from bot.config import Settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from bot.core import Bot

log = logging.getLogger("nanbyo.http")
serve_log = logging.getLogger("nanbyo.serve")

MAX_BODY_BYTES = 1024 * 1024  # Slack and LINE payloads are far smaller; refuse anything bigger
REQUEST_TIMEOUT_SECONDS = 30  # a client that stops sending mid-request does not hold a thread forever
HEALTH_TIMEOUT_SECONDS = 0.8  # /healthz answers within a second, even when the database hangs

SLACK_PATH = "/slack/events"
LINE_PATH = "/line/callback"
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class Request:
    """One HTTP request as the routes see it (headers with lower-case names)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any) -> Response:
        return cls(status, json.dumps(obj, ensure_ascii=False).encode(), {"Content-Type": "application/json"})


Route = Callable[[Request], Response]


class LineCallback(Protocol):
    """What the server needs of ``bot.channels.line.LineChannel``."""

    def handle_callback(self, body: bytes, signature: str) -> tuple[int, str]: ...


# --- routes --------------------------------------------------------------------------------------

def health_route(bot: Bot, timeout: float = HEALTH_TIMEOUT_SECONDS) -> Route:
    """``GET /healthz``: 200 ``{"status": "ok"}`` when the database answers, else 503.

    The check runs on a thread of its own and the answer waits for it at most ``timeout``
    seconds: a database that accepts connections and never answers gives 503
    ``"database": "timeout"`` at once, not a request thread stuck for good. One check at a time:
    requests arriving while one runs wait for that one (so a hung database holds one thread,
    not one per probe).
    """
    lock = threading.Lock()
    current: list[_Check] = []

    def check(done: _Check) -> None:
        try:
            with bot.store.engine.connect() as conn:
                conn.execute(sql_text("SELECT 1"))
        except Exception as exc:
            done.error = type(exc).__name__
        done.finished.set()

    def route(req: Request) -> Response:
        with lock:
            if not current or current[0].finished.is_set():
                current[:] = [_Check()]
                threading.Thread(target=check, args=(current[0],), name="healthz", daemon=True).start()
            running = current[0]
        if not running.finished.wait(timeout):
            log.warning("healthz database check timed out after %.1f s", timeout)
            return Response.json(503, {"status": "unavailable", "database": "timeout"})
        if running.error is not None:
            log.warning("healthz database check failed error=%s", running.error)
            return Response.json(503, {"status": "unavailable", "database": "error"})
        return Response.json(200, {"status": "ok"})

    return route


@dataclass
class _Check:
    """One database check of ``/healthz``: done when ``finished`` is set, failed when ``error``."""

    finished: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def slack_route(channel: Any) -> Route:
    """``POST /slack/events``: bolt verifies the signature, acks, and runs the listener after."""

    def route(req: Request) -> Response:
        # Decoding with "replace" is safe: altered bytes no longer match the signature (401).
        resp = channel.dispatch(req.body.decode("utf-8", errors="replace"), req.headers, req.query)
        headers = {k: ", ".join(v) if isinstance(v, (list, tuple)) else str(v) for k, v in (resp.headers or {}).items()}
        body = resp.body if isinstance(resp.body, bytes) else (resp.body or "").encode("utf-8")
        return Response(resp.status, body, headers)

    return route


def line_route(channel: LineCallback) -> Route:
    """``POST /line/callback``: the LINE channel checks ``X-Line-Signature`` and handles the events."""

    def route(req: Request) -> Response:
        status, text = channel.handle_callback(req.body, req.headers.get("x-line-signature", ""))
        return Response(status, text.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})

    return route


def mount_line(bot: Bot, settings: Settings, turns: Any = None) -> LineCallback | None:
    """The LINE channel when LINE is configured and its module is installed, else None."""
    if not (settings.line_channel_secret and settings.line_channel_access_token):
        return None
    try:
        from bot.channels.line import LineChannel
    except ModuleNotFoundError as exc:
        if exc.name != "bot.channels.line":
            raise  # a broken install (e.g. line-bot-sdk missing) should fail loudly at start
        log.warning("LINE is configured but bot.channels.line is missing: %s not mounted", LINE_PATH)
        return None
    return LineChannel(bot, settings, turns=turns)


# --- the server ----------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    # Request threads are joined on close, so a graceful stop lets in-flight requests finish.
    daemon_threads = False
    block_on_close = True
    # The standard library's listen queue is 5: under a burst of Slack or LINE deliveries the
    # kernel then drops connections (bench/http.py measured 386 overflows with 16 clients).
    request_queue_size = 128
    routes: dict[tuple[str, str], Route]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nanbyo-bot"
    timeout = REQUEST_TIMEOUT_SECONDS

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        started = time.perf_counter()
        path, _, query = self.path.partition("?")
        route = self.server.routes.get(("GET" if method == "HEAD" else method, path))
        try:
            if route is None:
                known = any(p == path for _, p in self.server.routes)
                resp = Response.json(405 if known else 404, {"error": "method not allowed" if known else "not found"})
            else:
                body = self._read_body()
                if body is None:
                    resp = Response.json(413, {"error": "request body too large"})
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    resp = route(Request(method, path, query, headers, body))
        except Exception:
            log.exception("request failed method=%s path=%s", method, path)
            resp = Response.json(500, {"error": "internal error"})
        self._write(resp, with_body=method != "HEAD")
        level = logging.DEBUG if path == HEALTH_PATH else logging.INFO
        log.log(level, "http method=%s path=%s status=%d ms=%.1f", method, path, resp.status,
                (time.perf_counter() - started) * 1000)

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = MAX_BODY_BYTES + 1  # unreadable length: refuse rather than guess
        if length > MAX_BODY_BYTES or length < 0:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, resp: Response, with_body: bool = True) -> None:
        self.send_response(resp.status)
        headers = {k.lower(): (k, v) for k, v in resp.headers.items()}
        headers.pop("content-length", None)
        for name, value in headers.values():
            self.send_header(name, value)
        if "content-type" not in headers:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if with_body:
            self.wfile.write(resp.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        return None  # _serve logs a line of its own, without the client address


def make_server(bot: Bot, settings: Settings, host: str, port: int, *, slack_http: bool = True,
                turns: Any = None) -> tuple[ThreadingHTTPServer, Callable[[], None]]:
    """Bind the HTTP server, mount what is configured, and start serving in a background thread.

    Args:
        bot: the core.
        settings: Slack is mounted when ``slack_bot_token`` and ``slack_signing_secret`` are
            set (and ``slack_http``); LINE when its secret and access token are.
        host: address to listen on.
        port: port; 0 picks a free one (read it back from ``server.server_address[1]``).
        slack_http: False under Socket Mode, where Slack does not call us over HTTP.
        turns: where Slack and LINE turns run after the ack (a ``bot.turn_worker.TurnProcess``):
            None runs them on the channels' own threads in this process.

    Returns:
        The running server and a thread-safe ``shutdown()``: it stops accepting, waits for
        requests in flight and for Slack and LINE turns already accepted, and closes the
        socket. It may be called more than once.
    """
    routes: dict[tuple[str, str], Route] = {("GET", HEALTH_PATH): health_route(bot)}
    slack = None
    if slack_http and settings.slack_bot_token and settings.slack_signing_secret:
        from bot.channels.slack import SlackChannel

        slack = SlackChannel(bot, settings, turns=turns)
        routes[("POST", SLACK_PATH)] = slack_route(slack)
    elif slack_http and (settings.slack_bot_token or settings.slack_signing_secret):
        log.warning("Slack needs both SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET: %s not mounted", SLACK_PATH)
    line = mount_line(bot, settings, turns)
    if line is not None:
        routes[("POST", LINE_PATH)] = line_route(line)

    server = _Server((host, port), _Handler)
    server.routes = routes
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http-server",
                              daemon=True)
    thread.start()
    lock = threading.Lock()
    done = False

    def shutdown() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
            server.shutdown()  # stops serve_forever (from any thread but its own)
            thread.join()
            server.server_close()  # joins request threads still running
            # Turns acked but not yet answered finish and post before the process ends.
            for channel in (slack, line):
                close = getattr(channel, "close", None)
                if close is not None:
                    close()

    return server, shutdown


def mounted_paths(server: ThreadingHTTPServer) -> list[str]:
    """The paths a server made by ``make_server`` answers, for the start-up line."""
    return sorted({path for _, path in getattr(server, "routes", {})})


# --- reminders -----------------------------------------------------------------------------------

def build_senders(settings: Settings) -> dict[str, Any]:
    """The push senders of the configured channels: ``{"slack": SlackSender, "line": LineSender}``."""
    senders: dict[str, Any] = {}
    if settings.slack_bot_token:
        from bot.channels.slack import SlackSender

        senders["slack"] = SlackSender(settings)
    if settings.line_channel_secret and settings.line_channel_access_token:
        try:
            from bot.channels.line import LineSender
        except ModuleNotFoundError as exc:
            if exc.name != "bot.channels.line":
                raise
            log.warning("LINE is configured but bot.channels.line is missing: no LINE reminders")
        else:
            senders["line"] = LineSender(settings)
    return senders


def start_reminders(settings: Settings, senders: dict[str, Any]) -> Any | None:
    """``bot.reminders.start_scheduler(settings, senders)``, or None when that module is missing."""
    try:
        from bot.reminders import start_scheduler
    except ModuleNotFoundError as exc:
        if exc.name != "bot.reminders":
            raise
        serve_log.warning("bot.reminders is missing: no reminder scheduler")
        return None
    return start_scheduler(settings, senders)


# --- nanbyo-bot serve ----------------------------------------------------------------------------

def serve_main(args: argparse.Namespace, settings: Settings) -> int:
    """``nanbyo-bot serve [--socket-mode] [--no-scheduler] [--port N] [--host H] [--turns process|threads]``.

    Runs until SIGTERM or SIGINT, then stops gracefully: no new requests, requests and
    Slack and LINE turns in flight finish, the scheduler stops. Returns the exit status.
    """
    socket_mode = bool(getattr(args, "socket_mode", False))
    if socket_mode and not settings.slack_app_token:
        print("error: --socket-mode needs SLACK_APP_TOKEN (the app-level token, xapp-..., "
              "with the connections:write scope)", file=sys.stderr)
        return 2
    if socket_mode and not settings.slack_bot_token:
        print("error: --socket-mode needs SLACK_BOT_TOKEN (xoxb-...)", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        serve_log.info("signal %s: shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    from bot.bootstrap import build_bot

    turns: Any = None
    shutdown: Callable[[], None] | None = None
    socket_handler = None
    socket_channel = None
    scheduler = None
    senders: dict[str, Any] = {}
    try:
        host = getattr(args, "host", None) or "0.0.0.0"
        port = settings.port if getattr(args, "port", None) is None else int(args.port)
        slack_configured = bool(settings.slack_bot_token and (settings.slack_signing_secret or socket_mode))
        line_configured = bool(settings.line_channel_secret and settings.line_channel_access_token)
        if (slack_configured or line_configured) and getattr(args, "turns", "process") == "process":
            from bot.bootstrap import LazyBot
            from bot.turn_worker import TurnProcess

            bot: Any = LazyBot(settings)  # this process only records and acks: no matcher here
            try:
                # Its child loads the knowledge base and the matcher. Turns are recorded in the
                # database before the ack, so that a crash of both processes loses none.
                turns = TurnProcess(settings, store=bot.store, limit=settings.turn_queue_limit,
                                    lease=settings.turn_lease_seconds)
            except RuntimeError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        else:
            bot = build_bot(settings)
        try:
            server, shutdown = make_server(bot, settings, host, port, slack_http=not socket_mode, turns=turns)
        except OSError as exc:
            print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
            return 1

        if socket_mode:
            from bot.channels.slack import SlackChannel

            socket_channel = SlackChannel(bot, settings, socket_mode=True, turns=turns)
            socket_handler = socket_channel.socket_mode_handler(settings.slack_app_token or "")
            socket_handler.connect()
        if not getattr(args, "no_scheduler", False):
            senders = build_senders(settings)
            scheduler = start_reminders(settings, senders)

        bound_host, bound_port = server.server_address[:2]
        parts = [f"nanbyo-bot: listening on http://{bound_host}:{bound_port}",
                 "paths " + " ".join(mounted_paths(server))]
        if socket_mode:
            parts.append("slack over socket mode")
        if turns is not None:
            parts.append(f"turns in process {turns.pid}")
        parts.append("scheduler on" if scheduler is not None else "scheduler off")
        print(", ".join(parts), file=sys.stderr, flush=True)

        while not stop.wait(0.5):
            pass
        return 0
    except Exception as exc:
        serve_log.exception("serve failed")
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        # Each step on its own: one that fails must not keep the others (and the exit) from happening.
        if turns is not None:
            _step("turns stop", turns.stop)  # a restart in progress gives up; queued turns still go out
        if shutdown is not None:
            _step("http shutdown", shutdown)
        if socket_handler is not None:
            _step("socket mode close", socket_handler.close)
        if socket_channel is not None:
            _step("socket mode channel close", lambda: socket_channel.close(wait=True))
        if turns is not None:
            _step("turns close", turns.close)  # after the channels: every acked turn has been handed over
        if scheduler is not None:
            _step("scheduler shutdown", scheduler.shutdown)  # waits for a dispatch in progress
        for sender in senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                _step("sender close", close)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("nanbyo-bot: stopped", file=sys.stderr, flush=True)


def _step(name: str, action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception:
        serve_log.exception("%s failed", name)


__all__ = ["build_senders", "make_server", "mount_line", "serve_main", "start_reminders"]
