"""The pinned Claude Code CLI: find it, or install it once into a cache outside the repo.

``make claude`` (``python -m tests.claude.cli``) and the session-scoped pytest fixture go
through :func:`ensure_claude`, so both install the same thing the same way:

    npm install --ignore-scripts --no-audit --no-fund --save-exact @anthropic-ai/claude-code@2.1.197

into ``${XDG_CACHE_HOME:-~/.cache}/hookclient-claude/2.1.197``. ``--ignore-scripts``
keeps npm from running the package's postinstall, which would copy the platform's native
binary over ``bin/claude.exe``; so that file stays a 500-byte stub that prints "claude
native binary not installed" and exits 1 (seen with 2.1.197). The executable therefore
is the native binary npm unpacked from the platform package chosen by the optional
dependencies' os/cpu/libc fields: ``node_modules/@anthropic-ai/claude-code-<platform>/
claude``. It is found by looking, and accepted only once ``--version`` prints the pinned
version.

The install goes to a temporary sibling directory first and is renamed into place, so an
interrupted install never leaves a half-filled cache that would be taken for a good one.
``CLAUDE_BIN`` overrides all of this. When npm is missing or the registry cannot be
reached, :class:`ClaudeUnavailable` carries the one line the tests skip with; any other
failure is an error, never a silent skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VERSION = "2.1.197"
PACKAGE = "@anthropic-ai/claude-code"
SPEC = f"{PACKAGE}@{VERSION}"
#: npm's error codes for "the registry could not be reached" (as opposed to a bad package).
NETWORK_CODES = (
    "ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH",
    "EHOSTUNREACH", "ERR_SOCKET_TIMEOUT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "SELF_SIGNED_CERT_IN_CHAIN", "FETCH_ERROR", "ECONNABORTED",
)  # fmt: skip
#: The wrapper's placeholder is a few hundred bytes; the real binary is hundreds of MB.
STUB_MAX_BYTES = 64 * 1024
INSTALL_TIMEOUT = 900.0


class ClaudeUnavailable(Exception):
    """npm is missing or the registry cannot be reached: the real-CLI tests skip."""


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """``${XDG_CACHE_HOME:-$HOME/.cache}/hookclient-claude/<version>``: outside the repo."""
    env = dict(os.environ) if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "hookclient-claude" / VERSION


def native_binary(root: Path) -> Path | None:
    """The runnable executable inside an install at ``root``, if any."""
    scope = root / "node_modules" / "@anthropic-ai"
    wrapper = scope / "claude-code" / "bin" / "claude.exe"
    if wrapper.is_file() and wrapper.stat().st_size > STUB_MAX_BYTES:
        return wrapper  # installed with scripts: postinstall put the binary there
    name = "claude.exe" if sys.platform == "win32" else "claude"
    found = sorted(p for p in scope.glob(f"claude-code-*/{name}") if p.is_file())
    runnable = [p for p in found if os.access(p, os.X_OK)]
    return runnable[0] if runnable else None


def version_of(binary: Path) -> str:
    """The version the executable reports (``2.1.197 (Claude Code)`` -> ``2.1.197``)."""
    proc = subprocess.run(
        [str(binary), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DISABLE_AUTOUPDATER": "1"},
    )
    match = re.match(r"\s*(\d+\.\d+\.\d+)", proc.stdout)
    if proc.returncode != 0 or not match:
        raise RuntimeError(
            f"{binary} --version exited {proc.returncode}: {(proc.stdout + proc.stderr)[:300]}"
        )
    return match.group(1)


def npm_install(target: Path, npm: str) -> None:
    """Install the pinned package into ``target`` with the ordinary npm client."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "package.json").write_text('{"private": true}\n')
    cmd = [
        npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--save-exact",
        "--no-package-lock", "--fetch-retries=1", "--fetch-timeout=60000",
        "--prefix", str(target), SPEC,
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
            cwd=target,
        )
    except subprocess.TimeoutExpired:
        raise ClaudeUnavailable(
            f"npm install {SPEC} did not finish in {INSTALL_TIMEOUT:.0f} s "
            "(registry unreachable?); set CLAUDE_BIN to a claude executable"
        ) from None
    if proc.returncode == 0:
        return
    output = proc.stdout + proc.stderr
    code = re.search(r"npm (?:error|ERR!) code (\S+)", output)
    if (code and code.group(1) in NETWORK_CODES) or any(c in output for c in NETWORK_CODES):
        first = code.group(1) if code else "network error"
        raise ClaudeUnavailable(
            f"npm registry unreachable ({first}) installing {SPEC}; "
            "set CLAUDE_BIN to a claude executable"
        )
    raise RuntimeError(f"npm install {SPEC} failed (exit {proc.returncode}):\n{output[-2000:]}")


def ensure_claude(environ: dict[str, str] | None = None, *, log: bool = False) -> Path:
    """The pinned CLI's executable: ``CLAUDE_BIN``, else the cache, else install it there."""
    env = dict(os.environ) if environ is None else environ
    if env.get("CLAUDE_BIN"):
        chosen = Path(env["CLAUDE_BIN"]).expanduser()
        if not (chosen.is_file() and os.access(chosen, os.X_OK)):
            raise RuntimeError(f"CLAUDE_BIN={chosen} is not an executable file")
        return chosen
    root = cache_dir(env)
    binary = native_binary(root)
    if binary is None:
        npm = shutil.which("npm", path=env.get("PATH"))
        if npm is None:
            raise ClaudeUnavailable(
                f"npm not found on PATH: cannot install {SPEC}; "
                "install Node.js/npm or set CLAUDE_BIN to a claude executable"
            )
        if log:
            print(f"installing {SPEC} into {root} ...", file=sys.stderr, flush=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{VERSION}-", dir=root.parent))
        try:
            npm_install(staging, npm)
            if native_binary(staging) is None:
                raise RuntimeError(
                    f"npm installed {SPEC} into {staging} but no native claude binary for "
                    "this platform is in it (optional dependencies omitted?)"
                )
            if native_binary(root) is not None:  # another process finished first
                shutil.rmtree(staging)
            else:
                if root.exists():  # a cache left broken by hand: replace it whole
                    shutil.rmtree(root)
                os.replace(staging, root)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        binary = native_binary(root)
        if binary is None:
            raise RuntimeError(f"no claude executable under {root} after installing {SPEC}")
    found = version_of(binary)
    if found != VERSION:
        raise RuntimeError(f"{binary} is Claude Code {found}, the tests pin {VERSION}")
    return binary


def main() -> int:
    """``make claude``: install (once) and print the executable's path."""
    try:
        binary = ensure_claude(log=True)
    except ClaudeUnavailable as exc:
        print(f"claude: {exc}", file=sys.stderr)
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
