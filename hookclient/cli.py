"""The ``hookclient`` command line: ``send`` (the hook) and ``config``.

``main(argv) -> int`` is the one boundary where a :class:`HookclientError` becomes one
line on stderr and an exit code.  Commands import what they need inside themselves, so
the hook's path (``send``) pays for nothing else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hookclient import __version__
from hookclient.errors import HookclientError, UsageError
from hookclient.term import quiet_on_closed_pipe

DESCRIPTION = """\
Deliver Claude Code hook events to a webhook without losing any.

Register `hookclient send` as the command of your Claude Code hooks. Each event is
written to a spool on disk before anything else, so it is never dropped, and the hook
never prints to stdout. In auto mode (the default) the hook writes the event to pending/
and, when no queued daemon holds the spool's lock, starts one detached
(queued run --idle-exit <idle_exit>) and exits without waiting; with autostart = false
(or when the daemon cannot be started) it delivers like direct. Direct mode POSTs at
once with bounded retries; spool mode leaves every event to `queued`.
"""

EPILOG = """\
examples:
  hookclient send --event PostToolUse < payload.json   what Claude Code runs
  hookclient install --scope user                        register the hook in Claude Code
  hookclient trace 019ab2c4                              one event's timeline and state
  hookclient doctor                                      is everything in place?
  hookclient backfill                                    ship transcripts not shipped yet
  hookclient config show                                 effective settings and sources
  hookclient config path                                 which files are read
  hookclient schema --list                               the wire format's JSON Schemas

docs: README.md (configuration table, operations, troubleshooting)
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hookclient",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hookclient {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    send = commands.add_parser(
        "send",
        help="the hook: read one event on stdin, spool it, deliver it",
        description=(
            "Read one Claude Code hook event (JSON) on stdin, wrap it in a traced envelope, "
            "write it to the spool, then deliver it according to the mode. Prints nothing "
            "on stdout; exits 0, or 1 (one line on stderr) only if the event could be "
            "neither delivered nor spooled."
        ),
        epilog=(
            "modes:\n"
            "  auto    default: the hook writes the event to pending/ and, when no queued\n"
            "          daemon holds the spool's lock, starts one detached\n"
            "          (queued run --idle-exit <idle_exit>) and exits without waiting;\n"
            "          the daemon delivers it. With autostart = false (or when the\n"
            "          daemon cannot be started) it delivers like direct\n"
            "  direct  POST now with bounded retries (inline_attempts within inline_budget),\n"
            "          then leave it in pending/ for queued\n"
            "  spool   write to pending/ and exit: fastest, queued delivers it\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("--event", help="event name when the payload has no hook_event_name")
    send.add_argument(
        "--mode", choices=("auto", "direct", "spool"), help="override [delivery] mode"
    )
    _config_flag(send)

    install = commands.add_parser(
        "install",
        help="register `hookclient send` in Claude Code's settings",
        description=(
            "Add this installation's `hookclient send` (absolute path) to a Claude Code "
            "settings file for every hook event (or those given), each with an explicit "
            "timeout covering the hook's budget. Keeps everything else in the file, first "
            "copies the old file to a timestamped backup in the user state directory "
            "(<state>/backups, never in .claude/), and changes nothing on a second run. Never "
            "registers WorktreeCreate or MessageDisplay."
        ),
        epilog=(
            "scopes:\n"
            "  user     ~/.claude/settings.json (every project)\n"
            "  project  <project>/.claude/settings.json (shared with the team, but the\n"
            "           command path in it is this machine's: prefer local for yourself)\n"
            "  local    <project>/.claude/settings.local.json (this checkout only)\n"
            "the project is $CLAUDE_PROJECT_DIR, else the current directory\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    install.add_argument("--scope", choices=("user", "project", "local"), default="user")
    install.add_argument("--events", nargs="+", metavar="E", help="only these events")
    install.add_argument(
        "--mode", choices=("auto", "direct", "spool"), help="write --mode M into the hook command"
    )
    install.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help='register tool events with "async": true (never Stop/SessionEnd)',
    )
    install.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    _config_flag(install)
    uninstall = commands.add_parser(
        "uninstall",
        help="remove hookclient's entries from Claude Code's settings",
        description="Remove only the hook entries that run `hookclient send`; everything "
        "else in the file stays. Writes a timestamped backup first, in <state>/backups.",
    )
    uninstall.add_argument("--scope", choices=("user", "project", "local"), default="user")
    uninstall.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")

    trace = commands.add_parser(
        "trace",
        help="every log line of one event, in time order, and where it is now",
        description=(
            "Read every log file (rotated ones included) and print one event's timeline: "
            "the hook's spool write and attempts, the daemon's attempts with status and "
            "elapsedMs, the final outcome; then its spool state, or 'delivered'. A unique "
            "prefix of the requestId is enough. With --session, list a session's events."
        ),
    )
    trace.add_argument("request_id", nargs="?", metavar="REQUEST_ID")
    trace.add_argument("--session", metavar="SESSION_ID", help="list this session's events")
    trace.add_argument("--json", action="store_true", help="print JSON")
    _config_flag(trace)

    backfill = commands.add_parser(
        "backfill",
        help="spool every transcript not shipped yet, for a daemon to deliver",
        description=(
            "Spool what Claude Code's transcripts hold beyond their checkpoints (every\n"
            "session under the projects directory, its subagents and tool-result files\n"
            "included) as Transcript envelopes, then make sure a daemon delivers them, as\n"
            "the hook does in auto mode. Recovers what the hooks missed: sessions from\n"
            "before hookclient was installed, or while it was off. A second run spools\n"
            "nothing; it is safe while queued follows the same files. Shows a progress\n"
            "bar on a terminal, else one summary line. Refuses when [transcripts] sync\n"
            "is false; exits 1 if a transcript could not be read (error.log says which)."
        ),
        epilog=(
            "examples:\n"
            "  hookclient backfill                          everything not shipped yet\n"
            "  hookclient backfill --dry-run                count it, write nothing\n"
            "  hookclient backfill --since 2026-11-01       sessions changed since then\n"
            "  hookclient backfill --session ID --force     one session again, from the start\n"
            "  hookclient backfill --json                   {files, records, bytes, envelopes,\n"
            "                                               skipped, errors}\n"
            "the store keeps each record once: --force never stores anything twice"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill.add_argument(
        "--projects-dir", metavar="DIR", help="default: [transcripts] projects_dir"
    )
    backfill.add_argument(
        "--session", nargs="+", metavar="ID", help="only these sessions (full session ids)"
    )
    backfill.add_argument(
        "--since", metavar="DATE", help="only sessions changed since (YYYY-MM-DD or ISO time)"
    )
    backfill.add_argument("--dry-run", action="store_true", help="count, write nothing")
    backfill.add_argument(
        "--force", action="store_true", help="ignore checkpoints: read every file from its start"
    )
    backfill.add_argument("--json", action="store_true", help="print the counts as JSON")
    _config_flag(backfill)

    schema = commands.add_parser(
        "schema",
        help="print the JSON Schemas of the envelopes and of every hook event",
        description=(
            "The wire format as JSON Schema (2020-12), the files the store validates\n"
            "envelopes against: envelope, transcript (event Transcript), heartbeat, the\n"
            "batch answer, what every hook payload may carry (hook-common), and one\n"
            "schema per hook event that Claude Code 2.1.197 knows. For writing your own\n"
            'receiver: README, "Writing your own receiver".'
        ),
        epilog=(
            "examples:\n"
            "  hookclient schema --list             name, file, size and title of each\n"
            "  hookclient schema envelope           print one\n"
            "  hookclient schema PostToolUse        one hook event's payload\n"
            "  hookclient schema --out schemas/     write them all, laid out as their $refs say\n"
            "a $ref resolves against its schema's $id: give a validator every file by $id"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    schema.add_argument("name", nargs="?", metavar="NAME", help="the schema to print")
    schema.add_argument("--list", action="store_true", help="list the schemas (the default)")
    schema.add_argument("--out", metavar="DIR", help="write every schema file under DIR")

    doctor = commands.add_parser(
        "doctor",
        help="check config, token, endpoint, spool, daemon, backlog, logs, Claude settings, "
        "transcripts",
        description="Check everything hookclient needs, one line per check (OK, WARN or "
        "FAIL, with the fix). Exits 1 if any check FAILs. The token is never printed.",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    _config_flag(doctor)

    config = commands.add_parser(
        "config",
        help="show the effective configuration or where it is read from",
        description="Inspect the configuration: precedence, highest first, is flags > "
        "HOOKCLIENT_* env > project .claude/hookclient.toml > user config file > defaults.",
    )
    config_commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    show = config_commands.add_parser(
        "show",
        help="every key with its value and where it came from (token redacted)",
        description=(
            "Print every configuration key: its effective value, where it came from (default,\n"
            "env HOOKCLIENT_..., or the path of the file that set it) and, in brackets, the\n"
            "variable that would override it. The token and the signing secret are shown as\n"
            "[REDACTED] or (not set), never in clear, so the output is safe to paste."
        ),
        epilog=(
            "examples:\n"
            "  hookclient config show\n"
            "  hookclient config show --json              key, value, source, env per row\n"
            "  hookclient config show --config ./ci.toml  what that one file gives"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    _config_flag(show)
    path = config_commands.add_parser(
        "path",
        help="the config files read, user file first, and whether each exists",
        description=(
            "Print the configuration files in the order they are read: the user file first,\n"
            "then the project file (<project>/.claude/hookclient.toml, the project being\n"
            "$CLAUDE_PROJECT_DIR or the current directory), each with 'exists' or 'absent'.\n"
            "A key set in both takes the later file's value: a value in the project file wins.\n"
            "Precedence, highest first: flags > HOOKCLIENT_* env > project file > user file >\n"
            "defaults. With --config (or HOOKCLIENT_CONFIG) only that one file is read."
        ),
        epilog="example:\n  hookclient config path",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_flag(path)
    return parser


def _config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="read this TOML file instead of the project and user files (env HOOKCLIENT_CONFIG)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a closed stdout pipe (``| head -1``) ends it quietly (exit 141)."""
    words = list(sys.argv[1:] if argv is None else argv)
    return quiet_on_closed_pipe(lambda: _main(words))


def _main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        if argv[:1] == ["send"]:
            # A typo in the hook's registered command must not lose the event: capture it
            # with whatever flags could be understood, and let the stderr line tell why.
            from hookclient.hook import parse_flags, send

            return send(parse_flags(argv[1:])[0])
        return 1
    try:
        if args.command == "send":
            from hookclient.hook import SendOptions, send

            return send(SendOptions(event=args.event, mode=args.mode, config=args.config))
        if args.command == "backfill":
            from hookclient import backfill

            return backfill.run(args)
        if args.command in ("config", "install", "uninstall", "trace", "doctor", "schema"):
            from hookclient import commands

            return int(getattr(commands, args.command)(args))
    except HookclientError as exc:
        print(f"hookclient: {exc}", file=sys.stderr)
        return 1
    build_parser().print_help(sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
