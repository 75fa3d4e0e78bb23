"""Configuration: one frozen value built from flags, environment, files and defaults.

Precedence, highest first (README "Configuration"):

1. command-line flags (``overrides``),
2. ``HOOKCLIENT_<SECTION>_<KEY>`` environment variables (``HOOKCLIENT_ENDPOINT_URL``),
3. the project file ``<project>/.claude/hookclient.toml``,
4. the user file ``<user_config_dir>/config.toml``,
5. the defaults in :data:`SCHEMA`.

``--config PATH`` (or ``HOOKCLIENT_CONFIG``) names one file that is read instead of the
project and user files, so a hook registered with it behaves the same from any directory.

Secrets are never configuration values: the token and the signing secret are read from
the environment variables (or the 0600 token file) that the configuration *names*, and
they are kept out of ``repr`` so a traceback or a debug print cannot show them.

The hook loads with ``strict=False``: a bad value is replaced by its default and the
problem is kept in :attr:`Config.problems`, so a broken file costs a log line and a
spooled event, never a lost one.
"""

from __future__ import annotations

import os
import stat

from hookclient import dirs
from hookclient.errors import ConfigError
from hookclient.settings import SECTIONS as SECTIONS
from hookclient.settings import SESSION_END_BUDGET as SESSION_END_BUDGET
from hookclient.settings import Config as Config
from hookclient.settings import Delivery as Delivery
from hookclient.settings import Endpoint as Endpoint
from hookclient.settings import Logs as Logs
from hookclient.settings import Queue as Queue
from hookclient.settings import Transcripts as Transcripts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, TypeVar

    from hookclient.configcache import ConfigCache

    _S = TypeVar("_S")

APP = dirs.APP
ENV_PREFIX = "HOOKCLIENT_"
CONFIG_ENV = "HOOKCLIENT_CONFIG"
MIB = 1024 * 1024
MODES = ("auto", "direct", "spool")
LEVELS = ("debug", "info", "warning", "error")

#: Every key: (section, key) -> (type, default, help), derived from the fields declared
#: in :mod:`hookclient.settings`.  ``None`` default means unset; list defaults are
#: tuples, the type the loaded values hold.
#: Types: "str", "str?", "path?", "int", "float", "bool", "list[str]", "list[float]".
SCHEMA: dict[tuple[str, str], tuple[str, Any, str]] = {
    (section, name): (field.kind, field.default, field.help or "")
    for section, cls in SECTIONS.items()
    for name, field in cls.keys().items()
}


def user_config_file() -> str:
    """Where the user's config lives (platformdirs user_config_dir)."""
    return dirs.clean(os.path.join(dirs.user_config_dir(), "config.toml"))


def _project_config_file(environ: Mapping[str, str]) -> str:
    root = environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
    return dirs.clean(os.path.join(root, ".claude", "hookclient.toml"))


def default_paths(
    environ: Mapping[str, str], explicit: str | os.PathLike[str] | None = None
) -> list[str]:
    """The files to read, lowest precedence first."""
    chosen = explicit or environ.get(CONFIG_ENV)
    if chosen:
        return [dirs.expand(os.fspath(chosen))]
    return [user_config_file(), _project_config_file(environ)]


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def load_config(
    paths: Sequence[str | os.PathLike[str]] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
    cache: ConfigCache | None = None,
) -> Config:
    """Build the configuration; raise :class:`ConfigError` (strict) or record problems.

    With a ``cache`` (the hook's), files that have not changed since they were last
    parsed are not parsed again (see :mod:`hookclient.configcache`).
    """
    environ = os.environ if environ is None else environ
    paths = default_paths(environ) if paths is None else paths
    problems: list[str] = []
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    read: list[str] = []
    for path in paths:
        origin = dirs.clean(os.fspath(path))
        table = _read_file(origin, problems, strict, cache)
        if table is None:
            continue
        read.append(origin)
        for name, value in _flatten(table, origin, problems, strict).items():
            raw[name] = (value, origin)
    if cache is not None:
        cache.save()
    for section, key in SCHEMA:
        name = env_name(section, key)
        if name in environ:
            raw[f"{section}.{key}"] = (environ[name], f"env {name}")
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = (value, "flag")
    values: dict[str, Any] = {}
    for (section, key), (kind, default, _help) in SCHEMA.items():
        name = f"{section}.{key}"
        if name not in raw:
            values[name], sources[name] = default, "default"
            continue
        value, origin = raw[name]
        try:
            values[name] = _coerce(name, kind, value, origin)
            sources[name] = origin
        except ConfigError as exc:
            if strict:
                raise
            problems.append(str(exc))
            values[name], sources[name] = default, f"default (invalid in {origin})"
    return _build(values, sources, tuple(read), environ, problems, strict)


def _read_file(
    path: str, problems: list[str], strict: bool, cache: ConfigCache | None
) -> dict[str, Any] | None:
    if cache is not None:
        try:
            table = cache.get(path, os.stat(path))
        except FileNotFoundError:
            return None
        except OSError:
            table = None  # the read below says what is wrong
        if table is not None:
            return table
    import tomllib

    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
            info = os.fstat(fh.fileno())
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        message = f"config file {path} cannot be read: {exc}; fix the TOML or remove the file"
        if strict:
            raise ConfigError(message) from None
        problems.append(message)
        return None
    if cache is not None:
        unknown: list[str] = []
        _flatten(table, path, unknown, strict=False)
        if not unknown:  # only schema values are cached: never anything a user mistyped
            cache.put(path, info, table)
    return table


def _flatten(
    table: dict[str, Any], origin: str, problems: list[str], strict: bool
) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    sections = {s: None for s, _ in SCHEMA}  # ordered, for the suggestion
    for section, body in table.items():
        if not isinstance(body, dict) or section not in sections:
            hint = "" if section in sections else _did_you_mean(section, sections, "[{}]")
            _complain(f"unknown section [{section}] in {origin}{hint}", problems, strict)
            continue
        for key, value in body.items():
            if (section, key) not in SCHEMA:
                names = [k for s, k in SCHEMA if s == section]
                hint = _did_you_mean(key, names, '"{}"')
                _complain(
                    f"unknown key {section}.{key} in {origin}{hint} (known: {', '.join(names)})",
                    problems,
                    strict,
                )
                continue
            flat[f"{section}.{key}"] = value
    return flat


def _did_you_mean(word: str, choices: Iterable[str], shape: str) -> str:
    """``: did you mean "timeout"?`` for a misspelt name, or "" when nothing is close.

    difflib is imported here, not at the top: only a file with an unknown name pays for
    it, never the hook loading a valid configuration on every event.
    """
    from difflib import get_close_matches

    close = get_close_matches(word, list(choices), n=1)
    return f": did you mean {shape.format(close[0])}?" if close else ""


def _complain(message: str, problems: list[str], strict: bool) -> None:
    if strict:
        raise ConfigError(message)
    problems.append(message)


def _coerce(name: str, kind: str, value: Any, origin: str) -> Any:
    """Turn a file, env or flag value into the schema's type, or say exactly what is wrong."""
    from_env = isinstance(value, str) and origin.startswith("env ")
    try:
        if kind in ("str", "str?", "path?"):
            if not isinstance(value, str):
                raise TypeError("a string")
            if kind == "path?":
                return _expand(name, value) if value else None
            return value if value or kind == "str" else None
        if kind == "bool":
            return _bool(value, from_env)
        if kind in ("int", "float"):
            return _number(kind, value, from_env)
        if kind.startswith("list["):
            items = value.split(",") if from_env else value
            if not isinstance(items, list | tuple):
                raise TypeError("a list")
            inner = kind[5:-1]
            if inner == "str":
                return tuple(str(i).strip() for i in items if str(i).strip())
            return tuple(_number("float", i, from_env) for i in items)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{name} in {origin}: expected {exc.args[0] if exc.args else kind}, got {value!r}"
        ) from None
    raise AssertionError(kind)  # pragma: no cover - SCHEMA holds only the kinds above


def _expand(name: str, value: str) -> str:
    """A configured path, ``~`` expanded.  The spool and log directories must then be
    absolute: relative, they would name a different place in each cwd the hook runs in,
    and events would be scattered over the user's projects.  TypeError or ValueError
    says what was expected (:func:`_coerce` words the message)."""
    try:
        path = dirs.expand(value)
    except RuntimeError:  # ~user with no such user, or no home at all
        raise ValueError("a path whose ~ can be expanded") from None
    if name in ("queue.dir", "logs.dir", "transcripts.projects_dir") and not os.path.isabs(path):
        raise ValueError("an absolute directory")
    return path


def _regexes_ok(patterns: tuple[str, ...]) -> bool:
    import re

    try:
        for pattern in patterns:
            re.compile(pattern)
    except re.error:
        return False
    return True


def _bool(value: Any, from_env: bool) -> bool:
    if isinstance(value, bool):
        return value
    if from_env:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise TypeError("true or false")


def _number(kind: str, value: Any, from_env: bool) -> float | int:
    if isinstance(value, bool):
        raise TypeError(f"a number ({kind})")
    if from_env or isinstance(value, str):
        value = value.strip()
        try:
            value = int(value) if kind == "int" else float(value)
        except ValueError:
            raise TypeError(f"a number ({kind})") from None
    if kind == "int" and not isinstance(value, int):
        raise TypeError("a whole number")
    if not isinstance(value, int | float) or value < 0 or value != value:
        raise TypeError(f"a non-negative number ({kind})")
    return int(value) if kind == "int" else float(value)


def _build(
    values: dict[str, Any],
    sources: dict[str, str],
    files: tuple[str, ...],
    environ: Mapping[str, str],
    problems: list[str],
    strict: bool,
) -> Config:
    def check(name: str, ok: bool, expected: str) -> None:
        if ok:
            return
        _complain(
            f"{name} in {sources[name]}: expected {expected}, got {values[name]!r}",
            problems,
            strict,
        )
        values[name] = SCHEMA[tuple(name.split(".", 1))][1]  # type: ignore[index]
        sources[name] = f"default (invalid in {sources[name]})"

    url = values["endpoint.url"]
    check("endpoint.url", url is None or url.startswith(("http://", "https://")), "http(s) URL")
    check("delivery.mode", values["delivery.mode"] in MODES, " | ".join(MODES))
    check("logs.level", values["logs.level"] in LEVELS, " | ".join(LEVELS))
    check("queue.jitter", 0 <= values["queue.jitter"] < 1, "a fraction in [0, 1)")
    check("queue.backoff", len(values["queue.backoff"]) > 0, "at least one delay")
    check("delivery.inline_attempts", values["delivery.inline_attempts"] >= 1, "at least 1")
    check("queue.workers", values["queue.workers"] >= 1, "at least 1")
    check("endpoint.timeout", values["endpoint.timeout"] > 0, "more than 0 seconds")
    check("transcripts.batch_records", values["transcripts.batch_records"] >= 1, "at least 1")
    for name in ("transcripts.batch_bytes", "transcripts.max_record_bytes"):
        check(name, values[name] >= 4096, "at least 4096 bytes")
    if values["delivery.redact_patterns"]:  # compiled once here, and then by the envelope
        check(
            "delivery.redact_patterns",
            _regexes_ok(values["delivery.redact_patterns"]),
            "regular expressions (Python re syntax)",
        )
    token, token_source, token_problem = _token(values, environ)
    if token_problem:
        _complain(token_problem, problems, strict)
    secret_env = values["endpoint.signing_secret_env"]
    url = values["endpoint.url"]
    values["queue.dir"] = values["queue.dir"] or dirs.default_spool_dir(url)
    values["logs.dir"] = values["logs.dir"] or dirs.clean(dirs.user_log_dir())
    return Config(
        endpoint=_section(
            Endpoint,
            values,
            token=token,
            token_source=token_source,
            signing_secret=_signing_secret(secret_env, environ, problems, strict),
        ),
        delivery=_section(Delivery, values),
        queue=_section(Queue, values),
        logs=_section(Logs, values),
        transcripts=_section(Transcripts, values),
        sources=dict(sources),
        files=files,
        problems=tuple(problems),
    )


def _section(cls: Callable[..., _S], values: dict[str, Any], **found: Any) -> _S:
    """One section's value from the loaded ``section.key`` values and what was found."""
    prefix = f"{cls.__name__.lower()}."  # as in settings.SECTIONS
    mine = {name[len(prefix) :]: v for name, v in values.items() if name.startswith(prefix)}
    return cls(**mine, **found)


def _token(
    values: dict[str, Any], environ: Mapping[str, str]
) -> tuple[str | None, str, str | None]:
    """(token, where it came from, problem): the env var first, else the private token file."""
    token_env = values["endpoint.token_env"]
    token = environ.get(token_env, "").strip()
    source = f"env {token_env}"
    if not token:
        path: str | None = values["endpoint.token_file"]
        if path is None:
            return None, "-", None
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o077:
                problem = (
                    f"endpoint.token_file {path} is readable by others (mode {mode:o}); "
                    f"run: chmod 600 {path}"
                )
                return None, "-", problem
            with open(path, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            return None, "-", f"endpoint.token_file {path} cannot be read: {exc.strerror}"
        except UnicodeDecodeError:
            return None, "-", f"endpoint.token_file {path} is not UTF-8 text"
        source = f"file {path}"
        if not token:
            return None, source, None
    if not all(" " <= c <= "~" for c in token):  # httpx cannot put it in a header
        problem = (
            f"the token in {source} holds characters an HTTP header cannot carry "
            "(non-ASCII or control characters); it is not used"
        )
        return None, "-", problem
    return token, source, None


def _signing_secret(
    secret_env: str | None, environ: Mapping[str, str], problems: list[str], strict: bool
) -> str | None:
    """The Standard Webhooks secret; a ``whsec_`` one must be valid base64 (sign() decodes it)."""
    secret = environ.get(secret_env) or None if secret_env else None
    if secret and secret.startswith("whsec_"):
        import base64
        import binascii

        try:
            base64.b64decode(secret[len("whsec_") :], validate=True)
        except binascii.Error:
            _complain(
                f"endpoint.signing_secret_env: the secret in env {secret_env} starts with "
                "whsec_ but the rest is not valid base64",
                problems,
                strict,
            )
            return None
    return secret


def fingerprint(endpoint: Endpoint, sync: bool = True) -> str:
    """What a daemon delivers with, as 16 hex of SHA-256: the URL, the token, the signing
    secret, the TLS settings, and whether it ships transcripts.  A hook whose
    fingerprint differs from the running daemon's replaces it (:mod:`hookclient.autostart`),
    so a fixed token or URL, or ``[transcripts] sync = false``, takes effect at the next
    event.  The secrets go into the hash only, never into a file."""
    parts = (
        "hookclient-fingerprint-1",
        endpoint.url or "",
        endpoint.token or "",
        endpoint.signing_secret or "",
        "verify" if endpoint.verify else "no-verify",
        endpoint.ca_bundle or "",
        *(() if sync else ("no-transcripts",)),  # sync on: the fingerprint of before
    )
    return dirs.sha256_hex("\0".join(parts).encode("utf-8"))[:16]
