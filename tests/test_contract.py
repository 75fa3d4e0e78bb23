"""The published contract (hookclient/schemas, ``hookclient schema``): the files are
valid JSON Schema 2020-12, what the product writes conforms to them, and the store
refuses what they refuse (tests/test_contract_fuzz.py generates from them).  The store's
OpenAPI document is checked valid in tests/test_api.py; that the hook never loads a
schema is pinned by tests/test_hook_e2e.py's module sets (hookclient.contract is in none
of them)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing import Registry, Resource
from starlette.testclient import TestClient

from hookclient import contract
from hookclient.delivery import build_headers
from hookclient.envelope import wrap
from hookclient.spool import Spool, State, new_state
from queued.heartbeat import backlog
from receiver.app import create_app
from tests.conftest import BIN, FIXTURES, TOKEN, HookEnv, make_envelope, sample_files
from tests.test_conversations import LARGE, RICH, SUBAGENT, TRANSCRIPTS
from tests.test_receiver import envelope
from tests.test_sync import config, spooled, syncer

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "hookclient" / "schemas"
REGISTRY: Registry[Any] = Registry().with_resources(
    (uri, Resource.from_contents(s)) for uri, s in contract.every().items()
)


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(contract.load(name), registry=REGISTRY)


def errors(name: str, doc: Any) -> list[str]:
    """Every failure, as pointer: message, so that an assertion shows them all."""
    return [f"{e.json_path}: {e.message}"[:300] for e in validator(name).iter_errors(doc)]


# -- the files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", contract.names())
def test_every_schema_is_valid_2020_12_with_an_id_that_names_its_file(name: str) -> None:
    schema = contract.load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == contract.BASE_URI + contract.file_of(name)
    assert schema["title"] and schema["description"]


def test_the_catalog_has_one_schema_for_each_of_the_30_events_the_docs_list() -> None:
    docs = (ROOT / "docs" / "claude-code.md").read_text()
    listed = re.search(r"2\.1\.197 knows 30 hook events: (.*?)\.\n\n", docs, re.S)
    assert listed is not None
    names = sorted(n.strip() for n in listed.group(1).replace("\n", " ").split(","))
    assert len(names) == 30
    assert contract.events() == names
    for name in names:
        assert contract.load(name)["properties"]["hook_event_name"] == {"const": name}


def test_every_ref_resolves_to_a_shipped_file() -> None:
    """Each $ref, resolved against its schema's $id as any validator resolves it, names a
    shipped schema: one pointing nowhere would only fail in a receiver's hands."""
    shipped = set(contract.every())
    refs = 0
    for name in contract.names():
        schema = contract.load(name)
        for ref in re.findall(r'"\$ref": "([^"#][^"]*)"', contract.text(name)):
            assert urljoin(schema["$id"], ref) in shipped, (name, ref)
            refs += 1
    assert refs >= 32  # transcript and heartbeat on envelope, every event on hook-common


# -- hookclient schema --------------------------------------------------------------------


def schema_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hookclient"), "schema", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_schema_list_names_every_schema_with_its_file_size_and_title() -> None:
    listed = schema_cli("--list")
    assert listed.returncode == 0 and listed.stderr == ""
    rows = [line.split(None, 3) for line in listed.stdout.splitlines()]
    assert [r[0] for r in rows] == contract.names() and len(rows) == 35
    for name, file, size, rest in rows:
        assert file == contract.file_of(name)
        assert int(size) == (SCHEMAS / file).stat().st_size
        assert rest == f"B  {contract.load(name)['title']}"
    assert schema_cli().stdout == listed.stdout  # the bare command lists them too


@pytest.mark.parametrize("name", ["envelope", "transcript", "heartbeat", "PostToolUse"])
def test_schema_name_prints_the_shipped_file_exactly(name: str) -> None:
    printed = schema_cli(name)
    assert printed.returncode == 0
    assert printed.stdout == (SCHEMAS / contract.file_of(name)).read_text()


def test_schema_out_writes_every_file_where_its_refs_find_it(tmp_path: Path) -> None:
    written = schema_cli("--out", str(tmp_path / "schemas"))
    assert (
        written.returncode == 0
        and written.stdout == f"35 schemas written under {tmp_path / 'schemas'}\n"
    )
    for name in contract.names():
        file = contract.file_of(name)
        assert (tmp_path / "schemas" / file).read_text() == (SCHEMAS / file).read_text()
    # what a receiver does with them: every written file in a registry, by its $id
    files = [json.loads(p.read_text()) for p in (tmp_path / "schemas").rglob("*.json")]
    registry: Registry[Any] = Registry().with_resources(
        (f["$id"], Resource.from_contents(f)) for f in files
    )
    transcript = Draft202012Validator(
        json.loads((tmp_path / "schemas" / "transcript.json").read_text()), registry=registry
    )
    payload = {
        "transcriptPath": "/t.jsonl", "sessionId": "s", "agentId": None, "fileId": "1:2",
        "offset": 0, "endOffset": 3, "records": [{"type": "user"}],
    }  # fmt: skip
    shipped = json.loads(json.dumps(wrap("Transcript", "s", 1_764_000_000.0, {"payload": payload})))
    assert transcript.is_valid(shipped)  # envelope.json found through the registry
    assert not transcript.is_valid({**shipped, "traceId": "0" * 32})  # and applied
    assert not transcript.is_valid(envelope())  # a PostToolUse is no Transcript


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["posttooluse"], "no schema 'posttooluse' (hookclient schema --list names them; "
         "event names are case-sensitive)"),
        (["envelope", "--list"], "give NAME or --list, not both"),
        (["envelope", "--out", "x"], "--out writes them all; give no NAME or --list"),
    ],
)  # fmt: skip
def test_schema_mistakes_are_one_line_naming_the_fix(args: list[str], message: str) -> None:
    wrong = schema_cli(*args)
    assert (wrong.returncode, wrong.stdout) == (1, "")
    assert wrong.stderr == f"hookclient: {message}\n"


# -- what the product writes conforms ------------------------------------------------------


def hostile_and_samples() -> list[Path]:
    return [*sample_files(), *sorted(FIXTURES.glob("hostile-*"))]


@pytest.mark.parametrize("sample", hostile_and_samples(), ids=lambda p: p.name)
def test_every_envelope_the_hook_writes_is_valid(hook: HookEnv, sample: Path) -> None:
    """The real hook (spool mode), every sample payload, broken ones included."""
    hook.configure(delivery={"mode": "spool"})
    result = hook.run(sample.read_bytes())
    assert result.returncode == 0, result.stderr
    [written] = [body["envelope"] for body in hook.bodies("pending")]
    assert errors("envelope", written) == []
    if "hostile" in sample.name:
        assert written["payloadError"]


@pytest.mark.parametrize("sample", sample_files(), ids=lambda p: p.name)
def test_every_captured_payload_fits_its_catalog_entry(sample: Path) -> None:
    payload = json.loads(sample.read_text())
    assert errors(payload["hook_event_name"], payload) == []


def test_a_catalog_entry_requires_what_the_capture_always_has() -> None:
    """The entries are not vacuous: the captured payload without a required field fails."""
    payload = json.loads((FIXTURES / "claude-2.1.197" / "PostToolUse.json").read_text())
    del payload["tool_name"]
    assert errors("PostToolUse", payload) == ["$: 'tool_name' is a required property"]


def test_every_transcript_envelope_the_daemon_writes_is_valid(tmp_path: Path) -> None:
    """Each fixture transcript (subagents and tool-result files included), plus a line
    that is not JSON and one over max_record_bytes: hookclient's own record kinds."""
    cfg = config(tmp_path, max_record_bytes=4096)
    project = tmp_path / "projects" / "-home-me-proj"
    for source in (RICH, LARGE, SUBAGENT, *sorted(TRANSCRIPTS.glob("*/*.jsonl"))):
        shutil.copytree(source.parent, project, dirs_exist_ok=True)
    extra = project / f"{uuid.uuid4()}.jsonl"
    big = {"type": "assistant", "uuid": "u-big", "message": {"content": "x" * 10_000}}
    extra.write_text('{"type": "user", "uuid": "u-1"}\nnot json at all\n' + json.dumps(big) + "\n")
    sync = syncer(cfg)
    for path in sorted(project.glob("*.jsonl")):
        sync.session(str(path), path.stem)
    shipped = spooled(cfg)
    records = [r for e in shipped for r in e["payload"]["records"]]
    kinds = {r.get("type") for r in records} | {"cut" for r in records if r.get("truncated")}
    assert {"hookclient.invalid", "hookclient.tool-result", "cut", "user", "assistant"} <= kinds
    assert len(shipped) >= 6
    for sent in shipped:
        assert errors("transcript", sent) == []


def test_the_heartbeat_a_daemon_sends_is_valid(tmp_path: Path) -> None:
    beat = wrap("Heartbeat", None, 1_764_000_000.0, {"payload": backlog(Spool(tmp_path), 1.0)})
    assert errors("heartbeat", json.loads(json.dumps(beat))) == []
    spool = Spool(tmp_path)
    spool.add(make_envelope(), new_state(1.0, due=1.0), State.PENDING)
    waiting = wrap("Heartbeat", None, 1_764_000_000.0, {"payload": backlog(spool, time.time() + 5)})
    assert waiting["payload"]["pending"] == 1 and waiting["payload"]["oldestPendingAge"] > 0
    assert errors("heartbeat", json.loads(json.dumps(waiting))) == []
    negative = {**waiting, "payload": {**waiting["payload"], "pending": -1}}
    assert errors("heartbeat", negative) == ["$.payload.pending: -1 is less than the minimum of 0"]


def test_the_stores_answer_to_a_batch_is_valid(tmp_path: Path) -> None:
    good, bad = envelope(), {**envelope(), "traceId": "0" * 32}
    with TestClient(create_app(tmp_path / "s.db", TOKEN)) as client:
        answer = client.post(
            "/hooks", json=[good, bad, good], headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 200
    assert errors("batch-answer", answer.json()) == []
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "invalid", "duplicate"]


def test_an_unknown_event_is_valid_and_stored(tmp_path: Path) -> None:
    doc = envelope(event="SomethingNewIn2030", payload={"hook_event_name": "SomethingNewIn2030"})
    with TestClient(create_app(tmp_path / "s.db", TOKEN)) as client:
        answer = client.post("/hooks", json=doc, headers={"Authorization": f"Bearer {TOKEN}"})
        stored = client.get(
            "/events",
            params={"event": "SomethingNewIn2030"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert answer.json() == {"status": "accepted", "requestId": doc["requestId"]}
    assert [e["request_id"] for e in stored.json()["events"]] == [doc["requestId"]]


def test_the_checks_above_can_fail() -> None:
    """The oracles are not vacuous: a broken envelope, payload and document are refused."""
    assert errors("envelope", {**envelope(), "spanId": "XYZ"}) != []
    assert errors("SessionStart", {"hook_event_name": "SessionEnd"}) != []
    with pytest.raises(OpenAPIValidationError, match='"info" is a required property'):
        validate({"openapi": "3.1.0", "paths": {}})


# -- the README's receiver recipe ----------------------------------------------------------


@pytest.mark.parametrize("secret", ["whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=", "plain-text-secret"])
def test_the_standardwebhooks_library_verifies_what_hookclient_signs(secret: str) -> None:
    """README "Writing your own receiver": a whsec_ secret as it is, any other secret as
    its UTF-8 bytes (the library reads a bare string as base64)."""
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    doc = envelope()
    body = json.dumps(doc).encode()
    headers = build_headers(
        doc, body, attempt=1, span_id="00f067aa0ba902b7", token=None, signing_secret=secret,
        now=time.time(),
    )  # fmt: skip
    webhook = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    assert webhook.verify(body, headers) == doc
    with pytest.raises(WebhookVerificationError):
        webhook.verify(body.replace(b"PostToolUse", b"PreToolUse_"), headers)
