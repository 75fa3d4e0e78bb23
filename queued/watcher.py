"""The watchdog observer that tells the daemon about new pending files within ms.

It only cuts latency: the daemon's periodic rescan remains the source of truth, since
inotify drops events silently when its queue overflows (watchdog issue 654).  We react
to files created, moved in (the spool's ``os.replace`` from tmp/ is a move) and closed
after writing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

#: What a new pending file looks like to inotify: created, moved in, closed after writing.
_ARRIVED = (FileCreatedEvent, FileClosedEvent)
#: A transcript growing: also every write to it.
_WRITTEN = (FileModifiedEvent, FileCreatedEvent, FileClosedEvent)


class _Handler(FileSystemEventHandler):
    """Calls ``seen(path)`` for each file event of the given kinds, and each file moved in."""

    def __init__(self, seen: Callable[[str], None], kinds: tuple[type, ...]) -> None:
        self.seen = seen
        self.kinds = kinds

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        if isinstance(event, FileMovedEvent):
            self.seen(os.fsdecode(event.dest_path))
        elif isinstance(event, self.kinds):
            self.seen(os.fsdecode(event.src_path))


def _pending(notice: Callable[[str], None]) -> Callable[[str], None]:
    def seen(path: str) -> None:
        name = os.path.basename(path)
        if name.endswith(".json"):
            notice(name)

    return seen


def _no_move_pairing_delay() -> None:
    """watchdog's inotify emitter holds every IN_MOVED_FROM for 0.5 s, to pair it with
    its IN_MOVED_TO.  The daemon's own claims are renames out of pending/, so each one
    held back every later event by half a second (measured: idle latency file -> request
    p50 486 ms).  We only need to know that a name appeared in pending/, which an
    unpaired IN_MOVED_TO still reports (as a created event), so the pairing goes."""
    try:
        from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
    except ImportError:  # not Linux, or a watchdog without this class
        return
    InotifyMoveEventGrouper.delay = 0.0


def _quiet_stop_race() -> None:
    """When the observer stops while a read is in flight, watchdog's inotify emitter
    logs "queue_events() called when the thread is inactive" through stdlib logging,
    which nobody configured, so it landed on the daemon's stderr as a bare line (the
    chaos suite's SIGTERM test caught it). It is the stop racing a read, nothing lost:
    that one message is dropped; any other watchdog message still shows."""
    import logging

    def keep(record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in str(record.msg)

    logging.getLogger("watchdog.observers.inotify").addFilter(keep)


def start_observer(directory: Path, notice: Callable[[str], None]) -> Any:
    """Start watching ``directory`` (not recursive); returns the running observer."""
    _no_move_pairing_delay()
    _quiet_stop_race()
    observer = Observer()
    observer.schedule(_Handler(_pending(notice), _ARRIVED), str(directory), recursive=False)
    observer.daemon = True
    observer.start()
    return observer


def watch_written(
    observer: Any, directory: str, written: Callable[[str], None], *, recursive: bool
) -> None:
    """Also tell ``written(path)`` of every file written, created or moved in under
    ``directory`` (transcripts: the follower reads what they gained)."""
    observer.schedule(_Handler(written, _WRITTEN), directory, recursive=recursive)
