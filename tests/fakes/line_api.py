"""A recording fake of the LINE Messaging API on 127.0.0.1 (port 0), for tests.

What it is: an ``http.server`` that answers the calls the bot makes (reply, push, the
loading animation, rich menu create / image / default / list / delete) as LINE does, checks
LINE's limits (5 messages, 5,000 characters, 13 quick replies, 20-character labels,
300-character postback data; Flex: altText, bubble size, text sizes, URI actions; loading
seconds 5 to 60 in steps of 5) and the bearer token, and records every request for assertions.
Pushes honour ``X-Line-Retry-Key``: a key already accepted gets 409. Reply tokens
listed in ``invalid_reply_tokens`` get 400 "Invalid reply token", like an expired one.

What it is not: a full LINE; nothing is delivered anywhere.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    """One request the fake received, and the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def message_problems(messages: Any) -> list[str]:
    """What LINE would refuse in a messages array (empty when it is fine)."""
    problems: list[str] = []
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return ["messages must be 1 to 5"]
    for i, m in enumerate(messages):
        if m.get("type") == "flex":
            problems += flex_problems(m, f"messages[{i}]")
        elif m.get("type") == "text":
            text = m.get("text") or ""
            if not text or _units(text) > 5000:
                problems.append(f"messages[{i}].text length {_units(text)}")
        else:
            problems.append(f"messages[{i}].type")
            continue
        items = (m.get("quickReply") or {}).get("items") or []
        if len(items) > 13:
            problems.append(f"messages[{i}].quickReply.items > 13")
        for j, item in enumerate(items):
            action = item.get("action") or {}
            if not 1 <= _units(action.get("label") or "") <= 20:
                problems.append(f"messages[{i}].quickReply.items[{j}].action.label")
            if action.get("type") == "postback" and not 1 <= _units(action.get("data") or "") <= 300:
                problems.append(f"messages[{i}].quickReply.items[{j}].action.data")
    return problems


# The URI schemes LINE's URI action opens, and the Flex sizes and layouts it knows.
URI_SCHEMES = ("http://", "https://", "tel:", "line://")
FLEX_SIZES = {"xxs", "xs", "sm", "md", "lg", "xl", "xxl", "3xl", "4xl", "5xl"}
MAX_BUBBLE_BYTES = 30_000  # one bubble's JSON


def _components(node: Any) -> list[dict[str, Any]]:
    """Every Flex component of a bubble (or box), depth first."""
    found = [node] if isinstance(node, dict) and "type" in node else []
    if isinstance(node, dict):
        for key in ("header", "hero", "body", "footer"):
            if key in node:
                found += _components(node[key])
        for child in node.get("contents") or []:
            found += _components(child)
    return found


def flex_problems(message: dict[str, Any], where: str) -> list[str]:
    """What LINE would refuse in a Flex message: altText (1 to 400 here), bubble size, texts, actions."""
    problems: list[str] = []
    alt = message.get("altText") or ""
    if not 1 <= _units(alt) <= 400:
        problems.append(f"{where}.altText length {_units(alt)}")
    bubble = message.get("contents") or {}
    if bubble.get("type") != "bubble":
        return problems + [f"{where}.contents.type"]
    if len(json.dumps(bubble, ensure_ascii=False).encode("utf-8")) > MAX_BUBBLE_BYTES:
        problems.append(f"{where}.contents size")
    for component in _components(bubble):
        kind = component["type"]
        if kind == "text" and not component.get("text"):
            problems.append(f"{where}: an empty text")
        if kind in ("text", "span") and component.get("size") not in FLEX_SIZES | {None}:
            problems.append(f"{where}: text size {component.get('size')}")
        if kind == "box" and component.get("layout") not in ("vertical", "horizontal", "baseline"):
            problems.append(f"{where}: box layout")
        action = component.get("action")
        if action:
            if not 1 <= _units(action.get("label") or "") <= 20:
                problems.append(f"{where}: action label {action.get('label')!r}")
            uri = action.get("uri") or ""
            if action.get("type") == "uri" and (not uri.startswith(URI_SCHEMES) or len(uri) > 1000):
                problems.append(f"{where}: action uri {uri[:40]!r}")
    return problems


@dataclass
class FakeLineApi:
    """Start with ``FakeLineApi.start()`` (or as a context manager); ``url`` is its base URL."""

    access_token: str = "test-access-token"
    invalid_reply_tokens: set[str] = field(default_factory=set)
    push_status: int | None = None  # answer every push with this status instead (e.g. 500)
    loading_status: int | None = None  # answer every loading-animation call with this status instead
    outage_until: float = 0.0  # until then (time.monotonic()), replies and pushes answer outage_status
    outage_status: int = 503
    outage_retry_after: str | None = None  # the Retry-After header sent with it, if any
    requests: list[Recorded] = field(default_factory=list)
    accepted_retry_keys: set[str] = field(default_factory=set)
    rich_menus: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_rich_menu: str | None = None
    _server: ThreadingHTTPServer | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def start(cls, **kwargs: Any) -> FakeLineApi:
        fake = cls(**kwargs)
        fake._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
        fake._server.daemon_threads = True
        threading.Thread(target=fake._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return fake

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeLineApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- assertions -------------------------------------------------------------------------

    def outage(self, seconds: float, status: int = 503, retry_after: str | None = None) -> None:
        """For the next ``seconds``, replies and pushes answer ``status`` (LINE's message API down
        for a moment: 503; or limiting: 429), with ``Retry-After: retry_after`` when given."""
        self.outage_status, self.outage_retry_after = status, retry_after
        self.outage_until = time.monotonic() + seconds

    def calls(self, path: str) -> list[Recorded]:
        """Requests to ``path`` (exact, or a regex when it contains "(" or "["), in order."""
        with self._cond:
            if any(ch in path for ch in "(["):
                return [r for r in self.requests if re.fullmatch(path, r.path)]
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Recorded]:
        """Wait until ``path`` got at least ``count`` requests; returns them (fails on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.calls(path)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{path}: {len(self.calls(path))} of {count} requests after {timeout}s; "
                        f"got {[r.path for r in self.requests]}"
                    )
                self._cond.wait(left)
            return self.calls(path)

    def sent_messages(self) -> list[dict[str, Any]]:
        """Every message delivered (reply and push, accepted ones only), in order, as sent."""
        out: list[dict[str, Any]] = []
        for r in list(self.requests):
            if r.path in ("/v2/bot/message/reply", "/v2/bot/message/push") and r.status == 200:
                out += r.json["messages"]
        return out

    def sent_texts(self) -> list[str]:
        """The text of every message delivered (a Flex card's altText), in order."""
        return [m.get("text") or m.get("altText") for m in self.sent_messages()]

    # -- answering ----------------------------------------------------------------------------

    def answer(self, rec: Recorded) -> tuple[int, dict[str, Any], dict[str, str]]:
        if rec.header("Authorization") != f"Bearer {self.access_token}":
            return (
                401,
                {
                    "message": "Authentication failed. Confirm that the access token in the authorization "
                    "header is valid."
                },
                {},
            )
        path, method = rec.path, rec.method
        if path in ("/v2/bot/message/reply", "/v2/bot/message/push") and time.monotonic() < self.outage_until:
            headers = {"Retry-After": self.outage_retry_after} if self.outage_retry_after is not None else {}
            return self.outage_status, {"message": "fake outage"}, headers
        if method == "POST" and path == "/v2/bot/message/reply":
            body = rec.json
            if body.get("replyToken") in self.invalid_reply_tokens:
                return 400, {"message": "Invalid reply token"}, {}
            problems = message_problems(body.get("messages"))
            if problems:
                return 400, {"message": "The request body has 1 error(s)", "details": problems}, {}
            return 200, {"sentMessages": [{"id": uuid.uuid4().hex} for _ in body["messages"]]}, {}
        if method == "POST" and path == "/v2/bot/message/push":
            body = rec.json
            problems = message_problems(body.get("messages"))
            if problems or not body.get("to"):
                return 400, {"message": "The request body has error(s)", "details": problems}, {}
            if self.push_status is not None:
                return self.push_status, {"message": "fake failure"}, {}
            key = rec.header("X-Line-Retry-Key")
            if key is not None:
                try:
                    uuid.UUID(key)
                except ValueError:
                    return 400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"}, {}
                if key in self.accepted_retry_keys:
                    return (
                        409,
                        {"message": "The retry key is already accepted", "sentMessages": [{"id": "already"}]},
                        {"x-line-accepted-request-id": "req-1"},
                    )
                self.accepted_retry_keys.add(key)
            return 200, {"sentMessages": [{"id": uuid.uuid4().hex} for _ in body["messages"]]}, {}
        if method == "POST" and path == "/v2/bot/chat/loading/start":
            body = rec.json
            seconds = body.get("loadingSeconds", 20)
            if not body.get("chatId") or not isinstance(seconds, int) or not 5 <= seconds <= 60 or seconds % 5:
                return 400, {"message": "The request body has error(s)"}, {}
            if self.loading_status is not None:
                return self.loading_status, {"message": "fake failure"}, {}
            return 202, {}, {}
        if method == "POST" and path == "/v2/bot/richmenu":
            menu = rec.json
            size = menu.get("size") or {}
            if (size.get("width"), size.get("height")) not in ((2500, 843), (2500, 1686)) or not menu.get("areas"):
                return 400, {"message": "invalid rich menu"}, {}
            menu_id = f"richmenu-{uuid.uuid4().hex}"
            self.rich_menus[menu_id] = {**menu, "richMenuId": menu_id}
            return 200, {"richMenuId": menu_id}, {}
        if method == "GET" and path == "/v2/bot/richmenu/list":
            return 200, {"richmenus": list(self.rich_menus.values())}, {}
        m = re.fullmatch(r"/v2/bot/richmenu/([\w-]+)/content", path)
        if method == "POST" and m:
            if m.group(1) not in self.rich_menus:
                return 404, {"message": "Not found"}, {}
            if rec.header("Content-Type") != "image/png" or not rec.body.startswith(b"\x89PNG\r\n\x1a\n"):
                return 400, {"message": "unsupported image"}, {}
            if len(rec.body) > 1024 * 1024:
                return 400, {"message": "image too large"}, {}
            return 200, {}, {}
        m = re.fullmatch(r"/v2/bot/user/all/richmenu/([\w-]+)", path)
        if method == "POST" and m:
            if m.group(1) not in self.rich_menus:
                return 400, {"message": "richmenu not found"}, {}
            self.default_rich_menu = m.group(1)
            return 200, {}, {}
        m = re.fullmatch(r"/v2/bot/richmenu/([\w-]+)", path)
        if method == "DELETE" and m:
            if self.rich_menus.pop(m.group(1), None) is None:
                return 404, {"message": "Not found"}, {}
            return 200, {}, {}
        return 404, {"message": "Not found"}, {}


def _handler_for(fake: FakeLineApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            rec = Recorded(
                self.command,
                self.path.split("?", 1)[0],
                dict(self.headers.items()),
                self.rfile.read(length) if length else b"",
            )
            try:
                status, payload, headers = fake.answer(rec)
            except Exception as exc:  # a broken request body: LINE would answer 400
                status, payload, headers = 400, {"message": f"fake could not read the request: {exc}"}, {}
            rec.status = status
            with fake._cond:  # recorded before answering, so a caller that got its answer sees the record
                fake.requests.append(rec)
                fake._cond.notify_all()
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-line-request-id", uuid.uuid4().hex)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    return Handler
