"""Property tests (hypothesis) on every surface that reads untrusted bytes.

Each property: arbitrary input never raises anything but the documented error type, and
never loses the event. Bounded (max_examples) so that `make test` stays quick; run with
``--hypothesis-show-statistics`` to see how many inputs each one tried.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookclient.config import load_config
from hookclient.envelope import StdinCapture, build, dumps
from hookclient.errors import ConfigError, CorruptFile
from hookclient.outcome import parse_retry_after
from hookclient.spool import Spool, State, new_state
from tests.test_envelope import example_patterns

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
UUID7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)
stdin_bytes = st.one_of(
    st.binary(max_size=4096),
    st.text(max_size=2048).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()[: len(json.dumps(v)) // 2]),  # cut
)


@FUZZ
@given(data=stdin_bytes, patterns=st.booleans())
def test_any_stdin_becomes_an_envelope_that_keeps_it(data: bytes, patterns: bool) -> None:
    env = build(
        StdinCapture(data, len(data), False, False),
        event_flag="Fuzz",
        redact_keys=("token", "secret"),
        limit=1 << 20,
        redact_patterns=example_patterns() if patterns else (),
    )
    import re

    assert re.fullmatch(UUID7, env["requestId"])
    body = dumps(env)  # what is spooled and POSTed: always serialisable
    assert json.loads(body)["requestId"] == env["requestId"]
    kept = env.get("payload") is not None or any(
        k in env for k in ("payloadRaw", "payloadRawBase64")
    )
    assert kept or data.strip() in (b"", b"null"), "the input left no trace in the envelope"


@FUZZ
@given(data=st.binary(max_size=4096) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_spool_file_is_a_record_or_corrupt_never_a_crash(tmp_path: Path, data: bytes) -> None:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    path = spool.dir(State.PENDING) / "20260101T000000000000Z-x.json"
    path.write_bytes(data)
    try:
        record = spool.read(path)
    except CorruptFile as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert isinstance(record.envelope["requestId"], str)


@FUZZ
@given(envelope=json_values)
def test_a_record_written_is_read_back_the_same(tmp_path: Path, envelope: object) -> None:
    spool = Spool(tmp_path / "spool")
    doc = {"requestId": "01a0c450-0000-7000-8000-000000000001", "payload": envelope}
    record = spool.add(doc, new_state(1.0, due=1.0), State.PENDING)
    assert spool.read(record.path).envelope == doc
    record.path.unlink()


toml_values = st.one_of(
    st.text(max_size=30).map(json.dumps),
    st.integers(-(10**6), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: "nan" if math.isnan(f) else ("inf" if math.isinf(f) else repr(f))
    ),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.lists(st.text(max_size=10), max_size=3).map(json.dumps),
    st.lists(st.floats(-10, 1e6), max_size=3).map(json.dumps),
)
sections = ("endpoint", "delivery", "queue", "logs", "nonsense")
keys = (
    "url",
    "timeout",
    "verify",
    "mode",
    "inline_attempts",
    "redact_keys",
    "redact_patterns",
    "backoff",
    "jitter",
    "max_retries",
    "level",
    "max_bytes",
    "dir",
    "workers",
    "bogus",
)
toml_docs = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.tuples(st.sampled_from(sections), st.sampled_from(keys), toml_values), max_size=8
    ).map(lambda items: "".join(f"[{s}]\n{k} = {v}\n" for s, k, v in items)),
)


@FUZZ
@given(text=toml_docs)
def test_any_config_file_is_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config([path], environ={})
    except ConfigError as exc:
        assert "\n" not in str(exc).strip()
    lenient = load_config([path], environ={}, strict=False)  # the hook's way: never raises
    assert lenient.delivery.inline_attempts >= 1 and lenient.queue.backoff


@FUZZ
@given(value=st.one_of(st.none(), st.text(max_size=60), st.from_regex(r"\s*\d{1,30}\s*")))
def test_any_retry_after_is_a_delay_or_none(value: str | None) -> None:
    delay = parse_retry_after(value, 1_790_000_000.0)
    assert delay is None or (isinstance(delay, float) and delay >= 0)


@pytest.mark.parametrize(
    "value",
    ["²", "١٢", "9" * 400, "Wed, 21 Oct 10000 07:28:00 GMT", "Mon, 01 Jan 0001 00:00:00 +2359"],
)
def test_retry_after_edge_cases(value: str) -> None:
    delay = parse_retry_after(value, 1_790_000_000.0)
    assert delay is None or delay >= 0


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 100))
@given(
    body=st.binary(max_size=2048) | json_values.map(lambda v: json.dumps(v).encode()),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/json; charset=latin-1"]
    ),
)
def test_any_request_body_gets_a_4xx_or_200_never_a_500(
    tmp_path: Path, body: bytes, content_type: str
) -> None:
    from tests.test_receiver import AUTH, running

    db = (
        tmp_path / f"fuzz-{uuid.uuid4().hex}.db"
    )  # one per example: a failure leaves no rows behind
    with running(str(db), max_body_bytes=1024) as client:
        headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
        response = client.post("/hooks", content=body, headers=headers)
        audit = client.get("/audit", headers=AUTH).json()["audit"]
    assert response.status_code in (200, 400, 413, 415, 422), response.text
    assert (response.status_code == 415) == (content_type == "text/plain")  # before the body
    batch = response.json().get("results") if response.status_code == 200 else None
    if batch is not None:  # a JSON array: one audit row per item, in order
        assert len(audit) == len(batch)
        answers = {"accepted": "SUCCESS", "duplicate": "DUPLICATE", "invalid": "INVALID"}
        assert [a["status"] for a in reversed(audit)] == [answers[r["status"]] for r in batch]
    else:
        assert len(audit) == 1 and audit[0]["http_status"] == response.status_code
    for extra in ("", "-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
