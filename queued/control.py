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

from hookclient.config import Config, fingerprint
from hookclient.errors import HookclientError
from hookclient.lockprobe import lock_held

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


def same_config(info: dict[str, Any] | None, config: Config) -> bool:
    """Whether the daemon of ``info`` (its pid file) delivers as ``config`` would.  No
    pid file says nothing (a daemon on a full disk may have none): taken as the same."""
    if info is None or info.get("pid") is None:
        return True
    return info.get("fingerprint") == fingerprint(config.endpoint)


def stop(spool_dir: Path, *, wait: float, kill_after: bool = True) -> dict[str, Any] | None:
    """SIGTERM the spool's daemon and wait until it has released the lock.

    Returns its pid file (None when no daemon runs).  A daemon still holding the lock
    after ``wait`` seconds (a delivery stuck past its timeout) gets SIGKILL when
    ``kill_after``: that is safe, the next start moves what it held in processing/
    back to pending/.  Raises :class:`StopFailed` when it cannot be stopped.
    """
    info = daemon_running(spool_dir)
    if info is None:
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        raise StopFailed(
            f"a daemon holds {spool_dir / 'daemon.lock'} but its daemon.pid is missing: "
            "find it with `fuser` or `lsof` on that file and stop it by hand"
        )
    _signal(pid, signal.SIGTERM)
    if _wait_released(spool_dir, wait):
        return info
    if not kill_after:
        raise StopFailed(f"queued (pid {pid}) is still running after {wait:g} s")
    _signal(pid, signal.SIGKILL)
    if _wait_released(spool_dir, STOP_GRACE):
        info["killed"] = True
        return info
    raise StopFailed(f"queued (pid {pid}) did not exit, even after SIGKILL")


class StopFailed(HookclientError):
    """The daemon could not be stopped; the message says what to do."""


def wake(info: dict[str, Any]) -> bool:
    """SIGUSR1: the daemon re-reads pending/ and starts on what is due (``flush``)."""
    pid = info.get("pid")
    sig = getattr(signal, "SIGUSR1", None)
    if not isinstance(pid, int) or pid <= 0 or sig is None:
        return False
    return _signal(pid, sig)


def _autostarts(config: Config) -> bool:
    return config.delivery.autostart and config.delivery.mode == "auto"


def retire_stale(config: Config) -> dict[str, Any] | None:
    """Before events are put in pending/ (replay, flush, adopt): stop this spool's
    daemon if it delivers with another endpoint, token or signing secret, so that it
    does not grab them and send them the old way.  Returns its pid file, or None.
    Without autostart the daemon is someone else's to restart (a service): left alone.
    """
    info = daemon_running(config.queue.dir)
    if info is None or same_config(info, config) or not _autostarts(config):
        return None
    stop(config.queue.dir, wait=config.endpoint.timeout + STOP_GRACE)
    return info


def ensure_delivering(
    config: Config, config_path: str | None, retired: dict[str, Any] | None = None
) -> str:
    """After events were put in pending/: make sure a daemon with *this* configuration
    delivers them now.  Returns one line saying what it did."""
    from hookclient import daemon as autostart

    spool = config.queue.dir
    if not config.endpoint.url:
        return "no [endpoint] url is configured: nothing will deliver them until one is"
    info = daemon_running(spool)
    if info is not None:
        if not same_config(info, config):
            return (
                f"queued (pid {info.get('pid')}) delivers with another endpoint, token or "
                "signing secret: restart it (`queued restart`, or its service)"
            )
        woken = wake(info)
        return f"queued (pid {info.get('pid')}) {'starts on them now' if woken else 'runs'}"
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


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _wait_released(spool_dir: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while lock_held(spool_dir / "daemon.lock"):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True
