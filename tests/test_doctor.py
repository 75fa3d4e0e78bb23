"""`hookclient doctor`: a healthy setup passes; each broken piece is named with its fix."""

from __future__ import annotations

import http.server
import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hookclient import doctor
from hookclient.doctor import Check, run_checks
from tests import test_tls
from tests.conftest import (
    BIN,
    TOKEN,
    BlackHole,
    HookEnv,
    Receiver,
    kill_daemons,
    spool_events,
    wait_for,
)

https = test_tls.https  # a real HTTPS server with a self-signed certificate
#: Every check after the config's, in the order doctor runs them.
CHECKS = [
    "endpoint",
    "token",
    "reachable",
    "spool",
    "daemon",
    "backlog",
    "spools",
    "breaker",
    "logs",
    "claude",
    "transcripts",
]


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
    assert found["reachable"].detail == (
        f"POST {receiver.url} answered HTTP 200 OK: a test event (hookclient.test) was accepted"
    )
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
        json.dumps({"state": "open", "failures": 7, "openUntil": time.time() + 25})
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
    result = run_checks(hook.env(), str(hook.config))
    assert result[0] == Check(
        "config",
        "FAIL",
        f"queue.jitter in {hook.config}: expected a number (float), got 'lots'",
        f"set [queue] jitter in {hook.config} to a number (float)",
    )
    assert [c.name for c in result[1:]] == [c.name for c in run_checks(hook.env(), None)[1:]]

    blocker = tmp_path / "file"
    blocker.write_text("")
    hook.configure(logs={"dir": str(blocker / "logs")})
    found = checks(hook)
    assert found["logs"] == Check(
        "logs",
        "FAIL",
        f"{blocker / 'logs'} is not writable: Not a directory",
        "fix its permissions, or set [logs] dir to a directory you can write (HOOKCLIENT_LOGS_DIR)",
    )


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
    assert {c["name"] for c in data} >= {"config", *CHECKS}
    assert all(c["status"] in ("OK", "WARN", "FAIL") for c in data)


def test_an_insecure_endpoint_is_a_warning_with_its_fix(hook: HookEnv) -> None:
    hook.configure(endpoint={"url": "http://hooks.invalid/in"}, delivery={"mode": "spool"})
    found = checks(hook)
    assert found["endpoint"].status == "WARN"
    assert "plain http to a non-loopback host" in found["endpoint"].detail
    assert found["endpoint"].fix == "use https with verify = true"


# -- reachable: the request `send` makes ---------------------------------------------


def test_reachable_posts_one_test_event_the_way_send_does(
    hook: HookEnv, receiver: Receiver
) -> None:
    hook.configure(endpoint={"url": receiver.url}, delivery={"mode": "spool"})

    found = checks(hook)

    assert found["reachable"] == Check(
        "reachable",
        "OK",
        f"POST {receiver.url} answered HTTP 200 OK: a test event (hookclient.test) was accepted",
    )
    [row] = receiver.rows()
    assert row["event"] == "hookclient.test"
    assert row["envelope"]["payload"] == {"hook_event_name": "hookclient.test", "doctor": True}
    assert row["headers"]["idempotency-key"] == row["request_id"]
    assert row["headers"]["x-hook-attempt"] == "1"
    assert [a["status"] for a in receiver.audit()] == ["SUCCESS"]
    for state in ("tmp", "pending", "processing", "failed", "corrupt"):
        assert hook.files(state) == []  # the test event is never spooled


def test_a_url_whose_path_is_not_found_fails_naming_the_path(
    hook: HookEnv, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    hook.configure(endpoint={"url": url}, delivery={"mode": "spool"})

    assert checks(hook)["reachable"] == Check(
        "reachable",
        "FAIL",
        f"POST {url} answered HTTP 404 Not Found: nothing takes events at /hook",
        "fix [endpoint] url (HOOKCLIENT_ENDPOINT_URL): the path is wrong "
        "(the reference receiver takes POST /hooks)",
    )
    assert receiver.rows() == []


@pytest.mark.parametrize("where", ["env", "file", "none"])
def test_a_refused_token_fails_naming_where_the_token_comes_from(
    hook: HookEnv, receiver: Receiver, tmp_path: Path, where: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("not-the-token\n")
    token_file.chmod(0o600)
    endpoint: dict[str, str] = {"url": receiver.url}
    if where == "file":
        endpoint["token_file"] = str(token_file)
    hook.configure(endpoint=endpoint, delivery={"mode": "spool"})

    found = checks(hook, HOOKCLIENT_TOKEN="not-the-token" if where == "env" else "")

    expected = {
        "env": Check(
            "reachable",
            "FAIL",
            "the endpoint refused the token (HTTP 401)",
            "set HOOKCLIENT_TOKEN to the token the endpoint expects, in the environment "
            "Claude Code runs in (the token sent came from env HOOKCLIENT_TOKEN)",
        ),
        "file": Check(
            "reachable",
            "FAIL",
            "the endpoint refused the token (HTTP 401)",
            f"write the token the endpoint expects into {token_file} (chmod 600), "
            "or set HOOKCLIENT_TOKEN, which comes first",
        ),
        "none": Check(
            "reachable",
            "FAIL",
            "the endpoint wants a token and none is set (HTTP 401)",
            "export HOOKCLIENT_TOKEN=... in the environment Claude Code runs in, "
            "or set [endpoint] token_file (chmod 600)",
        ),
    }
    assert found["reachable"] == expected[where]
    assert receiver.rows() == []
    assert [a["status"] for a in receiver.audit()] == ["UNAUTHORIZED"]


def test_another_refusal_fails_with_its_status(hook: HookEnv, receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/healthz"  # GET only
    hook.configure(endpoint={"url": url}, delivery={"mode": "spool"})

    assert checks(hook)["reachable"] == Check(
        "reachable",
        "FAIL",
        f"POST {url} answered HTTP 405 Method Not Allowed: send would move every event to failed/",
        "check that [endpoint] url is the receiver's webhook URL (HOOKCLIENT_ENDPOINT_URL)",
    )


def test_a_closed_port_fails_with_the_error_and_the_fix(hook: HookEnv) -> None:
    hook.configure(endpoint={"url": "http://127.0.0.1:9/hooks"}, delivery={"mode": "spool"})

    assert checks(hook)["reachable"] == Check(
        "reachable",
        "FAIL",
        "cannot connect to http://127.0.0.1:9/hooks: ConnectError: [Errno 111] Connection refused",
        "start the receiver, or check the url and the network; events wait in pending/ meanwhile",
    )


def test_a_server_that_does_not_answer_fails_at_the_timeout(
    hook: HookEnv, black_hole: BlackHole
) -> None:
    hook.configure(endpoint={"url": black_hole.url, "timeout": 0.2}, delivery={"mode": "spool"})

    found = checks(hook)["reachable"]

    assert (found.status, found.fix) == (
        "FAIL",
        "check that the receiver runs and answers within [endpoint] timeout (0.2 s)",
    )
    assert found.detail.startswith(f"no answer from {black_hole.url} within 0.2 s: ReadTimeout")


def test_a_failing_server_fails_with_its_status(hook: HookEnv) -> None:
    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        hook.configure(endpoint={"url": url}, delivery={"mode": "spool"})
        found = checks(hook)["reachable"]
    finally:
        server.shutdown()
        server.server_close()

    assert found == Check(
        "reachable",
        "FAIL",
        f"POST {url} answered HTTP 503 Service Unavailable: the endpoint is failing",
        "see the receiver's logs; events wait in pending/ and go out once it recovers",
    )


def test_an_unknown_certificate_fails_naming_ca_bundle(
    hook: HookEnv, https: tuple[str, Path]
) -> None:
    url, _cert = https
    hook.configure(endpoint={"url": url}, delivery={"mode": "spool"})

    found = checks(hook)["reachable"]

    assert (found.status, found.fix) == (
        "FAIL",
        "set [endpoint] ca_bundle to the CA that signed the server's certificate, "
        "or fix the certificate",
    )
    assert found.detail.startswith(f"TLS failed for {url}: ConnectError: [SSL: CERTIFICATE_")


def test_doctor_catches_no_httpx_exception_itself() -> None:
    """Sender.post turns every httpx error into an Outcome: doctor only classifies it."""
    source = Path(doctor.__file__).read_text()
    assert "import httpx" not in source and "httpx." not in source


# -- spool: created the way send creates it --------------------------------------------


def test_a_spool_that_cannot_be_created_fails(hook: HookEnv, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    hook.configure(queue={"dir": str(blocker / "spool")}, delivery={"mode": "spool"})

    assert checks(hook)["spool"] == Check(
        "spool",
        "FAIL",
        f"cannot create {blocker / 'spool'}: Not a directory (send keeps events in "
        "the unrouted spool instead, where nothing delivers them)",
        "set [queue] dir to a directory you can write (HOOKCLIENT_QUEUE_DIR)",
    )


def test_a_spool_under_a_read_only_directory_fails(hook: HookEnv, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o500)
    hook.configure(queue={"dir": str(parent / "spool")}, delivery={"mode": "spool"})

    found = checks(hook)["spool"]

    assert (found.status, found.detail) == (
        "FAIL",
        f"cannot create {parent / 'spool'}: Permission denied (send keeps events in "
        "the unrouted spool instead, where nothing delivers them)",
    )


def test_a_missing_spool_is_created_private(hook: HookEnv) -> None:
    hook.configure(delivery={"mode": "spool"})
    assert not hook.spool.exists()

    found = checks(hook)["spool"]

    assert found.status == "OK"
    assert found.detail.startswith(f"{hook.spool} (created) private, writable, ")
    assert stat.S_IMODE(hook.spool.stat().st_mode) == 0o700
    for state in ("tmp", "pending", "processing", "failed", "corrupt"):
        assert stat.S_IMODE((hook.spool / state).stat().st_mode) == 0o700


# -- config: every problem, and every other check -------------------------------------


def test_every_config_problem_is_named_and_every_other_check_still_runs(
    hook: HookEnv, tmp_path: Path
) -> None:
    user = tmp_path / "home" / ".config" / "hookclient" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[endpoint]\nurl = "http://127.0.0.1:9/hooks\n')  # unterminated string
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    local = project / ".claude" / "hookclient.toml"
    local.write_text(
        f'[endpoint]\ntimout = 3\n[queue]\ndir = "spool"\n[logs]\ndir = "{hook.logs}"\n'
    )

    result = run_checks(
        {**hook.env(), "CLAUDE_PROJECT_DIR": str(project), "HOOKCLIENT_QUEUE_JITTER": "2"}, None
    )

    keys = "url, token_env, token_file, timeout, verify, ca_bundle, signing_secret_env"
    assert [c for c in result if c.name == "config"] == [
        Check(
            "config",
            "FAIL",
            f"config file {user} cannot be read: Illegal character '\\n' (at line 2, "
            "column 32); fix the TOML or remove the file",
            f"fix the TOML in {user} at the line and column named above, or remove the file",
        ),
        Check(
            "config",
            "FAIL",
            f'unknown key endpoint.timout in {local}: did you mean "timeout"? (known: {keys})',
            f"rename or remove timout under [endpoint] in {local}",
        ),
        Check(
            "config",
            "FAIL",
            f"queue.dir in {local}: expected an absolute directory, got 'spool'",
            f"set [queue] dir in {local} to an absolute directory",
        ),
        Check(
            "config",
            "FAIL",
            "queue.jitter in env HOOKCLIENT_QUEUE_JITTER: expected a fraction in [0, 1), got 2.0",
            "set HOOKCLIENT_QUEUE_JITTER to a fraction in [0, 1), or unset it",
        ),
    ]
    names = [c.name for c in result if c.name != "config"]
    assert names == CHECKS
    found = {c.name: c for c in result}
    assert found["endpoint"].detail == (
        "no [endpoint] url configured: events wait in the unrouted spool"
    )
    assert found["reachable"] == Check("reachable", "WARN", "skipped: no endpoint url")
    assert found["spool"].status == "OK"  # the default spool, not ./spool
    assert found["logs"] == Check("logs", "OK", f"{hook.logs} writable")


def test_with_config_problems_the_spool_is_checked_but_not_created(
    hook: HookEnv, tmp_path: Path
) -> None:
    """A broken config may route events elsewhere: doctor creates nothing, still says
    whether the directory could be made."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    hook.configure(queue={"dir": str(blocker / "spool"), "jitter": "lots"})
    assert checks(hook)["spool"] == Check(
        "spool",
        "FAIL",
        f"cannot create {blocker / 'spool'}: Not a directory (send keeps events in "
        "the unrouted spool instead, where nothing delivers them)",
        "set [queue] dir to a directory you can write (HOOKCLIENT_QUEUE_DIR)",
    )

    hook.configure(queue={"jitter": "lots"})
    assert checks(hook)["spool"] == Check(
        "spool", "OK", f"{hook.spool} can be created (not yet: the config has problems)"
    )
    assert not hook.spool.exists()


def test_a_ca_bundle_that_cannot_be_loaded_fails(hook: HookEnv, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    hook.configure(
        endpoint={"url": "https://127.0.0.1:9/hooks", "ca_bundle": str(missing)},
        delivery={"mode": "spool"},
    )

    found = checks(hook)["reachable"]

    assert (found.status, found.fix) == (
        "FAIL",
        "set [endpoint] ca_bundle to a readable PEM file of CA certificates",
    )
    assert found.detail.startswith(f"cannot load [endpoint] ca_bundle {missing}: ")


def test_events_in_another_spool_are_named_with_the_adopt_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events spooled while no URL was set wait in the unrouted spool: doctor says so,
    with the command that sends them to the endpoint now configured."""
    from hookclient.config import load_config
    from hookclient.dirs import unrouted_spool_dir
    from tests.conftest import spool_events

    unrouted = Path(unrouted_spool_dir())
    spool_events(unrouted, 2)
    config = load_config([], {"HOOKCLIENT_ENDPOINT_URL": "http://127.0.0.1:9/hooks"})
    check = doctor._other_spools(config, {})
    assert (check.status, check.name) == ("WARN", "spools")
    assert check.detail == (
        "other spools hold events that nothing sends to this endpoint: "
        f"{unrouted} (no endpoint configured, or the configuration could not be read): "
        "2 pending"
    )
    assert (
        check.fix
        == "to send them here: queued adopt --from unrouted (add --dry-run to list them first)"
    )
    config_unrouted = load_config([], {})
    assert doctor._other_spools(config_unrouted, {}).status == "OK"  # its own spool


def test_transcripts_never_shipped_are_reported_and_those_cleanup_will_delete_first(
    hook: HookEnv, tmp_path: Path
) -> None:
    projects = tmp_path / "claude-config" / "projects" / "-proj"
    projects.mkdir(parents=True)
    fresh, old = projects / "a.jsonl", projects / "b.jsonl"
    for path in (fresh, old):
        path.write_text('{"type": "user", "uuid": "x"}\n')
    month = time.time() - 25 * 86400
    os.utime(old, (month, month))
    hook.configure(transcripts={"projects_dir": str(projects.parent)})
    found = checks(hook)["transcripts"]
    assert found.status == "WARN"
    assert found.detail == (
        f"2 of 2 transcripts under {projects.parent} were never shipped; 1 of them are older "
        "than 23 days and Claude Code deletes transcripts after 30 (cleanupPeriodDays)"
    )
    assert found.fix.startswith("run `hookclient backfill`")
    settings = Path(hook.env()["HOME"]) / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"cleanupPeriodDays": 90}))
    assert "older than" not in checks(hook)["transcripts"].detail
    backfilled = subprocess.run(
        [str(BIN / "hookclient"), "backfill", "--config", str(hook.config)],
        env={**hook.env(), "HOOKCLIENT_DELIVERY_AUTOSTART": "false"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert backfilled.returncode == 0, backfilled.stderr
    after = checks(hook)["transcripts"]
    assert (after.status, after.detail) == ("OK", f"2 under {projects.parent}, all shipped")
