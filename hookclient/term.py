"""Terminal niceties that never reach a pipe: colour and progress on a TTY only.

Colour follows the NO_COLOR convention (https://no-color.org): set NO_COLOR to anything
and no escape code is written.  Output that a script reads (a pipe, ``--json``) is
always plain.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

CODES = {"OK": "32", "WARN": "33", "FAIL": "31", "bold": "1", "dim": "2"}


def colour_on(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, style: str, stream: TextIO | None = None) -> str:
    """``text`` in ``style`` (OK, WARN, FAIL, bold, dim) when ``stream`` (default: the
    current stdout) is a terminal."""
    if not colour_on(stream or sys.stdout) or style not in CODES:
        return text
    return f"\033[{CODES[style]}m{text}\033[0m"


class Progress:
    """``\\r<label> n/total`` on stderr while a long job runs, only on a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label, self.total, self.stream = label, total, stream or sys.stderr
        self.enabled = self.stream.isatty() and total >= 50
        self.done = 0

    def step(self) -> None:
        self.done += 1
        if self.enabled and (self.done % 25 == 0 or self.done == self.total):
            self.stream.write(f"\r{self.label} {self.done}/{self.total}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
