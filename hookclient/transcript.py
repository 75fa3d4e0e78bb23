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

import errno
import hashlib
import json
import os
import re
import stat
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
    ``end_offset`` just past the last one's newline, ``tail`` the SHA-256 of the
    ``TAIL_BYTES`` before ``end_offset`` as they were read (not as the file holds them
    later: the CLI may rewrite it meanwhile)."""

    offset: int
    end_offset: int
    records: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    tail: str = ""


def batches(fh: BinaryIO, offset: int, limits: Limits) -> Iterator[Batch]:
    """The complete lines from ``offset`` on, in batches of at most ``batch_records``
    records and ``batch_bytes`` bytes (a single larger line goes alone).  A last line
    without its newline is not read: the CLI has not finished writing it.  Memory stays
    bounded whatever a line's length (:func:`_long_line`)."""
    recent = _before(fh, offset)  # the TAIL_BYTES read last, for each batch's hash
    fh.seek(offset)
    batch = Batch(offset, offset)
    while True:
        found = _next_line(fh, limits)
        if found is None:
            break
        size, record, tail = found
        if batch.records and (
            len(batch.records) >= limits.batch_records or batch.size + size > limits.batch_bytes
        ):
            yield batch
            batch = Batch(batch.end_offset, batch.end_offset)
        batch.end_offset += size
        recent = (recent + tail)[-TAIL_BYTES:]
        batch.tail = hashlib.sha256(recent).hexdigest()
        if record is not None:
            batch.records.append(record)
            batch.size += size
    if batch.end_offset > batch.offset:
        yield batch  # may hold no record: blank lines still move the offset on


def _next_line(fh: BinaryIO, limits: Limits) -> tuple[int, dict[str, Any] | None, bytes] | None:
    """(bytes, record or None for a blank line, its last TAIL_BYTES) of the next complete
    line; None when the file ends before a newline."""
    line = fh.readline(limits.max_record_bytes + 1)
    if not line.endswith(b"\n"):
        if len(line) <= limits.max_record_bytes:
            return None  # the end of the file, mid-line
        return _long_line(fh, line, limits)
    record = record_of(line, limits) if line.strip() else None
    return len(line), record, line[-TAIL_BYTES:]


#: How much of a line too long to keep is read for its ids: its start and its end.
_KEEP = 64 * 1024


def _long_line(
    fh: BinaryIO, start: bytes, limits: Limits
) -> tuple[int, dict[str, Any], bytes] | None:
    """A line over ``max_record_bytes``, read in pieces keeping only its first and last
    64 KiB: the record it becomes holds only its ids (:func:`_cut_text`)."""
    head, tail, size = start[:_KEEP], start[-_KEEP:], len(start)
    while True:
        piece = fh.readline(1024 * 1024)
        if not piece:
            return None  # still being written: read again, whole, next time
        size += len(piece)
        tail = (tail + piece)[-_KEEP:]
        if piece.endswith(b"\n"):
            return size, _cut_text(head, tail, size, limits), tail[-TAIL_BYTES:]


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


_TOP = re.compile(
    rb'"(type|parentUuid|sessionId|isSidechain|agentId)"\s*:\s*("(?:[^"\\]|\\.)*"|true|false|null)'
)
_END = re.compile(rb'"(uuid|timestamp)"\s*:\s*("(?:[^"\\]|\\.)*"|null)')
_MESSAGE = re.compile(rb'"message"\s*:\s*\{\s*(?:"(?:id|role|model|type)"\s*:\s*"[^"]*"\s*,?\s*)+')


def _cut_text(head: bytes, tail: bytes, size: int, limits: Limits) -> dict[str, Any]:
    """A too-long line's ids, found in its first and last bytes: the CLI writes
    ``parentUuid``, ``sessionId``, ``type`` and ``message``'s ``id`` and ``role`` first,
    ``uuid`` and ``timestamp`` last.  Without them it is kept as an invalid record."""
    found: dict[str, Any] = {}
    for match in _TOP.finditer(head):
        found.setdefault(match.group(1).decode(), json.loads(match.group(2)))
    for match in _END.finditer(tail):
        found[match.group(1).decode()] = json.loads(match.group(2))
    message = _MESSAGE.search(head)
    if message:
        ids = re.findall(rb'"(id|role)"\s*:\s*"([^"]*)"', message.group(0))
        found["message"] = {k.decode(): v.decode() for k, v in ids}
    if "type" not in found:
        return _invalid(head, "a line too long to keep, without a record's fields", limits)
    return clean({**{k: found[k] for k in (*_KEPT, "message") if k in found},
                  "truncated": True, "bytes": size}, limits)  # fmt: skip


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


def open_regular(path: str) -> BinaryIO:
    """Open a file of the CLI's for reading, refusing anything but a regular file: a FIFO
    or a device in its place would block the reader (O_NONBLOCK: never waits)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def tool_result(path: str, limits: Limits) -> tuple[dict[str, Any], int]:
    """A full tool output the CLI kept beside the transcript, as a record (cut at
    ``max_record_bytes``), and the file's size before it was read: a file still being
    written is shipped again once it has grown."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(limits.max_record_bytes + 1)
    record: dict[str, Any] = {"type": TOOL_RESULT, "file": os.path.basename(path), "bytes": size}
    if len(data) > limits.max_record_bytes:
        data = data[: limits.max_record_bytes]
        record["truncated"] = True
    record["text"] = data.decode("utf-8", "replace")
    return clean(record, limits), size


def tail_hash(fh: BinaryIO, offset: int) -> str:
    """SHA-256 of the ``TAIL_BYTES`` before ``offset`` in the file now: what a
    checkpoint compares to notice a file rewritten under it."""
    return hashlib.sha256(_before(fh, offset)).hexdigest()


def _before(fh: BinaryIO, offset: int) -> bytes:
    start = max(0, offset - TAIL_BYTES)
    # pread: the file position is :func:`batches`' own, in the middle of its reading
    return os.pread(fh.fileno(), offset - start, start)
