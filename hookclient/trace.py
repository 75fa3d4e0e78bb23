"""``hookclient trace``: one event's whole life, from every log file and the spool.

Log files are streamed line by line (rotated ones included) and a line is parsed only
when its raw text contains the id, so 60 MB of logs cost a scan, not a JSON parse each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hookclient.errors import TraceError
from hookclient.logs import log_files
from hookclient.spool import Record, Spool

FINAL = {"delivered": "delivered", "failed permanently": "failed", "retries exhausted": "failed"}


def scan(log_dir: Path, *needles: str) -> Iterator[dict[str, Any]]:
    """Every parsed log line whose raw text contains one of ``needles``."""
    raw_needles = [n.encode() for n in needles]
    for path in log_files(log_dir):
        try:
            fh = path.open("rb")
        except OSError:
            continue
        with fh:
            for raw in fh:
                if not any(n in raw for n in raw_needles):
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(line, dict):
                    line["_file"] = path.name
                    yield line


def timeline(log_dir: Path, request_id: str) -> tuple[str, list[dict[str, Any]]]:
    """(full requestId, its lines in time order); ``request_id`` may be a unique prefix."""
    lines = [
        x for x in scan(log_dir, request_id) if str(x.get("requestId", "")).startswith(request_id)
    ]
    ids = sorted({str(x["requestId"]) for x in lines})
    if not ids:
        raise TraceError(f"no log line mentions {request_id} in {log_dir}")
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
        raise TraceError(f"{request_id} matches {len(ids)} events ({shown}); give more of the id")
    # same millisecond: the outcome line comes after the attempt that produced it
    lines.sort(key=lambda x: (str(x.get("ts", "")), x.get("msg") in FINAL))
    return ids[0], lines


def spool_state(spool_dir: Path, request_id: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the event is now: this configuration's spool first, then every other
    spool on the machine (an old URL's, the unrouted one), then "delivered" from the
    logs."""
    record = Spool(spool_dir).find(request_id) if spool_dir.exists() else None
    if record is not None:
        return _where(record)
    from hookclient import spools

    for directory in spools.candidates():
        record = Spool(directory).find(request_id)
        if record is not None:
            info = spools.describe(directory)
            found = _where(record)
            found["note"] = (
                f"in another spool ({info.label()}): nothing sends it to this endpoint "
                f"until you run `{info.adopt_command()}`"
            )
            return found
    finals = [FINAL[x["msg"]] for x in lines if x.get("msg") in FINAL]
    if finals and finals[-1] == "delivered":
        return {"state": "delivered"}
    return {"state": "not in any spool", "note": "delivered before these logs begin, or purged"}


def _where(record: Record) -> dict[str, Any]:
    state = record.state
    return {
        "state": record.where.value,
        "file": str(record.path),
        "attempts": state.get("attempts"),
        "retries": state.get("retries"),
        "nextAttemptAt": state.get("nextAttemptAt"),
        "lastError": state.get("lastError"),
    }


def format_line(line: dict[str, Any]) -> str:
    who = f"{line.get('component', '?')}[{line.get('pid', '?')}]"
    details = []
    for key in ("attempt", "status", "outcome", "elapsedMs", "state", "reason", "nextAttemptAt"):
        if line.get(key) is not None:
            value = line[key]
            details.append(f"{key}={value}")
    if line.get("error"):
        details.append(f"error={str(line['error'])[:120]}")
    return f"{line.get('ts', '?'):<24}  {who:<16}  {line.get('msg', ''):<28}  {' '.join(details)}"


def session_events(log_dir: Path, session_id: str) -> list[dict[str, Any]]:
    """The events of one session: requestId, event, first seen, last word."""
    events: dict[str, dict[str, Any]] = {}
    for line in scan(log_dir, session_id):
        if line.get("sessionId") != session_id or not line.get("requestId"):
            continue
        rid = str(line["requestId"])
        events.setdefault(
            rid, {"requestId": rid, "event": line.get("event"), "firstSeen": line.get("ts")}
        )
    for item in events.values():
        item["outcome"] = "spooled"
    finals = sorted(
        (
            x
            for x in scan(log_dir, *(f'"msg":"{m}"' for m in FINAL))
            if x.get("requestId") in events
        ),
        key=lambda x: str(x.get("ts", "")),
    )
    for line in finals:
        events[str(line["requestId"])]["outcome"] = FINAL[line["msg"]]
    return sorted(events.values(), key=lambda x: str(x["firstSeen"]))
