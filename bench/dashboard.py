"""The dashboard's first page load with 100,000 events stored (issue 20's target: the
overview in <= 300 ms, served HTML and assets), measured in Debian's Chromium through
Playwright: each load in a fresh browser context (nothing cached), signed in by cookie,
from navigation start to the load event.  On SQLite and on PostgreSQL (the test suite's
throwaway server, tests/pg.py).

The events and their audit rows are bulk-inserted, spread over the last 24 hours (what
the overview reads), half the admin's and half a user's, with a hundred hosts; the
overview is loaded as each; the projection is not run for them.  On
PostgreSQL the table is then vacuumed and analyzed, as autovacuum would soon do.

Usage: .venv/bin/python bench/dashboard.py [--events 100000] [--loads 15]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from receiver.schema import events, hosts, webhook_events  # noqa: E402
from receiver.store import Store, stamp  # noqa: E402
from tests import pg  # noqa: E402
from tests.conftest import start_receiver  # noqa: E402
from tests.test_browser import ARGS, CHROMIUM  # noqa: E402

EVENTS = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "Transcript", "Notification")


def fill(url: str, n: int) -> str:
    """``n`` events, half the admin's and half a user's; that user's token."""
    now = datetime.now(UTC)
    with Store(url) as store:
        token = store.add_user("alice")
        alice = store.owner_id("alice")
    with Store(url) as store, store.engine.begin() as conn:
        for start in range(0, n, 10_000):
            batch_events, batch_audit = [], []
            for i in range(start, min(n, start + 10_000)):
                at = stamp(now - timedelta(seconds=random.uniform(0, 86_000)))
                rid, event = str(uuid.uuid4()), random.choice(EVENTS)
                owner = 1 if i % 2 else alice
                doc = {"requestId": rid, "event": event, "source": {"host": f"host-{i % 100}"}}
                batch_events.append({
                    "owner_id": owner, "request_id": rid, "event": event,
                    "session_id": f"s{i % 500}", "trace_id": uuid.uuid4().hex,
                    "span_id": uuid.uuid4().hex[:16], "attempt": 1,
                    "envelope": json.dumps(doc), "headers": "{}", "received_at": at,
                })  # fmt: skip
                status = "SUCCESS" if random.random() > 0.02 else "INVALID"
                batch_audit.append({
                    "owner_id": owner, "request_id": rid, "event": event,
                    "session_id": f"s{i % 500}", "status": status,
                    "http_status": 200 if status == "SUCCESS" else 422,
                    "detail": None, "received_at": at, "processing_ms": random.uniform(1, 20),
                })  # fmt: skip
            conn.execute(insert(events), batch_events)
            conn.execute(insert(webhook_events), batch_audit)
        conn.execute(insert(hosts), [
            {"owner_id": 1, "host": f"host-{h}", "last_event": "Stop", "last_event_at": stamp(now),
             "heartbeat_at": stamp(now), "pending": h % 7, "processing": 0, "failed": h % 3,
             "oldest_pending_age": 12.5, "version": "0.1.0", "last_request_id": None,
             "heartbeat_request_id": None}
            for h in range(100)
        ])  # fmt: skip
    return token


def settle(url: str) -> None:
    """What autovacuum does to a table after a bulk load, at once: PostgreSQL's statistics
    and visibility map (index-only scans need it)."""
    if not url.startswith("postgresql"):
        return
    with Store(url) as store, store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE webhook_events"
        )


def loads(port: int, token: str, count: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        first = browser.new_context()
        page = first.new_page()
        page.goto(base + "/login")
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/")
        cookies = first.cookies()
        first.close()
        for _ in range(count):
            context = browser.new_context()  # a cold cache every time
            context.add_cookies(cookies)  # type: ignore[arg-type]
            page = context.new_page()
            page.goto(base + "/", wait_until="load")
            timing: Any = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return n.loadEventEnd - n.startTime; }"
            )
            times.append(float(timing))
            context.close()
        browser.close()
    return times


def run(name: str, url: str | None, work: Path, n: int, count: int) -> None:
    admin = "bench-" + uuid.uuid4().hex
    database = url or f"sqlite:///{work / 'rx.db'}"
    start = time.perf_counter()
    user = fill(database, n)
    settle(database)
    filled = time.perf_counter() - start
    rx = start_receiver(work, token=admin, database=database)
    try:
        for who, token in (("the admin (everyone's)", admin), ("a user (half of them)", user)):
            times = loads(rx.port, token, count)
            ordered = sorted(times)
            p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
            print(
                f"{name:<11} {n:,} events (filled in {filled:.0f} s), {who}: overview first "
                f"load p50 {statistics.median(times):.0f} ms, p95 {p95:.0f} ms, "
                f"max {max(times):.0f} ms of {count} cold loads"
            )
    finally:
        rx.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--loads", type=int, default=15)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print("bench/dashboard.py: Chromium is not installed: apt-get install -y chromium")
        return 2
    print(f"dashboard bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores")
    run(
        "SQLite",
        None,
        Path(tempfile.mkdtemp(prefix="hookclient-bench-dash-")),
        args.events,
        args.loads,
    )
    with pg.bench_database("hookclient-bench-pg-") as database:
        work = Path(tempfile.mkdtemp(prefix="hookclient-bench-dash-"))
        run("PostgreSQL", database, work, args.events, args.loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
