"""The daemon's transcript follower: which sessions it follows, when each is read next,
and the thread that reads them (:class:`hookclient.sync.Syncer` does the reading).

A session is followed from the first of its events the daemon reads (its
``transcript_path``).  It is read ``delay`` after any of its events, again ``settle``
after Stop, SubagentStop, PreCompact and SessionEnd (the CLI writes the file
asynchronously), whenever watchdog reports one of its files written, and at every
rescan for the files that grew since their checkpoints.  Reads run on one thread of
their own, so a long transcript never holds up a delivery, and never two at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from hookclient.sync import TRANSCRIPT, Syncer, session_files

if TYPE_CHECKING:
    from hookclient.checkpoints import Checkpoint
    from hookclient.logs import EventLogger
    from queued.agenda import Agenda

#: Events after which the CLI finishes writing a turn (or the session) a little later.
SETTLE_AFTER = frozenset({"Stop", "SubagentStop", "PreCompact", "SessionEnd"})


class Follower:
    """The sessions one daemon follows; thread-safe (workers report events)."""

    def __init__(
        self,
        syncer: Syncer,
        log: EventLogger,
        *,
        delay: float,
        settle: float,
        monotonic: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        from queued.agenda import Agenda

        self.syncer = syncer
        self.log = log
        self.delay = delay
        self.settle = settle
        self.monotonic = monotonic
        self.wake = wake
        #: session id -> its main transcript's path
        self.sessions: dict[str, str] = {}
        self.agenda: Agenda = Agenda()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="transcripts")
        self._running: Future[Any] | None = None
        self._rescanning: Future[Any] | None = None
        #: the checkpoints as last read, by key (reading thread only)
        self._saved: dict[str, Checkpoint] = {}
        self._watched: set[str] = set()
        self.observer: Any = None

    # -- what tells us to read -------------------------------------------------------

    def saw(self, envelope: dict[str, Any]) -> None:
        """An event the daemon read: follow its session, read it after ``delay`` (and
        again after ``settle`` at the end of a turn)."""
        event = envelope.get("event")
        payload = envelope.get("payload")
        if event == TRANSCRIPT or not isinstance(payload, dict):
            return
        path, session = payload.get("transcript_path"), payload.get("session_id")
        if not isinstance(path, str) or not path or not isinstance(session, str) or not session:
            return
        with self._lock:
            new = self.sessions.get(session) != path
            self.sessions[session] = path
        if new:
            self._remember(path, session)
            self._watch(path, session)
        now = self.monotonic()
        self._due(session, now + self.delay)
        if event in SETTLE_AFTER:
            self._due(f"{session}\0settle", now + self.delay + self.settle)

    def _remember(self, path: str, session: str) -> None:
        """On disk before the event is delivered: a crash after cannot forget it."""
        try:
            self.syncer.remember(path, session)
        except OSError as exc:  # a spool that cannot be written: the delivery says so too
            self.log.warning("cannot note a transcript to follow", sessionId=session,
                             path=path, error=str(exc))  # fmt: skip

    def written(self, path: str) -> None:
        """watchdog: a file was written; read its session soon if we follow it."""
        session = _session_of(path, self.sessions)
        if session is not None:
            self._due(session, self.monotonic() + self.delay)

    def rescan(self) -> None:
        """On the reading thread (it reads every checkpoint): queue each session one of
        whose files grew since its checkpoint, or has none yet."""
        try:
            self._rescanning = self._pool.submit(self._rescan)
        except RuntimeError:  # closed: the daemon is stopping
            return

    def _rescan(self) -> None:
        """Each rescan lists the checkpoints and stats their files; it reads only the
        checkpoints it has not seen (a year of sessions is thousands of them).  What it
        keeps may be older than the file on disk (a backfill moved it on): then a read
        finds nothing new, and the checkpoints it saved are taken again."""
        keys = set(self.syncer.checkpoints.keys())
        for key in keys - self._saved.keys():
            found = self.syncer.checkpoints.load(key)
            if found is not None:
                self._saved[key] = found
        for key in self._saved.keys() - keys:
            del self._saved[key]
        with self._lock:
            for checkpoint in list(self._saved.values()):
                if checkpoint.agent_id is None:
                    self.sessions.setdefault(checkpoint.session_id, checkpoint.path)
            followed = dict(self.sessions)
        now = self.monotonic()
        for session, path in followed.items():
            self._watch(path, session)
            files = session_files(path, session)
            if any(_grew(item.path, self._saved.get(item.key)) for item in files):
                self._due(session, now)

    def _due(self, key: str, when: float) -> None:
        """Read ``key``'s session at ``when``, unless a read is due sooner: a read sees
        every line written before it, and lines written after it bring their own."""
        current = self.agenda.due_of(key)
        if current is not None and current <= when:
            return
        self.agenda.add(key, when)
        self.wake()

    # -- reading ---------------------------------------------------------------------

    def run_due(self) -> None:
        """Hand the sessions whose time has come to the reading thread, one at a time."""
        if self._running is not None and not self._running.done():
            return
        keys = self.agenda.pop_due(self.monotonic(), 1)
        if not keys:
            return
        session = keys[0].split("\0", 1)[0]
        path = self.sessions.get(session)
        if path is None:
            return
        self._running = self._pool.submit(self._read, session, path)
        self._running.add_done_callback(lambda _f: self.wake())

    def _read(self, session: str, path: str) -> None:
        self._watch(path, session)  # its folder may not have existed at its first event
        try:
            self.syncer.session(path, session)
            for item in session_files(path, session):  # what the rescan compares with
                found = self.syncer.checkpoints.load(item.key)
                if found is not None:
                    self._saved[item.key] = found
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            # logged with the session; its lines stay unread, retried at the next rescan
            self.log.error("transcript sync failed", sessionId=session, path=path, error=repr(exc))

    def next_due(self) -> float | None:
        """When the next read may start: not while one runs (its end wakes the loop)."""
        if self._running is not None and not self._running.done():
            return None
        return self.agenda.next_due()

    def due_now(self) -> bool:
        """A read is due now or running (``queued run --once`` waits for those)."""
        due = self.agenda.next_due()
        busy = any(f is not None and not f.done() for f in (self._running, self._rescanning))
        return busy or (due is not None and due <= self.monotonic())

    def busy(self) -> bool:
        """Reading, or a read is scheduled: the daemon is not idle."""
        return len(self.agenda) > 0 or (self._running is not None and not self._running.done())

    def close(self) -> None:
        self.syncer.stopping = True
        self._pool.shutdown(wait=True)

    # -- watching --------------------------------------------------------------------

    def start_watching(self, observer: Any) -> None:
        self.observer = observer
        for session, path in list(self.sessions.items()):
            self._watch(path, session)

    def _watch(self, path: str, session: str) -> None:
        """Watch the transcript's project folder: a write to a followed transcript there
        reads its session soon.  One watch (and one watchdog thread) per project, not per
        session: a subagent's file and the tool-result files are read with the main
        transcript, whose lines tell of them, and at SubagentStop."""
        folder = os.path.dirname(path)
        if self.observer is None or folder in self._watched or not os.path.isdir(folder):
            return
        from queued.watcher import watch_written

        with self._lock:
            if folder in self._watched:
                return
            self._watched.add(folder)
        try:
            watch_written(self.observer, folder, self.written, recursive=False)
        except OSError as exc:  # inotify watches exhausted: the rescan still reads it
            self.log.warning("cannot watch transcripts", path=folder, error=str(exc))


def _session_of(path: str, sessions: dict[str, str]) -> str | None:
    """The followed session whose main transcript ``<project>/<session>.jsonl`` this is."""
    name = os.path.basename(path)
    if name.endswith(".jsonl") and sessions.get(name[: -len(".jsonl")]) == path:
        return name[: -len(".jsonl")]
    return None


def _grew(path: str, saved: Checkpoint | None) -> bool:
    """A file with more (or other) bytes than its checkpoint names, or none yet."""
    try:
        now = os.path.getsize(path)
    except OSError:
        return False
    return saved is None or now != saved.size or now > saved.offset
