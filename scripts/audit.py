"""`make audit`: pip-audit over the packages installed in .venv.

pip-audit runs from its own venv (.venv-audit), so its many dependencies never enter the
project's. Where no vulnerability database can be reached (an offline machine, a mirror
without PyPI's JSON API), it says so in one line and exits 0: an audit that looked
nothing up is reported as skipped, never as clean.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / ".venv-audit"


def main() -> int:
    pip_audit = TOOL / "bin" / "pip-audit"
    if not pip_audit.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOL)], check=True)
        install = [str(TOOL / "bin" / "pip"), "install", "--quiet", "pip-audit>=2.7"]
        if subprocess.run(install, check=False).returncode != 0:
            print("make audit: skipped: pip-audit cannot be installed from here")
            return 0
    site = sysconfig.get_paths()["purelib"]
    done = subprocess.run(
        [str(pip_audit), "--path", site, "--format", "json", "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"make audit: skipped: pip-audit could not reach a vulnerability database ({reason})")
        return 0
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    if not audited:
        print(
            f"make audit: skipped: none of the {len(deps)} installed packages could be "
            "looked up (no vulnerability database reachable from here)"
        )
        return 0
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"{dep['name']} {dep['version']}: {ids}")
    skipped = len(deps) - len(audited)
    print(
        f"make audit: {len(audited)} packages audited, {len(vulnerable)} with known "
        f"vulnerabilities; {skipped} could not be looked up"
    )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
