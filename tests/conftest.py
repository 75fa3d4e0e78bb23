"""Shared fixtures: a scrubbed environment, real receiver processes, a hook runner."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg import Server
from tests.pg import postgres_server as postgres_server  # the fixture, for every test module

with warnings.catch_warnings():
    # Starlette's TestClient prefers httpx2 and warns once when it falls back to httpx,
    # which is what this project depends on: the fallback is expected here.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", UserWarning)
    from starlette.testclient import TestClient as TestClient

BIN = Path(sys.executable).parent
FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "test-token-5f0c9a"  # a unique string: tests grep files and output for it


def sample_files() -> list[Path]:
    """Every well-formed sample payload, the captured 2.1.197 ones included."""
    ours = sorted(p for p in FIXTURES.glob("*.json") if not p.name.startswith("hostile"))
    return ours + sorted((FIXTURES / "claude-2.1.197").glob("*.json"))


def wait_for(predicate: Any, *, timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy; fail after a generous deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store database: a SQLite file's URL, or a new database on the test
    PostgreSQL server (tests/pg.py).  Tests that take it run on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: Server = request.getfixturevalue("postgres_server")
    return server.fresh_database()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's config, token or Claude Code variables."""
    for name in list(os.environ):
        if name.startswith(("HOOKCLIENT_", "CLAUDE", "XDG_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


@dataclass
class Receiver:
    """A real ``hookclient-receiver`` process on port 0."""

    proc: subprocess.Popen[bytes]
    port: int
    db: Path
    token: str | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def rows(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        result = []
        for row in rows:
            item = dict(row)
            item["envelope"] = json.loads(item["envelope"])
            item["headers"] = json.loads(item["headers"])
            result.append(item)
        return result

    def audit(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM webhook_events ORDER BY id")]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        return self.proc.returncode


def start_receiver(
    tmp_path: Path,
    *,
    token: str | None = TOKEN,
    name: str = "rx",
    database: str | None = None,
    port: int = 0,
    extra: tuple[str, ...] = (),
) -> Receiver:
    """A receiver process on its own SQLite file, or on ``database`` (a URL) when given;
    on a free port unless ``port`` is given (a restart on the one it had)."""
    port_file = tmp_path / f"{name}.port"
    port_file.unlink(missing_ok=True)
    db = tmp_path / f"{name}.db"
    env = {**os.environ, "HOOKCLIENT_TOKEN": token or ""}
    args = [str(BIN / "hookclient-receiver"), "--port", str(port), "--port-file", str(port_file)]
    args += list(extra)
    args += ["--database", database or f"sqlite:///{db}"] + ([] if token else ["--no-auth"])
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def ready() -> int | None:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"receiver exited {proc.returncode}: {err}")
        try:
            port = int(port_file.read_text())
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            return port
        except (OSError, ValueError, httpx.HTTPError):
            return None

    try:
        port = wait_for(ready)
    except BaseException:
        proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
        raise
    return Receiver(proc, port, db, token)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    rx = start_receiver(tmp_path)
    try:
        yield rx
    finally:
        rx.stop()


@dataclass
class HookRun:
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float


@dataclass
class HookEnv:
    """A config file, spool and log dir under tmp_path, and a way to run the hook."""

    root: Path
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "hookclient.toml"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def configure(self, **sections: dict[str, Any]) -> None:
        base: dict[str, dict[str, Any]] = {
            "endpoint": {"url": "http://127.0.0.1:9/hooks", "timeout": 2.0},
            "delivery": {"mode": "direct", "inline_attempts": 1, "inline_budget": 5.0},
            "queue": {"dir": str(self.spool)},
            "logs": {"dir": str(self.logs)},
        }
        for name, values in sections.items():
            base.setdefault(name, {}).update(values)
        self.settings = base
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(_toml(base))

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "HOOKCLIENT_TOKEN": TOKEN, **extra}

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        if not self.settings:
            self.configure()
        cmd = [str(BIN / "hookclient"), "send", "--config", str(self.config), *args]
        return subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env or self.env(),
        )

    def run(
        self, stdin: bytes, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> HookRun:
        start = time.monotonic()
        proc = self.popen(*args, env=env)
        out, err = proc.communicate(stdin, timeout=timeout)
        return HookRun(proc.returncode, out, err, time.monotonic() - start)

    def files(self, state: str) -> list[Path]:
        directory = self.spool / state
        return sorted(directory.glob("*.json")) if directory.exists() else []

    def bodies(self, state: str) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in self.files(state)]

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for path in sorted(self.logs.glob("*.log*")):
            if path.name.endswith(".lock"):
                continue
            for line in path.read_text().splitlines():
                lines.append(json.loads(line))
        return lines


def _toml(sections: dict[str, dict[str, Any]]) -> str:
    out = []
    for name, values in sections.items():
        out.append(f"[{name}]")
        for key, value in values.items():
            out.append(f"{key} = {json.dumps(value)}")
    return "\n".join(out) + "\n"


@pytest.fixture
def hook(tmp_path: Path) -> HookEnv:
    return HookEnv(tmp_path / "hook")


class BlackHole:
    """A TCP server on 127.0.0.1:0 that accepts, reads, and never answers."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = threading.Event()
        self.conns: list[Any] = []
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def _serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            conn.settimeout(5)
            try:
                if conn.recv(65536):
                    self.requests.set()
            except OSError:
                pass

    def close(self) -> None:
        """Stop accepting first, then close every connection, including one accepted
        while we were closing (a leaked socket is a ResourceWarning, an error here)."""
        import socket

        self.closed = True
        for sock in [self.sock, *self.conns]:  # wakes a blocking accept() or recv()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=10)
        for conn in self.conns:
            conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    server = BlackHole()
    try:
        yield server
    finally:
        server.close()


def make_envelope(n: int = 0, event: str = "PostToolUse") -> dict[str, Any]:
    from hookclient.envelope import StdinCapture, build

    payload = json.dumps({"hook_event_name": event, "session_id": "s-e2e", "n": n}).encode()
    return build(
        StdinCapture(payload, len(payload), False, False),
        event_flag=None,
        redact_keys=(),
        limit=1 << 20,
    )


def spool_events(spool_dir: Path, count: int, *, event: str = "PostToolUse") -> list[str]:
    """Write ``count`` due-now events into pending/, as spool-mode hooks would."""
    from hookclient.spool import Spool, State, new_state

    spool = Spool(spool_dir)
    ids = []
    for n in range(count):
        envelope = make_envelope(n, event)
        now = time.time()
        spool.add(envelope, new_state(now, due=now), State.PENDING)
        ids.append(envelope["requestId"])
    return ids


def daemon_pid(spool_dir: Path) -> int | None:
    try:
        return int(json.loads((spool_dir / "daemon.pid").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child still answers kill(0); reap it if it is ours
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def kill_daemons(*spools: Path) -> None:
    """Test teardown: no daemon outlives its test."""
    for spool in spools:
        pid = daemon_pid(spool)
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@dataclass
class Queued:
    """A ``queued run`` process for a HookEnv's config."""

    env: HookEnv
    proc: subprocess.Popen[bytes]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.stderr:
                self.proc.stderr.close()


_STARTED: list[Queued] = []


def start_queued(env: HookEnv, *args: str) -> Queued:
    cmd = [str(BIN / "queued"), "run", "--config", str(env.config), *args]
    proc = subprocess.Popen(cmd, env=env.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _STARTED.append(Queued(env, proc))
    return _STARTED[-1]


def queued_once(env: HookEnv, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """``queued run --once`` for a HookEnv's config, to the end; output captured."""
    return subprocess.run(
        [str(BIN / "queued"), "run", "--once", "--config", str(env.config)],
        env=env.env(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test() -> Iterator[None]:
    """A test that fails half-way still stops the daemons it started."""
    yield
    while _STARTED:
        queued = _STARTED.pop()
        if queued.proc.poll() is None:
            queued.proc.kill()
            queued.proc.wait()
        if queued.proc.stderr:
            queued.proc.stderr.close()
