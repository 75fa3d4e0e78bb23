"""`hookclient doctor`: a healthy setup passes; each broken piece is named with its fix."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from hookclient.doctor import Check, run_checks
from tests.conftest import (
    BIN,
    TOKEN,
    HookEnv,
    Receiver,
    kill_daemons,
    spool_events,
    wait_for,
)


def checks(env: HookEnv, **environ: str) -> dict[str, Check]:
    result = run_checks({**env.env(), **environ}, str(env.config))
    return {c.name: c for c in result}


def test_healthy_setup_is_all_ok(hook: HookEnv, receiver: Receiver, tmp_path: Path) -> None:
    hook.configure(endpoint={"url": receiver.url}, delivery={"mode": "auto"})
    project = tmp_path / "proj"
    project.mkdir()
    subprocess.run(
        [str(BIN / "hookclient"), "install", "--scope", "project"],
        cwd=project,
        env=hook.env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    hook.run(b'{"hook_event_name": "Stop"}')  # spooled; the hook starts a daemon
    try:
        wait_for(lambda: len(receiver.rows()) == 1)
        found = checks(hook, CLAUDE_PROJECT_DIR=str(project))
    finally:
        kill_daemons(hook.spool)

    assert {n: c.status for n, c in found.items()} == {n: "OK" for n in found}, found
    assert "GET /healthz answered HTTP 200" in found["reachable"].detail
    assert TOKEN not in json.dumps([c.__dict__ for c in found.values()])
    assert "project: 28 events" in found["claude"].detail


def test_each_problem_is_named_with_its_fix(hook: HookEnv) -> None:
    hook.configure(endpoint={"url": "http://127.0.0.1:9/hooks"}, delivery={"mode": "spool"})
    spool_events(hook.spool, 2)
    (hook.spool / "failed").mkdir(exist_ok=True)
    spool_events(hook.spool, 1)
    moved = sorted((hook.spool / "pending").glob("*.json"))[-1]
    moved.rename(hook.spool / "failed" / moved.name)
    (hook.spool / "breaker.json").write_text(
        json.dumps({"state": "open", "failures": 7, "openUntil": time.time() + 600})
    )
    hook.spool.chmod(0o755)

    found = checks(hook, HOOKCLIENT_TOKEN="")

    assert found["token"].status == "WARN" and "HOOKCLIENT_TOKEN" in found["token"].fix
    assert found["reachable"].status == "FAIL" and "cannot connect" in found["reachable"].detail
    assert found["spool"].status == "FAIL" and "chmod -R go-rwx" in found["spool"].fix
    assert found["daemon"].status == "WARN" and "queued run --once" in found["daemon"].fix
    assert found["backlog"].status == "WARN" and "2 pending, 1 failed" in found["backlog"].detail
    assert found["breaker"].status == "WARN" and "7 failures" in found["breaker"].detail
    assert found["claude"].status == "WARN" and "hookclient install" in found["claude"].fix


def test_broken_config_and_unwritable_logs_fail(hook: HookEnv, tmp_path: Path) -> None:
    hook.configure(queue={"jitter": "lots"})
    [only] = run_checks(hook.env(), str(hook.config))
    assert (
        only.status == "FAIL" and "queue.jitter" in only.detail and str(hook.config) in only.detail
    )

    blocker = tmp_path / "file"
    blocker.write_text("")
    hook.configure(logs={"dir": str(blocker / "logs")})
    found = checks(hook)
    assert found["logs"].status == "FAIL"


def test_exit_code_and_json(hook: HookEnv) -> None:
    hook.configure()
    proc = subprocess.run(
        [str(BIN / "hookclient"), "doctor", "--json", "--config", str(hook.config)],
        env=hook.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    data = json.loads(proc.stdout)
    assert proc.returncode == 1  # the endpoint is a closed port
    assert {c["name"] for c in data} >= {
        "config",
        "endpoint",
        "token",
        "reachable",
        "spool",
        "daemon",
        "backlog",
        "breaker",
        "logs",
        "claude",
    }
    assert all(c["status"] in ("OK", "WARN", "FAIL") for c in data)


def test_an_insecure_endpoint_is_a_warning_with_its_fix(hook: HookEnv) -> None:
    hook.configure(endpoint={"url": "http://hooks.invalid/in"}, delivery={"mode": "spool"})
    found = checks(hook)
    assert found["endpoint"].status == "WARN"
    assert "plain http to a non-loopback host" in found["endpoint"].detail
    assert found["endpoint"].fix == "use https with verify = true"
