"""Malformed and hostile requests against a real `hookclient-receiver` process (uvicorn).

Each request gets the status it deserves and leaves the database consistent: the rows
are exactly the envelopes accepted, the audit table has one row per request that reached
the app, SQLite's integrity check passes, and the server still answers afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chaos.harness import report
from tests.conftest import BIN, wait_for
from tests.test_receiver import envelope

TOKEN = "hostile-test-token-31c9"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 65_536


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "rx.db"
        port_file = tmp_path / "rx.port"
        cmd = [str(BIN / "hookclient-receiver"), "--port", "0", "--port-file", str(port_file)]
        cmd += ["--db", str(self.db), "--max-body-bytes", str(LIMIT)]
        self.proc = subprocess.Popen(
            cmd,
            env={**os.environ, "HOOKCLIENT_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.port = int(wait_for(lambda: port_file.exists() and port_file.read_text()))
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=10)
        wait_for(lambda: self.alive())

    def alive(self) -> bool:
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def raw(self, data: bytes) -> bytes:
        """Send bytes on a fresh connection; whatever comes back before it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            with contextlib.suppress(OSError):  # the server may close early: an answer too
                sock.sendall(data)
            chunks = []
            try:
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except OSError:
                pass
        return b"".join(chunks)

    def table(self, name: str) -> list[dict[str, Any]]:
        with closing(sqlite3.connect(self.db)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(f"SELECT * FROM {name} ORDER BY id")]  # noqa: S608

    def integrity(self) -> str:
        with closing(sqlite3.connect(self.db)) as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    try:
        yield s
    finally:
        s.stop()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


SQLISH = "x'); DROP TABLE events; --"
HOSTILE_POSTS: dict[str, tuple[dict[str, str], bytes, int]] = {
    "valid, text/plain": ({"Content-Type": "text/plain"}, b"VALID", 415),
    "valid, +json; charset": ({"Content-Type": "application/x+json; charset=utf-8"}, b"VALID", 200),
    "form-encoded": ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=1&b=2", 415),
    "invalid UTF-8": ({}, b'{"requestId": "\xff\xfe"}', 400),
    "UTF-16 JSON": ({}, json.dumps(envelope()).encode("utf-16"), 400),
    "NaN": ({}, b'{"x": NaN}', 400),
    "nested 10,000 deep": ({}, b"[" * 10_000 + b"]" * 10_000, 400),
    "nested 100 deep in payload": ({}, b"DEEP", 400),
    "over the limit": ({}, b'{"x": "' + b"a" * (LIMIT + 10) + b'"}', 413),
    "SQL in event and sessionId": ({}, b"SQL", 200),
    "SQL in requestId": ({}, b"SQLID", 422),
    "path in requestId": ({}, b"PATHID", 422),
    "traceId not hex": ({}, b"TRACE", 422),
    "no token": ({"Authorization": ""}, b"VALID", 401),
    "wrong token": ({"Authorization": "Bearer nope"}, b"VALID", 401),
    "token in another scheme": ({"Authorization": f"Basic {TOKEN}"}, b"VALID", 401),
    "array body": ({}, b"[]", 422),
    "empty body": ({}, b"", 400),
}


def body_for(marker: bytes) -> bytes:
    doc = envelope()
    if marker == b"VALID":
        return json.dumps(doc).encode()
    if marker == b"DEEP":
        doc["payload"] = json.loads("[" * 100 + "]" * 100)
    elif marker == b"SQL":
        doc.update(event=SQLISH, sessionId="' OR 1=1 --")
    elif marker == b"SQLID":
        doc["requestId"] = "1' OR '1'='1"
    elif marker == b"PATHID":
        doc["requestId"] = "../../etc/passwd"
    elif marker == b"TRACE":
        doc["traceId"] = "zz" * 16
    else:
        return marker
    return json.dumps(doc).encode()


def test_hostile_requests_get_their_status_and_leave_the_database_consistent(
    server: Server,
) -> None:
    results: dict[str, int] = {}
    accepted = 0
    for name, (headers, marker, _expected) in HOSTILE_POSTS.items():
        body = body_for(marker)
        sent = {**AUTH, "Content-Type": "application/json", **headers}
        sent = {k: v for k, v in sent.items() if v}
        status = server.client.post("/hooks", content=body, headers=sent).status_code
        results[name] = status
        accepted += status == 200

    # at the HTTP level, below the app
    chunked = (
        b"POST /hooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    )
    piece = b"a" * 16384
    for _ in range(LIMIT // len(piece) + 2):
        chunked += b"%x\r\n" % len(piece) + piece + b"\r\n"
    results["chunked, over the limit"] = status_of(server.raw(chunked + b"0\r\n\r\n"))
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"h" * 200_000 + b"\r\n\r\n"
    results["200 kB header"] = status_of(server.raw(huge))
    lying = (
        b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\n\r\n"
        + json.dumps(envelope()).encode()
    )
    results["Content-Length shorter than the body"] = status_of(server.raw(lying))
    results["garbage request line"] = status_of(server.raw(b"\x00\x01\x02 / HTTP/9.9\r\n\r\n"))
    gets = {
        "GET /events without token": ("/events", {}, 401),
        "GET /stats without token": ("/stats", {}, 401),
        "GET /audit without token": ("/audit", {}, 401),
        "GET /events?session_id=SQL": ("/events?session_id=' OR 1=1 --", AUTH, 200),
        "GET /events?limit=-1": ("/events?limit=-1", AUTH, 400),
        "GET /audit?status=SQL": ("/audit?status=x' OR 1=1", AUTH, 400),
    }
    for name, (path, headers, _expected) in gets.items():
        results[name] = server.client.get(path, headers=headers).status_code

    expected = {name: code for name, (_h, _m, code) in HOSTILE_POSTS.items()}
    expected |= {name: code for name, (_p, _h, code) in gets.items()}
    assert {k: v for k, v in results.items() if k in expected} == expected
    assert results["chunked, over the limit"] == 413
    assert results["200 kB header"] in (0, 400, 431)  # refused by uvicorn, or closed
    assert results["Content-Length shorter than the body"] in (0, 400, 422)
    assert results["garbage request line"] in (0, 400)

    assert server.alive()
    rows = server.table("events")
    assert len(rows) == accepted == 2  # the valid +json one and the SQL-ish one
    assert SQLISH in {r["event"] for r in rows}  # stored verbatim, as data
    matched = server.client.get("/events?session_id=' OR 1=1 --", headers=AUTH).json()
    assert [e["event"] for e in matched["events"]] == [SQLISH]
    audit = server.table("webhook_events")
    app_level = [n for n in HOSTILE_POSTS] + ["chunked, over the limit"]
    assert len(audit) >= len(app_level)
    assert server.integrity() == "ok"
    report("receiver_hostile", {"requests": len(results), "rows": len(rows), **results})


def test_the_same_request_id_twenty_times_is_one_row(server: Server) -> None:
    doc = envelope(requestId=str(uuid.uuid4()))
    statuses = [
        server.client.post("/hooks", content=json.dumps(doc).encode(), headers=AUTH).json()
        for _ in range(20)
    ]
    assert [s["status"] for s in statuses] == ["accepted"] + ["duplicate"] * 19
    assert len(server.table("events")) == 1
