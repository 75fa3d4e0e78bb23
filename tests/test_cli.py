"""What every command line shares: a quiet exit on a closed pipe, usage errors named once,
and --help texts that say what a command shows, where from, and how it is used."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hookclient.cli import main as hookclient_main
from hookclient.term import CLOSED_PIPE_EXIT
from queued.cli import main as queued_main
from tests.conftest import BIN


def into_a_closed_pipe(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with stdout on a pipe whose reader is gone before it writes a byte:
    what ``argv | head -1`` comes to once head has exited, without the race."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            argv, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, check=False
        )
    finally:
        os.close(write_end)


@pytest.fixture
def spool_config(tmp_path: Path) -> Path:
    """A configuration whose spool exists, so `queued status` has something to print."""
    spool = tmp_path / "spool"
    (spool / "pending").mkdir(parents=True)
    path = tmp_path / "hookclient.toml"
    path.write_text(
        f'[endpoint]\nurl = "http://127.0.0.1:9/hooks"\n[queue]\ndir = {json.dumps(str(spool))}\n'
        f"[logs]\ndir = {json.dumps(str(tmp_path / 'logs'))}\n"
    )
    return path


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["hookclient", "config", "show"], CLOSED_PIPE_EXIT),
        (["hookclient", "doctor"], CLOSED_PIPE_EXIT),
        (["queued", "status", "--config", "CONFIG"], CLOSED_PIPE_EXIT),
        # argparse swallows the OSError of writing --help itself, and exits 0
        (["hookclient", "--help"], 0),
        (["queued", "--help"], 0),
        (["hookclient-receiver", "--help"], 0),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_every_command_exits_quietly_when_its_reader_has_gone(
    argv: list[str], code: int, spool_config: Path
) -> None:
    argv = [str(BIN / argv[0]), *(str(spool_config) if a == "CONFIG" else a for a in argv[1:])]
    done = into_a_closed_pipe(argv)
    assert (done.returncode, done.stderr) == (code, "")


def test_a_shell_pipeline_into_head_prints_no_traceback() -> None:
    """The case as users meet it: whatever the timing, stderr stays empty."""
    script = f"'{BIN / 'hookclient'}' config show | head -1"
    done = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 1
    assert done.stderr == ""


# -- usage errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["bogus"], "queued: argument COMMAND: invalid choice: 'bogus'"),
        (["status", "--bogus"], "queued: unrecognized arguments: --bogus"),
        (["purge", "--state", "nope"], "queued purge: argument --state: invalid choice"),
    ],
)
def test_a_queued_usage_error_names_the_command_once(
    capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    assert queued_main(argv) == 1
    out, err = capsys.readouterr()
    [printed] = err.splitlines()
    assert out == ""
    assert printed.startswith(line)  # not "queued: queued ..."
    assert printed.count("queued:") + printed.count("queued purge:") == 1
    assert printed.endswith("--help)")


# -- help texts -------------------------------------------------------------------------------


def help_of(main: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The --help text of a command, on one line (argparse wraps descriptions)."""
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])  # type: ignore[operator]
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("argv", "phrases"),
    [
        (
            ["status"],
            ["pending/", "failed/", "corrupt/", "daemon", "breaker", "queued status --json"],
        ),
        (["list"], ["oldest first", "last HTTP status", "queued list --state failed"]),
        (["show"], ["attempt history", "unique prefix", "queued show 019ab2c4"]),
    ],
)
def test_queued_inspection_commands_describe_what_they_show(
    capsys: pytest.CaptureFixture[str], argv: list[str], phrases: list[str]
) -> None:
    text = help_of(queued_main, argv, capsys)
    for phrase in phrases:
        assert phrase in text


def test_config_show_help_says_where_each_value_comes_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of(hookclient_main, ["config", "show"], capsys)
    for phrase in ("[REDACTED]", "where it came from", "hookclient config show --json"):
        assert phrase in text


def test_config_path_help_lists_the_files_in_the_order_it_prints_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of(hookclient_main, ["config", "path"], capsys)
    assert "precedence order" not in text
    assert "in the order they are read: the user file first, then the project file" in text
    assert "a value in the project file wins" in text
    assert "flags > HOOKCLIENT_* env > project file > user file > defaults" in text


def test_config_path_prints_the_user_file_then_the_project_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(tmp_path / "proj"))
    assert hookclient_main(["config", "path"]) == 0
    files = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert [Path(f).parts[-2:] for f in files] == [
        ("hookclient", "config.toml"),
        (".claude", "hookclient.toml"),
    ]


AUTO_PHRASES = (
    "writes the event to pending/",
    "starts one detached (queued run --idle-exit <idle_exit>)",
    "exits without waiting",
    "autostart = false",
    "delivers like direct",
)


@pytest.mark.parametrize("argv", [["send"], []], ids=["send --help", "--help"])
def test_help_describes_auto_mode_with_autostart(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    text = help_of(hookclient_main, argv, capsys)
    assert "until a queued daemon is running" not in text
    for phrase in AUTO_PHRASES:
        assert phrase in text
