"""The spool: durable event files and the only code that moves them between states.

::

                 write (tmp, fsync, replace, fsync dir)
      tmp/ ───────────────────────────────┬───────────────────────┐
                                          v                       v
                                      pending/ ──claim──> processing/ ──2xx──> (removed)
                                        ^  ^                 │   │
                        retry due later │  └──── recover ────┘   │ permanent, or
                                        │   (owner gone/stale)   │ retries exhausted
                                        └─── replay-failed ── failed/ <┘

      any file that cannot be parsed ──quarantine──> corrupt/

Every state change is one ``os.replace`` in this module.  When the body must change too
(a retry count, an owner), the new body is first written atomically over the file *in
its current directory*, then the file is renamed into the next one; so at every instant
each event is in exactly one state directory, or only in tmp/ before it was spooled.

File names are ``<UTC yyyymmddTHHMMSSffffffZ>-<requestId>.json`` so a directory listing
sorts in creation order.  Directories are 0700 and files 0600 whatever the umask.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hookclient.clock import file_stamp, utc_iso
from hookclient.errors import CorruptFile, SpoolError, SpoolFull

#: A spool file larger than this is not an event this client wrote; it is quarantined.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: How long the hooks trust the cached spool size before summing it again.
USAGE_TTL = 10.0
HISTORY_KEEP = 50


class State(enum.StrEnum):
    TMP = "tmp"
    PENDING = "pending"
    PROCESSING = "processing"
    FAILED = "failed"
    CORRUPT = "corrupt"


STATES = (State.PENDING, State.PROCESSING, State.FAILED)


@dataclass
class Record:
    """One spooled event: where it is, and its parsed body."""

    path: Path
    envelope: dict[str, Any]
    state: dict[str, Any]

    @property
    def request_id(self) -> str:
        return str(self.envelope.get("requestId", ""))

    @property
    def where(self) -> State:
        return State(self.path.parent.name)

    def body(self) -> dict[str, Any]:
        return {"envelope": self.envelope, "state": self.state}


def new_state(now: float, *, due: float, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "retries": 0,
        "attempts": 0,
        "createdAt": utc_iso(now),
        "nextAttemptAt": utc_iso(due),
        "lastAttemptAt": None,
        "lastError": None,
        "history": [],
    }
    if owner is not None:
        state["owner"] = owner
    return state


def file_name(envelope: dict[str, Any], now: float) -> str:
    request_id = str(envelope["requestId"])
    if "/" in request_id or "\\" in request_id or request_id.startswith("."):
        raise SpoolError(f"refusing request id {request_id!r}: not a plain name")
    return f"{file_stamp(now)}-{request_id}.json"


class Spool:
    """A spool directory.  Cheap to construct; directories are made on first write."""

    def __init__(self, root: Path, *, max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._made = False

    def dir(self, state: State) -> Path:
        return self.root / state.value

    # -- writing ------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the state directories 0700 (chmod as well: the umask may be looser)."""
        if self._made:
            return
        for path in (self.root, *(self.dir(s) for s in State)):
            try:
                path.mkdir(mode=0o700, parents=True)
                path.chmod(0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise _spool_error(exc, path / "x") from exc
        self._made = True

    def add(self, envelope: dict[str, Any], state: dict[str, Any], where: State) -> Record:
        """Spool a new event durably into ``where`` (pending/ or processing/)."""
        self.ensure()
        now = time.time()
        self.check_room()
        record = Record(self.dir(where) / file_name(envelope, now), envelope, state)
        self._write(record.path, record.body())
        self._grew(record.path)
        return record

    def update(self, record: Record) -> None:
        """Rewrite a record's body atomically where it is (same directory)."""
        record.state["history"] = record.state.get("history", [])[-HISTORY_KEEP:]
        self._write(record.path, record.body())

    def move(self, record: Record, to: State) -> Record:
        """One ``os.replace`` into another state directory; the body is unchanged."""
        target = self.dir(to) / record.path.name
        os.replace(record.path, target)
        _fsync_dir(target.parent)
        return Record(target, record.envelope, record.state)

    def transition(self, record: Record, to: State) -> Record:
        """Write the record's new body where it is, then move it: never in two states."""
        self.update(record)
        return self.move(record, to)

    def remove(self, record: Record) -> None:
        """Delivered: the file goes.  (A crash before the unlink means one redelivery,
        which the receiver's dedup by requestId absorbs.)"""
        record.path.unlink(missing_ok=True)

    def claim(self, record: Record, owner: dict[str, Any]) -> Record | None:
        """pending/ -> processing/ by rename; None when another claimant won the race."""
        target = self.dir(State.PROCESSING) / record.path.name
        try:
            os.replace(record.path, target)
        except FileNotFoundError:
            return None
        claimed = Record(target, record.envelope, record.state)
        claimed.state["owner"] = owner
        self.update(claimed)
        return claimed

    def quarantine(self, path: Path) -> Path:
        """Move an unreadable file to corrupt/ as it is, without opening it."""
        self.ensure()
        target = self.dir(State.CORRUPT) / path.name
        os.replace(path, target)
        return target

    def _write(self, path: Path, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        tmp = self.dir(State.TMP) / f"{path.name}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            _discard(tmp)
            raise _spool_error(exc, path) from exc
        _fsync_dir(path.parent)

    # -- reading ------------------------------------------------------------------

    def read(self, path: Path) -> Record:
        """Parse a spool file; :class:`CorruptFile` (never anything else) if it is not one.

        Symlinks, FIFOs, directories and oversized files are refused without being
        opened or followed.
        """
        try:
            info = path.lstat()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CorruptFile(f"{path}: cannot stat: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise CorruptFile(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise CorruptFile(f"{path}: {info.st_size} bytes is over {MAX_FILE_BYTES}")
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CorruptFile(f"{path}: cannot open: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise CorruptFile(f"{path}: not JSON ({exc})") from None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("envelope"), dict)
            or not isinstance(body.get("state"), dict)
            or not isinstance(body["envelope"].get("requestId"), str)
        ):
            raise CorruptFile(f"{path}: not a spool record (needs envelope.requestId and state)")
        return Record(path, body["envelope"], body["state"])

    def paths(self, state: State) -> list[Path]:
        """The files in one state, oldest first (names sort by creation time)."""
        try:
            names = sorted(n for n in os.listdir(self.dir(state)) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        return [self.dir(state) / n for n in names]

    def records(self, state: State) -> Iterator[Record | CorruptFile]:
        """Every record in a state; unreadable ones come out as their error."""
        for path in self.paths(state):
            try:
                yield self.read(path)
            except FileNotFoundError:
                continue  # moved by someone else meanwhile
            except CorruptFile as exc:
                yield exc

    def find(self, request_id: str) -> Record | None:
        """The record with this requestId (or a unique prefix of it), in any state.

        Only the requestId part of a file name is matched (never its time stamp); an
        empty or ambiguous prefix finds nothing.
        """
        if not request_id:
            return None
        matches: list[Record] = []
        for state in STATES:
            for path in self.paths(state):
                name_id = path.name[: -len(".json")].partition("-")[2]
                if not name_id.startswith(request_id):
                    continue
                try:
                    record = self.read(path)
                except (FileNotFoundError, CorruptFile):
                    continue
                if name_id == request_id:
                    return record
                matches.append(record)
        return matches[0] if len(matches) == 1 else None

    # -- size ---------------------------------------------------------------------

    def usage(self) -> int:
        """Bytes in the spool, summed over the state directories."""
        total = 0
        for state in State:
            try:
                with os.scandir(self.dir(state)) as entries:
                    for entry in entries:
                        try:
                            total += entry.stat(follow_symlinks=False).st_size
                        except OSError:
                            continue
            except FileNotFoundError:
                continue
        return total

    def check_room(self) -> None:
        """Refuse to write past max_spool_bytes (cached sum, refreshed every few seconds)."""
        cache = self.root / "usage.json"
        now = time.time()
        used: int | None = None
        try:
            cached = json.loads(cache.read_bytes())
            if now - float(cached["at"]) < USAGE_TTL:
                used = int(cached["bytes"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if used is None:
            used = self.usage()
            _write_small(cache, json.dumps({"bytes": used, "at": now}).encode())
        if used >= self.max_bytes:
            raise SpoolFull(
                f"spool {self.root} holds {used} bytes, at max_spool_bytes ({self.max_bytes}); "
                "start queued to drain it, purge failed/, or raise [queue] max_spool_bytes"
            )

    def _grew(self, path: Path) -> None:
        """Add a new file to the cached usage, so a burst of writes within USAGE_TTL
        cannot run past max_spool_bytes on a stale figure.  Best effort: a lost update
        between processes only undercounts until the next full recount."""
        cache = self.root / "usage.json"
        try:
            cached = json.loads(cache.read_bytes())
            body = {"bytes": int(cached["bytes"]) + path.stat().st_size, "at": cached["at"]}
        except (OSError, ValueError, KeyError, TypeError):
            return
        _write_small(cache, json.dumps(body).encode())


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable.  Not every platform can open a directory; that is fine."""
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _write_small(path: Path, data: bytes) -> None:
    """Best-effort cache write (no fsync: losing it only costs a recount)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        _discard(tmp)


def _spool_error(exc: OSError, path: Path) -> SpoolError:
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpoolFull(f"no space left to spool into {path.parent}: free disk space")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return SpoolError(
            f"cannot write to spool {path.parent}: {exc.strerror}; "
            "check its permissions or set [queue] dir"
        )
    return SpoolError(f"cannot write to spool {path.parent}: {exc.strerror or exc}")
