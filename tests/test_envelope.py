"""hookclient.envelope: ids, build() on real and hostile stdin, redaction, read_stdin."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookclient import __version__
from hookclient import envelope as env
from hookclient.clock import parse_iso
from hookclient.envelope import REDACTED, StdinCapture, build, read_stdin, redact, source, uuid7
from receiver.envelopes import validate_envelope

FIXTURES = Path(__file__).parent / "fixtures"
KEYS = ("token", "secret", "password", "api_key", "apikey", "authorization")
LIMIT = 8 * 1024 * 1024
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NOW = 1_790_000_000.5  # exact in binary: no float rounding in the expected stamps


def samples() -> list[Path]:
    ours = sorted(p for p in FIXTURES.glob("*.json") if not p.name.startswith("hostile"))
    return ours + sorted((FIXTURES / "claude-2.1.197").glob("*.json"))


def capture(data: bytes, *, timed_out: bool = False) -> StdinCapture:
    return StdinCapture(data, len(data), False, timed_out)


def wrap(data: bytes, event_flag: str | None = None, **kw: Any) -> dict[str, Any]:
    return build(capture(data), event_flag=event_flag, redact_keys=KEYS, limit=LIMIT, **kw)


class Pipe:
    """A real pipe whose ends are each closed exactly once (fd numbers get reused)."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        self._open = {self.r, self.w}
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.write_errors: list[OSError] = []

    def close(self, fd: int) -> None:
        with self._lock:
            if fd in self._open:
                self._open.discard(fd)
                os.close(fd)

    def write_in_thread(self, data: bytes, *, close: bool) -> threading.Thread:
        """Write ``data`` from a thread (it may exceed the pipe buffer), then maybe close."""

        def run() -> None:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.w, view) :]
            except OSError as exc:  # the reader gave up and the read end was closed
                self.write_errors.append(exc)
            if close:
                self.close(self.w)

        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    p = Pipe()
    yield p
    p.close(p.r)  # a writer still blocked gets EPIPE and ends
    for thread in p.threads:
        thread.join(10)
    p.close(p.w)


# -- ids ---------------------------------------------------------------------------


def test_uuid7_format_and_version() -> None:
    for _ in range(200):
        value = uuid7()
        assert UUID7.match(value), value
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == value  # lowercase, hyphenated


def test_uuid7_carries_the_unix_milliseconds() -> None:
    value = uuid7(NOW)
    assert int(value.replace("-", "")[:12], 16) == int(NOW * 1000)


def test_uuid7_sorts_by_time_across_milliseconds() -> None:
    ids = [uuid7(NOW + (2 * i + 0.5) / 1000) for i in range(300)]  # one id per ms
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_uuid7_random_bits_differ_within_a_millisecond() -> None:
    ids = {uuid7(NOW) for _ in range(100)}
    assert len(ids) == 100


def test_trace_and_span_ids() -> None:
    e = wrap(b"{}")
    assert re.fullmatch(r"[0-9a-f]{32}", e["traceId"])
    assert re.fullmatch(r"[0-9a-f]{16}", e["spanId"])
    assert e["traceId"].strip("0") and e["spanId"].strip("0")
    assert wrap(b"{}")["traceId"] != e["traceId"]


# -- build() on real payloads ------------------------------------------------------


@pytest.mark.parametrize("path", samples(), ids=lambda p: p.name)
def test_build_each_sample(path: Path) -> None:
    data = path.read_bytes()
    payload = json.loads(data)
    e = wrap(data, event_flag="FlagShouldNotWin", now=NOW)

    assert e["schemaVersion"] == 1
    assert UUID7.match(e["requestId"])
    assert e["event"] == payload["hook_event_name"]
    assert e["sessionId"] == payload["session_id"]
    assert e["payload"] == redact(payload, KEYS)
    assert e["timestamp"] == "2026-09-21T14:13:20.500Z"
    assert abs(parse_iso(e["timestamp"]) - NOW) < 0.001
    for key in ("payloadError", "payloadRaw", "payloadTruncated", "payloadRawBase64"):
        assert key not in e
    src = e["source"]
    assert src["pid"] == os.getpid()
    assert src["client"] == f"hookclient/{__version__}"
    assert src["cwd"] == os.getcwd()
    assert isinstance(src["host"], str) and isinstance(src["user"], str)
    assert json.loads(env.dumps(e)) == e


def test_dumps_is_compact_utf8() -> None:
    e = wrap('{"hook_event_name":"Stop","prompt":"héllo ✓"}'.encode())
    raw = env.dumps(e)
    assert "héllo ✓".encode() in raw
    assert b'": ' not in raw and b", " not in raw.replace(b"\xe2\x9c\x93", b"")


# -- hostile stdin -----------------------------------------------------------------


def test_empty_stdin() -> None:
    e = wrap((FIXTURES / "hostile-empty.txt").read_bytes(), event_flag="Stop")
    assert e["payload"] is None
    assert e["payloadRaw"] == ""
    assert e["payloadError"] == "stdin was empty"
    assert e["event"] == "Stop"
    assert e["sessionId"] is None


def test_empty_stdin_that_timed_out_says_so() -> None:
    e = build(capture(b"", timed_out=True), event_flag=None, redact_keys=KEYS, limit=LIMIT)
    assert "stdin_timeout" in e["payloadError"]
    assert e["event"] == "unknown"


def test_truncated_json_is_kept_raw_and_sniffed() -> None:
    data = (FIXTURES / "hostile-truncated.txt").read_bytes()
    e = wrap(data)
    assert e["payload"] is None
    assert e["payloadRaw"] == data.decode()
    assert e["payloadError"].startswith("invalid JSON")
    assert e["event"] == "PostToolUse"
    assert e["sessionId"] == "abc"


def test_binary_stdin_round_trips_through_base64() -> None:
    data = (FIXTURES / "hostile-binary.bin").read_bytes()
    e = wrap(data, event_flag="Notification")
    assert e["payload"] is None
    assert base64.b64decode(e["payloadRawBase64"]) == data
    assert "not UTF-8" in e["payloadError"]
    assert e["event"] == "Notification"
    assert json.loads(env.dumps(e))["payloadRawBase64"] == e["payloadRawBase64"]


def test_json_array_is_kept_with_an_error() -> None:
    e = wrap((FIXTURES / "hostile-array.json").read_bytes())
    assert e["payload"] == [1, 2, 3]
    assert "list" in e["payloadError"]
    assert e["event"] == "unknown"
    assert e["sessionId"] is None


def test_json_array_payload_is_redacted_too() -> None:
    e = wrap(b'[{"token": "abc-secret-1"}, {"nested": {"Password": "pw-secret-2"}}]')
    assert e["payload"] == [{"token": REDACTED}, {"nested": {"Password": REDACTED}}]
    assert b"secret-1" not in env.dumps(e)
    assert b"secret-2" not in env.dumps(e)


def test_invalid_json_raw_text_is_redacted() -> None:
    data = b'{"hook_event_name":"Stop","api_key":"sk-live-secret-1","x":{"GitHub-Token" : '
    data += b'"ghp_secret\\"2","input_tokens":"5"},"password":"unterminated-secret-3'
    e = wrap(data)
    assert e["payload"] is None
    raw = env.dumps(e)
    for secret in (b"sk-live-secret-1", b"ghp_secret", b"unterminated-secret-3"):
        assert secret not in raw
    assert '"input_tokens":"5"' in e["payloadRaw"]  # only the sensitive values go
    assert e["event"] == "Stop"


@pytest.mark.parametrize(
    ("payload", "expected_event"),
    [
        ({"session_id": "s"}, "FromFlag"),
        ({"hook_event_name": "", "session_id": "s"}, "FromFlag"),
        ({"hook_event_name": 42, "session_id": "s"}, "FromFlag"),
        ({"hook_event_name": "Stop", "session_id": "s"}, "Stop"),
    ],
)
def test_event_falls_back_to_the_flag(payload: dict[str, Any], expected_event: str) -> None:
    assert wrap(json.dumps(payload).encode(), event_flag="FromFlag")["event"] == expected_event


def test_event_unknown_without_name_or_flag() -> None:
    e = wrap(b'{"session_id": 7}')
    assert e["event"] == "unknown"
    assert e["sessionId"] is None  # not a string


def test_over_the_limit_is_cut_and_counted() -> None:
    payload = {"hook_event_name": "PostToolUse", "session_id": "s1", "blob": "x" * 5000}
    data = json.dumps(payload).encode()
    limit = 1000
    cut = StdinCapture(data[:limit], len(data), True, False)
    e = build(cut, event_flag=None, redact_keys=KEYS, limit=limit)
    assert e["payload"] is None
    assert e["payloadTruncated"] is True
    assert e["payloadBytes"] == len(data)
    assert e["payloadRaw"] == data[:limit].decode()
    assert str(len(data)) in e["payloadError"]
    assert e["event"] == "PostToolUse"
    assert e["sessionId"] == "s1"


def test_truncated_payload_raw_text_is_redacted() -> None:
    payload = {"hook_event_name": "PreToolUse", "authorization": "Bearer abc-secret-9"}
    data = json.dumps({**payload, "blob": "y" * 5000}).encode()
    cut = StdinCapture(data[:200], len(data), True, False)
    e = build(cut, event_flag=None, redact_keys=KEYS, limit=200)
    assert b"abc-secret-9" not in env.dumps(e)
    assert '"authorization": "[REDACTED]"' in e["payloadRaw"]


# -- redaction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "TOKEN",
        "github_token",
        "GITHUB_TOKEN",
        "token_value",
        "x-api-token",
        "X-Api-Key",
        "api_key",
        "apiKey",
        "ApiKey",
        "Authorization",
        "password",
        "db_password",
        "client_secret",
        "SECRET",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert env._sensitive(key, KEYS)
    assert redact({key: "v", "other": "w"}, KEYS) == {key: REDACTED, "other": "w"}


@pytest.mark.parametrize(
    "key",
    ["input_tokens", "output_tokens", "cache_read_input_tokens", "tokenizer", "session_id", ""],
)
def test_not_sensitive_keys(key: str) -> None:
    assert not env._sensitive(key, KEYS)
    assert redact({key: 5}, KEYS) == {key: 5}


def test_redaction_reaches_nested_dicts_and_lists() -> None:
    payload = {
        "hook_event_name": "PostToolUse",
        "tool_input": {
            "headers": [{"Authorization": "Bearer x"}, {"Accept": "json"}],
            "env": {"GITHUB_TOKEN": {"deep": "object"}, "PATH": "/bin"},
        },
        "usage": {"input_tokens": 12, "output_tokens": 3},
        "list": [[{"password": "p"}]],
    }
    assert redact(payload, KEYS) == {
        "hook_event_name": "PostToolUse",
        "tool_input": {
            "headers": [{"Authorization": REDACTED}, {"Accept": "json"}],
            "env": {"GITHUB_TOKEN": REDACTED, "PATH": "/bin"},
        },
        "usage": {"input_tokens": 12, "output_tokens": 3},
        "list": [[{"password": REDACTED}]],
    }
    assert payload["list"] == [[{"password": "p"}]]  # the input is not mutated


def test_build_redacts_before_anything_is_written() -> None:
    e = wrap(b'{"hook_event_name":"Stop","tool_input":{"api_key":"sk-123"}}')
    assert e["payload"]["tool_input"]["api_key"] == REDACTED
    assert b"sk-123" not in env.dumps(e)


def test_no_redact_keys_keeps_everything() -> None:
    assert redact({"token": "t"}, ()) == {"token": "t"}


def test_custom_redact_keys() -> None:
    assert redact({"cookie": "c", "token": "t"}, ("cookie",)) == {"cookie": REDACTED, "token": "t"}


# -- read_stdin --------------------------------------------------------------------


def test_read_until_eof(pipe: Pipe) -> None:
    data = json.dumps({"hook_event_name": "Stop", "x": "y" * 200_000}).encode()
    thread = pipe.write_in_thread(data, close=True)
    got = read_stdin(pipe.r, timeout=10, limit=LIMIT)
    thread.join(5)
    assert got == StdinCapture(data, len(data), False, False)


def test_empty_pipe_closed_at_once(pipe: Pipe) -> None:
    pipe.close(pipe.w)
    assert read_stdin(pipe.r, timeout=10, limit=LIMIT) == StdinCapture(b"", 0, False, False)


def test_complete_json_on_a_pipe_left_open_returns_without_timeout(
    pipe: Pipe,
) -> None:
    data = b'{"hook_event_name": "PreToolUse", "tool_input": {"a": [1, 2]}}\n'
    thread = pipe.write_in_thread(data, close=False)
    got = read_stdin(pipe.r, timeout=10, limit=LIMIT)
    thread.join(5)
    assert got.data == data
    assert got.timed_out is False
    assert got.truncated is False


def test_incomplete_json_on_a_pipe_left_open_times_out(pipe: Pipe) -> None:
    data = b'{"hook_event_name": "PreToolUse", "tool_input": {'
    thread = pipe.write_in_thread(data, close=False)
    got = read_stdin(pipe.r, timeout=0.3, limit=LIMIT)
    thread.join(5)
    assert got.timed_out is True
    assert got.data == data
    assert got.total_bytes == len(data)
    e = build(got, event_flag=None, redact_keys=KEYS, limit=LIMIT)
    assert "stdin stayed open" in e["payloadError"]
    assert e["event"] == "PreToolUse"


def test_silent_open_pipe_times_out_empty(pipe: Pipe) -> None:
    got = read_stdin(pipe.r, timeout=0.3, limit=LIMIT)
    assert got == StdinCapture(b"", 0, False, True)


def test_over_the_limit_is_drained_and_counted(pipe: Pipe) -> None:
    limit = 100_000
    data = json.dumps({"hook_event_name": "PostToolUse", "blob": "z" * 3_000_000}).encode()
    thread = pipe.write_in_thread(data, close=True)
    got = read_stdin(pipe.r, timeout=10, limit=limit)
    thread.join(5)
    assert not thread.is_alive()  # everything was drained: the writer was not left blocked
    assert got.data == data[:limit]
    assert got.total_bytes == len(data)
    assert got.truncated is True
    assert got.timed_out is False
    e = build(got, event_flag=None, redact_keys=KEYS, limit=limit)
    assert e["payloadTruncated"] is True
    assert e["payloadBytes"] == len(data)


def test_exactly_at_the_limit_is_not_truncated(pipe: Pipe) -> None:
    data = b'{"a": "' + b"q" * 993 + b'"}'
    thread = pipe.write_in_thread(data, close=True)
    got = read_stdin(pipe.r, timeout=10, limit=len(data))
    thread.join(5)
    assert got == StdinCapture(data, len(data), False, False)


@pytest.mark.parametrize("depth", [600, 5000])
def test_hostile_nesting_is_captured_not_crashed(depth: int) -> None:
    data = ('{"token":"deep-secret","a":' * depth + "1" + "}" * depth).encode()
    e = wrap(data, event_flag="Stop")
    assert e["payload"] is None
    assert e["payloadError"]
    assert e["event"] == "Stop"
    raw = env.dumps(e)
    assert b"deep-secret" not in raw
    assert json.loads(raw)["requestId"] == e["requestId"]


def test_deeply_nested_array_on_a_pipe_is_read(pipe: Pipe) -> None:
    data = b"[" * 100_000 + b"]" * 100_000
    thread = pipe.write_in_thread(data, close=True)
    got = read_stdin(pipe.r, timeout=10, limit=LIMIT)
    thread.join(5)
    assert got.data == data


# -- value patterns (redact_patterns) ----------------------------------------------------


def example_patterns() -> tuple[str, ...]:
    """The patterns config/hookclient.example.toml suggests (commented out there)."""
    import tomllib

    text = (Path(__file__).parents[1] / "config" / "hookclient.example.toml").read_text()
    start = text.index("# redact_patterns = [")
    block = text[start : text.index("# ]", start) + 3]
    uncommented = "\n".join(line.removeprefix("#").strip() for line in block.splitlines())
    return tuple(tomllib.loads(uncommented)["redact_patterns"])


def with_patterns(raw: bytes, patterns: tuple[str, ...]) -> dict[str, Any]:
    capture = StdinCapture(raw, len(raw), False, False)
    return build(capture, event_flag=None, redact_keys=(), limit=1 << 20, redact_patterns=patterns)


def test_a_secret_in_a_bash_command_is_redacted_when_patterns_are_configured() -> None:
    payload = {
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {
            "command": "API_KEY=sk-123 curl -H 'Authorization: Bearer abcdefgh12345' https://x",
            "description": "call the API",
        },
        "transcript": [{"text": "export GITHUB_TOKEN=ghp_" + "a" * 30}, "AKIAABCDEFGHIJKLMNOP"],
    }
    env = with_patterns(json.dumps(payload).encode(), example_patterns())
    got = env["payload"]
    assert got["tool_input"]["command"] == (
        "API_KEY=[REDACTED] curl -H 'Authorization: Bearer [REDACTED]' https://x"
    )
    assert got["tool_input"]["description"] == "call the API"
    assert got["transcript"] == [{"text": "export GITHUB_TOKEN=[REDACTED]"}, "[REDACTED]"]
    assert "sk-123" not in json.dumps(env) and "abcdefgh12345" not in json.dumps(env)


def test_without_patterns_the_payload_is_verbatim() -> None:
    payload = {"tool_input": {"command": "API_KEY=sk-123 curl https://x"}}
    assert with_patterns(json.dumps(payload).encode(), ())["payload"] == payload


def test_patterns_also_scrub_a_payload_kept_as_text() -> None:
    raw = b'{"tool_input": {"command": "PASSWORD=hunter2 ./deploy'  # cut: not JSON
    env = with_patterns(raw, example_patterns())
    assert env["payload"] is None and "hunter2" not in env["payloadRaw"]
    assert "PASSWORD=[REDACTED]" in env["payloadRaw"]


@pytest.mark.parametrize(
    ("payload", "flag", "event", "session"),
    [
        ({"hook_event_name": "Transcript", "session_id": "s"}, None, "unknown", "s"),
        ({"hook_event_name": "Heartbeat"}, "Heartbeat", "unknown", None),
        ({"hook_event_name": "", "session_id": "x" * 201}, "Stop", "Stop", None),
        ({"hook_event_name": "Stop", "session_id": "x" * 200}, None, "Stop", "x" * 200),
    ],
)
def test_the_envelope_never_claims_what_its_schema_refuses(
    payload: dict[str, Any], flag: str | None, event: str, session: str | None
) -> None:
    """The daemon's own event names and a session id over 200 characters would make the
    store refuse the event (422, so failed/): the envelope leaves them to the payload."""
    data = json.dumps(payload).encode()
    built = build(StdinCapture(data, len(data), False, False), event_flag=flag,
                  redact_keys=(), limit=1 << 20)  # fmt: skip
    assert (built["event"], built["sessionId"]) == (event, session)
    assert built["payload"] == payload
    assert validate_envelope(json.loads(json.dumps(built))).event == event


def test_a_machine_without_a_name_sends_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = type("U", (), {"nodename": ""})()
    monkeypatch.setattr(os, "uname", lambda: fake)
    assert source()["host"] == "unknown"
