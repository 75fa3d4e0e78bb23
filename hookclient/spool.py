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

      any file that cannot be parsed, or whose requestId is not a
      lowercase UUID matching its name ──quarantine──> corrupt/

Every state change is one ``os.replace`` in this module.  When the body must change too
(a retry count, an owner), the new body is first written atomically over the file *in
its current directory*, then the file is renamed into the next one; so at every instant
each event is in exactly one state directory, or only in tmp/ before it was spooled.

File names are ``<UTC yyyymmddTHHMMSSffffffZ>-<requestId>.json`` so a directory listing
sorts in creation order.  Directories are 0700 and files 0600 whatever the umask.

The hook's path through this module (``add``, and ``claim``/``transition``/``remove``
in direct mode) works on ``str`` paths with ``os``: pathlib (which pulls urllib.parse,
ipaddress, fnmatch, ntpath) is one of the imports the hook's path leaves out
(BENCHMARKS.md "Hook fast path").  What the daemon and the admin commands use
still speaks ``Path``: ``Spool.dir()``, ``Spool.paths()`` and
``Record.path`` build one when asked, and every method takes a ``str`` or a ``Path``.
"""

from __future__ import annotations

import os
import stat
import time

from hookclient import jsoncodec
from hookclient.clock import file_stamp, utc_iso
from hookclient.errors import CorruptFile, SpoolError, SpoolFull

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any, ClassVar, Literal

    from hookclient.spoolstate import Owner, SpoolState

    StrPath = str | os.PathLike[str]

#: A spool file larger than this is not an event this client wrote; it is quarantined.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: How long the hooks trust the cached spool size before summing it again.
USAGE_TTL = 10.0
#: The spool's size at the last full count, and when that was.
USAGE_FILE = "usage.json"
#: The size of every file added since that count, one line each.
GROWTH_FILE = "usage.log"
#: ``{"endpoint": <url, credentials redacted, or null>}``: whom this spool's events are
#: for, so that ``queued status``, ``doctor`` and ``queued adopt`` can name every spool.
ENDPOINT_FILE = "endpoint.json"
HISTORY_KEEP = 50


class _States(type):
    """Iterating :class:`State` yields its members, as iterating an enum does."""

    def __iter__(cls) -> Iterator[State]:
        return iter(_MEMBERS)


class State(str, metaclass=_States):
    """A spool state, named for its directory: a ``str`` with an enum's manners
    (``State("pending")`` validates, ``State.PENDING.value``, ``for s in State``).

    Not an ``enum.StrEnum``: ``enum`` (with functools and collections) is one of the
    imports the hook's path leaves out (BENCHMARKS.md "Hook fast path").
    """

    TMP: ClassVar[State]
    PENDING: ClassVar[State]
    PROCESSING: ClassVar[State]
    FAILED: ClassVar[State]
    CORRUPT: ClassVar[State]

    def __new__(cls, value: str) -> State:
        for member in _MEMBERS:
            if member == value:
                return member
        raise ValueError(f"{value!r} is not a spool state")

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"<State.{self.upper()}: {str.__repr__(self)}>"


def _member(value: str) -> State:
    return str.__new__(State, value)


State.TMP = _member("tmp")
State.PENDING = _member("pending")
State.PROCESSING = _member("processing")
State.FAILED = _member("failed")
State.CORRUPT = _member("corrupt")
_MEMBERS = (State.TMP, State.PENDING, State.PROCESSING, State.FAILED, State.CORRUPT)


STATES = (State.PENDING, State.PROCESSING, State.FAILED)


class Record:
    """One spooled event: where it is (``file``, a str; ``path``, the same as a Path),
    and its parsed body."""

    __slots__ = ("envelope", "file", "state")

    def __init__(self, path: StrPath, envelope: dict[str, Any], state: SpoolState) -> None:
        self.file = os.fspath(path)
        self.envelope = envelope
        self.state = state

    def __repr__(self) -> str:
        return f"Record(path={self.file!r}, envelope={self.envelope!r}, state={self.state!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.file, self.envelope, self.state) == (other.file, other.envelope, other.state)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    @property
    def path(self) -> Path:
        from pathlib import Path

        return Path(self.file)

    @property
    def name(self) -> str:
        """The file name: ``<stamp>-<requestId>.json``."""
        return os.path.basename(self.file)

    @property
    def request_id(self) -> str:
        return str(self.envelope.get("requestId", ""))

    @property
    def where(self) -> State:
        return State(os.path.basename(os.path.dirname(self.file)))

    def body(self) -> dict[str, Any]:
        return {"envelope": self.envelope, "state": self.state}


def new_state(now: float, *, due: float, owner: Owner | None = None) -> SpoolState:
    state: SpoolState = {
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


def last_error_of(state: SpoolState, key: Literal["kind", "status", "detail"]) -> Any:
    """``state.lastError[key]``; None when there was no error (or a hand-edited file
    holds something other than an object there)."""
    error = state.get("lastError")
    return error.get(key) if isinstance(error, dict) else None


def file_name(envelope: dict[str, Any], now: float) -> str:
    request_id = str(envelope["requestId"])
    if "/" in request_id or "\\" in request_id or request_id.startswith("."):
        raise SpoolError(f"refusing request id {request_id!r}: not a plain name")
    return f"{file_stamp(now)}-{request_id}.json"


class Spool:
    """A spool directory.  Cheap to construct; directories are made on first write."""

    def __init__(
        self,
        root: StrPath,
        *,
        max_bytes: int = 1024 * 1024 * 1024,
        endpoint: str | None = None,
    ) -> None:
        #: the spool directory (a str: the hook does without pathlib)
        self.root = os.fspath(root)
        self.max_bytes = max_bytes
        #: the endpoint URL (credentials redacted) recorded when this spool is created
        self.endpoint = endpoint
        self._made = False

    def dir(self, state: State) -> Path:
        from pathlib import Path

        return Path(self._dir(state))

    def _dir(self, state: State) -> str:
        return os.path.join(self.root, state.value)

    # -- writing ------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the state directories 0700 (chmod as well: the umask may be looser)."""
        if self._made:
            return
        created = False
        for path in (self.root, *(self._dir(s) for s in State)):
            try:
                os.makedirs(path, mode=0o700)
                os.chmod(path, 0o700)
                created = created or path == self.root
            except FileExistsError:
                pass
            except OSError as exc:
                raise _spool_error(exc, path) from exc
        if created:
            self.write_endpoint()
        self._made = True

    def write_endpoint(self) -> None:
        """Record whom this spool is for (best effort: a spool without the file is
        still listed, as "endpoint unknown")."""
        from hookclient.urls import safe_url  # once per spool: off the hook's usual path

        body = jsoncodec.dumps({"endpoint": safe_url(self.endpoint)}).encode()
        _write_small(os.path.join(self.root, ENDPOINT_FILE), body)

    def read_endpoint(self) -> tuple[bool, str | None]:
        """(known, endpoint URL with credentials redacted, or None for no URL)."""
        try:
            body = _read_small(os.path.join(self.root, ENDPOINT_FILE))
        except (OSError, ValueError):
            return False, None
        if not isinstance(body, dict) or not isinstance(body.get("endpoint"), str | None):
            return False, None
        return True, body["endpoint"]

    def check_private(self) -> None:
        """Refuse (:class:`SpoolError`) a spool another user owns, or that its group or
        others can write: whoever writes ``pending/`` chooses what the daemon POSTs with
        the user's token.  The daemon checks this before it takes the lock."""
        info = os.stat(self.root)
        if info.st_uid != os.geteuid():
            raise SpoolError(
                f"refusing spool {self.root}: owned by uid {info.st_uid}, not by you "
                f"(uid {os.geteuid()}); chown it to yourself or set [queue] dir"
            )
        mode = info.st_mode & 0o777
        if mode & 0o022:
            raise SpoolError(
                f"refusing spool {self.root}: writable by {_who(mode)} (mode {mode:o}); "
                f"chmod 700 {self.root}"
            )

    def add(self, envelope: dict[str, Any], state: SpoolState, where: State) -> Record:
        """Spool a new event durably into ``where`` (pending/ or processing/)."""
        self.ensure()
        now = time.time()
        self.check_room()
        record = Record(os.path.join(self._dir(where), file_name(envelope, now)), envelope, state)
        size = self._write(record.file, record.body())
        self._grew(size)
        return record

    def put(self, record: Record, where: State) -> Record:
        """Write a record read from another spool into ``where`` here, under the same
        name, durably (``queued adopt``); the caller removes the original after."""
        self.ensure()
        target = Record(os.path.join(self._dir(where), record.name), record.envelope, record.state)
        self._grew(self._write(target.file, target.body()))
        return target

    def update(self, record: Record) -> None:
        """Rewrite a record's body atomically where it is (same directory)."""
        record.state["history"] = record.state.get("history", [])[-HISTORY_KEEP:]
        self._write(record.file, record.body())

    def move(self, record: Record, to: State) -> Record:
        """One ``os.replace`` into another state directory; the body is unchanged."""
        directory = self._dir(to)
        target = os.path.join(directory, record.name)
        os.replace(record.file, target)
        _fsync_dir(directory)
        return Record(target, record.envelope, record.state)

    def transition(self, record: Record, to: State) -> Record:
        """Write the record's new body where it is, then move it: never in two states."""
        self.update(record)
        return self.move(record, to)

    def transition_anyway(self, record: Record, to: State) -> tuple[Record, SpoolError | None]:
        """:meth:`transition`, or, when the new body cannot be written (disk full, read
        only), the move alone, with the old body: the event still leaves processing/
        rather than stay claimed by a process that is done with it.  Returns the moved
        record and the write error, if there was one."""
        try:
            return self.transition(record, to), None
        except SpoolError as exc:
            return self.move(record, to), exc

    def remove(self, record: Record) -> None:
        """Delivered: the file goes.  (A crash before the unlink means one redelivery,
        which the receiver's dedup by requestId absorbs.)"""
        try:  # noqa: SIM105 - the hook's path imports no contextlib
            os.unlink(record.file)
        except FileNotFoundError:
            pass

    def claim(
        self, record: Record, owner: Owner, *, keep_unrecorded: bool = False
    ) -> Record | None:
        """pending/ -> processing/ by rename; None when another claimant won the race.

        When the owner cannot be written (disk full, read only) the claim is undone and
        SpoolError raised, unless ``keep_unrecorded`` (the daemon, which holds the lock
        and keeps the name in flight): then the file stays claimed with its old body and
        ``owner["unrecorded"]`` says so, because a delivery is what frees the space.
        Should the daemon die, its next start recovers the ownerless file."""
        target = os.path.join(self._dir(State.PROCESSING), record.name)
        try:
            os.replace(record.file, target)
        except FileNotFoundError:
            return None
        except OSError as exc:  # read-only, no permission: nothing changed
            raise _spool_error(exc, self._dir(State.PROCESSING)) from exc
        claimed = Record(target, record.envelope, record.state)
        claimed.state["owner"] = owner
        try:
            # The owner's body is fsync'd (a crash must never leave an empty file), the
            # directory is not: a claim lost to a power cut leaves the event in pending/
            # (or claimed by a dead owner, recovered), which is where it would go anyway.
            self._write(claimed.file, claimed.body(), sync_dir=False)
        except SpoolError as exc:  # disk full or read-only
            if keep_unrecorded:
                owner["unrecorded"] = str(exc)
                return claimed
            os.replace(target, record.file)  # unclaim, as it was, and say so
            claimed.state.pop("owner", None)
            raise
        return claimed

    def quarantine(self, path: StrPath) -> Path:
        """Move an unreadable file to corrupt/ as it is, without opening it."""
        from pathlib import Path

        self.ensure()
        target = os.path.join(self._dir(State.CORRUPT), os.path.basename(os.fspath(path)))
        os.replace(path, target)
        return Path(target)

    def _write(self, path: str, body: dict[str, Any], *, sync_dir: bool = True) -> int:
        """Write ``body`` to ``path`` durably; the number of bytes written.  With
        ``sync_dir`` (all but claims) the rename itself is made durable too."""
        data = jsoncodec.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            write_durably(path, data, self._dir(State.TMP), sync_dir=sync_dir)
        except OSError as exc:
            raise _spool_error(exc, os.path.dirname(path)) from exc
        return len(data)

    # -- reading ------------------------------------------------------------------

    def read(self, path: StrPath) -> Record:
        """Parse a spool file; :class:`CorruptFile` (never anything else) if it is not one.

        Symlinks, FIFOs, directories and oversized files are refused without being
        opened or followed.
        """
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CorruptFile(f"{os.fspath(path)}: cannot stat: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise CorruptFile(f"{os.fspath(path)}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise CorruptFile(f"{os.fspath(path)}: {info.st_size} bytes is over {MAX_FILE_BYTES}")
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CorruptFile(f"{os.fspath(path)}: cannot open: {exc.strerror}") from None
        try:
            raw = _read_fd(fd, info.st_size)
        finally:
            os.close(fd)
        if len(raw) > MAX_FILE_BYTES:  # it grew since the lstat
            raise CorruptFile(f"{os.fspath(path)}: over {MAX_FILE_BYTES} bytes")
        try:
            body = jsoncodec.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise CorruptFile(f"{os.fspath(path)}: not JSON ({exc})") from None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("envelope"), dict)
            or not isinstance(body.get("state"), dict)
            or not isinstance(body["envelope"].get("requestId"), str)
        ):
            raise CorruptFile(
                f"{os.fspath(path)}: not a spool record (needs envelope.requestId and state)"
            )
        problem = _request_id_problem(os.fspath(path), body["envelope"]["requestId"])
        if problem is not None:
            raise CorruptFile(f"{os.fspath(path)}: {problem}")
        return Record(path, body["envelope"], body["state"])

    def names(self, state: State) -> list[str]:
        """The file names in one state, oldest first (names sort by creation time).
        Plain strings: with 100,000 pending files, Path objects cost the daemon 23 MB."""
        try:
            return sorted(n for n in os.listdir(self._dir(state)) if n.endswith(".json"))
        except FileNotFoundError:
            return []

    def paths(self, state: State) -> list[Path]:
        """The files in one state, oldest first."""
        directory = self.dir(state)
        return [directory / n for n in self.names(state)]

    def records(self, state: State) -> Iterator[Record | CorruptFile]:
        """Every record in a state; unreadable ones come out as their error."""
        for path in self.paths(state):
            try:
                yield self.read(path)
            except FileNotFoundError:
                continue  # moved by someone else meanwhile
            except CorruptFile as exc:
                yield exc

    def matching(self, prefix: str) -> list[Path]:
        """The files, in any state, whose requestId starts with ``prefix``: the one rule
        for ``queued show``, ``hookclient trace`` and :meth:`find`.  Only the requestId
        part of a name is matched (never its time stamp); a full requestId matches its
        file alone; an empty prefix matches nothing."""
        if not prefix:
            return []
        found = [
            p for s in STATES for p in self.paths(s) if request_id_of(p.name).startswith(prefix)
        ]
        exact = [p for p in found if request_id_of(p.name) == prefix]
        return exact or found

    def find(self, request_id: str) -> Record | None:
        """The record with this requestId (or a unique prefix of it), in any state;
        None when nothing, or more than one event, matches, or it cannot be read."""
        found = self.matching(request_id)
        if len({request_id_of(p.name) for p in found}) != 1:
            return None  # nothing, or several events
        for path in found:  # one event (in two states after a crash): the first readable
            try:
                return self.read(path)
            except (FileNotFoundError, CorruptFile):
                continue
        return None

    # -- size ---------------------------------------------------------------------

    def usage(self) -> int:
        """Bytes in the spool, summed over the state directories."""
        total = 0
        for state in State:
            try:
                with os.scandir(self._dir(state)) as entries:
                    for entry in entries:
                        try:
                            total += entry.stat(follow_symlinks=False).st_size
                        except OSError:
                            continue
            except FileNotFoundError:
                continue
        return total

    def check_room(self) -> None:
        """Refuse to write past max_spool_bytes."""
        used = self.used()
        if used >= self.max_bytes:
            raise SpoolFull(
                f"spool {self.root} holds {used} bytes, at max_spool_bytes "
                f"({self.max_bytes}); start queued to drain it, purge failed/, or raise "
                "[queue] max_spool_bytes"
            )

    def used(self) -> int:
        """Bytes in the spool: the last full count (``usage.json``, redone every
        USAGE_TTL seconds) plus the sizes appended to ``usage.log`` by every add since."""
        cache = os.path.join(self.root, USAGE_FILE)
        growth = os.path.join(self.root, GROWTH_FILE)
        try:
            cached = _read_small(cache)
            if time.time() - float(cached["at"]) < USAGE_TTL:
                return int(cached["bytes"]) + _added(growth)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return self.recount()

    def recount(self) -> int:
        """Count the spool's bytes again and keep the figure (``usage.json``): what was
        delivered since the last count no longer counts, for the hooks either."""
        # The log goes first: a reader in between sees the old, stale count and
        # recounts itself, rather than the new count plus the old growth.
        _discard(os.path.join(self.root, GROWTH_FILE))
        used = self.usage()
        _write_small(
            os.path.join(self.root, USAGE_FILE),
            jsoncodec.dumps({"bytes": used, "at": time.time()}).encode(),
        )
        return used

    def _grew(self, size: int) -> None:
        """Count a new file's ``size`` until the next full count, so a burst of writes
        within USAGE_TTL cannot run past max_spool_bytes on a stale figure.

        One ``O_APPEND`` write of one line, which concurrent hooks cannot tear or lose:
        0.03 ms in the hook here, where rewriting ``usage.json`` (read it, write a temp
        file, rename) took 0.3 ms (in-process timings, median of 5 runs).  Best effort:
        a line appended while another process recounts may be counted twice or not at
        all, until the next full count.
        """
        try:
            fd = os.open(
                os.path.join(self.root, GROWTH_FILE),
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | _CLOEXEC,
                0o600,
            )
        except OSError:
            return
        try:
            os.write(fd, b"%d\n" % size)
        except OSError:
            pass
        finally:
            os.close(fd)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


_HEX = "0123456789abcdef"


def is_request_id(value: str) -> bool:
    """A canonical UUID string: 36 characters, lowercase hex with hyphens at 8, 13, 18
    and 23.  The hook writes UUIDv7s so; the receiver refuses anything else (422).
    String tests rather than a regex: the hook's path imports no ``re``, and the
    daemon reads every file it drains through here."""
    hex_part = value.replace("-", "")
    return (
        len(value) == 36
        and len(hex_part) == 32
        and value[8] == value[13] == value[18] == value[23] == "-"
        and not hex_part.strip(_HEX)
    )


def _request_id_problem(path: str, request_id: str) -> str | None:
    """Why a parsed record's requestId rules it out, or None.

    It goes into a header, the receiver's dedup key and every log line, so an id the
    hook could not have written (``../../x``, an uppercase UUID) means the file was
    made by something else: quarantined, never sent.  The file name must carry the same
    id (``queued show``, ``trace`` and :meth:`Spool.find` go by the name): every move
    keeps the name :func:`file_name` gave it, so a mismatch is a file copied or edited
    by hand under another event's name.
    """
    if not is_request_id(request_id):
        return f"requestId {request_id[:60]!r} is not a lowercase hyphenated UUID"
    if not path.endswith(f"-{request_id}.json"):
        name_id = request_id_of(path)
        return f"named for {name_id[:60]!r}, holds {request_id}; not a file this client wrote"
    return None


def request_id_of(name: str) -> str:
    """The requestId part of a spool file name, ``<stamp>-<requestId>.json`` (a path
    will do); '' when the name has none."""
    return os.path.basename(name).removesuffix(".json").partition("-")[2]


def _who(mode: int) -> str:
    return " and ".join(w for w, bit in (("its group", 0o020), ("others", 0o002)) if mode & bit)


def write_durably(path: str, data: bytes, tmp_dir: str, *, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` so that a crash at any instant leaves the old file or
    the new, whole: a temporary file in ``tmp_dir`` (same file system), written, fsync'd,
    renamed over ``path``; with ``sync_dir`` the rename is made durable too.  Files 0600.
    The spool's files and the transcript checkpoints are written this way."""
    tmp = os.path.join(tmp_dir, f"{os.path.basename(path)}.{os.getpid()}.tmp")
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
    except OSError:
        _discard(tmp)
        raise
    if sync_dir:
        _fsync_dir(os.path.dirname(path))


def _fsync_dir(path: str) -> None:
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


def _discard(path: str) -> None:
    try:  # noqa: SIM105 - the hook's path imports no contextlib
        os.unlink(path)
    except OSError:
        pass


def _read_fd(fd: int, size: int) -> bytes:
    """The whole file, read in as few calls as its size allows (at most MAX_FILE_BYTES
    + 1 bytes).  Not ``fh.read(MAX_FILE_BYTES + 1)``: that allocates 64 MiB for every
    1 kB event (an mmap, a page fault and an mremap each time the daemon reads one)."""
    chunks = []
    total = 0
    want = size + 1  # one byte past the size: a file that grew is read to its end
    while total <= MAX_FILE_BYTES:
        chunk = os.read(fd, min(max(want - total, 65536), MAX_FILE_BYTES + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_small(path: str) -> Any:
    with open(path, "rb") as fh:
        return jsoncodec.loads(fh.read())


def _added(path: str) -> int:
    """The sum of the sizes in the growth log; 0 when there is none."""
    try:
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
    except FileNotFoundError:
        return 0
    total = 0
    for line in lines:
        if line.isdigit():  # blank or damaged lines count for nothing
            total += int(line)
    return total


def _write_small(path: str, data: bytes) -> None:
    """Best-effort cache write (no fsync: losing it only costs a recount)."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        _discard(tmp)


def _spool_error(exc: OSError, directory: str) -> SpoolError:
    """The one-line reason an event could not be written into ``directory``."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpoolFull(f"no space left to spool into {directory}: free disk space")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return SpoolError(
            f"cannot write to spool {directory}: {exc.strerror}; "
            "check its permissions or set [queue] dir"
        )
    return SpoolError(f"cannot write to spool {directory}: {exc.strerror or exc}")
