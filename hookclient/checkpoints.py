"""How far each transcript file has been shipped: one small JSON file per transcript
under ``<spool>/transcripts/``, replaced atomically.

A checkpoint names the file (its path when last seen, its device and inode), its size
then, the offset shipped up to, a hash of the bytes just before that offset, and the
tool-result files already shipped.  It is keyed by the session (and the subagent), not
the path: the CLI moves a transcript to another project directory on a cwd change, and
the checkpoint must find it again there.

Whoever reads a transcript holds its checkpoint's lock (filelock) from reading the
checkpoint to saving the new one, so the daemon and a backfill on the same file take
turns: neither corrupts the other's checkpoint nor moves it back.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from filelock import FileLock

from hookclient.spool import write_durably

DIRECTORY = "transcripts"
#: A lock holder is reading and spooling one batch at a time; a waiter gives up after
#: this long and tries again at the next sync rather than stall the daemon.
LOCK_TIMEOUT = 30.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Checkpoint:
    session_id: str
    agent_id: str | None
    path: str
    device: int = 0
    inode: int = 0
    size: int = 0
    offset: int = 0
    tail: str = ""
    #: tool-result file name -> the size shipped
    tool_results: dict[str, int] = field(default_factory=dict)
    synced_at: float = 0.0

    @property
    def key(self) -> str:
        return key_of(self.session_id, self.agent_id)

    @property
    def file_id(self) -> str:
        return f"{self.device}:{self.inode}"


def key_of(session_id: str, agent_id: str | None) -> str:
    """The checkpoint's file name (without ``.json``): the session, and the subagent."""
    name = session_id if agent_id is None else f"{session_id}.agent-{agent_id}"
    return _UNSAFE.sub("_", name)[:200]


class Checkpoints:
    """The checkpoints of one spool."""

    def __init__(self, spool_root: str) -> None:
        self.root = os.path.join(spool_root, DIRECTORY)

    def ensure(self) -> None:
        os.makedirs(self.root, mode=0o700, exist_ok=True)

    def lock(self, key: str) -> FileLock:
        self.ensure()
        return FileLock(os.path.join(self.root, f"{key}.lock"), timeout=LOCK_TIMEOUT)

    def load(self, key: str) -> Checkpoint | None:
        """The checkpoint saved under ``key``; None if there is none or it cannot be read
        (then the file is read from its start again: the store dedups)."""
        try:
            with open(os.path.join(self.root, f"{key}.json"), "rb") as fh:
                return _parse(json.load(fh))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, checkpoint: Checkpoint) -> None:
        """Write durably and atomically: a crash leaves the old checkpoint or the new."""
        self.ensure()
        data = json.dumps(asdict(checkpoint), sort_keys=True).encode()
        write_durably(os.path.join(self.root, f"{checkpoint.key}.json"), data, self.root)

    def keys(self) -> list[str]:
        """The keys of every checkpoint saved in this spool (one directory listing)."""
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n[: -len(".json")] for n in names if n.endswith(".json") and n[0] != "."]

    def all(self) -> Iterator[Checkpoint]:
        """Every readable checkpoint of this spool."""
        for key in self.keys():
            found = self.load(key)
            if found is not None:
                yield found


def _parse(doc: Any) -> Checkpoint:
    if not isinstance(doc, dict):
        raise TypeError("not an object")
    checkpoint = Checkpoint(**doc)
    if not isinstance(checkpoint.session_id, str) or not isinstance(checkpoint.offset, int):
        raise TypeError("not a checkpoint")
    return checkpoint
