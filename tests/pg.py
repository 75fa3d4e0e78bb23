"""A real PostgreSQL server for the tests, started by them: ``initdb`` in a temporary
directory, ``pg_ctl start`` on a free port, stopped at the end of the session.

Debian's binaries (``/usr/lib/postgresql/<version>/bin``, the newest) or whatever
``initdb`` is on PATH.  PostgreSQL refuses to run as root, so as root the server runs as
the ``postgres`` user (``runuser``), which owns the data directory.  Each test gets a
database of its own (``CREATE DATABASE``), so tests never see each other's rows.

``HOOKCLIENT_TEST_POSTGRES=postgresql://user:pass@host:port/db`` uses an existing server
instead (each test still gets its own database, created through that URL).  Without
PostgreSQL the tests on it are skipped with the reason, except under CI (``CI`` set),
where a missing server is an error: .ci/run installs it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

import pytest

SUPERUSER = "hookclient"
_numbers = count(1)


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


class Server:
    """One running server: its admin URL and how to make a fresh database on it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def fresh_database(self) -> str:
        """A new, empty database on this server; its URL (postgresql://...)."""
        import psycopg

        name = f"hk_test_{os.getpid()}_{next(_numbers)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"


def _as_server_user(argv: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


def start(root: Path, *, durable: bool = False) -> tuple[Server, list[str]]:
    """initdb + pg_ctl start in ``root``: the server, and the command that stops it.
    Tests run it with fsync off (nothing there must survive a power cut); ``durable``
    keeps PostgreSQL's default, for benchmarks."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL binaries (apt-get install -y postgresql)")
    owner = "postgres" if os.geteuid() == 0 else None
    data, sockets = root / "data", root / "sockets"
    for directory in (root, sockets):
        directory.mkdir(parents=True, exist_ok=True)
    if owner:
        entry = pwd.getpwnam(owner)
        for directory in (root, sockets):
            os.chown(directory, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    subprocess.run(
        _as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            owner,
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
    if not durable:
        options += " -c fsync=off"
    subprocess.run(
        _as_server_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            owner,
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stop = _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], owner)
    return Server(f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"), stop


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """The session's PostgreSQL server (see the module docstring)."""
    existing = os.environ.get("HOOKCLIENT_TEST_POSTGRES")
    if existing:
        yield Server(existing)
        return
    root = Path(tempfile.mkdtemp(prefix="hookclient-pg-"))
    try:
        server, stop = start(root)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        reason = f"PostgreSQL unavailable: {exc} {detail.decode(errors='replace')[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        _wait_ready(server)
        yield server
    finally:
        subprocess.run(stop, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: Server, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(server.admin_url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def bench_database(prefix: str) -> Iterator[str]:
    """A fresh database on a throwaway durable server (fsync on, as in production), for
    the benches; the server is stopped afterwards."""
    server, stop = start(Path(tempfile.mkdtemp(prefix=prefix)), durable=True)
    _wait_ready(server)
    try:
        yield server.fresh_database()
    finally:
        subprocess.run(stop, check=False, capture_output=True)
