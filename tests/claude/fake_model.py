"""A fake Anthropic Messages API for running the real Claude Code CLI offline, by script.

The CLI (2.1.197, observed) sends ``HEAD /`` at start, then one ``POST
/v1/messages?beta=true`` with ``"stream": true`` per model turn of the conversation. This
server answers those turns from a script, a list of assistant turns, each a list of
blocks (:class:`Text`, :class:`ToolUse`), streamed as server-sent events exactly in the
order the real API uses (message_start, content_block_start, content_block_delta,
content_block_stop, message_delta with the stop_reason, message_stop). Non-streaming
requests get the same message as one JSON body. Anything else gets a harmless answer:
200 with an empty body for ``HEAD``, ``{"input_tokens": N}`` for token counting, a 404
error object in the API's shape otherwise.

Which turn to answer is read from the request, not from a counter: turn k answers a
conversation that already holds k assistant messages. A repeated request therefore gets
the same answer, and a request past the end of the script (a hook that blocked Stop and
made the model run again, say) gets a visible ``EXHAUSTED`` text that no test expects.

Scripted versus side requests: the CLI may call ``/v1/messages`` for its own purposes
(a session title, a summary, a topic check; token counting has its own path). Those
calls carry no ``tools``, while every turn of the agent conversation offers the full
tool list (``Bash``, ``Read``, ...). So a ``POST /v1/messages`` whose body has a
non-empty ``tools`` array is *scripted*; any other is a *side* request, answered with a
short plain text and kept out of :meth:`FakeModel.scripted`. With
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` the pinned print-mode CLI was seen to
send none, but the split keeps the tests honest if it starts to.

Starlette and uvicorn (already test dependencies, via the receiver extra) serve it in a
thread on a socket bound to 127.0.0.1 port 0 before the thread starts, so the port is
known at once and nothing races for it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

EXHAUSTED = "EXHAUSTED: the fake model's script has no turn for this request"
#: What a thinking block is signed with (the CLI keeps it; nobody checks it offline).
SIGNATURE = "ZmFrZS1zaWduYXR1cmU="
SIDE_ANSWER = "ok"
#: Text is streamed in deltas of this many characters, so a long answer really streams.
CHUNK = 200


@dataclass(frozen=True)
class Text:
    """A text block of an assistant turn."""

    text: str


@dataclass(frozen=True)
class Thinking:
    """A thinking block (streamed as thinking deltas, then a signature)."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    """A tool_use block: the CLI runs ``name`` with ``input`` and sends back a tool_result."""

    name: str
    input: dict[str, Any]


Block = Text | Thinking | ToolUse
Turn = Sequence[Block]


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it was not JSON, or None when empty

    @property
    def is_messages(self) -> bool:
        return self.method == "POST" and self.path.rstrip("/") == "/v1/messages"

    @property
    def is_scripted(self) -> bool:
        """A turn of the agent conversation: it offers tools (see the module docstring)."""
        return self.is_messages and isinstance(self.body, dict) and bool(self.body.get("tools"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool_result blocks of the conversation's last user message."""
        for message in reversed(self.messages):
            if message.get("role") == "user" and isinstance(message.get("content"), list):
                return [b for b in message["content"] if b.get("type") == "tool_result"]
        return []


def turn_index(body: dict[str, Any]) -> int:
    """How many assistant turns the conversation already holds: the script index to answer."""
    messages = body.get("messages") or []
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")


def tool_use_id(turn: int, index: int, agent: int | None = None) -> str:
    """Deterministic ids, so a test can find the tool_result of a given call (a subagent's
    calls carry its number: its turns count from 0 too)."""
    who = "" if agent is None else f"a{agent}_"
    return f"toolu_fake_{who}{turn:02d}_{index:02d}"


def first_user_text(body: dict[str, Any]) -> str:
    """The text of the conversation's first user message (a subagent's: its Task prompt)."""
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [b.get("text", "") for b in content if isinstance(b, dict)]
            return "\n".join(t for t in texts if isinstance(t, str))
        return ""
    return ""


def stop_reason(blocks: Iterable[Block]) -> str:
    return "tool_use" if any(isinstance(b, ToolUse) for b in blocks) else "end_turn"


def content_json(
    turn: int, blocks: Sequence[Block], agent: int | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        if isinstance(block, Text):
            out.append({"type": "text", "text": block.text})
        elif isinstance(block, Thinking):
            out.append({"type": "thinking", "thinking": block.text, "signature": SIGNATURE})
        else:
            tool = {"type": "tool_use", "id": tool_use_id(turn, i, agent), "name": block.name}
            out.append({**tool, "input": block.input})
    return out


def usage(output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": 10,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_events(
    message_id: str, model: str, turn: int, blocks: Sequence[Block], agent: int | None = None
) -> list[bytes]:
    """The server-sent events of one assistant message, in the real API's order."""
    events = [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage(1),
                },
            },
        ),
        sse("ping", {"type": "ping"}),
    ]
    for i, block in enumerate(blocks):
        if isinstance(block, Text):
            start: dict[str, Any] = {"type": "text", "text": ""}
            pieces = [block.text[n : n + CHUNK] for n in range(0, len(block.text), CHUNK)]
            deltas = [{"type": "text_delta", "text": p} for p in pieces or [""]]
        elif isinstance(block, Thinking):
            start = {"type": "thinking", "thinking": "", "signature": ""}
            pieces = [block.text[n : n + CHUNK] for n in range(0, len(block.text), CHUNK)]
            deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces or [""]]
            deltas.append({"type": "signature_delta", "signature": SIGNATURE})
        else:
            start = {"type": "tool_use", "id": tool_use_id(turn, i, agent), "name": block.name}
            start["input"] = {}
            raw = json.dumps(block.input)
            pieces = [raw[n : n + CHUNK] for n in range(0, len(raw), CHUNK)]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        block_start = {"type": "content_block_start", "index": i, "content_block": start}
        events.append(sse("content_block_start", block_start))
        for delta in deltas:
            block_delta = {"type": "content_block_delta", "index": i, "delta": delta}
            events.append(sse("content_block_delta", block_delta))
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(blocks), "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


@dataclass
class FakeModel:
    """The server: ``with FakeModel(script) as model: ... model.url ... model.scripted()``."""

    script: Sequence[Turn]
    #: a subagent's script, by a text its Task prompt contains: the subagent's
    #: conversation starts anew (its first user message is the prompt), so its turns
    #: count from 0 and cannot come from the main script
    agents: dict[str, Sequence[Turn]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ids: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _sock: socket.socket | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        assert self._sock is not None, "FakeModel is not started"
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        """What ``ANTHROPIC_BASE_URL`` gets."""
        return f"http://127.0.0.1:{self.port}"

    def scripted(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.is_scripted]

    def side(self) -> list[Recorded]:
        """Requests to /v1/messages that are not turns of the scripted conversation."""
        with self._lock:
            return [r for r in self.requests if r.is_messages and not r.is_scripted]

    def reset(self) -> None:
        """Forget the recorded requests (the benchmark reuses one server for many sessions)."""
        with self._lock:
            self.requests.clear()

    # -- serving ---------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        record = Recorded(
            request.method, request.url.path, request.url.query, dict(request.headers), body
        )
        with self._lock:
            self.requests.append(record)
        if request.method == "HEAD":
            return Response(b"", status_code=200)
        if record.path.rstrip("/") == "/v1/messages/count_tokens":
            return JSONResponse({"input_tokens": 10})
        if not record.is_messages or not isinstance(body, dict):
            return JSONResponse(
                {"type": "error", "error": {"type": "not_found_error", "message": "fake model"}},
                status_code=404,
            )
        agent: int | None = None
        if record.is_scripted:
            turn = turn_index(body)
            agent, script = self._script_for(body)
            blocks: Sequence[Block] = script[turn] if turn < len(script) else [Text(EXHAUSTED)]
        else:
            turn, blocks = 0, [Text(SIDE_ANSWER)]
        message_id = f"msg_fake_{next(self._ids):04d}"
        model = str(body.get("model", "claude-fake"))
        if body.get("stream"):
            events = stream_events(message_id, model, turn, blocks, agent)

            async def send() -> AsyncIterator[bytes]:
                for event in events:
                    yield event
                    await asyncio.sleep(0)  # one write per event, as a real stream arrives

            return StreamingResponse(
                send(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
            )
        return JSONResponse(
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content_json(turn, blocks, agent),
                "stop_reason": stop_reason(blocks),
                "stop_sequence": None,
                "usage": usage(5),
            }
        )

    def _script_for(self, body: dict[str, Any]) -> tuple[int | None, Sequence[Turn]]:
        """The main script, or the subagent's whose marker the first prompt holds."""
        first = first_user_text(body)
        for number, (marker, script) in enumerate(self.agents.items()):
            if marker in first:
                return number, script
        return None, self.script

    def start(self) -> FakeModel:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])
        self._sock = socket.create_server(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_level="error", lifespan="off", ws="none", access_log=False)
        self._server = uvicorn.Server(config)
        sockets = [self._sock]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": sockets}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake model server did not start")
            time.sleep(0.01)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> FakeModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
