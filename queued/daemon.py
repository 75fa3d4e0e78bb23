"""``queued run``: deliver what the hooks spooled, promptly when the endpoint is up,
patiently with backoff when it is not.

The loop (one thread) owns the agenda; deliveries run on a small thread pool sharing one
keep-alive httpx client.  A watchdog observer on pending/ wakes the loop within
milliseconds of a new file; a periodic rescan is the truth (inotify can overflow and
drop events silently, watchdog issue 654).

    start ── lock ── recover ── rescan ─┬─> wait (next due / rescan / event / signal)
                                        │      │
                                        │      v
                                        └── dispatch due names to workers (claim by rename)

Signals only set flags; the loop stops claiming, lets in-flight deliveries finish (each
bounded by the request timeout), releases the lock and exits 0.  A second signal exits
at once; files it leaves in processing/ are recovered by the next start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hookclient.breaker import BREAKER_FILE, Breaker
from hookclient.clock import Clock, parse_iso, utc_iso
from hookclient.config import Config, fingerprint
from hookclient.delivery import Sender
from hookclient.envelope import dumps
from hookclient.errors import CorruptFile, LockHeld, SpoolError, SpoolGone
from hookclient.lockprobe import replaceable
from hookclient.logs import (
    BREAKER_CLOSED,
    BREAKER_OPENED,
    RETRY_FAILED,
    LogWriter,
    structlog_logger,
)
from hookclient.outcome import Outcome
from hookclient.policy import Transition, after_attempt
from hookclient.spool import Record, Spool, State, request_id_of
from hookclient.urls import safe_url
from queued.agenda import Agenda
from queued.control import (
    FlushRequest,
    daemon_running,
    pid_alive,
    read_flush,
    read_pidfile,
    stop,
    write_json,
)

__all__ = ["Daemon", "LockHeld", "SpoolGone", "daemon_running", "read_pidfile"]

#: tmp/ files older than this belong to a writer that died; they are swept.
TMP_MAX_AGE = 3600.0
#: A hook's claim older than inline_budget + timeout + this is abandoned.
HOOK_CLAIM_GRACE = 30.0
#: How long the daemon pauses claiming after the spool could not be written (disk full).
WRITE_PAUSE = 5.0
#: Times this far in the future mean the wall clock was stepped back since they were set.
CLOCK_SLACK = 1.0
#: How long a starting daemon waits for the lock (a hook probing it holds it for µs).
LOCK_WAIT = 0.5
#: ``--replace``: beyond the request timeout, how long the old daemon gets to exit on
#: the hook's retire signal before this one sends it again.
REPLACE_GRACE = 2.0
#: The daemon's CPU priority (nice) by default: the caller's.  A daemon a hook starts
#: runs at ``hookclient.autostart.AUTOSTART_NICENESS`` (10): below the session.
NICENESS = 0
#: Retire: stop claiming, finish in flight, exit 0; a repeat never escalates.
RETIRE = getattr(signal, "SIGUSR2", signal.SIGTERM)

if TYPE_CHECKING:
    from hookclient.spoolstate import Owner
    from queued.follower import Follower
    from queued.heartbeat import Heartbeat


class Daemon:
    """One daemon on one spool.  ``step()`` is one pass of the loop, for tests."""

    def __init__(
        self,
        config: Config,
        *,
        workers: int | None = None,
        idle_exit: float = 0.0,
        autostarted: bool = False,
        replace: bool = False,
        niceness: int = NICENESS,
        clock: Clock | None = None,
        watch: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.workers = workers or config.queue.workers
        self.idle_exit = idle_exit
        self.autostarted = autostarted
        #: take over from a daemon on this spool whose configuration differs
        self.replace = replace
        #: the CPU priority (nice) the daemon runs at: below the session it serves
        self.niceness = niceness
        self.flush_requested = False
        self.flush_request: FlushRequest | None = None
        self.spool = Spool(
            Path(config.queue.dir),
            max_bytes=config.queue.max_spool_bytes,
            endpoint=safe_url(config.endpoint.url),
        )
        self.writer = LogWriter(
            Path(config.logs.dir),
            component="daemon",
            level=config.logs.level,
            max_bytes=config.logs.max_bytes,
            backups=config.logs.backups,
        )
        # every line names its spool: the logs directory is shared by the daemons of
        # every endpoint, and `queued status` reads only its own spool's lines
        self.log = structlog_logger(self.writer, spool=Path(config.queue.dir))
        self.breaker = Breaker(
            Path(config.queue.dir) / BREAKER_FILE,
            failures=config.queue.breaker_failures,
            cooldown=config.queue.breaker_cooldown,
            now=self.clock.now,
        )
        self._sender: Sender | None = None
        self.agenda = Agenda()
        #: names whose agenda time came from their file (not "new, due now"): when one
        #: surfaces, it has waited its delay on the monotonic clock
        self.timed: set[str] = set()
        self.inflight: set[str] = set()
        self._inflight_lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = False
        self.watch = watch
        self.last_activity = self.clock.monotonic()
        self.next_rescan = 0.0
        self.pool: ThreadPoolExecutor | None = None
        self.lock: Any = None
        self.observer: Any = None
        self.delivered = 0
        self.lock_id: tuple[int, int] | None = None  # (st_dev, st_ino) of daemon.lock
        self.fatal: str | None = None
        self.paused_until = 0.0  # monotonic: no claims before, the spool could not be written
        #: follows the transcripts of the sessions whose events pass through (None: sync off)
        self.follower: Follower | None = self._follower() if config.transcripts.sync else None
        #: tells the store this spool's backlog every [queue] heartbeat seconds (None: off)
        self.heartbeat: Heartbeat | None = self._heartbeat() if config.queue.heartbeat else None

    def _heartbeat(self) -> Heartbeat:
        from queued.heartbeat import Heartbeat

        return Heartbeat(
            self.config.queue.heartbeat,
            self.spool,
            lambda: self.sender,
            self.log,
            monotonic=self.clock.monotonic,
            now=self.clock.now,
            timeout=self.config.endpoint.timeout,
            wake=self.wake.set,
        )

    def _follower(self) -> Follower:
        from hookclient.sync import Syncer
        from queued.follower import Follower

        transcripts = self.config.transcripts
        return Follower(
            Syncer(self.config, self.spool, self.log, now=self.clock.now, spooled=self.notice),
            self.log,
            delay=transcripts.delay,
            settle=transcripts.settle,
            monotonic=self.clock.monotonic,
            wake=self.wake.set,
        )

    # -- lifecycle -----------------------------------------------------------------

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            self._sender = Sender(self.config.endpoint, clock=self.clock)
        return self._sender

    def acquire(self) -> None:
        """Take ``daemon.lock``; :class:`LockHeld` names the holder if another has it."""
        from filelock import FileLock, Timeout

        self.spool.ensure()
        self.spool.check_private()
        lock = FileLock(str(Path(self.config.queue.dir) / "daemon.lock"), mode=0o600)
        try:
            try:
                lock.acquire(timeout=LOCK_WAIT)
            except Timeout:
                self._take_over(lock)
        except OSError as exc:  # (after Timeout, a TimeoutError) disk full, read-only
            raise SpoolError(
                f"cannot take the lock {Path(self.config.queue.dir) / 'daemon.lock'}: "
                f"{exc.strerror or exc}"
            ) from None
        self.lock = lock
        self.lock_id = _file_id(Path(self.config.queue.dir) / "daemon.lock")
        self._write_pidfile()
        self.spool.write_endpoint()
        (Path(self.config.queue.dir) / "daemon.starting").unlink(missing_ok=True)

    def _take_over(self, lock: Any) -> None:
        """The lock is held.  Without ``--replace``, :class:`LockHeld`.  With it, take
        over from a daemon with another configuration: a hook that started us has asked
        it to retire (SIGUSR2) already, so first wait for it to finish its in-flight
        deliveries (each bounded by the request timeout), then ask it ourselves, and
        SIGKILL it only past that (safe: recovery at our start)."""
        from filelock import Timeout

        spool = Path(self.config.queue.dir)
        holder = read_pidfile(spool)
        pid = holder.get("pid", "?") if holder else "?"
        if not self.replace or not self._differs(holder):
            raise LockHeld(
                f"another queued (pid {pid}) holds {spool}; "
                "stop it first (`queued stop`), or use `queued status` to see what it is doing"
            )
        patience = self.config.endpoint.timeout + REPLACE_GRACE
        try:
            lock.acquire(timeout=patience)
        except Timeout:
            holder = read_pidfile(spool)
            if not self._differs(holder):  # a third daemon, with our configuration
                raise LockHeld(f"another queued holds {spool}, as configured here") from None
            stop(spool, wait=patience, sig=RETIRE)
            try:
                lock.acquire(timeout=LOCK_WAIT * 4)
            except Timeout:
                raise LockHeld(f"another queued holds {spool} after pid {pid} left") from None
        self.log.warning(
            "replaced daemon",
            oldPid=pid,
            reason="it delivered with another endpoint, token or signing secret",
            spool=str(spool),
        )

    def _differs(self, holder: dict[str, Any] | None) -> bool:
        """A holder we may replace: another configuration; a hook-started daemon only
        by the rule hooks follow (``lockprobe.replaceable``), any by hand; and one
        whose pid file vanished is leaving (it removes the file just before it unlocks)."""
        if holder is None:
            return True
        endpoint = self.config.endpoint
        mine = fingerprint(endpoint, self.config.transcripts.sync)
        if self.autostarted:
            return replaceable(holder, mine, bool(endpoint.token))
        return holder.get("fingerprint") != mine

    def _write_pidfile(self) -> None:
        """``daemon.pid``: who runs here and with which configuration (its fingerprint,
        never a secret).  On a full disk the daemon runs without one (and removes a
        stale one): it holds the lock, and a delivery frees space."""
        path = Path(self.config.queue.dir) / "daemon.pid"
        info = {
            "pid": os.getpid(),
            "startedAt": utc_iso(self.clock.now()),
            "autostarted": self.autostarted,
            "idleExit": self.idle_exit,
            "endpoint": safe_url(self.config.endpoint.url),
            "fingerprint": fingerprint(self.config.endpoint, self.config.transcripts.sync),
            "token": bool(self.config.endpoint.token),  # whether one is set, never which
        }
        try:
            write_json(path, info)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            self.log.error(
                "cannot write daemon.pid; running without it",
                error=exc.strerror or str(exc),
                file=str(path),
            )

    def release(self) -> None:
        if self.lock is not None:
            with contextlib.suppress(OSError):
                if self.fatal is None:  # else it may be a new daemon's, in a new spool
                    (Path(self.config.queue.dir) / "daemon.pid").unlink()
            self.lock.release()
            self.lock = None

    def start(self) -> None:
        """Lock, recover, first scan, observer, pool.  Pair with :meth:`close`."""
        self.acquire()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="deliver")
        self.log.info(
            "daemon started",
            spool=str(Path(self.config.queue.dir)),
            endpoint=safe_url(self.config.endpoint.url),
            workers=self.workers,
            idleExit=self.idle_exit,
            autostarted=self.autostarted,
        )
        from hookclient.urls import transport_warnings

        for warning in transport_warnings(self.config.endpoint):
            self.log.warning("insecure endpoint", error=warning)
        if self.watch:  # first: a file created during the first scan is still seen
            self._start_observer()
            if self.follower is not None:
                self.follower.start_watching(self.observer)
        self.rescan()

    def close(self) -> None:
        if self.follower is not None:
            self.follower.close()  # ends after the batch in hand: its checkpoint is saved
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
        if self._sender is not None:
            self._sender.close()
        self.log.info("daemon stopped", delivered=self.delivered)
        self.release()

    def run(self, *, once: bool = False) -> int:
        """The daemon's whole life; returns the exit code."""
        self._install_signals()  # before start: a SIGTERM during recovery still stops cleanly
        give_way(self.niceness)
        self.start()
        try:
            if once:
                self.drain_due()
            else:
                self.loop()
        finally:
            self.close()
        if self.fatal:
            raise SpoolGone(self.fatal)
        return 0

    def loop(self) -> None:
        while not self.stopping:
            self.step()
            if self._idle_expired():
                self.log.info("idle exit", idleExit=self.idle_exit)
                break
            self.wake.wait(self._wait_time())
            self.wake.clear()
        self._wait_inflight()

    def step(self) -> int:
        """One pass: rescan when due, read transcripts due, hand due events to workers."""
        if self.flush_requested:
            self.flush()
        if self.clock.monotonic() >= self.next_rescan:
            if self._spool_gone():
                return 0
            try:
                self.rescan()
            except OSError as exc:  # a vanished or unreadable spool: say so, try again later
                self.log.error(
                    "rescan failed", spool=str(Path(self.config.queue.dir)), error=str(exc)
                )
        self._follow()
        self._beat()
        free = self.workers - len(self.inflight)
        if free <= 0 or self.stopping or self.clock.monotonic() < self.paused_until:
            return 0
        breaker = self.breaker.read()
        if breaker.get("state") == "open":
            if self.clock.now() < self.breaker.until(breaker) or self.inflight:
                return 0
            free = 1  # half-open: one probe; the others wait for its answer, not a cooldown
        names = self.agenda.pop_due(self.clock.monotonic(), free)
        for name in names:
            self._dispatch(name)
        return len(names)

    def _beat(self) -> None:
        beat = self.heartbeat
        if beat is not None and self.pool is not None and not self.stopping and beat.claim():
            self.pool.submit(beat.beat)

    def _follow(self) -> None:
        if self.follower is not None and not self.stopping:
            self.follower.run_due()

    def drain_due(self) -> None:
        """``--once``: deliver everything due now, then return."""
        while True:
            self.step()
            if (
                not self.inflight
                and (self.stopping or not self._has_due())
                and not (self.follower is not None and self.follower.due_now())
            ):
                break
            self.wake.wait(0.05)
            self.wake.clear()
        self._wait_inflight()

    def _has_due(self) -> bool:
        due = self.agenda.next_due()
        return due is not None and due <= self.clock.monotonic() and not self.breaker.is_open()

    def _wait_time(self) -> float:
        waits = [max(0.0, self.next_rescan - self.clock.monotonic())]
        due = self.agenda.next_due()
        if len(self.inflight) >= self.workers:
            due = None  # nothing can start before a delivery ends, and its end wakes us
        state = self.breaker.read()
        if due is not None and state.get("state") == "open":
            # nothing starts before the cooldown ends, nor while a probe is out
            due = None if self.inflight else max(due, self._agenda_time(self.breaker.until(state)))
        if due is not None:
            due = max(due, self.paused_until)  # after a failed write: not before the pause
            waits.append(max(0.0, due - self.clock.monotonic()))
        if self.idle_exit:
            waits.append(max(0.0, self.last_activity + self.idle_exit - self.clock.monotonic()))
        follow = self.follower.next_due() if self.follower is not None else None
        if follow is not None:
            waits.append(max(0.0, follow - self.clock.monotonic()))
        if self.heartbeat is not None:
            waits.append(max(0.0, self.heartbeat.next_due() - self.clock.monotonic()))
        return max(0.01, min(waits))

    def _idle_expired(self) -> bool:
        if not self.idle_exit or self.inflight or len(self.agenda):
            return False
        if self.follower is not None and self.follower.busy():
            return False
        return self.clock.monotonic() - self.last_activity >= self.idle_exit

    def _wait_inflight(self) -> None:
        while self.inflight:
            self.wake.wait(0.05)
            self.wake.clear()

    # -- signals ---------------------------------------------------------------------

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        if hasattr(signal, "SIGUSR1"):
            signal.signal(signal.SIGUSR1, self._on_flush)
        if RETIRE is not signal.SIGTERM:
            signal.signal(RETIRE, self._on_retire)

    def _on_retire(self, _signum: int, _frame: object) -> None:
        """A daemon with another configuration takes over: stop claiming, let the
        deliveries in flight finish, exit 0.  Unlike a second SIGTERM, a second retire
        does not exit at once: the requests in flight are not cut."""
        self.stopping = True
        self.wake.set()

    def _on_flush(self, _signum: int, _frame: object) -> None:
        """``queued flush``: pending files were made due now; look at them at once."""
        self.flush_requested = True
        self.wake.set()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.stopping:
            os._exit(1)  # second signal: at once; processing/ is recovered at next start
        self.stopping = True
        self.wake.set()

    # -- finding work ------------------------------------------------------------------

    def rescan(self) -> None:
        """Recover abandoned claims, sweep tmp/, and index every pending file."""
        self.next_rescan = self.clock.monotonic() + self.config.queue.rescan_interval
        if self.flush_request is None:  # a flush asked for while no daemon ran
            self.flush_request = read_flush(Path(self.config.queue.dir))
        self._sweep_tmp()
        self._housekeep()
        self._recover()
        now = self.clock.monotonic()
        for name in self.spool.names(State.PENDING):
            if name not in self.inflight:
                self.agenda.add_new(name, now)
        if self.follower is not None:
            self.follower.rescan()

    def flush(self) -> None:
        """``queued flush``: read its request (``flush.json``), put every pending file
        in the agenda due now, and lift the pause after a failed write.  Each file is
        still read before it is sent; one whose due time was set before the request
        (and that the request names, if it names any) goes out now instead of after
        its backoff.  The files themselves are not rewritten: only this daemon claims
        from pending/, so nothing races it."""
        self.flush_requested = False
        self.flush_request = read_flush(Path(self.config.queue.dir))
        now = self.clock.monotonic()
        names = [n for n in self.spool.names(State.PENDING) if n not in self.inflight]
        for name in names:
            self.timed.discard(name)
            self.agenda.add(name, now)
        self.paused_until = 0.0
        self.last_activity = now
        self.log.info("flush requested", pending=len(names))

    def _flushed(self, record: Record) -> bool:
        """Made due now by ``queued flush``: its due time was set before the request."""
        request = self.flush_request
        if request is None:
            return False
        set_at = _set_at(record)
        if set_at is None or set_at > request.at:
            return False
        return request.matches(str(record.envelope.get("requestId", "")))

    def _spool_gone(self) -> bool:
        """True (and stopping) if our lock file is gone or is another file now: someone
        removed or replaced the spool directory.  A daemon that went on would hold a
        lock nobody can see, beside the one the next hook's daemon takes."""
        if (
            self.lock_id is None
            or _file_id(Path(self.config.queue.dir) / "daemon.lock") == self.lock_id
        ):
            return False
        self.fatal = (
            f"the spool directory {self.config.queue.dir} was removed or replaced while "
            "queued ran; stopping (the next hook, or `queued run`, starts a daemon on it afresh)"
        )
        self.log.error("spool directory gone", spool=str(Path(self.config.queue.dir)))
        self.stopping = True
        return True

    def notice(self, name: str) -> None:
        """A new pending file (from the observer): due now until read."""
        if name.endswith(".json") and name not in self.inflight:
            self.agenda.add_new(name, self.clock.monotonic())
            self.last_activity = self.clock.monotonic()
            self.wake.set()

    def _sweep_tmp(self) -> None:
        """tmp/ files older than an hour, or whose writer (the pid in the name) is gone
        and was not us: a write that died before its rename, never to be read."""
        tmp = self.spool.dir(State.TMP)
        cutoff = self.clock.now() - TMP_MAX_AGE
        with contextlib.suppress(FileNotFoundError), os.scandir(tmp) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    old = entry.stat(follow_symlinks=False).st_mtime < cutoff
                    if old or _writer_gone(entry.name):
                        os.unlink(entry.path)
                        self.log.info("swept stale tmp file", file=entry.name)

    def _housekeep(self) -> None:
        """failed/ and corrupt/ files older than ``retention`` go (0 keeps them all)."""
        retention = self.config.queue.retention
        if not retention:
            return
        cutoff = self.clock.now() - retention
        for state in (State.FAILED, State.CORRUPT):
            with contextlib.suppress(FileNotFoundError), os.scandir(self.spool.dir(state)) as it:
                for entry in it:
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                            continue
                        os.unlink(entry.path)
                        self.log.info(
                            "removed by retention",
                            requestId=request_id_of(entry.name) or None,
                            state=state.value,
                            file=entry.name,
                            retention=retention,
                        )

    def _recover(self) -> None:
        """processing/ files no live owner holds go back to pending/, due now."""
        for path in self.spool.paths(State.PROCESSING):
            if path.name in self.inflight:
                continue
            try:
                record = self.spool.read(path)
            except FileNotFoundError:
                continue
            except CorruptFile as exc:
                self._quarantine(path, exc)
                continue
            owner = record.state.get("owner")
            if isinstance(owner, dict) and self._owner_alive(owner):
                continue
            record.state.pop("owner", None)
            record.state["nextAttemptAt"] = utc_iso(self.clock.now())
            try:
                moved = self._transition(record, State.PENDING)
            except FileNotFoundError:
                continue  # its owner finished with it meanwhile
            self.log.warning(
                "recovered abandoned claim",
                stream="queue",
                owner=owner or None,
                state="pending",
                file=moved.path.name,
                **ids(record),
            )

    def _owner_alive(self, owner: Owner) -> bool:
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return False  # ours but not in flight: from before a crash (or no owner at all)
        if owner.get("by") != "hook":
            return False  # another daemon's: we hold the lock now, so that one is gone
        try:
            age = self.clock.now() - parse_iso(str(owner.get("claimedAt")))
        except ValueError:
            return False
        limit = self.config.delivery.inline_budget + self.config.endpoint.timeout + HOOK_CLAIM_GRACE
        return pid_alive(pid) and age < limit

    def _quarantine(self, path: Path, exc: CorruptFile) -> None:
        try:
            target = self.spool.quarantine(path)
        except OSError as err:
            self.log.error("cannot quarantine corrupt file", file=path.name, error=str(err))
            return
        self.log.error(
            "corrupt file quarantined",
            requestId=request_id_of(path.name) or None,
            file=path.name,
            error=str(exc),
            state="corrupt",
            moved=str(target),
        )

    def _start_observer(self) -> None:
        from queued.watcher import start_observer

        self.observer = start_observer(self.spool.dir(State.PENDING), self.notice)

    # -- delivering ------------------------------------------------------------------

    def _dispatch(self, name: str) -> None:
        with self._inflight_lock:
            self.inflight.add(name)
        self.last_activity = self.clock.monotonic()
        assert self.pool is not None
        future = self.pool.submit(self.deliver, name)

        def done(f: Future[None]) -> None:
            self._done(name, f)

        future.add_done_callback(done)

    def _done(self, name: str, future: Future[None]) -> None:
        with self._inflight_lock:
            self.inflight.discard(name)
        self.last_activity = self.clock.monotonic()
        exc = future.exception()
        if exc is not None:
            request_id = request_id_of(name) or None
            self.log.error("delivery crashed", file=name, requestId=request_id, error=repr(exc))
            self.agenda.add(name, self.clock.monotonic() + 5.0)
        self.wake.set()

    def deliver(self, name: str) -> None:
        """Read, claim, POST, and move one pending file to its next state."""
        path = self.spool.dir(State.PENDING) / name
        waited = name in self.timed
        self.timed.discard(name)
        try:
            record = self.spool.read(path)
        except FileNotFoundError:
            return  # claimed or removed by someone else
        except CorruptFile as exc:
            self._quarantine(path, exc)
            return
        if self.follower is not None:
            self.follower.saw(record.envelope)
        now = self.clock.now()
        due = _due(record, now)
        if (
            due > now
            and not (waited and _clock_went_back(record, now))
            and not self._flushed(record)
        ):
            self._schedule(name, due)
            return
        verdict = self.breaker.check()
        if verdict == "open":
            self._schedule(name, self._breaker_until())
            return
        owner: Owner = {"pid": os.getpid(), "by": "daemon", "claimedAt": utc_iso(now)}
        try:
            claimed = self.spool.claim(record, owner, keep_unrecorded=True)
        except SpoolError as exc:  # disk full, read-only: nothing changed; pause, try again
            self.paused_until = self.clock.monotonic() + WRITE_PAUSE
            self.agenda.add(name, self.paused_until)
            self.log.error(
                "cannot claim: spool not writable; pausing",
                error=str(exc),
                pauseSeconds=WRITE_PAUSE,
                file=name,
                **ids(record),
            )
            return
        if claimed is None:
            return
        if owner.pop("unrecorded", None):
            claimed.state.pop("owner", None)  # not on disk either: nothing to write back
            self.log.warning(
                "claimed without writing the owner: spool not writable; delivering anyway",
                file=name,
                **ids(record),
            )
        try:
            self._attempt(claimed, probe=verdict == "probe")
        except OSError:
            raise  # the disk, not the file: it stays in processing/, recovered at rescan
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # parses, cannot be sent
            self._quarantine(claimed.path, CorruptFile(f"{claimed.path}: cannot be sent: {exc!r}"))

    def _attempt(self, record: Record, *, probe: bool) -> None:
        """POST once, then apply what the delivery policy decides (hookclient.policy)."""
        first = int(record.state.get("attempts", 0)) == 0
        outcome = self.sender.post(
            record.envelope,
            dumps(record.envelope),
            attempt=int(record.state.get("attempts", 0)) + 1,
            timeout=self.config.endpoint.timeout,
        )
        step = after_attempt(
            record.state,
            outcome,
            by="daemon",
            first=first,
            queue=self.config.queue,
            now=self.clock.now(),
        )
        record.state = step.state
        self._log_attempt(record, outcome, probe)
        if step.to == "delivered":  # the file goes first, then the breaker hears of it
            self._delivered(record, outcome)
            self._log_closed(record, outcome, self.breaker.success())
            return
        if step.breaker == "success":  # an HTTP answer: the endpoint is up
            self._log_closed(record, outcome, self.breaker.success())
        opened: dict[str, Any] | None = None
        if step.breaker == "failure":
            did_open, breaker = self.breaker.failed()
            opened = breaker if did_open else None
        if step.to == "failed":
            self._fail(record, outcome, step.reason)
        else:
            self._reschedule(record, outcome, step, probe)
        if opened is not None:
            self._log_opened(record, opened)

    def _log_attempt(self, record: Record, outcome: Outcome, probe: bool) -> None:
        emit = self.log.info if outcome.kind == "delivered" else self.log.warning
        emit(
            "attempt",
            stream="queue",
            attempt=outcome.attempt,
            status=outcome.status,
            outcome=outcome.kind,
            error=outcome.detail if outcome.kind != "delivered" else None,
            elapsedMs=round(outcome.elapsed_ms, 1),
            probe=probe or None,
            **{**ids(record), "spanId": outcome.span_id},
        )

    def _delivered(self, record: Record, outcome: Outcome) -> None:
        self.spool.remove(record)
        self.delivered += 1
        self.log.info(
            "delivered",
            stream="success",
            attempt=outcome.attempt,
            status=outcome.status,
            outcome="delivered",
            elapsedMs=round(outcome.elapsed_ms, 1),
            **ids(record),
        )

    def _fail(self, record: Record, outcome: Outcome, why: str) -> None:
        moved = self._transition(record, State.FAILED)
        self.log.error(
            why,
            attempt=outcome.attempt,
            status=outcome.status,
            outcome=outcome.kind,
            error=outcome.detail,
            retries=record.state.get("retries"),
            state="failed",
            file=moved.path.name,
            **ids(record),
        )

    def _reschedule(self, record: Record, outcome: Outcome, step: Transition, probe: bool) -> None:
        """pending/ again, due when the policy said (backoff for its retry count, or
        the server's Retry-After), with error.log's line saying why."""
        assert step.due is not None
        moved = self._transition(record, State.PENDING)
        self._schedule(moved.path.name, step.due)
        self.log.warning(
            "retry scheduled",
            stream="queue",
            retries=record.state["retries"],
            nextAttemptAt=record.state["nextAttemptAt"],
            error=outcome.detail,
            state="pending",
            file=moved.path.name,
            **ids(record),
        )
        self._log_retry(moved, outcome, probe)

    def _log_retry(self, record: Record, outcome: Outcome, probe: bool) -> None:
        """error.log: this try failed, and when the event goes out again (queue.log's
        "retry scheduled" says the same, but error.log is where an outage is looked
        for, and `queued status` reads its last failure from there)."""
        self.log.warning(
            RETRY_FAILED,
            stream="error",
            attempt=outcome.attempt,
            status=outcome.status,
            outcome=outcome.kind,
            error=outcome.detail,
            retries=record.state["retries"],
            nextAttemptAt=record.state["nextAttemptAt"],
            probe=probe or None,
            state="pending",
            file=record.path.name,
            **{**ids(record), "spanId": outcome.span_id},
        )

    def _log_opened(self, record: Record, breaker: dict[str, Any]) -> None:
        """error.log: the failure of ``record`` opened the breaker (once per outage)."""
        self.log.warning(
            BREAKER_OPENED,
            stream="error",
            failures=breaker.get("failures"),
            cooldown=self.breaker.cooldown,
            openUntil=utc_iso(float(breaker.get("openUntil", 0))),
            **ids(record),
        )

    def _log_closed(self, record: Record, outcome: Outcome, was: dict[str, Any] | None) -> None:
        """error.log: the answer to ``record`` closed the breaker that ``was`` open
        (the line that ends the outage's "circuit breaker opened")."""
        if was is None:
            return
        opened_at = was.get("openedAt")
        self.log.warning(
            BREAKER_CLOSED,
            stream="error",
            status=outcome.status,
            failures=was.get("failures"),
            openedAt=utc_iso(float(opened_at)) if opened_at else None,
            **{**ids(record), "spanId": outcome.span_id},
        )

    def _transition(self, record: Record, to: State) -> Record:
        """Change state; when the disk refuses the new body, move it as it was (its
        retry time then lives in the agenda only) and pause claiming."""
        moved, problem = self.spool.transition_anyway(record, to)
        if problem is not None:
            self.paused_until = self.clock.monotonic() + WRITE_PAUSE
            self.log.error(
                "spool file moved without its update",
                error=str(problem),
                state=to.value,
                file=moved.path.name,
                **ids(record),
            )
        return moved

    def _breaker_until(self) -> float:
        return max(self.breaker.until(self.breaker.read()), self.clock.now())

    def _schedule(self, name: str, wall: float) -> None:
        self.timed.add(name)
        self.agenda.add(name, self._agenda_time(wall))

    def _agenda_time(self, wall: float) -> float:
        """The agenda runs on the monotonic clock, so that a wall clock stepped by a day
        (NTP, a user, a suspended laptop's catch-up) neither stalls nor floods it."""
        return self.clock.monotonic() + (wall - self.clock.now())


def give_way(target: int = NICENESS) -> int:
    """Lower this process's CPU priority to ``target`` (nice; ``queued run --nice``), as
    background services may want on a busy laptop.  Never raises it back; returns the
    niceness in force (0 where the platform has none)."""
    if not hasattr(os, "nice"):
        return 0
    current = os.nice(0)
    if current < target:
        with contextlib.suppress(OSError):
            current = os.nice(target - current)
    return current


def ids(record: Record) -> dict[str, Any]:
    env = record.envelope
    return {
        "requestId": env.get("requestId"),
        "traceId": env.get("traceId"),
        "spanId": env.get("spanId"),
        "event": env.get("event"),
    }


def _due(record: Record, now: float) -> float:
    """When ``record`` is due.  If the time its due date was set at (its last attempt,
    else its creation) is in the future, the wall clock went back since: keep the
    delay it was given, counted from now, rather than wait for as long as the jump."""
    state = record.state
    try:
        due = parse_iso(str(state.get("nextAttemptAt")))
    except ValueError:
        return now
    if due <= now:
        return due
    set_at = _set_at(record)
    if set_at is not None and set_at > now + CLOCK_SLACK:
        return now + max(0.0, due - set_at)
    return due


def _set_at(record: Record) -> float | None:
    """When the record's due time was set: its last attempt, else its creation."""
    state = record.state
    try:
        return parse_iso(str(state.get("lastAttemptAt") or state.get("createdAt")))
    except ValueError:
        return None


def _clock_went_back(record: Record, now: float) -> bool:
    set_at = _set_at(record)
    return set_at is not None and set_at > now + CLOCK_SLACK


def _writer_gone(name: str) -> bool:
    """``<file>.<pid>.tmp`` (Spool._write's names) whose pid is dead and not ours."""
    parts = name.rsplit(".", 2)
    if len(parts) != 3 or parts[2] != "tmp" or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    return pid != os.getpid() and not pid_alive(pid)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
