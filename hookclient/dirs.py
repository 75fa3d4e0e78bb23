"""Where hookclient keeps its files by default: platformdirs' answer, computed cheaply.

platformdirs is the authority for the default directories (user config,
user state, user log).  Importing it costs the hook more than ``python -c pass``
itself, on every event (BENCHMARKS.md "Hook fast path").  On the
platforms where its answer is a plain function of the environment, this module computes
the same strings with ``os.path``:

- Linux: ``$XDG_CONFIG_HOME`` or ``~/.config``, ``$XDG_STATE_HOME`` or
  ``~/.local/state``, each plus ``hookclient``; logs in ``<state>/log``;
- macOS, when neither ``XDG_CONFIG_HOME`` nor ``XDG_STATE_HOME`` is set:
  ``~/Library/Application Support/hookclient`` (config and state) and
  ``~/Library/Logs/hookclient``.

Anywhere else (Windows, the BSDs, Android), and on any input where platformdirs
versions differ or do something unusual (an XDG variable that is not a clean absolute
path, ``HOME`` unset or relative, a home that does not expand), it asks platformdirs
itself.  ``tests/test_dirs.py`` compares both answers across those environments.

The functions return ``str``: the hook works with ``os.path`` and never imports pathlib.
"""

from __future__ import annotations

import os
import sys

APP = "hookclient"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: kind -> (XDG variable, default under HOME) on Linux
_LINUX = {"config": ("XDG_CONFIG_HOME", "~/.config"), "state": ("XDG_STATE_HOME", "~/.local/state")}
_MACOS = {
    "config": "~/Library/Application Support",
    "state": "~/Library/Application Support",
    "log": "~/Library/Logs",
}


def user_config_dir() -> str:
    """platformdirs ``user_config_dir("hookclient", appauthor=False)``."""
    return resolve("config") or _platformdirs("config")


def user_state_dir() -> str:
    """platformdirs ``user_state_dir("hookclient", appauthor=False)``."""
    return resolve("state") or _platformdirs("state")


def user_log_dir() -> str:
    """platformdirs ``user_log_dir("hookclient", appauthor=False)``."""
    return resolve("log") or _platformdirs("log")


def resolve(
    kind: str, platform: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The directory of ``kind`` (config, state, log), or None when only platformdirs
    can be trusted to answer.  ``platform`` and ``environ`` are for tests."""
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform == "linux" and not _android(environ):
        if kind == "log":
            state = resolve("state", platform, environ)
            return None if state is None else os.path.join(state, "log")
        variable, default = _LINUX[kind]
        base = environ.get(variable, "")
        if base:  # platformdirs takes an absolute value as it is (older ones any non-blank)
            return os.path.join(base, APP) if _clean_absolute(base) else None
        home = _home(default, environ)
        return None if home is None else os.path.join(home, APP)
    if platform == "darwin":
        if environ.get("XDG_CONFIG_HOME") or environ.get("XDG_STATE_HOME"):
            return None  # platformdirs 4.x versions disagree about XDG on macOS
        home = _home(_MACOS[kind], environ)
        return None if home is None else os.path.join(home, APP)
    return None


def _android(environ: Mapping[str, str]) -> bool:
    """platformdirs' own test for Android, where it may answer differently."""
    return hasattr(sys, "getandroidapilevel") or (
        environ.get("ANDROID_DATA") == "/data" and environ.get("ANDROID_ROOT") == "/system"
    )


def _clean_absolute(path: str) -> bool:
    return path.startswith("/") and path == path.strip()


def _home(path: str, environ: Mapping[str, str]) -> str | None:
    """``~/...`` under an absolute ``$HOME``, as platformdirs (and os.path) expand it."""
    home = environ.get("HOME", "")
    if not _clean_absolute(home):
        return None  # unset, relative or odd: platformdirs looks further (pwd) or raises
    return (home.rstrip("/") + path[1:]) or "/"


def _platformdirs(kind: str) -> str:
    import platformdirs

    if kind == "config":
        return platformdirs.user_config_dir(APP, appauthor=False)
    if kind == "state":
        return platformdirs.user_state_dir(APP, appauthor=False)
    return platformdirs.user_log_dir(APP, appauthor=False)


def clean(path: str) -> str:
    """``str(Path(path))`` without importing pathlib when ``path`` is already clean.

    Paths from config files, variables and flags show up in messages and in the spool's
    file names; they must read exactly as they did when this code used pathlib.
    """
    if (
        os.sep == "/"
        and path
        and "//" not in path
        and "/./" not in path
        and not path.startswith("./")
        and not path.endswith(("/", "/."))
    ):
        return path
    from pathlib import Path

    return str(Path(path))


def expand(path: str) -> str:
    """``str(Path(path).expanduser())``: ``~`` and ``~user`` expanded; like pathlib, a
    home that cannot be found is a RuntimeError, not a directory named ``~``."""
    if path.startswith("~"):
        expanded = os.path.expanduser(path)
        if expanded.startswith("~"):
            raise RuntimeError("Could not determine home directory.")
        path = expanded
    return clean(path)


def spool_key(url: str | None) -> str:
    """First 12 hex of sha256(url): two endpoints never share a spool or a daemon."""
    return sha256_hex((url or "").encode("utf-8"))[:12]


def sha256_hex(data: bytes) -> str:
    """SHA-256 with CPython's own module (``_sha256`` / ``_sha2``), which hashlib falls
    back to, rather than hashlib, which loads OpenSSL first (BENCHMARKS.md "Hook fast
    path").  The digest is the same; ``tests/test_config.py`` checks it against hashlib.
    A Python built without those modules uses hashlib."""
    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256
        else:
            from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - a build without CPython's own hashes
        import hashlib

        return hashlib.sha256(data).hexdigest()
    return str(sha256(data).hexdigest())


#: The spool of events captured while no endpoint URL was configured, or while the
#: configuration could not be read and no earlier one had worked for that project.
UNROUTED = "unrouted"


def spools_root() -> str:
    """Where the default spools live, one directory per endpoint (and ``unrouted``)."""
    return clean(os.path.join(user_state_dir(), "spool"))


def unrouted_spool_dir() -> str:
    return os.path.join(spools_root(), UNROUTED)


def default_spool_dir(url: str | None) -> str:
    """The default spool of an endpoint URL (``unrouted`` without one)."""
    if not url:
        return unrouted_spool_dir()
    return os.path.join(spools_root(), spool_key(url))
