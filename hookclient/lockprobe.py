"""Is a daemon holding the spool lock?  Asked by the hook on every auto-mode event.

A non-blocking shared ``flock`` on ``daemon.lock``: it fails at once while the daemon
holds its exclusive lock (filelock takes ``flock(LOCK_EX)`` on POSIX), and succeeds,
to be dropped at once, when nobody does.  It costs a few microseconds and imports
nothing heavy, which is why the hook asks this and not filelock.  A daemon starting at
that very instant waits for the lock (``queued.daemon.LOCK_WAIT``) instead of failing.
"""

from __future__ import annotations

import os

from hookclient import jsoncodec

#: A daemon's pid file is a few hundred bytes; anything larger is not one.
PIDFILE_MAX = 65536


def holder(spool_dir: str) -> dict[str, object] | None:
    """The running daemon's ``daemon.pid`` (pid, fingerprint, ...), or None when it is
    missing or unreadable.  Read by the hook only when the lock is held: one small
    file, parsed with :mod:`hookclient.jsoncodec` (no json import)."""
    try:
        fd = os.open(os.path.join(spool_dir, "daemon.pid"), os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    except OSError:
        return None
    try:
        info = jsoncodec.loads(os.read(fd, PIDFILE_MAX))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)
    return info if isinstance(info, dict) else None


def replaceable(info: dict[str, object] | None, fingerprint: str, has_token: bool) -> bool:
    """Should a hook (or a queue command) whose configuration has ``fingerprint`` stop
    the daemon described by ``info`` (its pid file) and start one of its own?

    Only a daemon a hook started (``autostarted``): one run by hand or by a service
    manager is the user's, and a service stopped with exit 0 is not restarted.  Only
    when the fingerprints differ.  And never for a configuration without a token
    when the daemon has one: that is a hook whose environment lacks the token (Claude
    Code started from a shell without it), not a fix."""
    if info is None or info.get("autostarted") is not True:
        return False
    if info.get("fingerprint") == fingerprint:
        return False
    return has_token or not info.get("token")


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO in its place must not hang the hook


def lock_held(path: str | os.PathLike[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no probe, assume no daemon
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # no lock file: no daemon ever ran here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
