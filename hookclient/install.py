"""``hookclient install`` / ``uninstall``: register the hook in Claude Code's settings.

What it writes follows what the real CLI was seen to do (docs/claude-code.md):

- the command is an absolute path to *this* installation's ``hookclient send``, so the
  hook works from any directory and whatever venv the session has active;
- every entry carries an explicit ``timeout`` that covers the hook's own budget; for
  SessionEnd that also lifts Claude Code's default 1.5 s limit for all its hooks;
- WorktreeCreate (Claude Code reads its stdout) and MessageDisplay (one run per streamed
  chunk) are never registered;
- ``--async`` applies to tool events only: async hooks still running when the CLI exits
  are killed, so Stop and SessionEnd always stay synchronous.

Everything else in the file is kept as it was; our entries are recognised by their
command, so a second run changes nothing and ``uninstall`` removes only ours.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hookclient import dirs
from hookclient.config import Config
from hookclient.errors import InstallError

#: Hook events Claude Code 2.1.197 knows (docs/claude-code.md).
KNOWN_EVENTS = (
    "PreToolUse", "PostToolUse", "PostToolUseFailure", "PostToolBatch", "Notification",
    "UserPromptSubmit", "UserPromptExpansion", "SessionStart", "SessionEnd", "Stop",
    "StopFailure", "SubagentStart", "SubagentStop", "PreCompact", "PostCompact",
    "PermissionRequest", "PermissionDenied", "Setup", "TeammateIdle", "TaskCreated",
    "TaskCompleted", "Elicitation", "ElicitationResult", "ConfigChange", "WorktreeCreate",
    "WorktreeRemove", "InstructionsLoaded", "CwdChanged", "FileChanged", "MessageDisplay",
)  # fmt: skip
#: Never registered: Claude Code reads WorktreeCreate's stdout; MessageDisplay runs per chunk.
NEVER = frozenset({"WorktreeCreate", "MessageDisplay"})
#: Events whose hooks take a tool-name matcher; "*" matches every tool.
TOOL_EVENTS = frozenset(
    {"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest", "PermissionDenied"}
)
#: Async would let the CLI kill these at exit: always synchronous.
NEVER_ASYNC = frozenset({"Stop", "SessionEnd", "SubagentStop", "StopFailure"})
#: Seconds on top of the hook's budget for start-up and reading stdin.
TIMEOUT_MARGIN = 2.0
SCOPES = ("user", "project", "local")


@dataclass(frozen=True)
class Plan:
    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"{self.path} (now)",
                tofile=f"{self.path} (after)",
            )
        )


def settings_path(scope: str, environ: dict[str, str] | None = None) -> Path:
    environ = dict(os.environ) if environ is None else environ
    if scope == "user":
        return Path(environ.get("HOME") or Path.home()) / ".claude" / "settings.json"
    project = Path(environ.get("CLAUDE_PROJECT_DIR") or Path.cwd())
    name = "settings.json" if scope == "project" else "settings.local.json"
    return project / ".claude" / name


def hook_command(mode: str | None = None, config: str | None = None) -> str:
    """The absolute command of this installation's hook (exec form on Windows)."""
    script = Path(sys.executable).with_name("hookclient.exe" if os.name == "nt" else "hookclient")
    if os.name != "nt" and os.access(script, os.X_OK):
        parts = [str(script), "send"]
    else:  # no console script (or Windows): the real interpreter, never a bare python3
        parts = [str(Path(sys.executable).resolve()), "-m", "hookclient", "send"]
    if mode:
        parts += ["--mode", mode]
    if config:
        parts += ["--config", str(Path(config).resolve())]
    if os.name == "nt":
        return " ".join(f'"{p}"' if " " in p else p for p in parts)
    return shlex.join(parts)


def is_ours(command: object) -> bool:
    """An entry this tool wrote: ``.../hookclient send ...`` or ``-m hookclient send``."""
    if not isinstance(command, str):
        return False
    words = command.replace('"', " ").split()
    for i, word in enumerate(words[:-1]):
        name = os.path.basename(word).removesuffix(".exe")
        if (name == "hookclient" or (word == "hookclient" and i and words[i - 1] == "-m")) and (
            words[i + 1] == "send"
        ):
            return True
    return False


def timeout_for(config: Config, event: str) -> int:
    budget = config.delivery.budget_for(event)
    return max(2, math.ceil(budget + TIMEOUT_MARGIN))


def entry(command: str, config: Config, event: str, *, use_async: bool) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "type": "command",
        "command": command,
        "timeout": timeout_for(config, event),
    }
    if use_async and event in TOOL_EVENTS and event not in NEVER_ASYNC:
        hook["async"] = True
    group: dict[str, Any] = {"hooks": [hook]}
    if event in TOOL_EVENTS:
        group = {"matcher": "*", **group}
    return group


def choose_events(events: list[str] | None) -> list[str]:
    if not events:
        return [e for e in KNOWN_EVENTS if e not in NEVER]
    unknown = [e for e in events if e not in KNOWN_EVENTS]
    if unknown:
        raise InstallError(
            f"unknown hook event(s): {', '.join(unknown)}; known: {', '.join(KNOWN_EVENTS)}"
        )
    refused = [e for e in events if e in NEVER]
    if refused:
        raise InstallError(
            f"will not register {', '.join(refused)}: Claude Code reads WorktreeCreate's "
            "stdout and runs MessageDisplay per streamed chunk"
        )
    return events


def load_settings(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", {}
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return text, {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InstallError(
            f"{path} is not valid JSON ({exc}); fix it by hand first, nothing was changed"
        ) from None
    if not isinstance(data, dict):
        raise InstallError(f"{path} holds a JSON {type(data).__name__}, not an object")
    if not isinstance(data.get("hooks", {}), dict):
        raise InstallError(f'{path}: "hooks" is not an object; fix it by hand first')
    return text, data


def without_ours(hooks: dict[str, Any]) -> dict[str, Any]:
    """The hooks table with every entry of ours removed (and groups left empty dropped)."""
    out: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            out[event] = groups
            continue
        kept = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                inner = [
                    h
                    for h in group["hooks"]
                    if not (isinstance(h, dict) and is_ours(h.get("command")))
                ]
                if not inner:
                    continue
                group = {**group, "hooks": inner}
            kept.append(group)
        if kept:
            out[event] = kept
    return out


def plan_install(
    path: Path, config: Config, events: list[str], command: str, *, use_async: bool
) -> Plan:
    before, data = load_settings(path)
    hooks = without_ours(data.get("hooks", {}))
    for event in events:
        hooks.setdefault(event, []).append(entry(command, config, event, use_async=use_async))
    return Plan(path, before, _render(data, hooks, before))


def plan_uninstall(path: Path) -> Plan:
    before, data = load_settings(path)
    if not before:
        return Plan(path, before, before)
    return Plan(path, before, _render(data, without_ours(data.get("hooks", {})), before))


def _render(data: dict[str, Any], hooks: dict[str, Any], before: str) -> str:
    new = dict(data)
    if hooks:
        new["hooks"] = hooks
    else:
        new.pop("hooks", None)
    if before and json.loads(before) == new:
        return before  # nothing to change: keep the file byte for byte
    return json.dumps(new, indent=2, ensure_ascii=False) + "\n"


def backup_dir() -> Path:
    """Where the previous settings files are kept: ``<user state dir>/backups``.

    Never next to the file: a project's ``.claude/`` is shared through git, and a backup
    there would be committed, or clutter everyone's ``git status``.
    """
    return Path(dirs.user_state_dir()) / "backups"


def write_backup(path: Path, text: str, directory: Path | None = None) -> Path:
    """Save ``text`` (``path``'s old content) in ``directory``, 0600; return its path.

    The name says which file it was (``<dir>-settings.json``, plus 8 hex of the full
    path, since every project has a ``settings.json``) and when; two runs in one second
    keep both backups.
    """
    directory = backup_dir() if directory is None else directory
    digest = hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:8]
    stem = f"{path.parent.parent.name or 'root'}-{path.name}.{digest}"
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for n in range(100):
            backup = directory / f"{stem}.bak-{stamp}{f'-{n}' if n else ''}"
            if _create_private(backup, text):
                return backup
    except OSError as exc:
        raise InstallError(
            f"cannot write a backup of {path} in {directory}: {exc.strerror}; nothing was changed"
        ) from None
    raise InstallError(f"too many backups of {path} in {directory} this second; try again")


def _create_private(path: Path, text: str) -> bool:
    """Write ``text`` to a new file made 0600; False if ``path`` already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return True


def apply(plan: Plan, backups: Path | None = None) -> Path | None:
    """Write the plan (backup first, in ``backups`` or :func:`backup_dir`); returns the
    backup's path, if one was made."""
    if not plan.changed:
        return None
    backup = write_backup(plan.path, plan.before, backups) if plan.before else None
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.path.with_name(f".{plan.path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(plan.after, encoding="utf-8")
        if plan.path.exists():
            os.chmod(tmp, plan.path.stat().st_mode & 0o777)
        os.replace(tmp, plan.path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InstallError(
            f"cannot write {plan.path}: {exc.strerror}; nothing was changed"
        ) from None
    return backup
