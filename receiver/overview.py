"""The dashboard overview's figures, from the audit (``webhook_events``), the hosts the
clients wrote from (``hosts``) and the open alerts: each a few indexed queries, so the page
stays quick with a day of heavy traffic stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from receiver.queries import percentiles
from receiver.schema import alerts, hosts, webhook_events
from receiver.store import stamp

#: The statuses a request can end in, in the order the table shows them.
STATUSES = ("SUCCESS", "DUPLICATE", "INVALID", "UNAUTHORIZED", "ERROR")
FAILED = ("INVALID", "UNAUTHORIZED", "ERROR")
#: The day's chart: one bar per this many minutes (their per-minute average); 1,440
#: one-minute bars would be thinner than a pixel.
DAY_BUCKET = 10


@dataclass
class Overview:
    requests: int = 0
    success_rate: str = "-"
    p50: str = "-"
    p95: str = "-"
    p99: str = "-"
    hour: list[int] = field(default_factory=list)
    day: list[float] = field(default_factory=list)
    hour_span: tuple[str, str] = ("", "")
    day_span: tuple[str, str] = ("", "")
    by_type: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    statuses: tuple[str, ...] = STATUSES


def overview(engine: Engine, owner_id: int | None, now: datetime) -> Overview:
    """The overview for one owner (None: everyone's) at ``now``."""
    out = Overview()
    day_ago, hour_ago = now - timedelta(days=1), now - timedelta(hours=1)
    audit = webhook_events.c
    mine = [] if owner_id is None else [audit.owner_id == owner_id]
    recent = [audit.received_at >= stamp(day_ago), *mine]
    with engine.connect() as conn:
        minute = func.substr(audit.received_at, 1, 16)
        per_minute: dict[str, int] = dict(
            conn.execute(select(minute, func.count()).where(*recent).group_by(minute)).all()
        )
        counts: dict[str, dict[str, int]] = {}
        for event, status, count in conn.execute(
            select(audit.event, audit.status, func.count())
            .where(*recent)
            .group_by(audit.event, audit.status)
        ):
            counts.setdefault(event or "(none)", {})[status] = count
        ranked = percentiles(conn, recent)
        out.failures = [
            dict(row._mapping)
            for row in conn.execute(
                select(
                    audit.received_at, audit.status, audit.http_status, audit.event,
                    audit.request_id, audit.detail,
                )
                .where(audit.status.in_(FAILED), *mine)
                .order_by(audit.id.desc())
                .limit(10)
            )
        ]  # fmt: skip
        out.hosts = _hosts(conn, owner_id)
        out.alerts = _open_alerts(conn, owner_id)
    out.hour, out.hour_span = _series(per_minute, hour_ago, 60)
    minutes, out.day_span = _series(per_minute, day_ago, 24 * 60)
    out.day = [
        sum(minutes[i : i + DAY_BUCKET]) / DAY_BUCKET for i in range(0, len(minutes), DAY_BUCKET)
    ]
    out.by_type = sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))
    total = sum(sum(row.values()) for row in counts.values())
    ok = sum(row.get("SUCCESS", 0) + row.get("DUPLICATE", 0) for row in counts.values())
    out.requests = total
    if total:
        out.success_rate = f"{100 * ok / total:.1f}%"
    for pct, value in ranked.items():
        setattr(out, f"p{pct}", f"{value:.1f}")
    return out


def _series(
    per_minute: dict[str, int], start: datetime, minutes: int
) -> tuple[list[int], tuple[str, str]]:
    """Counts for each of ``minutes`` minutes after ``start``, oldest first."""
    first = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    keys = [stamp(first + timedelta(minutes=i))[:16] for i in range(minutes)]
    if minutes > 60:  # the day's chart spans two dates
        label = (f"{keys[0][5:10]} {keys[0][11:16]} UTC", f"{keys[-1][5:10]} {keys[-1][11:16]} UTC")
    else:
        label = (keys[0][11:16] + " UTC", keys[-1][11:16] + " UTC")
    return [per_minute.get(key, 0) for key in keys], label


def _hosts(conn: Any, owner_id: int | None) -> list[dict[str, Any]]:
    h = hosts.c
    query = select(hosts).order_by(h.host)  # the first 200 (a page, not a fleet console)
    if owner_id is not None:
        query = query.where(h.owner_id == owner_id)
    return [dict(row._mapping) for row in conn.execute(query.limit(200))]


def _open_alerts(conn: Any, owner_id: int | None) -> list[dict[str, Any]]:
    """Open alerts: a host's for its owner; the store-wide ones (about everyone's
    requests) for admins only, as every figure about everyone's data is."""
    a = alerts.c
    query = select(alerts).where(a.resolved_at.is_(None)).order_by(a.opened_at.desc())
    if owner_id is not None:
        query = query.where(a.owner_id == owner_id)
    return [dict(row._mapping) for row in conn.execute(query)]
