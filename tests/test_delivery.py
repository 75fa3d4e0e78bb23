"""hookclient.delivery: the outcome table, headers, signing, Retry-After, inline retries.

No real network: respx mocks httpx's transport; a FakeClock stands in for time.
"""

from __future__ import annotations

import re
import ssl
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from hookclient import __version__
from hookclient.clock import FakeClock
from hookclient.config import Endpoint
from hookclient.delivery import (
    Sender,
    build_headers,
    deliver_inline,
    sign,
)
from hookclient.envelope import dumps, uuid7
from hookclient.outcome import MIN_ATTEMPT, Outcome, classify, parse_retry_after

URL = "http://receiver.test/hooks"
ELSEWHERE = "http://elsewhere.test/steal"
TOKEN = "tok-delivery-3a9f"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = 1_790_000_000.0


def endpoint(
    *, token: str | None = TOKEN, secret: str | None = None, timeout: float = 5.0
) -> Endpoint:
    return Endpoint(
        url=URL,
        token_env="HOOKCLIENT_TOKEN",
        token_file=None,
        timeout=timeout,
        verify=True,
        ca_bundle=None,
        signing_secret_env="SIGNING" if secret else None,
        token=token,
        token_source="test",
        signing_secret=secret,
    )


def envelope() -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "requestId": uuid7(NOW),
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "event": "Stop",
        "payload": {"hook_event_name": "Stop"},
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at=NOW)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


def make_sender(clock: FakeClock, **kw: Any) -> Sender:
    return Sender(endpoint(**kw), clock=clock)


@pytest.fixture
def sender(clock: FakeClock) -> Iterator[Sender]:
    s = make_sender(clock)
    yield s
    s.close()


def post(sender: Sender, env: dict[str, Any] | None = None, attempt: int = 1) -> Outcome:
    env = env or envelope()
    return sender.post(env, dumps(env), attempt=attempt, timeout=5.0)


def expect(kind: str, outcome: Outcome) -> Outcome:
    """Outcomes are returned, never raised: check the kind, hand the outcome on."""
    assert isinstance(outcome, Outcome)
    assert outcome.kind == kind, outcome
    return outcome


# -- the outcome table ---------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(mock: respx.MockRouter, sender: Sender, status: int) -> None:
    mock.post(URL).respond(status)
    outcome = post(sender)
    assert outcome.kind == "delivered"
    assert outcome.status == status
    assert outcome.error is None
    assert outcome.attempt == 1


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(mock: respx.MockRouter, sender: Sender, status: int) -> None:
    mock.post(URL).respond(status)
    outcome = expect("retryable", post(sender))
    assert (outcome.kind, outcome.status, outcome.error) == ("retryable", status, "http")
    assert str(status) in outcome.detail
    assert outcome.last_error() == {"kind": "http", "status": status, "detail": outcome.detail}


@pytest.mark.parametrize("status", [501, 400, 401, 403, 404, 405, 409, 410, 413, 422, 451])
def test_permanent_statuses(mock: respx.MockRouter, sender: Sender, status: int) -> None:
    mock.post(URL).respond(status)
    caught = expect("permanent", post(sender))
    assert (caught.kind, caught.status) == ("permanent", status)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (100, "permanent"),
        (199, "permanent"),
        (200, "delivered"),
        (299, "delivered"),
        (300, "permanent"),
        (399, "permanent"),
        (407, "permanent"),
        (408, "retryable"),
        (425, "retryable"),
        (426, "permanent"),
        (429, "retryable"),
        (499, "permanent"),
        (500, "retryable"),
        (501, "permanent"),
        (505, "retryable"),
        (599, "retryable"),
    ],
)
def test_classify(status: int, kind: str) -> None:
    assert classify(status) == kind


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_permanent_and_never_followed(
    mock: respx.MockRouter, sender: Sender, status: int
) -> None:
    mock.post(URL).respond(status, headers={"Location": ELSEWHERE})
    target_post = mock.post(ELSEWHERE).respond(200)
    target_get = mock.get(ELSEWHERE).respond(200)
    caught = expect("permanent", post(sender))
    assert caught.status == status
    assert "redirect" in caught.detail
    assert not target_post.called
    assert not target_get.called
    for call in mock.calls:
        if call.request.url.host != "receiver.test":
            assert "authorization" not in call.request.headers
    assert [c.request.url.host for c in mock.calls] == ["receiver.test"]


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("Connection refused"), "connect"),
        (httpx.ConnectTimeout("connect timed out"), "timeout"),
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (httpx.WriteTimeout("write timed out"), "timeout"),
        (httpx.PoolTimeout("pool timed out"), "timeout"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "reset"),
        (httpx.ReadError("Connection reset by peer"), "reset"),
        (httpx.WriteError("Broken pipe"), "reset"),
        (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "tls"),
        (httpx.ProxyError("proxy said no"), "network"),
    ],
)
def test_transport_errors_are_retryable(
    mock: respx.MockRouter, sender: Sender, exc: Exception, error: str
) -> None:
    mock.post(URL).mock(side_effect=exc)
    outcome = expect("retryable", post(sender))
    assert (outcome.kind, outcome.status, outcome.error) == ("retryable", None, error)
    assert type(exc).__name__ in outcome.detail
    assert outcome.last_error()["kind"] == error


def test_outcome_measures_elapsed_time_on_the_injected_clock(
    mock: respx.MockRouter, sender: Sender, clock: FakeClock
) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        clock.advance(0.25)
        return httpx.Response(200)

    mock.post(URL).mock(side_effect=slow)
    outcome = post(sender)
    assert outcome.elapsed_ms == pytest.approx(250.0)
    entry = outcome.history_entry("hook")
    assert entry["elapsedMs"] == 250.0
    assert entry["by"] == "hook" and entry["outcome"] == "delivered"
    assert entry["spanId"] == outcome.span_id
    assert outcome.at == NOW + 0.25  # stamped by the injected clock, not time.time()
    assert entry["at"] == "2026-09-21T14:13:20.250Z"


# -- Retry-After ---------------------------------------------------------------------


def test_retry_after_seconds(mock: respx.MockRouter, sender: Sender) -> None:
    mock.post(URL).respond(503, headers={"Retry-After": "120"})
    caught = expect("retryable", post(sender))
    assert caught.retry_after == 120.0


def test_retry_after_http_date(mock: respx.MockRouter, sender: Sender) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 300, UTC), usegmt=True)
    mock.post(URL).respond(429, headers={"Retry-After": when})
    caught = expect("retryable", post(sender))
    assert caught.retry_after == 300.0


def test_retry_after_is_ignored_on_permanent_outcomes(
    mock: respx.MockRouter, sender: Sender
) -> None:
    mock.post(URL).respond(400, headers={"Retry-After": "120"})
    caught = expect("permanent", post(sender))
    assert caught.retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("120", 120.0),
        (" 45 ", 45.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        (format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True), 90.0),
        (format_datetime(datetime.fromtimestamp(NOW - 90, UTC), usegmt=True), 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.fixture
def far_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in a time zone far from UTC, so local-time mistakes show."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.usefixtures("far_timezone")
@pytest.mark.parametrize(
    "value",
    [
        "Mon, 21 Sep 2026 14:14:50 GMT",  # IMF-fixdate
        "Monday, 21-Sep-26 14:14:50 GMT",  # RFC 850
        "Mon Sep 21 14:14:50 2026",  # asctime: no zone, GMT by definition
        "Mon, 21 Sep 2026 14:14:50 -0000",
    ],
)
def test_http_dates_are_gmt_whatever_the_local_zone(value: str) -> None:
    assert time.localtime(NOW).tm_gmtoff == 9 * 3600
    assert parse_retry_after(value, NOW) == 90.0


# -- headers -------------------------------------------------------------------------


TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


def test_headers_as_designed(mock: respx.MockRouter, sender: Sender) -> None:
    route = mock.post(URL).respond(200)
    env = envelope()
    body = dumps(env)
    outcome = sender.post(env, body, attempt=3, timeout=5.0)

    request = route.calls.last.request
    assert request.method == "POST"
    assert request.content == body
    h = request.headers
    assert h["Content-Type"] == "application/json"
    assert h["Authorization"] == f"Bearer {TOKEN}"
    assert h["Idempotency-Key"] == env["requestId"]
    assert h["X-Request-Id"] == env["requestId"]
    assert h["User-Agent"] == f"hookclient/{__version__}"
    assert h["X-Hook-Attempt"] == "3"
    match = TRACEPARENT.match(h["traceparent"])
    assert match and match[1] == env["traceId"]
    assert match[2] == outcome.span_id != env["spanId"]
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert name not in h


def test_no_authorization_without_a_token(mock: respx.MockRouter, clock: FakeClock) -> None:
    route = mock.post(URL).respond(200)
    s = make_sender(clock, token=None)
    try:
        post(s)
    finally:
        s.close()
    assert "authorization" not in route.calls.last.request.headers


def test_each_attempt_gets_a_new_span(mock: respx.MockRouter, sender: Sender) -> None:
    route = mock.post(URL).respond(200)
    env = envelope()
    spans = {post(sender, env, attempt=n).span_id for n in range(1, 6)}
    assert len(spans) == 5
    sent = {TRACEPARENT.match(c.request.headers["traceparent"])[2] for c in route.calls}  # type: ignore[index]
    assert sent == spans


def test_build_headers_is_pure() -> None:
    env = envelope()
    h = build_headers(
        env, b"{}", attempt=2, span_id="1" * 16, token=None, signing_secret=None, now=NOW
    )
    assert h == {
        "Content-Type": "application/json",
        "Idempotency-Key": env["requestId"],
        "X-Request-Id": env["requestId"],
        "traceparent": f"00-{env['traceId']}-{'1' * 16}-01",
        "User-Agent": f"hookclient/{__version__}",
        "X-Hook-Attempt": "2",
    }


# -- signing -------------------------------------------------------------------------


def test_sign_matches_the_standard_webhooks_vector() -> None:
    assert (
        sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_sign_with_a_plain_secret_uses_its_bytes() -> None:
    import base64
    import hashlib
    import hmac

    digest = hmac.new(b"plain", b"id.1.body", hashlib.sha256).digest()
    assert sign("plain", "id", 1, b"body") == "v1," + base64.b64encode(digest).decode()


def test_signature_headers_with_a_secret(mock: respx.MockRouter, clock: FakeClock) -> None:
    route = mock.post(URL).respond(200)
    s = make_sender(clock, secret=SECRET)
    env = envelope()
    body = dumps(env)
    try:
        s.post(env, body, attempt=1, timeout=5.0)
    finally:
        s.close()
    h = route.calls.last.request.headers
    assert h["webhook-id"] == env["requestId"]
    assert h["webhook-timestamp"] == str(int(NOW))
    assert h["webhook-signature"] == sign(SECRET, env["requestId"], int(NOW), body)
    assert SECRET not in str(dict(h))


def test_each_attempt_is_signed_with_its_own_timestamp(
    mock: respx.MockRouter, clock: FakeClock
) -> None:
    """Two attempts in the same second must not carry the same signature: a receiver
    that refuses replays (the reference one does) would take the retry for one."""
    route = mock.post(URL).respond(503)
    s = make_sender(clock, secret=SECRET)
    env = envelope()
    body = dumps(env)
    try:
        for attempt in (1, 2, 3):
            expect("retryable", s.post(env, body, attempt=attempt, timeout=5.0))
            clock.advance(0.1)
    finally:
        s.close()
    stamps = [int(call.request.headers["webhook-timestamp"]) for call in route.calls]
    assert stamps == [int(NOW), int(NOW) + 1, int(NOW) + 2]
    signatures = {call.request.headers["webhook-signature"] for call in route.calls}
    assert len(signatures) == 3


# -- inline retries ------------------------------------------------------------------


def inline(
    sender: Sender,
    *,
    attempts: int = 3,
    delay: float = 1.0,
    budget: float = 5.0,
    first_attempt: int = 1,
    seen: list[Outcome] | None = None,
) -> Outcome:
    env = envelope()
    sink: list[Outcome] = [] if seen is None else seen
    return deliver_inline(
        sender,
        env,
        dumps(env),
        first_attempt=first_attempt,
        attempts=attempts,
        delay=delay,
        deadline=sender.clock.monotonic() + budget,
        on_outcome=sink.append,
    )


def test_inline_503_503_200_delivers_on_attempt_3(
    mock: respx.MockRouter, sender: Sender, clock: FakeClock
) -> None:
    route = mock.post(URL)
    route.side_effect = [httpx.Response(503), httpx.Response(503), httpx.Response(200)]
    seen: list[Outcome] = []
    outcome = inline(sender, attempts=3, delay=1.0, seen=seen)
    assert outcome.kind == "delivered"
    assert outcome.attempt == 3
    assert clock.sleeps == [1.0, 1.0]
    assert [o.kind for o in seen] == ["retryable", "retryable", "delivered"]
    assert [c.request.headers["X-Hook-Attempt"] for c in route.calls] == ["1", "2", "3"]
    assert len({o.span_id for o in seen}) == 3


def test_inline_gives_up_after_the_attempts(
    mock: respx.MockRouter, sender: Sender, clock: FakeClock
) -> None:
    route = mock.post(URL).respond(503)
    caught = expect("retryable", inline(sender, attempts=3, delay=0.5, budget=60))
    assert route.call_count == 3
    assert caught.attempt == 3
    assert clock.sleeps == [0.5, 0.5]


def test_inline_budget_allows_only_what_fits(
    mock: respx.MockRouter, sender: Sender, clock: FakeClock
) -> None:
    route = mock.post(URL).respond(503)
    seen: list[Outcome] = []
    expect("retryable", inline(sender, attempts=10, delay=1.0, budget=1.5, seen=seen))
    assert route.call_count == 2
    assert len(seen) == 2
    assert clock.sleeps == [1.0]


def test_inline_permanent_stops_at_once(
    mock: respx.MockRouter, sender: Sender, clock: FakeClock
) -> None:
    route = mock.post(URL).respond(422)
    expect("permanent", inline(sender, attempts=5))
    assert route.call_count == 1
    assert clock.sleeps == []


def test_inline_permanent_after_a_retry(
    mock: respx.MockRouter, sender: Sender, clock: FakeClock
) -> None:
    route = mock.post(URL)
    route.side_effect = [httpx.Response(500), httpx.Response(401), httpx.Response(200)]
    caught = expect("permanent", inline(sender, attempts=5))
    assert caught.status == 401
    assert route.call_count == 2


def test_inline_network_errors_are_retried(
    mock: respx.MockRouter, sender: Sender, clock: FakeClock
) -> None:
    route = mock.post(URL)
    route.side_effect = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(204),
    ]
    outcome = inline(sender, attempts=3)
    assert (outcome.kind, outcome.attempt) == ("delivered", 3)


def test_inline_numbers_attempts_from_first_attempt(mock: respx.MockRouter, sender: Sender) -> None:
    route = mock.post(URL)
    route.side_effect = [httpx.Response(503), httpx.Response(200)]
    outcome = inline(sender, attempts=2, first_attempt=4)
    assert outcome.attempt == 5
    assert [c.request.headers["X-Hook-Attempt"] for c in route.calls] == ["4", "5"]


def test_inline_with_no_time_left_makes_no_request(mock: respx.MockRouter, sender: Sender) -> None:
    route = mock.post(URL).respond(200)
    caught = expect("retryable", inline(sender, budget=0.01))
    assert route.call_count == 0
    assert "budget" in caught.detail


def test_inline_give_up_stops_between_attempts(mock: respx.MockRouter, sender: Sender) -> None:
    route = mock.post(URL).respond(503)
    env = envelope()
    outcome = deliver_inline(
        sender,
        env,
        dumps(env),
        first_attempt=1,
        attempts=5,
        delay=1.0,
        deadline=sender.clock.monotonic() + 60,
        on_outcome=lambda o: None,
        give_up=lambda: True,
    )
    expect("retryable", outcome)
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("endpoint_timeout", "expected"),
    [(5.0, [2.5, 1.5, 0.5]), (1.0, [1.0, 1.0, 0.5])],
)
def test_per_attempt_timeout_is_cut_to_the_time_left(
    mock: respx.MockRouter, clock: FakeClock, endpoint_timeout: float, expected: list[float]
) -> None:
    timeouts: list[dict[str, float]] = []

    def record(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(503)

    mock.post(URL).mock(side_effect=record)
    s = make_sender(clock, timeout=endpoint_timeout)
    try:
        expect("retryable", inline(s, attempts=3, delay=1.0, budget=2.5))
    finally:
        s.close()
    assert [t["read"] for t in timeouts] == pytest.approx(expected)
    for t in timeouts:
        assert t["connect"] == t["read"] == t["write"] == t["pool"]


# -- the client ----------------------------------------------------------------------


def test_sender_needs_a_url(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="url"):
        Sender(
            Endpoint(url=None, token_env="T"),
            clock=clock,
        )


def test_sender_does_not_follow_redirects(sender: Sender) -> None:
    assert sender.client.follow_redirects is False


def test_unsupported_scheme_is_permanent(clock: FakeClock) -> None:
    ep = endpoint()
    bad = Endpoint(url="gopher://receiver.test/hooks", token_env=ep.token_env, token=TOKEN)
    s = Sender(bad, clock=clock)
    try:
        caught = expect("permanent", post(s))
    finally:
        s.close()
    assert caught.error == "url"


# -- transport warnings ------------------------------------------------------------------


def with_url(url: str, *, verify: bool = True) -> Endpoint:
    base = endpoint()
    return Endpoint(
        url=url,
        token_env=base.token_env,
        token_file=None,
        timeout=5.0,
        verify=verify,
        ca_bundle=None,
        signing_secret_env=None,
        token=TOKEN,
        token_source="test",
        signing_secret=None,
    )


@pytest.mark.parametrize(
    ("url", "verify", "expected"),
    [
        ("https://hooks.example.com/in", True, []),
        ("http://127.0.0.1:8080/hooks", True, []),
        ("http://localhost/hooks", True, []),
        ("http://[::1]:9/hooks", True, []),
        ("http://hooks.example.com/in", True, ["plain http"]),
        ("http://10.0.0.7/in", True, ["plain http"]),
        ("https://hooks.example.com/in", False, ["verify = false"]),
        ("http://hooks.example.com/in", False, ["plain http"]),  # no TLS to skip
    ],
)
def test_transport_warnings(url: str, verify: bool, expected: list[str]) -> None:
    from hookclient.urls import transport_warnings

    warnings = transport_warnings(with_url(url, verify=verify))
    assert [next(k for k in ("plain http", "verify = false") if k in w) for w in warnings] == (
        expected
    )
    for warning in warnings:
        assert TOKEN not in warning and "\n" not in warning


class _SlowImport:
    """A meta path finder that charges the fake clock for importing one module, as a
    first import from a cold disk would, and lets the real finders do the rest."""

    def __init__(self, name: str, clock: FakeClock, cost: float) -> None:
        self.name, self.clock, self.cost = name, clock, cost

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == self.name:
            self.clock.advance(self.cost)
        return None


def test_a_retry_never_starts_short_of_min_attempt_after_importing_tenacity(
    mock: respx.MockRouter, sender: Sender, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry machinery is imported after the first failure; the time that takes is
    counted before the deadline check, not after it (helper review, session 3)."""
    route = mock.post(URL)
    route.side_effect = [httpx.Response(503), httpx.Response(200)]
    monkeypatch.delitem(sys.modules, "hookclient.retrying", raising=False)
    monkeypatch.setattr(
        sys, "meta_path", [_SlowImport("hookclient.retrying", clock, 0.02), *sys.meta_path]
    )
    seen: list[Outcome] = []
    expect("retryable", inline(sender, attempts=3, delay=0.0, budget=MIN_ATTEMPT + 0.01, seen=seen))
    assert [o.status for o in seen] == [503]  # 0.04 s left after the import: no attempt 2
    assert route.call_count == 1


@pytest.mark.timeout(10)
def test_an_error_whose_cause_chain_loops_is_classified_not_walked_forever() -> None:
    """A chain that loops back on itself (an instance raised again from its own
    handler, as a respx side_effect function can do) spun the daemon at full CPU:
    the TLS test walked __cause__/__context__ with no guard."""
    from hookclient.delivery import _is_tls

    looped = httpx.ConnectError("connection refused")
    inner = OSError("refused")
    inner.__context__ = looped
    looped.__context__ = inner
    assert _is_tls(looped) is False
    tls = httpx.ConnectError("handshake")
    cause = ssl.SSLError("bad certificate")
    tls.__context__, cause.__context__ = cause, tls
    assert _is_tls(tls) is True
