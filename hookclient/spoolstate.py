"""The shape of a spool file's ``state``, for type checkers (README "Spool layout").

Only imported under ``TYPE_CHECKING``: at run time a state is the plain dict that
``json`` reads and writes, and the hook's path leaves :mod:`typing` out.  Files on
disk may come from older versions or be edited by hand, so readers still use
``.get()`` for anything they do not write themselves.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Owner(TypedDict):
    """Who holds a claim on an event in processing/."""

    pid: int
    #: "hook" or "daemon"
    by: str
    claimedAt: str
    #: why the claim could not be written to disk (full, read-only): held in memory only
    unrecorded: NotRequired[str]


class LastError(TypedDict):
    """Why the last attempt did not deliver."""

    #: the Outcome's error ("timeout", "connect", "tls", "url", ...) or "http"
    kind: str
    status: int | None
    detail: str


#: One entry of ``history``: an attempt, or an operator's action.  ``by``: "hook",
#: "daemon", "replay-failed", "adopt"; ``outcome``: "delivered", "retryable",
#: "permanent", "replayed", "adopted"; ``from``: the spool an adopted event came from.
Attempt = TypedDict(
    "Attempt",
    {
        "at": str,
        "attempt": int,
        "by": str,
        "outcome": str,
        "status": "int | None",
        "error": "str | None",
        "detail": str,
        "elapsedMs": float,
        "spanId": str,
        "from": str,
    },
    total=False,
)


class SpoolState(TypedDict):
    """Delivery bookkeeping kept next to the envelope; the envelope itself never changes."""

    retries: int
    attempts: int
    createdAt: str
    nextAttemptAt: str
    lastAttemptAt: str | None
    lastError: LastError | None
    #: the last HISTORY_KEEP entries
    history: list[Attempt]
    owner: NotRequired[Owner]
