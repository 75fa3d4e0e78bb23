"""The envelope: Claude Code's hook payload wrapped with the ids that trace it.

Everything on stdin is kept.  Valid JSON goes into ``payload`` verbatim (after key
redaction); anything else (empty, truncated, not UTF-8, binary) still becomes an
envelope, with ``payload: null``, the text in ``payloadRaw`` (the bytes as base64 in
``payloadRawBase64`` when they are not UTF-8) and the reason in ``payloadError``.

stdin is read in chunks with a deadline: Claude Code 2.1.197 closes it after the
payload, but other callers may leave it open, and a hook that waits for EOF forever
would hang the session.  The read stops at EOF, at ``stdin_timeout``, or once a complete
JSON value has arrived and the pipe has stayed quiet for a moment.
"""

from __future__ import annotations

import os
import select
import time

from hookclient import __version__, jsoncodec
from hookclient.clock import utc_iso

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any

SCHEMA_VERSION = 1
CLIENT = f"hookclient/{__version__}"
REDACTED = "[REDACTED]"
CHUNK = 1024 * 1024
#: Event names the daemon's own envelopes use (transcript.json, heartbeat.json): a hook
#: payload that claims one is sent as "unknown", not as a malformed Transcript.
_NOT_HOOKS = ("", "Transcript", "Heartbeat")
#: The longest sessionId the envelope schema takes (a Claude Code session id is a UUID).
MAX_SESSION_ID = 200
#: After a complete JSON value, this much silence on an open pipe ends the read.
QUIET_AFTER_JSON = 0.05


class StdinCapture:
    """What the hook read: at most ``limit`` bytes kept, the true size counted.

    A plain class, not a frozen dataclass: the hook builds one per event, and its
    path leaves the dataclasses module out (BENCHMARKS.md "Hook fast path").
    """

    __slots__ = ("data", "timed_out", "total_bytes", "truncated")

    def __init__(self, data: bytes, total_bytes: int, truncated: bool, timed_out: bool) -> None:
        self.data = data
        self.total_bytes = total_bytes
        self.truncated = truncated
        self.timed_out = timed_out

    def _values(self) -> tuple[bytes, int, bool, bool]:
        return (self.data, self.total_bytes, self.truncated, self.timed_out)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StdinCapture):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        data, total, truncated, timed_out = self._values()
        return (
            f"StdinCapture(data={data!r}, total_bytes={total!r}, "
            f"truncated={truncated!r}, timed_out={timed_out!r})"
        )


def read_stdin(fd: int, *, timeout: float, limit: int) -> StdinCapture:
    """Read ``fd`` until EOF, a quiet complete JSON value, or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    kept = total = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _captured(chunks, total, limit, timed_out=True)
        if not _readable(fd, 0):
            # The pipe is quiet for now.  A whole JSON value already here, followed by a
            # moment of silence, ends the read; otherwise wait for more up to the deadline.
            if kept and total <= limit and _looks_complete(chunks):
                if not _readable(fd, min(QUIET_AFTER_JSON, remaining)):
                    return _captured(chunks, total, limit, timed_out=False)
            elif not _readable(fd, remaining):
                return _captured(chunks, total, limit, timed_out=True)
        chunk = os.read(fd, CHUNK)
        if not chunk:
            return _captured(chunks, total, limit, timed_out=False)
        total += len(chunk)
        if kept <= limit:  # past the limit keep counting (and draining), stop keeping
            chunks.append(chunk)
            kept += len(chunk)


def _captured(chunks: list[bytes], total: int, limit: int, *, timed_out: bool) -> StdinCapture:
    data = b"".join(chunks)
    return StdinCapture(data[:limit], total, total > limit, timed_out)


def _readable(fd: int, wait: float) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], max(wait, 0))
    except (OSError, ValueError):  # not selectable (a Windows pipe): block on the read
        return True
    return bool(ready)


def _looks_complete(chunks: list[bytes]) -> bool:
    """Cheap test first (ends in } or ]), a real parse only then."""
    if not chunks or not chunks[-1].rstrip().endswith((b"}", b"]")):
        return False
    try:
        jsoncodec.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        return False
    return True


def uuid7(now: float | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix ms, then random bits; sorts by time."""
    ms = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68  # 12 bits
    rand_b = rand & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_hex(nbytes: int) -> str:
    """W3C trace ids and span ids: lowercase hex, never all zeros."""
    while True:
        value = os.urandom(nbytes).hex()
        if value.strip("0"):
            return value


def redact(value: Any, keys: tuple[str, ...]) -> Any:
    """Replace the values of matching keys, at any depth, in objects and arrays."""
    if not keys:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _sensitive(k, keys) else redact(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    return value


def redact_strings(value: Any, patterns: tuple[str, ...]) -> Any:
    """In every string at any depth (keys stay), replace what each pattern's first group
    matches, or its whole match if it has no group, with ``[REDACTED]``.  For secrets
    that are not under a sensitive key: ``API_KEY=sk-123 curl ...`` in a Bash command.
    Off by default: payloads stay verbatim but for ``redact_keys`` (SECURITY.md)."""
    compiled = [_text_pattern(p) for p in patterns]

    def scrub(text: str) -> str:
        for pattern in compiled:
            text = pattern.sub(_redact_match, text)
        return text

    stack: list[Any] = []
    root: list[Any] = [value]
    stack.append((root, 0))
    while stack:  # iterative: a payload nested too deep for recursion is still scrubbed
        holder, key = stack.pop()
        item = holder[key]
        if isinstance(item, str):
            holder[key] = scrub(item)
        elif isinstance(item, dict):
            stack.extend((item, k) for k in item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
    return root[0]


def _text_pattern(source: str) -> re.Pattern[str]:
    import re

    return re.compile(source)


def _redact_match(match: re.Match[str]) -> str:
    if not match.re.groups or match.group(1) is None:
        return REDACTED
    whole, start = match.group(0), match.start(1) - match.start(0)
    return whole[:start] + REDACTED + whole[start + len(match.group(1)) :]


def _sensitive(key: str, keys: tuple[str, ...]) -> bool:
    """``token`` matches token, github_token, x-api-token, token_value; not input_tokens."""
    name = key.lower().replace("-", "_")
    for k in keys:
        k = k.lower().replace("-", "_")
        if name == k or name.endswith("_" + k) or name.startswith(k + "_"):
            return True
    return False


#: In text that is not valid JSON: a short "key" followed by a colon, and its value (a
#: string, possibly unterminated, or a bare word up to the next delimiter).  Compiled on
#: first use: only broken payloads need them, and compiling costs every hook run time.
_RAW_KEY = rb"[\w.\-]{1,200}\Z"
_RAW_VALUE = rb'\s*:\s*("[^"\\]*(?:\\.[^"\\]*)*"?|[^,}\]\s]*)'


def _pattern(source: bytes) -> re.Pattern[bytes]:
    import re  # json has imported it already; re caches compiled patterns

    return re.compile(source)


def redact_raw(data: bytes, keys: tuple[str, ...]) -> bytes:
    """Best-effort redaction of JSON-looking text that did not parse (cut or broken).

    Finds each occurrence of a redact key (bytes.find on an ASCII-lowered copy, linear),
    checks that it lies in a quoted key followed by a colon that :func:`_sensitive`
    accepts, and replaces the value with "[REDACTED]".  Base64 copies of undecodable
    stdin are left exact.
    """
    if not keys or not data:
        return data
    lowered = data.lower()
    needles = set()
    for k in keys:
        k = k.lower().replace("-", "_")
        needles.update({k.encode("utf-8"), k.replace("_", "-").encode("utf-8")})
    spans: list[tuple[int, int]] = []
    raw_key, raw_value = _pattern(_RAW_KEY), _pattern(_RAW_VALUE)
    for needle in needles - {b""}:
        at = lowered.find(needle)
        while at >= 0:
            start = data.rfind(b'"', max(0, at - 200), at)
            end = data.find(b'"', at + len(needle), at + len(needle) + 200)
            if start >= 0 and end >= 0 and raw_key.match(data, start + 1, end):
                name = data[start + 1 : end].decode("ascii", "replace")
                value = raw_value.match(data, end + 1)
                if value is not None and _sensitive(name, keys):
                    spans.append(value.span(1))
            at = lowered.find(needle, at + 1)
    if not spans:
        return data
    out: list[bytes] = []
    pos = 0
    for begin, stop in sorted(set(spans)):
        if begin >= pos:
            out += [data[pos:begin], b'"' + REDACTED.encode() + b'"']
            pos = stop
    out.append(data[pos:])
    return b"".join(out)


def build(
    capture: StdinCapture,
    *,
    event_flag: str | None,
    redact_keys: tuple[str, ...],
    limit: int,
    now: float | None = None,
    redact_patterns: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Wrap what was read into an envelope (README "The envelope and its headers")."""
    now = time.time() if now is None else now
    body: dict[str, Any] = _decode(capture, limit, redact_keys)
    if redact_patterns:
        body = redact_strings(body, redact_patterns)
    payload = body.get("payload")
    if isinstance(payload, dict | list):  # a JSON array is kept, so it is redacted too
        try:
            body["payload"] = payload = redact(payload, redact_keys)
        except RecursionError:  # hostile nesting: keep it as (redacted) text instead
            body = {
                "payload": None,
                "payloadRaw": redact_raw(capture.data, redact_keys).decode("utf-8", "replace"),
                "payloadError": "payload is nested too deeply to redact; kept as text",
            }
            payload = None
    if isinstance(payload, dict):
        name, session = payload.get("hook_event_name"), payload.get("session_id")
    else:
        name, session = _sniff(body.get("payloadRaw") or "")
    event = name if isinstance(name, str) and name not in _NOT_HOOKS else None
    event = event or (event_flag if event_flag not in _NOT_HOOKS else None) or "unknown"
    if not isinstance(session, str) or len(session) > MAX_SESSION_ID:
        session = None  # the payload keeps it; the envelope's field is one the store takes
    return wrap(event, session, now, body)


def wrap(event: str, session_id: str | None, now: float, body: dict[str, Any]) -> dict[str, Any]:
    """An envelope: new ids (requestId, traceId, spanId), the event, its session, the
    time and the source, then ``body`` (``payload`` and what goes with it)."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "requestId": uuid7(now),
        "traceId": random_hex(16),
        "spanId": random_hex(8),
        "event": event,
        "sessionId": session_id,
        "timestamp": utc_iso(now),
        "source": source(),
        **body,
    }


def _decode(capture: StdinCapture, limit: int, redact_keys: tuple[str, ...]) -> dict[str, Any]:
    data = capture.data
    if capture.truncated:
        return {
            "payload": None,
            "payloadRaw": redact_raw(data, redact_keys).decode("utf-8", "replace"),
            "payloadTruncated": True,
            "payloadBytes": capture.total_bytes,
            "payloadError": (
                f"payload of {capture.total_bytes} bytes is over max_payload_bytes ({limit}); "
                f"the first {len(data)} bytes are kept in payloadRaw"
            ),
        }
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        import base64

        return {
            "payload": None,
            "payloadRaw": data.decode("utf-8", "replace"),
            "payloadRawBase64": base64.b64encode(data).decode("ascii"),
            "payloadError": f"stdin is not UTF-8 ({exc.reason} at byte {exc.start})",
        }
    if not text.strip():
        suffix = f" after {capture.total_bytes} bytes" if capture.total_bytes else ""
        why = "stdin stayed open past stdin_timeout" if capture.timed_out else "stdin was empty"
        return {"payload": None, "payloadRaw": text, "payloadError": why + suffix}
    try:
        payload = jsoncodec.loads(text)
    except (ValueError, RecursionError) as exc:
        late = " (stdin stayed open past stdin_timeout)" if capture.timed_out else ""
        return {
            "payload": None,
            "payloadRaw": redact_raw(data, redact_keys).decode("utf-8"),
            "payloadError": f"invalid JSON: {exc}{late}",
        }
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        return {"payload": payload, "payloadError": f"payload is a JSON {kind}, not an object"}
    return {"payload": payload}


def _sniff(raw: str) -> tuple[str | None, str | None]:
    """Best effort on a broken payload: its event and session still make it traceable."""
    import re

    name = re.search(r'"hook_event_name"\s*:\s*"([A-Za-z]{1,64})"', raw)
    session = re.search(r'"session_id"\s*:\s*"([^"\\]{1,128})"', raw)
    return (name and name.group(1)), (session and session.group(1))


def source() -> dict[str, Any]:
    """Where the event came from.  Cheap calls only: this runs on every hook."""
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        user = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    return {
        "host": _hostname(),
        "user": user,
        "cwd": cwd,
        "pid": os.getpid(),
        "client": CLIENT,
    }


def _hostname() -> str:
    """The machine's name; "unknown" when it has none (the envelope schema needs one)."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename) or "unknown"
    import platform

    return platform.node() or "unknown"


def dumps(envelope: dict[str, Any]) -> bytes:
    """The exact bytes that are POSTed and spooled: compact UTF-8 JSON."""
    return jsoncodec.dumps(envelope, ensure_ascii=False).encode("utf-8")
