"""A loopback TCP proxy that can lose one reply: the request reaches the server, the
answer never reaches the client. It makes the "stored, but the client does not know"
fault real, which only an idempotency key can make safe to retry."""

from __future__ import annotations

import socket
import threading
from typing import List


class LosingProxy:
    """Forwards connections to ``target_port``; after a request line containing
    ``lose_after`` goes through, the next reply on that connection is dropped and the
    connection closed (once)."""

    def __init__(self, target_port: int, lose_after: bytes) -> None:
        self.target_port = target_port
        self.lose_after = lose_after
        self.lost = 0
        self._armed_once = False
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._sockets: List[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            state = {"armed": False}
            threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, state), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, state: dict) -> None:
        try:
            while True:
                data = client.recv(1 << 16)
                if not data:
                    break
                with self._lock:
                    if not self._armed_once and self.lose_after in data:
                        self._armed_once = True
                        state["armed"] = True
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _shut(upstream)

    def _down(self, upstream: socket.socket, client: socket.socket, state: dict) -> None:
        try:
            while True:
                data = upstream.recv(1 << 16)
                if not data:
                    break
                if state["armed"]:
                    with self._lock:
                        self.lost += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
