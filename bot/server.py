"""``nanbyo-bot serve``: the web app (Starlette) on uvicorn, and the reminder scheduler.

Three routes — ``POST /slack/events`` (Slack Events API, interactivity and ``/nanbyo``, handed to
``bot.channels.slack.SlackIntake``), ``POST /line/callback`` (``bot.channels.line.LineWebhook``)
and ``GET /healthz`` (a trivial database query, answered within a second) — plus, unless
``--no-scheduler``, the reminder scheduler of ``bot.reminders``. ``--socket-mode`` reaches Slack
over a websocket instead of ``/slack/events``; the web app then still serves ``/healthz`` and LINE.

uvicorn does the serving: HTTP/1.1 keep-alive and its timeout, the listen backlog, a cap on
concurrent connections (503 beyond it), graceful shutdown on SIGTERM/SIGINT (no new
connections; requests in flight finish), and ``--workers N`` worker processes it starts, watches
and restarts. The HTTP processes only verify, record and ack (``bot.intake.TurnRecorder``); the
turns run in one turn process (``bot.turn_process``), which ``serve`` starts, restarts when it
dies and, after uvicorn's shutdown, lets finish what is recorded. What uvicorn does not do is
done here, and only that: that turn process (uvicorn manages HTTP workers, not a background
consumer), a limit on the request body (413; uvicorn has none) with a deadline for reading it
(uvicorn's timeouts do not cover a client that stops sending mid-body: 408 after ``BODY_TIMEOUT_SECONDS``),
and a deadline for request headers with room made at the connection cap (``HeaderTimeoutProtocol``).

What it is not: no TLS (put a reverse proxy in front), no wording, no Slack or LINE logic beyond
mounting their intakes. Request bodies are never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text as sql_text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.bootstrap import Service, build_outboxes, build_service
from bot.config import Settings
from bot.turn_process import TurnProcess

log = logging.getLogger("nanbyo.http")
serve_log = logging.getLogger("nanbyo.serve")

MAX_BODY_BYTES = 1024 * 1024  # Slack and LINE payloads are far smaller; refuse anything bigger
# A client that stops sending mid-body gets 408 after this long: Slack and LINE send their few
# kilobytes at once, so only a stalled or hostile client ever waits here.
BODY_TIMEOUT_SECONDS = 10.0
HEALTH_TIMEOUT_SECONDS = 0.8  # /healthz answers within a second, even when the database hangs
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this long
HEADER_TIMEOUT_SECONDS = 5.0  # a connection whose request headers are not complete by then is closed
GRACEFUL_SHUTDOWN_SECONDS = 30  # requests in flight at SIGTERM get this long to finish
MAX_CONNECTIONS = 1000  # concurrent connections per worker; one more gets 503
BACKLOG = 2048

SLACK_PATH = "/slack/events"
LINE_PATH = "/line/callback"
HEALTH_PATH = "/healthz"
SOCKET_MODE_ENV = "NANBYO_SOCKET_MODE"  # how serve tells its worker processes to use Socket Mode


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or ``BodyTooLarge`` beyond ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), BODY_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        raise BodyTimeout from None
    except ClientDisconnect:  # gone mid-body (or closed to make room): the 408 reaches no one, no 500 logged
        raise BodyTimeout from None
    return b"".join(chunks)


class AccessLog:
    """One log line per request: method, path, status, duration. Ours rather than uvicorn's access
    log, which names the client's address and the query string; no body is ever logged."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("path", "")
            log.log(
                logging.DEBUG if path == HEALTH_PATH else logging.INFO,
                "http method=%s path=%s status=%d ms=%.1f",
                scope.get("method"),
                path,
                status[0],
                (time.perf_counter() - started) * 1000,
            )


@dataclass
class _Check:
    """One database check of ``/healthz``: done when ``finished`` is set, failed when ``error``."""

    finished: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def health_check(
    engine: Any, timeout: float = HEALTH_TIMEOUT_SECONDS, queue: Any = None
) -> Callable[[], tuple[int, dict[str, str]]]:
    """``GET /healthz``: 200 ``{"status": "ok"}`` when the database answers, else 503.

    ``queue``: the turn queue's own engine (SQLite keeps ``pending_turn`` in a file of its own). Its
    write lock is taken and given back at once (``BEGIN IMMEDIATE``): a queue file another writer
    holds locked cannot record a turn, so the instance is not healthy either.

    The query runs on a thread of its own and the answer waits for it at most ``timeout``
    seconds: a database that accepts connections and never answers gives 503
    ``"database": "timeout"`` at once. One check at a time: probes arriving while one runs wait
    for that one (so a hung database holds one thread, not one per probe).
    """
    lock = threading.Lock()
    current: list[_Check] = []

    def query(done: _Check) -> None:
        try:
            with engine.connect() as conn:
                conn.execute(sql_text("SELECT 1"))
            if queue is not None:
                with queue.connect() as conn:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    conn.exec_driver_sql("ROLLBACK")
        except Exception as exc:
            done.error = type(exc).__name__
        done.finished.set()

    def check() -> tuple[int, dict[str, str]]:
        with lock:
            if not current or current[0].finished.is_set():
                current[:] = [_Check()]
                threading.Thread(target=query, args=(current[0],), name="healthz", daemon=True).start()
            running = current[0]
        if not running.finished.wait(timeout):
            log.warning("healthz database check timed out after %.1f s", timeout)
            return 503, {"status": "unavailable", "database": "timeout"}
        if running.error is not None:
            log.warning("healthz database check failed error=%s", running.error)
            return 503, {"status": "unavailable", "database": "error"}
        return 200, {"status": "ok"}

    return check


def create_app(service: Service, *, socket_mode: bool = False, on_ready: Callable[[], None] | None = None) -> Starlette:
    """The web app of one worker: the routes of what ``service`` has configured.

    Its shutdown (after uvicorn has finished the requests in flight) closes Socket Mode and the
    service: every turn accepted is recorded (``serve``'s processes) or answered (a service that
    runs its turns) before the worker exits.
    """
    queue = getattr(service.runner, "queue", None)  # TurnRecorder and PooledRunner keep their queue's store
    queue_engine = (
        queue.engine
        if queue is not None and queue is not service.store and queue.engine.url.get_backend_name() == "sqlite"
        else None
    )
    check = health_check(service.store.engine, queue=queue_engine)

    async def health(request: Request) -> Response:
        status, body = await run_in_threadpool(check)
        return JSONResponse(body, status_code=status)

    async def slack_events(request: Request) -> Response:
        try:
            body = await read_body(request)
        except BodyTooLarge:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        except BodyTimeout:
            return JSONResponse({"error": "request body timed out"}, status_code=408, headers={"connection": "close"})
        # Decoding with "replace" is safe: altered bytes no longer match the signature (401).
        resp = await run_in_threadpool(
            service.slack.dispatch, body.decode("utf-8", errors="replace"), dict(request.headers), request.url.query
        )
        headers = {k: ", ".join(v) if isinstance(v, (list, tuple)) else str(v) for k, v in (resp.headers or {}).items()}
        headers.pop("content-length", None)
        return Response(resp.body or b"", status_code=resp.status, headers=headers)

    async def line_callback(request: Request) -> Response:
        try:
            body = await read_body(request)
        except BodyTooLarge:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        except BodyTimeout:
            return JSONResponse({"error": "request body timed out"}, status_code=408, headers={"connection": "close"})
        status, text = await run_in_threadpool(
            service.line.handle_callback, body, request.headers.get("x-line-signature", "")
        )
        return PlainTextResponse(text, status_code=status)

    routes = [Route(HEALTH_PATH, health, methods=["GET", "HEAD"])]
    if service.slack is not None and not socket_mode:
        routes.append(Route(SLACK_PATH, slack_events, methods=["POST"]))
    if service.line is not None:
        routes.append(Route(LINE_PATH, line_callback, methods=["POST"]))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        handler = None
        if socket_mode and service.slack is not None:
            handler = service.slack.socket_mode_handler(service.slack.settings.slack_app_token or "")
            await run_in_threadpool(handler.connect)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            if handler is not None:
                await run_in_threadpool(handler.close)
            await run_in_threadpool(service.close)

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(AccessLog)])
    app.state.paths = sorted({r.path for r in routes})
    return app


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers (``HEADER_TIMEOUT_SECONDS``),
    and room made for new connections at the cost of those still waiting for their headers.

    uvicorn bounds the wait between requests on a kept-alive connection, but not the wait for a
    request's headers: a client that sends them a byte at a time holds its connection (and one of
    ``MAX_CONNECTIONS``, uvicorn's ``limit_concurrency``, which counts connections) for ever, and a
    thousand such clients make every real event 503. Two bounds, ours because uvicorn has neither
    (its h11 setting ``h11_max_incomplete_event_size`` bounds the headers' size, 16 KB, not their
    time):

    - a timer from the connection's start, and again from the end of each response (the next
      request's headers on a kept-alive connection), cancelled once a request's headers are
      complete (uvicorn then has a new request cycle);
    - when a new connection brings the worker to ``MAX_CONNECTIONS``, the connections that have
      waited longest for their headers (a twentieth of the cap) are closed to make room (or, when
      none waits for headers, those that have waited longest for the rest of their body), so slow
      clients never hold the cap: a real event (sent at once) is answered while a thousand slow
      connections are open. A connection whose request is being answered is never closed here.

    At module level, so that ``serve --workers N`` can hand it to the worker processes.
    """

    _deadline: asyncio.TimerHandle | None = None
    _waiting_cycle: Any = None  # the request cycle when the deadline was set (None: none yet)
    _waiting_since = 0.0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._await_headers()
        self._make_room()

    def _await_headers(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._waiting_cycle = self.cycle
        self._waiting_since = time.monotonic()
        self._deadline = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._headers_too_slow)

    def _make_room(self) -> None:
        if len(self.connections) < MAX_CONNECTIONS:
            return
        # One pass over the connections closes a twentieth of the cap at once (the oldest waiting),
        # so that under a flood of slow clients the pass is not made for every new connection.
        room = max(1, MAX_CONNECTIONS // 20)
        others = [c for c in self.connections if isinstance(c, HeaderTimeoutProtocol) and c is not self]
        waiting = [c for c in others if c._deadline is not None]
        if waiting:
            oldest = heapq.nsmallest(room, waiting, key=lambda c: c._waiting_since)
            for conn in oldest:
                conn._close_waiting()
        else:
            bodies = [c for c in others if c._awaiting_body()]
            if not bodies:
                return  # every other connection has a request being answered: uvicorn answers 503
            oldest = heapq.nsmallest(room, bodies, key=lambda c: c._waiting_since)
            for conn in oldest:
                conn.transport.close()  # its read_body ends (ClientDisconnect); nothing was recorded
        self.connections.difference_update(oldest)  # at once: the next request counts the connections left

    def _awaiting_body(self) -> bool:
        """Headers complete, the body not yet whole, nothing answered: a body that trickles."""
        cycle = self.cycle
        return (
            cycle is not None
            and cycle is not self._waiting_cycle
            and cycle.more_body
            and not cycle.response_started
            and not cycle.disconnected
            and not self.transport.is_closing()
        )

    def handle_events(self) -> None:
        super().handle_events()
        if self._deadline is not None and self.cycle is not self._waiting_cycle:
            self._deadline.cancel()  # a request's headers are complete
            self._deadline = None
            self._waiting_since = time.monotonic()  # now for its body (see _awaiting_body)

    def on_response_complete(self) -> None:
        self._await_headers()  # before uvicorn looks at a pipelined request (handle_events)
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._deadline = None
        self._close_waiting()

    def _close_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self.cycle is self._waiting_cycle and not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(app: Any, host: str, port: int, *, workers: int = 1, factory: bool = False) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        factory=factory,
        workers=workers,
        lifespan="on",
        http=HeaderTimeoutProtocol,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        limit_concurrency=MAX_CONNECTIONS,
        backlog=BACKLOG,
    )


@dataclass
class RunningServer:
    """A web app served by uvicorn on a thread of this process (tests, benchmarks)."""

    url: str
    port: int
    stop: Callable[[], None]


def start_in_thread(
    service: Service, host: str = "127.0.0.1", port: int = 0, *, socket_mode: bool = False
) -> RunningServer:
    """Serve ``service`` on uvicorn in a background thread; ``stop()`` shuts down as SIGTERM does
    (requests in flight finish, then every accepted turn is answered). Port 0 picks a free port."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(create_app(service, socket_mode=socket_mode), host, bound))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        threading.Event().wait(0.01)
    lock = threading.Lock()

    def stop() -> None:
        with lock:
            server.should_exit = True
            thread.join()
            sock.close()

    return RunningServer(f"http://{host}:{bound}", bound, stop)


def worker_app() -> Starlette:
    """The app factory uvicorn calls in each worker process (``serve``): settings from the environment."""
    from bot.bootstrap import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    socket_mode = os.environ.get(SOCKET_MODE_ENV) == "1"

    def ready() -> None:
        if socket_mode:
            print("nanbyo-bot: slack connected over socket mode", file=sys.stderr, flush=True)
        serve_log.info("worker ready pid=%d", os.getpid())

    return create_app(
        build_service(settings, socket_mode=socket_mode, record_only=True), socket_mode=socket_mode, on_ready=ready
    )


def start_reminders(settings: Settings, senders: dict[str, Any]) -> Any:
    """``bot.reminders.start_scheduler(settings, senders)``."""
    from bot.reminders import start_scheduler

    return start_scheduler(settings, senders)


# --- nanbyo-bot serve ----------------------------------------------------------------------------


def serve_main(args: argparse.Namespace, settings: Settings) -> int:
    """``nanbyo-bot serve [--socket-mode] [--no-scheduler] [--port N] [--host H] [--workers N]``.

    Runs until SIGTERM or SIGINT, then stops gracefully. Returns the exit status.
    """
    options = _serve_options(args, settings)
    if options is None:
        return 2
    os.environ[SOCKET_MODE_ENV] = "1" if options.socket_mode else "0"
    config = uvicorn_config("bot.server:worker_app", options.host, options.port, workers=options.workers, factory=True)
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn reports a port in use and exits; say it our way
        print(f"error: cannot listen on {options.host}:{options.port}", file=sys.stderr)
        return 1
    # uvicorn re-raises the stop signal after its graceful shutdown; with a handler of ours in
    # place beforehand, that ends here instead of killing the process before the scheduler stops.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    background = _Background()
    try:
        _start_background(background, options, settings)
        _announce(sock, options, settings, scheduler_on=background.scheduler is not None)
        _run_uvicorn(config, sock, options.workers)
        return 0
    except Exception as exc:
        serve_log.exception("serve failed")
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        _shut_down(background)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        print("nanbyo-bot: stopped", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class _ServeOptions:
    """What ``serve`` was asked for on its command line, checked against the settings."""

    socket_mode: bool
    host: str
    port: int
    workers: int
    scheduler: bool


@dataclass
class _Background:
    """What ``serve`` starts beside uvicorn, and so stops after it: the turn process, the scheduler, the senders."""

    turns: TurnProcess | None = None
    scheduler: Any = None
    senders: dict[str, Any] = field(default_factory=dict)


def _serve_options(args: argparse.Namespace, settings: Settings) -> _ServeOptions | None:
    """The options of ``serve``, or None (after saying why on stderr) when Socket Mode lacks a token."""
    socket_mode = bool(getattr(args, "socket_mode", False))
    if socket_mode and not settings.slack_app_token:
        print(
            "error: --socket-mode needs SLACK_APP_TOKEN (the app-level token, xapp-..., "
            "with the connections:write scope)",
            file=sys.stderr,
        )
        return None
    if socket_mode and not settings.slack_bot_token:
        print("error: --socket-mode needs SLACK_BOT_TOKEN (xoxb-...)", file=sys.stderr)
        return None
    return _ServeOptions(
        socket_mode=socket_mode,
        host=getattr(args, "host", None) or "0.0.0.0",
        port=settings.port if getattr(args, "port", None) is None else int(args.port),
        workers=max(1, int(getattr(args, "workers", None) or 1)),
        scheduler=not getattr(args, "no_scheduler", False),
    )


def _start_background(background: _Background, options: _ServeOptions, settings: Settings) -> None:
    """Create the schema, start the turn process and, unless ``--no-scheduler``, the scheduler.

    Fills ``background`` as it goes, so that whatever started is stopped even when a later step fails.
    """
    _create_schema(settings.database_url)  # once here, not by workers racing each other
    # The turns run in a process of their own (see bot.turn_process for why, and why it is ours
    # to manage); until it is ready, the HTTP processes ack and the turns wait in the queue.
    background.turns = TurnProcess()
    background.turns.start()
    if not options.scheduler:
        return
    # One scheduler per instance, in this process (uvicorn's supervisor when there are workers).
    background.senders = build_outboxes(settings)
    background.scheduler = start_reminders(settings, background.senders)
    if settings.staff_slack_channel and "slack" in background.senders:  # hand-offs: retries and leftovers
        _start_handoff_polling(settings, background.senders, background.scheduler)


def _start_handoff_polling(settings: Settings, senders: dict[str, Any], scheduler: Any) -> None:
    from bot.handoff import HandoffDesk, start_polling
    from bot.storage.db import make_engine
    from bot.storage.repositories import Store

    start_polling(
        HandoffDesk(settings, Store(make_engine(settings.database_url)), senders, client=senders["slack"].client),
        scheduler,
    )


def _served_paths(settings: Settings, socket_mode: bool) -> list[str]:
    """The routes this instance answers, for the start-up line."""
    paths = [HEALTH_PATH]
    if settings.slack_bot_token and settings.slack_signing_secret and not socket_mode:
        paths.append(SLACK_PATH)
    if settings.line_channel_secret and settings.line_channel_access_token:
        paths.append(LINE_PATH)
    return paths


def _announce(sock: socket.socket, options: _ServeOptions, settings: Settings, *, scheduler_on: bool) -> None:
    """The start-up line on stderr: address, paths, workers, Socket Mode, scheduler."""
    bound_host, bound_port = sock.getsockname()[:2]
    parts = [
        f"nanbyo-bot: listening on http://{bound_host}:{bound_port}",
        "paths " + " ".join(sorted(_served_paths(settings, options.socket_mode))),
        f"workers {options.workers}",
    ]
    if options.socket_mode:
        parts.append("slack over socket mode")
    parts.append("scheduler on" if scheduler_on else "scheduler off")
    print(", ".join(parts), file=sys.stderr, flush=True)


def _run_uvicorn(config: Any, sock: socket.socket, workers: int) -> None:
    """Serve on ``sock`` until SIGTERM or SIGINT: one process, or uvicorn's supervisor over ``workers``."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    server = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])


def _shut_down(background: _Background) -> None:
    """Stop what ``serve`` started beside uvicorn, in order; a failing step is logged and the rest still run."""
    if background.turns is not None:  # uvicorn has finished: every turn acked is recorded; now answer them
        _step("turn process stop", background.turns.stop)
    if background.scheduler is not None:
        _step("scheduler shutdown", background.scheduler.shutdown)  # waits for a dispatch in progress
    for sender in background.senders.values():
        close = getattr(sender, "close", None)
        if close is not None:
            _step("sender close", close)


def _create_schema(database_url: str) -> None:
    from bot.storage.db import make_engine, make_turn_queue_engine, turn_queue_url

    make_engine(database_url).dispose()
    if turn_queue_url(database_url) is not None:
        make_turn_queue_engine(database_url).dispose()


def _step(name: str, action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception:
        serve_log.exception("%s failed", name)


__all__ = ["create_app", "serve_main", "start_in_thread", "start_reminders", "worker_app"]
