"""The configuration's values: one frozen object per section, and the whole.

:mod:`hookclient.config` builds them (precedence, validation, defaults); this module
only holds them.  Plain classes with ``__slots__``, not dataclasses: the hook builds
one on every event and its path leaves the dataclasses module out (BENCHMARKS.md "Hook
fast path").  The token and the signing secret are kept out of ``repr``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import Any, ClassVar

#: The budget the hook gets for SessionEnd, whose hooks Claude Code cancels after 1.5 s.
SESSION_END_BUDGET = 1.0


class _Value:
    """Base of the configuration's parts: set once by ``__init__``, read-only after.

    Plain classes with ``__slots__``, not frozen dataclasses: the hook's path leaves
    the dataclasses module (and inspect) out, and building classes with it made this
    module several times slower to import (BENCHMARKS.md "Hook fast path"), for
    features a record of a few fields does not need.  Like the dataclasses they
    replace, they compare and hash field by field, refuse assignment and deletion
    (AttributeError), copy and pickle, and leave the fields named in ``_secret`` out of
    ``repr``.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _secret: ClassVar[tuple[str, ...]] = ()

    def _init(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: the configuration is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: the configuration is frozen")

    def __repr__(self) -> str:
        shown = (f"{n}={self._shown(n)!r}" for n in self._fields if n not in self._secret)
        return f"{type(self).__name__}({', '.join(shown)})"

    def _shown(self, name: str) -> Any:
        value = getattr(self, name)
        if name != "url":
            return value
        from hookclient.urls import safe_url  # only for a repr: off the hook's path

        return safe_url(value)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self._fields))

    def __reduce__(self) -> tuple[Any, ...]:
        """copy and pickle: rebuilt slot by slot, past the frozen ``__setattr__``."""
        names: tuple[str, ...] = self.__slots__
        return (_rebuild, (type(self), {n: getattr(self, n) for n in names}))


def _rebuild(cls: type[_Value], slots: dict[str, Any]) -> _Value:
    value = object.__new__(cls)
    value._init(**slots)
    return value


def _fspath(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else os.fspath(path)


def _path(path: str | None) -> Path | None:
    """The ``Path`` of a stored path string; pathlib is imported only when asked."""
    if path is None:
        return None
    from pathlib import Path

    return Path(path)


class Endpoint(_Value):
    __slots__ = (
        "_ca_bundle",
        "_token_file",
        "signing_secret",
        "signing_secret_env",
        "timeout",
        "token",
        "token_env",
        "token_source",
        "url",
        "verify",
    )
    _fields = (
        "url",
        "token_env",
        "token_file",
        "timeout",
        "verify",
        "ca_bundle",
        "signing_secret_env",
        "token",
        "token_source",
        "signing_secret",
    )
    _secret = ("token", "signing_secret")

    url: str | None
    token_env: str
    timeout: float
    verify: bool
    signing_secret_env: str | None
    token: str | None
    #: where the token came from, not a token
    token_source: str
    signing_secret: str | None
    _token_file: str | None
    _ca_bundle: str | None

    def __init__(
        self,
        url: str | None,
        token_env: str,
        token_file: str | os.PathLike[str] | None,
        timeout: float,
        verify: bool,
        ca_bundle: str | os.PathLike[str] | None,
        signing_secret_env: str | None,
        token: str | None = None,
        token_source: str = "-",  # noqa: S107 - where the token came from, not a token
        signing_secret: str | None = None,
    ) -> None:
        self._init(
            url=url,
            token_env=token_env,
            _token_file=_fspath(token_file),
            timeout=timeout,
            verify=verify,
            _ca_bundle=_fspath(ca_bundle),
            signing_secret_env=signing_secret_env,
            token=token,
            token_source=token_source,
            signing_secret=signing_secret,
        )

    @property
    def token_file(self) -> Path | None:
        return _path(self._token_file)

    @property
    def ca_bundle(self) -> Path | None:
        return _path(self._ca_bundle)


class Delivery(_Value):
    __slots__ = (
        "autostart",
        "inline_attempts",
        "inline_budget",
        "inline_delay",
        "max_payload_bytes",
        "mode",
        "redact_keys",
        "redact_patterns",
        "stdin_timeout",
    )
    _fields = (
        "mode",
        "inline_attempts",
        "inline_delay",
        "inline_budget",
        "stdin_timeout",
        "max_payload_bytes",
        "redact_keys",
        "redact_patterns",
        "autostart",
    )

    mode: str
    inline_attempts: int
    inline_delay: float
    inline_budget: float
    stdin_timeout: float
    max_payload_bytes: int
    redact_keys: tuple[str, ...]
    redact_patterns: tuple[str, ...]
    autostart: bool

    def __init__(
        self,
        mode: str,
        inline_attempts: int,
        inline_delay: float,
        inline_budget: float,
        stdin_timeout: float,
        max_payload_bytes: int,
        redact_keys: tuple[str, ...],
        autostart: bool,
        redact_patterns: tuple[str, ...] = (),
    ) -> None:
        self._init(
            mode=mode,
            inline_attempts=inline_attempts,
            inline_delay=inline_delay,
            inline_budget=inline_budget,
            stdin_timeout=stdin_timeout,
            max_payload_bytes=max_payload_bytes,
            redact_keys=redact_keys,
            redact_patterns=redact_patterns,
            autostart=autostart,
        )

    def budget_for(self, event: str) -> float:
        """SessionEnd gets at most 1 s: Claude Code gives all its hooks 1.5 s together."""
        if event == "SessionEnd":
            return min(self.inline_budget, SESSION_END_BUDGET)
        return self.inline_budget


class Queue(_Value):
    __slots__ = (
        "backoff",
        "breaker_cooldown",
        "breaker_failures",
        "dir_str",
        "idle_exit",
        "jitter",
        "max_retries",
        "max_spool_bytes",
        "rescan_interval",
        "retention",
        "retry_after_cap",
        "workers",
    )
    _fields = (
        "dir",
        "idle_exit",
        "backoff",
        "jitter",
        "max_retries",
        "max_spool_bytes",
        "retry_after_cap",
        "workers",
        "rescan_interval",
        "breaker_failures",
        "breaker_cooldown",
        "retention",
    )

    #: the spool directory as a string, for code that does without pathlib (the hook)
    dir_str: str
    idle_exit: float
    backoff: tuple[float, ...]
    jitter: float
    max_retries: int
    max_spool_bytes: int
    retry_after_cap: float
    workers: int
    rescan_interval: float
    breaker_failures: int
    breaker_cooldown: float
    retention: float

    def __init__(
        self,
        dir: str | os.PathLike[str],
        idle_exit: float,
        backoff: tuple[float, ...],
        jitter: float,
        max_retries: int,
        max_spool_bytes: int,
        retry_after_cap: float,
        workers: int,
        rescan_interval: float,
        breaker_failures: int,
        breaker_cooldown: float,
        retention: float = 30 * 86400.0,
    ) -> None:
        self._init(
            dir_str=os.fspath(dir),
            idle_exit=idle_exit,
            backoff=backoff,
            jitter=jitter,
            max_retries=max_retries,
            max_spool_bytes=max_spool_bytes,
            retry_after_cap=retry_after_cap,
            workers=workers,
            rescan_interval=rescan_interval,
            breaker_failures=breaker_failures,
            breaker_cooldown=breaker_cooldown,
            retention=retention,
        )

    @property
    def dir(self) -> Path:
        """The spool directory."""
        from pathlib import Path

        return Path(self.dir_str)


class Logs(_Value):
    __slots__ = ("backups", "dir_str", "level", "max_bytes")
    _fields = ("dir", "level", "max_bytes", "backups")

    #: the log directory as a string, for code that does without pathlib (the hook)
    dir_str: str
    level: str
    max_bytes: int
    backups: int

    def __init__(
        self, dir: str | os.PathLike[str], level: str, max_bytes: int, backups: int
    ) -> None:
        self._init(dir_str=os.fspath(dir), level=level, max_bytes=max_bytes, backups=backups)

    @property
    def dir(self) -> Path:
        """The log directory."""
        from pathlib import Path

        return Path(self.dir_str)


class Config(_Value):
    __slots__ = ("_files", "delivery", "endpoint", "logs", "problems", "queue", "sources")
    _fields = ("endpoint", "delivery", "queue", "logs", "sources", "files", "problems")

    endpoint: Endpoint
    delivery: Delivery
    queue: Queue
    logs: Logs
    #: "section.key" -> where its value came from ("default", "env NAME", a file, "flag").
    sources: Mapping[str, str]
    #: problems found while loading leniently; empty when strict
    problems: tuple[str, ...]
    _files: tuple[str, ...]

    def __init__(
        self,
        endpoint: Endpoint,
        delivery: Delivery,
        queue: Queue,
        logs: Logs,
        sources: Mapping[str, str],
        files: Sequence[str | os.PathLike[str]],
        problems: tuple[str, ...] = (),
    ) -> None:
        self._init(
            endpoint=endpoint,
            delivery=delivery,
            queue=queue,
            logs=logs,
            sources=sources,
            _files=tuple(os.fspath(f) for f in files),
            problems=problems,
        )

    @property
    def file_names(self) -> tuple[str, ...]:
        """:attr:`files` as strings (the hook does without pathlib)."""
        return self._files

    @property
    def files(self) -> tuple[Path, ...]:
        """The files that were read, in the order they were applied."""
        from pathlib import Path

        return tuple(Path(f) for f in self._files)
