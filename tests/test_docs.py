"""Docs are tests: every command has --help and a place in the README, every config key
a row in its table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hookclient.config import SCHEMA, env_name
from tests.conftest import BIN

README = (Path(__file__).parent.parent / "README.md").read_text()


def subcommands() -> list[str]:
    """The hookclient parser's own list, so that a new command cannot miss the README."""
    import argparse

    from hookclient.cli import build_parser

    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(commands.choices)


HOOKCLIENT = subcommands()
QUEUED = ["run", "status", "list", "show", "replay-failed", "purge", "service"]


@pytest.mark.parametrize(
    ("script", "command"),
    [("hookclient", c) for c in HOOKCLIENT] + [("queued", c) for c in QUEUED],
)
def test_every_command_has_help_and_is_in_the_readme(script: str, command: str) -> None:
    proc = subprocess.run(
        [str(BIN / script), command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {script} {command}")
    assert f"{script} {command}" in README


def test_receiver_help() -> None:
    proc = subprocess.run(
        [str(BIN / "hookclient-receiver"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "--port-file" in proc.stdout
    assert "hookclient-receiver" in README


@pytest.mark.parametrize(("section", "key"), list(SCHEMA))
def test_every_config_key_has_a_row_with_its_env_var(section: str, key: str) -> None:
    row = next(
        (line for line in README.splitlines() if line.startswith(f"| `{section}.{key}`")), None
    )
    assert row is not None, f"{section}.{key} missing from the README's configuration table"
    assert f"`{env_name(section, key)}`" in row
