"""hookclient.jsoncodec against json, in whatever interpreter runs this file.

Standard library only, so that it runs under every Python the hook may meet (the test
suite's own interpreter has hypothesis; others need not).  Prints one line and exits 1
on any difference.  Usage: python tests/jsoncodec_compare.py [ROOT]
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent.parent))
from hookclient import jsoncodec

RND = random.Random(7)
CHARS = [0x0A, 0x22, 0x5C, 0x7F, 0xE9, 0x3B1, 0xD800, 0x1F600]


def value(depth: int = 0) -> Any:
    kind = RND.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return RND.random() < 0.5
    if kind == 2:
        return RND.randint(-(10**20), 10**20)
    if kind == 3:
        return RND.choice([0.1, -2.5e-300, 1e300, float("nan"), float("inf"), 3.0])
    if kind == 4:
        return "".join(chr(RND.choice([RND.randrange(32, 127), *CHARS])) for _ in range(6))
    if kind == 5:
        return ""
    if kind in (6, 7):
        return [value(depth + 1) for _ in range(RND.randrange(4))]
    return {RND.choice(["a", "é", "\ud800", "", "\n"]): value(depth + 1) for _ in range(3)}


def outcome(call: Any, data: Any) -> tuple[str, str]:
    try:
        return "ok", json.dumps(call(data))
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


def main() -> int:
    differences = []
    for _ in range(2000):
        item = value()
        for ascii_only in (True, False):
            for compact in (True, False):
                mine = jsoncodec.dumps(item, ensure_ascii=ascii_only, compact=compact)
                sep = (",", ":") if compact else None
                if mine != json.dumps(item, ensure_ascii=ascii_only, separators=sep):
                    differences.append(f"dumps {item!r:.60}")
        text = json.dumps(item, ensure_ascii=False)
        for data in (text, f" {text}\n", text.encode("utf-8", "surrogatepass")):
            if outcome(jsoncodec.loads, data) != outcome(json.loads, data):
                differences.append(f"loads {data!r:.60}")
    for text in ['{"a": 1', "[1,]", "tru", '"\\x"', "1 2", "", "\ufeff{}", "[" * 5000]:
        for data in (text, text.encode("utf-8")):
            if outcome(jsoncodec.loads, data) != outcome(json.loads, data):
                differences.append(f"error {data!r:.40}")
    fresh = subprocess.run(  # a syntax error in a process where json was never imported
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from hookclient import jsoncodec; jsoncodec.loads('{\"a\" 1}')",
            sys.path[0],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if "JSONDecodeError: Expecting ':' delimiter" not in fresh.stderr:
        differences.append(f"fresh process: {fresh.stderr.strip().splitlines()[-1:]}")
    version = sys.version.split()[0]
    print(f"Python {version}: {len(differences)} differences; {differences[:3]}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
