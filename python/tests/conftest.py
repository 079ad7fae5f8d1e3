"""Test fixtures: a real pipeproof server on a free loopback port with a fresh data directory.

The binary is taken from ``PIPEPROOF_BIN`` (default ``target/debug/pipeproof`` under the
repository root); the tests build nothing themselves (``scripts/test-python.sh`` does).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest
import requests

import pipeproof as pp

REPO = Path(__file__).resolve().parents[2]
TOKEN = "pp-test-admin-token-0123456789"


def server_binary() -> Path:
    path = Path(os.environ.get("PIPEPROOF_BIN") or REPO / "target" / "debug" / "pipeproof")
    if not path.is_file():
        pytest.exit(
            f"the pipeproof server binary {path} does not exist: build it with "
            "`cargo build -p pipeproof-server` or set PIPEPROOF_BIN",
            returncode=2,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process; can be stopped and started again on the same port and data."""

    def __init__(
        self, data_dir: Path, port: Optional[int] = None, args: Sequence[str] = ()
    ) -> None:
        self.binary = server_binary()
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = TOKEN
        self.log = data_dir.parent / f"server-{self.port}.log"
        self.args = list(args)
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ, PIPEPROOF_ADMIN_TOKEN=self.token)
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--bind",
                f"127.0.0.1:{self.port}",
                *self.args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not answer /healthz in {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, **kwargs) -> pp.Client:
        kwargs.setdefault("token", self.token)
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("backoff", 0.05)
        kwargs.setdefault("timeout", 30.0)
        return pp.Client(self.url, **kwargs)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server shared by the session's tests."""
    root = tmp_path_factory.mktemp("server")
    srv = Server(root / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, for tests that stop and restart it."""
    srv = Server(tmp_path / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[pp.Client]:
    """A client of the shared server with the admin token."""
    with server.client() as c:
        yield c
