"""The running daemon, seen from outside: its pid file, stopping it, waking it, and
making sure one delivers with this configuration.

A daemon delivers with the endpoint, token and signing secret of the configuration it
was started with.  It writes their :func:`hookclient.config.fingerprint` (never the
secrets) into ``daemon.pid``; a hook or an admin command whose fingerprint differs
starts ``queued run --replace``, which stops the old daemon and takes the lock.  So
after fixing a token or a URL, the next hook, or ``queued replay-failed``, ``flush``
or ``adopt``, is enough: nobody has to find and kill the old process.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from hookclient.autostart import is_queued
from hookclient.config import Config, fingerprint
from hookclient.errors import StopFailed
from hookclient.lockprobe import lock_held, replaceable

#: How often a waiting command looks whether the daemon is gone.
POLL = 0.05
#: Beyond its request timeout, how long a stopping daemon gets before SIGKILL.
STOP_GRACE = 10.0


def read_pidfile(spool_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((spool_dir / "daemon.pid").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def daemon_running(spool_dir: Path) -> dict[str, Any] | None:
    """The running daemon's pid file, if a daemon holds the lock (else None)."""
    if not lock_held(spool_dir / "daemon.lock"):
        return None
    return read_pidfile(spool_dir) or {"pid": None}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically (0600).  Raises OSError (a full disk) and leaves no
    temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


#: ``queued flush``'s request to the daemon: {"at": wall time, "ids": [prefixes] or null}
FLUSH_FILE = "flush.json"


class FlushRequest:
    """Pending events whose due time was set before ``at`` (and whose requestId starts
    with one of ``ids``, when given) are due now."""

    def __init__(self, at: float, ids: list[str] | None) -> None:
        self.at = at
        self.ids = ids

    def matches(self, request_id: str) -> bool:
        return self.ids is None or any(request_id.startswith(i) for i in self.ids)


def request_flush(spool_dir: Path, at: float, ids: list[str] | None) -> None:
    write_json(spool_dir / FLUSH_FILE, {"at": at, "ids": ids})


def read_flush(spool_dir: Path) -> FlushRequest | None:
    try:
        body = json.loads((spool_dir / FLUSH_FILE).read_text())
        ids = body.get("ids")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            return None
        return FlushRequest(float(body["at"]), ids)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def same_config(info: dict[str, Any] | None, config: Config) -> bool:
    """Whether the daemon of ``info`` (its pid file) delivers as ``config`` would.  No
    pid file says nothing (a daemon on a full disk may have none): taken as the same."""
    if info is None or info.get("pid") is None:
        return True
    return info.get("fingerprint") == fingerprint(config.endpoint, config.transcripts.sync)


def replaceable_by(info: dict[str, Any] | None, config: Config) -> bool:
    """The rule a hook applies (:func:`hookclient.lockprobe.replaceable`): autostarted,
    another configuration, and not a token-less one replacing one with a token."""
    endpoint = config.endpoint
    return replaceable(info, fingerprint(endpoint, config.transcripts.sync), bool(endpoint.token))


def stop(
    spool_dir: Path, *, wait: float, sig: int = signal.SIGTERM, kill_after: bool = True
) -> dict[str, Any] | None:
    """Signal the spool's daemon (SIGTERM, or the retire signal) and wait until it has
    released the lock and exited.

    Returns its pid file (None when no daemon runs).  A daemon still there after
    ``wait`` seconds (a delivery stuck past its timeout) gets SIGKILL when
    ``kill_after``: that is safe, the next start moves what it held in processing/
    back to pending/.  Raises :class:`StopFailed` when it cannot be stopped.
    """
    info = daemon_running(spool_dir)
    if info is None:
        return None
    pid = _pid_of(info, spool_dir)
    _signal(pid, sig)
    if _wait_gone(spool_dir, pid, wait):
        return info
    if not kill_after:
        raise StopFailed(f"queued (pid {pid}) is still running after {wait:g} s")
    _signal(pid, signal.SIGKILL)
    if _wait_gone(spool_dir, pid, STOP_GRACE):
        info["killed"] = True
        return info
    raise StopFailed(f"queued (pid {pid}) did not exit, even after SIGKILL")


def _pid_of(info: dict[str, Any], spool_dir: Path) -> int:
    """The daemon's pid, checked to be a queued process (a stale pid file may name a
    pid the system has given to another program since)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        raise StopFailed(
            f"a daemon holds {spool_dir / 'daemon.lock'} but its daemon.pid is missing: "
            "find it with `fuser` or `lsof` on that file and stop it by hand"
        )
    if not is_queued(pid):
        raise StopFailed(
            f"{spool_dir / 'daemon.pid'} names pid {pid}, which is not a queued process: "
            "find the daemon with `fuser` or `lsof` on daemon.lock and stop it by hand"
        )
    return pid


def wake(info: dict[str, Any]) -> bool:
    """SIGUSR1: the daemon re-reads pending/ and starts on what is due (``flush``)."""
    pid = info.get("pid")
    sig = getattr(signal, "SIGUSR1", None)
    if not isinstance(pid, int) or pid <= 0 or sig is None or not is_queued(pid):
        return False
    return _signal(pid, sig)


def _autostarts(config: Config) -> bool:
    return config.delivery.autostart and config.delivery.mode == "auto"


def retire_stale(config: Config) -> dict[str, Any] | None:
    """Before events are put in pending/ or made due (replay, flush, adopt): stop this
    spool's daemon if a hook would replace it (it was autostarted with another
    endpoint, token or signing secret), so that it does not send them the old way.
    Returns its pid file, or None.  A daemon run by hand or by a service is left
    alone: :func:`ensure_delivering` says to restart it."""
    info = daemon_running(Path(config.queue.dir))
    if not _autostarts(config) or not replaceable_by(info, config):
        return None
    retire = getattr(signal, "SIGUSR2", signal.SIGTERM)
    stop(Path(config.queue.dir), wait=config.endpoint.timeout + STOP_GRACE, sig=retire)
    return info


def ensure_delivering(
    config: Config, config_path: str | None, retired: dict[str, Any] | None = None
) -> str:
    """After events were put in pending/: make sure a daemon with *this* configuration
    delivers them now.  Returns one line saying what it did."""
    from hookclient import autostart

    spool = Path(config.queue.dir)
    if not config.endpoint.url:
        return "no [endpoint] url is configured: nothing will deliver them until one is"
    info = daemon_running(spool)
    if info is not None:
        return _running(info, config)
    if not _autostarts(config):
        return "no daemon runs: start one with `queued run` (or `queued run --once`)"
    try:
        pid = autostart.start(spool, config.queue.idle_exit, config_path)
    except OSError as exc:
        return f"cannot start queued ({exc.strerror or exc}): run `queued run --once`"
    if pid is None:
        return "a daemon is being started by a hook; it delivers them"
    if retired is not None:
        return (
            f"queued (pid {retired.get('pid')}) delivered with another endpoint, token or "
            f"signing secret: stopped it, started pid {pid} in its place"
        )
    return f"started queued (pid {pid}) to deliver them"


def _running(info: dict[str, Any], config: Config) -> str:
    pid = info.get("pid")
    who = f"queued (pid {pid})" if pid else "a queued whose daemon.pid is missing"
    if not same_config(info, config):
        how = (
            "`queued restart`"
            if info.get("autostarted")
            else "restart its service, or `queued restart`"
        )
        return f"{who} delivers with another endpoint, token or signing secret: {how}"
    return f"{who} {'starts on them now' if wake(info) else 'delivers them'}"


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        raise StopFailed(f"queued (pid {pid}) is another user's: not signalled") from None
    return True


def _wait_gone(spool_dir: Path, pid: int, seconds: float) -> bool:
    """Until the lock is free and the process has exited (not only released it)."""
    deadline = time.monotonic() + seconds
    while lock_held(spool_dir / "daemon.lock") or _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


def wait_running(spool_dir: Path, pid: int, seconds: float) -> bool:
    """Until the daemon ``pid`` holds the lock (False if it exited or took too long)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = daemon_running(spool_dir)
        if info is not None and info.get("pid") == pid:
            return True
        if not _alive(pid):
            return False
        time.sleep(POLL)
    return False


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (another user's counts: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int) -> bool:
    """:func:`pid_alive`, and not a zombie (an exited child not yet reaped)."""
    if not pid_alive(pid):
        return False
    try:  # a zombie (an exited child of ours, not yet reaped) has exited
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
