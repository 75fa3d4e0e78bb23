"""Conversations in the store, from real transcripts (tests/fixtures/transcripts, written by
Claude Code 2.1.197) and hook payloads, on SQLite and PostgreSQL: each prompt, reply and
tool call once, in conversation order, whatever path and order they arrived by."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from receiver.app import create_app
from receiver.database import url_of

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", UserWarning)
    from starlette.testclient import TestClient

TOKEN = "conversation-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TRANSCRIPTS = Path(__file__).parent / "fixtures" / "transcripts"
RICH = TRANSCRIPTS / "rich-turn" / "2a2ecfaf-ba89-45e3-9d0f-0760b71e296a.jsonl"
LARGE = TRANSCRIPTS / "large-tool-output" / "f3941b84-2531-4987-9182-2a2ef4f11ee5.jsonl"
PARENT = TRANSCRIPTS / "resume-and-fork" / "33f41d1f-f46f-4d00-9ae4-7adcad585aee.jsonl"
FORK = TRANSCRIPTS / "resume-and-fork" / "1c63cc00-974d-49fe-ba4a-9a96da60c1b6.jsonl"


@contextmanager
def store(db: str) -> Iterator[TestClient]:
    with TestClient(create_app(db, TOKEN)) as client:
        yield client


def rows(db: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_engine(url_of(db))
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]
    finally:
        engine.dispose()


def wrap(event: str, session_id: str, payload: Any, timestamp: str) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "requestId": str(uuid.uuid4()),
        "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16],
        "event": event,
        "sessionId": session_id,
        "timestamp": timestamp,
        "source": {"host": "laptop-1", "user": "u", "cwd": "/p", "pid": 1, "client": "hookclient"},
        "payload": payload,
    }


def transcript(
    path: Path, *, batch: int = 500, agent_id: str | None = None
) -> list[dict[str, Any]]:
    """The file as the daemon ships it: Transcript envelopes of ``batch`` records each."""
    session_id = path.stem
    chunks: list[dict[str, Any]] = []
    offset = 0
    lines = path.read_bytes().splitlines(keepends=True)
    for start in range(0, len(lines), batch):
        part = lines[start : start + batch]
        end = offset + sum(len(line) for line in part)
        payload = {
            "transcriptPath": str(path),
            "sessionId": session_id,
            "agentId": agent_id,
            "fileId": "1:2",
            "offset": offset,
            "endOffset": end,
            "records": [json.loads(line) for line in part],
        }
        chunks.append(wrap("Transcript", session_id, payload, "2026-12-01T19:40:00.000Z"))
        offset = end
    return chunks


def send(client: TestClient, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        answer = client.post(
            "/hooks", content=json.dumps(doc), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert answer.status_code == 200, answer.text


def conversation(db: str, session_id: str) -> list[tuple[str, str, str]]:
    """(kind, origin, text) of the session's messages in order."""
    found = rows(
        db,
        "SELECT kind, origin, text FROM messages WHERE session_id = :s ORDER BY position",
        s=session_id,
    )
    return [(m["kind"], m["origin"], m["text"]) for m in found]


def session_row(db: str, session_id: str) -> dict[str, Any]:
    [row] = rows(db, "SELECT * FROM sessions WHERE session_id = :s", s=session_id)
    return row


def rich_hooks() -> list[dict[str, Any]]:
    """The hook events of the rich-turn session, as the CLI would have sent them."""
    session = RICH.stem
    prompt_id = "b1db6895-0bcd-4a66-b042-edc1e062337a"
    base = {"session_id": session, "cwd": "<PROJECT>", "prompt_id": prompt_id}
    events: list[tuple[str, dict[str, Any], str]] = [
        ("UserPromptSubmit", {**base, "prompt": "MULTI please FAKEPROMPT"}, "19:34:28.990"),
        (
            "PreToolUse",
            {
                **base,
                "tool_name": "Bash",
                "tool_use_id": "toolu_a00000253669077",
                "tool_input": {"command": "echo one"},
            },
            "19:34:29.300",
        ),
        (
            "PostToolUse",
            {
                **base,
                "tool_name": "Bash",
                "tool_use_id": "toolu_a00000253669077",
                "tool_input": {"command": "echo one"},
                "duration_ms": 12,
                "tool_response": {"stdout": "one"},
            },
            "19:34:29.440",
        ),
        ("Stop", {**base, "last_assistant_message": "FAKE-DONE"}, "19:34:29.600"),
    ]
    return [wrap(e, session, {**p, "hook_event_name": e}, f"2026-12-01T{t}Z") for e, p, t in events]


# -- one reply over four lines ---------------------------------------------------------------


def test_a_reply_over_four_lines_is_one_message_with_its_usage_counted_once(db: str) -> None:
    with store(db) as client:
        send(client, transcript(RICH))
    messages = rows(db, "SELECT kind, content, usage, text FROM messages ORDER BY position")
    assert [m["kind"] for m in messages] == [
        "prompt",
        "assistant",
        "tool_result",
        "tool_result",
        "assistant",
    ]
    blocks = [b["type"] for b in json.loads(messages[1]["content"])]
    assert blocks == ["thinking", "text", "tool_use", "tool_use"]
    assert json.loads(messages[1]["usage"])["output_tokens"] == 20  # not 4 x 20
    assert [m["text"] for m in messages[2:4]] == ["one", "two"]
    session = session_row(db, RICH.stem)
    assert (session["prompts"], session["messages"], session["tool_calls"]) == (1, 5, 2)
    assert (session["input_tokens"], session["output_tokens"]) == (200, 40)  # two replies
    assert session["title"] == "MULTI please FAKEPROMPT"
    assert session["complete"] and json.loads(session["gaps"]) == []
    assert json.loads(session["hosts"]) == ["laptop-1"]  # from the Transcript envelopes
    calls = rows(
        db, "SELECT tool_use_id, name, status, output FROM tool_calls ORDER BY tool_use_id"
    )
    assert [(c["tool_use_id"], c["status"], c["output"]) for c in calls] == [
        ("toolu_a00000253669077", "ok", "one"),
        ("toolu_b00000353669077", "ok", "two"),
    ]


@pytest.mark.parametrize("batch", [1, 3, 500])
def test_any_batch_size_any_order_and_resends_give_the_same_conversation(
    db: str, batch: int
) -> None:
    chunks = transcript(RICH, batch=batch)
    with store(db) as client:
        send(client, list(reversed(chunks)))
        once = conversation(db, RICH.stem)
        send(client, transcript(RICH, batch=2))  # a --force resend: new envelopes, same records
    assert conversation(db, RICH.stem) == once
    assert [kind for kind, _, _ in once] == [
        "prompt",
        "assistant",
        "tool_result",
        "tool_result",
        "assistant",
    ]
    records = rows(db, "SELECT COUNT(*) AS n FROM records")
    lines = len(RICH.read_text().splitlines())
    assert records == [{"n": lines}]


# -- hooks and transcript -----------------------------------------------------------------


def test_a_hook_only_session_reads_as_a_conversation(db: str) -> None:
    with store(db) as client:
        send(client, rich_hooks())
    assert conversation(db, RICH.stem) == [
        ("prompt", "hook", "MULTI please FAKEPROMPT"),
        ("assistant", "hook", "FAKE-DONE"),
    ]
    [call] = rows(db, "SELECT tool_use_id, status, output, duration_ms FROM tool_calls")
    assert call == {
        "tool_use_id": "toolu_a00000253669077",
        "status": "ok",
        "output": '{"stdout": "one"}',
        "duration_ms": 12.0,
    }
    session = session_row(db, RICH.stem)
    assert session["title"] == "MULTI please FAKEPROMPT" and json.loads(session["hosts"]) == [
        "laptop-1"
    ]


@pytest.mark.parametrize("hooks_first", [True, False])
def test_hooks_and_transcript_in_either_order_end_in_one_copy(db: str, hooks_first: bool) -> None:
    docs = rich_hooks() + transcript(RICH, batch=4)
    if not hooks_first:
        docs.reverse()
    with store(db) as client:
        send(client, docs)
    kinds = [(kind, origin) for kind, origin, _ in conversation(db, RICH.stem)]
    assert kinds == [
        ("prompt", "transcript"),
        ("assistant", "transcript"),
        ("tool_result", "transcript"),
        ("tool_result", "transcript"),
        ("assistant", "transcript"),
    ]
    calls = rows(db, "SELECT tool_use_id, status, duration_ms FROM tool_calls ORDER BY tool_use_id")
    assert [(c["tool_use_id"], c["status"]) for c in calls] == [
        ("toolu_a00000253669077", "ok"),
        ("toolu_b00000353669077", "ok"),
    ]
    assert calls[0]["duration_ms"] == 12.0  # the hook's figure, merged into the same row


# -- fork, large output, gaps -----------------------------------------------------------------


@pytest.mark.parametrize("fork_first", [True, False])
def test_a_fork_is_stored_once_and_both_sessions_are_complete(db: str, fork_first: bool) -> None:
    docs = (
        transcript(FORK) + transcript(PARENT)
        if fork_first
        else transcript(PARENT) + transcript(FORK)
    )
    with store(db) as client:
        send(client, docs)
    parent, fork = session_row(db, PARENT.stem), session_row(db, FORK.stem)
    assert fork["forked_from"] == PARENT.stem and parent["forked_from"] is None
    assert parent["complete"] and fork["complete"]
    uuids = {
        json.loads(line).get("uuid") for f in (PARENT, FORK) for line in f.read_text().splitlines()
    }
    stored = rows(db, "SELECT COUNT(*) AS n FROM records WHERE uuid IS NOT NULL")
    assert stored == [{"n": len(uuids - {None})}]
    shared = [m for m in conversation(db, PARENT.stem) if m[0] == "prompt"]
    forked = [m for m in conversation(db, FORK.stem) if m[0] == "prompt"]
    assert forked[: len(shared)] == shared and len(forked) == len(shared) + 1
    calls = rows(db, "SELECT tool_use_id, status FROM tool_calls")
    assert calls == [{"tool_use_id": "toolu_fake00000353638681", "status": "ok"}]  # once
    with store(db) as client:
        for session in (PARENT.stem, FORK.stem):  # and shown in both
            shown = client.get(f"/api/sessions/{session}/tools", headers=AUTH).json()
            assert [t["tool_use_id"] for t in shown["tool_calls"]] == [calls[0]["tool_use_id"]]


def test_a_large_tool_output_arrives_whole_from_its_tool_result_file(db: str) -> None:
    full = (LARGE.parent / LARGE.stem / "tool-results" / "bpfz5n2lv.txt").read_text()
    docs = transcript(LARGE)
    record = {
        "type": "hookclient.tool-result",
        "file": "bpfz5n2lv.txt",
        "bytes": len(full),
        "text": full,
    }
    extra = wrap(
        "Transcript",
        LARGE.stem,
        {
            "transcriptPath": str(LARGE),
            "sessionId": LARGE.stem,
            "agentId": None,
            "fileId": "tool-results",
            "offset": 10**9,
            "endOffset": 10**9,
            "records": [record],
        },
        "2026-12-01T19:41:00.000Z",
    )
    with store(db) as client:
        send(client, [*docs, extra])
    [call] = rows(db, "SELECT status, output FROM tool_calls")
    assert call["status"] == "ok" and call["output"] == full and len(full) > 500_000


def test_a_session_missing_its_start_lists_the_gap_until_it_arrives(db: str) -> None:
    first, second = transcript(RICH, batch=6)[:2]
    with store(db) as client:
        send(client, [second])
        partial = session_row(db, RICH.stem)
        send(client, [first])
        whole = session_row(db, RICH.stem)
    assert not partial["complete"] and len(json.loads(partial["gaps"])) == 1
    assert whole["complete"] and json.loads(whole["gaps"]) == []


SUBAGENT = TRANSCRIPTS / "subagent" / "0e641add-bc3b-4b77-926b-becca10bf7a0.jsonl"
AGENT = SUBAGENT.parent / SUBAGENT.stem / "subagents" / "agent-aa7a471765535adfa.jsonl"
COMPACTED = TRANSCRIPTS / "compaction" / "3317a926-4654-45a6-9f62-d228122a0f2d.jsonl"


@pytest.mark.parametrize("agent_first", [True, False])
def test_a_subagents_messages_sit_under_the_task_call_that_started_them(
    db: str, agent_first: bool
) -> None:
    agent = transcript(AGENT, agent_id="aa7a471765535adfa")
    for doc in agent:  # the subagent's file is its parent session's
        doc["sessionId"] = doc["payload"]["sessionId"] = SUBAGENT.stem
    docs = agent + transcript(SUBAGENT) if agent_first else transcript(SUBAGENT) + agent
    with store(db) as client:
        send(client, docs)
    found = rows(
        db,
        "SELECT kind, agent_id, parent_tool_use_id, content FROM messages"
        " WHERE session_id = :s ORDER BY position",
        s=SUBAGENT.stem,
    )
    task = next(
        i for i, m in enumerate(found) if '"tool_use"' in m["content"] and not m["agent_id"]
    )
    under = [m for m in found if m["agent_id"]]
    assert under and found[task + 1 : task + 1 + len(under)] == under
    assert any(m["kind"] == "prompt" for m in under)  # the Task's prompt, shown under it,
    assert session_row(db, SUBAGENT.stem)["prompts"] == 1  # is not one of the user's
    assert {m["parent_tool_use_id"] for m in under} == {"toolu_agent00000853762728"}
    assert found[task + 1 + len(under)]["kind"] == "tool_result"  # the Task's own result after
    assert session_row(db, SUBAGENT.stem)["complete"]


def test_compaction_keeps_the_boundary_and_summary_after_the_history(db: str) -> None:
    with store(db) as client:
        send(client, transcript(COMPACTED, batch=7))
    kinds = [kind for kind, _, _ in conversation(db, COMPACTED.stem)]
    boundary = kinds.index("compact_boundary")
    assert kinds[boundary + 1] == "summary"
    assert kinds[:boundary].count("prompt") == 2 and "summary" not in kinds[:boundary]
    assert session_row(db, COMPACTED.stem)["complete"]  # logicalParentUuid is not a gap
    # the CLI's caveat (isMeta) and /compact's output are its own words, not prompts;
    # the /compact the user typed is one
    assert kinds[boundary + 1 :] == ["summary", "system", "prompt", "system"]
    assert session_row(db, COMPACTED.stem)["prompts"] == 3


def test_a_reply_follows_its_prompt_whatever_the_hooks_timestamps(db: str) -> None:
    """Hook envelopes are stamped by the laptop that sent them: a Stop stamped before its
    UserPromptSubmit (a clock step, a replay) still reads after its prompt."""
    hooks = rich_hooks()
    prompt, stop = hooks[0], hooks[-1]
    stop["timestamp"] = "2026-12-01T19:00:00.000Z"  # before the prompt
    with store(db) as client:
        send(client, [stop, prompt])
    assert conversation(db, RICH.stem) == [
        ("prompt", "hook", "MULTI please FAKEPROMPT"),
        ("assistant", "hook", "FAKE-DONE"),
    ]


def test_the_real_clis_hook_payloads_read_as_their_conversation(db: str) -> None:
    """The payloads Claude Code 2.1.197 sent for one session (tests/fixtures/claude-2.1.197):
    its prompt, the Bash call with its output and duration, and the turn's reply."""
    captured = sorted((Path(__file__).parent / "fixtures" / "claude-2.1.197").glob("*.json"))
    session = "04aff4b6-2a3f-417c-9233-9c77515b28d9"
    docs = []
    for path in captured:
        payload = json.loads(path.read_text())
        if payload.get("session_id") == session:
            docs.append(
                wrap(payload["hook_event_name"], session, payload, "2026-12-01T19:30:00.000Z")
            )
    with store(db) as client:
        send(client, docs)
    assert conversation(db, session) == [
        ("prompt", "hook", "say hi"),
        ("assistant", "hook", "FAKE-DONE"),
    ]
    [call] = rows(db, "SELECT name, status, duration_ms, input FROM tool_calls")
    assert (call["name"], call["status"], call["duration_ms"]) == ("Bash", "ok", 19.0)
    assert json.loads(call["input"])["command"] == "echo hello-from-fake-model"
    row = session_row(db, session)
    assert (row["start_source"], row["end_reason"], row["project"]) == (
        "startup",
        "other",
        "<PROJECT>",
    )


def stored_conversation(database: str) -> dict[str, Any]:
    """Everything the projection wrote, as comparable values (no row ids)."""
    return {
        "messages": rows(
            database,
            "SELECT session_id, position, kind, role, uuid, message_id, prompt_id, agent_id,"
            " parent_tool_use_id, timestamp, model, text, content, usage, origin, digest"
            " FROM messages ORDER BY session_id, position",
        ),
        "tool_calls": rows(
            database,
            "SELECT tool_use_id, session_id, name, input, output, error, status, started_at,"
            " ended_at, duration_ms FROM tool_calls ORDER BY tool_use_id",
        ),
        "sessions": rows(
            database,
            "SELECT session_id, project, title, prompts, messages, tool_calls, errors,"
            " input_tokens, output_tokens, first_activity, last_activity, gaps, complete,"
            " forked_from, hosts FROM sessions ORDER BY session_id",
        ),
    }


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(list(range(9))))
def test_kept_transcript_parts_give_the_rows_a_projection_from_scratch_gives(
    tmp_path: Path, order: list[int]
) -> None:
    """The store keeps each session's transcript part between events
    (conversations.Projections). Whatever the order things arrive in, the rows must be
    the ones projecting every session from nothing gives."""
    docs = transcript(RICH, batch=3)[:5] + rich_hooks()  # 5 chunks and 4 hooks
    docs = [docs[i] for i in order]
    kept, fresh = (f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}" for _ in range(2))
    with store(kept) as client:
        send(client, docs)
    app = create_app(fresh, TOKEN)
    app.state.store.projections.size = 0  # nothing kept between events: from scratch
    with TestClient(app) as client:
        send(client, docs)
    assert stored_conversation(kept) == stored_conversation(fresh)
