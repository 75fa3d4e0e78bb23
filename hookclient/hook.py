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
with the breaker open) costs the session little more than starting Python (2.0-2.4x
``python -c pass`` here, from 5.2-5.4x).  What it imports is pinned by ``tests/test_hook_e2e.py``.
What it leaves out, and what each cost it, measured here on 2026-11-23 as ``python -c
"import json, X"`` minus ``python -c "import json"`` (json it needs; median of 41
alternating runs; ``bench/hook.py --attribution`` measures the same in the hook):

- typing (3.7 ms): ``from __future__ import annotations``, and imports only for type
  checkers under ``TYPE_CHECKING = False`` (mypy reads that name as True);
- dataclasses (9.9 ms, it pulls inspect), plus building the classes (hookclient's own
  modules took 10.2 ms to import, now 3.3 ms): plain classes with ``__slots__``;
- pathlib (4.2 ms): ``str`` paths and ``os.path`` in the modules on this path;
- tomllib (9.7 ms): :mod:`hookclient.configcache` keeps parsed config files;
- platformdirs (12.3 ms): :mod:`hookclient.dirs` computes its three directories;
- hashlib (2.7 ms, OpenSSL): CPython's own SHA-256 for the spool key;
- contextlib (0.4 ms), signal (0.5 ms), subprocess, httpx (90 ms): not at all, or only
  when direct delivery or autostart need them.

BENCHMARKS.md "Hook fast path" has the before and after.
"""

from __future__ import annotations

import os
import sys
import time

from hookclient import envelope as env
from hookclient.clock import utc_iso
from hookclient.config import default_files, load_config
from hookclient.configcache import ConfigCache, default_file
from hookclient.errors import SpoolError
from hookclient.logs import LogWriter
from hookclient.spool import Record, Spool, State, new_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from hookclient.breaker import Breaker
    from hookclient.config import Config
    from hookclient.delivery import Outcome

#: Past the budget, the alarm gets this long before it interrupts a hanging request.
ALARM_GRACE = 0.2


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


class BudgetExceeded(BaseException):
    """Raised by the alarm inside a request that outlived the hook's budget.

    A BaseException so that no library's ``except Exception`` swallows it.
    """


class Hook:
    """One run of the hook: one event, one envelope, one spool record."""

    def __init__(self, config: Config, options: SendOptions, started: float) -> None:
        self.config = config
        self.options = options
        self.started = started
        self.log = LogWriter(
            config.logs.dir_str,
            component="hook",
            level=config.logs.level,
            max_bytes=config.logs.max_bytes,
            backups=config.logs.backups,
        )
        self.spool = Spool(config.queue.dir_str, max_bytes=config.queue.max_spool_bytes)
        self._breaker: Breaker | None = None
        self.ids: dict[str, Any] = {"requestId": None}
        self.probe = False
        self.breaker_opened = False
        self.spooled = False

    @property
    def breaker(self) -> Breaker:
        """The spool's circuit breaker; loaded on the first look (spool mode and auto
        mode with a daemon running never look)."""
        if self._breaker is None:
            from hookclient.breaker import Breaker

            queue = self.config.queue
            self._breaker = Breaker(
                os.path.join(queue.dir_str, "breaker.json"),
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
        }
        self._report_input(envelope)
        mode, why = self._mode()
        record = self._spool(envelope, "direct" if mode == "direct" else "spool", why)
        if record is None:
            return 1
        self.spooled = True
        if mode == "direct":
            self._deliver(record)
        elif mode == "autostart":
            self._autostart(record)
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

            if lock_held(os.path.join(self.config.queue.dir_str, "daemon.lock")):
                return "spool", "daemon running"
            if self.config.delivery.autostart:
                return "autostart", "no daemon running: starting one"
        return self._direct()

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
                owner = {"pid": os.getpid(), "by": "hook", "claimedAt": utc_iso(now)}
                state = new_state(now, due=now, owner=owner)
                record = self.spool.add(envelope, state, State.PROCESSING)
            else:
                record = self.spool.add(envelope, new_state(now, due=now), State.PENDING)
        except SpoolError as exc:
            self.log.log("error", "error", "event could not be spooled", error=str(exc), **self.ids)
            print(f"hookclient: event {self.ids['requestId']} not saved: {exc}", file=sys.stderr)
            return None
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

    # -- auto mode: a daemon delivers ---------------------------------------------------

    def _autostart(self, record: Record) -> None:
        """Start ``queued`` detached; if that is impossible, deliver this one directly."""
        from hookclient import daemon

        try:
            started = daemon.start(
                self.config.queue.dir_str, self.config.queue.idle_exit, self.options.config
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
        owner = {"pid": os.getpid(), "by": "hook", "claimedAt": utc_iso(time.time())}
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
        from hookclient.delivery import Sender, deliver_inline, transport_warnings
        from hookclient.errors import DeliveryError

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
            except DeliveryError as exc:
                outcome = exc.outcome
            finally:
                _disarm_alarm()
        except BudgetExceeded:
            pass  # an outcome that arrived before the alarm stands; none means "retry later"
        sender.close()
        if outcome is None or outcome.kind == "retryable":
            self._requeue(record, outcome)
        elif outcome.kind == "delivered":
            self._delivered(record, outcome)
        else:
            self._failed(record, outcome)

    def _attempted(self, record: Record, outcome: Outcome) -> None:
        state = record.state
        state["attempts"] = outcome.attempt
        state["lastAttemptAt"] = utc_iso(outcome.at)
        state.setdefault("history", []).append(outcome.history_entry("hook"))
        if outcome.kind != "delivered":
            state["lastError"] = outcome.last_error()
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
        if outcome.kind == "retryable":
            self.breaker_opened = self.breaker.failure()
        elif outcome.kind == "delivered" or outcome.status is not None:
            # any HTTP answer, even a 4xx, means the endpoint is up: the run of
            # retryable outcomes that opens the breaker is broken (as in the daemon)
            self.breaker.success()

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

    def _failed(self, record: Record, outcome: Outcome) -> None:
        record.state.pop("owner", None)
        moved = self._transition(record, State.FAILED)
        self.log.log(
            "error",
            "error",
            "failed permanently",
            attempt=outcome.attempt,
            status=outcome.status,
            outcome="permanent",
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

    def _requeue(self, record: Record, outcome: Outcome | None) -> None:
        from hookclient.backoff import next_delay

        queue = self.config.queue
        if outcome is None:  # the alarm cut a request that outlived the budget
            detail = "hook budget exhausted while the request was in flight"
            record.state["lastError"] = {"kind": "timeout", "status": None, "detail": detail}
        delay = next_delay(
            0,
            schedule=queue.backoff,
            jitter=queue.jitter,
            retry_after=outcome.retry_after if outcome else None,
            retry_after_cap=queue.retry_after_cap,
        )
        due = time.time() + delay
        record.state["retries"] = 0
        record.state["nextAttemptAt"] = utc_iso(due)
        record.state.pop("owner", None)
        moved = self._transition(record, State.PENDING)
        self.log.log(
            "queue",
            "warning",
            "retry scheduled",
            state="pending",
            nextAttemptAt=utc_iso(due),
            error=(record.state.get("lastError") or {}).get("detail"),
            file=moved.name,
            elapsedMs=self._elapsed(),
            **self.ids,
        )

    def _elapsed(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)


def _without_async_backends() -> list[str]:
    """httpcore imports anyio and trio, when installed, for async clients; the hook's
    one synchronous POST needs neither, and anyio costs it 4 ms (it is installed beside
    starlette, say).  Marked absent while the hook delivers, httpcore skips them.
    Returns the names it marked, to be unmarked afterwards."""
    blocked = [name for name in ("anyio", "trio") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    return blocked


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
    returned as not understood.  Hand-written because argparse costs the hook 8 ms."""
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
        paths = default_files(environ, options.config)
        config = load_config(paths, environ, overrides, strict=False, cache=_config_cache())
        hook = Hook(config, options, started)
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
