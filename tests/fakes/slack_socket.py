"""A fake Slack Socket Mode endpoint: a small WebSocket server on 127.0.0.1, port 0.

Slack's Socket Mode works like this: the app calls ``apps.connections.open`` with its app-level
token and gets a ``wss://`` URL; it opens a WebSocket there; Slack sends ``hello``, then one
envelope per event (``{"envelope_id", "type": "events_api", "payload": <the Events API body>}``)
and the app acknowledges each by sending ``{"envelope_id": ...}`` back. Point
``FakeSlackAPI.socket_mode_url`` at ``fake.url`` so that ``apps.connections.open`` hands it out.

Only what that needs is implemented (RFC 6455): the opening handshake, text frames, ping/pong and
close; frames from the client are masked as the RFC requires, ours are not. Plain ``ws://``:
slack_sdk's built-in client connects without TLS to any port but 443.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import uuid
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class FakeSocketMode:
    """Start with ``FakeSocketMode()`` (it listens at once); ``close()`` when done."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Condition()
        self._conns: list[socket.socket] = []
        self.acks: dict[str, dict[str, Any]] = {}  # envelope id -> what the app sent back
        self.connections = 0  # handshakes completed
        self.closed_by_app = 0  # close frames received
        self._stop = False
        self._send_lock = threading.Lock()  # frames from the test's thread and the session's must not interleave
        threading.Thread(target=self._accept, name="fake-socket-mode", daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.getsockname()[1]}/link/?ticket=fake"

    # -- what tests call ----------------------------------------------------------------------

    def wait_connected(self, timeout: float = 30.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self.connections > 0, timeout):
                raise AssertionError(f"no Socket Mode connection within {timeout}s")

    def send_event(self, body: dict[str, Any], retry_attempt: int = 0) -> str:
        """Send an Events API body as an ``events_api`` envelope; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        self._send_all(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": "events_api",
                    "accepts_response_payload": False,
                    "retry_attempt": retry_attempt,
                    "retry_reason": "timeout" if retry_attempt else "",
                    "payload": body,
                }
            )
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        with self._lock:
            if not self._lock.wait_for(lambda: envelope_id in self.acks, timeout):
                raise AssertionError(f"envelope {envelope_id} not acknowledged within {timeout}s")
            return self.acks[envelope_id]

    def wait_closed(self, timeout: float = 10.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self.closed_by_app > 0 or not self._conns, timeout)

    def close(self) -> None:
        self._stop = True
        self._server.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except OSError:
                    pass

    # -- inside ---------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            headers = {}
            for line in request.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + _GUID).encode()).digest()).decode()
            conn.sendall(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
                ).encode()
            )
            with self._lock:
                self._conns.append(conn)
                self.connections += 1
                self._lock.notify_all()
            self._send(
                conn,
                TEXT,
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": 1,
                        "connection_info": {"app_id": "A1"},
                        "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                    }
                ).encode(),
            )
            self._read(conn)
        except (OSError, ValueError, KeyError):
            pass
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
                self._lock.notify_all()
            conn.close()

    def _read(self, conn: socket.socket) -> None:
        while True:
            opcode, payload = _read_frame(conn)
            if opcode == TEXT:
                message = json.loads(payload.decode("utf-8"))
                if "envelope_id" in message:
                    with self._lock:
                        self.acks[message["envelope_id"]] = message
                        self._lock.notify_all()
            elif opcode == PING:
                self._send(conn, PONG, payload)
            elif opcode == CLOSE:
                with self._lock:
                    self.closed_by_app += 1
                    self._lock.notify_all()
                self._send(conn, CLOSE, payload[:2])
                return

    def _send_all(self, text: str) -> None:
        with self._lock:
            conns = list(self._conns)
        if not conns:
            raise AssertionError("no Socket Mode connection to send on")
        self._send(conns[-1], TEXT, text.encode("utf-8"))

    def _send(self, conn: socket.socket, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            _send_frame(conn, opcode, payload)


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def _read_frame(conn: socket.socket) -> tuple[int, bytes]:
    first, second = _recv_exactly(conn, 2)
    opcode, masked, length = first & 0x0F, second & 0x80, second & 0x7F
    if length == 126:
        length = struct.unpack("!H", _recv_exactly(conn, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", _recv_exactly(conn, 8))[0]
    mask = _recv_exactly(conn, 4) if masked else b"\0\0\0\0"
    payload = bytearray(_recv_exactly(conn, length))
    for i in range(length):
        payload[i] ^= mask[i % 4]
    return opcode, bytes(payload)


def _send_frame(conn: socket.socket, opcode: int, payload: bytes) -> None:
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([n])
    elif n < 65536:
        header += bytes([126]) + struct.pack("!H", n)
    else:
        header += bytes([127]) + struct.pack("!Q", n)
    conn.sendall(header + payload)
