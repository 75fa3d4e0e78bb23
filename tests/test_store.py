"""The store's database: migrations, users and tokens, ownership, and dedup that holds
across processes; on SQLite and on a real PostgreSQL server alike (tests/pg.py)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from receiver.app import create_app
from receiver.database import connect, head_version, migrate, url_of
from receiver.schema import metadata
from receiver.store import ADMIN_ID, Store, token_digest
from tests.conftest import start_receiver
from tests.pg import Server
from tests.test_receiver import envelope

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", UserWarning)
    from starlette.testclient import TestClient

ADMIN_TOKEN = "store-admin-token-31c9"
SCRIPT = [sys.executable, "-m", "receiver.cli"]

#: The schema the receiver created before its database was versioned (a675aec).
LEGACY_SCHEMA = """
CREATE TABLE events (id INTEGER PRIMARY KEY, request_id TEXT UNIQUE NOT NULL, event TEXT,
    session_id TEXT, trace_id TEXT, span_id TEXT, attempt INTEGER, envelope TEXT,
    headers TEXT, received_at TEXT);
CREATE INDEX events_event ON events (event);
CREATE INDEX events_session_id ON events (session_id);
CREATE TABLE webhook_events (id INTEGER PRIMARY KEY, request_id TEXT, event TEXT,
    session_id TEXT, status TEXT NOT NULL, http_status INTEGER, detail TEXT,
    received_at TEXT, processing_ms REAL);
"""


def rows(db: str, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(url_of(db))
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql)).mappings()]
    finally:
        engine.dispose()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCRIPT, *args], capture_output=True, text=True, timeout=120)


@contextmanager
def app(db: str) -> Iterator[TestClient]:
    with TestClient(create_app(db, ADMIN_TOKEN)) as client:
        yield client


def post(client: TestClient, token: str, doc: dict[str, Any]) -> httpx.Response:
    response: httpx.Response = client.post(
        "/hooks", content=json.dumps(doc), headers={"Authorization": f"Bearer {token}"}
    )
    return response


def get(client: TestClient, token: str, path: str) -> httpx.Response:
    response: httpx.Response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    return response


# -- migrations ----------------------------------------------------------------------------


def test_a_new_database_is_migrated_to_the_head_and_a_second_migrate_does_nothing(db: str) -> None:
    first = cli("migrate", "--database", db)
    assert first.returncode == 0, first.stderr
    assert first.stdout.endswith(f"schema migrated from version (none) to {head_version()}\n")
    again = cli("migrate", "--database", db)
    assert again.returncode == 0, again.stderr
    assert again.stdout.endswith(f"schema at version {head_version()}, nothing to do\n")
    assert rows(db, "SELECT version_num FROM alembic_version") == [{"version_num": head_version()}]
    admin = rows(db, "SELECT id, name, admin, token_sha256 FROM users")
    assert admin == [{"id": ADMIN_ID, "name": "admin", "admin": True, "token_sha256": None}]


def _search_index(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    """What the migrations add for search outside the tables' declarations."""
    return not (name or "").startswith(("messages_fts", "messages_text_search", "text_search"))


def test_the_migrations_build_the_tables_the_code_declares(db: str) -> None:
    engine = connect(db)
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": _search_index, "compare_type": False}
        )
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_a_database_newer_than_the_code_is_refused_with_one_line(db: str) -> None:
    engine = connect(db)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    done = cli("migrate", "--database", db)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("hookclient-receiver: the database ")
    assert line.endswith(
        f"has schema version 9999, newer than this hookclient-receiver knows "
        f"(up to {head_version()}): upgrade hookclient"
    )
    served = cli("--no-auth", "--port", "0", "--database", db)
    assert served.returncode == 1 and "newer than this hookclient-receiver" in served.stderr


def test_a_database_from_before_versions_is_carried_forward_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(LEGACY_SCHEMA)
        conn.execute(
            "INSERT INTO events (request_id, event, envelope, headers) VALUES (?, ?, ?, ?)",
            ("0193a5f0-0000-7000-8000-000000000001", "Stop", json.dumps(envelope()), "{}"),
        )
        conn.execute("INSERT INTO webhook_events (status, http_status) VALUES ('SUCCESS', 200)")
        conn.commit()
    db = f"sqlite:///{path}"
    with Store(db) as store:
        [event] = store.list_events()
        assert (event["request_id"], event["owner_id"]) == (
            "0193a5f0-0000-7000-8000-000000000001",
            ADMIN_ID,
        )
        assert store.stats()["counts"]["SUCCESS"] == 1
        again = {"request_id": event["request_id"], "event": "Stop", "session_id": None}
        assert not store.accept(
            **again,
            trace_id="0" * 32,
            span_id="0" * 16,
            attempt=1,
            envelope="{}",
            headers={},
            started=0.0,
        )


def test_a_bad_database_url_is_one_line_naming_it() -> None:
    done = cli("migrate", "--database", "mysql://someone:hunter2@db/x")
    assert done.returncode == 1
    assert done.stderr == (
        "hookclient-receiver: unsupported database 'mysql': use sqlite:///PATH or postgresql://...\n"
    )
    refused = cli("migrate", "--database", "postgresql://someone:hunter2@127.0.0.1:1/x")
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith(
        "hookclient-receiver: cannot open database postgresql+psycopg://someone:***@127.0.0.1:1/x: "
    )
    assert "hunter2" not in refused.stderr


# -- users and tokens ----------------------------------------------------------------------


def test_token_commands_refuse_a_sqlite_store_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "receiver.db"
    for args in (("add", "alice"), ("list",), ("revoke", "alice")):
        refused = cli("token", *args, "--db", str(missing))
        assert refused.returncode == 2
        assert refused.stderr == (
            f"hookclient-receiver: no store database at {missing}: pass the running store's"
            " --database URL (or --db PATH); `hookclient-receiver migrate` makes a new one\n"
        )
    assert not missing.exists()  # no stray empty store was made


def test_token_add_prints_it_once_and_stores_only_its_digest(db: str) -> None:
    assert cli("migrate", "--database", db).returncode == 0
    added = cli("token", "add", "alice", "--database", db)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    assert "shown only now" in added.stderr
    [alice] = rows(db, "SELECT name, admin, token_sha256 FROM users WHERE name = 'alice'")
    assert alice == {"name": "alice", "admin": False, "token_sha256": token_digest(token)}
    dump = json.dumps(rows(db, "SELECT * FROM users"))
    assert token not in dump
    listed = cli("token", "list", "--database", db)
    assert listed.returncode == 0 and token not in listed.stdout
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [
        ["admin", "admin"],
        ["alice", "user"],
    ]
    twice = cli("token", "add", "alice", "--database", db)
    assert twice.returncode == 1
    assert twice.stderr.startswith("hookclient-receiver: a user named 'alice' exists already")


def test_a_revoked_token_is_401_from_then_on(db: str) -> None:
    with Store(db) as store:
        token = store.add_user("bob")
    with app(db) as client:
        assert post(client, token, envelope()).status_code == 200
        done = cli("token", "revoke", "bob", "--database", db)
        assert done.returncode == 0, done.stderr
        refused = post(client, token, envelope())
        assert refused.status_code == 401
    listed = cli("token", "list", "--database", db).stdout
    assert "revoked 20" in listed.splitlines()[1]
    again = cli("token", "revoke", "bob", "--database", db)
    assert again.returncode == 1 and "no user 'bob' with a live token" in again.stderr


# -- ownership -----------------------------------------------------------------------------


def test_every_row_is_owned_by_its_sender_and_each_user_sees_their_own(db: str) -> None:
    with Store(db) as store:
        alice, bob = store.add_user("alice"), store.add_user("bob")
    shared = envelope()
    with app(db) as client:
        assert post(client, alice, shared).json()["status"] == "accepted"
        assert post(client, alice, shared).json()["status"] == "duplicate"
        # the same requestId from another user is that user's own event, not a duplicate
        assert post(client, bob, shared).json()["status"] == "accepted"
        assert post(client, bob, envelope()).status_code == 200
        mine = get(client, alice, "/events").json()["events"]
        theirs = get(client, bob, "/events").json()["events"]
        everyone = get(client, ADMIN_TOKEN, "/events").json()["events"]
        only_alice = get(client, ADMIN_TOKEN, "/events?owner=alice").json()["events"]
        forbidden = get(client, bob, "/events?owner=alice")
        unknown = get(client, ADMIN_TOKEN, "/events?owner=nobody")
        alice_stats = get(client, alice, "/stats").json()
    assert [e["request_id"] for e in mine] == [shared["requestId"]]
    assert len(theirs) == 2 and len(everyone) == 3
    assert [e["request_id"] for e in only_alice] == [shared["requestId"]]
    assert forbidden.status_code == 403 and unknown.status_code == 404
    assert alice_stats["events"] == 1
    assert alice_stats["counts"]["SUCCESS"] == 1 and alice_stats["counts"]["DUPLICATE"] == 1
    owners = rows(
        db,
        "SELECT u.name, COUNT(*) AS n FROM events e JOIN users u ON u.id = e.owner_id"
        " GROUP BY u.name ORDER BY u.name",
    )
    assert owners == [{"name": "alice", "n": 1}, {"name": "bob", "n": 2}]


def test_two_receiver_processes_on_one_postgresql_database_store_a_request_once(
    postgres_server: Server, tmp_path: Path
) -> None:
    """The same requestId sent to both processes at the same instant: one row, one
    SUCCESS and one DUPLICATE, because the database's UNIQUE key decides."""
    database = postgres_server.fresh_database()
    one = start_receiver(tmp_path, name="one", database=database)
    two = start_receiver(tmp_path, name="two", database=database)
    try:
        results: list[str] = []
        for _ in range(20):
            doc = envelope()
            barrier = threading.Barrier(2)

            def send(
                url: str, doc: dict[str, Any] = doc, barrier: threading.Barrier = barrier
            ) -> None:
                barrier.wait()
                answer = httpx.post(
                    url,
                    content=json.dumps(doc),
                    timeout=30,
                    headers={"Authorization": f"Bearer {one.token}"},
                )
                results.append(answer.json()["status"])

            threads = [threading.Thread(target=send, args=(r.url,)) for r in (one, two)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        one.stop()
        two.stop()
    assert sorted(results) == ["accepted"] * 20 + ["duplicate"] * 20
    assert rows(database, "SELECT COUNT(*) AS n FROM events") == [{"n": 20}]
    counted = rows(
        database, "SELECT status, COUNT(*) AS n FROM webhook_events GROUP BY status ORDER BY status"
    )
    assert counted == [{"status": "DUPLICATE", "n": 20}, {"status": "SUCCESS", "n": 20}]


# -- batches -------------------------------------------------------------------------------


def post_raw(client: TestClient, body: Any) -> httpx.Response:
    response: httpx.Response = client.post(
        "/hooks", content=json.dumps(body), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    return response


def test_a_batch_is_answered_item_by_item_in_order(db: str) -> None:
    first, second = envelope(), envelope()
    bad = {**envelope(), "requestId": "not-a-uuid"}
    batch = [first, bad, second, first]
    with app(db) as client:
        answer = post_raw(client, batch)
        again = post_raw(client, batch)
    assert answer.status_code == 200
    assert answer.json() == {
        "results": [
            {"requestId": first["requestId"], "status": "accepted", "error": None},
            {
                "requestId": "not-a-uuid",
                "status": "invalid",
                "error": "/requestId must match "
                "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            },
            {"requestId": second["requestId"], "status": "accepted", "error": None},
            {"requestId": first["requestId"], "status": "duplicate", "error": None},
        ]
    }
    assert [r["status"] for r in again.json()["results"]] == [
        "duplicate",
        "invalid",
        "duplicate",
        "duplicate",
    ]
    stored = rows(db, "SELECT request_id, envelope FROM events ORDER BY id")
    assert [r["request_id"] for r in stored] == [first["requestId"], second["requestId"]]
    assert json.loads(stored[0]["envelope"]) == first
    audit = rows(db, "SELECT request_id, status, http_status FROM webhook_events ORDER BY id")
    assert [(a["status"], a["http_status"]) for a in audit[:4]] == [
        ("SUCCESS", 200),
        ("INVALID", 422),
        ("SUCCESS", 200),
        ("DUPLICATE", 200),
    ]
    assert audit[1]["request_id"] == "not-a-uuid"


def test_a_batch_of_non_envelopes_is_three_invalid_items_not_a_refusal(db: str) -> None:
    with app(db) as client:
        answer = post_raw(client, [1, 2, 3])
    assert answer.status_code == 200
    assert [r["status"] for r in answer.json()["results"]] == ["invalid"] * 3
    assert {r["error"] for r in answer.json()["results"]} == {"the envelope must be an object"}
    assert rows(db, "SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


@pytest.mark.parametrize("size", [0, 1001])
def test_an_empty_or_oversized_batch_is_422_and_nothing_is_stored(db: str, size: int) -> None:
    with app(db) as client:
        answer = post_raw(client, [envelope() for _ in range(size)])
    assert answer.status_code == 422
    assert answer.json()["error"] == f"a batch holds 1 to 1000 envelopes, not {size}"
    assert rows(db, "SELECT COUNT(*) AS n FROM events") == [{"n": 0}]
    assert rows(db, "SELECT status FROM webhook_events") == [{"status": "INVALID"}]


# -- payloads the projection cannot take ---------------------------------------------------


def odd_transcript(session: str) -> dict[str, Any]:
    """A valid Transcript envelope whose records hold what no column takes."""
    records = [
        {"type": "user", "uuid": "u" * 100, "parentUuid": ["not", "a", "uuid"],
         "timestamp": "2026-12-01T19:00:00.000Z" + "0" * 30, "message": {"id": {"x": 1}}},
    ]  # fmt: skip
    payload = {
        "transcriptPath": "/t.jsonl", "sessionId": session, "agentId": None, "fileId": "1:2",
        "offset": 0, "endOffset": 10, "records": records,
    }  # fmt: skip
    return envelope(event="Transcript", sessionId=session, payload=payload)


@pytest.mark.parametrize(
    "odd",
    [
        envelope(event="UserPromptSubmit", payload={"prompt": "x", "prompt_id": []}),
        envelope(event="PreToolUse", payload={"tool_name": {}, "tool_use_id": "t" * 300}),
        envelope(event="SessionStart", sessionId="a\x00b\ud800", payload={"source": []}),
        odd_transcript("odd-session"),
    ],
    ids=["prompt_id a list", "tool fields", "NUL and a lone surrogate", "odd records"],
)
def test_an_event_the_projection_cannot_read_is_stored_and_the_rest_of_its_batch_too(
    db: str, odd: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The schemas check the envelope, not every field of a payload: a field no column
    takes leaves its event stored (unprojected, one error line), never a 500 that would
    roll back its batch and send every event in it to retries."""
    good = envelope(event="UserPromptSubmit", sessionId="good", payload={"prompt": "hello"})
    with app(db) as client:
        answer = post_raw(client, [odd, good])
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "accepted"]
    stored = {r["request_id"] for r in rows(db, "SELECT request_id FROM events")}
    assert stored == {odd["requestId"], good["requestId"]}
    assert [
        r["prompts"] for r in rows(db, "SELECT prompts FROM sessions WHERE session_id = 'good'")
    ] == [1]
    [line] = [r.getMessage() for r in caplog.records if "projection failed" in r.getMessage()]
    assert line.startswith(f"projection failed (requestId {odd['requestId']}, event ")
