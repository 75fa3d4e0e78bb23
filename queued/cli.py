"""The ``queued`` command line: the daemon (``run``) and the queue admin commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hookclient import __version__
from hookclient.cli import Parser
from hookclient.config import Config, default_paths, load_config
from hookclient.errors import AdminError, HookclientError
from queued import admin

DESCRIPTION = """\
queued delivers the events that `hookclient send` spooled, and lets you inspect and
steer the queue. Every command works whether the daemon runs or not.
"""

EPILOG = """\
examples:
  queued run                         deliver until stopped (Ctrl-C or SIGTERM)
  queued run --once                  deliver what is due now, then exit (cron, SessionEnd)
  queued status                      counts per state, daemon, breaker, last delivery
  queued list --state failed         what failed, with the last error
  queued show 019ab2c4               one event: envelope, state, attempt history
  queued replay-failed --status 401  send the 401s again (after fixing the token)
  queued purge --state failed --older-than 30d --yes
  queued flush                       after an outage: send the backlog now, not after backoff
  queued stop | queued restart       stop (and start again) this spool's daemon
  queued adopt --from unrouted       bring over events spooled while no url was set
  queued service install             run the daemon under systemd / launchd
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="queued",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"queued {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    run = sub.add_parser(
        "run",
        help="run the daemon: deliver spooled events with backoff",
        description=(
            "Take the spool's lock, move abandoned claims back to pending/, then deliver due "
            "events in creation order; new files are seen within milliseconds (watchdog) and "
            "a rescan every rescan_interval seconds catches anything missed. Retryable "
            "failures wait backoff[k] (with jitter, or the server's Retry-After); after "
            "max_retries the event moves to failed/. It also ships the transcript of each "
            'session whose events it delivers ([transcripts] sync; README "Transcripts"). '
            "SIGTERM or Ctrl-C finishes in-flight deliveries and exits 0; a second signal "
            "exits at once."
        ),
    )
    run.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    run.add_argument("--workers", type=int, metavar="N", help="concurrent deliveries (default 4)")
    run.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="exit 0 after this long with nothing pending or in flight (0 = never, default)",
    )
    run.add_argument(
        "--replace",
        action="store_true",
        help="if a daemon with another endpoint, token or signing secret holds the spool, "
        "stop it and take over (what a hook does after you fix the token or the url)",
    )
    run.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="run at this lower CPU priority (nice N, e.g. 10); default 0 keeps the priority "
        "it was started with",
    )
    run.add_argument("--autostarted", action="store_true", help=argparse.SUPPRESS)
    _common(run, json_flag=False)

    status = sub.add_parser(
        "status",
        help="counts per state, daemon, breaker, last delivery",
        description=(
            "Read the spool of this configuration and its logs, and print: how many files\n"
            "are in pending/, processing/, failed/, corrupt/ and tmp/; the age of the oldest\n"
            "pending event and when the next one is due; whether a daemon holds the spool's\n"
            "lock (its pid, and whether a hook started it); the circuit breaker's state; this\n"
            "spool's last delivery (success.log) and last failure (error.log: a failed try\n"
            "that will be retried counts, so during an outage it says why); then warnings,\n"
            "each with the command that deals with it. Changes nothing."
        ),
        epilog="examples:\n  queued status\n  queued status --json    the same, for scripts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(status)

    lst = sub.add_parser(
        "list",
        help="list spooled events, oldest first",
        description=(
            "One line per event file in pending/, processing/ and failed/ (or the --state\n"
            "given), oldest first: requestId, state, event, createdAt, retries, when the next\n"
            "attempt is due and the last HTTP status. Delivered events leave no file, so they\n"
            "are not listed (`hookclient trace` finds them in the logs)."
        ),
        epilog=(
            "examples:\n"
            "  queued list --state failed             what failed, and its last status\n"
            "  queued list --event Stop --limit 10\n"
            "  queued list --json                     every field, lastError included"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lst.add_argument("--state", choices=("pending", "processing", "failed"))
    lst.add_argument("--event", metavar="E", help="only this event name (e.g. PostToolUse)")
    lst.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    _common(lst)

    show = sub.add_parser(
        "show",
        help="one event: envelope, state and attempt history",
        description=(
            "Print one spooled event as JSON: which directory it is in, its file, the\n"
            "envelope exactly as it will be sent, and its state (retries, next attempt, last\n"
            "error, and the attempt history: when, by the hook or the daemon, with what\n"
            "outcome). Give the requestId or a unique prefix of it. An event already\n"
            "delivered has no file any more: `hookclient trace REQUEST_ID` tells its story."
        ),
        epilog="example:\n  queued show 019ab2c4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("request_id", metavar="REQUEST_ID", help="the requestId or a unique prefix")
    _common(show, json_flag=False)

    replay = sub.add_parser(
        "replay-failed",
        help="move failed events back to pending/, retries reset, due now",
        description=(
            "Select failed events and move them back to pending/ with their retries reset and "
            "due now; a running daemon picks them up at once. Refuses without a selector."
        ),
    )
    replay.add_argument("request_ids", nargs="*", metavar="REQUEST_ID", help="ids or prefixes")
    replay.add_argument("--all", action="store_true", help="every failed event")
    replay.add_argument("--event", metavar="E", help="failed events of this event name")
    replay.add_argument(
        "--status", type=int, metavar="CODE", help="whose last HTTP status was CODE"
    )
    replay.add_argument("--since", metavar="T", help="last attempted since T (time or 2h, 1d)")
    replay.add_argument("--dry-run", action="store_true", help="print what would move, move none")
    _common(replay)

    purge = sub.add_parser(
        "purge",
        help="delete old failed or corrupt files",
        description="Delete files in failed/ or corrupt/ older than a duration. Asks first "
        "unless --yes.",
    )
    purge.add_argument("--state", required=True, choices=("failed", "corrupt"))
    purge.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 30d, 12h")
    purge.add_argument("--yes", action="store_true", help="do not ask")
    _common(purge, json_flag=False)
    flush = sub.add_parser(
        "flush",
        help="make pending events due now and wake the daemon (after an outage)",
        description=(
            "Make pending events due now (all, or those named) instead of waiting out their "
            "backoff, end an open circuit breaker's cooldown so the next attempt probes at "
            "once, and wake the running daemon (or start one, as a hook would)."
        ),
    )
    flush.add_argument("request_ids", nargs="*", metavar="REQUEST_ID", help="ids or prefixes")
    _common(flush)

    stop = sub.add_parser(
        "stop",
        help="stop this spool's daemon and wait until it has exited",
        description=(
            "Send SIGTERM to the daemon of this configuration's spool and wait until it has "
            "exited (in-flight deliveries finish first, each bounded by endpoint.timeout). "
            "One still running after --wait seconds gets SIGKILL, which is safe: the next "
            "start recovers what it held."
        ),
    )
    _wait_flag(stop)
    _common(stop, json_flag=False)

    restart = sub.add_parser(
        "restart",
        help="stop this spool's daemon and start a new one with the current configuration",
        description=(
            "`queued stop`, then start a detached daemon (`queued run --idle-exit <idle_exit>`, "
            "as a hook would) with the configuration and token of this shell. Under a service "
            "manager, restart the service instead (systemctl --user restart hookclient-queued)."
        ),
    )
    _wait_flag(restart)
    _common(restart, json_flag=False)

    adopt = sub.add_parser(
        "adopt",
        help="move another spool's events into this configuration's spool",
        description=(
            "Move the events of another spool (pending, failed, and abandoned processing/ "
            "files) into this configuration's pending/, retries reset, due now, and make "
            "sure a daemon delivers them. Use it after fixing an endpoint URL (the old "
            "URL's spool keeps its events: they are never moved between endpoints "
            "silently), or for events captured while no URL was configured or the "
            "configuration could not be read (`--from unrouted`). `queued status` lists "
            "every spool that holds events, with this command."
        ),
    )
    adopt.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SPOOL_DIR|URL",
        help="a spool directory, the endpoint URL it was for, or `unrouted`",
    )
    adopt.add_argument("--dry-run", action="store_true", help="print what would move, move none")
    _common(adopt)

    service = sub.add_parser(
        "service",
        help="run the daemon under systemd (Linux) or launchd (macOS)",
        description="Write, enable and start a systemd user unit (Linux) or a launchd agent "
        "(macOS) that runs `queued run`, restarted on failure; print what to do elsewhere. "
        "The supervisor does not see your shell's environment: put the token in a "
        "token_file, or (systemd) in ~/.config/hookclient/environment as HOOKCLIENT_TOKEN=...",
    )
    service.add_argument("action", choices=("install", "uninstall", "status"))
    service.add_argument(
        "--dry-run",
        action="store_true",
        help="print the unit file and the commands, change nothing",
    )
    _common(service, json_flag=False)
    return parser


def _wait_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", type=float, metavar="SECONDS", help="default: endpoint.timeout + 10"
    )


def _common(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="read this TOML file (env HOOKCLIENT_CONFIG)"
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON")


def load(args: argparse.Namespace) -> Config:
    return load_config(default_paths(os.environ, args.config), os.environ)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a closed stdout pipe (``| head -1``) ends it quietly (exit 141)."""
    from hookclient.errors import UsageError
    from hookclient.term import quiet_on_closed_pipe

    def body() -> int:
        try:
            args = build_parser().parse_args(argv)
            if args.command is None:
                build_parser().print_help(sys.stderr)
                return 1
            return COMMANDS[args.command](args)
        except UsageError as exc:  # already "queued [command]: ...": no second prefix
            print(exc, file=sys.stderr)
            return 1
        except HookclientError as exc:
            print(f"queued: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    return quiet_on_closed_pipe(body)


def cmd_run(args: argparse.Namespace) -> int:
    from queued.daemon import Daemon, LockHeld

    config = load(args)
    if not config.endpoint.url:
        raise AdminError("no [endpoint] url configured; see `hookclient config show`")
    daemon = Daemon(
        config,
        workers=args.workers,
        idle_exit=args.idle_exit or 0.0,
        autostarted=args.autostarted,
        replace=args.replace,
        niceness=args.nice,
        watch=not args.once,  # --once scans once and exits: no observer to start and stop
    )
    try:
        return daemon.run(once=args.once)
    except LockHeld:
        if args.autostarted:
            return 0  # several hooks raced to start one; another daemon won: all is well
        raise


def cmd_status(args: argparse.Namespace) -> int:
    config = load(args)
    others = admin.other_spools(config)
    try:
        info = admin.status(config)
    except AdminError as exc:
        if not others:
            raise
        print(
            json.dumps({"error": str(exc), "otherSpools": others}, indent=2)
            if args.json
            else f"{exc}\n{admin.format_others(others)}"
        )
        return 0
    info["otherSpools"] = others
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(admin.format_status(info))
    if info["otherSpools"]:
        print(admin.format_others(info["otherSpools"]))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = admin.list_events(load(args), state=args.state, event=args.event, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no events")
        return 0
    _table(
        rows, ["requestId", "state", "event", "createdAt", "retries", "nextAttemptAt", "lastStatus"]
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    print(json.dumps(admin.show(load(args), args.request_id), indent=2, ensure_ascii=False))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import time

    selector = admin.Selector(
        ids=args.request_ids,
        all=args.all,
        event=args.event,
        status=args.status,
        since=admin.parse_since(args.since, time.time()) if args.since else None,
    )
    config = load(args)
    retired = None if args.dry_run else _retire_stale(config)
    moved = admin.replay_failed(config, selector, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(moved, indent=2))
        return 0
    verb = "would move" if args.dry_run else "moved"
    for row in moved:
        print(f"{verb}  {row['requestId']}  {row['event']}  last status {row['lastStatus']}")
    print(f"{len(moved)} event(s) {verb} from failed/ to pending/")
    _deliver_now(args, config, retired, moved and not args.dry_run)
    return 0


def _retire_stale(config: Config) -> dict[str, Any] | None:
    from queued.control import retire_stale

    return retire_stale(config)


def _deliver_now(
    args: argparse.Namespace, config: Config, retired: dict[str, Any] | None, anything: object
) -> None:
    """After events went to pending/: a daemon with this shell's configuration (and
    token) delivers them now; say which."""
    from queued.control import ensure_delivering

    if anything or retired:
        print(ensure_delivering(config, args.config, retired))


def cmd_flush(args: argparse.Namespace) -> int:
    config = load(args)
    flushed = admin.flush_candidates(config, args.request_ids)  # refuses before any change
    retired = _retire_stale(config)
    admin.request_flush(config, args.request_ids, flushed)
    if args.json:
        print(json.dumps(flushed, indent=2))
    else:
        print(f"{len(flushed)} pending event(s) due now")
    _deliver_now(args, config, retired, flushed)
    return 0


def _stop_wait(args: argparse.Namespace, config: Config) -> float:
    return args.wait if args.wait is not None else config.endpoint.timeout + 10.0


def cmd_stop(args: argparse.Namespace) -> int:
    from queued.control import stop

    config = load(args)
    info = stop(Path(config.queue.dir), wait=_stop_wait(args, config))
    if info is None:
        print(f"no queued runs on {config.queue.dir}")
    else:
        how = " (killed after --wait)" if info.get("killed") else ""
        print(f"stopped queued (pid {info.get('pid')}){how}")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    from hookclient import autostart
    from queued.control import stop, wait_running

    config = load(args)
    if not config.endpoint.url:
        raise AdminError("no [endpoint] url configured; see `hookclient config show`")
    info = stop(Path(config.queue.dir), wait=_stop_wait(args, config))
    if info is not None:
        print(f"stopped queued (pid {info.get('pid')})")
    try:
        Path(config.queue.dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        pid = autostart.start(Path(config.queue.dir), config.queue.idle_exit, args.config)
    except OSError as exc:
        raise AdminError(
            f"cannot start queued: {exc.strerror or exc}; run `queued run` yourself"
        ) from None
    if pid is None:
        print("a hook is starting a daemon right now (with its configuration, not this shell's)")
        return 0
    if not wait_running(Path(config.queue.dir), pid, _stop_wait(args, config)):
        raise AdminError(f"queued (pid {pid}) did not start: see error.log in {config.logs.dir}")
    print(f"started queued (pid {pid}; exits after {config.queue.idle_exit:g} s idle)")
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    config = load(args)
    src = admin.adopt_source(config, args.source)  # refuses before anything is stopped
    retired = None if args.dry_run else _retire_stale(config)
    moved, skipped = admin.adopt(config, src, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"moved": moved, "skipped": skipped}, indent=2))
    else:
        verb = "would move" if args.dry_run else "moved"
        for row in moved:
            print(f"{verb}  {row['requestId']}  {row['event']}  was {row['state']}")
        print(f"{len(moved)} event(s) {verb} from {src} to {config.queue.dir}/pending")
        if skipped:
            print(
                f"{len(skipped)} event(s) skipped: a hook is sending them right now "
                "(run `queued adopt` again in a minute)"
            )
    _deliver_now(args, config, retired, moved and not args.dry_run)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    config = load(args)
    older = admin.parse_duration(args.older_than)
    paths = admin.purge_candidates(config, args.state, older)
    if not paths:
        print(f"nothing in {args.state}/ older than {args.older_than}")
        return 0
    question = f"delete {len(paths)} file(s) from {args.state}/ older than {args.older_than}?"
    if not args.yes and not admin.confirm(question):
        print(f"{question} not confirmed: nothing deleted (pass --yes to skip the question)")
        return 1
    from hookclient.term import Progress

    progress = Progress("deleting", len(paths))
    for path in paths:
        path.unlink(missing_ok=True)
        progress.step()
        if not progress.enabled:
            print(f"deleted  {path.name}")
    progress.close()
    print(f"{len(paths)} file(s) deleted")
    return 0


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    widths = {c: max(len(c), *(len(cell(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(cell(row.get(c)).ljust(widths[c]) for c in columns).rstrip())


def cmd_service(args: argparse.Namespace) -> int:
    from queued import service as svc

    config = load(args)
    home = Path(os.environ.get("HOME") or Path.home())
    unit = svc.for_platform(sys.platform, home, args.config, Path(config.logs.dir))
    if unit is None:
        print(svc.windows_hint(args.config))
        return 0 if args.action != "install" else 1
    if args.action == "status":
        problem = svc.run_all([unit.status])
        print(f"{unit.path}: {'present' if unit.path.exists() else 'not installed'}")
        if problem:
            print(problem)
        return 0 if unit.path.exists() and not problem else 1
    commands = unit.enable if args.action == "install" else unit.disable
    if args.dry_run:
        if args.action == "install":
            print(f"# {unit.path}\n{unit.content}")
        for cmd in commands:
            print("$ " + " ".join(cmd))
        return 0
    if args.action == "install":
        svc.write(unit)
        print(f"wrote {unit.path}")
        problem = svc.run_all(commands)
    else:
        problem = svc.run_all(commands) if unit.path.exists() else None
        unit.path.unlink(missing_ok=True)
        print(f"removed {unit.path}")
    if problem:
        manual = "; ".join(" ".join(c) for c in commands)
        print(f"queued service: {problem}; run by hand: {manual}", file=sys.stderr)
        return 1
    print(f"{args.action}ed: {unit.kind} runs `queued run` now and at login")
    return 0


COMMANDS = {
    "run": cmd_run,
    "status": cmd_status,
    "list": cmd_list,
    "show": cmd_show,
    "replay-failed": cmd_replay,
    "purge": cmd_purge,
    "flush": cmd_flush,
    "stop": cmd_stop,
    "restart": cmd_restart,
    "adopt": cmd_adopt,
    "service": cmd_service,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
