"""The receiver: every answer the contract names, what lands in the database, one real run.

Route behaviour goes through Starlette's TestClient against a fresh database per test, on
SQLite and on a real PostgreSQL server (tests/pg.py) alike; the database is then read with
a connection of the test's own, so the tests check what was stored, not what the
receiver says it stored. Signatures are computed here with hmac + base64, independently
of the receiver's helpers, and the helpers are checked against the Standard Webhooks vector.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import create_engine
from starlette.types import Message, Scope

from receiver.app import create_app, sign, signing_key, verify_signature
from receiver.cli import main
from receiver.database import url_of
from receiver.schema import webhook_events
from receiver.store import Status, Store
from tests.pg import Server

with warnings.catch_warnings():
    # Starlette 1.x's TestClient prefers httpx2 and warns once when it falls back to httpx,
    # which is what this project depends on: the fallback is expected here.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", UserWarning)
    from starlette.testclient import TestClient

TOKEN = "rx-test-token-7d41"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCRIPT = Path(sys.executable).parent / "hookclient-receiver"
RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
NO_TOKEN_LINE = (
    "hookclient-receiver: no token: set HOOKCLIENT_TOKEN (or choose another variable with"
    " --token-env NAME), or pass --no-auth for a local experiment"
)

# Standard Webhooks' published test vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def envelope(**changes: Any) -> dict[str, Any]:
    """A valid envelope with a fresh requestId; ``changes`` override keys."""
    doc: dict[str, Any] = {
        "schemaVersion": 1,
        "requestId": str(uuid.uuid4()),
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": "00f067aa0ba902b7",
        "event": "PostToolUse",
        "sessionId": "abc",
        "timestamp": "2026-11-22T10:00:00.123Z",
        "source": {"host": "h", "user": "u", "cwd": "/", "pid": 1, "client": "hookclient/0.1.0"},
        "payload": {"hook_event_name": "PostToolUse"},
    }
    doc.update(changes)
    return doc


def without(key: str) -> dict[str, Any]:
    doc = envelope()
    del doc[key]
    return doc


def body_of(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@contextmanager
def running(db: str, token: str | None = TOKEN, **options: Any) -> Iterator[TestClient]:
    """A TestClient on a fresh app; leaving it runs the lifespan, which closes the store."""
    with TestClient(create_app(db, token, **options)) as client:
        yield client


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: a SQLite file's path, or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "rx.db")
    server: Server = request.getfixturevalue("postgres_server")
    return server.fresh_database()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """A SQLite file, for what only SQLite has (file modes, WAL files, a second writer)."""
    return tmp_path / "rx.db"


@pytest.fixture
def client(db: str) -> Iterator[TestClient]:
    with running(db) as test_client:
        yield test_client


def post(client: TestClient, content: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    data = content if isinstance(content, bytes) else body_of(content)
    response: httpx.Response = client.post(
        "/hooks", content=data, headers={**AUTH, **(headers or {})}
    )
    return response


def table(db: str | Path, name: str) -> list[dict[str, Any]]:
    """Every row of table ``name``, oldest first, read through a connection of our own."""
    engine = create_engine(url_of(db))
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id")  # noqa: S608
            return [dict(row) for row in rows.mappings()]
    finally:
        engine.dispose()


def statuses(db: str | Path) -> list[tuple[str, int]]:
    return [(row["status"], row["http_status"]) for row in table(db, "webhook_events")]


def ws_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks signing, written out independently of receiver.app."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(body: bytes, *, secret: str = VECTOR_SECRET, age: int = 0) -> dict[str, str]:
    msg_id, timestamp = "msg_test", int(time.time()) - age
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": ws_sign(secret, msg_id, timestamp, body),
    }


# --- accepted, duplicate -----------------------------------------------------------------


def test_healthz_needs_no_token(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_new_event_is_stored_verbatim_with_headers_and_token_redacted(
    client: TestClient, db: str
) -> None:
    doc = envelope(futureField="kept as sent")  # properties added later are kept
    raw = json.dumps(doc, indent=1).encode()  # unusual spacing must survive byte for byte
    headers = {"X-Hook-Attempt": "2", "X-Request-Id": doc["requestId"], "Cookie": "a=b"}

    response = post(client, raw, headers)

    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "requestId": doc["requestId"]}
    [row] = table(db, "events")
    assert row["envelope"] == raw.decode()
    assert (row["request_id"], row["event"], row["session_id"]) == (
        doc["requestId"],
        "PostToolUse",
        "abc",
    )
    assert (row["trace_id"], row["span_id"], row["attempt"]) == (doc["traceId"], doc["spanId"], 2)
    assert RFC3339_MS.fullmatch(row["received_at"])
    recorded = json.loads(row["headers"])
    assert recorded["authorization"] == "[REDACTED]"
    assert recorded["cookie"] == "[REDACTED]"
    assert recorded["x-hook-attempt"] == "2"
    assert recorded["x-request-id"] == doc["requestId"]
    assert TOKEN not in row["headers"]
    [audit] = table(db, "webhook_events")
    assert (audit["status"], audit["http_status"], audit["request_id"]) == (
        "SUCCESS",
        200,
        doc["requestId"],
    )
    assert (audit["event"], audit["session_id"]) == ("PostToolUse", "abc")
    assert audit["processing_ms"] > 0
    assert RFC3339_MS.fullmatch(audit["received_at"])


@pytest.mark.parametrize(
    "changes",
    [
        {"sessionId": None},
        {"payload": None},
        {"payload": [1, 2, 3]},
        {"payload": None, "payloadRaw": "{trunc", "payloadError": "not JSON"},
    ],
    ids=["null-session", "null-payload", "array-payload", "raw-payload"],
)
def test_envelope_variants_the_hook_sends_are_accepted(
    client: TestClient, db: str, changes: dict[str, Any]
) -> None:
    doc = envelope(**changes)
    assert post(client, doc).json()["status"] == "accepted"
    [row] = table(db, "events")
    assert json.loads(row["envelope"]) == doc
    assert row["attempt"] is None  # no X-Hook-Attempt header


def test_lone_surrogate_in_event_is_still_stored(client: TestClient, db: str) -> None:
    raw = body_of(envelope(event="Post\ud800Tool"))  # json.dumps escapes it as \\ud800
    assert post(client, raw).json()["status"] == "accepted"
    [row] = table(db, "events")
    assert row["envelope"] == raw.decode()
    [listed] = client.get("/events", headers=AUTH).json()["events"]
    assert listed["envelope"]["event"] == "Post\ud800Tool"


def test_same_request_id_twice_is_applied_once(client: TestClient, db: str) -> None:
    doc = envelope()
    first, second = post(client, doc), post(client, doc, {"X-Hook-Attempt": "2"})

    assert first.json()["status"] == "accepted"
    assert (second.status_code, second.json()) == (
        200,
        {"status": "duplicate", "requestId": doc["requestId"]},
    )
    [row] = table(db, "events")
    assert row["attempt"] is None  # the first delivery is the one kept
    assert statuses(db) == [("SUCCESS", 200), ("DUPLICATE", 200)]


# --- refused requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN],
    ids=["missing", "wrong", "prefix", "longer", "basic-scheme", "no-scheme"],
)
def test_missing_or_wrong_token_is_401_and_audited(
    client: TestClient, db: str, authorization: str | None
) -> None:
    doc = envelope()
    headers = {"X-Request-Id": doc["requestId"]}
    if authorization is not None:
        headers["Authorization"] = authorization

    response = client.post("/hooks", content=body_of(doc), headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]
    assert table(db, "events") == []
    [audit] = table(db, "webhook_events")
    assert (audit["status"], audit["http_status"]) == ("UNAUTHORIZED", 401)
    assert audit["request_id"] == doc["requestId"]  # claimed in X-Request-Id, kept for tracing


def test_bearer_scheme_is_case_insensitive(client: TestClient) -> None:
    headers = {"Authorization": f"bearer {TOKEN}"}
    assert client.post("/hooks", content=body_of(envelope()), headers=headers).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe{}",
        '{"schemaVersion": 1}'.encode("utf-16"),
        b'{"x": NaN}',
        b"[" * 100_000,
    ],
    ids=["empty", "truncated", "text", "binary", "utf-16", "nan", "deep"],
)
def test_body_that_is_not_utf8_json_is_400(client: TestClient, db: str, raw: bytes) -> None:
    response = post(client, raw)

    assert response.status_code == 400
    assert response.json()["error"].startswith(("body is not", "body is nested deeper"))
    assert table(db, "events") == []
    assert statuses(db) == [("INVALID", 400)]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "text/json",
        "json",
    ],
)
def test_a_body_sent_as_another_content_type_is_415_and_audited(
    client: TestClient, db: str, content_type: str
) -> None:
    doc = envelope()  # a valid envelope: only the declared type is wrong
    headers = {"Content-Type": content_type, "X-Request-Id": doc["requestId"]}

    response = post(client, doc, headers)

    assert response.status_code == 415
    assert response.json() == {
        "error": f"Content-Type {content_type!r} is not JSON: send application/json"
    }
    assert table(db, "events") == []
    [audit] = table(db, "webhook_events")
    assert (audit["status"], audit["http_status"]) == ("INVALID", 415)
    assert audit["request_id"] == doc["requestId"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/cloudevents+json",
        "application/vnd.api+json ; charset=utf-8",
    ],
)
def test_json_content_types_with_parameters_are_accepted(
    client: TestClient, db: str, content_type: str
) -> None:
    response = post(client, envelope(), {"Content-Type": content_type})

    assert (response.status_code, response.json()["status"]) == (200, "accepted")
    assert statuses(db) == [("SUCCESS", 200)]


def test_the_token_is_checked_before_the_content_type(client: TestClient, db: str) -> None:
    headers = {"Authorization": "Bearer wrong", "Content-Type": "text/plain"}
    response = client.post("/hooks", content=body_of(envelope()), headers=headers)
    assert response.status_code == 401
    assert statuses(db) == [("UNAUTHORIZED", 401)]


INVALID_ENVELOPES: list[tuple[str, Any]] = [
    ("", "a string"),
    ("/schemaVersion", envelope(schemaVersion=2)),
    ("/schemaVersion", envelope(schemaVersion="1")),
    ("/schemaVersion", envelope(schemaVersion=True)),
    ("/schemaVersion", without("schemaVersion")),
    ("/requestId", envelope(requestId="018F4B2A-1C2D-7E3F-8A9B-0C1D2E3F4A5B")),
    ("/requestId", envelope(requestId="018f4b2a1c2d7e3f8a9b0c1d2e3f4a5b")),
    ("/requestId", envelope(requestId="018f4b2a-1c2d-7e3f-8a9b-0c1d2e3f4a5b\n")),
    ("/requestId", envelope(requestId="{018f4b2a-1c2d-7e3f-8a9b-0c1d2e3f4a5b}")),
    ("/requestId", envelope(requestId=12)),
    ("/requestId", without("requestId")),
    ("/traceId", envelope(traceId="4bf92f3577b34da6a3ce929d0e0e473")),
    ("/traceId", envelope(traceId="4BF92F3577B34DA6A3CE929D0E0E4736")),
    ("/traceId", envelope(traceId="0" * 32)),
    ("/traceId", envelope(traceId="g" * 32)),
    ("/traceId", without("traceId")),
    ("/spanId", envelope(spanId="0" * 16)),
    ("/spanId", envelope(spanId="00f067aa0ba902b7a")),
    ("/spanId", envelope(spanId=None)),
    ("/event", envelope(event="")),
    ("/event", envelope(event=None)),
    ("/event", without("event")),
    ("/timestamp", envelope(timestamp=1764000000)),
    ("/timestamp", without("timestamp")),
    ("/timestamp", envelope(timestamp="yesterday")),
    ("/timestamp", envelope(timestamp="2026-11-22T10:00:00.123Z\n")),
    ("/sessionId", without("sessionId")),
    ("/sessionId", envelope(sessionId=5)),
    ("/sessionId", envelope(sessionId={"id": "abc"})),
    ("/payload", without("payload")),
    ("/source", envelope(source="laptop")),
    ("/source", envelope(source=None)),
    ("/source/host", envelope(source={"user": "u", "cwd": "/", "pid": 1, "client": "c"})),
    ("/payload", envelope(payloadRaw="x", payloadError="not JSON", payload={"a": 1})),
    ("/payloadError", envelope(payloadRaw="x", payload=None)),
    ("/source", without("source")),
]


@pytest.mark.parametrize(("field", "doc"), INVALID_ENVELOPES)
def test_invalid_envelope_is_422_naming_the_field(
    client: TestClient, db: str, field: str, doc: Any
) -> None:
    response = post(client, doc)

    assert response.status_code == 422
    answer = response.json()
    assert answer["field"] == field
    assert answer["error"]
    assert table(db, "events") == []
    [audit] = table(db, "webhook_events")
    assert (audit["status"], audit["http_status"]) == ("INVALID", 422)
    assert audit["detail"].startswith((field or "the envelope") + " ")


def test_invalid_envelope_audit_keeps_what_it_claimed(client: TestClient, db: str) -> None:
    doc = envelope(spanId="0" * 16, event="Stop", sessionId="s-9")
    post(client, doc)
    [audit] = table(db, "webhook_events")
    assert (audit["request_id"], audit["event"], audit["session_id"]) == (
        doc["requestId"],
        "Stop",
        "s-9",
    )


# --- size limit ---------------------------------------------------------------------------


def test_body_over_the_limit_by_content_length_is_413(db: str) -> None:
    with running(db, max_body_bytes=100) as client:
        over = post(client, b" " * 101)
        at_limit = post(client, b" " * 100)  # passes the size check, then is not JSON

    assert over.status_code == 413
    assert "100 bytes" in over.json()["error"]
    assert at_limit.status_code == 400
    assert statuses(db) == [("INVALID", 413), ("INVALID", 400)]


def test_streamed_body_without_length_is_counted_and_413(db: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 50

    with running(db, max_body_bytes=300) as client:
        response = client.post("/hooks", content=chunks(), headers=AUTH)

    assert response.request.headers.get("content-length") is None
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert statuses(db) == [("INVALID", 413)]


def test_lying_content_length_cannot_get_a_big_body_in(db: str) -> None:
    with running(db, max_body_bytes=300) as client:
        headers = {**AUTH, "Content-Length": "10"}
        response = client.post("/hooks", content=b"x" * 1000, headers=headers)

    assert response.request.headers["content-length"] == "10"
    assert response.status_code == 413
    assert statuses(db) == [("INVALID", 413)]


def endless_post(db: str, limit: int, headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """POST to /hooks over raw ASGI with a body that never ends: (status, chunks pulled)."""
    app = create_app(db, None, max_body_bytes=limit)
    pulled = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/hooks",
        "raw_path": b"/hooks",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8787),
    }
    try:
        anyio.run(app, scope, receive, send)
    finally:
        app.state.store.close()
    return sent[0]["status"], pulled


def test_endless_body_is_cut_off_right_after_the_limit(db: str) -> None:
    assert endless_post(db, 1000, []) == (413, 11)  # 1100 bytes > 1000: not one chunk more
    assert statuses(db) == [("INVALID", 413)]


def test_declared_length_over_the_limit_is_refused_before_reading(db: str) -> None:
    assert endless_post(db, 1000, [(b"content-length", b"1001")]) == (413, 0)
    assert statuses(db) == [("INVALID", 413)]


# --- internal errors ----------------------------------------------------------------------


def test_unexpected_failure_is_500_and_audited(
    db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**_: Any) -> bool:
        raise RuntimeError("disk on fire")

    app = create_app(db, TOKEN)
    monkeypatch.setattr(app.state.store, "accept", broken)
    with TestClient(app) as client:
        response = post(client, envelope())

    assert (response.status_code, response.json()) == (500, {"error": "internal"})
    [audit] = table(db, "webhook_events")
    assert (audit["status"], audit["http_status"]) == ("ERROR", 500)
    assert "disk on fire" in audit["detail"]
    assert "disk on fire" in caplog.text


# --- signatures -------------------------------------------------------------------------


def test_signing_helpers_match_the_standard_webhooks_vector() -> None:
    key = signing_key(VECTOR_SECRET)
    assert sign(key, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE
    assert ws_sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    verify_signature(key, headers, VECTOR_BODY, now=VECTOR_TS + 299)
    with pytest.raises(ValueError, match=r"300 s"):
        verify_signature(key, headers, VECTOR_BODY, now=VECTOR_TS + 301)
    with pytest.raises(ValueError, match="signature"):
        verify_signature(key, headers, VECTOR_BODY + b" ", now=VECTOR_TS)


def test_signing_key_forms() -> None:
    assert signing_key("plain secret") == b"plain secret"
    assert signing_key("whsec_" + base64.b64encode(b"\x00\x01key").decode()) == b"\x00\x01key"
    for bad in ("whsec_not*base64", "", "whsec_"):
        with pytest.raises(ValueError):
            signing_key(bad)


def test_correctly_signed_request_is_accepted(db: str) -> None:
    raw = body_of(envelope())
    headers = signed_headers(raw)
    headers["webhook-signature"] = "v1,c29tZXRoaW5nIGVsc2U= " + headers["webhook-signature"]
    with running(db, signing_secret=VECTOR_SECRET) as client:
        response = post(client, raw, headers)

    assert response.json()["status"] == "accepted"
    [row] = table(db, "events")
    assert json.loads(row["headers"])["webhook-signature"] == headers["webhook-signature"]


def test_raw_utf8_secret_signs_too(db: str) -> None:
    raw = body_of(envelope())
    msg_id, timestamp = "msg_raw", int(time.time())
    mac = hmac.new(b"plain secret", f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
    }
    with running(db, signing_secret="plain secret") as client:
        assert post(client, raw, headers).status_code == 200


def _tampered(raw: bytes) -> tuple[bytes, dict[str, str]]:
    return raw.replace(b"PostToolUse", b"PreToolUse_"), signed_headers(raw)


BAD_SIGNATURES: dict[str, Callable[[bytes], tuple[bytes, dict[str, str]]]] = {
    "wrong-secret": lambda raw: (raw, signed_headers(raw, secret="whsec_" + "A" * 32)),
    "tampered-body": _tampered,
    "stale": lambda raw: (raw, signed_headers(raw, age=301)),
    "future": lambda raw: (raw, signed_headers(raw, age=-360)),
    "missing": lambda raw: (raw, {}),
    "bad-timestamp": lambda raw: (
        raw,
        {**signed_headers(raw), "webhook-timestamp": "soon"},
    ),
    "wrong-version": lambda raw: (
        raw,
        {**signed_headers(raw), "webhook-signature": "v2," + "x" * 44},
    ),
}


@pytest.mark.parametrize("case", BAD_SIGNATURES)
def test_bad_signature_is_401_and_audited(db: str, case: str) -> None:
    raw, headers = BAD_SIGNATURES[case](body_of(envelope()))
    with running(db, signing_secret=VECTOR_SECRET) as client:
        response = post(client, raw, headers)

    assert response.status_code == 401
    assert response.json()["error"]
    assert table(db, "events") == []
    assert statuses(db) == [("UNAUTHORIZED", 401)]


def test_a_replayed_signed_request_is_401_with_no_row(db: str) -> None:
    """The same webhook-id, timestamp and signature again, within the 5 min window: an
    attacker replaying a captured request. A retry of the same event is signed anew
    (its own timestamp) and is a 200 duplicate instead."""
    doc = envelope()
    raw = body_of(doc)
    headers = signed_headers(raw)
    retry = signed_headers(raw, age=-1)  # the client's next attempt: a later timestamp
    with running(db, signing_secret=VECTOR_SECRET) as client:
        first = post(client, raw, headers)
        replayed = post(client, raw, headers)
        retried = post(client, raw, retry)

    assert first.json() == {"status": "accepted", "requestId": doc["requestId"]}
    assert replayed.status_code == 401
    assert "replayed" in replayed.json()["error"]
    assert retried.status_code == 200 and retried.json()["status"] == "duplicate"
    assert len(table(db, "events")) == 1
    assert statuses(db) == [("SUCCESS", 200), ("UNAUTHORIZED", 401), ("DUPLICATE", 200)]


@pytest.mark.parametrize("depth", [65, 500, 5000])
def test_json_nested_past_the_depth_limit_is_400_with_no_row(
    client: TestClient, db: str, depth: int
) -> None:
    doc = envelope()
    raw = body_of(doc)[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    response = post(client, raw)
    assert response.status_code == 400
    assert "nested" in response.json()["error"]
    assert table(db, "events") == []
    assert statuses(db) == [("INVALID", 400)]


def test_json_nested_within_the_limit_is_accepted(client: TestClient, db: str) -> None:
    doc = envelope()
    doc["payload"] = {"tool_input": json.loads("[" * 60 + "]" * 60)}
    assert post(client, doc).json()["status"] == "accepted"


# --- reading back: /events, /audit, /stats ------------------------------------------------


def test_events_newest_first_and_filtered(client: TestClient) -> None:
    docs = [
        envelope(event="Stop", sessionId="s1"),
        envelope(event="PostToolUse", sessionId="s2"),
        envelope(event="Stop", sessionId="s2"),
    ]
    for doc in docs:
        post(client, doc)
    ids = [doc["requestId"] for doc in docs]

    def listed(query: str = "") -> list[str]:
        response = client.get(f"/events{query}", headers=AUTH)
        assert response.status_code == 200
        return [item["request_id"] for item in response.json()["events"]]

    assert listed() == ids[::-1]
    assert listed("?event=Stop") == [ids[2], ids[0]]
    assert listed("?session_id=s2") == [ids[2], ids[1]]
    assert listed("?event=Stop&session_id=s2") == [ids[2]]
    assert listed(f"?request_id={ids[1]}") == [ids[1]]
    assert listed("?limit=1") == [ids[2]]
    assert listed("?event=nothing") == []
    [item] = client.get("/events?limit=1", headers=AUTH).json()["events"]
    assert item["envelope"] == docs[2]
    assert item["headers"]["authorization"] == "[REDACTED]"


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "1.5", ""])
def test_bad_limit_is_400(client: TestClient, limit: str) -> None:
    for path in ("/events", "/audit"):
        response = client.get(f"{path}?limit={limit}", headers=AUTH)
        assert response.status_code == 400
        assert response.json()["field"] == "limit"


@pytest.mark.parametrize("path", ["/events", "/audit", "/stats"])
def test_read_endpoints_need_the_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200


def test_read_endpoints_are_open_without_a_token(db: str) -> None:
    with running(db, token=None) as client:
        assert client.post("/hooks", content=body_of(envelope())).status_code == 200
        assert len(client.get("/events").json()["events"]) == 1


def test_audit_lists_every_request_newest_first_and_filters_by_status(
    client: TestClient,
) -> None:
    doc = envelope()
    post(client, doc)
    post(client, doc)
    post(client, b"{")
    client.post("/hooks", content=body_of(envelope()))

    def listed(query: str = "") -> list[str]:
        return [a["status"] for a in client.get(f"/audit{query}", headers=AUTH).json()["audit"]]

    assert listed() == ["UNAUTHORIZED", "INVALID", "DUPLICATE", "SUCCESS"]
    assert listed("?status=invalid") == ["INVALID"]
    assert listed("?status=DUPLICATE&limit=5") == ["DUPLICATE"]
    assert client.get("/audit?status=LOST", headers=AUTH).status_code == 400


def test_stats_on_an_empty_database(client: TestClient) -> None:
    assert client.get("/stats", headers=AUTH).json() == {
        "counts": {"SUCCESS": 0, "DUPLICATE": 0, "INVALID": 0, "UNAUTHORIZED": 0, "ERROR": 0},
        "events": 0,
        "processing_ms": {"p50": None, "p95": None, "p99": None},
    }


def test_stats_count_every_outcome(client: TestClient) -> None:
    doc = envelope()
    post(client, doc)
    post(client, doc)
    post(client, envelope())
    post(client, b"nope")
    post(client, envelope(spanId="x"))
    client.post("/hooks", content=body_of(envelope()))

    stats = client.get("/stats", headers=AUTH).json()

    assert stats["counts"] == {
        "SUCCESS": 2,
        "DUPLICATE": 1,
        "INVALID": 2,
        "UNAUTHORIZED": 1,
        "ERROR": 0,
    }
    assert stats["events"] == 2
    p = stats["processing_ms"]
    assert 0 < p["p50"] <= p["p95"] <= p["p99"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (list(range(1, 101)), (50.0, 95.0, 99.0)),
        (list(range(10, 0, -1)), (5.0, 10.0, 10.0)),
        ([7], (7.0, 7.0, 7.0)),
        ([1, 2], (1.0, 2.0, 2.0)),
        ([5, 1, 4, 2, 3], (3.0, 5.0, 5.0)),
    ],
    ids=["1..100", "10..1", "one", "two", "five"],
)
def test_stats_percentiles_are_nearest_rank(
    db: str, values: list[int], expected: tuple[float, float, float]
) -> None:
    with Store(db) as store:
        writer = create_engine(url_of(db))  # a second writer, as a test would be
        with writer.begin() as conn:
            conn.execute(
                webhook_events.insert(),
                [
                    {"status": Status.SUCCESS.value, "http_status": 200, "processing_ms": float(v)}
                    for v in values
                ],
            )
        writer.dispose()
        percentiles = store.stats()["processing_ms"]

    assert (percentiles["p50"], percentiles["p95"], percentiles["p99"]) == expected


def test_store_dedup_holds_under_concurrent_accepts(db: str) -> None:
    """Threads on two connections (as two processes would be) race one requestId:
    exactly one wins, and every attempt is audited."""
    doc = envelope()
    results: list[bool] = []
    with Store(db) as one, Store(db) as two:

        def deliver(store: Store) -> None:
            results.append(
                store.accept(
                    request_id=doc["requestId"],
                    event="Stop",
                    session_id=None,
                    trace_id=doc["traceId"],
                    span_id=doc["spanId"],
                    attempt=1,
                    envelope=json.dumps(doc),
                    headers={},
                    started=time.perf_counter(),
                )
            )

        threads = [threading.Thread(target=deliver, args=((one, two)[i % 2],)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = one.stats()

    assert sorted(results) == [False] * 15 + [True]
    assert stats["events"] == 1
    assert stats["counts"]["SUCCESS"] == 1 and stats["counts"]["DUPLICATE"] == 15


def test_create_app_refuses_an_empty_token(db: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        create_app(db, "")


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, which lets SQLite create files 0644 unless the store prevents it."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def db_modes(db: Path) -> dict[str, int]:
    return {s: stat.S_IMODE(os.stat(f"{db}{s}").st_mode) for s in ("", "-wal", "-shm")}


@pytest.mark.usefixtures("umask_022")
def test_a_new_database_and_its_wal_files_are_0600(sqlite_db: Path) -> None:
    db = sqlite_db
    with running(str(db)) as client:
        assert post(client, envelope()).status_code == 200
        assert post(client, b"not json").status_code == 400  # an audit-only write too
        modes = db_modes(db)  # while it runs: -wal and -shm go when the last one closes
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


@pytest.mark.usefixtures("umask_022")
def test_an_existing_world_readable_database_is_narrowed_to_0600(sqlite_db: Path) -> None:
    db = sqlite_db
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE before (x)")
    os.chmod(db, 0o644)
    with running(str(db)) as client:
        assert post(client, envelope()).status_code == 200
        modes = db_modes(db)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


@pytest.mark.parametrize("blocked", ["starlette", "uvicorn"])
def test_without_the_receiver_extra_it_says_how_to_install_it(tmp_path: Path, blocked: str) -> None:
    """What `pip install <checkout>` without [receiver] gives: the module cannot be imported."""
    code = (
        "import sys\n"
        f"sys.modules[{blocked!r}] = None\n"  # import starlette/uvicorn -> ModuleNotFoundError
        "from receiver.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = [sys.executable, "-c", code, "--no-auth", "--port", "0", "--db", str(tmp_path / "x")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"hookclient-receiver: cannot import {blocked}: the receiver needs the receiver extra:"
        " pip install 'hookclient[receiver]' (from a checkout: pip install '<checkout>[receiver]')"
    ]
    assert not (tmp_path / "x").exists()


# --- the command ------------------------------------------------------------------------


def until(predicate: Any, *, timeout: float = 30.0) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {predicate}")


@pytest.mark.slow
def test_real_process_accepts_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port_file, rx_db = tmp_path / "rx.port", tmp_path / "rx.db"
    env = {**os.environ, "HOOKCLIENT_TOKEN": TOKEN}
    args = [str(SCRIPT), "--port", "0", "--port-file", str(port_file), "--db", str(rx_db)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:

        def healthy() -> int | None:
            assert proc.poll() is None, "the receiver exited early"
            try:
                port = int(port_file.read_text())
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            except (OSError, ValueError, httpx.HTTPError):
                return None
            return port

        port = until(healthy)
        doc = envelope()
        response = httpx.post(
            f"http://127.0.0.1:{port}/hooks", content=body_of(doc), headers=AUTH, timeout=10
        )
        assert response.json() == {"status": "accepted", "requestId": doc["requestId"]}

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 0, err
    assert out == b""
    assert err.decode().splitlines() == [
        f"hookclient-receiver listening on http://127.0.0.1:{port} (database sqlite:///{rx_db})"
    ]
    assert TOKEN.encode() not in err
    assert not port_file.exists()  # removed on the way out
    assert [row["request_id"] for row in table(rx_db, "events")] == [doc["requestId"]]


@pytest.mark.parametrize(
    ("extra_args", "variable"),
    [([], "HOOKCLIENT_TOKEN"), (["--token-env", "MY_RX_TOKEN"], "MY_RX_TOKEN")],
)
def test_no_token_refuses_to_start_with_one_line(
    tmp_path: Path, extra_args: list[str], variable: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HOOKCLIENT_TOKEN", "MY_RX_TOKEN")}
    args = [str(SCRIPT), "--port", "0", "--db", str(tmp_path / "rx.db"), *extra_args]
    done = subprocess.run(args, env=env, capture_output=True, timeout=60, check=False)

    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        NO_TOKEN_LINE.replace("HOOKCLIENT_TOKEN", variable, 1)
    ]
    assert not (tmp_path / "rx.db").exists()


def test_missing_signing_secret_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOKCLIENT_TOKEN", TOKEN)
    argv = ["--db", str(tmp_path / "rx.db"), "--signing-secret-env", "RX_SECRET"]

    assert main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("hookclient-receiver: no signing secret: RX_SECRET")


def test_help_explains_and_gives_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for expected in (
        "--port-file",
        "--no-auth",
        "--token-env",
        "--database URL",
        "examples:",
        "POST /hooks",
        "token add NAME",
        "migrate",
    ):
        assert expected in text
