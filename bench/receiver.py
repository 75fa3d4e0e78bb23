"""The reference receiver under 8 concurrent keep-alive clients, next to the minimal ASGI
sink (bench/sink.py) under the same load, alternating rounds.

Reports accepted events/s, client-side latency p50/p95, and the receiver's own
processing_ms p95 (GET /stats: time inside the app, SQLite insert included).

    python bench/receiver.py [--events 2000] [--clients 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.daemon import TOKEN, envelope, receiver, sink
from hookclient.envelope import dumps


def hammer(url: str, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    """events/s and per-request latencies (ms) of ``clients`` threads, one client each."""
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [bodies[i::clients] for i in range(clients)]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def run(chunk: list[bytes]) -> None:
        mine = []
        with httpx.Client(timeout=30) as client:
            for body in chunk:
                start = time.perf_counter()
                client.post(url, content=body, headers=headers).raise_for_status()
                mine.append((time.perf_counter() - start) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(bodies) / (time.perf_counter() - start), sorted(latencies)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-rx-"))
    sink_proc, sink_url = sink(work, "sink")
    rx_proc, rx_url = receiver(work)
    results: dict[str, list[tuple[float, list[float]]]] = {"sink": [], "receiver": []}
    try:
        for r in range(args.rounds):  # fresh envelopes each round: every one is accepted
            bodies = [dumps(envelope(r * args.events + n)) for n in range(args.events)]
            results["sink"].append(hammer(sink_url, bodies, args.clients))
            results["receiver"].append(hammer(rx_url, bodies, args.clients))
        stats = httpx.get(
            rx_url.replace("/hooks", "/stats"), headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
    finally:
        for proc in (sink_proc, rx_proc):
            proc.terminate()
            proc.wait()
    print(
        f"receiver benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}; {args.clients} clients, {args.events} events x "
        f"{args.rounds} rounds, medians)"
    )
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        p50 = statistics.median(pct(lat, 0.5) for _, lat in runs)
        p95 = statistics.median(pct(lat, 0.95) for _, lat in runs)
        latency = f"client latency p50 {p50:5.1f} ms, p95 {p95:5.1f} ms"
        print(f"  {name:<9} {rate:7.0f} events/s   {latency}")
    ratio = statistics.median(r for r, _ in results["receiver"]) / statistics.median(
        r for r, _ in results["sink"]
    )
    print(f"  receiver/sink throughput {ratio:.2f}x")
    print(f"  receiver /stats: {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
