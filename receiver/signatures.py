"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``): the receiver's check of a signed request, and the signing that
the client and the tests share the definition of.

Why a module of its own: the check is a pure function of the key, the headers and the
body, tested against the specification's published vector; the HTTP layer
(:mod:`receiver.app`) only decides what a failure answers (401).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Mapping
from hashlib import sha256

__all__ = ["SIGNATURE_TOLERANCE_S", "SignatureError", "sign", "signing_key", "verify_signature"]

SIGNATURE_TOLERANCE_S = 300  # Standard Webhooks: refuse timestamps further than 5 min away
_DIGITS = re.compile(r"[0-9]{1,12}")


class SignatureError(ValueError):
    """A Standard Webhooks signature that is missing, stale or wrong."""


def signing_key(secret: str) -> bytes:
    """The HMAC key for a secret: ``whsec_<base64>`` is decoded, anything else is UTF-8."""
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error as exc:
            raise ValueError(
                "signing secret starts with whsec_ but is not base64 after it"
            ) from exc
    else:
        key = secret.encode("utf-8")
    if not key:
        raise ValueError("signing secret is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.ts.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, signed, sha256)).decode("ascii")


def verify_signature(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_S,
) -> None:
    """Check the ``webhook-*`` headers against ``body``; raise :class:`SignatureError` if bad."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not _DIGITS.fullmatch(stamp):
        raise SignatureError("webhook-timestamp is not a Unix time in seconds")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"webhook-timestamp is more than {tolerance} s from now")
    expected = sign(key, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(s.encode(), expected) for s in signatures.split(" ")):
        raise SignatureError("no valid webhook-signature")
