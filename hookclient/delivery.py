"""Delivery: one HTTP attempt, classified; and the hook's bounded inline retries.

This is the one module that talks to httpx and catches its exceptions.  Every attempt
ends as an :class:`~hookclient.outcome.Outcome` (delivered / retryable / permanent),
returned, never raised; tenacity retries on retryable results
(:mod:`hookclient.retrying`, imported only once a first attempt has failed).

Importing this module imports httpx, which costs a hook about 5x the time of one that
only spools: only direct-mode code imports it, inside the function.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
from collections.abc import Callable
from typing import Any

import httpx

from hookclient import __version__
from hookclient.clock import Clock
from hookclient.config import Endpoint
from hookclient.envelope import random_hex
from hookclient.outcome import MIN_ATTEMPT, Kind, Outcome, classify, parse_retry_after

USER_AGENT = f"hookclient/{__version__}"
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks signature: ``v1,`` + base64(HMAC-SHA256(key, id.ts.body)).

    A secret written ``whsec_<base64>`` is that key, base64-encoded (the spec's form);
    any other string is used as UTF-8 bytes.
    """
    key = (
        base64.b64decode(secret[len("whsec_") :])
        if secret.startswith("whsec_")
        else secret.encode("utf-8")
    )
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def build_headers(
    envelope: dict[str, Any],
    body: bytes,
    *,
    attempt: int,
    span_id: str,
    token: str | None,
    signing_secret: str | None,
    now: float,
) -> dict[str, str]:
    request_id = str(envelope["requestId"])
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": request_id,
        "X-Request-Id": request_id,
        "traceparent": f"00-{envelope['traceId']}-{span_id}-01",
        "User-Agent": USER_AGENT,
        "X-Hook-Attempt": str(attempt),
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if signing_secret:
        stamp = int(now)
        headers["webhook-id"] = request_id
        headers["webhook-timestamp"] = str(stamp)
        headers["webhook-signature"] = sign(signing_secret, request_id, stamp, body)
    return headers


class Sender:
    """One keep-alive httpx client for one endpoint; ``post`` never raises httpx errors."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        clock: Clock | None = None,
    ) -> None:
        if not endpoint.url:
            raise ValueError("no endpoint url")
        self.endpoint = endpoint
        #: parsed once: httpx parses a str URL on every request (host validation and
        #: all), which was 4% of a drain's CPU
        self.url = httpx.URL(endpoint.url)
        self._timeout = httpx.Timeout(endpoint.timeout)
        self.clock = clock or Clock()
        verify = _verify(endpoint)
        # h11 writes the headers and the body separately; with Nagle on, the body can
        # wait for the server's delayed ACK (up to 40 ms on Linux).  TCP_NODELAY sends
        # it at once; it costs nothing on a keep-alive connection.
        transport = httpx.HTTPTransport(verify=verify, socket_options=NODELAY)
        #: the last webhook-timestamp signed per requestId: every attempt gets a later
        #: one, so no retry is ever byte-identical to an earlier request (a replay)
        self._stamps: dict[str, int] = {}
        self.client = httpx.Client(
            timeout=httpx.Timeout(endpoint.timeout),
            follow_redirects=False,
            verify=verify,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def _stamp(self, request_id: str, now: float) -> int:
        """A signing time for this attempt: now, or one second past the last attempt's
        of the same event if that was this same second (within the 5 min tolerance)."""
        stamp = max(int(now), self._stamps.get(request_id, 0) + 1)
        if len(self._stamps) >= 10_000:  # a long-running daemon: forget the oldest
            self._stamps.pop(next(iter(self._stamps)))
        self._stamps[request_id] = stamp
        return stamp

    def post(
        self, envelope: dict[str, Any], body: bytes, *, attempt: int, timeout: float
    ) -> Outcome:
        """One attempt, whatever happens: its :class:`Outcome`.  Never raises for the
        network or the endpoint's answer."""
        span_id = random_hex(8)
        now = self.clock.now()
        if self.endpoint.signing_secret:
            now = self._stamp(str(envelope.get("requestId")), now)
        headers = build_headers(
            envelope,
            body,
            attempt=attempt,
            span_id=span_id,
            token=self.endpoint.token,
            signing_secret=self.endpoint.signing_secret,
            now=now,
        )
        start = self.clock.monotonic()

        def done(kind: Kind, status: int | None, detail: str, **extra: Any) -> Outcome:
            elapsed = (self.clock.monotonic() - start) * 1000
            at = self.clock.now()
            return Outcome(kind, status, detail, attempt, span_id, elapsed, at=at, **extra)

        try:
            limit = self._timeout if timeout == self.endpoint.timeout else httpx.Timeout(timeout)
            response = self.client.post(self.url, content=body, headers=headers, timeout=limit)
        except httpx.TimeoutException as exc:
            return done("retryable", None, _describe(exc), error="timeout")
        except httpx.ConnectError as exc:
            return done("retryable", None, _describe(exc), error=_connect_error(exc))
        except httpx.UnsupportedProtocol as exc:
            return done("permanent", None, _describe(exc), error="url")
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            return done("retryable", None, _describe(exc), error="reset")
        except httpx.TransportError as exc:
            return done("retryable", None, _describe(exc), error="network")
        status = response.status_code
        kind = classify(status)
        detail = f"HTTP {status} {response.reason_phrase}".strip()
        if kind == "delivered":
            return done(kind, status, detail)
        if kind == "permanent":
            if 300 <= status < 400:
                detail += " (redirects are not followed)"
            return done(kind, status, detail, error="http")
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
        return done(kind, status, detail, error="http", retry_after=retry_after)


def _verify(endpoint: Endpoint) -> Any:
    """TLS verification for https URLs; a plain-http endpoint never does TLS (redirects
    are not followed), so it skips loading the CA bundle, which costs a hook ~20 ms."""
    if not (endpoint.url or "").startswith("https://"):
        return False
    if not endpoint.verify:
        return False
    import ssl

    if endpoint.ca_bundle:
        return ssl.create_default_context(cafile=str(endpoint.ca_bundle))
    return True


def _connect_error(exc: Exception) -> str:
    return "tls" if _is_tls(exc) else "connect"


def _is_tls(exc: Exception) -> bool:
    import ssl

    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:  # a chain can loop back on itself
        if isinstance(cause, ssl.SSLError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return "SSL" in str(exc) or "certificate" in str(exc).lower()


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def deliver_inline(
    sender: Sender,
    envelope: dict[str, Any],
    body: bytes,
    *,
    first_attempt: int,
    attempts: int,
    delay: float,
    deadline: float,
    on_outcome: Callable[[Outcome], None],
    give_up: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Up to ``attempts`` tries ``delay`` apart, none started past ``deadline`` (monotonic).

    Each try's timeout is cut to the time left, so the whole stays inside the budget.
    Returns the last attempt's outcome (delivered, permanent, or the last retryable
    one); ``on_outcome`` sees every attempt (for logs and history).  ``give_up`` is
    asked between attempts (the hook stops when the breaker opens).
    """
    from hookclient.outcome import no_time_for_another

    clock = sender.clock
    counter = iter(range(first_attempt, first_attempt + attempts))

    def one() -> Outcome:
        attempt = next(counter)
        left = deadline - clock.monotonic()
        outcome = sender.post(
            envelope, body, attempt=attempt, timeout=min(sender.endpoint.timeout, left)
        )
        on_outcome(outcome)
        return outcome

    if deadline - clock.monotonic() < MIN_ATTEMPT:
        return Outcome(
            "retryable", None, "no time left in the budget", first_attempt, "", 0.0, at=clock.now()
        )
    first = one()  # most events: a healthy endpoint, and tenacity is never imported
    if first.kind != "retryable" or attempts <= 1 or give_up():
        return first
    # tenacity's first import takes milliseconds of the budget: before the deadline
    # check, so that a retry never starts with less than MIN_ATTEMPT left
    from hookclient.retrying import retry_inline

    if no_time_for_another(clock, delay, deadline):
        return first
    clock.sleep(delay)
    return retry_inline(
        one, attempts=attempts - 1, delay=delay, deadline=deadline, clock=clock, give_up=give_up
    )
