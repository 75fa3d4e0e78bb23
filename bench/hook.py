"""How much does `hookclient send` cost a Claude Code session, per event?

Runs each case alternately with its yardstick in the same run (these machines are shared
and noisy, so only ratios measured side by side mean anything) and prints medians:

- spool mode, and auto mode with a daemon running      vs  `python -c pass`
- spool mode as installed: no --config (the user and
  project files), default spool and log directories     vs  `python -c pass`
- direct mode to a healthy local receiver               vs  `python -c "import httpx"`
- direct mode, endpoint black-holed, breaker closed     vs  inline_budget
- direct mode, breaker open (spooled without network)   vs  `python -c pass`

All but the black-holed case alternate in one group of --runs rounds; the black hole
(a second a run) gets a quarter of them.

The hook keeps parsed config files in a cache (hookclient/configcache.py) that takes a
file only once it has not changed for a couple of seconds, as a user's config has not;
the configs written here are left to settle that long before the runs, and one more
row times the spool path with that cache emptied before every run (the first event
after an edit of the config).  The cache lives under a private XDG_STATE_HOME in the
bench's temporary directory.

Usage: .venv/bin/python bench/hook.py [--runs N] [--attribution]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PAYLOAD = (ROOT / "tests" / "fixtures" / "post-tool-use-edit.json").read_bytes()
TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local receiver
#: hookclient.configcache.RACY_SECONDS and a margin: config files this old are cached.
SETTLE = 2.5


def timed(cmd: list[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False
    )
    return (time.perf_counter() - start) * 1000


#: Between two runs: what a run leaves behind (the daemon delivering what auto mode
#: spooled, the receiver committing what direct mode sent) finishes before the next
#: case, yardsticks included, is timed on this 2-core machine.
PAUSE = 0.05


def alternate(cases: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up: page cache, bytecode
        fn()
    for _ in range(runs):
        for name, fn in cases.items():
            time.sleep(PAUSE)
            samples[name].append(fn())
    return {name: statistics.median(values) for name, values in samples.items()}


def write_config(work: Path, name: str, url: str, **delivery: object) -> Path:
    path = work / f"{name}.toml"
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in delivery.items())
    path.write_text(
        f'[endpoint]\nurl = "{url}"\ntimeout = 5.0\n[delivery]\n{extra}'
        f'[queue]\ndir = "{work / name / "spool"}"\nbreaker_failures = 1000\n'
        "breaker_cooldown = 86400\n"  # the open case's breaker.json stays open all run
        f'[logs]\ndir = "{work / name / "logs"}"\n'
    )
    return path


def black_hole() -> tuple[socket.socket, str]:
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conns.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return server, f"http://127.0.0.1:{server.getsockname()[1]}/hooks"


def start_receiver(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = work / "rx.port"
    proc = subprocess.Popen(
        [
            str(BIN / "hookclient-receiver"),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--db",
            str(work / "rx.db"),
        ],
        env={**os.environ, "HOOKCLIENT_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("receiver did not start")
        time.sleep(0.05)
    time.sleep(0.3)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}/hooks"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument(
        "--attribution",
        action="store_true",
        help="also time the spool path with each module it left out imported again",
    )
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "hookclient"), str(ROOT / "queued")],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-"))
    env = {**os.environ, "HOOKCLIENT_TOKEN": TOKEN, "XDG_STATE_HOME": str(work / "state")}
    cold_env = {**env, "XDG_STATE_HOME": str(work / "state-cold")}  # a cache of its own
    cold_cache = work / "state-cold" / "hookclient" / "cache" / "config.json"

    def cold(cmd: list[str]) -> float:
        cold_cache.unlink(missing_ok=True)
        return timed(cmd, PAYLOAD, cold_env)

    py = str(BIN / "python")
    hook = str(BIN / "hookclient")
    receiver, url = start_receiver(work)
    hole, hole_url = black_hole()
    daemon = None
    try:
        spool_cfg = write_config(work, "spool", url, mode="spool")
        project = work / "project" / ".claude" / "hookclient.toml"
        project.parent.mkdir(parents=True)
        project.write_text(f'[endpoint]\nurl = "{url}"\n[delivery]\nmode = "spool"\n')
        installed = {  # as `hookclient install` registers it: no --config, default dirs
            **{k: v for k, v in env.items() if k != "HOOKCLIENT_CONFIG"},
            "CLAUDE_PROJECT_DIR": str(project.parent.parent),
            "XDG_CONFIG_HOME": str(work / "config"),
        }
        auto_cfg = write_config(work, "auto", url, mode="auto")
        direct_cfg = write_config(work, "direct", url, mode="direct")
        budget = 1.0
        hole_cfg = write_config(work, "hole", hole_url, mode="direct", inline_budget=budget)
        open_cfg = write_config(work, "open", hole_url, mode="direct")
        breaker = work / "open" / "spool" / "breaker.json"
        breaker.parent.mkdir(parents=True)
        breaker.write_text(
            json.dumps({"state": "open", "failures": 1000, "openUntil": time.time() + 86400})
        )
        daemon = subprocess.Popen(
            [str(BIN / "queued"), "run", "--config", str(auto_cfg)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not (work / "auto" / "spool" / "daemon.pid").exists():
            time.sleep(0.05)
        time.sleep(SETTLE)
        fast = alternate(
            {
                "python -c pass": lambda: timed([py, "-c", "pass"]),
                "send --mode spool": lambda: timed(
                    [hook, "send", "--config", str(spool_cfg)], PAYLOAD, env
                ),
                "send auto, daemon running": lambda: timed(
                    [hook, "send", "--config", str(auto_cfg)], PAYLOAD, env
                ),
                "send, no --config, default dirs": lambda: timed(
                    [hook, "send"], PAYLOAD, installed
                ),
                "send --mode spool, config cache cold": lambda: cold(
                    [hook, "send", "--config", str(spool_cfg)]
                ),
                'python -c "import httpx"': lambda: timed([py, "-c", "import httpx"]),
                "send --mode direct (receiver)": lambda: timed(
                    [hook, "send", "--config", str(direct_cfg)], PAYLOAD, env
                ),
                "direct, breaker open": lambda: timed(
                    [hook, "send", "--config", str(open_cfg)], PAYLOAD, env
                ),
            },
            args.runs,
        )
        slow = alternate(
            {
                "direct, black hole, breaker closed": lambda: timed(
                    [hook, "send", "--config", str(hole_cfg)], PAYLOAD, env
                ),
            },
            max(5, args.runs // 4),
        )
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait()
        receiver.terminate()
        receiver.wait()
        hole.close()
    base = fast["python -c pass"]
    hole_ms = slow["direct, black hole, breaker closed"]
    httpx_base = fast['python -c "import httpx"']
    print(
        f"hookclient send, median wall ms over {args.runs} alternating runs "
        f"({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores)"
    )
    print(f"  {'case':<38} {'ms':>8}  ratio")
    rows = [
        ("python -c pass", fast["python -c pass"], "1.00x pass"),
        (
            "send --mode spool",
            fast["send --mode spool"],
            f"{fast['send --mode spool'] / base:.2f}x pass",
        ),
        (
            "send auto, daemon running",
            fast["send auto, daemon running"],
            f"{fast['send auto, daemon running'] / base:.2f}x pass",
        ),
        (
            "send, no --config, default dirs",
            fast["send, no --config, default dirs"],
            f"{fast['send, no --config, default dirs'] / base:.2f}x pass",
        ),
        (
            "send --mode spool, config cache cold",
            fast["send --mode spool, config cache cold"],
            f"{fast['send --mode spool, config cache cold'] / base:.2f}x pass",
        ),
        ('python -c "import httpx"', httpx_base, f"{httpx_base / base:.2f}x pass"),
        (
            "send --mode direct (receiver)",
            fast["send --mode direct (receiver)"],
            f"{fast['send --mode direct (receiver)'] / httpx_base:.2f}x import httpx",
        ),
        (
            "direct, black hole, breaker closed",
            slow["direct, black hole, breaker closed"],
            f"budget {budget:.1f} s + {hole_ms / 1000 - budget:.3f} s",
        ),
        (
            "direct, breaker open",
            fast["direct, breaker open"],
            f"{fast['direct, breaker open'] / base:.2f}x pass",
        ),
    ]
    for name, ms, ratio in rows:
        print(f"  {name:<38} {ms:8.1f}  {ratio}")
    if args.attribution:
        attribution(args.runs, py, spool_cfg, env)
    return 0


#: What the fast path no longer imports, each put back in front of the hook by --attribution.
LEFT_OUT = ("typing", "dataclasses", "pathlib", "tomllib", "platformdirs", "hashlib", "signal")
SEND = "import sys; {}from hookclient.__main__ import main; sys.exit(main(['send', *sys.argv[1:]]))"


def attribution(runs: int, py: str, config: Path, env: dict[str, str]) -> None:
    """What each module left out of the fast path would cost it if it came back: the
    spool-mode hook as it is, and the same run with that module imported first."""
    cases = {"python -c pass": lambda: timed([py, "-c", "pass"])}
    for module in ("", *LEFT_OUT):
        code = SEND.format(f"import {module}; " if module else "")
        cases[module or "send --mode spool"] = partial(
            timed, [py, "-c", code, "--config", str(config)], PAYLOAD, env
        )
    medians = alternate(cases, runs)
    hook = medians["send --mode spool"]
    print(f"what each module left out would add back, median of {runs} alternating runs")
    print(f"  {'case':<38} {'ms':>8}  added")
    print(f"  {'python -c pass':<38} {medians['python -c pass']:8.1f}")
    print(f"  {'send --mode spool (as it is)':<38} {hook:8.1f}")
    for module in LEFT_OUT:
        ms = medians[module]
        print(f"  {'+ import ' + module:<38} {ms:8.1f}  {ms - hook:+.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
