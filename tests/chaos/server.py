"""A webhook endpoint that misbehaves on purpose, run as its own process.

Each request gets one behaviour, drawn from weighted choices with a fixed seed:

- ``ok``: applied, 200.
- ``500``, ``429``: not applied, that status.
- ``503``: not applied, 503 with ``Retry-After``.
- ``stall``: not applied; no answer until past the client's timeout, then closed.
- ``reset``: not applied; the connection is reset (RST) before any response.
- ``applied_reset``: applied ("processed then reset"): the row is written, then the
  connection is reset, so the client never hears 200 and must send it again.
- ``trickle``: applied; the 200 response is sent a few bytes at a time.

A down phase closes the port: after ``down_after`` requests the listener and every
connection close for ``down_for`` seconds, then it listens again on the same port.

Every applied request is appended to ``--applied`` (JSON lines, flushed before the
client hears anything) with its requestId and whether it was new: the receiver's dedup
by requestId, so ``new`` counts the effect and every line counts a delivery.

    python -m tests.chaos.server --port-file P --applied A.jsonl --plan '{"ok": 1}'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import struct
import sys
from typing import Any

BEHAVIOURS = ("ok", "500", "503", "429", "stall", "reset", "applied_reset", "trickle")


class Chaos:
    def __init__(self, plan: dict[str, Any], applied_path: str, seed: int) -> None:
        weights = {name: float(plan.get(name, 0)) for name in BEHAVIOURS}
        if not any(weights.values()):
            weights["ok"] = 1.0
        self.names = [n for n, w in weights.items() if w > 0]
        self.weights = [weights[n] for n in self.names]
        self.rng = random.Random(seed)
        self.stall = float(plan.get("stall_seconds", 3.0))
        self.trickle_gap = float(plan.get("trickle_gap", 0.01))
        self.retry_after = str(plan.get("retry_after", "1"))
        self.down_after = int(plan.get("down_after", 0))
        self.down_for = float(plan.get("down_for", 0.0))
        self.seen: set[str] = set()
        self.requests = 0
        self.applied = open(applied_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, port: int) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", port, reuse_address=True)
        sock = self.server.sockets[0]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = sock.getsockname()[1]
        return self.port

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.writers.add(writer)
        try:
            while await self.one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests += 1
        behaviour = self.rng.choices(self.names, self.weights)[0]
        if self.down_after and self.requests == self.down_after:
            asyncio.get_running_loop().create_task(self.go_down())
            behaviour = "reset"
        if behaviour in ("ok", "applied_reset", "trickle"):
            status = self.apply(body, headers, behaviour)
            if behaviour == "applied_reset":
                _reset(writer)
                return False
            answer = _response(200, json.dumps({"status": status}).encode())
            if behaviour == "trickle":
                for i in range(0, len(answer), 16):
                    writer.write(answer[i : i + 16])
                    await writer.drain()
                    await asyncio.sleep(self.trickle_gap)
                return True
            writer.write(answer)
            await writer.drain()
            return True
        if behaviour == "reset":
            _reset(writer)
            return False
        if behaviour == "stall":
            await asyncio.sleep(self.stall)
            return False
        extra = {"Retry-After": self.retry_after} if behaviour == "503" else {}
        writer.write(_response(int(behaviour), b'{"status":"chaos"}', extra))
        await writer.drain()
        return True

    def apply(self, body: bytes, headers: dict[str, str], behaviour: str) -> str:
        try:
            request_id = json.loads(body)["requestId"]
        except (ValueError, KeyError, TypeError):
            request_id = None
        new = request_id not in self.seen
        if request_id is not None:
            self.seen.add(request_id)
        line = {
            "requestId": request_id,
            "new": new,
            "attempt": headers.get("x-hook-attempt"),
            "behaviour": behaviour,
        }
        self.applied.write(json.dumps(line) + "\n")
        return "accepted" if new else "duplicate"

    async def go_down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            _reset(writer)
        await asyncio.sleep(self.down_for)
        await self.start(self.port)


def _response(status: int, body: bytes, extra: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} Chaos", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(body)}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset', not a clean EOF."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def serve(args: argparse.Namespace) -> None:
    chaos = Chaos(json.loads(args.plan), args.applied, args.seed)
    port = await chaos.start(args.port)
    with open(args.port_file + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(str(port))
    import os

    os.replace(args.port_file + ".tmp", args.port_file)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--applied", required=True)
    parser.add_argument("--plan", default='{"ok": 1}')
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
