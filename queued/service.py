"""``queued service install|uninstall|status``: run the daemon under the OS's supervisor.

Linux: a systemd *user* unit (``~/.config/systemd/user/hookclient-queued.service``),
enabled with ``systemctl --user``.  macOS: a launchd agent
(``~/Library/LaunchAgents/dev.hookclient.queued.plist``).  Elsewhere the command prints
what to run instead.  Either way the daemon is this installation's ``queued run``, with
the config file given, restarted when it fails, and stopped with SIGTERM, on which it
finishes in-flight deliveries.

A supervisor does not see the shell's environment: the token must come from a
``token_file`` in the config, or (systemd) from the optional
``~/.config/hookclient/environment`` file (``HOOKCLIENT_TOKEN=...``, chmod 600).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

UNIT_NAME = "hookclient-queued.service"
AGENT_LABEL = "dev.hookclient.queued"


@dataclass(frozen=True)
class ServiceFile:
    kind: str  # systemd | launchd
    path: Path
    content: str
    enable: list[list[str]]
    disable: list[list[str]]
    status: list[str]


def queued_argv(config: str | None) -> list[str]:
    script = Path(sys.executable).with_name("queued")
    argv = [str(script), "run"]
    if config:
        argv += ["--config", str(Path(config).resolve())]
    return argv


def systemd_unit(home: Path, config: str | None) -> ServiceFile:
    argv = queued_argv(config)
    exec_start = " ".join(_systemd_quote(a) for a in argv)
    content = f"""\
[Unit]
Description=hookclient queue daemon: delivers spooled Claude Code hook events
After=network-online.target

[Service]
Type=simple
ExecStart={exec_start}
EnvironmentFile=-%h/.config/hookclient/environment
Restart=on-failure
RestartSec=5
KillSignal=SIGTERM
TimeoutStopSec=30

[Install]
WantedBy=default.target
"""
    path = home / ".config" / "systemd" / "user" / UNIT_NAME
    return ServiceFile(
        "systemd",
        path,
        content,
        enable=[
            ["systemctl", "--user", "daemon-reload"],
            ["systemctl", "--user", "enable", "--now", UNIT_NAME],
        ],
        disable=[["systemctl", "--user", "disable", "--now", UNIT_NAME]],
        status=["systemctl", "--user", "status", "--no-pager", UNIT_NAME],
    )


def launchd_agent(home: Path, config: str | None, log_dir: Path) -> ServiceFile:
    args = "\n".join(f"    <string>{escape(a)}</string>" for a in queued_argv(config))
    content = f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{AGENT_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
{args}
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ThrottleInterval</key>
  <integer>5</integer>
  <key>StandardErrorPath</key>
  <string>{escape(str(log_dir / "queued.stderr.log"))}</string>
</dict>
</plist>
"""
    path = home / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"
    return ServiceFile(
        "launchd",
        path,
        content,
        enable=[["launchctl", "load", "-w", str(path)]],
        disable=[["launchctl", "unload", "-w", str(path)]],
        status=["launchctl", "list", AGENT_LABEL],
    )


def windows_hint(config: str | None) -> str:
    argv = queued_argv(config)
    command = " ".join(f'"{a}"' if " " in a else a for a in argv)
    return (
        "Windows has no service support here yet; register a logon task instead:\n"
        f'  schtasks /Create /TN hookclient-queued /SC ONLOGON /RL LIMITED /TR "{command}"\n'
        "and start it now with: schtasks /Run /TN hookclient-queued"
    )


def for_platform(
    platform: str, home: Path, config: str | None, log_dir: Path
) -> ServiceFile | None:
    if platform.startswith("linux"):
        return systemd_unit(home, config)
    if platform == "darwin":
        return launchd_agent(home, config, log_dir)
    return None


def run_all(commands: list[list[str]]) -> str | None:
    """Run supervisor commands; the first failure as text, or None."""
    for cmd in commands:
        if shutil.which(cmd[0]) is None:
            return f"{cmd[0]} is not available here"
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout).strip()[:300]}"
    return None


def write(service: ServiceFile) -> None:
    service.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = service.path.with_name(f".{service.path.name}.{os.getpid()}")
    tmp.write_text(service.content, encoding="utf-8")
    os.replace(tmp, service.path)


def _systemd_quote(arg: str) -> str:
    if all(c.isalnum() or c in "/._-=:@+," for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
