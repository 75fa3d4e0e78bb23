"""The inspection commands of ``hookclient`` (everything but ``send``)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from hookclient.config import SCHEMA, Config, default_paths, env_name, load_config
from hookclient.errors import TraceError, UsageError
from hookclient.urls import safe_url


def config(args: argparse.Namespace) -> int:
    """``config show`` and ``config path``."""
    paths = default_paths(os.environ, args.config)
    if args.config_command == "path":
        for path in paths:
            print(f"{path}\t{'exists' if os.path.exists(path) else 'absent'}")
        return 0
    if args.config_command != "show":
        print("hookclient config: choose 'show' or 'path' (see hookclient config --help)")
        return 1
    cfg = load_config(paths, os.environ)
    rows = describe(cfg)
    if args.json:
        print(
            json.dumps(
                [dict(zip(("key", "value", "source", "env"), r, strict=True)) for r in rows],
                indent=2,
            )
        )
        return 0
    width = max(len(r[0]) for r in rows)
    vwidth = min(max(len(r[1]) for r in rows), 60)
    for key, value, source, env in rows:
        print(f"{key:<{width}}  {value:<{vwidth}}  {source}  ({env})")
    return 0


def install(args: argparse.Namespace) -> int:
    """``hookclient install``: add our entries to a Claude Code settings file."""
    from hookclient import install as inst

    cfg = load_config(default_paths(os.environ, args.config), os.environ)
    path = inst.settings_path(args.scope)
    events = inst.choose_events(args.events)
    command = inst.hook_command(args.mode, args.config)
    plan = inst.plan_install(path, cfg, events, command, use_async=args.use_async)
    code = _finish(plan, args.dry_run, f"registered {len(events)} events in {path}", inst.apply)
    if args.scope == "project":
        # the team shares this file, but the absolute path is this machine's venv
        print(
            f"note: {path} is shared with the team, but its hook command ({command}) is a"
            " path on this machine; for a personal install use --scope local instead"
        )
    return code


def uninstall(args: argparse.Namespace) -> int:
    """``hookclient uninstall``: remove only our entries."""
    from hookclient import install as inst

    path = inst.settings_path(args.scope)
    plan = inst.plan_uninstall(path)
    return _finish(plan, args.dry_run, f"removed hookclient's hooks from {path}", inst.apply)


def _finish(plan: Any, dry_run: bool, done: str, apply: Any) -> int:
    if not plan.changed:
        print(f"{plan.path}: already up to date, nothing to change")
        return 0
    if dry_run:
        print(plan.diff(), end="")
        return 0
    backup = apply(plan)
    print(done + (f" (backup: {backup})" if backup else ""))
    return 0


def trace(args: argparse.Namespace) -> int:
    """``hookclient trace``: one event's timeline, or a session's events."""
    from hookclient import trace as tr

    cfg = load_config(default_paths(os.environ, args.config), os.environ)
    if args.session:
        events = tr.session_events(Path(cfg.logs.dir), args.session)
        if args.json:
            print(json.dumps(events, indent=2))
        elif not events:
            print(f"no events of session {args.session} in {cfg.logs.dir}")
        for item in [] if args.json else events:
            print(
                f"{item['firstSeen']}  {item['requestId']}  {item['event']:<20}  {item['outcome']}"
            )
        return 0
    if not args.request_id:
        raise TraceError("give a REQUEST_ID (or a unique prefix), or --session SESSION_ID")
    request_id, lines = tr.timeline(Path(cfg.logs.dir), args.request_id)
    state = tr.spool_state(Path(cfg.queue.dir), request_id, lines)
    if args.json:
        print(json.dumps({"requestId": request_id, "lines": lines, "spool": state}, indent=2))
        return 0
    print(
        f"requestId {request_id}  traceId {lines[0].get('traceId', '-')}  "
        f"event {lines[0].get('event', '-')}"
    )
    for line in lines:
        print(tr.format_line(line))
    where = state["state"]
    extra = {k: v for k, v in state.items() if k != "state" and v is not None}
    print(f"now: {where}" + (f"  {json.dumps(extra)}" if extra else ""))
    return 0


def doctor(args: argparse.Namespace) -> int:
    """``hookclient doctor``: one line per check; exit 1 on any FAIL."""
    from hookclient import doctor as doc

    checks = doc.run_checks(os.environ, args.config)
    print(doc.report(checks, args.json))
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def describe(config: Config) -> list[tuple[str, str, str, str]]:
    """Rows of (key, value, source, env var) for ``hookclient config show``; no secrets."""
    rows = []
    for section, key in SCHEMA:
        name = f"{section}.{key}"
        value: Any = getattr(getattr(config, section), key)
        if isinstance(value, tuple):
            value = list(value)
        shown = "" if value is None else str(value)
        if name == "endpoint.url":
            shown = safe_url(shown) or ""
        rows.append((name, shown, config.sources[name], env_name(section, key)))
    token = "[REDACTED]" if config.endpoint.token else "(not set)"
    rows.append(("endpoint.token", token, config.endpoint.token_source, config.endpoint.token_env))
    secret = "[REDACTED]" if config.endpoint.signing_secret else "(not set)"
    rows.append(
        ("endpoint.signing_secret", secret, "env", config.endpoint.signing_secret_env or "")
    )
    return rows


def schema(args: argparse.Namespace) -> int:
    """``hookclient schema``: list, print or write the wire format's JSON Schemas."""
    from hookclient import contract

    if args.out is not None:
        if args.name is not None or args.list:
            raise UsageError("--out writes them all; give no NAME or --list")
        for name in contract.names():
            target = Path(args.out) / contract.file_of(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(contract.text(name), encoding="utf-8")
        print(f"{len(contract.names())} schemas written under {args.out}")
        return 0
    if args.name is not None:
        if args.list:
            raise UsageError("give NAME or --list, not both")
        try:
            print(contract.text(args.name), end="")
        except KeyError:
            raise UsageError(
                f"no schema {args.name!r} "
                "(hookclient schema --list names them; event names are case-sensitive)"
            ) from None
        return 0
    rows = [(n, contract.file_of(n), len(contract.text(n).encode()), contract.load(n)["title"])
            for n in contract.names()]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    fwidth = max(len(r[1]) for r in rows)
    for name, file, size, title in rows:
        print(f"{name:<{width}}  {file:<{fwidth}}  {size:>6} B  {title}")
    return 0
