"""A fake Slack Web API: a recording ``http.server`` on 127.0.0.1, port 0.

It answers ``auth.test``, ``chat.postMessage``, ``chat.update``, ``conversations.open``,
``views.publish`` and ``apps.connections.open`` (with ``socket_mode_url``, see ``slack_socket``)
(any other method, and any ``response_url``, with ``{"ok": true}``), and
records every call with its parsed arguments. ``rate_limit(n)`` makes the next ``n`` calls
answer HTTP 429 with ``Retry-After``. Point ``SLACK_API_URL`` at ``fake.api_url``.

It is not Slack: it checks nothing but the bearer token's presence, and its ids are made up
(the DM with user ``U1`` is ``DU1``; the bot is ``UBOT`` / ``BBOT`` in team ``T1``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"


@dataclass(frozen=True)
class Call:
    """One request the fake received; ``method`` is the API method, or ``respond`` for a response_url."""

    method: str
    path: str
    args: dict[str, Any]
    headers: dict[str, str]
    status: int
    response: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeSlackAPI:
    """Start with ``FakeSlackAPI()`` (it serves at once); ``close()`` when done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.calls: list[Call] = []
        self._limited: list[tuple[str | None, float]] = []  # (method or None for any, retry_after)
        self._ts = 0
        self.socket_mode_url: str | None = None  # what apps.connections.open hands out (FakeSocketMode.url)
        self.delay = 0.0  # seconds chat.postMessage takes before it answers (a slow Web API)
        self.auth_delay = 0.0  # seconds auth.test takes before it answers
        self._outage_until = 0.0  # until then (time.monotonic()), chat.postMessage answers _outage_status
        self._outage_status = 503
        self._outage_retry_after: str | None = None
        self._outage_after: tuple[int, float, int] | None = None  # (posts still let through, seconds, status)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                fake._serve(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._serve(self)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL, with the trailing slash slack_sdk wants."""
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}/respond/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- test controls ----------------------------------------------------------------------

    def rate_limit(self, n: int, retry_after: float = 1, method: str | None = None) -> None:
        """The next ``n`` calls (of ``method``, or of any method) get 429 with ``Retry-After``."""
        with self._lock:
            self._limited.extend([(method, retry_after)] * n)

    def outage(self, seconds: float, status: int = 503, retry_after: str | None = None) -> None:
        """For the next ``seconds``, chat.postMessage answers ``status`` (Slack's message API down
        for a moment: 503; or limiting: 429), with ``Retry-After: retry_after`` when given."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds
            self._outage_status, self._outage_retry_after = status, retry_after

    def outage_after(self, posts: int, seconds: float, status: int = 500) -> None:
        """Let the next ``posts`` chat.postMessage calls through, then answer ``status`` for ``seconds``
        (an outage beginning in the middle of a turn's messages)."""
        with self._lock:
            self._outage_after = (posts, seconds, status)

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    def wait_for(
        self, method: str, count: int = 1, timeout: float = 10.0, where: Callable[[Call], bool] | None = None
    ) -> list[Call]:
        """Block until ``count`` successful calls of ``method`` (matching ``where``) arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [
                    c for c in self.calls if c.method == method and c.status == 200 and (where is None or where(c))
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} {method} call(s) within {timeout}s, got {len(found)}: "
                        f"{[c.method for c in self.calls]}"
                    )
                self._changed.wait(left)

    # -- serving ----------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.partition("?")[0]
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode("utf-8")
        ctype = h.headers.get("Content-Type") or ""
        if "json" in ctype and raw:
            args = json.loads(raw)
        else:
            args = dict(parse_qsl(raw) + parse_qsl(h.path.partition("?")[2]))
        method = path.removeprefix("/api/") if path.startswith("/api/") else "respond"
        headers = {k.lower(): v for k, v in h.headers.items()}
        if method == "chat.postMessage" and self.delay:
            time.sleep(self.delay)
        if method == "auth.test" and self.auth_delay:
            time.sleep(self.auth_delay)
        with self._changed:
            limit = next((i for i, (m, _) in enumerate(self._limited) if m in (None, method)), None)
            retry_after = self._limited.pop(limit)[1] if limit is not None else None
            if method == "chat.postMessage" and self._outage_after is not None:
                posts, seconds, status_then = self._outage_after
                if posts == 0:
                    self._outage_after = None
                    self._outage_until, self._outage_status = time.monotonic() + seconds, status_then
                    self._outage_retry_after = None
                else:
                    self._outage_after = (posts - 1, seconds, status_then)
            down = method == "chat.postMessage" and time.monotonic() < self._outage_until
            if down and retry_after is None:
                retry_after = self._outage_retry_after
            status = 429 if retry_after is not None and not down else self._outage_status if down else 200
            body = (
                {"ok": False, "error": "ratelimited"}
                if status == 429
                else {"ok": False, "error": "service_unavailable"}
                if down
                else self._answer(method, args)
            )
            self.calls.append(Call(method, path, args, headers, status, body))
            self._changed.notify_all()
        payload = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        if retry_after is not None:
            h.send_header("Retry-After", str(retry_after))
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.test/",
                "team": "Fake",
                "user": "nanbyo",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "conversations.open":
            user = str(args.get("users", "")).split(",")[0]
            return {"ok": True, "channel": {"id": "D" + user.removeprefix("U")}}
        if method in ("chat.postMessage", "chat.update"):
            self._ts += 1
            ts = args.get("ts") or f"1700000000.{self._ts:06d}"
            return {
                "ok": True,
                "channel": args.get("channel"),
                "ts": ts,
                "message": {
                    "text": args.get("text"),
                    "blocks": args.get("blocks"),
                    "ts": ts,
                    "bot_id": BOT_ID,
                    "type": "message",
                },
            }
        if method == "apps.connections.open" and self.socket_mode_url:
            return {"ok": True, "url": self.socket_mode_url}
        if method == "views.publish":
            return {"ok": True, "view": {"id": "V1", "type": "home", "blocks": (args.get("view") or {}).get("blocks")}}
        return {"ok": True}
