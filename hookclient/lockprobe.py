"""Is a daemon holding the spool lock?  Asked by the hook on every auto-mode event.

A non-blocking shared ``flock`` on ``daemon.lock``: it fails at once while the daemon
holds its exclusive lock (filelock takes ``flock(LOCK_EX)`` on POSIX), and succeeds,
to be dropped at once, when nobody does.  It costs a few microseconds and imports
nothing heavy, which is why the hook asks this and not filelock.  A daemon starting at
that very instant waits for the lock (``queued.daemon.LOCK_WAIT``) instead of failing.
"""

from __future__ import annotations

import os


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
