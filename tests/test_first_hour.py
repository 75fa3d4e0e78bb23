"""The newcomer's first hour, with real processes: the mistakes a new user makes
(a wrong token, a wrong URL, a config typo, no URL yet), each then fixed the way the
README says, each ending with every event at the receiver exactly once and no file
left in any spool, and no file moved by hand.

The configuration is the user file and the spools are the default ones (keyed by the
endpoint URL), as after the README's quick start: that is where events used to be
stranded.  Each test prints a ``FIRST-HOUR {...}`` line with its figures (events sent,
rows at the receiver, files left, the commands the user ran); ``FIRST_HOUR_REPORT``
collects them in a file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BIN, TOKEN, Receiver, kill_daemons, start_receiver, wait_for

pytestmark = pytest.mark.slow

WRONG = "wrong-token-77aa"


class Newcomer:
    """A user with a home, a project, a user config file and a shell."""

    def __init__(self, tmp_path: Path, receiver: Receiver) -> None:
        self.home = Path(os.environ["HOME"])
        self.project = tmp_path / "project"
        self.project.mkdir()
        self.receiver = receiver
        self.config = self.home / ".config" / "hookclient" / "config.toml"
        self.spools = self.home / ".local" / "state" / "hookclient" / "spool"
        self.token = TOKEN
        self.commands: list[str] = []
        self.sent = 0

    def write_config(self, text: str, *, by_user: bool = True) -> None:
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(text)
        if by_user:
            self.commands.append(f"edit {self.config.name}")

    def url_config(self, url: str) -> str:
        return f'[endpoint]\nurl = "{url}"\n'

    def export(self, token: str) -> None:
        self.token = token
        self.commands.append("export HOOKCLIENT_TOKEN=...")

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOOKCLIENT_TOKEN": self.token, "CLAUDE_PROJECT_DIR": ""}

    def send(self, count: int) -> None:
        """``count`` Stop events through ``hookclient send`` (auto mode), as Claude Code
        runs it: from the project directory, JSON on stdin."""
        for _ in range(count):
            payload = {"hook_event_name": "Stop", "session_id": "s-first-hour", "n": self.sent}
            run = subprocess.run(
                [str(BIN / "hookclient"), "send"],
                input=json.dumps(payload).encode(),
                capture_output=True,
                cwd=self.project,
                env=self.env(),
                timeout=60,
                check=False,
            )
            assert (run.returncode, run.stdout, run.stderr) == (0, b"", b"")
            self.sent += 1

    def run(self, *argv: str, record: bool = True) -> str:
        """A command the user types; its output (stdout and stderr)."""
        if record:
            self.commands.append(" ".join(argv))
        done = subprocess.run(
            [str(BIN / argv[0]), *argv[1:]],
            capture_output=True,
            cwd=self.project,
            env=self.env(),
            timeout=120,
            check=False,
        )
        return done.stdout.decode() + done.stderr.decode()

    def files(self, *states: str) -> list[Path]:
        states = states or ("tmp", "pending", "processing", "failed", "corrupt")
        return sorted(p for s in states for p in self.spools.glob(f"*/{s}/*") if p.is_file())

    def delivered_ns(self) -> list[int]:
        return sorted(r["envelope"]["payload"]["n"] for r in self.receiver.rows())

    def all_delivered(self) -> bool:
        return self.delivered_ns() == list(range(self.sent)) and not self.files()

    def finish(self, scenario: str) -> dict[str, Any]:
        wait_for(self.all_delivered, timeout=60)
        rows = self.receiver.rows()
        ids = [r["envelope"]["requestId"] for r in rows]
        figures = {
            "scenario": scenario,
            "sent": self.sent,
            "atReceiver": len(rows),
            "distinct": len(set(ids)),
            "filesLeft": len(self.files()),
            "commands": self.commands,
        }
        line = "FIRST-HOUR " + json.dumps(figures)
        print(line)
        report = os.environ.get("FIRST_HOUR_REPORT")
        if report:
            with open(report, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(figures) + "\n")
        assert figures["atReceiver"] == figures["distinct"] == self.sent
        return figures

    def stop_daemons(self) -> None:
        kill_daemons(*self.spools.glob("*"))


@pytest.fixture
def user(tmp_path: Path) -> Any:
    rx = start_receiver(tmp_path)
    person = Newcomer(tmp_path, rx)
    try:
        yield person
    finally:
        person.stop_daemons()
        rx.stop()


def test_a_wrong_token_then_the_right_one_and_replay_failed(user: Newcomer) -> None:
    """The daemon a hook started with a wrong token is replaced by replay-failed, which
    runs with the fixed one: no `queued stop`, no hunting for a pid."""
    user.write_config(user.url_config(user.receiver.url))
    user.export(WRONG)
    user.send(3)
    wait_for(lambda: len(user.files("failed")) == 3)  # 401 is permanent
    assert {a["status"] for a in user.receiver.audit()} == {"UNAUTHORIZED"}
    old = json.loads(next(user.spools.glob("*/daemon.pid")).read_text())

    user.export(TOKEN)
    out = user.run("queued", "replay-failed", "--all")
    assert "3 event(s) moved from failed/ to pending/" in out
    assert f"queued (pid {old['pid']}) delivered with another endpoint, token" in out
    user.finish("wrong token, then fixed")
    new = json.loads(next(user.spools.glob("*/daemon.pid")).read_text())
    assert new["pid"] != old["pid"] and new["fingerprint"] != old["fingerprint"]
    assert TOKEN not in json.dumps(new) and WRONG not in json.dumps(old)


def test_the_next_hook_replaces_a_daemon_with_a_stale_token(user: Newcomer) -> None:
    """The reverse order: the token is fixed before anything failed for good; the next
    event's hook replaces the daemon, and that event goes out with the new token."""
    user.write_config(user.url_config(user.receiver.url))
    user.export(WRONG)
    user.send(1)
    wait_for(lambda: len(user.files("failed")) == 1)
    user.export(TOKEN)
    user.send(2)
    wait_for(lambda: user.delivered_ns() == [1, 2])
    user.run("queued", "replay-failed", "--all")
    user.finish("wrong token, fixed, next hook")


def test_a_wrong_url_then_fixed_and_adopted(user: Newcomer) -> None:
    """404s under a wrong path stay in that URL's spool; status names it and the
    adopt command; adopt stops its daemon and the events go to the fixed URL."""
    wrong_url = user.receiver.url.replace("/hooks", "/hook")
    user.write_config(user.url_config(wrong_url))
    user.send(3)
    wait_for(lambda: len(user.files("failed")) == 3)  # 404 is permanent
    old_spool = user.files("failed")[0].parent.parent
    old_pid = json.loads((old_spool / "daemon.pid").read_text())["pid"]

    user.write_config(user.url_config(user.receiver.url))
    status = user.run("queued", "status")
    assert f"another spool holds events: {old_spool} ({wrong_url}): failed 3" in status
    assert f"queued adopt --from {old_spool}" in status
    out = user.run("queued", "adopt", "--from", wrong_url)
    assert f"3 event(s) moved from {old_spool} to " in out
    assert "started queued (pid " in out
    user.finish("wrong url, then fixed")
    assert not (old_spool / "daemon.lock").exists() or not _alive(old_pid)
    assert "another spool" not in user.run("queued", "status", record=False)


def test_a_config_typo_after_a_good_config_strands_nothing(user: Newcomer) -> None:
    """While the file does not parse, events go to the spool of the last configuration
    that worked, whose daemon delivers them: fixing the typo is all there is to do."""
    user.write_config(user.url_config(user.receiver.url), by_user=False)
    user.send(1)
    wait_for(lambda: user.delivered_ns() == [0])
    good = user.config.read_text()
    user.write_config(good.replace(f'"{user.receiver.url}"', f'"{user.receiver.url}'))
    user.send(2)
    user.write_config(good)
    user.send(1)
    figures = user.finish("config typo after a good config, then fixed")
    assert figures["commands"] == ["edit config.toml", "edit config.toml"]
    spooled = [
        line
        for path in (user.home / ".local" / "state" / "hookclient" / "log").glob("queue.log*")
        for line in map(json.loads, path.read_text().splitlines())
        if line.get("msg") == "spooled" and line.get("reason") == "configuration problem"
    ]
    assert len(spooled) == 2


@pytest.mark.parametrize("first", ["a config typo", "no url"])
def test_events_from_before_any_good_config_are_adopted_from_unrouted(
    user: Newcomer, first: str
) -> None:
    """No configuration ever worked: the events wait in the unrouted spool, which
    status points at; `queued adopt --from unrouted` sends them once a URL is set."""
    if first == "a config typo":
        user.write_config(f'[endpoint]\nurl = "{user.receiver.url}\n')
    user.send(2)
    unrouted = user.spools / "unrouted"
    assert len(list((unrouted / "pending").glob("*.json"))) == 2
    user.write_config(user.url_config(user.receiver.url))
    status = user.run("queued", "status")
    assert f"another spool holds events: {unrouted} (no endpoint configured" in status
    assert "queued adopt --from unrouted" in status
    out = user.run("queued", "adopt", "--from", "unrouted")
    assert f"2 event(s) moved from {unrouted} to " in out
    user.send(1)
    user.finish(f"{first} before any good config, then fixed")


def _alive(pid: int) -> bool:
    from tests.conftest import pid_alive

    return pid_alive(pid)
