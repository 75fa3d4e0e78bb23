"""Property tests of the store against the published contract, with schemathesis (which
generates with hypothesis) on a real ``hookclient-receiver``, on SQLite and PostgreSQL.

- ``POST /hooks``: envelopes generated from the schema files (positive: valid; negative:
  schemathesis breaks them), one at a time or in batches.  Every valid one is accepted
  (200); every invalid one is refused, 422 naming a JSON pointer, or "invalid" in its
  batch.  The oracle is the schemas read with jsonschema, not the store's own code.
- ``/api``: its OpenAPI document, every check schemathesis has: no 5xx, every answer
  conforming (status, content type, body).

Bounded by ``FUZZ_EXAMPLES`` (per operation); ``make fuzz`` runs them longer.  Each test
writes what it tried to logs/contract-report.jsonl.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import schemathesis
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from schemathesis import GenerationMode

from hookclient import contract
from tests.conftest import BIN, TOKEN, Receiver, start_receiver

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
REPORT = Path(__file__).resolve().parent.parent / "logs" / "contract-report.jsonl"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _bundled(schema: Any, name: str) -> Any:
    """A schema file as an OpenAPI component: its ``$ref``s to other files, and to its own
    ``$defs``, rewritten to point into ``#/components/schemas``."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key in ("$id", "$schema"):
                continue
            if key == "$ref" and isinstance(value, str):
                if value.startswith("#/$defs/"):
                    value = f"#/components/schemas/{name}/$defs/" + value.removeprefix("#/$defs/")
                else:
                    value = "#/components/schemas/" + value.removesuffix(".json")
            out[key] = _bundled(value, name)
        return out
    if isinstance(schema, list):
        return [_bundled(item, name) for item in schema]
    return schema


def body_schema() -> dict[str, Any]:
    """What the store applies: an envelope of any event but Transcript and Heartbeat,
    which have schemas of their own; or an array of 1 to 1000 of them."""
    one = {
        "anyOf": [
            {
                "allOf": [{"$ref": "#/components/schemas/envelope"}],
                "properties": {"event": {"not": {"enum": ["Transcript", "Heartbeat"]}}},
            },
            {"$ref": "#/components/schemas/transcript"},
        ]
    }
    return {"anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": 5}]}


def hooks_document() -> dict[str, Any]:
    """An OpenAPI 3.1 description of ``POST /hooks`` made of the published schemas."""
    components = {n: _bundled(contract.load(n), n) for n in ("envelope", "transcript")}
    answer: dict[str, Any] = {"content": {"application/json": {}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "hookclient POST /hooks", "version": "1"},
        "paths": {
            "/hooks": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": body_schema()}},
                    },
                    "responses": {"200": answer, "422": answer},
                }
            }
        },
        "components": {"schemas": components},
    }


def validators() -> dict[str, Draft202012Validator]:
    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(s)) for uri, s in contract.every().items()
    )
    return {
        name: Draft202012Validator(contract.load(name), registry=registry)
        for name in ("envelope", "transcript", "heartbeat")
    }


ORACLE = validators()


def valid(doc: Any) -> bool:
    """What the schema files say of one envelope (the store must say the same)."""
    event = doc.get("event") if isinstance(doc, dict) else None
    name = {"Transcript": "transcript", "Heartbeat": "heartbeat"}.get(str(event), "envelope")
    return bool(ORACLE[name].is_valid(doc))


class Live(NamedTuple):
    """A store for the module's tests, and which database it is on."""

    receiver: Receiver
    database: str

    @property
    def base(self) -> str:
        return self.receiver.url.removesuffix("/hooks")


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One store for the module's examples (a fresh one per example would dwarf them)."""
    tmp = tmp_path_factory.mktemp("contract")
    database = None
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres_server").fresh_database()
    receiver = start_receiver(tmp, database=database)
    TRIED.clear()
    yield Live(receiver, request.param)
    receiver.stop()
    if TRIED:
        report({"test": "POST /hooks", "database": request.param, "examples": EXAMPLES, **TRIED})


def report(line: dict[str, Any]) -> None:
    """One line of figures (logs/contract-report.jsonl), and the same on the terminal."""
    print(f"CONTRACT {json.dumps(line)}")
    REPORT.parent.mkdir(exist_ok=True)
    with REPORT.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


TRIED: Counter[str] = Counter()
HOOKS = schemathesis.openapi.from_dict(hooks_document())
HOOKS.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)


@pytest.mark.parametrize("live", ["sqlite", "postgresql"], indirect=True)
@HOOKS.parametrize()
def test_the_store_accepts_every_valid_envelope_and_refuses_every_invalid_one(
    case: schemathesis.Case[Any], live: Live
) -> None:
    body = case.body
    answer = httpx.post(
        live.base + case.formatted_path,
        content=json.dumps(body).encode() if _is_json(body) else b"",
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code < 500, answer.text
    if isinstance(body, list) and 1 <= len(body) <= 1000:
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["status"] != "invalid" for r in results] == [valid(d) for d in body]
        TRIED.update(kind(d) for d in body)
        TRIED["batches"] += 1
    elif isinstance(body, dict) and valid(body):
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] in ("accepted", "duplicate")
        TRIED[kind(body)] += 1
    else:
        assert answer.status_code in (400, 422), answer.text
        if answer.status_code == 422 and isinstance(body, dict):
            field = answer.json()["field"]  # a JSON pointer: "" is the whole body
            assert field == "" or field.startswith("/"), answer.text
        TRIED["invalid"] += 1


def kind(doc: Any) -> str:
    """How the report counts an envelope: invalid, a valid Transcript, or another valid one."""
    if not valid(doc):
        return "invalid"
    return "valid Transcript" if doc.get("event") == "Transcript" else "valid"


def _is_json(body: Any) -> bool:
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


# -- /api ------------------------------------------------------------------------------

EXAMPLE_SESSION = "2a2ecfaf-ba89-45e3-9d0f-0760b71e296a"  # the documented example ids,
EXAMPLE_REQUEST = "019ad6a1-6c1e-7c3a-9a52-3f0d2b8e4c11"  # which the seeded store holds
RICH = Path(__file__).parent / "fixtures" / "transcripts" / "rich-turn" / f"{EXAMPLE_SESSION}.jsonl"


def seed(receiver: Receiver) -> None:
    """A session to read (the example one, with its tool calls) and the example event."""
    from tests.test_conversations import transcript, wrap

    docs = transcript(RICH, batch=20)
    stop = wrap("Stop", EXAMPLE_SESSION, {"hook_event_name": "Stop"}, "2026-12-01T19:41:00.000Z")
    docs.append({**stop, "requestId": EXAMPLE_REQUEST})
    for doc in docs:
        answer = httpx.post(receiver.url, json=doc, headers=AUTH, timeout=30)
        assert answer.status_code == 200, answer.text


SETTINGS = Path(__file__).parent / "schemathesis.toml"
PHASES = os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing")


@pytest.mark.parametrize("live", ["sqlite", "postgresql"], indirect=True)
def test_every_api_answer_is_what_its_openapi_document_says(live: Live, tmp_path: Path) -> None:
    """schemathesis with every check it has, on the live store's own document: no 5xx;
    statuses, content types, headers and bodies as documented; schema-valid requests
    accepted, invalid ones refused.  GET /stream is left out: its answer never ends (the
    stream's own tests read it)."""
    seed(live.receiver)
    base = live.base
    run = subprocess.run(
        [str(BIN / "st"), "--config-file", str(SETTINGS), "run", f"{base}/api/openapi.json",
         "--checks", "all",
         "--header", f"Authorization: Bearer {TOKEN}", "--exclude-path", "/stream",
         "--max-examples", str(EXAMPLES), "--phases", PHASES, "--workers", "1",
         "--request-timeout", "30", "--report", "json", "--report-dir", str(tmp_path),
         "--seed", os.environ.get("FUZZ_SEED") or str(random.getrandbits(64)), "--no-color"],
        capture_output=True, text=True, timeout=1800, check=False, cwd=tmp_path,
    )  # fmt: skip
    [found] = tmp_path.glob("*.json")
    summary = json.loads(found.read_text())
    report({
        "test": "/api", "database": live.database, "examples": EXAMPLES, "phases": PHASES,
        "operations": summary["operations"]["tested"], "cases": summary["test_cases"]["generated"],
        "failures": summary["test_cases"]["unique_failures"], "seed": summary["seed"],
    })  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:]
    assert summary["operations"]["tested"] == summary["operations"]["selected"] == 7
    assert summary["test_cases"]["generated"] >= 7 * 5
