"""A minimal ASGI sink: answers every POST with 200 and remembers when each request id
arrived (``GET /arrivals``), so benchmarks can time the daemon against the fastest
receiver there can be.  Run: ``python bench/sink.py PORT_FILE``."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

ARRIVALS: dict[str, float] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    if scope["method"] == "GET":
        body = json.dumps(ARRIVALS).encode()
    else:
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode()
        ARRIVALS.setdefault(rid, time.time())
        body = b'{"status":"accepted"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    sock = socket.create_server(("127.0.0.1", 0))
    # asyncio sets TCP_NODELAY only when proto == IPPROTO_TCP; create_server uses 0
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Path(sys.argv[1]).write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
