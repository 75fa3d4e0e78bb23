"""Alerts: rules read from a TOML file (``hookclient-receiver serve --alerts FILE``),
checked every ``every`` seconds against the store.  An alert opens once when its rule
starts to hold for a subject (the store, or one client host) and resolves once when it
stops; each change is a row in ``alerts``, shows on the dashboard's overview, and is
POSTed to ``notify_url`` as ``{"text": ...}`` (what Slack and most chat webhooks take).

Why the database decides "once": several receiver processes may check the same rules.
An alert opens by an insert that a partial unique key (rule, subject, while open) lets
only one of them make, and resolves by an update only one of them finds open; only the
process that changed the row notifies.
"""

from __future__ import annotations

import logging
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import Connection

from receiver.database import dialect_insert
from receiver.overview import FAILED
from receiver.queries import percentiles
from receiver.schema import alerts, hosts, webhook_events
from receiver.store import stamp

logger = logging.getLogger("receiver.alerts")

KINDS = ("error_rate", "p95_ms", "host_failed", "host_silent")
DEFAULT_EVERY = 30.0
STORE = ""  # the subject of a store-wide alert
NAME_CHARS = 200  # alerts.rule


class RulesError(ValueError):
    """A rule file that cannot be used; the message names the file, the rule and the fix."""


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    #: error_rate: a share (0.05 is 5%); p95_ms: milliseconds; host_failed: a count
    above: float = 0.0
    #: error_rate and p95_ms: the seconds of traffic looked at
    window: float = 300.0
    #: error_rate and p95_ms: fewer requests than this in the window say nothing
    min_requests: int = 10
    #: host_silent: seconds without an event or a heartbeat
    after: float = 3600.0


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    notify_url: str | None = None
    every: float = DEFAULT_EVERY


@dataclass(frozen=True)
class Change:
    """An alert that opened or resolved, and what to say about it."""

    rule: str
    subject: str
    opened: bool
    text: str


def load(path: Path) -> Rules:
    """The rules in ``path``, checked: a wrong key or value is one line naming it."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the alert rules: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(doc) - {"notify_url", "every", "rule"}
    if unknown:
        raise RulesError(
            f"{path}: unknown key {sorted(unknown)[0]!r} (keys: notify_url, every, [[rule]])"
        )
    url = doc.get("notify_url")
    if url is not None and (
        not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")
    ):
        raise RulesError(f"{path}: notify_url must be an http:// or https:// URL")
    every = doc.get("every", DEFAULT_EVERY)
    if not isinstance(every, int | float) or isinstance(every, bool) or every < 1:
        raise RulesError(f"{path}: every must be a number of seconds, at least 1")
    raw = doc.get("rule", [])
    if not isinstance(raw, list) or not raw:
        raise RulesError(
            f"{path}: no rules: add at least one [[rule]] table (see config/alerts.toml)"
        )
    rules = tuple(_rule(path, i + 1, item) for i, item in enumerate(raw))
    names = [rule.name for rule in rules]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise RulesError(f"{path}: two rules are named {twice!r}: names must differ")
    return Rules(rules, url, float(every))


def _rule(path: Path, n: int, item: Any) -> Rule:
    where = f"{path}: rule {n}"
    if not isinstance(item, dict):
        raise RulesError(f"{where}: must be a [[rule]] table")
    fields = set(Rule.__dataclass_fields__)
    unknown = set(item) - fields
    if unknown and isinstance(item.get("name"), str):
        where = f"{where} ({item['name']!r})"
    if unknown:
        raise RulesError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (keys: {', '.join(sorted(fields))})"
        )
    name, kind = item.get("name"), item.get("kind")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f'{where}: needs a name (name = "...")')
    if len(name) > NAME_CHARS:
        raise RulesError(f"{where}: name is longer than {NAME_CHARS} characters")
    if kind not in KINDS:
        raise RulesError(f"{where} ({name!r}): kind must be one of {', '.join(KINDS)}")
    if kind in ("error_rate", "p95_ms") and "above" not in item:
        raise RulesError(f"{where} ({name!r}): a {kind} rule needs above = ...")
    if kind == "error_rate" and isinstance(item.get("above"), int | float) and item["above"] > 1:
        raise RulesError(f"{where} ({name!r}): above is a share of requests, 0 to 1 (0.05 is 5%)")
    for key in ("above", "window", "after", "min_requests"):
        value = item.get(key)
        if value is not None and (
            not isinstance(value, int | float) or isinstance(value, bool) or value < 0
        ):
            raise RulesError(f"{where} ({name!r}): {key} must be a number, 0 or more")
    return Rule(**{k: v for k, v in item.items()})


def check(engine: Engine, rules: Rules, now: datetime) -> list[Change]:
    """Open the alerts whose rule holds now and resolve those whose rule stopped; the
    changes this call made (another process's are its own to report)."""
    changes = _retired(engine, rules, now)
    for rule in rules.rules:
        firing = _firing(engine, rule, now)
        with engine.begin() as conn:
            open_now = _open_subjects(conn, rule.name)
            for subject, (text, owner_id) in firing.items():
                if subject in open_now:
                    continue
                opened = conn.execute(
                    dialect_insert(conn, alerts)
                    .values(rule=rule.name, subject=subject, owner_id=owner_id, text=text,
                            opened_at=stamp(now))
                    .on_conflict_do_nothing(
                        index_elements=["rule", "subject"],
                        index_where=alerts.c.resolved_at.is_(None),
                    )
                    .returning(alerts.c.id)
                ).first()  # fmt: skip
                if opened is not None:  # RETURNING, not rowcount: psycopg's says nothing here
                    changes.append(Change(rule.name, subject, True, f"{rule.name}: {text}"))
            for subject in open_now - set(firing):
                resolved = conn.execute(
                    update(alerts)
                    .where(alerts.c.rule == rule.name, alerts.c.subject == subject,
                           alerts.c.resolved_at.is_(None))
                    .values(resolved_at=stamp(now))
                )  # fmt: skip
                if resolved.rowcount == 1:
                    host = subject.split(":", 1)[-1]  # "<owner id>:<host>"
                    what = rule.name if subject == STORE else f"{rule.name} (host {host})"
                    changes.append(Change(rule.name, subject, False, f"resolved: {what}"))
    return changes


def _open_subjects(conn: Connection, rule: str) -> set[str]:
    """The subjects the rule has an open alert for, as this transaction sees them (another
    process may open one after this read: the insert's conflict settles that)."""
    query = select(alerts.c.subject).where(alerts.c.rule == rule, alerts.c.resolved_at.is_(None))
    return set(conn.execute(query).scalars())


def _retired(engine: Engine, rules: Rules, now: datetime) -> list[Change]:
    """Resolve the open alerts of rules no longer in the file (removed or renamed)."""
    names = [rule.name for rule in rules.rules]
    with engine.begin() as conn:
        gone = conn.execute(
            update(alerts)
            .where(alerts.c.resolved_at.is_(None), alerts.c.rule.not_in(names))
            .values(resolved_at=stamp(now))
            .returning(alerts.c.rule, alerts.c.subject)
        ).all()
    return [
        Change(rule, subject, False, f"resolved: {rule} (no longer a rule)")
        for rule, subject in gone
    ]


def _firing(engine: Engine, rule: Rule, now: datetime) -> dict[str, tuple[str, int | None]]:
    """The subjects the rule holds for now: subject -> (what to say, whose it is)."""
    audit = webhook_events.c
    since = stamp(now - timedelta(seconds=rule.window))
    with engine.connect() as conn:
        if rule.kind == "error_rate":
            total, failed = conn.execute(
                select(func.count(), func.count().filter(audit.status.in_(FAILED))).where(
                    audit.received_at >= since
                )
            ).one()
            if total >= max(rule.min_requests, 1) and failed / total > rule.above:
                share = 100 * failed / total
                text = (
                    f"{share:.1f}% of {total} requests failed in the last {rule.window:.0f} s"
                    f" (above {100 * rule.above:.1f}%)"
                )
                return {STORE: (text, None)}
            return {}
        if rule.kind == "p95_ms":
            window = [audit.received_at >= since, audit.processing_ms.is_not(None)]
            if conn.execute(select(func.count()).where(*window)).scalar_one() < max(
                rule.min_requests, 1
            ):
                return {}  # too few requests to say anything of their p95
            found = percentiles(conn, window, (95,))
            if not found:
                return {}
            p95 = found[95]
            if p95 > rule.above:
                return {
                    STORE: (
                        f"p95 processing {p95:.1f} ms over the last {rule.window:.0f} s"
                        f" (above {rule.above:.0f} ms)",
                        None,
                    )
                }
            return {}
        rows = conn.execute(select(hosts)).all()
    firing: dict[str, tuple[str, int | None]] = {}
    for row in rows:
        subject = f"{row.owner_id}:{row.host}"
        if rule.kind == "host_failed" and row.failed is not None and row.failed > rule.above:
            firing[subject] = (
                f"host {row.host} has {row.failed} failed events (above {rule.above:.0f})",
                row.owner_id,
            )
        if rule.kind == "host_silent":
            seen = max(filter(None, (row.last_event_at, row.heartbeat_at)), default=None)
            if seen is not None and seen < stamp(now - timedelta(seconds=rule.after)):
                firing[subject] = (
                    f"host {row.host} silent since {seen} (more than {rule.after:.0f} s)",
                    row.owner_id,
                )
    return firing


def chat_text(text: str) -> str:
    """Text as chat webhooks take it literally: Slack reads ``<...>`` as links and
    mentions (``<!channel>``) and ``&`` as an entity, so those three are escaped (a host
    name is whatever a client sent)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def notify(url: str | None, change: Change, post: Callable[..., Any] | None = None) -> None:
    """POST the change to ``notify_url`` once; a failure is logged (without the URL, whose
    path is often the webhook's secret), never raised."""
    logger.warning("alert %s: %s", "opened" if change.opened else "resolved", change.text)
    if url is None:
        return
    import httpx

    send = post or httpx.post
    try:
        answer = send(url, json={"text": chat_text(change.text)}, timeout=5.0)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        host = urlsplit(url).hostname
        logger.warning("alert notification to %s failed: %s", host, type(exc).__name__)


class Checker:
    """The rules checked on a thread of their own until :meth:`stop`."""

    def __init__(
        self, engine: Engine, rules: Rules, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.clock = clock or (lambda: datetime.now(UTC))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> list[Change]:
        changes = check(self.engine, self.rules, self.clock())
        for change in changes:
            notify(self.rules.notify_url, change)
        return changes

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup: try again at the next round
                logger.exception("checking the alert rules failed")
            self._stop.wait(self.rules.every)
