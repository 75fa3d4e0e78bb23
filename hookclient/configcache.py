"""Parsed config files, kept between hook runs so the hook does not parse TOML each time.

Importing tomllib costs the hook nearly as much as starting Python (it pulls in
typing, string and datetime, and compiles its regexes; BENCHMARKS.md "Hook fast
path"), and the file is the same on every event of a session.  So the hook keeps each file's parsed
table in one small JSON file and reads TOML again only when the file changed.

Never a stale config:

- An entry is keyed by the file's identity and version, ``(st_dev, st_ino, st_size,
  st_mtime_ns, st_ctime_ns)``, and used only when a fresh ``stat`` of the file gives the
  same key.  An editor that saves by rename makes a new inode; a write in place moves
  mtime and ctime; ``touch -d`` or ``cp -p`` can set mtime back, never ctime.
- A file whose mtime or ctime is less than :data:`RACY_SECONDS` old is not stored
  (git calls such an entry "racily clean"): file times are coarse, a few ms on Linux
  and 1 or 2 s on some file systems, so an edit within the same tick that keeps the
  size would otherwise look unchanged.  Any later edit gets a later ctime.

No secrets, no trust in others:

- Only a file whose every section and key is in the schema is stored, so the cache
  holds schema values only, and secrets are never schema values (the token and the
  signing secret come from the variables or the 0600 file the config *names*).  A file
  with an unknown key, with a value JSON cannot hold (a TOML date), or that does not
  parse, is read with tomllib every time, and reports its problem every time.
- The cache is ``<user_state_dir>/cache/config.json``, 0600 in a 0700 directory, and
  is read only if it is a regular file owned by this user that nobody else may read or
  write: whoever could write it could send events elsewhere.

It is best effort: losing it, or a writer racing another, costs one parse.  It is
never fsync'd.
"""

from __future__ import annotations

import os
import stat
import time

from hookclient import dirs, jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

RACY_SECONDS = 2.0
MAX_ENTRIES = 16
#: Projects whose last good spool is remembered (the oldest is forgotten first).
MAX_ROUTES = 64
#: A cache file larger than this is not one we wrote (16 entries of a config): ignored.
MAX_BYTES = 1024 * 1024
VERSION = 1
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO in its place must not hang the hook


def default_file() -> str:
    return os.path.join(dirs.user_state_dir(), "cache", "config.json")


def key_of(info: os.stat_result) -> list[int]:
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


class ConfigCache:
    """One load's view of the cache: look files up, remember new parses, save once."""

    def __init__(self, path: str, *, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.path = path
        self.now_ns = now_ns
        body = _load(path)
        files, routes = body.get("files"), body.get("routes")
        self.entries: dict[str, Any] = files if isinstance(files, dict) else {}
        #: project -> the spool and log directories of its last configuration that
        #: loaded without a problem (see :meth:`route`)
        self.routes: dict[str, Any] = routes if isinstance(routes, dict) else {}
        self.changed = False

    def get(self, name: str, info: os.stat_result) -> dict[str, Any] | None:
        """The cached table of ``name`` if ``info`` (a fresh stat) matches its key."""
        entry = self.entries.get(name)
        if isinstance(entry, dict) and entry.get("key") == key_of(info):
            table = entry.get("table")
            if isinstance(table, dict):
                return table
        return None

    def put(self, name: str, info: os.stat_result, table: dict[str, Any]) -> None:
        """Remember a table parsed from the file ``info`` describes (an fstat of it)."""
        newest = max(info.st_mtime_ns, info.st_ctime_ns)
        if self.now_ns() - newest < RACY_SECONDS * 1e9:
            return
        try:
            jsoncodec.dumps(table)
        except (TypeError, ValueError):  # dates and times: read with tomllib each time
            return
        self.entries.pop(name, None)
        self.entries[name] = {"key": key_of(info), "table": table}
        while len(self.entries) > MAX_ENTRIES:
            del self.entries[next(iter(self.entries))]
        self.changed = True

    def route(self, project: str) -> tuple[str, str] | None:
        """(spool dir, logs dir) of ``project``'s last configuration that loaded cleanly.

        An event captured while the configuration cannot be read (a TOML typo, a bad
        value) goes there, to the spool its daemon already delivers, rather than to a
        spool nothing will ever deliver once the file is fixed.
        """
        entry = self.routes.get(project)
        if isinstance(entry, dict):
            spool, logs = entry.get("spool"), entry.get("logs")
            if isinstance(spool, str) and isinstance(logs, str):
                return spool, logs
        return None

    def remember_route(self, project: str, spool: str, logs: str) -> None:
        """Record a clean load's directories; saved only when they changed."""
        entry = {"spool": spool, "logs": logs}
        if self.routes.get(project) == entry:
            return
        self.routes.pop(project, None)
        self.routes[project] = entry
        while len(self.routes) > MAX_ROUTES:
            del self.routes[next(iter(self.routes))]
        self.changed = True

    def save(self) -> None:
        if self.changed:
            _save(self.path, {"version": VERSION, "files": self.entries, "routes": self.routes})
            self.changed = False


def _load(path: str) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    except OSError:
        return {}
    try:
        if not _private_file(os.fstat(fd)):
            return {}
        body = jsoncodec.loads(os.read(fd, MAX_BYTES))
    except (OSError, ValueError, RecursionError):
        return {}
    finally:
        os.close(fd)
    if not isinstance(body, dict) or body.get("version") != VERSION:
        return {}
    return body


def _private_file(info: os.stat_result) -> bool:
    owner = getattr(os, "getuid", None)
    return (
        stat.S_ISREG(info.st_mode)
        and (owner is None or info.st_uid == owner())
        and not info.st_mode & 0o077
    )


def _save(path: str, body: dict[str, Any]) -> None:
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".config.{os.getpid()}.tmp")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
        owner = getattr(os, "getuid", None)
        if not stat.S_ISDIR(info.st_mode) or (owner is not None and info.st_uid != owner()):
            return
        if info.st_mode & 0o077:
            os.chmod(directory, 0o700)
        data = jsoncodec.dumps(body, ensure_ascii=False).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:  # noqa: SIM105 - the hook's path imports no contextlib
            os.unlink(tmp)
        except OSError:
            pass
