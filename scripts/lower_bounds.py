"""`make test-min`: the test suite against the lowest versions pyproject.toml allows.

The runtime and receiver dependencies are pinned to their lower bounds (``>=X`` becomes
``==X``) in a separate venv, .venv-min; the dev tools resolve to whatever fits them.
Then the unit and end-to-end tests run there (not the long chaos, soak or Claude Code
ones). A lower bound that is not tested is a guess; this makes it a fact.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-min"


def pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["receiver"]
    out = []
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", spec.replace(" ", ""))
        if not match:
            raise SystemExit(f"make test-min: cannot pin {spec!r}: expected name>=version")
        out.append(f"{match[1]}=={match[2]}")
    return out


def main() -> int:
    pinned = pins()
    if not VENV.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    install = [*pip, "-e", ".[dev,receiver]", "--config-settings", "editable_mode=compat"]
    subprocess.run([*install, *pinned], cwd=ROOT, check=True)
    freeze = subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True
    ).stdout.lower()
    for pin in pinned:
        assert pin.lower().replace("_", "-") in freeze.replace("_", "-"), f"{pin} not installed"
    print("make test-min: testing with " + ", ".join(pinned), flush=True)
    marks = "not claude and not chaos and not soak"
    # Old versions warn about newer neighbours (starlette 0.37's TestClient and today's
    # anyio): deprecations are not failures here; everything else still is.
    quiet = ["-W", "ignore::DeprecationWarning", "-W", "ignore::PendingDeprecationWarning"]
    done = subprocess.run(
        [str(VENV / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "-m", marks, *quiet],
        cwd=ROOT,
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
