"""Colour and progress reach terminals only, and NO_COLOR turns colour off."""

from __future__ import annotations

import io

import pytest

from hookclient.term import Progress, paint


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert paint("FAIL", "FAIL", Tty()) == "\033[31mFAIL\033[0m"
    assert paint("FAIL", "FAIL", io.StringIO()) == "FAIL"
    monkeypatch.setenv("NO_COLOR", "1")
    assert paint("FAIL", "FAIL", Tty()) == "FAIL"


def test_progress_only_on_a_terminal_for_long_jobs() -> None:
    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        progress = Progress("replaying", 100, stream)
        for _ in range(100):
            progress.step()
        progress.close()
    assert tty.getvalue().endswith("\rreplaying 100/100\n")
    assert pipe.getvalue() == ""
    short = Tty()
    Progress("x", 3, short).step()
    assert short.getvalue() == ""  # a few items need no progress line
