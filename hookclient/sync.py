"""Transcript sync: spooling what a session's transcript files gained since their
checkpoints, as Transcript envelopes, for the daemon to deliver like any event.

A session is its main transcript ``<project>/<sessionId>.jsonl``, its subagents'
``<project>/<sessionId>/subagents/agent-<id>.jsonl`` and the full tool outputs the CLI
keeps in ``<project>/<sessionId>/tool-results/``.  Each file is read from its checkpoint
(:mod:`hookclient.checkpoints`), and the checkpoint moves on only after the envelope that
carries those lines is in the spool (write-ahead, as for a hook's event): a crash at any
instant leaves the lines to be read again, never skipped.  Reading them again is
harmless, since the store keeps each record once.

A checkpoint is believed only while the file is the one it names: same device and inode,
not shorter, and the same bytes just before the offset.  Otherwise (the CLI rewrote the
file to drop a line, or replaced it) the file is read again from its start.

Used by ``queued`` (live) and ``hookclient backfill``; never by the hook.
"""

from __future__ import annotations

import errno
import glob
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, BinaryIO

from filelock import Timeout

from hookclient.checkpoints import Checkpoint, Checkpoints, key_of
from hookclient.clock import utc_iso
from hookclient.envelope import SCHEMA_VERSION, random_hex, source, uuid7
from hookclient.spool import Spool, State, new_state
from hookclient.transcript import Batch, Limits, batches, tail_hash, tool_result

if TYPE_CHECKING:
    from hookclient.config import Config
    from hookclient.logs import EventLogger

TRANSCRIPT = "Transcript"


@dataclass
class Counts:
    """What a sync did (``backfill --json`` prints these)."""

    files: int = 0
    records: int = 0
    bytes: int = 0
    envelopes: int = 0
    skipped: int = 0
    errors: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TranscriptFile:
    """One file of a session: the main transcript (``agent_id`` None) or a subagent's."""

    path: str
    session_id: str
    agent_id: str | None = None

    @property
    def key(self) -> str:
        return key_of(self.session_id, self.agent_id)


def projects_dir(config: Config, environ: dict[str, str] | None = None) -> str:
    """Where Claude Code keeps transcripts: the configured directory, else
    ``$CLAUDE_CONFIG_DIR/projects``, else ``~/.claude/projects``."""
    if config.transcripts.projects_dir:
        return config.transcripts.projects_dir
    env = os.environ if environ is None else environ
    base = env.get("CLAUDE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".claude")
    return os.path.join(base, "projects")


def limits_of(config: Config) -> Limits:
    t, d = config.transcripts, config.delivery
    return Limits(
        batch_records=t.batch_records,
        batch_bytes=t.batch_bytes,
        max_record_bytes=t.max_record_bytes,
        redact_keys=d.redact_keys,
        redact_patterns=d.redact_patterns,
    )


def session_files(transcript_path: str, session_id: str) -> list[TranscriptFile]:
    """The main transcript and every subagent transcript beside it."""
    found = [TranscriptFile(transcript_path, session_id)]
    folder = os.path.join(os.path.dirname(transcript_path), session_id, "subagents")
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), "agent-*.jsonl"))):
        agent = os.path.basename(path)[len("agent-") : -len(".jsonl")]
        found.append(TranscriptFile(path, session_id, agent))
    return found


def all_sessions(root: str) -> Iterable[tuple[str, str]]:
    """(transcript path, session id) of every main transcript under a projects dir."""
    for path in sorted(glob.glob(os.path.join(glob.escape(root), "*", "*.jsonl"))):
        yield path, os.path.basename(path)[: -len(".jsonl")]


class Syncer:
    """Reads transcripts into one spool, moving their checkpoints on."""

    def __init__(
        self,
        config: Config,
        spool: Spool,
        log: EventLogger,
        *,
        now: Callable[[], float] = time.time,
        progress: Callable[[int, int], None] | None = None,
        spooled: Callable[[str], None] | None = None,
    ) -> None:
        self.spool = spool
        self.checkpoints = Checkpoints(spool.root)
        self.limits = limits_of(config)
        self.projects = projects_dir(config)
        self.log = log
        self.now = now
        #: called with (records, bytes) after each envelope: backfill's progress bar
        self.progress = progress
        #: set by a stopping daemon: the file being read stops after its current batch
        #: (its checkpoint is saved after each one: nothing is lost)
        self.stopping = False
        #: told each new pending file's name: the daemon's own reads need no watchdog
        self.spooled = spooled

    def session(
        self, transcript_path: str, session_id: str, *, force: bool = False, dry_run: bool = False
    ) -> Counts:
        """Ship what the session's files gained (``force``: all of them, from the start)."""
        counts = Counts()
        for item in session_files(transcript_path, session_id):
            counts.add(self.file(item, force=force, dry_run=dry_run))
        return counts

    def file(self, item: TranscriptFile, *, force: bool = False, dry_run: bool = False) -> Counts:
        """Ship one file's new complete lines (and, for a main transcript, its new
        tool-result files), holding its checkpoint's lock throughout."""
        if dry_run:  # reads only: no lock file, no directory, nothing written
            return self._file(item, force, dry_run)
        try:
            with self.checkpoints.lock(item.key):
                return self._file(item, force, dry_run)
        except Timeout:
            self.log.warning(
                "transcript busy, left for the next sync", sessionId=item.session_id,
                path=item.path,
            )  # fmt: skip
            return Counts(skipped=1)

    def _file(self, item: TranscriptFile, force: bool, dry_run: bool) -> Counts:
        saved = self.checkpoints.load(item.key)
        path = self._locate(item, saved)
        counts = Counts(files=1)
        try:
            fh = _open_regular(path)
        except FileNotFoundError:  # not written yet (SessionStart), or cleaned up
            return Counts(files=1, skipped=1)
        except OSError as exc:
            self.log.warning(
                "transcript unreadable", sessionId=item.session_id, path=path, error=str(exc)
            )
            return Counts(errors=1)
        with fh:
            info = os.fstat(fh.fileno())
            checkpoint = self._believed(saved, item, path, info, fh, force)
            if checkpoint.offset >= info.st_size and not self._new_tool_results(checkpoint):
                counts.skipped = 1
                return counts
            checkpoint.size = info.st_size
            for batch in batches(fh, checkpoint.offset, self.limits):
                if self.stopping:
                    break
                self._ship(batch, checkpoint, counts, dry_run)
                checkpoint.offset = batch.end_offset
                checkpoint.tail = tail_hash(fh, batch.end_offset)
                checkpoint.size = max(checkpoint.size, batch.end_offset)
                checkpoint.synced_at = self.now()
                if not dry_run:
                    self.checkpoints.save(checkpoint)
        if item.agent_id is None:
            self._tool_results(checkpoint, counts, dry_run)
        return counts

    def _locate(self, item: TranscriptFile, saved: Checkpoint | None) -> str:
        """The file's path now: as named, else where the checkpoint last saw it, else
        (the CLI moved it on a cwd change) wherever under the projects dir it went."""
        for path in (item.path, saved.path if saved else None):
            if path and os.path.exists(path):
                return path
        name = (
            f"{item.session_id}.jsonl"
            if item.agent_id is None
            else os.path.join(item.session_id, "subagents", f"agent-{item.agent_id}.jsonl")
        )
        moved = glob.glob(os.path.join(glob.escape(self.projects), "*", glob.escape(name)))
        return moved[0] if moved else item.path

    def _believed(
        self,
        saved: Checkpoint | None,
        item: TranscriptFile,
        path: str,
        info: os.stat_result,
        fh: Any,
        force: bool,
    ) -> Checkpoint:
        """The checkpoint to read on from: the saved one while the file is still the one
        it names, else a fresh one at offset 0."""
        fresh = Checkpoint(item.session_id, item.agent_id, path, info.st_dev, info.st_ino)
        if saved is None or force:
            return fresh
        why = _changed(saved, info, fh)
        if why:
            self.log.info(
                "transcript changed, read again from the start", sessionId=item.session_id,
                path=path, reason=why,
            )  # fmt: skip
            return fresh
        saved.path = path
        return saved

    def _ship(self, batch: Batch, checkpoint: Checkpoint, counts: Counts, dry_run: bool) -> None:
        if not batch.records:
            return
        counts.records += len(batch.records)
        counts.bytes += batch.size
        counts.envelopes += 1
        if not dry_run:
            self._spool(checkpoint, batch.offset, batch.end_offset, batch.records)
        if self.progress:
            self.progress(len(batch.records), batch.size)

    def _spool(
        self, checkpoint: Checkpoint, offset: int, end: int, records: list[dict[str, Any]]
    ) -> None:
        now = self.now()
        envelope = transcript_envelope(checkpoint, offset, end, records, now)
        record = self.spool.add(envelope, new_state(now, due=now), State.PENDING)
        self.log.info(
            "transcript spooled", requestId=envelope["requestId"],
            traceId=envelope["traceId"], spanId=envelope["spanId"], event=TRANSCRIPT,
            sessionId=checkpoint.session_id, agentId=checkpoint.agent_id,
            path=checkpoint.path, offset=offset, endOffset=end, records=len(records),
            file=record.name,
        )  # fmt: skip
        if self.spooled is not None:
            self.spooled(record.name)

    def _new_tool_results(self, checkpoint: Checkpoint) -> bool:
        if checkpoint.agent_id is not None:
            return False
        return any(
            checkpoint.tool_results.get(os.path.basename(p)) != os.path.getsize(p)
            for p in tool_result_files(checkpoint.path, checkpoint.session_id)
        )

    def _tool_results(self, checkpoint: Checkpoint, counts: Counts, dry_run: bool) -> None:
        """Ship the tool-result files not shipped yet (or grown since), one envelope."""
        records, shipped = [], {}
        for path in tool_result_files(checkpoint.path, checkpoint.session_id):
            name = os.path.basename(path)
            size = os.path.getsize(path)
            if checkpoint.tool_results.get(name) == size:
                continue
            record, size = tool_result(path, self.limits)
            records.append(record)
            shipped[name] = size
        if not records:
            return
        size = sum(int(r["bytes"]) for r in records)
        batch = Batch(checkpoint.offset, checkpoint.offset, records, size)
        self._ship(batch, checkpoint, counts, dry_run)
        checkpoint.tool_results.update(shipped)
        if not dry_run:
            self.checkpoints.save(checkpoint)


def tool_result_files(transcript_path: str, session_id: str) -> list[str]:
    """The full tool outputs the CLI kept beside a session's main transcript."""
    folder = os.path.join(os.path.dirname(transcript_path), session_id, "tool-results")
    return sorted(glob.glob(os.path.join(glob.escape(folder), "*.txt")))


def _open_regular(path: str) -> BinaryIO:
    """Open a transcript for reading, refusing anything but a regular file: a FIFO or a
    device named as a transcript would block the reader (O_NONBLOCK: never waits)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _changed(saved: Checkpoint, info: os.stat_result, fh: Any) -> str | None:
    """Why the saved checkpoint no longer describes the file, or None."""
    if (saved.device, saved.inode) != (info.st_dev, info.st_ino):
        return "replaced"
    if info.st_size < saved.offset:
        return "shrank"
    if saved.offset and tail_hash(fh, saved.offset) != saved.tail:
        return "rewritten"
    return None


def transcript_envelope(
    checkpoint: Checkpoint, offset: int, end: int, records: list[dict[str, Any]], now: float
) -> dict[str, Any]:
    """The usual envelope, ``event: "Transcript"``, carrying one file's records."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "requestId": uuid7(now),
        "traceId": random_hex(16),
        "spanId": random_hex(8),
        "event": TRANSCRIPT,
        "sessionId": checkpoint.session_id,
        "timestamp": utc_iso(now),
        "source": source(),
        "payload": {
            "transcriptPath": checkpoint.path,
            "sessionId": checkpoint.session_id,
            "agentId": checkpoint.agent_id,
            "fileId": checkpoint.file_id,
            "offset": offset,
            "endOffset": end,
            "records": records,
        },
    }
