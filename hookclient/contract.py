"""The wire format as JSON Schema (2020-12): the files in ``hookclient/schemas/``.

They are the contract's one source: ``hookclient schema`` prints them for people who
write their own receivers, and the store validates every envelope against the same
files.  The hook never loads them: its path stays at the floor (BENCHMARKS.md).

Names: ``envelope``, ``transcript``, ``heartbeat``, ``batch-answer``, ``hook-common``, and
one per hook event (``PreToolUse``, ...; ``schemas/events/``).  Every schema's ``$id`` is
``https://hookclient.invalid/schemas/1/<file>``: an identifier that the ``$ref`` between
the files resolve against, never an address anything fetches (``.invalid`` cannot be).
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

BASE_URI = "https://hookclient.invalid/schemas/1/"
#: The wire format's schemas, then the hook events' catalog (sorted by name).
TOP = ("envelope", "transcript", "heartbeat", "batch-answer", "hook-common")


def _folder() -> Traversable:
    return files("hookclient") / "schemas"


def events() -> list[str]:
    """The hook events of the catalog, by name."""
    return sorted(f.name.removesuffix(".json") for f in (_folder() / "events").iterdir())


def names() -> list[str]:
    """Every schema's name: the wire format's first, then the events'."""
    return [*TOP, *events()]


def file_of(name: str) -> str:
    """A schema's file, relative to the schemas folder (and to ``BASE_URI``)."""
    if name in TOP:
        return f"{name}.json"
    if name in events():
        return f"events/{name}.json"
    raise KeyError(name)


def text(name: str) -> str:
    """A schema's file as it is shipped."""
    return (_folder() / file_of(name)).read_text(encoding="utf-8")


def load(name: str) -> dict[str, Any]:
    """A schema, parsed."""
    schema: dict[str, Any] = json.loads(text(name))
    return schema


def every() -> dict[str, dict[str, Any]]:
    """All the schemas by their ``$id``: what a validator's registry needs."""
    return {BASE_URI + file_of(name): load(name) for name in names()}
