"""How fast does `queued` drain a backlog, and how quickly does it notice a new event?

Every figure is measured in this run next to a yardstick run alongside:

- drain of an N-event backlog to the minimal ASGI sink (bench/sink.py) and to the
  reference receiver, vs a bare httpx keep-alive client posting the same bodies with the
  same concurrency, and vs a curl-per-event loop (how a cron script would replay);
- idle latency: a file written into pending/ -> the request at the sink, p50/p95/p99;
- daemon start-up with a large backlog to its first delivery, next to `ls -f | wc -l`;
- daemon RSS idle and with the large backlog.

Usage: .venv/bin/python bench/daemon.py [--events 2000] [--latency 200] [--backlog 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
TOKEN = "bench-token"  # noqa: S105 - a throwaway token for local servers

from hookclient.envelope import StdinCapture, build, dumps  # noqa: E402
from hookclient.spool import Spool, State, new_state  # noqa: E402


def envelope(n: int) -> dict[str, Any]:
    payload = json.dumps(
        {
            "hook_event_name": "PostToolUse",
            "session_id": "bench",
            "n": n,
            "tool_input": {"command": "echo " + "x" * 400},
        }
    ).encode()
    return build(
        StdinCapture(payload, len(payload), False, False),
        event_flag=None,
        redact_keys=(),
        limit=1 << 20,
    )


def fill(spool_dir: Path, count: int) -> list[dict[str, Any]]:
    spool = Spool(spool_dir)
    out = []
    for n in range(count):
        env = envelope(n)
        now = time.time()
        spool.add(env, new_state(now, due=now), State.PENDING)
        out.append(env)
    return out


def start(
    cmd: list[str], port_file: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            port = int(port_file.read_text())
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, f"http://127.0.0.1:{port}/hooks"
        except (OSError, ValueError, httpx.HTTPError):
            if time.monotonic() > deadline:
                raise SystemExit(f"{cmd[0]} did not start") from None
            time.sleep(0.05)


def sink(work: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    port_file = work / f"{name}.port"
    return start([sys.executable, str(ROOT / "bench" / "sink.py"), str(port_file)], port_file)


def receiver(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = work / "rx.port"
    return start(
        [
            str(BIN / "hookclient-receiver"),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--db",
            str(work / f"rx-{time.time_ns()}.db"),
        ],
        port_file,
        {**os.environ, "HOOKCLIENT_TOKEN": TOKEN},
    )


def config(work: Path, name: str, url: str, workers: int) -> Path:
    path = work / f"{name}.toml"
    path.write_text(
        f'[endpoint]\nurl = "{url}"\n[queue]\ndir = "{work / name}"\n'
        f"workers = {workers}\nrescan_interval = 3600\n"
        f'[logs]\ndir = "{work / name / "logs"}"\nlevel = "warning"\n'
    )
    return path


def drain(work: Path, name: str, url: str, count: int, workers: int) -> float:
    """events/s of `queued run --once` over a prepared backlog."""
    cfg = config(work, name, url, workers)
    fill(work / name, count)
    env = {**os.environ, "HOOKCLIENT_TOKEN": TOKEN}
    start_t = time.perf_counter()
    subprocess.run(
        [str(BIN / "queued"), "run", "--once", "--config", str(cfg)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start_t
    left = len(list((work / name / "pending").glob("*.json")))
    if left:
        raise SystemExit(f"{name}: {left} events left undelivered")
    return count / elapsed


def bare_httpx(url: str, bodies: list[bytes], workers: int) -> float:
    """The yardstick: one keep-alive client, same bodies, same concurrency, no spool."""
    client = httpx.Client(
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    )
    chunks = [bodies[i::workers] for i in range(workers)]

    def post(chunk: list[bytes]) -> None:
        for body in chunk:
            client.post(url, content=body).raise_for_status()

    threads = [threading.Thread(target=post, args=(c,)) for c in chunks]
    start_t = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start_t
    client.close()
    return len(bodies) / elapsed


def curl_loop(url: str, bodies: list[bytes]) -> float:
    start_t = time.perf_counter()
    for body in bodies:
        subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
                url,
            ],
            input=body,
            check=True,
        )
    return len(bodies) / (time.perf_counter() - start_t)


def latency(work: Path, url: str, count: int) -> list[float]:
    """ms from a file landing in pending/ to the request at the sink, daemon idle."""
    cfg = config(work, "latency", url, 4)
    env = {**os.environ, "HOOKCLIENT_TOKEN": TOKEN}
    daemon = subprocess.Popen(
        [str(BIN / "queued"), "run", "--config", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spool = Spool(work / "latency")
    try:
        while not (work / "latency" / "daemon.pid").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        written: dict[str, float] = {}
        for n in range(count):
            env_ = envelope(n)
            now = time.time()
            spool.add(env_, new_state(now, due=now), State.PENDING)
            written[env_["requestId"]] = time.time()
            time.sleep(0.02)  # one at a time, the daemon idle in between
        deadline = time.monotonic() + 30
        while True:
            arrivals = httpx.get(url.replace("/hooks", "/arrivals")).json()
            if all(r in arrivals for r in written) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        daemon.terminate()
        daemon.wait()
    return [(arrivals[r] - t) * 1000 for r, t in written.items() if r in arrivals]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def startup(work: Path, url: str, backlog: int) -> dict[str, float]:
    """Start-up to first delivery with a big backlog; RSS idle and loaded."""
    cfg = config(work, "big", url, 4)
    env = {**os.environ, "HOOKCLIENT_TOKEN": TOKEN}
    idle_cfg = config(work, "idle", url, 4)
    idle = subprocess.Popen(
        [str(BIN / "queued"), "run", "--config", str(idle_cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    fill(work / "big", backlog)
    pending = work / "big" / "pending"
    t = time.perf_counter()
    listed = subprocess.run(  # noqa: S602 - the yardstick is literally this shell pipeline
        f"ls -f {pending} | wc -l",
        shell=True,
        capture_output=True,
        check=True,
    )
    ls_ms = (time.perf_counter() - t) * 1000
    before = len(httpx.get(url.replace("/hooks", "/arrivals")).json())
    t = time.perf_counter()
    daemon = subprocess.Popen(
        [str(BIN / "queued"), "run", "--config", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while len(httpx.get(url.replace("/hooks", "/arrivals")).json()) == before:
            time.sleep(0.01)
        first_ms = (time.perf_counter() - t) * 1000
        loaded = rss_kb(daemon.pid)
        idle_rss = rss_kb(idle.pid)
    finally:
        for proc in (daemon, idle):
            proc.terminate()
            proc.wait()
    return {
        "files": int(listed.stdout.strip() or 0) - 2,
        "ls_ms": ls_ms,
        "first_ms": first_ms,
        "rss_idle_mb": idle_rss / 1024,
        "rss_loaded_mb": loaded / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--curl", type=int, default=200, help="events for the curl loop")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-daemon-"))
    procs = []
    try:
        sink_proc, sink_url = sink(work, "sink")
        rx_proc, rx_url = receiver(work)
        procs += [sink_proc, rx_proc]
        bodies = [dumps(envelope(n)) for n in range(args.events)]
        rates = {
            "bare httpx -> sink": bare_httpx(sink_url, bodies, args.workers),
            "queued -> sink": drain(work, "drain-sink", sink_url, args.events, args.workers),
            "curl loop -> sink": curl_loop(sink_url, bodies[: args.curl]),
            "bare httpx -> receiver": bare_httpx(rx_url, bodies, args.workers),
            "queued -> receiver": drain(work, "drain-rx", rx_url, args.events, args.workers),
        }
        lat_sink, lat_url = sink(work, "latsink")
        procs.append(lat_sink)
        lat = sorted(latency(work, lat_url, args.latency))
        big = startup(work, sink_url, args.backlog)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    print(
        f"queued daemon benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores,"
        f" {args.events} events, {args.workers} workers)"
    )
    for name, rate in rates.items():
        print(f"  {name:<26} {rate:8.0f} events/s")
    print(
        f"  queued/bare httpx (sink)   {rates['queued -> sink'] / rates['bare httpx -> sink']:.2f}x"
    )
    print(
        f"  queued/curl loop (sink)    {rates['queued -> sink'] / rates['curl loop -> sink']:.1f}x"
    )
    rx_ratio = rates["queued -> receiver"] / rates["bare httpx -> receiver"]
    print(f"  queued/bare httpx (rx)     {rx_ratio:.2f}x")

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    print(
        f"  idle latency file->request over {len(lat)} events: p50 {pct(0.5):.1f} ms, "
        f"p95 {pct(0.95):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1]:.1f} ms"
    )
    print(
        f"  start-up with {big['files']} pending files: first delivery after "
        f"{big['first_ms']:.0f} ms (ls -f | wc -l: {big['ls_ms']:.0f} ms)"
    )
    print(
        f"  RSS: idle {big['rss_idle_mb']:.1f} MB, with {big['files']} pending "
        f"{big['rss_loaded_mb']:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
