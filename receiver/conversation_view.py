"""A session's messages and tool calls arranged for reading: each tool call shown where
the assistant made it, with its input, output, error and duration; its result not again
as a message of its own; a subagent's messages nested under the Task call that started
them; thinking kept apart so the page can fold it."""

from __future__ import annotations

import json
from typing import Any

#: What each kind of message is called on a page and in the Markdown export.
HEADINGS = {
    "prompt": "User",
    "assistant": "Assistant",
    "tool_result": "Tool result",
    "summary": "Summary",
    "compact_boundary": "Compacted",
    "system": "System",
    "raw": "Record",
}


def thread(messages: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The top-level messages as views; subagent work hangs under its call's view."""
    by_id = {call["tool_use_id"]: _call_view(call) for call in calls}
    nested: dict[str, list[dict[str, Any]]] = {}
    top: list[dict[str, Any]] = []
    shown: list[str] = []
    hidden: list[int] = []  # positions of messages shown with their call: links still land
    for message in messages:
        view = _message_view(message, by_id)
        shown += [b["call"]["tool_use_id"] for b in view["blocks"] if b["kind"] == "tool"]
        if not view["blocks"]:
            hidden.append(message["position"])  # only results of calls shown with the call
            continue
        view["anchors"], hidden = hidden, []
        parent = message.get("parent_tool_use_id")
        if parent and parent in by_id:
            nested.setdefault(parent, []).append(view)
        else:
            top.append(view)
    for tool_use_id, children in nested.items():
        by_id[tool_use_id]["children"] = children
    return _with_loose_calls(top, [by_id[c["tool_use_id"]] for c in calls], set(shown))


def _with_loose_calls(
    top: list[dict[str, Any]], calls: list[dict[str, Any]], shown: set[str]
) -> list[dict[str, Any]]:
    """The calls no message shows (a session known from its hooks alone: no transcript
    tool_use block), each put before the first message that came after it started."""
    out = list(top)
    for call in calls:
        if call["tool_use_id"] in shown or call.get("agent_id"):
            continue
        view = {
            "kind": "tool_call", "heading": "Tool call", "position": None, "anchors": [],
            "timestamp": call.get("started_at"), "model": None, "usage": None,
            "request_id": None, "blocks": [{"kind": "tool", "call": call}],
        }  # fmt: skip
        at = next(
            (i for i, m in enumerate(out)
             if view["timestamp"] and m.get("timestamp") and m["timestamp"] > view["timestamp"]),
            len(out),
        )  # fmt: skip
        out.insert(at, view)
    return out


#: The input fields that say best what a call did, in the order looked for.
_PREVIEW_KEYS = ("command", "file_path", "pattern", "url", "query", "description", "prompt")
PREVIEW_CHARS = 100
#: The most of one tool input, output, error or result a page shows.
SHOWN_CHARS = 20_000


def _call_view(call: dict[str, Any]) -> dict[str, Any]:
    shown = call.get("input")
    text = shown if isinstance(shown, str) else json.dumps(shown, indent=2, ensure_ascii=False)
    return {
        **call,
        "input_text": _clip(text),
        "output": _clip(call.get("output")),
        "error": _clip(call.get("error")),
        "preview": _preview(shown),
        "children": [],
    }


def _preview(shown: Any) -> str | None:
    """One line of a call's input for its folded summary: the command, the file, ..."""
    if not isinstance(shown, dict):
        return None
    for key in _PREVIEW_KEYS:
        value = shown.get(key)
        if isinstance(value, str) and value.strip():
            line = " ".join(value.split())
            return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"
    return None


def _message_view(message: dict[str, Any], calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in ("tool_use", "tool_result"):  # ids that are not strings: shown raw
            key = block.get("id" if kind == "tool_use" else "tool_use_id")
            kind = kind if isinstance(key, str) else None
        if kind == "text":
            blocks.append({"kind": "text", "text": str(block.get("text", ""))})
        elif kind == "thinking":
            blocks.append({"kind": "thinking", "text": str(block.get("thinking", ""))})
        elif kind == "tool_use" and block.get("id") in calls:
            blocks.append({"kind": "tool", "call": calls[block["id"]]})
        elif kind == "tool_use":
            call = _call_view({"tool_use_id": block.get("id"), "name": block.get("name"),
                               "input": block.get("input"), "status": "running",
                               "duration_ms": None, "output": None, "error": None})  # fmt: skip
            blocks.append({"kind": "tool", "call": call})
        elif kind == "tool_result" and block.get("tool_use_id") in calls:
            continue
        elif kind == "tool_result":
            blocks.append({"kind": "result", "tool_use_id": block.get("tool_use_id"),
                           "text": _clip(_text(block.get("content")))})  # fmt: skip
        else:
            blocks.append(
                {"kind": "raw", "text": _clip(json.dumps(block, indent=2, ensure_ascii=False))}
            )
    return {
        **message,
        "heading": HEADINGS.get(message["kind"], message["kind"]),
        "blocks": blocks,
    }


def _clip(text: Any) -> Any:
    """A tool's input, output or error as the page shows it: at most ``SHOWN_CHARS``
    (a page re-rendered live should not carry megabytes); the whole text is in
    ``/api/sessions/{id}/tools`` and the exports."""
    if not isinstance(text, str) or len(text) <= SHOWN_CHARS:
        return text
    more = len(text) - SHOWN_CHARS
    return f"{text[:SHOWN_CHARS]}\n… {more:,} more characters (the whole text: the session's API)"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and "text" in p]
        if parts:
            return "\n".join(str(p) for p in parts)
    return json.dumps(content, indent=2, ensure_ascii=False)
