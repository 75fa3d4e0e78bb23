"""The configuration's values: one frozen object per section, and the whole.

Each configuration key is declared once, as a field of its section with its type, its
default and its help: ``timeout: float = key(default=5.0, help="...")``.  The table
:data:`hookclient.config.SCHEMA` (what files and the environment may set, what
``config show`` and the docs list), the constructor, ``repr`` and equality are all
derived from those declarations.  :mod:`hookclient.config` builds the values
(precedence, validation, defaults); this module only holds them.

Not dataclasses: the hook builds one on every event and its path leaves the
dataclasses module (and inspect) out (BENCHMARKS.md "Hook fast path").  Type checkers
still see dataclasses (:func:`typing.dataclass_transform`), so a misspelt or
mistyped field is caught.  Paths are held as strings (:data:`FilePath`): the hook does
without pathlib; code that wants a ``Path`` wraps one.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, ClassVar, TypeVar, dataclass_transform

    _T = TypeVar("_T")
else:

    def dataclass_transform(**_: object) -> object:
        """At run time a no-op: only type checkers read it."""
        return lambda cls: cls


#: The budget the hook gets for SessionEnd, whose hooks Claude Code cancels after 1.5 s.
SESSION_END_BUDGET = 1.0

#: A path held as a string; a key annotated with it is a "path" in the schema.
FilePath = str

#: A key's type in the schema (what a file or an environment variable must hold), by
#: the annotation of its field.
_KINDS = {
    "str": "str",
    "str | None": "str?",
    "FilePath": "path?",
    "FilePath | None": "path?",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "tuple[str, ...]": "list[str]",
    "tuple[float, ...]": "list[float]",
}

_REQUIRED: Any = object()


class Field:
    """One field of a section: a configuration key, or a value derived while loading.

    ``help`` is None for a derived value (the token, where it came from, the problems
    found); only keys are in the schema.  ``kind`` is filled in from the annotation.
    """

    __slots__ = ("default", "help", "kind", "secret")

    def __init__(self, default: Any, help: str | None, secret: bool) -> None:
        self.default = default
        self.help = help
        self.secret = secret
        self.kind = ""

    @property
    def is_key(self) -> bool:
        return self.help is not None


def key(*, default: Any, help: str) -> Any:
    """A configuration key of its section, settable from files, the environment and flags."""
    return Field(default, help, secret=False)


def derived(*, default: Any = _REQUIRED, secret: bool = False) -> Any:
    """A value found while loading, not a key; a ``secret`` one stays out of ``repr``."""
    return Field(default, None, secret)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(key, derived))
class _Value:
    """Base of the configuration's parts: set once by ``__init__``, read-only after.

    Like the dataclasses they stand in for, they compare and hash field by field,
    refuse assignment and deletion (AttributeError), copy and pickle, and leave secret
    fields out of ``repr``.
    """

    #: name -> its declaration, in declaration order (filled in per subclass)
    fields: ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls) -> None:
        # the strings of ``from __future__ import annotations``, read without inspect
        # (off the hook's path) and never evaluated
        annotations: dict[str, str] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        cls.fields = {}
        for name, annotation in annotations.items():
            field = cls.__dict__.get(name)
            if isinstance(field, Field):
                field.kind = _KINDS.get(annotation, "")
                cls.fields[name] = field
                delattr(cls, name)  # the instance's value, not the declaration, is read

    @classmethod
    def keys(cls) -> dict[str, Field]:
        """The configuration keys of this section, in declaration order."""
        return {name: field for name, field in cls.fields.items() if field.is_key}

    def __init__(self, **values: Any) -> None:
        for name, field in self.fields.items():
            value = values.pop(name, field.default)
            if value is _REQUIRED:
                raise TypeError(f"{type(self).__name__}() needs {name}=")
            if field.kind == "path?" and value is not None:
                value = os.fspath(value)
            object.__setattr__(self, name, value)
        if values:
            raise TypeError(f"{type(self).__name__}() has no field {', '.join(values)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: the configuration is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: the configuration is frozen")

    def __repr__(self) -> str:
        shown = (f"{n}={self._shown(n)!r}" for n, f in self.fields.items() if not f.secret)
        return f"{type(self).__name__}({', '.join(shown)})"

    def _shown(self, name: str) -> Any:
        value = getattr(self, name)
        if name != "url":
            return value
        from hookclient.urls import safe_url  # only for a repr: off the hook's path

        return safe_url(value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self.fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __reduce__(self) -> tuple[Any, ...]:
        """copy and pickle: rebuilt through ``__init__``, past the frozen ``__setattr__``."""
        return (_rebuild, (type(self), {n: getattr(self, n) for n in self.fields}))


def _rebuild(cls: Callable[..., _T], values: dict[str, Any]) -> _T:
    return cls(**values)


class Endpoint(_Value):
    url: str | None = key(default=None, help="webhook URL the envelopes are POSTed to")
    token_env: str = key(default="HOOKCLIENT_TOKEN", help="env var holding the bearer token")
    token_file: FilePath | None = key(default=None, help="file holding the token (must be 0600)")
    timeout: float = key(default=5.0, help="seconds per HTTP attempt")
    verify: bool = key(default=True, help="verify TLS certificates")
    ca_bundle: FilePath | None = key(default=None, help="CA bundle file for TLS verification")
    signing_secret_env: str | None = key(default=None, help="env var holding the signing secret")
    token: str | None = derived(default=None, secret=True)
    #: where the token came from ("env NAME", "file PATH" or "-"), not a token
    token_source: str = derived(default="-")
    signing_secret: str | None = derived(default=None, secret=True)


class Delivery(_Value):
    mode: str = key(default="auto", help="auto | direct | spool")
    inline_attempts: int = key(default=3, help="attempts the hook makes in direct mode")
    inline_delay: float = key(default=1.0, help="seconds between inline attempts")
    inline_budget: float = key(default=5.0, help="wall seconds for all inline attempts")
    stdin_timeout: float = key(default=2.0, help="seconds to wait for stdin to finish")
    max_payload_bytes: int = key(default=8 * 1024 * 1024, help="larger payloads are cut")
    redact_keys: tuple[str, ...] = key(
        default=("token", "secret", "password", "api_key", "apikey", "authorization"),
        help="payload keys whose values become [REDACTED]",
    )
    redact_patterns: tuple[str, ...] = key(
        default=(),
        help="regexes: group 1 (or the whole match) of each, in any payload string, is redacted",
    )
    autostart: bool = key(default=True, help="auto mode starts a daemon when none runs")

    def budget_for(self, event: str) -> float:
        """SessionEnd gets at most 1 s: Claude Code gives all its hooks 1.5 s together."""
        if event == "SessionEnd":
            return min(self.inline_budget, SESSION_END_BUDGET)
        return self.inline_budget


class Queue(_Value):
    #: unset means the directory derived from the URL (:func:`hookclient.dirs.default_spool_dir`)
    dir: FilePath = key(default=None, help="spool directory")
    idle_exit: float = key(default=600.0, help="a hook-started daemon exits when idle this long")
    backoff: tuple[float, ...] = key(
        default=(60.0, 300.0, 900.0, 3600.0, 7200.0), help="seconds before retry k (last repeats)"
    )
    jitter: float = key(default=0.1, help="backoff jitter fraction")
    max_retries: int = key(default=5, help="failed retries before failed/")
    max_spool_bytes: int = key(default=1024 * 1024 * 1024, help="the spool never grows past this")
    retry_after_cap: float = key(default=6 * 3600.0, help="cap on a server's Retry-After")
    workers: int = key(default=4, help="concurrent deliveries in the daemon")
    rescan_interval: float = key(default=30.0, help="seconds between full spool rescans")
    heartbeat: float = key(
        default=0.0, help="seconds between the daemon's Heartbeat POSTs (0 = off)"
    )
    breaker_failures: int = key(default=5, help="retryable outcomes in a row that open it")
    breaker_cooldown: float = key(default=30.0, help="seconds the breaker stays open")
    retention: float = key(
        default=30 * 86400.0,
        help="queued removes failed/ and corrupt/ files older than this (0 = keep)",
    )


class Logs(_Value):
    #: unset means the platform's user log directory
    dir: FilePath = key(default=None, help="log directory")
    level: str = key(default="info", help="debug | info | warning | error")
    max_bytes: int = key(default=10 * 1024 * 1024, help="rotate a log file past this size")
    backups: int = key(default=5, help="rotated files kept per log")


class Transcripts(_Value):
    sync: bool = key(default=True, help="queued ships transcripts (false: hook events only)")
    #: unset means $CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects
    projects_dir: FilePath | None = key(default=None, help="where Claude Code keeps transcripts")
    batch_records: int = key(default=500, help="records per Transcript envelope, at most")
    batch_bytes: int = key(default=1024 * 1024, help="bytes of records per envelope, at most")
    max_record_bytes: int = key(default=1024 * 1024, help="a larger record is cut to its ids")
    delay: float = key(default=1.0, help="seconds after a session's event before its sync")
    settle: float = key(default=2.0, help="seconds after Stop/SessionEnd for a second sync")


class Config(_Value):
    endpoint: Endpoint = derived()
    delivery: Delivery = derived()
    queue: Queue = derived()
    logs: Logs = derived()
    transcripts: Transcripts = derived()
    #: "section.key" -> where its value came from ("default", "env NAME", a file, "flag").
    sources: Mapping[str, str] = derived()
    #: the files that were read, in the order they were applied
    files: tuple[FilePath, ...] = derived()
    #: problems found while loading leniently; empty when strict
    problems: tuple[str, ...] = derived(default=())


#: The sections a file may hold, named as their classes are, in the order ``config
#: show`` lists them.
SECTIONS: dict[str, type[_Value]] = {
    cls.__name__.lower(): cls for cls in (Endpoint, Delivery, Queue, Logs, Transcripts)
}
