"""Every spool on this machine that holds events, and which endpoint each is for.

The default spool is per endpoint URL (``<user_state_dir>/spool/<sha256(url)[:12]>``),
plus ``unrouted`` for events captured while no URL was configured or the configuration
could not be read.  So an event spooled under a URL that was later fixed stays where
it was: nothing delivers it to the new endpoint on its own, because events are never
moved between endpoints silently.  This module finds such spools so that ``queued
status`` and ``hookclient doctor`` can name each one, with its endpoint, its counts and
the ``queued adopt`` command that brings its events over.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from hookclient.config import Config
from hookclient.dirs import UNROUTED, spool_key, spools_root, unrouted_spool_dir
from hookclient.spool import STATES, Spool, State


@dataclass(frozen=True)
class SpoolInfo:
    """One spool directory and what it holds."""

    dir: Path
    #: the endpoint URL it was created for (credentials redacted); None: no URL
    endpoint: str | None
    #: False when the spool does not say (created before spools recorded it)
    endpoint_known: bool
    counts: dict[str, int]

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    @property
    def unrouted(self) -> bool:
        return self.dir.name == UNROUTED

    def label(self) -> str:
        if self.unrouted:
            return "no endpoint configured, or the configuration could not be read"
        if not self.endpoint_known:
            return "endpoint unknown"
        return self.endpoint or "no endpoint"

    def adopt_command(self) -> str:
        source = UNROUTED if self.unrouted else shlex.quote(str(self.dir))
        return f"queued adopt --from {source}"


def describe(directory: Path) -> SpoolInfo:
    """Counts per state (pending, processing, failed) and the recorded endpoint."""
    spool = Spool(directory)
    known, endpoint = spool.read_endpoint()
    if not known:
        known, endpoint = _endpoint_from_pidfile(directory)
    counts = {state.value: len(spool.names(state)) for state in STATES}
    return SpoolInfo(directory, endpoint, known, counts)


def others(config: Config) -> list[SpoolInfo]:
    """The spools other than ``config``'s that hold events, most events first."""
    own = _same(Path(config.queue.dir))
    found = []
    for directory in candidates():
        if _same(directory) == own:
            continue
        info = describe(directory)
        if info.events:
            found.append(info)
    return sorted(found, key=lambda i: (-i.events, str(i.dir)))


def candidates() -> list[Path]:
    """Every directory under the default spools' root that looks like a spool."""
    root = Path(spools_root())
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    return [p for p in entries if (p / State.PENDING.value).is_dir()]


def resolve(source: str) -> Path:
    """``queued adopt --from``: a spool directory, an endpoint URL (its default spool),
    or ``unrouted``."""
    if source == UNROUTED:
        return Path(unrouted_spool_dir())
    if source.startswith(("http://", "https://")):
        return Path(spools_root()) / spool_key(source)
    return Path(os.path.expanduser(source)).absolute()


def _endpoint_from_pidfile(directory: Path) -> tuple[bool, str | None]:
    from hookclient.lockprobe import holder

    info = holder(str(directory))
    if info is None or "endpoint" not in info:
        return False, None
    endpoint = info["endpoint"]
    return True, endpoint if isinstance(endpoint, str) else None


def _same(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()
