"""`queued service`: the unit files it generates, and what it asks the supervisor."""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from pathlib import Path

from queued.service import launchd_agent, systemd_unit, windows_hint
from tests.conftest import BIN

QUEUED = str(Path(sys.executable).with_name("queued"))


def test_systemd_unit_content(tmp_path: Path) -> None:
    config = tmp_path / "my config.toml"
    unit = systemd_unit(tmp_path, str(config))
    assert unit.path == tmp_path / ".config/systemd/user/hookclient-queued.service"
    assert unit.content == (
        "[Unit]\n"
        "Description=hookclient queue daemon: delivers spooled Claude Code hook events\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f'ExecStart={QUEUED} run --config "{config}"\n'
        "EnvironmentFile=-%h/.config/hookclient/environment\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "KillSignal=SIGTERM\n"
        "TimeoutStopSec=30\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def test_launchd_agent_is_a_valid_plist(tmp_path: Path) -> None:
    agent = launchd_agent(tmp_path, None, tmp_path / "logs")
    data = plistlib.loads(agent.content.encode())
    assert agent.path == tmp_path / "Library/LaunchAgents/dev.hookclient.queued.plist"
    assert data == {
        "Label": "dev.hookclient.queued",
        "ProgramArguments": [QUEUED, "run"],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 5,
        "StandardErrorPath": str(tmp_path / "logs" / "queued.stderr.log"),
    }
    assert agent.enable == [["launchctl", "load", "-w", str(agent.path)]]


def test_windows_gets_a_task_scheduler_command() -> None:
    assert "schtasks /Create /TN hookclient-queued /SC ONLOGON" in windows_hint(None)


def test_install_and_uninstall_drive_systemctl(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "calls"
    systemctl = fake_bin / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n')
    systemctl.chmod(0o755)
    home = tmp_path / "home3"
    env = {**os.environ, "HOME": str(home), "PATH": f"{fake_bin}:{os.environ['PATH']}"}

    def queued(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "queued"), "service", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    installed = queued("install")
    assert installed.returncode == 0, installed.stderr
    unit = home / ".config/systemd/user/hookclient-queued.service"
    assert f"ExecStart={QUEUED} run\n" in unit.read_text()
    assert queued("status").returncode == 0
    assert queued("uninstall").returncode == 0
    assert not unit.exists()
    assert calls.read_text().splitlines() == [
        "--user daemon-reload",
        "--user enable --now hookclient-queued.service",
        "--user status --no-pager hookclient-queued.service",
        "--user disable --now hookclient-queued.service",
    ]


def test_install_without_systemctl_says_what_to_run(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    home = tmp_path / "home4"
    proc = subprocess.run(
        [str(BIN / "queued"), "service", "install"],
        env={**os.environ, "HOME": str(home), "PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "systemctl is not available here" in proc.stderr
    assert "systemctl --user enable --now hookclient-queued.service" in proc.stderr
    assert (home / ".config/systemd/user/hookclient-queued.service").exists()
