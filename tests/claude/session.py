"""Running one real Claude Code print-mode session offline, and reading what it did.

Shared by the end-to-end tests and ``bench/session.py``, so that the benchmark times
exactly the session the tests check.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The CLI's API key in the fake sessions. The hook's environment holds it (Claude Code
#: passes its own environment down), so tests grep hookclient's output for it.
API_KEY = "sk-ant-fake-e2e-7c1d"
#: What the CLI prints on stderr when a hook fails or is cancelled (docs/claude-code.md).
HOOK_TROUBLE = re.compile(r"hook \[.*\] failed|hook cancelled", re.IGNORECASE)
#: Generous: a session takes about a second; a slow CI box gets a minute and more.
SESSION_TIMEOUT = 180.0
#: The recording hook: writes its stdin, byte for byte, to ``<dir>/<ns>-<pid>.json``.
#: One file per invocation (hooks of one event run in parallel, so one shared file could
#: interleave) named so that sorting the names gives the order the hooks started in.
_RECORDER = (
    "import os, sys, time\n"
    "data = sys.stdin.buffer.read()\n"
    "name = '%020d-%07d.json' % (time.time_ns(), os.getpid())\n"
    "with open(os.path.join(sys.argv[1], name), 'wb') as fh: fh.write(data)\n"
)


@dataclass(frozen=True)
class Session:
    """What one ``claude -p`` run left behind."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def result(self) -> dict[str, Any]:
        """The ``--output-format json`` object (``result``, ``is_error``, ``session_id``)."""
        parsed = json.loads(self.stdout)
        assert isinstance(parsed, dict), self.stdout
        return parsed

    def hook_trouble(self) -> list[str]:
        """stderr lines where the CLI reports a failed or cancelled hook."""
        return [line for line in self.stderr.splitlines() if HOOK_TROUBLE.search(line)]


def claude_env(model_url: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment docs/claude-code.md describes for an offline session, and no more.

    Built from scratch rather than copied from ``os.environ``: the developer's own
    Claude Code or hookclient settings must not leak into a test session.
    """
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": model_url,
        "ANTHROPIC_API_KEY": API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    if os.environ.get("TMPDIR"):
        env["TMPDIR"] = os.environ["TMPDIR"]
    env.update(extra)
    return env


def run_claude(
    claude: Path,
    project: Path,
    env: dict[str, str],
    prompt: str,
    *,
    allowed_tools: str = "Bash(echo:*)",
    timeout: float = SESSION_TIMEOUT,
    args: Sequence[str] = (),
) -> Session:
    """``claude -p PROMPT --output-format json [ARGS]`` in ``project``; stdin is /dev/null
    (``args``: ``--resume ID``, ``--fork-session``, ...)."""
    cmd = [str(claude), "-p", prompt, "--output-format", "json", "--allowedTools", allowed_tools]
    cmd += list(args)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Session(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


def recorder_command(directory: Path) -> str:
    """A hook command that records each payload it gets (see ``_RECORDER``)."""
    directory.mkdir(parents=True, exist_ok=True)
    return shlex.join([sys.executable, "-I", "-c", _RECORDER, str(directory)])


def add_hook_everywhere(settings: Path, hook: dict[str, Any]) -> list[str]:
    """Add ``hook`` to every event group already in the settings file; returns the events.

    Used to put the recording hook beside hookclient's on exactly the events
    ``hookclient install`` registered, with the same matchers.
    """
    data = json.loads(settings.read_text())
    for groups in data.get("hooks", {}).values():
        for group in groups:
            group["hooks"].append(dict(hook))
    settings.write_text(json.dumps(data, indent=2) + "\n")
    return list(data.get("hooks", {}))


def recorded(directory: Path) -> list[dict[str, Any]]:
    """The payloads the recording hook got, in the order the hooks started."""
    return [json.loads(p.read_bytes()) for p in sorted(directory.glob("*.json"))]


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A hookclient config file (JSON values are valid TOML for str, num, bool, arrays)."""
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
