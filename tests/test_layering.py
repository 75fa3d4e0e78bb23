"""The house rules of the code's layout, enforced (docs/architecture.md "Layering").

- ``hookclient/`` (the hook and its library) never imports ``queued/`` or ``receiver/``:
  a laptop that only sends events installs without the store, and the hook's path must
  not drag the daemon in.
- ``queued/`` never imports ``receiver/``: the daemon knows the store only over HTTP.
- Only ``hookclient/delivery.py`` imports httpx: every other module sees outcomes.
- ``hookclient/outcome.py`` and ``hookclient/policy.py`` are standard library (and
  hookclient) only: the policy is tested with tables, no transport.

What the hook's fast path imports at run time (no httpx, tenacity, structlog, watchdog,
json, pathlib, typing...) is pinned by ``tests/test_hook_e2e.py``
(``test_fast_path_imports_only_what_it_needs``), which runs the real hook.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at any depth of the code
    (imports inside functions count: they run too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).glob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("hookclient", {"queued", "receiver"}), ("queued", {"receiver"})],
)
def test_a_package_never_imports_the_ones_above_it(package: str, forbidden: set[str]) -> None:
    found = {
        f"{path.name} imports {name}"
        for path in modules(package)
        for name in imported(path)
        if top(name) in forbidden
    }
    assert found == set()


def test_only_delivery_touches_httpx() -> None:
    users = {
        f"{path.parent.name}/{path.name}"
        for package in ("hookclient", "queued")
        for path in modules(package)
        if any(top(name) in ("httpx", "httpcore") for name in imported(path))
    }
    assert users == {"hookclient/delivery.py"}


@pytest.mark.parametrize("name", ["outcome.py", "policy.py", "backoff.py"])
def test_the_policy_modules_use_only_the_standard_library(name: str) -> None:
    outside = {
        n
        for n in imported(ROOT / "hookclient" / name)
        if top(n) not in sys.stdlib_module_names and top(n) not in ("hookclient", "__future__")
    }
    assert outside == set()


def test_the_checks_above_can_fail(tmp_path: Path) -> None:
    """The scanner sees an import inside a function, and a dotted one."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import queued.daemon\n    from receiver.app import x\n")
    assert {top(n) for n in imported(probe)} == {"queued", "receiver"}
