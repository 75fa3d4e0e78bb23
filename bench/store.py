"""The store's numbers on SQLite and PostgreSQL (issue 18's targets), in one run:

- one hook event with its projection: processing_ms p50/p95 (``Store.apply``, the work
  POST /hooks does after its checks), into a fresh session and into one that already
  holds a 500-record transcript;
- one 500-record Transcript envelope: ms p50/p95;
- each of these with the envelope's check included (``validate_envelope``, as POST /hooks
  runs it before the store);
- with N messages stored (10k, 100k, 1M; sessions of 1,000 messages): 50 messages of one
  session (``/api/sessions/{id}/messages``' query) p50/p95, and search p50/p95; and the
  database's size on disk.

Messages for the read figures are inserted in bulk (the projection would take hours to
make a million), with the search index kept in step as the store keeps it.  PostgreSQL is
the test suite's own throwaway server (tests/pg.py), or HOOKCLIENT_TEST_POSTGRES.

Usage: .venv/bin/python bench/store.py [--sizes 10000,100000,1000000] [--samples 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from receiver.app import validate_envelope  # noqa: E402
from receiver.cli import freeze_heap  # noqa: E402
from receiver.queries import Reader  # noqa: E402
from receiver.schema import messages, sessions  # noqa: E402
from receiver.store import Arrival, Store  # noqa: E402
from tests import pg  # noqa: E402

RICH = (
    ROOT
    / "tests"
    / "fixtures"
    / "transcripts"
    / "rich-turn"
    / "2a2ecfaf-ba89-45e3-9d0f-0760b71e296a.jsonl"
)
WORDS = [
    *("deploy", "migration", "schema", "cursor", "token", "session", "spool", "daemon"),
    *("receiver", "backfill", "transcript", "compaction", "fork", "subagent", "python"),
    *("postgres", "sqlite", "index", "search"),
]


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


def envelope(event: str, session: str, payload: Any) -> Arrival:
    """An envelope as POST /hooks hands it to the store: checked first (the published
    schemas, ``receiver.app.validate_envelope``), as part of what is timed."""
    doc = {
        "schemaVersion": 1, "requestId": str(uuid.uuid4()), "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16], "event": event, "sessionId": session,
        "timestamp": "2026-12-02T10:00:00.000Z",
        "source": {"host": "bench", "user": "u", "cwd": "/p", "pid": 1, "client": "bench"},
        "payload": payload,
    }  # fmt: skip
    validate_envelope(doc)
    return Arrival(doc["requestId"], event, session, doc["traceId"], doc["spanId"], json.dumps(doc))


def records(session: str, n: int) -> list[dict[str, Any]]:
    """``n`` transcript records of a plausible session: prompts and replies chained."""
    out: list[dict[str, Any]] = []
    parent = None
    for i in range(n):
        uid = str(uuid.uuid4())
        if i % 2 == 0:
            body = {
                "type": "user",
                "uuid": uid,
                "parentUuid": parent,
                "sessionId": session,
                "promptId": str(uuid.uuid4()),
                "timestamp": f"2026-12-02T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                "message": {"role": "user", "content": " ".join(random.choices(WORDS, k=12))},
            }
        else:
            body = {
                "type": "assistant",
                "uuid": uid,
                "parentUuid": parent,
                "sessionId": session,
                "requestId": f"req_{i}",
                "timestamp": f"2026-12-02T10:{i // 60 % 60:02d}:{i % 60:02d}.500Z",
                "message": {
                    "id": f"msg_{i}",
                    "role": "assistant",
                    "model": "claude",
                    "content": [{"type": "text", "text": " ".join(random.choices(WORDS, k=40))}],
                    "usage": {"input_tokens": 100, "output_tokens": 20},
                },
            }
        out.append(body)
        parent = uid
    return out


def transcript(session: str, recs: list[dict[str, Any]], offset: int) -> Arrival:
    payload = {
        "transcriptPath": "/t",
        "sessionId": session,
        "agentId": None,
        "fileId": "1:1",
        "offset": offset,
        "endOffset": offset + 1,
        "records": recs,
    }
    return envelope("Transcript", session, payload)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def ingest(store: Store, samples: int) -> dict[str, str]:
    apply = lambda items: store.apply(items, attempt=1, headers={}, started=time.perf_counter())  # noqa: E731
    prompt = {"hook_event_name": "UserPromptSubmit", "prompt": "hello", "prompt_id": "p"}
    fresh = [
        timed(lambda: apply([envelope("UserPromptSubmit", str(uuid.uuid4()), prompt)]))
        for _ in range(samples)
    ]
    big = str(uuid.uuid4())
    apply([transcript(big, records(big, 500), 0)])
    loaded = [
        timed(lambda: apply([envelope("UserPromptSubmit", big, prompt)]))
        for _ in range(samples // 4)
    ]
    envelopes = []
    for _ in range(max(10, samples // 10)):
        session = str(uuid.uuid4())
        envelopes.append(timed(lambda s=session: apply([transcript(s, records(s, 500), 0)])))
    return {
        "hook event, new session: ms p50 / p95": spread(fresh),
        "hook event, session of 500 records: ms p50 / p95": spread(loaded),
        "500-record Transcript envelope: ms p50 / p95": spread(envelopes),
    }


def spread(values: list[float]) -> str:
    return f"{pct(values, 50):.2f} / {pct(values, 95):.2f}"


def fill(store: Store, upto: int, have: int) -> int:
    """Bulk-insert sessions of 1,000 messages until ``upto`` messages are stored."""
    per = 1000
    with store.engine.begin() as conn:
        while have < upto:
            session = f"bulk-{have // per:07d}"
            conn.execute(
                sessions.insert().values(
                    owner_id=1,
                    session_id=session,
                    title="bulk",
                    last_activity="2026-12-02T10:00:00.000Z",
                )
            )
            rows = [
                {
                    "owner_id": 1,
                    "session_id": session,
                    "position": i,
                    "kind": "assistant",
                    "role": "assistant",
                    "timestamp": "2026-12-02T10:00:00.000Z",
                    "text": " ".join(random.choices(WORDS, k=30)) + f" w{have + i}",
                    "content": "[]",
                    "origin": "transcript",
                }
                for i in range(per)
            ]
            conn.execute(messages.insert(), rows)
            have += per
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    return have


def reads(store: Store, stored: int, samples: int) -> dict[str, str]:
    reader = Reader(store.engine)
    sessions_n = stored // 1000
    page = [
        timed(
            lambda: reader.messages(
                f"bulk-{random.randrange(sessions_n):07d}", 1, limit=50, cursor=None
            )
        )
        for _ in range(samples)
    ]
    search = [
        timed(
            lambda: reader.search(
                f"{random.choice(WORDS)} w{random.randrange(stored)}", 1, limit=20
            )
        )
        for _ in range(max(20, samples // 4))
    ]
    return {
        "50 messages of a session: ms p50 / p95": spread(page),
        "search: ms p50 / p95": spread(search),
        "size on disk": size(store),
    }


def size(store: Store) -> str:
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            value = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        return f"{value / 2**20:.0f} MiB"
    path = store.path
    assert path is not None
    total = sum(
        Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()
    )
    return f"{total / 2**20:.0f} MiB (with its -wal)"


def run(name: str, url: str, sizes: list[int], samples: int) -> None:
    store = Store(url)
    freeze_heap()  # as `hookclient-receiver serve` does once it has started
    try:
        print(f"\n{name}")
        for label, value in ingest(store, samples).items():
            print(f"  {label:<52} {value}")
        have = 0
        for n in sizes:
            start = time.perf_counter()
            have = fill(store, n, have)
            took = time.perf_counter() - start
            print(f"  -- {n:,} messages stored (filled in {took:.0f} s)")
            for label, value in reads(store, have, samples).items():
                print(f"  {label:<52} {value}")
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"store bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-store-"))
    run("SQLite", f"sqlite:///{work / 'store.db'}", sizes, args.samples)
    existing = os.environ.get("HOOKCLIENT_TEST_POSTGRES")
    if existing:
        server, stop = pg.Server(existing), None
    else:
        server, stop = pg.start(Path(tempfile.mkdtemp(prefix="hookclient-bench-pg-")), durable=True)
        pg._wait_ready(server)
    try:
        run("PostgreSQL", server.fresh_database(), sizes, args.samples)
    finally:
        if stop:
            subprocess.run(stop, check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
