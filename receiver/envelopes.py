"""The store's check of an envelope: the published JSON Schemas (``hookclient schema``),
not a second description of them in Python.

Validators are compiled once, when the app is made (:func:`checker`).  An envelope is
checked against ``transcript.json`` when its event is ``Transcript``, ``heartbeat.json``
when it is ``Heartbeat``, else ``envelope.json``: an event name the store has never
heard of is valid, and stored.  A hook event's payload is not checked against its
catalog entry (``events/<name>.json``): a new Claude Code version that drops a field
must not turn its events into refusals, which the client would park in failed/.

A refusal names the JSON pointer that failed (RFC 6901: ``/payload/records/3``) and what
was expected, never the value sent: a 422's text is kept in the audit table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from itertools import islice
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from hookclient import contract

TRANSCRIPT = "Transcript"
HEARTBEAT = "Heartbeat"
_BY_EVENT = {TRANSCRIPT: "transcript", HEARTBEAT: "heartbeat"}
_TYPES = {
    "string": "a string",
    "object": "an object",
    "array": "an array",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@dataclass(frozen=True)
class Envelope:
    """The fields of a valid envelope the store indexes."""

    request_id: str
    trace_id: str
    span_id: str
    event: str
    session_id: str | None


class Invalid(ValueError):
    """An envelope the schemas refuse: where (a JSON pointer) and why, in one line."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message


class Checker:
    """The compiled validators of the three envelope schemas."""

    def __init__(self) -> None:
        registry: Registry[Any] = Registry().with_resources(
            (uri, Resource.from_contents(schema)) for uri, schema in contract.every().items()
        )
        self._validators = {
            name: Draft202012Validator(contract.load(name), registry=registry)
            for name in ("envelope", *_BY_EVENT.values())
        }

    def check(self, doc: Any) -> Envelope:
        """``doc``'s indexed fields, or :class:`Invalid` naming the first failure."""
        event = doc.get("event") if isinstance(doc, dict) else None
        name = _BY_EVENT.get(event, "envelope") if isinstance(event, str) else "envelope"
        validator = self._validators[name]
        # the first few errors only: 16 MiB of records that are all wrong would otherwise
        # make millions of them before the answer
        error = best_match(islice(validator.iter_errors(doc), 20))
        if error is not None:
            raise _invalid(error)
        return Envelope(
            doc["requestId"], doc["traceId"], doc["spanId"], doc["event"], doc["sessionId"]
        )


@cache
def checker() -> Checker:
    """The one :class:`Checker` of this process, compiled on first use."""
    return Checker()


def validate_envelope(doc: Any) -> Envelope:
    """Check a parsed body against the published schemas; :class:`Invalid` when it fails."""
    return checker().check(doc)


def _invalid(error: ValidationError) -> Invalid:
    path = list(error.absolute_path)
    kind = str(error.validator)
    expected: Any = error.validator_value  # the keyword's value in the schema
    instance: Any = error.instance
    if kind == "required":
        missing = [name for name in expected if name not in instance]
        pointer = _pointer([*path, missing[0] if missing else ""])
        return Invalid(pointer, f"{pointer} is missing")
    if kind == "dependentRequired":
        for have, needs in expected.items():
            for need in (n for n in needs if have in instance and n not in instance):
                pointer = _pointer([*path, need])
                return Invalid(pointer, f"{pointer} is missing (it goes with {have})")
    pointer = _pointer(path)  # "" is the whole envelope (RFC 6901)
    return Invalid(pointer, f"{pointer or 'the envelope'} {_expected(kind, expected)}")


def _expected(kind: str, value: Any) -> str:
    """What the schema wanted there, without echoing what was sent."""
    if kind == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be " + " or ".join(_TYPES.get(str(k), str(k)) for k in kinds)
    if kind == "const":
        return f"must be {json.dumps(value)}"
    if kind == "enum":
        return "must be one of " + ", ".join(json.dumps(v) for v in value)
    if kind == "pattern":
        return f"must match {value}"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters"
    if kind == "maxLength":
        return f"must be at most {value} characters"
    if kind in ("minimum", "maximum"):
        return f"must be at {'least' if kind == 'minimum' else 'most'} {value}"
    if kind in ("minItems", "maxItems"):
        return f"must hold at {'least' if kind == 'minItems' else 'most'} {value} items"
    return f"is not valid ({kind})"


def _pointer(path: list[Any]) -> str:
    """RFC 6901: ``/`` before each step, ``~`` and ``/`` in names escaped."""
    return "".join("/" + str(step).replace("~", "~0").replace("/", "~1") for step in path)
