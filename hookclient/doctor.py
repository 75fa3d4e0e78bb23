"""``hookclient doctor``: is everything in place for no event to be lost?

One check per line, each OK, WARN or FAIL with the fix; exit 1 on any FAIL.  Secrets are
never printed: the token check says only whether one is set and where it comes from.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hookclient.clock import parse_iso
from hookclient.config import Config, default_paths, load_config, safe_url
from hookclient.errors import ConfigError
from hookclient.lockprobe import lock_held

LOW_DISK = 100 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str
    fix: str = ""


def run_checks(environ: Mapping[str, str], config_path: str | None) -> list[Check]:
    try:
        config = load_config(default_paths(environ, config_path), environ)
    except ConfigError as exc:
        return [Check("config", "FAIL", str(exc), "fix the key named above")]
    files = ", ".join(str(p) for p in config.files) or "defaults and environment only"
    checks = [Check("config", "OK", f"valid ({files})")]
    for check in (
        _endpoint,
        _token,
        _reachable,
        _spool,
        _daemon,
        _backlog,
        _breaker,
        _logs,
        _claude_settings,
    ):
        try:
            checks.append(check(config, environ))
        except Exception as exc:  # noqa: BLE001 - a broken check is reported, not fatal
            checks.append(Check(check.__name__.strip("_"), "FAIL", f"check crashed: {exc!r}"))
    return checks


def _endpoint(config: Config, environ: Mapping[str, str]) -> Check:
    url = config.endpoint.url
    if not url:
        return Check(
            "endpoint",
            "FAIL",
            "no [endpoint] url configured: events are only spooled",
            "set url under [endpoint] (or HOOKCLIENT_ENDPOINT_URL)",
        )
    from hookclient.delivery import transport_warnings

    warnings = transport_warnings(config.endpoint)
    if warnings:
        return Check("endpoint", "WARN", "; ".join(warnings), "use https with verify = true")
    return Check("endpoint", "OK", safe_url(url) or "")


def _token(config: Config, environ: Mapping[str, str]) -> Check:
    if config.endpoint.token:
        return Check("token", "OK", f"set (from {config.endpoint.token_source}; not shown)")
    return Check(
        "token",
        "WARN",
        f"no token: {config.endpoint.token_env} is unset",
        f"export {config.endpoint.token_env}=... in the environment Claude Code runs "
        "in, or set [endpoint] token_file (chmod 600)",
    )


def _reachable(config: Config, environ: Mapping[str, str]) -> Check:
    url = config.endpoint.url
    if not url:
        return Check("reachable", "WARN", "skipped: no endpoint url")
    import httpx

    from hookclient.delivery import Sender

    sender = Sender(config.endpoint)
    base = url.split("://", 1)[0] + "://" + url.split("://", 1)[1].split("/", 1)[0]
    try:
        try:
            answer = sender.client.get(base + "/healthz", timeout=config.endpoint.timeout)
            how = "GET /healthz"
            if answer.status_code == 404:
                answer = sender.client.request("OPTIONS", url, timeout=config.endpoint.timeout)
                how = "OPTIONS"
        except httpx.ConnectError as exc:
            tls = "certificate" in str(exc).lower() or "ssl" in str(exc).lower()
            fix = (
                "check ca_bundle / the server's certificate"
                if tls
                else "start the receiver, or check the url and the network"
            )
            return Check("reachable", "FAIL", f"{'TLS' if tls else 'cannot connect'}: {exc}", fix)
        except httpx.HTTPError as exc:
            return Check(
                "reachable",
                "FAIL",
                f"{type(exc).__name__}: {exc}",
                "check the url and that the server answers within endpoint.timeout",
            )
    finally:
        sender.close()
    return Check("reachable", "OK", f"{how} answered HTTP {answer.status_code}")


def _spool(config: Config, environ: Mapping[str, str]) -> Check:
    root = config.queue.dir
    if not root.exists():
        return Check("spool", "OK", f"{root} (not created yet: the first event creates it)")
    mode = stat.S_IMODE(root.stat().st_mode)
    if mode & 0o077:
        return Check(
            "spool",
            "FAIL",
            f"{root} is readable by others (mode {mode:o})",
            f"chmod -R go-rwx {root}",
        )
    if not os.access(root, os.W_OK):
        return Check("spool", "FAIL", f"{root} is not writable", "fix its owner or permissions")
    free = shutil.disk_usage(root).free
    if free < LOW_DISK:
        return Check(
            "spool",
            "WARN",
            f"{root}: only {free // 1024 // 1024} MiB free",
            "free disk space: a full disk is the one way an event can be lost",
        )
    return Check("spool", "OK", f"{root} private, writable, {free // 1024 // 1024} MiB free")


def _daemon(config: Config, environ: Mapping[str, str]) -> Check:
    root = config.queue.dir
    if lock_held(root / "daemon.lock"):
        info = _json(root / "daemon.pid") or {}
        how = "autostarted" if info.get("autostarted") else "started by hand or a service"
        return Check("daemon", "OK", f"running, pid {info.get('pid', '?')} ({how})")
    waiting = any((root / "pending").glob("*.json"))
    if config.delivery.mode == "auto" and config.delivery.autostart and not waiting:
        return Check("daemon", "OK", "not running (auto mode starts it with the next event)")
    if waiting:
        return Check(
            "daemon",
            "WARN",
            "not running, and events are waiting in pending/",
            "run `queued run --once` now (the next hook event in auto mode would also start it)",
        )
    return Check(
        "daemon",
        "WARN",
        "not running, and nothing will start it",
        "run `queued run` (or `queued service install`, or set autostart = true)",
    )


def _backlog(config: Config, environ: Mapping[str, str]) -> Check:
    pending = sorted((config.queue.dir / "pending").glob("*.json"))
    failed = list((config.queue.dir / "failed").glob("*.json"))
    oldest = None
    if pending:
        try:
            state = json.loads(pending[0].read_text())["state"]
            oldest = time.time() - parse_iso(state["createdAt"])
        except (OSError, ValueError, KeyError, TypeError):
            oldest = None
    text = f"{len(pending)} pending, {len(failed)} failed"
    if oldest is not None:
        text += f", oldest pending {oldest / 60:.0f} min old"
    if failed:
        return Check(
            "backlog",
            "WARN",
            text,
            "see `queued list --state failed`; fix the cause, then `queued replay-failed --all`",
        )
    if oldest is not None and oldest > config.queue.backoff[-1]:
        return Check(
            "backlog",
            "WARN",
            text,
            "the endpoint has been failing for a long time: "
            "`queued status` and the error log say why",
        )
    return Check("backlog", "OK", text)


def _breaker(config: Config, environ: Mapping[str, str]) -> Check:
    state = _json(config.queue.dir / "breaker.json") or {"state": "closed"}
    if state.get("state") == "open" and float(state.get("openUntil", 0)) > time.time():
        return Check(
            "breaker",
            "WARN",
            f"open after {state.get('failures')} failures in a row",
            "the endpoint is failing; events are spooled meanwhile, nothing is lost",
        )
    return Check("breaker", "OK", f"closed ({state.get('failures', 0)} recent failures)")


def _logs(config: Config, environ: Mapping[str, str]) -> Check:
    directory = config.logs.dir
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
            "fix its permissions or set [logs] dir",
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
