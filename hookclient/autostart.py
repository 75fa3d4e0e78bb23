"""Starting the ``queued`` daemon from a hook, detached and cheaply.

The hook must exit at once and must not hold the Claude Code session: the CLI waits
until the hook's stdout and stderr close, so the daemon gets /dev/null for all three
standard streams, a session of its own (no terminal signals from Claude Code's process
group), and no other descriptors (Python opens everything close-on-exec).  It uses
``os.posix_spawn`` rather than ``subprocess``, whose import alone costs a hook more
than the spawn.

Many hooks may fire at once with no daemon running.  ``daemon.starting``, created with
O_EXCL, lets only the first of them spawn one; the daemon removes it once it holds
the lock.  Should several start anyway, the lock lets one win and the rest exit 0.
"""

from __future__ import annotations

import os
import sys
import time

#: A start marker older than this is from a daemon that never came up; try again.
STARTING_TTL = 10.0


def queued_script() -> str:
    """The ``queued`` script installed next to this interpreter."""
    return os.path.join(os.path.dirname(sys.executable), "queued")


#: The CPU priority (nice) of a daemon a hook starts: below the session it serves, so its
#: deliveries give way to Claude Code and the next hook on a busy machine.  Measured in
#: the real CLI (bench/session.py, the same runs, 2026-12-02): added per hook against an
#: empty Python hook, nice 10 gave 0.95x, 0.86x, 1.10x, 1.11x and 1.45x; nice 0 gave
#: 1.08x, 1.24x, 1.03x, 1.21x and 2.51x (BENCHMARKS.md "Session cost").
AUTOSTART_NICENESS = 10


def start(
    spool_dir: str | os.PathLike[str],
    idle_exit: float,
    config: str | None,
    *,
    replace: bool = False,
    claimed: bool = False,
) -> int | None:
    """Spawn ``queued run --idle-exit N --autostarted --nice 10``; its pid, or None if another
    hook is already starting one.  Raises OSError when it cannot be started.

    ``replace``: a daemon runs on this spool with another endpoint, token or signing
    secret (its fingerprint differs); the new one (``--replace``) stops it and takes
    the lock, so that the hook itself never waits for the old one to finish.
    ``claimed``: the caller holds the start marker already (:func:`retire`)."""
    script = queued_script()
    marker = os.path.join(spool_dir, "daemon.starting")
    if not os.access(script, os.X_OK):
        raise FileNotFoundError(2, f"no queued script at {script}")
    if not claimed and not _claim_start(marker):
        return None
    argv = [str(script), "run", "--idle-exit", f"{idle_exit:g}", "--autostarted"]
    argv += ["--nice", str(AUTOSTART_NICENESS)]
    if replace:
        argv.append("--replace")
    if config:
        argv += ["--config", os.path.abspath(config)]
    devnull = os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
    ]
    try:
        return os.posix_spawn(
            str(script), argv, dict(os.environ), file_actions=actions, setsid=True
        )
    except OSError:
        try:  # noqa: SIM105 - the hook's path imports no contextlib
            os.unlink(marker)
        except FileNotFoundError:
            pass
        raise


#: Sent to a daemon to retire it: stop claiming, finish in-flight deliveries, exit 0.
#: Unlike SIGTERM, a second one never makes it exit at once (queued/daemon.py).
RETIRE_SIGNAL = "SIGUSR2"


def retire(spool_dir: str, pid: object) -> bool:
    """Ask a daemon with another configuration to stop (SIGUSR2: it claims nothing
    more and exits once its in-flight deliveries end), before this hook spools its
    event, so that the event is not sent with the old token.  Only the hook that wins
    the start marker does it (it then starts the replacement with ``claimed``); False
    when another hook is already replacing it, or ``pid`` is not a queued process."""
    if not isinstance(pid, int) or pid <= 0 or not is_queued(pid):
        return False
    if not _claim_start(os.path.join(spool_dir, "daemon.starting")):
        return False
    import signal

    try:  # noqa: SIM105 - the hook's path imports no contextlib
        os.kill(pid, getattr(signal, RETIRE_SIGNAL))
    except OSError:
        pass  # gone already: the replacement finds the lock free
    return True


def is_queued(pid: int) -> bool:
    """Is ``pid`` a running ``queued`` (not a pid the system gave to another program
    since a stale pid file was written)?  Where /proc cannot tell, assume it is."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no /proc here: cannot tell
    except OSError:
        return True
    return any(b"queued" in os.path.basename(arg) for arg in argv[:3])


def _claim_start(marker: str) -> bool:
    for _ in range(2):
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                if time.time() - os.stat(marker).st_mtime < STARTING_TTL:
                    return False
                os.unlink(marker)
            except FileNotFoundError:
                pass
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False
