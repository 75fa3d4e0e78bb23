"""The queue admin commands: status, list, show, replay-failed, purge.

They read and move spool files with the same ``Spool`` methods as the daemon, so they
work whether a daemon runs or not: a replayed file lands in pending/ with an
``os.replace``, which the daemon's watcher sees at once.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hookclient.breaker import BREAKER_FILE, Breaker
from hookclient.clock import parse_iso, utc_iso
from hookclient.config import Config
from hookclient.errors import AdminError, CorruptFile
from hookclient.logs import RETRY_FAILED, log_files
from hookclient.spool import STATES, Record, Spool, State, last_error_of
from hookclient.urls import safe_url
from queued.control import daemon_running, pid_alive, same_config

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

if TYPE_CHECKING:
    from hookclient.spoolstate import SpoolState


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    match = DURATION.match(text)
    if not match:
        raise AdminError(f"cannot read duration {text!r}: use a number with s, m, h, d or w")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_since(text: str, now: float) -> float:
    """An RFC 3339 time, or a duration meaning 'that long ago'."""
    if DURATION.match(text):
        return now - parse_duration(text)
    try:
        return parse_iso(text)
    except ValueError:
        raise AdminError(
            f"cannot read --since {text!r}: give a time (2026-11-22T10:00:00Z) or a duration (2h)"
        ) from None


def open_spool(config: Config) -> Spool:
    root = Path(config.queue.dir)
    if not (root / State.PENDING.value).is_dir():
        raise AdminError(
            f"no spool at {root}: nothing was ever spooled with this configuration "
            "(check `hookclient config show`, or pass --config)"
        )
    return Spool(root, max_bytes=config.queue.max_spool_bytes)


@dataclass
class Row:
    record: Record

    def summary(self) -> dict[str, Any]:
        env, state = self.record.envelope, self.record.state
        return {
            "requestId": env.get("requestId"),
            "state": self.record.where.value,
            "event": env.get("event"),
            "sessionId": env.get("sessionId"),
            "createdAt": state.get("createdAt"),
            "attempts": state.get("attempts", 0),
            "retries": state.get("retries", 0),
            "nextAttemptAt": state.get("nextAttemptAt"),
            "lastStatus": last_error_of(state, "status"),
            "lastError": last_error_of(state, "detail"),
            "file": self.record.path.name,
        }


def records(spool: Spool, states: Iterable[State]) -> Iterable[Record]:
    for state in states:
        for item in spool.records(state):
            if isinstance(item, Record):
                yield item


# -- status ------------------------------------------------------------------------------


def status(config: Config) -> dict[str, Any]:
    spool = open_spool(config)
    now = time.time()
    counts = {s.value: len(spool.paths(s)) for s in (*STATES, State.CORRUPT)}
    counts[State.TMP.value] = _entries(spool.dir(State.TMP))  # tmp names end in .tmp
    oldest = next_due = None
    for record in records(spool, [State.PENDING]):
        created = _time(record.state.get("createdAt"))
        due = _time(record.state.get("nextAttemptAt"))
        if created is not None and (oldest is None or created < oldest):
            oldest = created
        if due is not None and (next_due is None or due < next_due):
            next_due = due
    daemon = daemon_running(Path(config.queue.dir))
    stale = daemon is not None and not same_config(daemon, config)
    if daemon is not None:
        daemon = {k: v for k, v in daemon.items() if k != "fingerprint"}  # not for bug reports
    breaker = _breaker(config).read()
    if breaker.get("state") == "open" and _breaker(config).until(breaker) <= now:
        breaker["state"] = "half-open (next attempt probes)"
    warnings = []
    if counts[State.FAILED.value]:
        warnings.append(
            f"{counts[State.FAILED.value]} event(s) in failed/: see `queued list --state failed`, "
            "fix the cause, then `queued replay-failed --all`"
        )
    if oldest is not None and now - oldest > config.queue.backoff[-1]:
        warnings.append(
            f"the oldest pending event waits for {(now - oldest) / 3600:.1f} h, longer than the "
            "last backoff step: the endpoint has been failing (see error.log)"
        )
    if stale and daemon is not None:
        fix = (
            "`queued restart` (or the next hook event replaces it)"
            if daemon.get("autostarted")
            else "restart it (its service manager, or `queued restart`)"
        )
        warnings.append(
            f"the daemon (pid {daemon.get('pid')}) delivers with another endpoint, token or "
            f"signing secret than this configuration: {fix}"
        )
    if counts[State.CORRUPT.value]:
        warnings.append(
            f"{counts[State.CORRUPT.value]} file(s) in corrupt/: read them, repair "
            "and move back to pending/, or `queued purge --state corrupt --older-than 0`"
        )
    return {
        "spool": str(Path(config.queue.dir)),
        "endpoint": safe_url(config.endpoint.url),
        "warnings": warnings,
        "counts": counts,
        "oldestPendingAgeSeconds": round(now - oldest, 1) if oldest else None,
        "nextDueAt": utc_iso(next_due) if next_due else None,
        "daemon": daemon,
        "breaker": breaker,
        "lastDelivery": _last_line(config, "success", ("delivered",)),
        "lastFailure": _last_line(config, "error", FAILURES),
        "transcripts": _transcripts(config),
    }


def _transcripts(config: Config) -> list[dict[str, Any]]:
    """Each transcript file this spool follows: how far it was read, how much is left
    (``behind``: bytes written since, or None when the file is gone)."""
    from hookclient.checkpoints import Checkpoints

    found = []
    for checkpoint in Checkpoints(config.queue.dir).all():
        try:
            size: int | None = os.path.getsize(checkpoint.path)
        except OSError:
            size = None
        found.append({
            "path": checkpoint.path, "sessionId": checkpoint.session_id,
            "agentId": checkpoint.agent_id, "offset": checkpoint.offset, "size": size,
            "behind": None if size is None else max(0, size - checkpoint.offset),
            "syncedAt": utc_iso(checkpoint.synced_at) if checkpoint.synced_at else None,
        })  # fmt: skip
    return found


def format_status(info: dict[str, Any]) -> str:
    counts = info["counts"]
    daemon = info["daemon"]
    if daemon:
        how = "autostarted by a hook" if daemon.get("autostarted") else "started by hand"
        idle = daemon.get("idleExit")
        idle_text = f", exits after {idle:g} s idle" if idle else ""
        pid = daemon.get("pid")
        who = f"pid {pid}" if pid else "pid unknown: its daemon.pid could not be written"
        daemon_text = f"running, {who} ({how}{idle_text})"
    else:
        daemon_text = "not running"
    breaker = info["breaker"]
    breaker_text = breaker.get("state", "closed")
    if breaker.get("openUntil") and breaker_text == "open":
        breaker_text += f" until {utc_iso(float(breaker['openUntil']))}"
    lines = [
        f"spool       {info['spool']}",
        f"endpoint    {info['endpoint'] or '(none configured)'}",
        "events      " + "  ".join(f"{k} {v}" for k, v in counts.items()),
        f"oldest      {_age(info['oldestPendingAgeSeconds'])}",
        f"next due    {info['nextDueAt'] or '-'}",
        f"daemon      {daemon_text}",
        f"breaker     {breaker_text} ({breaker.get('failures', 0)} failures in a row)",
        f"last sent   {_line_text(info['lastDelivery'])}",
        f"last error  {_line_text(info['lastFailure'])}",
        *_transcript_lines(info.get("transcripts", [])),
    ]
    from hookclient.term import paint

    lines += [paint("warning", "WARN") + f"     {w}" for w in info.get("warnings", [])]
    return "\n".join(lines)


def _transcript_lines(files: list[dict[str, Any]], shown: int = 10) -> list[str]:
    """One summary line, then the files still behind (the most behind first)."""
    if not files:
        return ["transcripts none shipped yet"]
    behind = sorted((f for f in files if f["behind"]), key=lambda f: -int(f["behind"]))
    gone = sum(1 for f in files if f["size"] is None and f["offset"])
    unwritten = sum(1 for f in files if f["size"] is None and not f["offset"])
    summary = f"transcripts {len(files)} with checkpoints, {len(behind)} behind"
    if behind:
        summary += f" by {sum(int(f['behind']) for f in behind):,} bytes"
    if gone:
        summary += f", {gone} deleted since they were shipped (cleanupPeriodDays)"
    if unwritten:
        summary += f", {unwritten} named by an event but not written (yet)"
    lines = [summary]
    lines += [f"            {f['behind']:>12,} bytes behind  {f['path']}" for f in behind[:shown]]
    if len(behind) > shown:
        lines.append(f"            ... and {len(behind) - shown} more (`queued status --json`)")
    return lines


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago (pending)"
    return f"{seconds:.0f}s ago (pending)"


def _line_text(line: dict[str, Any] | None) -> str:
    if not line:
        return "-"
    parts = [line.get("ts", ""), line.get("msg", ""), str(line.get("requestId", ""))]
    if line.get("status"):
        parts.append(f"HTTP {line['status']}")
    if line.get("error"):
        parts.append(str(line["error"])[:80])
    return "  ".join(p for p in parts if p)


#: error.log messages that mean an event did not get through: for good, or for now
#: (RETRY_FAILED: during an outage, the line that says why events wait)
FAILURES = ("failed permanently", "retries exhausted", "event could not be spooled", RETRY_FAILED)


def _last_line(config: Config, stream: str, wanted: tuple[str, ...]) -> dict[str, Any] | None:
    """The newest line of ``stream`` about an event of this configuration's spool
    whose msg is one of ``wanted``.

    The daemons and hooks of every endpoint share one log directory, so a line counts
    only if its ``spool`` field is this spool: the hook and the daemon write it on
    every line (a few bytes; no other file, no other write on the hook's path).  Lines
    from before that field name no spool and are skipped rather than misattributed.
    Files are read backwards in blocks, to their start if need be (another endpoint's
    busy daemon may have written megabytes since), and only lines whose raw bytes
    name the spool are parsed.
    """
    spool = config.queue.dir
    needle = f'"spool":{json.dumps(spool, ensure_ascii=False)}'.encode("utf-8", "replace")
    paths = [p for p in log_files(Path(config.logs.dir)) if p.name.startswith(stream)]
    for path in reversed(paths):
        try:
            for raw in _lines_backwards(path):
                line = _parse(raw) if needle in raw else None
                if line and line.get("msg") in wanted and _about(line, spool):
                    return line
        except OSError:
            continue
    return None


def _lines_backwards(path: Path, block: int = 65536) -> Iterator[bytes]:
    """The lines of ``path``, newest first, read in blocks from its end."""
    with path.open("rb") as fh:
        end = fh.seek(0, 2)
        carry = b""
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            lines = (fh.read(end - start) + carry).split(b"\n")
            end = start
            carry = lines.pop(0) if start > 0 else b""  # cut by the block: completed next
            yield from reversed(lines)


def _about(line: dict[str, Any], spool: str) -> bool:
    """Is ``line`` about an event of ``spool``?"""
    return bool(line.get("requestId")) and line.get("spool") == spool


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        line = json.loads(raw)
    except ValueError:
        return None
    return line if isinstance(line, dict) else None


# -- list / show -------------------------------------------------------------------------


def list_events(
    config: Config, *, state: str | None, event: str | None, limit: int
) -> list[dict[str, Any]]:
    spool = open_spool(config)
    states = [State(state)] if state else list(STATES)
    out: list[dict[str, Any]] = []
    for record in records(spool, states):
        if len(out) >= limit:
            break
        if event and record.envelope.get("event") != event:
            continue
        out.append(Row(record).summary())
    return out


def show(config: Config, request_id: str) -> dict[str, Any]:
    spool = open_spool(config)
    matches = spool.matching(request_id)
    if not matches:
        raise AdminError(f"no event {request_id} in {spool.root} (delivered events leave no file)")
    if len(matches) > 1:
        raise AdminError(f"{request_id} matches {len(matches)} events; give more of the id")
    try:
        record = spool.read(matches[0])
    except CorruptFile as exc:
        raise AdminError(str(exc)) from None
    # "where": the directory; "state" is the file's own state object (retries, history)
    return {"where": record.where.value, "file": str(record.path), **record.body()}


# -- replay-failed -----------------------------------------------------------------------


@dataclass
class Selector:
    ids: list[str]
    all: bool
    event: str | None
    status: int | None
    since: float | None

    def empty(self) -> bool:
        self.ids = [i for i in self.ids if i.strip()]  # "" would select everything
        return not (self.ids or self.all or self.event or self.status is not None or self.since)

    def matches(self, record: Record) -> bool:
        env, state = record.envelope, record.state
        if self.ids and not any(str(env.get("requestId", "")).startswith(i) for i in self.ids):
            return False
        if self.event and env.get("event") != self.event:
            return False
        if self.status is not None and last_error_of(state, "status") != self.status:
            return False
        if self.since is not None:
            when = _time(state.get("lastAttemptAt") or state.get("createdAt"))
            if when is None or when < self.since:
                return False
        return True


def replay_failed(config: Config, selector: Selector, *, dry_run: bool) -> list[dict[str, Any]]:
    """failed/ -> pending/, retries reset, due now.  Returns what was (or would be) moved."""
    if selector.empty():
        raise AdminError(
            "replay-failed needs a selector: REQUEST_ID ..., --all, --event E, --status CODE "
            "or --since T (add --dry-run to preview)"
        )
    from hookclient.term import Progress

    spool = open_spool(config)
    moved = []
    now = time.time()
    progress = Progress("replaying", len(spool.paths(State.FAILED)))
    for record in records(spool, [State.FAILED]):
        progress.step()
        if not selector.matches(record):
            continue
        summary = Row(record).summary()
        if not dry_run:
            record.state["retries"] = 0
            record.state["nextAttemptAt"] = utc_iso(now)
            record.state.setdefault("history", []).append(
                {"at": utc_iso(now), "by": "replay-failed", "outcome": "replayed"}
            )
            try:
                spool.transition(record, State.PENDING)
            except FileNotFoundError:
                continue
            _log(config, "replayed from failed", record)
        moved.append(summary)
    progress.close()
    return moved


def _log_row(config: Config, msg: str, row: dict[str, Any], **extra: Any) -> None:
    """:func:`_log` for a summary row (requestId and event; no trace ids at hand)."""
    _queue_line(config, msg, requestId=row.get("requestId"), event=row.get("event"), **extra)


def _log(config: Config, msg: str, record: Record, **extra: Any) -> None:
    env = record.envelope
    ids = {k: env.get(k) for k in ("requestId", "traceId", "spanId", "event")}
    _queue_line(config, msg, **ids, **extra)


def _queue_line(config: Config, msg: str, **fields: Any) -> None:
    """One queue.log line about an event the command put in pending/."""
    _writer(config).log(
        "queue", "info", msg, state="pending", spool=Path(config.queue.dir), **fields
    )


def _writer(config: Config) -> Any:
    from hookclient.logs import LogWriter

    return LogWriter(
        Path(config.logs.dir),
        component="cli",
        level=config.logs.level,
        max_bytes=config.logs.max_bytes,
        backups=config.logs.backups,
    )


# -- purge -------------------------------------------------------------------------------


def purge_candidates(config: Config, state: str, older_than: float) -> list[Path]:
    spool = open_spool(config)
    if state not in ("failed", "corrupt"):
        raise AdminError("purge works on --state failed or --state corrupt only")
    # 0 means every file, even one dated after now (a clock that was set back)
    cutoff = math.inf if older_than <= 0 else time.time() - older_than
    directory = spool.dir(State(state))
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        try:
            if path.lstat().st_mtime < cutoff:
                found.append(path)
        except OSError:
            continue
    return found


def _breaker(config: Config) -> Breaker:
    """The spool's breaker, read through its own class (the clock-jump guard included)."""
    queue = config.queue
    return Breaker(
        Path(queue.dir) / BREAKER_FILE,
        failures=queue.breaker_failures,
        cooldown=queue.breaker_cooldown,
    )


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _entries(directory: Path) -> int:
    try:
        return sum(1 for _ in directory.iterdir())
    except OSError:
        return 0


def _time(value: Any) -> float | None:
    try:
        return parse_iso(str(value)) if value else None
    except ValueError:
        return None


def flush_candidates(config: Config, ids: list[str]) -> list[dict[str, Any]]:
    """The pending events ``queued flush`` makes due now: all, or those whose requestId
    starts with one of ``ids`` (refused, with nothing changed, when none matches)."""
    spool = open_spool(config)
    wanted = [i for i in ids if i.strip()]
    found = [
        Row(record).summary()
        for record in records(spool, [State.PENDING])
        if not wanted or str(record.envelope.get("requestId", "")).startswith(tuple(wanted))
    ]
    if wanted and not found:
        raise AdminError(f"no pending event matches {' '.join(wanted)} in {spool.root}")
    return found


def request_flush(config: Config, ids: list[str], rows: list[dict[str, Any]]) -> None:
    """Ask the daemon (now, or the next one to start) to send ``rows`` now: it reads
    ``flush.json`` and treats every pending file whose due time was set before it as
    due.  The files are not rewritten here: the daemon may be claiming one this
    instant, and only it moves files out of pending/.  An open breaker's cooldown ends,
    so the next attempt probes at once."""
    from queued.control import request_flush as write_request

    wanted = [i for i in ids if i.strip()] or None
    write_request(Path(config.queue.dir), time.time(), wanted)
    for row in rows:
        _log_row(config, "flush requested: due now", row, previousDue=row["nextAttemptAt"])
    _breaker(config).probe_now()


# -- adopt -------------------------------------------------------------------------------


def adopt_source(config: Config, source: str) -> Path:
    """The spool ``queued adopt --from`` names, checked before anything is stopped."""
    from hookclient.spools import resolve

    src = resolve(source)
    if src.resolve() == Path(config.queue.dir).resolve():
        raise AdminError(f"{src} is this configuration's own spool: nothing to adopt")
    if not (src / State.PENDING.value).is_dir():
        raise AdminError(f"no spool at {src} (see `queued status` for the spools holding events)")
    return src


def adopt(
    config: Config, src: Path, *, dry_run: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Move the events of another spool (pending, failed, and processing/ files no live
    hook holds) into this configuration's pending/, retries reset, due now.

    The other spool's daemon is stopped first.  Each file is claimed by a rename into
    that spool's processing/ (a daemon a hook starts there meanwhile cannot send it
    too), written here (fsync'd), then removed there: a crash in between leaves it
    claimed by nobody, recovered and sent by that spool's daemon, at least once.
    Returns (what was or would be moved, what was skipped: held by a live hook).
    """
    from queued.control import stop

    other = Spool(src)
    if not dry_run:
        stop(src, wait=config.endpoint.timeout + 10.0)
    target = Spool(
        Path(config.queue.dir),
        max_bytes=config.queue.max_spool_bytes,
        endpoint=safe_url(config.endpoint.url),
    )
    moved, skipped = [], []
    now = time.time()
    limit = config.delivery.inline_budget + config.endpoint.timeout + 30.0
    for record in records(other, [State.PENDING, State.PROCESSING, State.FAILED]):
        summary = Row(record).summary()
        if record.where is State.PROCESSING and _held_by_live_hook(record.state, now, limit):
            skipped.append(summary)
            continue
        if dry_run or _adopt_one(config, other, target, record, now):
            moved.append(summary)
    return moved, skipped


def _adopt_one(config: Config, other: Spool, target: Spool, record: Record, now: float) -> bool:
    claimed = record.path
    if record.where is not State.PROCESSING:
        claimed = other.dir(State.PROCESSING) / record.path.name
        try:
            record.path.replace(claimed)
        except FileNotFoundError:
            return False  # claimed by someone else meanwhile
    state = record.state
    state.pop("owner", None)
    state["retries"] = 0
    state["nextAttemptAt"] = utc_iso(now)
    state.setdefault("history", []).append(
        {"at": utc_iso(now), "by": "adopt", "outcome": "adopted", "from": str(other.root)}
    )
    target.put(record, State.PENDING)
    claimed.unlink(missing_ok=True)
    _log(config, "adopted from another spool", record, fromSpool=str(other.root))
    return True


def _held_by_live_hook(state: SpoolState, now: float, limit: float) -> bool:
    """A direct-mode hook's claim that is still live (by the daemon's own rule: its pid
    runs and the claim is younger than inline_budget + timeout + 30 s)."""
    owner = state.get("owner")
    if not isinstance(owner, dict) or owner.get("by") != "hook":
        return False
    pid = owner.get("pid")
    claimed = _time(owner.get("claimedAt"))
    if not isinstance(pid, int) or pid <= 0 or claimed is None or now - claimed >= limit:
        return False
    return pid_alive(pid)


# -- other spools ------------------------------------------------------------------------


def other_spools(config: Config) -> list[dict[str, Any]]:
    """The spools other than this configuration's that hold events (an old URL's, the
    unrouted one), each with its endpoint, counts and the command that adopts them."""
    from hookclient.spools import others

    return [
        {
            "spool": str(info.dir),
            "endpoint": info.label(),
            "counts": info.counts,
            "adopt": info.adopt_command(),
        }
        for info in others(config)
    ]


def format_others(rows: list[dict[str, Any]]) -> str:
    """``queued status`` lines for :func:`other_spools`: nothing delivers those events
    to this endpoint until they are adopted."""
    from hookclient.term import paint

    lines = []
    for row in rows:
        counts = "  ".join(f"{k} {v}" for k, v in row["counts"].items() if v)
        lines.append(
            paint("warning", "WARN")
            + f"     another spool holds events: {row['spool']} ({row['endpoint']}): {counts}; "
            f"to send them to this endpoint: {row['adopt']}"
        )
    return "\n".join(lines)
