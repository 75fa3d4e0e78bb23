"""A session's conversation, computed from what arrived for it: transcript records and hook
events.  Pure functions, no database: :mod:`receiver.conversations` loads the inputs and
stores the result, in the same transaction as the rows that changed them.

Why recompute a session from its inputs rather than patch it: the same prompt, reply or
tool call can arrive by several paths (a hook, the live transcript sync, a backfill, a
``--force`` resend), in any order, more than once.  A projection that is a function of
the set of inputs is the same whatever the order, and shows each thing once.

The rules (README "The store"):

- Order comes from the ``parentUuid`` tree, never from timestamps (not monotonic) or
  file order alone: a depth-first walk where, among a record's children, the branch that
  ends earlier in the file comes first (parallel tool results before the reply that
  follows them).
- The consecutive ``assistant`` lines of one API reply share ``message.id``; they become
  one message with all their blocks, and the reply's ``usage`` (repeated on every line)
  counts once per (``message.id``, ``requestId``).
- A hook's prompt is shown until the transcript's user record with the same
  ``promptId`` arrives; a Stop's ``last_assistant_message`` until the transcript holds an
  assistant reply in that prompt's turn.
- Tool calls merge on ``tool_use_id``: the transcript's tool_use and tool_result blocks,
  PreToolUse, PostToolUse, PostToolUseFailure and PermissionDenied, and the full output
  of a ``hookclient.tool-result`` record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Record types that are conversation (they have a uuid and a place in the tree).
CONVERSATION = frozenset({"user", "assistant", "system", "attachment", "progress"})
#: Of those, the ones that are not messages of their own.
NOT_MESSAGES = frozenset({"attachment", "progress"})
TITLE_CHARS = 200
_PERSISTED = re.compile(r"tool-results/([^/\s<>\"']+\.txt)")
_STATUS_RANK = {"running": 0, "ok": 1, "error": 2, "denied": 3}


@dataclass(frozen=True)
class Line:
    """One transcript record of the session, where it stood in its file."""

    body: dict[str, Any]
    #: (the envelope's offset in the file, the record's index in the envelope)
    position: tuple[int, int]
    #: the envelope that brought it (traceability)
    request_id: str
    #: the subagent whose transcript it is in; None for the main transcript
    agent_id: str | None = None


@dataclass(frozen=True)
class Hook:
    """One hook event of the session."""

    event: str
    payload: dict[str, Any]
    timestamp: str
    request_id: str
    host: str | None = None


@dataclass
class Conversation:
    """What the session shows: its row, its messages in order, its tool calls."""

    session: dict[str, Any]
    messages: list[dict[str, Any]]
    tool_calls: dict[str, dict[str, Any]]
    gaps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    """What a session's records alone give.  It changes only when records arrive, so
    :mod:`receiver.conversations` keeps it between the session's hook events."""

    messages: list[dict[str, Any]]
    calls: dict[str, dict[str, Any]]
    gaps: list[str]
    #: the last cwd, gitBranch and version the records name, and their first and last time
    facts: dict[str, Any]
    #: each message's content as JSON, by ``id()`` of its content list: the store fills it
    #: the first time it writes the part, and the part's lists live as long as it does
    encoded: dict[int, str] = field(default_factory=dict)
    #: the digest of a stored message row, by (``id()`` of its content list, position)
    digests: dict[tuple[int, int], str] = field(default_factory=dict)


def project(lines: Sequence[Line], hooks: Sequence[Hook]) -> Conversation:
    """The conversation of one session from everything that arrived for it."""
    return with_hooks(transcript(lines), hooks)


def transcript(lines: Sequence[Line]) -> Transcript:
    """The transcript's part of a session's conversation."""
    by_file = sorted(lines, key=lambda line: (line.agent_id or "", line.position))
    ordered, gaps = _order(by_file)
    messages = _under_their_task(_messages(ordered), _spawned_by(by_file))
    calls = _transcript_calls(ordered, _tool_result_files(by_file))
    bodies = [line.body for line in by_file]
    times = [b["timestamp"] for b in bodies if isinstance(b.get("timestamp"), str)]
    facts = {
        "cwd": _last(bodies, "cwd"),
        "gitBranch": _last(bodies, "gitBranch"),
        "version": _last(bodies, "version"),
        "times": [min(times), max(times)] if times else [],
    }
    return Transcript(messages, calls, gaps, facts)


def with_hooks(part: Transcript, hooks: Sequence[Hook]) -> Conversation:
    """The whole conversation: the transcript's part (left as it is) and the hooks'."""
    messages = [dict(m) for m in part.messages]
    _add_hook_messages(messages, hooks)
    for number, message in enumerate(messages):
        message["position"] = number
    calls = {tool_use_id: dict(call) for tool_use_id, call in part.calls.items()}
    for hook in sorted(hooks, key=lambda h: h.timestamp):
        _tool_hook(calls, hook)
    for call in calls.values():
        if call["duration_ms"] is None and call["started_at"] and call["ended_at"]:
            call["duration_ms"] = _duration_ms(call["started_at"], call["ended_at"])
    session = _session(part.facts, hooks, messages, calls, part.gaps)
    return Conversation(session, messages, calls, list(part.gaps))


# -- order ---------------------------------------------------------------------------------


def _order(lines: Sequence[Line]) -> tuple[list[Line], list[str]]:
    """Conversation records in tree order, subagents after the main transcript; the
    parentUuids named but not present (the gaps)."""
    tree = [line for line in lines if _uuid(line) and line.body.get("type") in CONVERSATION]
    tree += [line for line in lines if _uuid(line) and line.body.get("type") not in CONVERSATION]
    index: dict[str, Line] = {}
    for line in tree:
        index.setdefault(_uuid(line), line)  # a record repeated: its first place counts
    children: dict[str | None, list[Line]] = {}
    gaps: list[str] = []
    for line in index.values():
        parent = line.body.get("parentUuid")
        if parent is not None and parent not in index:
            if parent not in gaps:
                gaps.append(parent)
            parent = None
        children.setdefault(parent, []).append(line)
    latest = _latest_below(index, children)
    out: list[Line] = []
    stack = list(reversed(_sorted(children.get(None, []), latest)))
    while stack:
        line = stack.pop()
        out.append(line)
        stack.extend(reversed(_sorted(children.get(_uuid(line), []), latest)))
    return out, gaps


def _sorted(siblings: list[Line], latest: dict[str, tuple[str, int, int]]) -> list[Line]:
    """Siblings, the branch that ends first in the file first."""
    return sorted(siblings, key=lambda line: latest[_uuid(line)])


def _latest_below(
    index: dict[str, Line], children: dict[str | None, list[Line]]
) -> dict[str, tuple[str, int, int]]:
    """For each record, the file position of the last record in its subtree."""
    latest: dict[str, tuple[str, int, int]] = {}
    order: list[Line] = []
    stack = list(children.get(None, []))
    while stack:  # iterative: a long session is a deep tree
        line = stack.pop()
        order.append(line)
        stack.extend(children.get(_uuid(line), []))
    for line in reversed(order):
        here = (line.agent_id or "", *line.position)
        below = [latest[_uuid(child)] for child in children.get(_uuid(line), [])]
        latest[_uuid(line)] = max([here, *below])
    return latest


def _uuid(line: Line) -> str:
    value = line.body.get("uuid")
    return value if isinstance(value, str) else ""


# -- messages ------------------------------------------------------------------------------


def _messages(ordered: Iterable[Line]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    replies: dict[str, dict[str, Any]] = {}
    counted: set[tuple[str, str]] = set()
    for line in ordered:
        body = line.body
        kind = _kind(body)
        if kind is None:
            continue
        message = _message(body)
        blocks = _blocks(message.get("content") if message else body.get("content"))
        if kind == "assistant" and isinstance(message.get("id"), str):
            reply = replies.get(message["id"])
            if reply is not None:  # another line of the same API reply
                reply["content"].extend(blocks)
                reply["text"] = _text_of(reply["content"])
                _count_usage(reply, body, message, counted)
                continue
        entry = {
            "kind": kind,
            "role": message.get("role") or body.get("type"),
            "uuid": _uuid(line),
            "message_id": message.get("id") if kind == "assistant" else None,
            "prompt_id": body.get("promptId"),
            "agent_id": line.agent_id or body.get("agentId"),
            "parent_tool_use_id": None,
            "timestamp": body.get("timestamp"),
            "model": message.get("model"),
            "content": blocks if kind != "raw" else [{"type": "raw", "record": body}],
            "text": _text_of(blocks) if kind != "raw" else "",
            "usage": None,
            "origin": "transcript",
            "request_id": line.request_id,
        }
        if kind == "assistant":
            replies[message.get("id") or _uuid(line)] = entry
            _count_usage(entry, body, message, counted)
        messages.append(entry)
    return messages


def _spawned_by(lines: Iterable[Line]) -> dict[str, str]:
    """agentId -> the tool_use_id of the Task (Agent) call that started it, from the main
    transcript's tool_result records (their ``toolUseResult.agentId``)."""
    found: dict[str, str] = {}
    for line in lines:
        result = line.body.get("toolUseResult")
        if (
            line.agent_id
            or not isinstance(result, dict)
            or not isinstance(result.get("agentId"), str)
        ):
            continue
        for block in _blocks(_message(line.body).get("content")):
            if block.get("type") == "tool_result" and isinstance(block.get("tool_use_id"), str):
                found[result["agentId"]] = block["tool_use_id"]
    return found


def _under_their_task(
    messages: list[dict[str, Any]], spawned_by: dict[str, str]
) -> list[dict[str, Any]]:
    """A subagent's messages right after the message whose tool_use started it."""
    main = [m for m in messages if not m["agent_id"]]
    agents: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        if message["agent_id"]:
            message["parent_tool_use_id"] = spawned_by.get(message["agent_id"])
            agents.setdefault(message["agent_id"], []).append(message)
    out: list[dict[str, Any]] = []
    placed: set[str] = set()
    for message in main:
        out.append(message)
        calls = {
            b["id"]
            for b in message["content"]
            if b.get("type") == "tool_use" and isinstance(b.get("id"), str)
        }
        for agent_id, group in agents.items():
            if agent_id not in placed and spawned_by.get(agent_id) in calls:
                out.extend(group)
                placed.add(agent_id)
    for agent_id, group in agents.items():  # the Task call not (yet) seen: at the end
        if agent_id not in placed:
            out.extend(group)
    return out


#: How the CLI writes a local command's output (``/compact`` and the like) as a user line.
_COMMAND_OUTPUT = ("<local-command-stdout>", "<local-command-stderr>")


def _kind(body: dict[str, Any]) -> str | None:
    kind = body.get("type")
    if kind in NOT_MESSAGES:
        return None
    if kind == "system":
        return "compact_boundary" if body.get("subtype") == "compact_boundary" else "system"
    if kind == "assistant":
        return "assistant"
    if kind == "user":
        if body.get("isCompactSummary"):
            return "summary"
        blocks = _blocks(_message(body).get("content"))
        if blocks and all(b.get("type") == "tool_result" for b in blocks):
            return "tool_result"
        if body.get("isMeta") or _text_of(blocks).lstrip().startswith(_COMMAND_OUTPUT):
            return "system"  # the CLI's own words (a caveat, a command's output): not a prompt
        return "prompt"
    return "raw"  # a type this version does not know: kept, shown as it came


def _message(body: dict[str, Any]) -> dict[str, Any]:
    message = body.get("message")
    return message if isinstance(message, dict) else {}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b if isinstance(b, dict) else {"type": "raw", "value": b} for b in content]
    return []


def _text_of(blocks: Iterable[dict[str, Any]]) -> str:
    """What search finds in a message: its text and thinking, and tool results' text."""
    parts: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            parts.append(block["thinking"])
        elif kind == "tool_result":
            parts.append(_result_text(block.get("content")))
    return "\n".join(p for p in parts if p)


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def _count_usage(
    entry: dict[str, Any], body: dict[str, Any], message: dict[str, Any], seen: set[tuple[str, str]]
) -> None:
    """Every line of a reply repeats its usage: count it once per (message.id, requestId)."""
    usage = message.get("usage")
    key = (str(message.get("id")), str(body.get("requestId")))
    if not isinstance(usage, dict) or key in seen:
        return
    seen.add(key)
    entry["usage"] = _add_usage(entry["usage"], usage)


_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def _add_usage(total: dict[str, int] | None, usage: dict[str, Any]) -> dict[str, int]:
    out = dict(total or {})
    for name in _TOKEN_FIELDS:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = out.get(name, 0) + value
    return out


def _add_hook_messages(messages: list[dict[str, Any]], hooks: Sequence[Hook]) -> None:
    """Prompts and last replies that only hooks carried, placed by time among the rest."""
    prompts = {m["prompt_id"] for m in messages if m["kind"] == "prompt" and m["prompt_id"]}
    answered = _answered_turns(messages)
    extra: list[dict[str, Any]] = []
    for hook in sorted(hooks, key=lambda h: h.timestamp):
        prompt_id = hook.payload.get("prompt_id")
        if hook.event == "UserPromptSubmit" and isinstance(hook.payload.get("prompt"), str):
            if prompt_id in prompts:
                continue
            prompts.add(prompt_id)
            extra.append(_hook_message(hook, "prompt", "user", hook.payload["prompt"]))
        elif hook.event == "Stop" and isinstance(hook.payload.get("last_assistant_message"), str):
            if prompt_id in answered or not hook.payload["last_assistant_message"]:
                continue
            answered.add(prompt_id)
            extra.append(
                _hook_message(
                    hook, "assistant", "assistant", hook.payload["last_assistant_message"]
                )
            )
    extra.sort(key=lambda m: m["kind"] != "prompt")  # prompts first: replies follow theirs
    for item in extra:
        messages.insert(_place(messages, item), item)


def _place(messages: Sequence[dict[str, Any]], item: dict[str, Any]) -> int:
    """Where a hook's message goes: a reply at the end of its prompt's turn (hooks can
    arrive, and be stamped, in any order); otherwise before the first later message."""
    if item["kind"] == "assistant" and item["prompt_id"]:
        turn = [i for i, m in enumerate(messages) if m["prompt_id"] == item["prompt_id"]]
        if turn:
            return turn[-1] + 1
    return next(
        (i for i, m in enumerate(messages) if (m["timestamp"] or "") > item["timestamp"]),
        len(messages),
    )


def _answered_turns(messages: Sequence[dict[str, Any]]) -> set[Any]:
    """The prompts whose turn has an assistant reply in the transcript."""
    turns: set[Any] = set()
    current: Any = None
    for message in messages:
        if message["kind"] in ("prompt", "tool_result") and message["prompt_id"]:
            current = message["prompt_id"]
        elif message["kind"] == "assistant" and current is not None and not message["agent_id"]:
            turns.add(current)
    return turns


def _hook_message(hook: Hook, kind: str, role: str, text: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "role": role,
        "uuid": None,
        "message_id": None,
        "prompt_id": hook.payload.get("prompt_id"),
        "agent_id": None,
        "parent_tool_use_id": None,
        "timestamp": hook.timestamp,
        "model": None,
        "content": [{"type": "text", "text": text}],
        "text": text,
        "usage": None,
        "origin": "hook",
        "request_id": hook.request_id,
    }


# -- tool calls ----------------------------------------------------------------------------


def _tool_result_files(lines: Iterable[Line]) -> dict[str, str]:
    """The full outputs the CLI kept beside the transcript, by file name."""
    files: dict[str, str] = {}
    for line in lines:
        body = line.body
        if body.get("type") == "hookclient.tool-result" and isinstance(body.get("file"), str):
            files[body["file"]] = str(body.get("text") or "")
    return files


def _transcript_calls(ordered: Iterable[Line], files: dict[str, str]) -> dict[str, dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}
    for line in ordered:
        message = line.body.get("message")
        if not isinstance(message, dict):
            continue
        for block in _blocks(message.get("content")):
            if block.get("type") == "tool_use" and isinstance(block.get("id"), str):
                call = _call(calls, block["id"])
                call["name"] = block.get("name") or call["name"]
                call["input"] = block.get("input", call["input"])
                call["started_at"] = call["started_at"] or line.body.get("timestamp")
                call["agent_id"] = call["agent_id"] or line.agent_id
            elif block.get("type") == "tool_result" and isinstance(block.get("tool_use_id"), str):
                _tool_result(_call(calls, block["tool_use_id"]), block, line, files)
    return calls


def _call(calls: dict[str, dict[str, Any]], tool_use_id: str) -> dict[str, Any]:
    return calls.setdefault(
        tool_use_id,
        {
            "tool_use_id": tool_use_id,
            "name": None,
            "input": None,
            "output": None,
            "error": None,
            "status": "running",
            "started_at": None,
            "ended_at": None,
            "duration_ms": None,
            "agent_id": None,
        },
    )


def _tool_result(
    call: dict[str, Any], block: dict[str, Any], line: Line, files: dict[str, str]
) -> None:
    text = _result_text(block.get("content"))
    persisted = _PERSISTED.search(text) if "<persisted-output>" in text else None
    if persisted and persisted.group(1) in files:
        text = files[persisted.group(1)]  # the whole output, not the stub
    if block.get("is_error"):
        call["error"] = text
        _raise_status(call, "error")
    else:
        call["output"] = text
        _raise_status(call, "ok")
    call["ended_at"] = call["ended_at"] or line.body.get("timestamp")


def _tool_hook(calls: dict[str, dict[str, Any]], hook: Hook) -> None:
    payload = hook.payload
    tool_use_id = payload.get("tool_use_id")
    if not isinstance(tool_use_id, str):
        return
    if hook.event not in ("PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionDenied"):
        return
    call = _call(calls, tool_use_id)
    call["name"] = call["name"] or payload.get("tool_name")
    if call["input"] is None:
        call["input"] = payload.get("tool_input")
    if hook.event == "PreToolUse":
        call["started_at"] = call["started_at"] or hook.timestamp
        return
    call["ended_at"] = call["ended_at"] or hook.timestamp
    if isinstance(payload.get("duration_ms"), int):
        call["duration_ms"] = payload["duration_ms"]
    if hook.event == "PostToolUse":
        if call["output"] is None and "tool_response" in payload:
            response = payload["tool_response"]
            call["output"] = response if isinstance(response, str) else json.dumps(response)
        _raise_status(call, "ok")
    elif hook.event == "PostToolUseFailure":
        call["error"] = call["error"] or str(payload.get("error") or "")
        _raise_status(call, "error")
    else:
        call["error"] = call["error"] or str(payload.get("reason") or "permission denied")
        _raise_status(call, "denied")


def _raise_status(call: dict[str, Any], status: str) -> None:
    if _STATUS_RANK[status] > _STATUS_RANK[call["status"]]:
        call["status"] = status


def _duration_ms(start: str, end: str) -> float | None:
    from datetime import datetime

    try:
        began = datetime.fromisoformat(start.replace("Z", "+00:00"))
        ended = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((ended - began).total_seconds() * 1000, 1)


# -- the session ---------------------------------------------------------------------------


def _session(
    facts: dict[str, Any],
    hooks: Sequence[Hook],
    messages: Sequence[dict[str, Any]],
    calls: dict[str, dict[str, Any]],
    gaps: Sequence[str],
) -> dict[str, Any]:
    payloads = [hook.payload for hook in hooks]
    times = [*facts["times"], *(hook.timestamp for hook in hooks)]
    prompts = [m for m in messages if m["kind"] == "prompt" and not m["agent_id"]]  # not a Task's
    tokens: dict[str, int] = {}
    for message in messages:
        if message["usage"]:
            tokens = _add_usage(tokens, message["usage"])
    return {
        "project": facts["cwd"] or _last(payloads, "cwd"),
        "git_branch": facts["gitBranch"],
        "model": next(
            (m["model"] for m in reversed(messages) if m["model"] and m["model"] != "<synthetic>"),
            None,
        ),
        "version": facts["version"],
        "hosts": sorted({hook.host for hook in hooks if hook.host}),
        "first_activity": min(times) if times else None,
        "last_activity": max(times) if times else None,
        "start_source": _of_event(hooks, "SessionStart", "source"),
        "end_reason": _of_event(hooks, "SessionEnd", "reason"),
        "title": prompts[0]["text"][:TITLE_CHARS] if prompts else None,
        "prompts": len(prompts),
        "messages": len(messages),
        "tool_calls": len(calls),
        "errors": sum(1 for c in calls.values() if c["status"] in ("error", "denied")),
        "input_tokens": tokens.get("input_tokens", 0),
        "output_tokens": tokens.get("output_tokens", 0),
        "cache_creation_tokens": tokens.get("cache_creation_input_tokens", 0),
        "cache_read_tokens": tokens.get("cache_read_input_tokens", 0),
        "gaps": list(gaps),
        "complete": not gaps,
    }


def _last(items: Iterable[dict[str, Any]], key: str) -> Any:
    found = None
    for item in items:
        if isinstance(item.get(key), str) and item[key]:
            found = item[key]
    return found


def _of_event(hooks: Sequence[Hook], event: str, key: str) -> Any:
    return next((hook.payload.get(key) for hook in reversed(hooks) if hook.event == event), None)
