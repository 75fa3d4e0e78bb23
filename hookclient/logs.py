"""JSON-lines logs that many processes append to at once, with safe size rotation.

Four files (README "Logs and spool layout"), chosen by what the line is about:

- ``success.log``: deliveries that got a 2xx;
- ``queue.log``: spool moves and attempts (spooled, claimed, retry scheduled, ...);
- ``error.log``: warnings and errors (failed deliveries, each try that failed and will
  be retried, the circuit breaker opening and closing, bad config, hostile stdin);
- ``debug.log``: detail, written only when ``level = "debug"``.

Each line is one ``os.write`` on a descriptor opened with ``O_APPEND``, so lines from
concurrent hooks and the daemon never interleave.  Rotation renames ``X.log`` to
``X.log.1`` (shifting older ones up to ``backups``) under an exclusive lock on a side
file, after checking that nobody rotated first; a writer still holding the old file
writes into ``X.log.1``, which is kept, so no line is lost at rotation.

The hook uses :class:`LogWriter` directly (stdlib only, so its fast path imports no
structlog); long-lived processes get a structlog logger from :func:`structlog_logger`
whose last processor hands the event dict to the same writer, same schema.  The
writer works on ``str`` paths with ``os``, so the hook imports no pathlib for it
(BENCHMARKS.md "Hook fast path").
"""

from __future__ import annotations

import os
import time

from hookclient import jsoncodec
from hookclient.clock import utc_iso

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping
    from pathlib import Path
    from typing import Any

STREAMS = ("success", "queue", "error", "debug")
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

#: error.log messages that the hook and the daemon both write, and ``queued status``
#: reads: a try that failed and will be retried, and the breaker's two transitions
RETRY_FAILED = "delivery failed, will retry"
BREAKER_OPENED = "circuit breaker opened"
BREAKER_CLOSED = "circuit breaker closed"


class LogWriter:
    """Writes JSON lines for one process; cheap to create, no background thread."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        component: str,
        level: str = "info",
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 5,
    ) -> None:
        self.directory = os.fspath(directory)
        self.component = component
        self.threshold = LEVELS.get(level, 20)
        self.max_bytes = max_bytes
        self.backups = backups
        self.pid = os.getpid()
        self._ready = False
        #: set when the log directory cannot be written; logging never breaks the caller
        self.broken: str | None = None

    def log(self, stream: str, level: str, msg: str, **fields: Any) -> None:
        """Append one line; ``fields`` with value None are left out."""
        if LEVELS[level] < self.threshold:
            return
        record: dict[str, Any] = {
            "ts": utc_iso(time.time()),
            "level": level,
            "msg": msg,
            "component": self.component,
            "pid": self.pid,
        }
        record.update((k, v) for k, v in fields.items() if v is not None)
        self.write(stream, record)

    def write(self, stream: str, record: Mapping[str, Any]) -> None:
        line = jsoncodec.dumps(record, ensure_ascii=False, default=str)
        try:
            self._append(stream, (line + "\n").encode("utf-8", "replace"))
        except OSError as exc:  # a full or read-only log disk must not stop delivery
            self.broken = f"cannot write logs in {self.directory}: {exc.strerror or exc}"

    def _append(self, stream: str, data: bytes) -> None:
        if not self._ready:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            self._ready = True
        path = os.path.join(self.directory, f"{stream}.log")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            size = os.fstat(fd).st_size
            if size > self.max_bytes:
                self._rotate(path, os.fstat(fd).st_ino)
        finally:
            os.close(fd)

    def _rotate(self, path: str, inode: int) -> None:
        """Shift X.log.N-1 -> X.log.N ... X.log -> X.log.1, once, whoever gets there first."""
        name = os.path.basename(path)
        lock_fd = os.open(
            os.path.join(self.directory, f".{name}.lock"), os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o600
        )
        try:
            _lock_exclusive(lock_fd)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                return
            if current.st_ino != inode or current.st_size <= self.max_bytes:
                return  # somebody else rotated already
            if self.backups <= 0:
                os.truncate(path, 0)
                return
            for n in range(self.backups - 1, 0, -1):
                older = f"{path}.{n}"
                if os.path.exists(older):
                    os.replace(older, f"{path}.{n + 1}")
            os.replace(path, f"{path}.1")
        finally:
            os.close(lock_fd)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _lock_exclusive(fd: int) -> None:
    """flock on POSIX; elsewhere rotation runs unlocked and may rotate twice, never
    losing a line.  Imported here, at rotation: a hook that does not rotate (nearly
    all of them) does not load the extension module."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def log_files(directory: Path) -> list[Path]:
    """Every log file, rotated ones included, oldest first within each stream."""
    found: list[Path] = []
    for stream in STREAMS:
        base = directory / f"{stream}.log"
        rotated = sorted(
            directory.glob(f"{stream}.log.*"),
            key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
            reverse=True,
        )
        found.extend(p for p in rotated if p.suffix[1:].isdigit())
        if base.exists():
            found.append(base)
    return found


def structlog_logger(writer: LogWriter, **bound: Any) -> EventLogger:
    """A structlog logger for long-lived processes, writing the same lines as the hook.

    Pass ``stream=`` on a call to choose the file; otherwise warnings and errors go to
    error.log, debug to debug.log, and the rest to queue.log.
    """
    import structlog

    def emit(_logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        level = "warning" if method == "warn" else method
        if level not in LEVELS:
            level = "info"
        if LEVELS[level] >= writer.threshold:
            default = {"error": "error", "warning": "error", "debug": "debug"}.get(level, "queue")
            stream = event.pop("stream", default)
            msg = event.pop("event", "")
            record = {
                "ts": utc_iso(time.time()),
                "level": level,
                "msg": msg,
                "component": writer.component,
                "pid": writer.pid,
            }
            record.update((k, v) for k, v in event.items() if v is not None)
            if HOOK_EVENT in record:
                record["event"] = record.pop(HOOK_EVENT)
            writer.write(stream, record)
        raise structlog.DropEvent

    logger = structlog.wrap_logger(
        None,
        processors=[structlog.contextvars.merge_contextvars, emit],
        context_class=dict,
        cache_logger_on_first_use=False,
    ).bind(**bound)
    return EventLogger(logger)


#: structlog reserves the keyword ``event`` for the message; ours carries the hook event.
HOOK_EVENT = "_hook_event"


class EventLogger:
    """``log.info(msg, event="Stop", ...)`` on top of structlog, whose own first
    parameter is called ``event``: the field travels under another name and is
    renamed back when the line is written."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    def _emit(self, level: str, msg: str, fields: dict[str, Any]) -> None:
        if "event" in fields:
            fields[HOOK_EVENT] = fields.pop("event")
        getattr(self._logger, level)(msg, **fields)

    def debug(self, msg: str, **fields: Any) -> None:
        self._emit("debug", msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._emit("info", msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._emit("warning", msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._emit("error", msg, fields)
