"""``hookclient send``: the command Claude Code runs on every hook event.

The order of work is the product's first promise: read stdin, build the envelope, and
write it to the spool (fsync'd) *before* any network I/O.  Whatever happens after that
(Claude Code's timeout kills us, the endpoint hangs, the process crashes) the event is
on disk: in processing/ with our pid as owner (direct mode), which the daemon recovers,
or in pending/.

The second promise: nothing on stdout, exit 0, bounded time.  The only non-zero exit
is 1, when the event could be neither delivered nor spooled (disk full, read-only
spool); then one line goes to stderr.  Exit 2, which would block the user's prompt or
tool call, is never used.

The third: the spool path (spool mode, auto mode with a daemon running, direct mode
with the breaker open) costs the session little more than starting Python.  What it
imports is pinned by ``tests/test_hook_e2e.py``.  What it leaves out, and how (what
each costs is measured in BENCHMARKS.md "Hook fast path"; ``bench/hook.py
--attribution`` measures it in the hook):

- typing: ``from __future__ import annotations``, and imports only for type checkers
  under ``TYPE_CHECKING = False`` (mypy reads that name as True);
- dataclasses (it pulls inspect), and building classes with it: plain classes with
  ``__slots__``;
- pathlib: ``str`` paths and ``os.path`` in the modules on this path;
- tomllib: :mod:`hookclient.configcache` keeps parsed config files;
- platformdirs: :mod:`hookclient.dirs` computes its three directories;
- hashlib (OpenSSL): CPython's own SHA-256 for the spool key;
- json, re, enum: :mod:`hookclient.jsoncodec`, string tests, a plain ``State`` class;
- contextlib, signal, subprocess, httpx: not at all, or only when direct delivery or
  autostart need them.
"""

from __future__ import annotations

import os
import sys
import time

from hookclient import envelope as env
from hookclient.clock import utc_iso
from hookclient.config import default_paths, load_config
from hookclient.configcache import ConfigCache, default_file
from hookclient.errors import BudgetExceeded, SpoolError
from hookclient.logs import BREAKER_CLOSED, BREAKER_OPENED, RETRY_FAILED, LogWriter
from hookclient.spool import Record, Spool, State, last_error_of, new_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from hookclient.breaker import Breaker
    from hookclient.config import Config
    from hookclient.outcome import Outcome
    from hookclient.policy import Transition
    from hookclient.spoolstate import Owner

#: Past the budget, the alarm gets this long before it interrupts a hanging request.
ALARM_GRACE = 0.2
#: Why an auto-mode hook starts a daemon although one runs.
REPLACING = "daemon delivers with another endpoint, token or signing secret: replacing it"


class SendOptions:
    """The three flags of ``hookclient send``."""

    __slots__ = ("config", "event", "mode")

    def __init__(
        self, event: str | None = None, mode: str | None = None, config: str | None = None
    ) -> None:
        self.event = event
        self.mode = mode
        self.config = config

    def __repr__(self) -> str:
        return f"SendOptions(event={self.event!r}, mode={self.mode!r}, config={self.config!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SendOptions):
            return NotImplemented
        return (self.event, self.mode, self.config) == (other.event, other.mode, other.config)

    def __hash__(self) -> int:
        return hash((self.event, self.mode, self.config))


class Hook:
    """One run of the hook: one event, one envelope, one spool record."""

    def __init__(
        self,
        config: Config,
        options: SendOptions,
        started: float,
        route: tuple[str, str] | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.started = started
        #: where this event goes: the configuration's spool and logs, or (when the
        #: configuration has a problem) those of the last one that worked (:func:`route`)
        self.spool_dir, logs_dir = route or (config.queue.dir, config.logs.dir)
        self.log = LogWriter(
            logs_dir,
            component="hook",
            level=config.logs.level,
            max_bytes=config.logs.max_bytes,
            backups=config.logs.backups,
        )
        self.spool = Spool(
            self.spool_dir,
            max_bytes=config.queue.max_spool_bytes,
            endpoint=None if config.problems else config.endpoint.url,
        )
        self._breaker: Breaker | None = None
        self._holder: dict[str, object] | None = None
        #: the configured spool could not be written: the event went to the unrouted one
        self.fell_back = False
        #: the last attempt the hook saw and the policy's answer to it
        self._step: tuple[Outcome, Transition] | None = None
        # "spool" on every line: the logs directory is shared by the spools of every
        # endpoint, and `queued status` reads only its own spool's lines
        self.ids: dict[str, Any] = {"requestId": None, "spool": self.spool_dir}
        self.probe = False
        self.breaker_opened = False
        self.spooled = False
        #: error.log's line for the last failed try, held until what follows it is known
        self._failure: dict[str, Any] | None = None
        #: the breaker's state when that failure opened it
        self._opened: dict[str, Any] | None = None

    @property
    def breaker(self) -> Breaker:
        """The spool's circuit breaker; loaded on the first look (spool mode and auto
        mode with a daemon running never look)."""
        if self._breaker is None:
            from hookclient.breaker import BREAKER_FILE, Breaker

            queue = self.config.queue
            self._breaker = Breaker(
                os.path.join(self.spool_dir, BREAKER_FILE),
                failures=queue.breaker_failures,
                cooldown=queue.breaker_cooldown,
            )
        return self._breaker

    # -- the whole run ---------------------------------------------------------------

    def run(self, stdin_fd: int) -> int:
        delivery = self.config.delivery
        capture = env.read_stdin(
            stdin_fd, timeout=delivery.stdin_timeout, limit=delivery.max_payload_bytes
        )
        envelope = env.build(
            capture,
            event_flag=self.options.event,
            redact_keys=delivery.redact_keys,
            limit=delivery.max_payload_bytes,
            redact_patterns=delivery.redact_patterns,
        )
        self.ids = {
            "requestId": envelope["requestId"],
            "traceId": envelope["traceId"],
            "spanId": envelope["spanId"],
            "event": envelope["event"],
            "spool": self.spool_dir,
        }
        self._report_input(envelope)
        mode, why = self._mode()
        if mode == "replace" and not self._retire():
            mode, why = "spool", "daemon being replaced by another hook"
        record = self._spool(envelope, "direct" if mode == "direct" else "spool", why)
        if record is None:
            return 1
        self.spooled = True
        if self.fell_back:
            return 0  # safe in the unrouted spool; nothing delivers from there
        if mode == "direct":
            self._deliver(record)
        elif mode in ("autostart", "replace"):
            self._autostart(record, replace=mode == "replace")
        return 0

    def _report_input(self, envelope: dict[str, Any]) -> None:
        self.log.log(
            "debug", "debug", "event received", sessionId=envelope.get("sessionId"), **self.ids
        )
        for problem in self.config.problems:
            self.log.log(
                "error",
                "error",
                "configuration problem; event spooled, not sent",
                error=problem,
                **self.ids,
            )
        if "payloadError" in envelope:
            self.log.log(
                "error",
                "warning",
                "payload kept as raw text",
                error=envelope["payloadError"],
                payloadBytes=envelope.get("payloadBytes"),
                **self.ids,
            )

    def _mode(self) -> tuple[str, str]:
        """The mode for this event, and why when it is not the configured one."""
        mode = self.options.mode or self.config.delivery.mode
        if mode == "spool":
            return "spool", "mode spool"
        if self.config.problems:
            return "spool", "configuration problem"
        if not self.config.endpoint.url:
            return "spool", "no [endpoint] url configured"
        if mode == "auto":
            from hookclient.lockprobe import lock_held

            if lock_held(os.path.join(self.spool_dir, "daemon.lock")):
                if self.config.delivery.autostart and self._daemon_differs():
                    return "replace", REPLACING
                return "spool", "daemon running"
            if self.config.delivery.autostart:
                return "autostart", "no daemon running: starting one"
        return self._direct()

    def _daemon_differs(self) -> bool:
        """Should this hook replace the running daemon (:func:`lockprobe.replaceable`:
        autostarted, another endpoint, token or signing secret)?  A missing or
        unreadable pid file says nothing (a daemon on a full disk may have none): no
        replacement on a guess."""
        from hookclient.config import fingerprint
        from hookclient.lockprobe import holder, replaceable

        info = holder(self.spool_dir)
        self._holder = info
        endpoint = self.config.endpoint
        mine = fingerprint(endpoint, self.config.transcripts.sync)
        return replaceable(info, mine, bool(endpoint.token))

    def _retire(self) -> bool:
        from hookclient import autostart

        return autostart.retire(self.spool_dir, (self._holder or {}).get("pid"))

    def _direct(self) -> tuple[str, str]:
        verdict = self.breaker.check()
        if verdict == "open":
            return "spool", "circuit breaker open"
        self.probe = verdict == "probe"
        return "direct", "probe" if self.probe else ""

    # -- write-ahead ---------------------------------------------------------------------

    def _spool(self, envelope: dict[str, Any], mode: str, why: str) -> Record | None:
        now = time.time()
        try:
            if mode == "direct":
                owner: Owner = {"pid": os.getpid(), "by": "hook", "claimedAt": utc_iso(now)}
                state = new_state(now, due=now, owner=owner)
                record = self.spool.add(envelope, state, State.PROCESSING)
            else:
                record = self.spool.add(envelope, new_state(now, due=now), State.PENDING)
        except SpoolError as exc:
            kept = self._fall_back(envelope, exc, now)
            if kept is None:
                self._not_saved(exc)
                return None
            record, mode, why = kept, "spool", "configured spool not writable"
        self.log.log(
            "queue",
            "info",
            "spooled" if mode == "spool" else "claimed for direct delivery",
            state=record.where.value,
            sessionId=envelope.get("sessionId"),
            reason=why or None,
            file=record.name,
            elapsedMs=self._elapsed(),
            **self.ids,
        )
        return record

    def _not_saved(self, exc: SpoolError) -> None:
        self.log.log("error", "error", "event could not be spooled", error=str(exc), **self.ids)
        print(f"hookclient: event {self.ids['requestId']} not saved: {exc}", file=sys.stderr)

    def _fall_back(self, envelope: dict[str, Any], exc: SpoolError, now: float) -> Record | None:
        """A spool directory that cannot be written (a path under a file, no permission,
        a read-only mount) is a configuration mistake: the event goes to the unrouted
        spool, which ``queued status`` and ``doctor`` point at, rather than being lost.
        A full disk is not: the unrouted spool is very likely on the same one."""
        from hookclient.dirs import unrouted_spool_dir
        from hookclient.errors import SpoolFull

        unrouted = unrouted_spool_dir()
        if isinstance(exc, SpoolFull) or self.spool_dir == unrouted:
            return None
        spool = Spool(unrouted, max_bytes=self.config.queue.max_spool_bytes)
        try:
            record = spool.add(envelope, new_state(now, due=now), State.PENDING)
        except SpoolError:
            return None
        self.spool, self.spool_dir, self.fell_back = spool, unrouted, True
        self.ids["spool"] = unrouted
        self.log.log(
            "error",
            "error",
            "spool not writable; event kept in the unrouted spool",
            error=str(exc),
            **self.ids,
        )
        print(
            f"hookclient: {exc}; event {self.ids['requestId']} kept in {unrouted} instead "
            "(see `hookclient doctor`)",
            file=sys.stderr,
        )
        return record

    # -- auto mode: a daemon delivers ---------------------------------------------------

    def _autostart(self, record: Record, *, replace: bool = False) -> None:
        """Start ``queued`` detached (``replace``: one that takes over from a daemon
        with another configuration); if that is impossible, deliver this one directly."""
        from hookclient import autostart

        try:
            started = autostart.start(
                self.spool_dir,
                self.config.queue.idle_exit,
                self.options.config,
                replace=replace,
                claimed=replace,
            )
        except OSError as exc:
            problem = f"cannot start queued: {exc.strerror or exc}"
        else:
            if started is not None:
                self.log.log("queue", "info", "daemon started", daemonPid=started, **self.ids)
            return
        self.log.log(
            "error", "warning", "autostart failed; delivering directly", error=problem, **self.ids
        )
        mode, _why = self._direct()
        if mode != "direct":
            return  # the breaker is open: the event waits in pending/
        owner: Owner = {"pid": os.getpid(), "by": "hook", "claimedAt": utc_iso(time.time())}
        claimed = self.spool.claim(record, owner)
        if claimed is not None:
            self._deliver(claimed)

    # -- direct delivery ---------------------------------------------------------------

    def _deliver(self, record: Record) -> None:
        blocked = _without_async_backends()
        try:
            self._deliver_now(record)
        finally:  # send() may run in a longer-lived process (tests): leave it as it was
            for name in blocked:
                sys.modules.pop(name, None)

    def _deliver_now(self, record: Record) -> None:
        from hookclient.delivery import Sender, deliver_inline
        from hookclient.urls import transport_warnings

        for warning in transport_warnings(self.config.endpoint):  # once: one process, one event
            self.log.log("error", "warning", "insecure endpoint", error=warning, **self.ids)

        delivery = self.config.delivery
        budget = delivery.budget_for(self.ids["event"])
        deadline = self.started + budget
        attempts = 1 if self.probe else delivery.inline_attempts
        body = env.dumps(record.envelope)
        sender = Sender(self.config.endpoint)
        outcome: Outcome | None = None
        _arm_alarm(deadline - time.monotonic() + ALARM_GRACE)
        try:  # the alarm fires once, at any instant up to its disarming: inside this try
            try:
                outcome = deliver_inline(
                    sender,
                    record.envelope,
                    body,
                    first_attempt=1,
                    attempts=attempts,
                    delay=delivery.inline_delay,
                    deadline=deadline,
                    on_outcome=lambda o: self._attempted(record, o),
                    give_up=lambda: self.breaker_opened,
                )
            finally:
                _disarm_alarm()
        except BudgetExceeded:
            pass  # an outcome that arrived before the alarm stands; none means "retry later"
        sender.close()
        self._apply(record, self._final_step(record, outcome), outcome)

    def _decide(self, record: Record, outcome: Outcome) -> Transition:
        """The delivery policy's answer: all the hook's inline attempts are the event's
        first delivery, so none of them spends a retry."""
        from hookclient.policy import after_attempt

        step = after_attempt(
            record.state,
            outcome,
            by="hook",
            first=True,
            queue=self.config.queue,
            now=time.time(),
        )
        self._step = (outcome, step)
        return step

    def _final_step(self, record: Record, outcome: Outcome | None) -> Transition:
        """The transition of the last attempt; or, when the alarm cut a request in
        flight (``None``), of a timeout; or of the attempt never made for lack of time
        (an outcome :meth:`_attempted` did not see)."""
        if self._step is not None and self._step[0] is outcome:
            return self._step[1]
        from hookclient.policy import BUDGET_EXHAUSTED, requeue_unattempted

        cut = None
        if outcome is None:  # the alarm cut the request in flight
            self._report_failure()  # a try before it failed, if any: it was tried again
            cut = BUDGET_EXHAUSTED
            self._failure = {"outcome": "retryable", "error": cut["detail"], **self.ids}
        return requeue_unattempted(record.state, self.config.queue, time.time(), last_error=cut)

    def _apply(self, record: Record, step: Transition, outcome: Outcome | None) -> None:
        record.state = step.state
        if step.to == "delivered":
            assert outcome is not None
            self._delivered(record, outcome)
        elif step.to == "failed":
            assert outcome is not None
            self._failed(record, outcome, step.reason)
        else:
            self._requeue(record, step)

    def _attempted(self, record: Record, outcome: Outcome) -> None:
        step = self._decide(record, outcome)
        record.state = step.state
        self.log.log(
            "queue",
            "info" if outcome.kind == "delivered" else "warning",
            "attempt",
            attempt=outcome.attempt,
            status=outcome.status,
            outcome=outcome.kind,
            error=outcome.detail if outcome.kind != "delivered" else None,
            elapsedMs=round(outcome.elapsed_ms, 1),
            **{**self.ids, "spanId": outcome.span_id or self.ids["spanId"]},
        )
        self._report_failure()  # the try before this one failed: it was tried again
        if step.breaker == "failure":
            self._count_failure(outcome)
        elif step.breaker == "success":
            self._log_closed(outcome, self.breaker.success())

    def _count_failure(self, outcome: Outcome) -> None:
        """Tell the breaker (an open one stops the inline retries), and hold this try's
        error.log line until :meth:`_report_failure` knows what follows it."""
        opened, breaker = self.breaker.failed()
        self.breaker_opened = breaker.get("state") == "open"
        self._opened = breaker if opened else None
        self._failure = {
            "attempt": outcome.attempt,
            "status": outcome.status,
            "outcome": outcome.kind,
            "error": outcome.detail,
            **{**self.ids, "spanId": outcome.span_id or self.ids["spanId"]},
        }

    def _report_failure(self, next_attempt_at: str | None = None) -> None:
        """error.log's line for the last failed try, written once what follows it is
        known, so that it can say when the event goes out again: another inline try
        (no nextAttemptAt), or the spool's due time.  Then the breaker's opening, if
        that failure opened it.  (A hook killed in between loses these two lines; its
        queue.log "attempt" line is already written.)"""
        fields, self._failure = self._failure, None
        if fields is None:
            return
        self.log.log("error", "warning", RETRY_FAILED, nextAttemptAt=next_attempt_at, **fields)
        opened, self._opened = self._opened, None
        if opened is not None:
            self.log.log(
                "error",
                "warning",
                BREAKER_OPENED,
                failures=opened.get("failures"),
                cooldown=self.breaker.cooldown,
                openUntil=utc_iso(float(opened.get("openUntil", 0))),
                **self.ids,
            )

    def _log_closed(self, outcome: Outcome, was: dict[str, Any] | None) -> None:
        """error.log: this answer closed the breaker that ``was`` open (once: the
        breaker says which caller closed it)."""
        if was is None:
            return
        opened_at = was.get("openedAt")
        self.log.log(
            "error",
            "warning",
            BREAKER_CLOSED,
            status=outcome.status,
            failures=was.get("failures"),
            openedAt=utc_iso(float(opened_at)) if opened_at else None,
            **{**self.ids, "spanId": outcome.span_id or self.ids["spanId"]},
        )

    def _delivered(self, record: Record, outcome: Outcome) -> None:
        self.spool.remove(record)
        self.log.log(
            "success",
            "info",
            "delivered",
            attempt=outcome.attempt,
            status=outcome.status,
            outcome="delivered",
            elapsedMs=self._elapsed(),
            **self.ids,
        )

    def _failed(self, record: Record, outcome: Outcome, why: str) -> None:
        moved = self._transition(record, State.FAILED)
        self.log.log(
            "error",
            "error",
            why,
            attempt=outcome.attempt,
            status=outcome.status,
            outcome=outcome.kind,
            error=outcome.detail,
            state="failed",
            file=moved.name,
            **self.ids,
        )

    def _transition(self, record: Record, to: State) -> Record:
        moved, problem = self.spool.transition_anyway(record, to)
        if problem is not None:  # the event is safe, its new state JSON is not written
            self.log.log(
                "error",
                "error",
                "spool file moved without its update",
                error=str(problem),
                state=to.value,
                **self.ids,
            )
        return moved

    def _requeue(self, record: Record, step: Transition) -> None:
        assert step.due is not None
        due = step.due
        moved = self._transition(record, State.PENDING)
        self.log.log(
            "queue",
            "warning",
            "retry scheduled",
            state="pending",
            nextAttemptAt=utc_iso(due),
            error=last_error_of(record.state, "detail"),
            file=moved.name,
            elapsedMs=self._elapsed(),
            **self.ids,
        )
        self._report_failure(utc_iso(due))

    def _elapsed(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)


def _without_async_backends() -> list[str]:
    """httpcore imports anyio and trio, when installed, for async clients; the hook's
    one synchronous POST needs neither, and anyio costs it milliseconds (it is installed beside
    starlette, say).  Marked absent while the hook delivers, httpcore skips them.
    Returns the names it marked, to be unmarked afterwards."""
    blocked = [name for name in ("anyio", "trio") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    return blocked


def route(config: Config, paths: list[str], cache: ConfigCache | None) -> tuple[str, str]:
    """(spool dir, logs dir) for this event.

    A configuration that loaded cleanly with an endpoint is remembered for its project
    (its set of config files).  One that cannot be read (a file that does not parse,
    an invalid url or directory) sends the event to the spool of the last clean one,
    whose daemon may be delivering already and will once the file is fixed; with none,
    to the ``unrouted`` spool, which ``queued status`` and ``hookclient doctor`` point
    at (``queued adopt``).  A bad value elsewhere (``inline_attempts = "three"``)
    leaves the endpoint and spool as named: the event goes there, spooled.
    """
    project = "\0".join(paths)
    if not config.problems:
        if config.endpoint.url and cache is not None:
            cache.remember_route(project, config.queue.dir, config.logs.dir)
            cache.save()
        return config.queue.dir, config.logs.dir
    known = cache.route(project) if cache is not None else None
    if known is not None:
        return known
    if _readable(config, paths):  # a bad value elsewhere: its own spool is the right one
        return config.queue.dir, config.logs.dir
    from hookclient.dirs import unrouted_spool_dir

    return unrouted_spool_dir(), config.logs.dir


def _readable(config: Config, paths: list[str]) -> bool:
    """Every config file that exists was parsed, and the endpoint, spool and log
    directory are the ones it names (not defaults standing in for invalid values)."""
    where = ("endpoint.url", "queue.dir", "logs.dir")
    if any(config.sources[k].startswith("default (invalid") for k in where):
        return False
    return all(p in config.files or not os.path.exists(p) for p in paths)


def _config_cache() -> ConfigCache | None:
    """The parsed-config cache, or None where its directory cannot be known (no home)."""
    try:
        return ConfigCache(default_file())
    except (OSError, RuntimeError, ValueError):
        return None


_ALARM = {"armed": False}


def _on_alarm(_signum: int, _frame: object) -> None:
    if _ALARM["armed"]:  # a signal whose handler runs only after disarming is dropped
        _ALARM["armed"] = False
        raise BudgetExceeded


def _arm_alarm(seconds: float) -> None:
    """A hard stop for a request that trickles past its per-phase timeouts (POSIX).

    One shot: it raises :class:`BudgetExceeded` at most once, and never after
    :func:`_disarm_alarm` has returned (the chaos suite caught a hook under load whose
    alarm went off inside the old ``finally:`` and escaped as a traceback).
    """
    import signal

    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_alarm)
        _ALARM["armed"] = True
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))


def _disarm_alarm() -> None:
    import signal

    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)
    _ALARM["armed"] = False


FLAGS = ("--event", "--mode", "--config")
MODES = ("auto", "direct", "spool")


def parse_flags(argv: list[str]) -> tuple[SendOptions, list[str]]:
    """``--event X``, ``--mode M``, ``--config P`` (or ``--flag=value``); the rest is
    returned as not understood.  Hand-written: argparse is one of the imports the
    hook's path leaves out (BENCHMARKS.md "Hook fast path")."""
    values: dict[str, str] = {}
    unknown: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        name, eq, value = word.partition("=")
        if name in FLAGS and eq:
            values[name] = value
        elif name in FLAGS and i + 1 < len(argv):
            values[name] = argv[i + 1]
            i += 1
        else:
            unknown.append(word)
        i += 1
    mode = values.get("--mode")
    if mode is not None and mode not in MODES:
        unknown.append(f"--mode {mode}")
        mode = None
    return SendOptions(values.get("--event"), mode, values.get("--config")), unknown


def main(argv: list[str]) -> int:
    """``hookclient send`` from the command line.  A flag it does not understand is
    reported on stderr but never stops the event from being captured."""
    options, unknown = parse_flags(argv)
    if unknown:
        print(
            f"hookclient send: ignoring {' '.join(unknown)} (see hookclient send --help)",
            file=sys.stderr,
        )
    return send(options)


def send(
    options: SendOptions, *, environ: Mapping[str, str] | None = None, stdin_fd: int = 0
) -> int:
    """Run the hook; never raises, never exits 2."""
    started = time.monotonic()
    environ = os.environ if environ is None else environ
    overrides = {"delivery.mode": options.mode}
    hook: Hook | None = None
    try:
        paths = default_paths(environ, options.config)
        cache = _config_cache()
        config = load_config(paths, environ, overrides, strict=False, cache=cache)
        hook = Hook(config, options, started, route(config, paths, cache))
        return hook.run(stdin_fd)
    except (Exception, BudgetExceeded) as exc:  # noqa: BLE001 - the last line of defence
        import traceback

        if hook is not None:
            hook.log.log(
                "error", "error", "internal error", error=traceback.format_exc(), **hook.ids
            )
            if hook.spooled:
                return 0  # the event is safe on disk; the daemon will deliver it
        print(f"hookclient: internal error, event not saved: {exc!r}"[:500], file=sys.stderr)
        return 1
