"""Terminal niceties that never reach a pipe: colour and progress on a TTY only; and
a quiet exit when the pipe stdout writes to is closed (``hookclient doctor | head -1``).

Colour follows the NO_COLOR convention (https://no-color.org): set NO_COLOR to anything
and no escape code is written.  Output that a script reads (a pipe, ``--json``) is
always plain.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TextIO

CODES = {"OK": "32", "WARN": "33", "FAIL": "31", "bold": "1", "dim": "2"}
#: Exit status when the reader of stdout went away: 128 + SIGPIPE (13), what a shell
#: reports for a command SIGPIPE killed (``yes | head -1`` under ``set -o pipefail``).
CLOSED_PIPE_EXIT = 141


def quiet_on_closed_pipe(body: Callable[[], int]) -> int:
    """Run a command's ``body``; if stdout's reader left (``| head -1``), exit quietly.

    Python ignores SIGPIPE, so writing to a pipe nobody reads raises BrokenPipeError: a
    traceback, or at exit "Exception ignored ... BrokenPipeError", for what is no error
    at all. This is the recipe of the Python docs (signal, "Note on SIGPIPE"): flush
    while the exception can still be caught, and then point stdout at /dev/null so the
    interpreter's last flush has somewhere to go. Restoring SIGPIPE's default instead
    would kill the process mid-write, a purge or a settings file half done. The status
    is :data:`CLOSED_PIPE_EXIT` (141), as if SIGPIPE had ended it: the output was cut
    short, and ``pipefail`` scripts see the same as with any other command.
    """
    try:
        try:
            return body()
        finally:  # also after SystemExit: argparse's --help exits once it has printed
            sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return CLOSED_PIPE_EXIT


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
