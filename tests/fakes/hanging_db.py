"""A fake database server on 127.0.0.1 that accepts connections and never answers.

It reads nothing and writes nothing: a client's connection is established (the kernel
completes the TCP handshake and acknowledges the bytes sent), then hangs for as long as the
client is willing to wait. Point a ``postgresql+psycopg://`` URL at ``port`` to see what the
bot does with a database that has hung.
"""

from __future__ import annotations

import socket
import threading


class HangingDatabase:
    """Listens on 127.0.0.1, port 0 (read it back from ``port``); ``close()`` stops it."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-db", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://nanbyo@127.0.0.1:{self.port}/nanbyo"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)  # kept open, never read, never answered

    def close(self) -> None:
        self._closed.set()
        # Closing the listener does not wake a thread blocked in accept(): one last connection does.
        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        self._thread.join(5)
        self._listener.close()
        for conn in self._held:
            conn.close()
