"""``hookclient backfill``: spool every transcript under Claude Code's projects
directory from its checkpoint, then make sure a daemon delivers what was spooled.

What the hooks missed (before hookclient was installed, while it was switched off, a
hook the CLI killed before its spool write) is in the transcripts; this brings it to the
store.  It shares the daemon's checkpoints, so a second run spools nothing, and it is
safe while the daemon follows the same files (each file's checkpoint lock makes them
take turns).  ``--force`` reads every file from its start: the store keeps each record
once, so nothing is stored twice.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hookclient.checkpoints import Checkpoint, Checkpoints
from hookclient.config import Config, default_paths, load_config
from hookclient.errors import UsageError
from hookclient.logs import LogWriter, structlog_logger
from hookclient.spool import Spool
from hookclient.sync import (
    TRANSCRIPT_SHARE,
    Counts,
    Syncer,
    all_sessions,
    projects_dir,
    session_files,
    tool_result_files,
)
from hookclient.urls import safe_url


@dataclass(frozen=True)
class Session:
    path: str
    session_id: str


def run(args: argparse.Namespace) -> int:
    """The command: select, spool (with progress), report, hand over to a daemon."""
    cfg = load_config(default_paths(os.environ, args.config), os.environ)
    if not cfg.transcripts.sync:
        where = cfg.sources.get("transcripts.sync", "the configuration")
        raise UsageError(
            f"backfill: [transcripts] sync is false ({where}): this machine ships hook "
            "events only; set sync = true (or HOOKCLIENT_TRANSCRIPTS_SYNC=1) to backfill"
        )
    root = os.path.expanduser(args.projects_dir) if args.projects_dir else projects_dir(cfg)
    if not os.path.isdir(root):
        raise UsageError(
            f"backfill: no projects directory at {root}: pass --projects-dir DIR "
            "or set [transcripts] projects_dir (Claude Code keeps transcripts in "
            "$CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects)"
        )
    since = _since(args.since)
    chosen = list(_selected(root, set(args.session or ()), since))
    _check_found(root, args.session or [], chosen)
    spool = Spool(
        cfg.queue.dir, max_bytes=cfg.queue.max_spool_bytes, endpoint=safe_url(cfg.endpoint.url)
    )
    writer = LogWriter(Path(cfg.logs.dir), component="cli", level=cfg.logs.level,
                       max_bytes=cfg.logs.max_bytes, backups=cfg.logs.backups)  # fmt: skip
    if args.dry_run:
        writer.threshold = 100  # a dry run writes nothing, not even a log line
    log = structlog_logger(writer, spool=cfg.queue.dir)
    todo = 0 if args.json else _remaining(chosen, Checkpoints(cfg.queue.dir), args.force)
    counts, start = Counts(), time.monotonic()
    with _progress(todo, show=sys.stderr.isatty() and not args.json) as bar:
        syncer = Syncer(cfg, spool, log, progress=bar)
        for session in chosen:
            counts.add(syncer.session(session.path, session.session_id, force=args.force,
                                      dry_run=args.dry_run))  # fmt: skip
    log.info("backfill done", projectsDir=root, dryRun=args.dry_run, force=args.force,
             **counts.as_dict())  # fmt: skip
    daemon = None if args.dry_run or not counts.envelopes else _hand_over(cfg, args.config)
    if args.json:
        print(json.dumps(counts.as_dict()))
    else:
        print(_summary(counts, args.dry_run, daemon, cfg, time.monotonic() - start))
    if counts.deferred:
        print(
            f"backfill: stopped at {TRANSCRIPT_SHARE:.0%} of the spool's max_spool_bytes "
            f"({cfg.queue.max_spool_bytes:,} bytes), the share transcripts may take: run it "
            "again once `queued status` shows the backlog delivered",
            file=sys.stderr,
        )
    return 1 if counts.errors else 0


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"backfill: --since {text!r} is not a date: use YYYY-MM-DD or an ISO "
            "time such as 2026-12-01T09:00"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _selected(root: str, sessions: set[str], since: float | None) -> Iterator[Session]:
    """The main transcripts under ``root``: those named (if any), changed since ``since``
    (a session counts as changed when any of its files is)."""
    for path, session_id in all_sessions(root):
        if sessions and session_id not in sessions:
            continue
        if since is not None and _last_change(path, session_id) < since:
            continue
        yield Session(path, session_id)


def _check_found(root: str, sessions: list[str], chosen: list[Session]) -> None:
    """A ``--session`` that names nothing, or a projects dir holding no project, is a
    mistake to say, not a silent 'nothing to do'."""
    missing = sorted(set(sessions) - {s.session_id for s in chosen})
    if missing:
        raise UsageError(
            f"backfill: no transcript under {root} for session {', '.join(missing)}: give "
            "full session ids (`hookclient trace --session` or the file names "
            "<project>/<session id>.jsonl show them)"
        )
    if not chosen and not sessions and glob.glob(os.path.join(glob.escape(root), "*.jsonl")):
        raise UsageError(
            f"backfill: {root} holds transcripts itself: it is one project's folder; pass "
            f"the projects directory above it (--projects-dir {os.path.dirname(root)})"
        )


def _last_change(path: str, session_id: str) -> float:
    stamps = []
    for item in session_files(path, session_id):
        try:
            stamps.append(os.stat(item.path).st_mtime)
        except OSError:
            continue
    return max(stamps, default=0.0)


def _remaining(chosen: list[Session], checkpoints: Checkpoints, force: bool) -> int:
    """Bytes still to read, for the progress bar's total (an estimate: a checkpoint that
    no longer holds means more)."""
    total = 0
    for session in chosen:
        for item in session_files(session.path, session.session_id):
            try:
                size = os.path.getsize(item.path)
            except OSError:
                continue
            saved = None if force else checkpoints.load(item.key)
            total += max(0, size - (saved.offset if saved else 0))
            if item.agent_id is None:
                total += _tool_results_left(item.path, item.session_id, saved)
    return total


def _tool_results_left(path: str, session_id: str, saved: Checkpoint | None) -> int:
    shipped = saved.tool_results if saved else {}
    left = 0
    for file in tool_result_files(path, session_id):
        size = os.path.getsize(file)
        if shipped.get(os.path.basename(file)) != size:
            left += size
    return left


class _progress:
    """A tqdm bar of bytes read (records, rate) on a terminal; nothing otherwise."""

    def __init__(self, total: int, *, show: bool) -> None:
        self.show = show
        self.total = total
        self.bar: Any = None
        self.records = 0

    def __enter__(self) -> _progress:
        if self.show:
            from tqdm import tqdm  # only this command: never on the hook's path

            self.bar = tqdm(total=self.total, unit="B", unit_scale=True, desc="backfill",
                            file=sys.stderr, dynamic_ncols=True)  # fmt: skip
        return self

    def __call__(self, records: int, size: int) -> None:
        self.records += records
        if self.bar is not None:
            self.bar.update(size)
            self.bar.set_postfix(records=self.records, refresh=False)

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _hand_over(cfg: Config, config_path: str | None) -> str:
    """Make sure a daemon delivers what was spooled, as a hook in auto mode does."""
    from hookclient import autostart
    from hookclient.lockprobe import holder, lock_held

    if not cfg.endpoint.url:
        return "no [endpoint] url is configured: the envelopes wait in the spool"
    if lock_held(os.path.join(cfg.queue.dir, "daemon.lock")):
        pid = (holder(cfg.queue.dir) or {}).get("pid", "?")
        return f"the running daemon (pid {pid}) delivers them"
    if not cfg.delivery.autostart:
        return "no daemon runs (autostart = false): start one with `queued run`"
    try:
        started = autostart.start(cfg.queue.dir, cfg.queue.idle_exit, config_path)
    except OSError as exc:
        return f"no daemon could be started ({exc.strerror or exc}): run `queued run`"
    return (
        f"started a daemon (pid {started}) to deliver them"
        if started
        else ("a daemon is starting to deliver them")
    )


def _summary(counts: Counts, dry_run: bool, daemon: str | None, cfg: Config, seconds: float) -> str:
    verb = "would spool" if dry_run else "spooled"
    line = (
        f"backfill: {verb} {_many(counts.records, 'record')} ({_size(counts.bytes)}) from "
        f"{counts.files - counts.skipped:,} of {_many(counts.files, 'transcript file')} in "
        f"{_many(counts.envelopes, 'envelope')}, {seconds:.1f} s"
    )
    if counts.skipped:
        line += f"; {counts.skipped:,} had nothing new"
    if counts.errors:
        line += f"; {counts.errors:,} could not be read (see {cfg.logs.dir}/error.log)"
    if daemon:
        line += f"; {daemon}"
    return line


def _many(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"
