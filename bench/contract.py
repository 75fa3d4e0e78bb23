"""What checking envelopes costs the store: processing_ms through a real receiver, and the
check alone, in-process.

- processing_ms p50/p95 of hook events (every fixture payload, wrapped by the hook's own
  code) and of 500-record Transcript envelopes, POSTed one at a time to a real
  ``hookclient-receiver`` on SQLite and on PostgreSQL, read back from its audit table;
- the envelope check alone (``receiver.app.validate_envelope``): microseconds per hook
  envelope and per Transcript envelope, median of many calls.

Run at two commits to compare (issue 21: before and after validation by schema).

Usage: .venv/bin/python bench/contract.py [--events 400] [--transcripts 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.daemon import TOKEN, start  # noqa: E402
from bench.store import records  # noqa: E402
from hookclient.envelope import StdinCapture, build, dumps, wrap  # noqa: E402
from receiver.app import validate_envelope  # noqa: E402
from tests import pg  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def hook_envelopes() -> list[dict[str, Any]]:
    """One envelope per fixture payload, as the hook builds it (hostile ones included)."""
    out = []
    for path in sorted([*FIXTURES.glob("*.*"), *FIXTURES.glob("claude-2.1.197/*.json")]):
        if path.is_dir() or path.name == "README.md":
            continue
        data = path.read_bytes()
        capture = StdinCapture(data, len(data), False, False)
        out.append(build(capture, event_flag=None, redact_keys=("token",), limit=8 << 20))
    return out


def transcript_envelope(n: int) -> dict[str, Any]:
    session = f"bench-contract-{n}-{time.time_ns()}"
    payload = {
        "transcriptPath": f"/home/u/.claude/projects/p/{session}.jsonl",
        "sessionId": session,
        "agentId": None,
        "fileId": "64769:1234",
        "offset": 0,
        "endOffset": 500_000,
        "records": records(session, 500),
    }
    return wrap("Transcript", session, time.time(), {"payload": payload})


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def spread(values: list[float]) -> str:
    return f"{pct(values, 50):.2f} / {pct(values, 95):.2f}  (n={len(values)})"


def check_alone(hooks: list[dict[str, Any]], transcript: dict[str, Any]) -> None:
    """validate_envelope's own time: the part of processing_ms that the check is."""
    for label, docs, rounds in (("hook envelope", hooks, 200), ("Transcript", [transcript], 50)):
        times = []
        parsed = [json.loads(dumps(doc)) for doc in docs]
        for _ in range(rounds):
            for doc in parsed:
                start = time.perf_counter()
                validate_envelope(doc)
                times.append((time.perf_counter() - start) * 1e6)
        print(f"  check alone, {label}: median {statistics.median(times):.1f} us")


def post_all(url: str, bodies: list[bytes]) -> None:
    """POST each body to ``url`` (the receiver's /hooks), one at a time."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(timeout=60) as client:
        for body in bodies:
            answer = client.post(url, content=body, headers=headers)
            if answer.status_code != 200:
                raise SystemExit(f"POST /hooks answered {answer.status_code}: {answer.text}")


def run(name: str, db: str, work: Path, events: int, transcripts: int) -> None:
    hooks = hook_envelopes()
    hook_bodies = [dumps(_fresh(hooks[i % len(hooks)])) for i in range(events)]
    transcript_bodies = [dumps(transcript_envelope(n)) for n in range(transcripts)]
    port_file = work / f"{name}.port"
    server, url = start(
        [sys.executable, "-c", "import sys; from receiver.cli import main; sys.exit(main())",
         "--port", "0", "--port-file", str(port_file), "--database", db],
        port_file,
        {**os.environ, "HOOKCLIENT_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        post_all(url, hook_bodies)
        post_all(url, transcript_bodies)
    finally:
        server.terminate()
        server.wait(timeout=30)
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event, processing_ms FROM webhook_events WHERE status = 'SUCCESS'")
        ).all()
    engine.dispose()
    hooks = [ms for event, ms in rows if event != "Transcript"]
    transcripts = [ms for event, ms in rows if event == "Transcript"]
    print(f"\n{name}")
    print(f"  hook events, processing_ms p50 / p95:      {spread(hooks)}")
    print(f"  Transcript (500), processing_ms p50 / p95: {spread(transcripts)}")


def _body(envelope: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in envelope.items() if k.startswith("payload")}


def _fresh(envelope: dict[str, Any]) -> dict[str, Any]:
    """The same payload under new ids: each POST is a new event, not a duplicate."""
    return wrap(envelope["event"], envelope["sessionId"], time.time(), _body(envelope))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--transcripts", type=int, default=40)
    args = parser.parse_args()
    print(f"contract bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores")
    check_alone(hook_envelopes(), transcript_envelope(0))
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-contract-"))
    run("SQLite", f"sqlite:///{work / 'store.db'}", work, args.events, args.transcripts)
    with pg.bench_database("hookclient-bench-pg-") as database:
        run("PostgreSQL", database, work, args.events, args.transcripts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
