"""The daemon's agenda: which pending file is due when, kept as names and times only.

Backoff is data in the spool (``nextAttemptAt``); this heap is just an index over it so
the daemon sleeps until the next due time instead of polling.  It holds file names, not
envelopes, so memory stays flat with a large backlog.  A name the daemon has not read
yet (seen by the watcher or a rescan) is entered as due *now*; the worker reads the
file before claiming it, and puts it back with its real due time if it is not due.

Entries are ordered by (due time, name); names sort by creation time, so with one
worker due events go out in the order they were created.
"""

from __future__ import annotations

import heapq
import threading


class Agenda:
    """A thread-safe min-heap of (due, name) with at most one live entry per name."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._due)

    def add(self, name: str, due: float) -> None:
        """Schedule ``name`` at ``due``; a later add for the same name replaces it."""
        with self._lock:
            if self._due.get(name) == due:
                return
            self._due[name] = due
            heapq.heappush(self._heap, (due, name))

    def add_new(self, name: str, due: float) -> bool:
        """Schedule only if not already known; True if it was added."""
        with self._lock:
            if name in self._due:
                return False
            self._due[name] = due
            heapq.heappush(self._heap, (due, name))
            return True

    def due_of(self, name: str) -> float | None:
        """When ``name`` is due, or None if it is not in the agenda."""
        with self._lock:
            return self._due.get(name)

    def pop_due(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` names due at ``now``, earliest first, removed from the agenda."""
        out: list[str] = []
        with self._lock:
            while self._heap and len(out) < limit:
                due, name = self._heap[0]
                if self._due.get(name) != due:
                    heapq.heappop(self._heap)  # stale: rescheduled or discarded
                    continue
                if due > now:
                    break
                heapq.heappop(self._heap)
                del self._due[name]
                out.append(name)
        return out

    def next_due(self) -> float | None:
        """The earliest live due time, or None when nothing is scheduled."""
        with self._lock:
            while self._heap:
                due, name = self._heap[0]
                if self._due.get(name) == due:
                    return due
                heapq.heappop(self._heap)
        return None
