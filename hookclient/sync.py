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

import glob
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from filelock import Timeout

from hookclient.checkpoints import Checkpoint, Checkpoints, key_of
from hookclient.envelope import wrap
from hookclient.errors import HookclientError
from hookclient.spool import Spool, State, new_state
from hookclient.transcript import Batch, Limits, batches, open_regular, tail_hash, tool_result

if TYPE_CHECKING:
    from hookclient.config import Config
    from hookclient.logs import EventLogger

TRANSCRIPT = "Transcript"
#: The share of ``max_spool_bytes`` transcripts may take.  Past it they wait (their
#: checkpoints say where) and hook events keep the rest: a backfill of years of history
#: never makes the hook refuse an event.
TRANSCRIPT_SHARE = 0.5


@dataclass
class Counts:
    """What a sync did (``backfill --json`` prints these)."""

    files: int = 0
    records: int = 0
    bytes: int = 0
    envelopes: int = 0
    skipped: int = 0
    errors: int = 0
    #: files left for later: the spool held its share of transcripts (not in as_dict,
    #: whose keys are ``backfill --json``'s)
    deferred: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "deferred"}


class _Deferred(Exception):
    """The spool holds its share of transcripts: the rest waits for the next read."""


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
            if counts.deferred:
                break  # the spool holds its share: the other files wait too
        return counts

    def remember(self, transcript_path: str, session_id: str) -> None:
        """Note a session to follow before its first read (a checkpoint at offset 0), so
        that a daemon killed between delivering its event and reading its transcript
        follows it again after a restart.  Never waits: a session being read has its
        checkpoint already."""
        key = key_of(session_id, None)
        if self.checkpoints.load(key) is not None:
            return
        lock = self.checkpoints.lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return
        try:
            if self.checkpoints.load(key) is None:
                self.checkpoints.save(Checkpoint(session_id, None, transcript_path))
        finally:
            lock.release()

    def file(self, item: TranscriptFile, *, force: bool = False, dry_run: bool = False) -> Counts:
        """Ship one file's new complete lines (and, for a main transcript, its new
        tool-result files), holding its checkpoint's lock throughout."""
        counts = Counts()
        try:
            if dry_run:  # reads only: no lock file, no directory, nothing written
                self._file(item, force, dry_run, counts)
            else:
                with self.checkpoints.lock(item.key):
                    self._file(item, force, dry_run, counts)
        except Timeout:
            self.log.warning("transcript busy, left for the next sync",
                             sessionId=item.session_id, path=item.path)  # fmt: skip
            counts.skipped += 1
        except _Deferred:
            self.log.info("transcript sync deferred: the spool holds its share of transcripts",
                          sessionId=item.session_id, path=item.path)  # fmt: skip
            counts.deferred += 1
        except (OSError, HookclientError) as exc:  # unreadable, or the spool cannot be written
            self.log.warning("transcript sync failed; its checkpoint says where to go on",
                             sessionId=item.session_id, path=item.path, error=str(exc))  # fmt: skip
            counts.errors += 1
        return counts

    def _file(self, item: TranscriptFile, force: bool, dry_run: bool, counts: Counts) -> None:
        saved = self.checkpoints.load(item.key)
        path = self._locate(item, saved)
        counts.files += 1
        try:
            fh = open_regular(path)
        except FileNotFoundError:  # not written yet (SessionStart), or cleaned up
            counts.skipped += 1
            return
        except OSError as exc:
            self.log.warning(
                "transcript unreadable", sessionId=item.session_id, path=path, error=str(exc)
            )
            counts.errors += 1
            return
        with fh:
            info = os.fstat(fh.fileno())
            checkpoint = self._believed(saved, item, path, info, fh, force)
            if checkpoint.offset >= info.st_size and not self._new_tool_results(checkpoint):
                counts.skipped += 1
                return
            checkpoint.size = info.st_size
            for batch in batches(fh, checkpoint.offset, self.limits):
                if self.stopping:
                    break
                self._ship(batch, checkpoint, counts, dry_run)
                checkpoint.offset, checkpoint.tail = batch.end_offset, batch.tail
                checkpoint.size = max(checkpoint.size, batch.end_offset)
                checkpoint.synced_at = self.now()
                if not dry_run:
                    self.checkpoints.save(checkpoint)
        if item.agent_id is None:
            self._tool_results(checkpoint, counts, dry_run)

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
        if saved is None or force or not saved.offset:  # none, or only remembered
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
        if not dry_run and not self._room(batch.size):
            raise _Deferred
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

    def _room(self, size: int) -> bool:
        """Is there room for ``size`` more bytes of transcripts in the spool?  The quick
        figure counts files added, not those delivered since its last recount: near the
        mark, count again before saying no."""
        share = self.spool.max_bytes * TRANSCRIPT_SHARE
        return self.spool.used() + size <= share or self.spool.recount() + size <= share

    def _new_tool_results(self, checkpoint: Checkpoint) -> bool:
        if checkpoint.agent_id is not None:
            return False
        return any(
            checkpoint.tool_results.get(os.path.basename(p)) != _size(p)
            for p in tool_result_files(checkpoint.path, checkpoint.session_id)
        )

    def _tool_results(self, checkpoint: Checkpoint, counts: Counts, dry_run: bool) -> None:
        """Ship the tool-result files not shipped yet (or changed since), in batches of
        ``batch_records`` and ``batch_bytes`` like lines; each is marked shipped once the
        envelope that carries it is in the spool.  One that cannot be read is skipped
        (and tried again next time)."""
        batch, shipped = Batch(checkpoint.offset, checkpoint.offset), dict[str, int]()
        for path in tool_result_files(checkpoint.path, checkpoint.session_id):
            name, size_now = os.path.basename(path), _size(path)
            if size_now is not None and checkpoint.tool_results.get(name) == size_now:
                continue
            try:
                record, size = tool_result(path, self.limits)
            except OSError as exc:
                self.log.warning("tool-result file unreadable", sessionId=checkpoint.session_id,
                                 path=path, error=str(exc))  # fmt: skip
                counts.errors += 1
                continue
            if batch.records and (len(batch.records) >= self.limits.batch_records
                                  or batch.size + size > self.limits.batch_bytes):  # fmt: skip
                self._ship_tool_results(batch, shipped, checkpoint, counts, dry_run)
                batch, shipped = Batch(checkpoint.offset, checkpoint.offset), dict[str, int]()
            batch.records.append(record)
            batch.size += size
            shipped[name] = size
        self._ship_tool_results(batch, shipped, checkpoint, counts, dry_run)

    def _ship_tool_results(
        self, batch: Batch, shipped: dict[str, int], checkpoint: Checkpoint, counts: Counts,
        dry_run: bool,
    ) -> None:  # fmt: skip
        if not batch.records:
            return
        self._ship(batch, checkpoint, counts, dry_run)
        checkpoint.tool_results.update(shipped)
        if not dry_run:
            self.checkpoints.save(checkpoint)


def tool_result_files(transcript_path: str, session_id: str) -> list[str]:
    """The full tool outputs the CLI kept beside a session's main transcript."""
    folder = os.path.join(os.path.dirname(transcript_path), session_id, "tool-results")
    return sorted(glob.glob(os.path.join(glob.escape(folder), "*.txt")))


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


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
    return wrap(TRANSCRIPT, checkpoint.session_id, now, {
        "payload": {
            "transcriptPath": checkpoint.path,
            "sessionId": checkpoint.session_id,
            "agentId": checkpoint.agent_id,
            "fileId": checkpoint.file_id,
            "offset": offset,
            "endOffset": end,
            "records": records,
        },
    })  # fmt: skip
