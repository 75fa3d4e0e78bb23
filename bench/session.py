"""What does hookclient cost a real Claude Code session, per hook invocation?

Runs the same scripted print-mode session (the pinned CLI against the fake model of
``tests/claude``: one Bash tool call, then a final text) again and again, the variants
taking turns in one run, because these machines are shared and noisy and only figures
measured side by side mean anything:

  a  no hooks                                        the floor
  p  `python -c pass` as the hook                    the floor of any Python hook, in situ
  b  hookclient, direct mode, receiver up            one POST per event from the hook
  c  hookclient, direct mode, receiver down          breaker open after the first failures
  d  hookclient, auto mode, `queued` running         the hook only writes the spool
  d0 the same, with `queued run --nice 0`            the daemon at the session's priority
  e  curl one-liner hook (curl -s -m 2 -d @- URL)    receiver up, then down
  f  Claude Code's native "type": "http" hook        receiver up, then down

Every variant registers on the events ``hookclient install`` writes (the command
variants through it, the others on the same events with the same matchers).
``python -c pass`` and ``python -c "import httpx"`` are timed in the same rounds: the
cost of starting the hook's interpreter, without and with the HTTP client.

Reported per variant: the median session wall time, the time added per hook invocation
((variant - a) / invocations) and its ratio to the yardsticks, and where the events went
(delivered: reached the endpoint; kept: left in hookclient's spool; lost: neither).

Usage: .venv/bin/python bench/session.py [--runs N]   (N=10 takes about two minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.claude.cli import VERSION, ClaudeUnavailable, ensure_claude  # noqa: E402
from tests.claude.fake_model import FakeModel, Text, ToolUse, Turn  # noqa: E402
from tests.claude.session import (  # noqa: E402
    Session,
    claude_env,
    run_claude,
    write_toml,
)
from tests.conftest import TOKEN, Receiver, start_receiver, wait_for  # noqa: E402

BIN = Path(sys.executable).parent
SCRIPT: list[Turn] = [[ToolUse("Bash", {"command": "echo hello"})], [Text("done")]]
PROMPT = "say hello"


@dataclass
class Variant:
    """One way of hooking the session, and what it left behind."""

    key: str
    label: str
    project: Path
    home: Path
    spool: Path | None = None
    receiver: Receiver | None = None
    times: list[float] = field(default_factory=list)
    warmup: float = 0.0
    sessions: int = 0
    trouble: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.receiver is not None, f"{self.key} has no receiver"
        return self.receiver.url

    def run(self, claude: Path, model: FakeModel) -> float:
        env = claude_env(model.url, self.home, HOOKCLIENT_TOKEN=TOKEN)
        turns = len(model.scripted())
        session = run_claude(claude, self.project, env, PROMPT)
        check(session, self.label)
        if len(model.scripted()) - turns != len(SCRIPT):  # a hook changed the conversation
            raise SystemExit(f"{self.label}: the model saw {len(model.scripted()) - turns} turns")
        self.sessions += 1
        self.trouble += session.hook_trouble()
        return session.seconds

    def delivered(self) -> int:
        """Hook events that reached the endpoint (for curl and http: whatever the receiver
        made of a bare payload, it got it).  Not the Transcript envelopes the daemon also
        ships: they are not hook invocations, and counting them would divide the added
        time by too many hooks."""
        if self.receiver is None:
            return 0
        sql = "SELECT COUNT(*) FROM webhook_events WHERE event IS NULL OR event != 'Transcript'"
        with sqlite3.connect(self.receiver.db) as conn:
            return int(conn.execute(sql).fetchone()[0])

    def kept(self) -> int:
        """Events waiting in hookclient's spool (pending/ or failed/)."""
        if self.spool is None:
            return 0
        return sum(len(list((self.spool / s).glob("*.json"))) for s in ("pending", "failed"))


def check(session: Session, label: str) -> None:
    """A benchmark of a broken session measures nothing: stop at the first one."""
    if session.returncode != 0 or session.result.get("result") != "done":
        raise SystemExit(f"{label}: session failed: {session.stdout[:300]} {session.stderr}")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def install_hookclient(variant: Variant, url: str, **delivery: Any) -> None:
    """``hookclient install --scope project`` with a config of the variant's own."""
    assert variant.spool is not None
    config = write_toml(
        variant.project / "hookclient.toml",
        {
            "endpoint": {"url": url},
            "delivery": delivery,
            "queue": {"dir": str(variant.spool)},
            "logs": {"dir": str(variant.spool.parent / "logs")},
        },
    )
    subprocess.run(
        [str(BIN / "hookclient"), "install", "--scope", "project", "--config", str(config)],
        cwd=variant.project,
        env={**os.environ, "HOME": str(variant.home)},
        stdout=subprocess.DEVNULL,
        check=True,
    )


def install_other(variant: Variant, template: Path, hook: dict[str, Any]) -> None:
    """The same events and matchers as hookclient's install, with ``hook`` instead."""
    data = json.loads(template.read_text())
    for groups in data["hooks"].values():
        for group in groups:
            group["hooks"] = [dict(hook)]
    settings = variant.project / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(data, indent=2))


def closed_port() -> int:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="measured rounds (default 10)")
    parser.add_argument(
        "--only",
        metavar="KEYS",
        help="run only these variants, comma-separated (a is always run): --only p,d,d0 "
        "gives more rounds of the auto-mode figures in the same time",
    )
    args = parser.parse_args()
    wanted = None if args.only is None else {"a", *args.only.split(",")}
    try:
        claude = ensure_claude()
    except ClaudeUnavailable as exc:
        print(f"bench/session.py: {exc}", file=sys.stderr)
        return 1
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "hookclient"), str(ROOT / "queued")],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-session-"))
    variants: dict[str, Variant] = {}
    receivers: list[Receiver] = []
    daemons: list[subprocess.Popen[bytes]] = []

    def variant(key: str, label: str, *, spool: bool = False, up: bool = False) -> Variant:
        root = work / key
        (root / "project").mkdir(parents=True)
        (root / "home").mkdir()
        v = Variant(key, label, root / "project", root / "home")
        if spool:
            v.spool = root / "spool"
        if up:
            v.receiver = start_receiver(root, name="rx")
            receivers.append(v.receiver)
        variants[key] = v
        return v

    try:
        down = f"http://127.0.0.1:{closed_port()}/hooks"
        variant("a", "a  no hooks")
        floor_hook = variant("p", "p  hook: python -c pass")
        b = variant("b", "b  hookclient direct, receiver up", spool=True, up=True)
        install_hookclient(b, b.url, mode="direct")
        template = b.project / ".claude" / "settings.json"
        pass_hook = shlex.join([sys.executable, "-c", "pass"])
        install_other(floor_hook, template, {"type": "command", "command": pass_hook, "timeout": 5})
        c = variant("c", "c  hookclient direct, receiver down", spool=True)
        install_hookclient(c, down, mode="direct")
        d = variant("d", "d  hookclient auto, queued running", spool=True, up=True)
        install_hookclient(d, d.url, mode="auto")
        d0 = variant("d0", "d0 auto, queued at nice 0", spool=True, up=True)
        install_hookclient(d0, d0.url, mode="auto")
        for key, label, up in (
            ("e", "e  curl one-liner, up", True),
            ("e-", "e  curl, down", False),
        ):
            v = variant(key, label, up=up)
            url = v.url if up else down
            command = f"curl -s -m 2 -d @- {url}"
            install_other(v, template, {"type": "command", "command": command, "timeout": 5})
        for key, label, up in (
            ("f", "f  native http, up", True),
            ("f-", "f  native http, down", False),
        ):
            v = variant(key, label, up=up)
            url = v.url if up else down
            install_other(v, template, {"type": "http", "url": url, "timeout": 5})
        if wanted is not None:
            variants = {k: v for k, v in variants.items() if k in wanted}
        for v, nice in ((d, "10"), (d0, "0")):  # the daemon's default priority, and none
            config = v.project / "hookclient.toml"
            daemons.append(
                subprocess.Popen(
                    [str(BIN / "queued"), "run", "--nice", nice, "--config", str(config)],
                    env={**os.environ, "HOOKCLIENT_TOKEN": TOKEN},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            assert v.spool is not None
            wait_for((v.spool / "daemon.pid").exists)

        yardsticks: dict[str, Callable[[], float]] = {
            "python -c pass": lambda: timed([sys.executable, "-c", "pass"]),
            'python -c "import httpx"': lambda: timed([sys.executable, "-c", "import httpx"]),
        }
        sticks: dict[str, list[float]] = {name: [] for name in yardsticks}
        order = list(variants.values())
        with FakeModel(SCRIPT) as model:
            for v in order:  # warm-up: page cache, bytecode; c opens its breaker here
                v.warmup = v.run(claude, model)
            for fn in yardsticks.values():
                fn()
            for n in range(args.runs):
                shift = n % len(order)  # rotate, so no variant always follows the same one
                for v in order[shift:] + order[:shift]:
                    v.times.append(v.run(claude, model))
                for name, fn in yardsticks.items():
                    sticks[name].append(fn())
        for v in (d, d0):  # each daemon has delivered its variant's events
            wait_for(lambda v=v: v.kept() == 0, timeout=120)
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        for rx in receivers:
            rx.stop()

    report(variants, sticks, args.runs, claude)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    variants: dict[str, Variant], sticks: dict[str, list[float]], runs: int, claude: Path
) -> None:
    floor = statistics.median(variants["a"].times)
    py_pass = statistics.median(sticks["python -c pass"]) * 1000
    py_httpx = statistics.median(sticks['python -c "import httpx"']) * 1000
    # Invocations per session: a healthy variant's endpoint counts them; a down one
    # fires the same hooks as its healthy twin.
    per_session = {
        k: v.delivered() / v.sessions
        for k, v in variants.items()
        if k in ("b", "d", "d0", "e", "f") and v.sessions
    }
    hooked = per_session.get("b") or per_session.get("d") or per_session.get("d0") or 0.0
    per_session["c"] = per_session["p"] = hooked  # the same hooks fire, nothing counts them
    per_session["e-"] = per_session.get("e", 0.0)
    per_session["f-"] = per_session.get("f", 0.0)
    print(
        f"Session cost, Claude Code {VERSION} ({claude.name}), median of {runs} alternating "
        f"rounds; {time.strftime('%Y-%m-%d %H:%M %Z')}; {machine()}"
    )
    print(
        f'yardsticks: python -c pass {py_pass:.1f} ms, python -c "import httpx" {py_httpx:.1f} ms'
    )
    head = (
        f"{'variant':<38} {'session s':>9} {'hooks':>5} {'+ms/hook':>8} {'x pass':>6} "
        f"{'x httpx':>7}  {'delivered':>9} {'kept':>5} {'lost':>5}"
    )
    print(head)
    print("-" * len(head))
    for key, v in variants.items():
        median = statistics.median(v.times)
        if key == "a":
            print(f"{v.label:<38} {median:9.3f} {'-':>5} {'-':>8} {'-':>6} {'-':>7}")
            continue
        hooks = per_session[key]
        added = (median - floor) / hooks * 1000 if hooks else float("nan")
        line = (
            f"{v.label:<38} {median:9.3f} {hooks:5.1f} {added:8.1f} {added / py_pass:6.2f} "
            f"{added / py_httpx:7.2f}"
        )
        if key == "p":  # sends nothing: no delivery columns
            print(line)
            continue
        total = round(hooks * v.sessions)
        delivered, kept = v.delivered(), v.kept()
        lost = max(0, total - delivered - kept)
        print(f"{line}  {delivered:>9} {kept:>5} {lost:>5}")
    c = variants.get("c")
    warmup = (
        f"c's warm-up session (the one that opened the breaker): {c.warmup:.3f} s; " if c else ""
    )
    print(f"{warmup}sessions per variant: {runs + 1} (warm-up included in the event counts)")
    for key, v in variants.items():
        if v.trouble:
            kinds = sorted({t.split(" failed:")[0] + " failed" for t in v.trouble})
            print(f"stderr of {key}: {len(v.trouble)} hook failure line(s): {'; '.join(kinds)}")


if __name__ == "__main__":
    sys.exit(main())
