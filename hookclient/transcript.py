"""Reading one Claude Code transcript file: its complete lines from an offset, as the
records a Transcript envelope carries (README "Transcripts").

The CLI appends one JSON object a line, but not always whole lines at once, so only a
line that has its newline is read; the rest waits for the next read.  Each record is
redacted as a hook payload is (``redact_keys``, ``redact_patterns``).  A line that is not
a JSON object becomes a ``hookclient.invalid`` record; one over ``max_record_bytes``
keeps only what identifies it and where it sits in the conversation.

Only the daemon and ``hookclient backfill`` import this: the hook never reads a
transcript.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from hookclient.envelope import redact, redact_raw, redact_strings

#: How many bytes before a checkpoint's offset its hash covers: enough to tell that the
#: CLI rewrote the file under us, cheap to read again.
TAIL_BYTES = 4096
INVALID = "hookclient.invalid"
TOOL_RESULT = "hookclient.tool-result"
#: What a record cut for its size keeps: its identity and its place in the tree.
_KEPT = ("type", "uuid", "parentUuid", "sessionId", "timestamp", "isSidechain", "agentId")


@dataclass(frozen=True)
class Limits:
    """How records are cut into envelopes and cleaned ([transcripts] and [delivery])."""

    batch_records: int = 500
    batch_bytes: int = 1024 * 1024
    max_record_bytes: int = 1024 * 1024
    redact_keys: tuple[str, ...] = ()
    redact_patterns: tuple[str, ...] = ()


@dataclass
class Batch:
    """Records of consecutive complete lines: ``offset`` is where the first began,
    ``end_offset`` just past the last one's newline."""

    offset: int
    end_offset: int
    records: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0


def batches(fh: BinaryIO, offset: int, limits: Limits) -> Iterator[Batch]:
    """The complete lines from ``offset`` on, in batches of at most ``batch_records``
    records and ``batch_bytes`` bytes (a single larger line goes alone).  A last line
    without its newline is not read: the CLI has not finished writing it."""
    fh.seek(offset)
    batch = Batch(offset, offset)
    while True:
        line = fh.readline()
        if not line.endswith(b"\n"):
            break
        if batch.records and (
            len(batch.records) >= limits.batch_records
            or batch.size + len(line) > limits.batch_bytes
        ):
            yield batch
            batch = Batch(batch.end_offset, batch.end_offset)
        batch.end_offset += len(line)
        if line.strip():
            batch.records.append(record_of(line, limits))
            batch.size += len(line)
    if batch.end_offset > batch.offset:
        yield batch  # may hold no record: blank lines still move the offset on


def record_of(line: bytes, limits: Limits) -> dict[str, Any]:
    """One line as the record shipped: parsed, cut to its ids when too large, redacted."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return _invalid(line, f"not JSON: {exc}", limits)
    if not isinstance(record, dict):
        return _invalid(line, f"a JSON {type(record).__name__}, not an object", limits)
    if len(line) > limits.max_record_bytes:
        record = _cut(record, len(line))
    try:
        return clean(record, limits)
    except RecursionError:
        return _invalid(line, "nested too deeply to redact", limits)


def clean(record: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Redacted as a hook payload is."""
    record = redact(record, limits.redact_keys)
    if limits.redact_patterns:
        record = redact_strings(record, limits.redact_patterns)
    return record


def _cut(record: dict[str, Any], size: int) -> dict[str, Any]:
    kept = {k: record[k] for k in _KEPT if k in record}
    message = record.get("message")
    if isinstance(message, dict):
        kept["message"] = {k: message[k] for k in ("id", "role") if k in message}
    return {**kept, "truncated": True, "bytes": size}


def _invalid(line: bytes, error: str, limits: Limits) -> dict[str, Any]:
    raw = redact_raw(line.rstrip(b"\r\n"), limits.redact_keys)
    record: dict[str, Any] = {"type": INVALID, "error": error}
    if len(raw) > limits.max_record_bytes:
        record.update(truncated=True, bytes=len(raw))
        raw = raw[: limits.max_record_bytes]
    record["raw"] = raw.decode("utf-8", "replace")
    if limits.redact_patterns:
        record = redact_strings(record, limits.redact_patterns)
    return record


def tool_result(path: str, limits: Limits) -> tuple[dict[str, Any], int]:
    """A full tool output the CLI kept beside the transcript, as a record (cut at
    ``max_record_bytes``), and the file's size."""
    with open(path, "rb") as fh:
        data = fh.read(limits.max_record_bytes + 1)
        size = os.fstat(fh.fileno()).st_size
    record: dict[str, Any] = {"type": TOOL_RESULT, "file": os.path.basename(path), "bytes": size}
    if len(data) > limits.max_record_bytes:
        data = data[: limits.max_record_bytes]
        record["truncated"] = True
    record["text"] = data.decode("utf-8", "replace")
    return clean(record, limits), size


def tail_hash(fh: BinaryIO, offset: int) -> str:
    """SHA-256 of the ``TAIL_BYTES`` before ``offset``: what a checkpoint compares to
    notice a file rewritten under it."""
    start = max(0, offset - TAIL_BYTES)
    # pread: the file position is :func:`batches`' own, in the middle of its reading
    return hashlib.sha256(os.pread(fh.fileno(), offset - start, start)).hexdigest()
