"""A TCP proxy on 127.0.0.1 in front of a real database server, that can hang or vanish on demand.

``hang()`` keeps every connection open but stops relaying bytes (and relays nothing on new ones):
what a PostgreSQL server stuck on a lock, a full disk or a dead network path looks like to its
clients. ``vanish()`` closes the listener and every connection: connection refused from then on.
``resume()`` relays again (after ``hang``). The database behind it is real; only the wire is played.
"""

from __future__ import annotations

import select
import socket
import threading


class DatabaseProxy:
    def __init__(self, host: str = "127.0.0.1", port: int = 5432) -> None:
        self.target = (host, port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._relaying = threading.Event()
        self._relaying.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="db-proxy", daemon=True).start()

    def url(self, database_url: str) -> str:
        """``database_url`` (a PostgreSQL URL to ``target``) pointed at this proxy instead."""
        host, port = self.target
        return database_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{self.port}/")

    def hang(self) -> None:
        self._relaying.clear()

    def resume(self) -> None:
        self._relaying.set()

    def vanish(self) -> None:
        self._closed.set()
        self._relaying.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass

    close = vanish

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._closed.is_set():
                if not self._relaying.is_set():
                    self._relaying.wait(0.1)  # hung: bytes stay in the kernel's buffers, unanswered
                    continue
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass
