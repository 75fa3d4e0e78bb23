"""`hookclient install` / `uninstall` against settings files of every scope."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hookclient import dirs
from hookclient.errors import InstallError
from hookclient.install import KNOWN_EVENTS, NEVER, is_ours
from tests.conftest import BIN, FIXTURES

HOOKCLIENT = str(BIN / "hookclient")
OTHER = {"type": "command", "command": "/usr/local/bin/audit-log --fast", "timeout": 3}


def run(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    env.pop("CLAUDE_PROJECT_DIR", None)
    return subprocess.run(
        [HOOKCLIENT, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    (path / ".claude").mkdir(parents=True)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home2"
    path.mkdir()
    return path


def backups_of(home: Path) -> list[Path]:
    """The settings backups kept in the user state dir of this HOME, oldest first."""
    directory = Path(str(dirs.resolve("state", environ={"HOME": str(home)}))) / "backups"
    return sorted(directory.glob("*.bak-*")) if directory.is_dir() else []


def settings(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def ours(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event, groups in data.get("hooks", {}).items():
        for group in groups:
            for hook in group["hooks"]:
                if is_ours(hook.get("command")):
                    found.setdefault(event, []).append({**hook, "matcher": group.get("matcher")})
    return found


@pytest.mark.parametrize(
    ("scope", "relative"),
    [
        ("user", "home/.claude/settings.json"),
        ("project", "project/.claude/settings.json"),
        ("local", "project/.claude/settings.local.json"),
    ],
)
def test_install_writes_every_event_with_absolute_command_and_timeouts(
    project: Path, home: Path, scope: str, relative: str
) -> None:
    result = run("install", "--scope", scope, cwd=project, home=home)
    assert result.returncode == 0, result.stderr
    base = {"home": home, "project": project}[relative.split("/")[0]]
    path = base / relative.split("/", 1)[1]
    found = ours(settings(path))

    assert set(found) == set(KNOWN_EVENTS) - NEVER
    assert "WorktreeCreate" not in found and "MessageDisplay" not in found
    for event, [hook] in found.items():
        words = shlex.split(hook["command"])
        assert Path(words[0]).is_absolute() and words[1:] == ["send"]
        assert hook["timeout"] >= 7 if event != "SessionEnd" else hook["timeout"] == 3
        assert hook["matcher"] == (
            "*"
            if event
            in {
                "PreToolUse",
                "PostToolUse",
                "PostToolUseFailure",
                "PermissionRequest",
                "PermissionDenied",
            }
            else None
        )
        assert "async" not in hook


def test_the_installed_command_works_from_another_directory(
    project: Path, home: Path, tmp_path: Path
) -> None:
    run("install", "--scope", "project", "--mode", "spool", cwd=project, home=home)
    [hook] = ours(settings(project / ".claude" / "settings.json"))["Stop"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    spool = tmp_path / "spool"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "HOOKCLIENT_QUEUE_DIR": str(spool),
        "HOOKCLIENT_LOGS_DIR": str(tmp_path / "logs"),
    }
    proc = subprocess.run(
        shlex.split(hook["command"]),
        input=(FIXTURES / "stop.json").read_bytes(),
        cwd=elsewhere,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert len(list((spool / "pending").glob("*.json"))) == 1


def test_other_hooks_and_keys_are_kept_and_second_run_changes_nothing(
    project: Path, home: Path
) -> None:
    path = project / ".claude" / "settings.json"
    original = {
        "model": "opus",
        "permissions": {"allow": ["Bash(ls:*)"]},
        "hooks": {
            "Stop": [{"hooks": [OTHER]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [OTHER]}],
        },
    }
    path.write_text(json.dumps(original))

    assert run("install", "--scope", "project", cwd=project, home=home).returncode == 0
    first = path.read_text()
    data = json.loads(first)
    assert data["model"] == "opus" and data["permissions"] == original["permissions"]
    assert data["hooks"]["Stop"][0] == {"hooks": [OTHER]}
    assert data["hooks"]["PreToolUse"][0] == {"matcher": "Bash", "hooks": [OTHER]}
    assert [json.loads(b.read_text()) for b in backups_of(home)] == [original]

    again = run("install", "--scope", "project", cwd=project, home=home)
    assert "nothing to change" in again.stdout
    assert path.read_text() == first
    assert len(backups_of(home)) == 1

    assert run("uninstall", "--scope", "project", cwd=project, home=home).returncode == 0
    assert settings(path) == original


@pytest.mark.parametrize(
    ("scope", "relative"),
    [
        ("user", "home/.claude/settings.json"),
        ("project", "project/.claude/settings.json"),
        ("local", "project/.claude/settings.local.json"),
    ],
)
def test_backups_go_to_the_user_state_dir_never_next_to_the_settings(
    project: Path, home: Path, scope: str, relative: str
) -> None:
    base = {"home": home, "project": project}[relative.split("/")[0]]
    path = base / relative.split("/", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"model": "opus"}\n')
    os.chmod(path, 0o644)

    installed = run("install", "--scope", scope, "--events", "Stop", cwd=project, home=home)
    removed = run("uninstall", "--scope", scope, cwd=project, home=home)

    assert (installed.returncode, removed.returncode) == (0, 0)
    first, second = backups_of(home)
    assert first.read_text() == '{"model": "opus"}\n'
    assert ours(json.loads(second.read_text()))["Stop"]  # what uninstall found
    assert installed.stdout.splitlines()[0] == (f"registered 1 events in {path} (backup: {first})")
    assert removed.stdout.splitlines() == [
        f"removed hookclient's hooks from {path} (backup: {second})"
    ]
    assert [stat.S_IMODE(b.stat().st_mode) for b in (first, second)] == [0o600, 0o600]
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no .bak-*
    assert settings(path) == {"model": "opus"}


def test_project_scope_says_the_command_path_is_this_machines(project: Path, home: Path) -> None:
    result = run("install", "--scope", "project", "--events", "Stop", cwd=project, home=home)
    path = project / ".claude" / "settings.json"
    [hook] = ours(settings(path))["Stop"]
    assert result.stdout.splitlines() == [
        f"registered 1 events in {path}",
        f"note: {path} is shared with the team, but its hook command"
        f" ({hook['command']}) is a path on this machine;"
        " for a personal install use --scope local instead",
    ]
    local = run("install", "--scope", "local", "--events", "Stop", cwd=project, home=home)
    assert "note:" not in local.stdout


def test_async_only_on_tool_events_never_on_stop_or_session_end(project: Path, home: Path) -> None:
    run("install", "--scope", "project", "--async", cwd=project, home=home)
    found = ours(settings(project / ".claude" / "settings.json"))
    assert found["PreToolUse"][0]["async"] is True
    assert found["PostToolUse"][0]["async"] is True
    for event in ("Stop", "SessionEnd", "SubagentStop", "UserPromptSubmit"):
        assert "async" not in found[event][0]


def test_dry_run_prints_a_diff_and_writes_nothing(project: Path, home: Path) -> None:
    result = run(
        "install", "--scope", "project", "--events", "Stop", "--dry-run", cwd=project, home=home
    )
    assert result.returncode == 0
    assert result.stdout.startswith("---") and '+            "command"' in result.stdout
    assert not (project / ".claude" / "settings.json").exists()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"hooks": []}'])
def test_a_broken_settings_file_is_refused_and_left_alone(
    project: Path, home: Path, text: str
) -> None:
    path = project / ".claude" / "settings.json"
    path.write_text(text)
    result = run("install", "--scope", "project", cwd=project, home=home)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert str(path) in line and "Traceback" not in result.stderr
    assert path.read_text() == text
    assert list(path.parent.glob("*.bak-*")) == []
    assert backups_of(home) == []


def test_refuses_events_that_need_stdout_or_are_unknown(project: Path, home: Path) -> None:
    for event in ("WorktreeCreate", "MessageDisplay", "NoSuchEvent"):
        result = run("install", "--scope", "project", "--events", event, cwd=project, home=home)
        assert result.returncode == 1 and event in result.stderr


def test_unwritable_settings_file_is_a_clear_error_and_changes_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root writes through file modes, so the refusal is injected at the rename."""
    import errno

    from hookclient import install as inst
    from hookclient.config import load_config

    path = project / ".claude" / "settings.json"
    path.write_text("{}")

    def refuse(*_args: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    cfg = load_config([], environ={})
    plan = inst.plan_install(path, cfg, ["Stop"], "/x/hookclient send", use_async=False)
    with pytest.raises(InstallError, match=r"cannot write .*nothing was changed"):
        inst.apply(plan)
    assert path.read_text() == "{}"
    assert list(path.parent.glob(".settings.json.*.tmp")) == []


def test_uninstall_on_a_file_without_our_hooks_changes_nothing(project: Path, home: Path) -> None:
    path = project / ".claude" / "settings.json"
    text = json.dumps({"hooks": {"Stop": [{"hooks": [OTHER]}]}})
    path.write_text(text)
    result = run("uninstall", "--scope", "project", cwd=project, home=home)
    assert result.returncode == 0 and "nothing to change" in result.stdout
    assert path.read_text() == text


def test_is_ours_recognises_only_hookclient_send() -> None:
    assert is_ours("/opt/venv/bin/hookclient send")
    assert is_ours("/opt/venv/bin/hookclient send --mode spool")
    assert is_ours('"C:\\\\py\\\\python.exe" -m hookclient send')
    assert is_ours(f"{sys.executable} -m hookclient send")
    assert not is_ours("/opt/venv/bin/hookclient config show")
    assert not is_ours("echo hookclient send-something")
    assert not is_ours(None)
