"""``hookclient doctor``: is everything in place for no event to be lost?

One check per line, each OK, WARN or FAIL with the fix; exit 1 on any FAIL.  Secrets are
never printed: the token check says only whether one is set and where it comes from.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hookclient.breaker import BREAKER_FILE, Breaker
from hookclient.clock import parse_iso
from hookclient.config import Config, default_paths, fingerprint, load_config
from hookclient.envelope import StdinCapture, build, dumps
from hookclient.errors import SpoolError
from hookclient.lockprobe import holder, lock_held
from hookclient.spool import Spool, State
from hookclient.urls import safe_url

if TYPE_CHECKING:
    from hookclient.outcome import Outcome

LOW_DISK = 100 * 1024 * 1024
#: The event doctor POSTs: a real envelope, which the receiver stores like any other.
TEST_EVENT = "hookclient.test"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str
    fix: str = ""


def run_checks(environ: Mapping[str, str], config_path: str | None) -> list[Check]:
    """Every check, always: a broken config is reported problem by problem, and the rest
    runs on what the hook itself would use (the lenient config, defaults for bad values),
    so one typo does not hide a dead endpoint or an unwritable spool."""
    config = load_config(default_paths(environ, config_path), environ, strict=False)
    checks = _config(config)
    for check in (
        _endpoint,
        _token,
        _reachable,
        _spool,
        _daemon,
        _backlog,
        _other_spools,
        _breaker,
        _logs,
        _claude_settings,
        _transcripts,
    ):
        try:
            checks.append(check(config, environ))
        except Exception as exc:  # noqa: BLE001 - a broken check is reported, not fatal
            checks.append(Check(check.__name__.strip("_"), "FAIL", f"check crashed: {exc!r}"))
    return checks


def _config(config: Config) -> list[Check]:
    """One OK line, or one FAIL line per problem, each with the fix for that problem."""
    if config.problems:
        return [Check("config", "FAIL", p, _config_fix(p)) for p in config.problems]
    files = ", ".join(str(p) for p in config.files) or "defaults and environment only"
    return [Check("config", "OK", f"valid ({files})")]


#: The shapes of hookclient.config's messages: ``queue.dir in FILE: expected X, got V``,
#: ``unknown key endpoint.timout in FILE...``, ``config file FILE cannot be read: ...``.
_BAD_VALUE = re.compile(r"(\w+)\.(\w+) in (.+?): expected (.+?), got ")
_UNKNOWN_KEY = re.compile(r"unknown key (\w+)\.(.+?) in (.+?)(?:: did you mean .*)? \(known: ")
_UNKNOWN_SECTION = re.compile(r"unknown section (\[.*?\]) in (.+?)(?:: did you mean .*)?$")
_BAD_FILE = re.compile(r"config file (.+?) cannot be read: ")


def _config_fix(problem: str) -> str:
    """The fix for one problem, read back from its message (which names key and file)."""
    if "; run: " in problem:
        return problem.rsplit("; run: ", 1)[1]
    if found := _BAD_FILE.match(problem):
        return f"fix the TOML in {found[1]} at the line and column named above, or remove the file"
    if found := _UNKNOWN_KEY.match(problem):
        return f"rename or remove {found[2]} under [{found[1]}] in {found[3]}"
    if found := _UNKNOWN_SECTION.match(problem):
        return f"rename or remove the section {found[1]} in {found[2]}"
    if found := _BAD_VALUE.match(problem):
        section, key, origin, expected = found.groups()
        if origin.startswith("env "):
            return f"set {origin[4:]} to {expected}, or unset it"
        return f"set [{section}] {key} in {origin} to {expected}"
    if found := re.match(r"(endpoint|delivery|queue|logs)\.(\w+)", problem):
        return f"fix [{found[1]}] {found[2]} as said above"
    return "fix what is named above (`hookclient config show` says where each value comes from)"


def _endpoint(config: Config, environ: Mapping[str, str]) -> Check:
    url = config.endpoint.url
    if not url:
        return Check(
            "endpoint",
            "FAIL",
            "no [endpoint] url configured: events wait in the unrouted spool",
            "set url under [endpoint] (or HOOKCLIENT_ENDPOINT_URL), "
            "then `queued adopt --from unrouted`",
        )
    from hookclient.urls import transport_warnings

    warnings = transport_warnings(config.endpoint)
    if warnings:
        return Check("endpoint", "WARN", "; ".join(warnings), "use https with verify = true")
    return Check("endpoint", "OK", safe_url(url) or "")


def _token(config: Config, environ: Mapping[str, str]) -> Check:
    endpoint = config.endpoint
    if endpoint.token:
        return Check("token", "OK", f"set (from {endpoint.token_source}; not shown)")
    detail = f"no token: {endpoint.token_env} is unset"
    if endpoint.token_file:
        detail += f" and {endpoint.token_file} holds none"
    return Check("token", "WARN", detail, _no_token_fix(config))


def _no_token_fix(config: Config) -> str:
    return (
        f"export {config.endpoint.token_env}=... in the environment Claude Code runs "
        "in, or set [endpoint] token_file (chmod 600)"
    )


def _reachable(config: Config, environ: Mapping[str, str]) -> Check:
    """POST a real ``hookclient.test`` envelope through the Sender that ``send`` uses
    (same headers, token, signing and TLS), so a wrong path or a refused token is a FAIL
    here, not a failed/ directory filling up later.  The event is never spooled."""
    if not config.endpoint.url:
        return Check("reachable", "WARN", "skipped: no endpoint url")
    from hookclient.delivery import Sender

    envelope = _test_envelope(config)
    try:
        sender = Sender(config.endpoint)
    except OSError as exc:  # ca_bundle missing or not PEM: ssl cannot load it
        return Check(
            "reachable",
            "FAIL",
            f"cannot load [endpoint] ca_bundle {config.endpoint.ca_bundle}: {exc}",
            "set [endpoint] ca_bundle to a readable PEM file of CA certificates",
        )
    try:
        outcome = sender.post(envelope, dumps(envelope), attempt=1, timeout=config.endpoint.timeout)
    finally:
        sender.close()
    return _judge(outcome, config)


def _test_envelope(config: Config) -> dict[str, Any]:
    """An envelope built as the hook builds one, from a small payload of its own."""
    payload = json.dumps({"hook_event_name": TEST_EVENT, "doctor": True}).encode()
    delivery = config.delivery
    return build(
        StdinCapture(payload, len(payload), truncated=False, timed_out=False),
        event_flag=TEST_EVENT,
        redact_keys=delivery.redact_keys,
        limit=delivery.max_payload_bytes,
        redact_patterns=delivery.redact_patterns,
    )


def _judge(outcome: Outcome, config: Config) -> Check:
    """The outcome table (README "What the hook does with an event"), read as what
    ``send`` would do with every event."""
    url = safe_url(config.endpoint.url) or ""
    if outcome.kind == "delivered":
        detail = f"POST {url} answered {outcome.detail}: a test event ({TEST_EVENT}) was accepted"
        return Check("reachable", "OK", detail)
    if outcome.status in (401, 403):
        return _refused(outcome.status, config)
    if outcome.status == 404:
        path = urlsplit(config.endpoint.url or "").path or "/"
        return Check(
            "reachable",
            "FAIL",
            f"POST {url} answered {outcome.detail}: nothing takes events at {path}",
            "fix [endpoint] url (HOOKCLIENT_ENDPOINT_URL): the path is wrong "
            "(the reference receiver takes POST /hooks)",
        )
    if outcome.kind == "permanent":
        return _permanent(outcome, url)
    return _retryable(outcome, url, config.endpoint.timeout)


def _refused(status: int, config: Config) -> Check:
    endpoint = config.endpoint
    if not endpoint.token:
        detail = f"the endpoint wants a token and none is set (HTTP {status})"
        return Check("reachable", "FAIL", detail, _no_token_fix(config))
    if endpoint.token_source.startswith("file "):
        fix = (
            f"write the token the endpoint expects into {endpoint.token_source[5:]} "
            f"(chmod 600), or set {endpoint.token_env}, which comes first"
        )
    else:
        fix = (
            f"set {endpoint.token_env} to the token the endpoint expects, in the environment "
            f"Claude Code runs in (the token sent came from {endpoint.token_source})"
        )
    return Check("reachable", "FAIL", f"the endpoint refused the token (HTTP {status})", fix)


def _permanent(outcome: Outcome, url: str) -> Check:
    fix = "check that [endpoint] url is the receiver's webhook URL (HOOKCLIENT_ENDPOINT_URL)"
    if outcome.status is None:  # not a URL that can be POSTed to
        return Check("reachable", "FAIL", f"cannot POST to {url}: {outcome.detail}", fix)
    detail = f"POST {url} answered {outcome.detail}: send would move every event to failed/"
    return Check("reachable", "FAIL", detail, fix)


def _retryable(outcome: Outcome, url: str, timeout: float) -> Check:
    """Connect refused, timeout, reset, TLS or a failing server: events would wait."""
    if outcome.error == "connect":
        detail = f"cannot connect to {url}: {outcome.detail}"
        fix = "start the receiver, or check the url and the network; events wait in pending/"
        return Check("reachable", "FAIL", detail, fix + " meanwhile")
    if outcome.error == "tls":
        return Check(
            "reachable",
            "FAIL",
            f"TLS failed for {url}: {outcome.detail}",
            "set [endpoint] ca_bundle to the CA that signed the server's certificate, "
            "or fix the certificate",
        )
    if outcome.error == "timeout":
        return Check(
            "reachable",
            "FAIL",
            f"no answer from {url} within {timeout:g} s: {outcome.detail}",
            f"check that the receiver runs and answers within [endpoint] timeout ({timeout:g} s)",
        )
    if outcome.status is not None:
        return Check(
            "reachable",
            "FAIL",
            f"POST {url} answered {outcome.detail}: the endpoint is failing",
            "see the receiver's logs; events wait in pending/ and go out once it recovers",
        )
    return Check(
        "reachable",
        "FAIL",
        f"{url}: {outcome.detail}",
        "check the url and the network (a proxy or a firewall?); events wait in pending/",
    )


def _spool(config: Config, environ: Mapping[str, str]) -> Check:
    """Make the spool as ``send`` makes it (Spool.ensure: every state directory, 0700):
    a directory that cannot be made means every event is lost, so it is a FAIL.  While
    the config has problems nothing is created (the hook may spool elsewhere then, and
    the new spool would record the wrong endpoint): the nearest existing parent is
    checked instead."""
    root = Path(config.queue.dir)
    existed = root.is_dir()
    creates = existed or not config.problems
    problem = _make_spool(config) if creates else _cannot_create(root)
    if problem is not None:
        verb = "write to" if existed else "create"
        return Check(
            "spool",
            "FAIL",
            f"cannot {verb} {problem.filename or root}: {problem.strerror or problem} "
            "(send keeps events in the unrouted spool instead, where nothing delivers them)",
            "set [queue] dir to a directory you can write (HOOKCLIENT_QUEUE_DIR)",
        )
    if not root.is_dir():
        return Check("spool", "OK", f"{root} can be created (not yet: the config has problems)")
    return _spool_state(config, root, "" if existed else " (created)")


def _make_spool(config: Config) -> OSError | None:
    """Create (or probe) the spool the way the hook and the daemon do; the OS error if not."""
    spool = Spool(
        Path(config.queue.dir),
        max_bytes=config.queue.max_spool_bytes,
        endpoint=safe_url(config.endpoint.url),
    )
    try:
        spool.ensure()
    except SpoolError as exc:
        return exc.__cause__ if isinstance(exc.__cause__, OSError) else OSError(str(exc))
    probe = Path(spool.root) / f".doctor-{os.getpid()}"
    try:  # the directories may exist, read-only: a file is what send writes
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return OSError(exc.errno, exc.strerror, spool.root)
    return None


def _cannot_create(root: Path) -> OSError | None:
    """Could ``root`` be made?  Its nearest existing parent must be a writable directory."""
    parent = root
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(root))
    if not os.access(parent, os.W_OK | os.X_OK):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(root))
    return None


def _spool_state(config: Config, root: Path, made: str) -> Check:
    from hookclient.spool import Spool

    mode = stat.S_IMODE(root.stat().st_mode)
    if mode & 0o077:
        return Check(
            "spool",
            "FAIL",
            f"{root} is readable by others (mode {mode:o})",
            f"chmod -R go-rwx {root}",
        )
    used, limit = Spool(root).usage(), config.queue.max_spool_bytes
    if used >= limit:
        return Check(
            "spool",
            "FAIL",
            f"{root} holds {used} bytes, at max_spool_bytes ({limit}): "
            "send refuses every new event (exit 1) until it drains",
            "fix the endpoint so the backlog drains, purge failed/, or raise "
            "[queue] max_spool_bytes",
        )
    free = shutil.disk_usage(root).free
    if free < LOW_DISK:
        return Check(
            "spool",
            "WARN",
            f"{root}: only {free // 1024 // 1024} MiB free",
            "free disk space: a full disk is the one way an event can be lost",
        )
    return Check("spool", "OK", f"{root}{made} private, writable, {free // 1024 // 1024} MiB free")


def _daemon(config: Config, environ: Mapping[str, str]) -> Check:
    root = Path(config.queue.dir)
    if not config.endpoint.url:
        return Check("daemon", "OK", "none needed yet: no endpoint to deliver to (see endpoint)")
    autostarts = config.delivery.mode == "auto" and config.delivery.autostart
    if lock_held(root / "daemon.lock"):
        return _running(config, holder(str(root)) or {}, autostarts)
    waiting = bool(Spool(root).names(State.PENDING))
    if autostarts and not waiting:
        return Check("daemon", "OK", "not running (auto mode starts it with the next event)")
    nobody = "" if autostarts else " (mode is not auto, or autostart is off: no hook starts it)"
    if waiting:
        return Check(
            "daemon",
            "WARN",
            "not running, and events are waiting in pending/" + nobody,
            "run `queued run --once` now, or `queued service install`"
            + (" (the next hook event would also start it)" if autostarts else ""),
        )
    return Check(
        "daemon",
        "WARN",
        "not running, and nothing will start it" + nobody,
        "run `queued run` (or `queued service install`, or set mode = auto and autostart = true)",
    )


def _running(config: Config, info: dict[str, Any], autostarts: bool) -> Check:
    how = "autostarted" if info.get("autostarted") else "started by hand or a service"
    running = f"running, pid {info.get('pid', '?')} ({how})"
    if not info or info.get("fingerprint") == fingerprint(config.endpoint, config.transcripts.sync):
        return Check("daemon", "OK", running)
    if info.get("autostarted"):
        fix = "`queued restart`" + (" (the next hook event replaces it too)" if autostarts else "")
    else:
        fix = "restart it: its service manager, or `queued restart`"
    return Check(
        "daemon",
        "WARN",
        f"{running}, with another endpoint, token or signing secret than this shell's",
        fix,
    )


def _backlog(config: Config, environ: Mapping[str, str]) -> Check:
    spool = Spool(config.queue.dir)
    pending = [r for r in spool.records(State.PENDING) if not isinstance(r, Exception)]
    failed = spool.names(State.FAILED)
    corrupt = spool.names(State.CORRUPT)
    now = time.time()
    oldest = min((_age(r.state.get("createdAt"), now) for r in pending), default=None)
    waiting = [r for r in pending if -_age(r.state.get("nextAttemptAt"), now) > 1.0]
    text = f"{len(pending)} pending, {len(failed)} failed, {len(corrupt)} corrupt"
    if oldest is not None:
        text += f", oldest pending {oldest / 60:.0f} min old"
    if waiting:
        text += f", {len(waiting)} waiting out their backoff"
    if failed:
        return Check(
            "backlog",
            "WARN",
            text,
            "see `queued list --state failed`; fix the cause, then `queued replay-failed --all`",
        )
    if corrupt:
        return Check(
            "backlog",
            "WARN",
            text,
            "error.log says why each could not be read: repair and move it back to pending/, "
            "or `queued purge --state corrupt --older-than 0`",
        )
    if oldest is not None and oldest > config.queue.backoff[-1]:
        return Check(
            "backlog",
            "WARN",
            text,
            "the endpoint has been failing for a long time: "
            "`queued status` and the error log say why",
        )
    if waiting:
        return Check(
            "backlog",
            "WARN",
            text,
            "once the endpoint answers again (see reachable), `queued flush` sends them now",
        )
    return Check("backlog", "OK", text)


def _age(value: Any, now: float) -> float:
    """Seconds since the ISO time ``value`` (negative: in the future); 0 when unreadable."""
    try:
        return now - parse_iso(str(value))
    except ValueError:
        return 0.0


def _other_spools(config: Config, environ: Mapping[str, str]) -> Check:
    """Events in another spool (an old URL's, the unrouted one) reach this endpoint
    only when adopted: they are never moved between endpoints silently."""
    from hookclient.spools import others

    found = others(config)
    if not found:
        return Check("spools", "OK", "no other spool holds events")
    parts = [
        f"{info.dir} ({info.label()}): "
        + ", ".join(f"{v} {k}" for k, v in info.counts.items() if v)
        for info in found
    ]
    fixes = "; ".join(info.adopt_command() for info in found)
    return Check(
        "spools",
        "WARN",
        "other spools hold events that nothing sends to this endpoint: " + "; ".join(parts),
        f"to send them here: {fixes} (add --dry-run to list them first)",
    )


def _breaker(config: Config, environ: Mapping[str, str]) -> Check:
    queue = config.queue
    breaker = Breaker(
        Path(queue.dir) / BREAKER_FILE,
        failures=queue.breaker_failures,
        cooldown=queue.breaker_cooldown,
    )
    state = breaker.read()
    if breaker.is_open():  # read through the class: its clock-jump guard included
        return Check(
            "breaker",
            "WARN",
            f"open after {state.get('failures')} failures in a row",
            "the endpoint is failing; events are spooled meanwhile, nothing is lost",
        )
    return Check("breaker", "OK", f"closed ({state.get('failures', 0)} recent failures)")


def _logs(config: Config, environ: Mapping[str, str]) -> Check:
    directory = Path(config.logs.dir)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = directory / f".doctor-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return Check(
            "logs",
            "FAIL",
            f"{directory} is not writable: {exc.strerror}",
            "fix its permissions, or set [logs] dir to a directory you can write "
            "(HOOKCLIENT_LOGS_DIR)",
        )
    return Check("logs", "OK", f"{directory} writable")


def _claude_settings(config: Config, environ: Mapping[str, str]) -> Check:
    from hookclient.install import SCOPES, is_ours, settings_path

    found = []
    for scope in SCOPES:
        path = settings_path(scope, dict(environ))
        data = _json(path) or {}
        hooks = data.get("hooks") if isinstance(data.get("hooks"), dict) else {}
        events = [e for e, groups in (hooks or {}).items() if _has_ours(groups, is_ours)]
        if events:
            found.append(f"{scope}: {len(events)} events")
    if not found:
        return Check(
            "claude",
            "WARN",
            "no Claude Code settings file runs `hookclient send`",
            "run `hookclient install` (--scope user|project|local)",
        )
    return Check("claude", "OK", "hook registered (" + "; ".join(found) + ")")


#: Claude Code deletes transcripts older than this many days unless its settings say else.
CLEANUP_PERIOD_DAYS = 30
#: How soon before that deletion an unshipped transcript is worth a warning.
CLEANUP_MARGIN_DAYS = 7


def _transcripts(config: Config, environ: Mapping[str, str]) -> Check:
    """Transcripts never shipped (sessions from before hookclient, or while it was off),
    and those Claude Code's ``cleanupPeriodDays`` will delete before anything ships them."""
    from hookclient.checkpoints import Checkpoints, key_of
    from hookclient.sync import all_sessions, projects_dir

    if not config.transcripts.sync:
        return Check("transcripts", "OK", "sync off: hook events only ([transcripts] sync = false)")
    root = projects_dir(config, dict(environ))
    found = list(all_sessions(root))
    if not found:
        return Check("transcripts", "OK", f"none under {root} yet")
    checkpoints = Checkpoints(config.queue.dir)
    unshipped = []
    for path, session in found:
        saved = checkpoints.load(key_of(session, None))
        if saved is None or (_line_after(path, saved.offset) and _age_of(path) > 3600):
            unshipped.append(path)  # never read, or left behind for over an hour
    if not unshipped:
        return Check("transcripts", "OK", f"{len(found)} under {root}, all shipped")
    days = _cleanup_days(environ)
    doomed = [p for p in unshipped if _age_of(p) > (days - CLEANUP_MARGIN_DAYS) * 86400]
    detail = f"{len(unshipped)} of {len(found)} transcripts under {root} were never shipped"
    fix = "run `hookclient backfill` (it shows what it ships; --dry-run counts first)"
    if doomed:
        detail += (
            f"; {len(doomed)} of them are older than {days - CLEANUP_MARGIN_DAYS} days and "
            f"Claude Code deletes transcripts after {days} (cleanupPeriodDays)"
        )
        fix += ", now; or raise cleanupPeriodDays in Claude Code's settings.json"
    return Check("transcripts", "WARN", detail, fix)


def _cleanup_days(environ: Mapping[str, str]) -> int:
    from hookclient.install import settings_path

    data = _json(settings_path("user", dict(environ))) or {}
    days = data.get("cleanupPeriodDays", CLEANUP_PERIOD_DAYS)
    return days if isinstance(days, int) and not isinstance(days, bool) else CLEANUP_PERIOD_DAYS


def _line_after(path: str, offset: int) -> bool:
    """A complete line past ``offset`` (a torn last line, never finished, is not one)."""
    from hookclient.transcript import open_regular  # a FIFO there must not hang doctor

    try:
        with open_regular(path) as fh:
            fh.seek(offset)
            return b"\n" in fh.read(1024 * 1024)
    except OSError:
        return False


def _age_of(path: str) -> float:
    try:
        return time.time() - os.path.getmtime(path)
    except OSError:
        return 0.0


def _has_ours(groups: Any, is_ours: Callable[[object], bool]) -> bool:
    if not isinstance(groups, list):
        return False
    return any(
        isinstance(g, dict)
        and any(isinstance(h, dict) and is_ours(h.get("command")) for h in g.get("hooks") or [])
        for g in groups
    )


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def report(checks: list[Check], as_json: bool) -> str:
    if as_json:
        return json.dumps([asdict(c) for c in checks], indent=2)
    from hookclient.term import paint

    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        line = f"{paint(f'{c.status:<4}', c.status)}  {c.name:<{width}}  {c.detail}"
        if c.fix and c.status != "OK":
            line += f"\n      {'':<{width}}  fix: {c.fix}"
        lines.append(line)
    return "\n".join(lines)
