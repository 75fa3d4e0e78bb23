"""`queued flush`, `stop`, `restart` and `adopt`, and `hookclient trace` across spools,
against real daemons and a real receiver."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookclient import config as cfg
from hookclient import dirs
from hookclient.breaker import Breaker
from hookclient.configcache import ConfigCache
from hookclient.spool import Spool, State, new_state
from hookclient.spoolstate import Owner
from tests.conftest import (
    BIN,
    HookEnv,
    Receiver,
    daemon_pid,
    kill_daemons,
    make_envelope,
    pid_alive,
    start_queued,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def env(hook: HookEnv, receiver: Receiver) -> Iterator[HookEnv]:
    hook.configure(
        endpoint={"url": receiver.url, "timeout": 2.0},
        delivery={"mode": "auto", "autostart": True},
        queue={"rescan_interval": 3600.0},
    )
    yield hook
    kill_daemons(hook.spool)


def queued(env: HookEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "queued"), *args, "--config", str(env.config)],
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def spool_later(spool_dir: Path, n: int, *, seconds: float = 3600.0) -> str:
    """One pending event whose retry is due in an hour, as after a failed attempt."""
    envelope = make_envelope(n)
    now = time.time()
    state = new_state(now, due=now + seconds)
    state["attempts"] = 1
    state["lastAttemptAt"] = state["createdAt"]
    Spool(spool_dir).add(envelope, state, State.PENDING)
    return str(envelope["requestId"])


def running(env: HookEnv) -> int:
    start_queued(env)
    return int(
        wait_for(lambda: daemon_pid(env.spool) if (env.spool / "daemon.pid").exists() else 0)
    )


def test_flush_sends_a_backlog_now_instead_of_after_its_backoff(
    env: HookEnv, receiver: Receiver
) -> None:
    pid = running(env)
    later = spool_later(env.spool, 1)
    assert receiver.rows() == []

    done = queued(env, "flush")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "1 pending event(s) due now",
        f"queued (pid {pid}) starts on them now",
    ]
    wait_for(lambda: [r["envelope"]["requestId"] for r in receiver.rows()] == [later])
    wait_for(lambda: list((env.spool / "pending").iterdir()) == [])
    asked = [x for x in env.log_lines() if x["msg"] == "flush requested: due now"]
    assert [(x["requestId"], x["component"]) for x in asked] == [(later, "cli")]
    woken = [x for x in env.log_lines() if x["msg"] == "flush requested"]
    assert [(x["component"], x["pid"], x["pending"]) for x in woken] == [("daemon", pid, 1)]


def test_flush_ends_an_open_breakers_cooldown(env: HookEnv, receiver: Receiver) -> None:
    env.configure(**{**env.settings, "queue": {**env.settings["queue"], "breaker_cooldown": 3600}})
    breaker = Breaker(env.spool / "breaker.json", cooldown=3600.0)
    env.spool.mkdir(parents=True)
    for _ in range(5):
        breaker.failure()
    assert breaker.is_open()
    pid = running(env)
    later = spool_later(env.spool, 2, seconds=0.0)
    assert receiver.rows() == []  # the breaker holds it back

    assert queued(env, "flush").stdout.splitlines()[-1] == f"queued (pid {pid}) starts on them now"
    wait_for(lambda: [r["envelope"]["requestId"] for r in receiver.rows()] == [later])
    wait_for(lambda: breaker.read()["state"] == "closed")


def test_flush_of_an_unknown_id_says_so(env: HookEnv) -> None:
    spool_later(env.spool, 3)
    done = queued(env, "flush", "0000ffff")
    assert done.returncode == 1
    assert done.stderr == f"queued: no pending event matches 0000ffff in {env.spool}\n"


def test_stop_waits_for_the_daemon_to_exit_and_restart_starts_a_new_one(env: HookEnv) -> None:
    pid = running(env)
    done = queued(env, "stop")
    assert (done.returncode, done.stdout) == (0, f"stopped queued (pid {pid})\n")
    assert not pid_alive(pid)
    assert queued(env, "stop").stdout == f"no queued runs on {env.spool}\n"

    done = queued(env, "restart")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("started queued (pid ")
    new = wait_for(lambda: daemon_pid(env.spool))
    assert new != pid and pid_alive(new)
    info = json.loads((env.spool / "daemon.pid").read_text())
    assert info["autostarted"] is True and info["fingerprint"] == cfg.fingerprint(
        cfg.load_config([env.config], env.env()).endpoint
    )
    done = queued(env, "restart")
    assert done.stdout.splitlines()[0] == f"stopped queued (pid {new})"
    last = daemon_pid(env.spool)
    assert queued(env, "stop").stdout == f"stopped queued (pid {last})\n"  # none outlives it


def test_adopt_dry_run_moves_nothing_and_adopt_refuses_its_own_spool(
    env: HookEnv, tmp_path: Path
) -> None:
    other = tmp_path / "other-spool"
    rid = spool_later(other, 4)
    done = queued(env, "adopt", "--from", str(other), "--dry-run")
    assert done.stdout.splitlines() == [
        f"would move  {rid}  PostToolUse  was pending",
        f"1 event(s) would move from {other} to {env.spool}/pending",
    ]
    assert len(list((other / "pending").iterdir())) == 1

    assert queued(env, "adopt", "--from", str(env.spool)).stderr == (
        f"queued: {env.spool} is this configuration's own spool: nothing to adopt\n"
    )
    missing = tmp_path / "nowhere"
    assert queued(env, "adopt", "--from", str(missing)).stderr == (
        f"queued: no spool at {missing} (see `queued status` for the spools holding events)\n"
    )


def test_adopt_moves_every_state_and_keeps_the_history(
    env: HookEnv, receiver: Receiver, tmp_path: Path
) -> None:
    other = tmp_path / "other-spool"
    pending = spool_later(other, 5)
    Spool(other).ensure()
    failed = make_envelope(6)
    Spool(other).add(failed, new_state(time.time(), due=time.time()), State.FAILED)
    done = queued(env, "adopt", "--from", str(other))
    assert done.returncode == 0, done.stderr
    assert f"2 event(s) moved from {other} to {env.spool}/pending" in done.stdout
    wait_for(lambda: len(receiver.rows()) == 2)
    assert sorted(r["envelope"]["requestId"] for r in receiver.rows()) == sorted(
        [pending, failed["requestId"]]
    )
    assert list(other.glob("*/*.json")) == []
    adopted = [x for x in env.log_lines() if x["msg"] == "adopted from another spool"]
    assert {x["fromSpool"] for x in adopted} == {str(other)}


def test_trace_finds_an_event_in_another_spool_and_says_how_to_adopt_it(
    env: HookEnv, receiver: Receiver
) -> None:
    """An event spooled while no URL was configured: trace finds it in the unrouted
    spool, not "not in the spool"."""
    no_url = HookEnv(env.root.parent / "no-url")
    no_url.configure(endpoint={"url": ""}, queue={}, delivery={"mode": "auto"})
    text = no_url.config.read_text().replace(f'dir = "{no_url.spool}"\n', "")
    no_url.config.write_text(text)
    run = no_url.run(json.dumps({"hook_event_name": "Stop", "session_id": "s"}).encode())
    assert run.returncode == 0
    unrouted = Path(dirs.unrouted_spool_dir())
    [name] = [p.name for p in (unrouted / "pending").iterdir()]
    rid = name.removesuffix(".json").partition("-")[2]
    env.configure(logs={"dir": str(no_url.logs)})
    done = subprocess.run(
        [str(BIN / "hookclient"), "trace", rid, "--config", str(env.config)],
        env=env.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("now: pending")
    assert "queued adopt --from unrouted" in last


# -- the pieces -------------------------------------------------------------------------


def test_the_fingerprint_changes_with_url_token_secret_and_tls_and_hides_them() -> None:
    base = {"HOOKCLIENT_ENDPOINT_URL": "https://a.example.test/hooks", "HOOKCLIENT_TOKEN": "t1"}

    def fp(**extra: str) -> str:
        return cfg.fingerprint(cfg.load_config([], {**base, **extra}).endpoint)

    same = fp()
    assert same == fp() and len(same) == 16
    others = {
        fp(HOOKCLIENT_TOKEN="t2"),
        fp(HOOKCLIENT_ENDPOINT_URL="https://b.example.test/hooks"),
        fp(HOOKCLIENT_ENDPOINT_SIGNING_SECRET_ENV="SECRET", SECRET="s"),
        fp(HOOKCLIENT_ENDPOINT_VERIFY="false"),
    }
    assert same not in others and len(others) == 4
    assert "t1" not in same


def test_the_last_clean_route_is_remembered_per_project(tmp_path: Path) -> None:
    path = str(tmp_path / "cache" / "config.json")
    cache = ConfigCache(path)
    assert cache.route("p1") is None
    cache.remember_route("p1", "/spool/a", "/logs/a")
    cache.save()
    again = ConfigCache(path)
    assert again.route("p1") == ("/spool/a", "/logs/a")
    assert again.route("p2") is None
    again.remember_route("p1", "/spool/a", "/logs/a")
    assert not again.changed  # unchanged: nothing to write on the hook's path


def test_no_url_spools_to_the_unrouted_spool() -> None:
    config = cfg.load_config([], {})
    assert config.queue.dir == str(Path(dirs.spools_root()) / "unrouted")


# -- who may replace a daemon -----------------------------------------------------------


def hook_event(env: HookEnv, token: str) -> None:
    payload = json.dumps({"hook_event_name": "Stop", "session_id": "s-replace"}).encode()
    run = env.run(payload, env={**env.env(), "HOOKCLIENT_TOKEN": token})
    assert (run.returncode, run.stdout, run.stderr) == (0, b"", b"")


@pytest.mark.parametrize(
    ("started", "hook_token"),
    [("by hand", "another-token"), ("by a hook, with a token", "")],
)
def test_a_daemon_a_hook_must_not_replace_keeps_running_and_delivers(
    env: HookEnv, receiver: Receiver, started: str, hook_token: str
) -> None:
    """A daemon run by hand (or by a service: exit 0 would not restart it), and one with
    a token seen from a hook without any (Claude Code started from a shell that lacks
    it), are left alone: the hook's event goes to the running daemon."""
    start_queued(env, *(["--autostarted", "--idle-exit", "600"] if "hook" in started else []))
    pid = wait_for(lambda: daemon_pid(env.spool) if (env.spool / "daemon.pid").exists() else 0)
    hook_event(env, hook_token)
    wait_for(lambda: len(receiver.rows()) == 1)
    assert daemon_pid(env.spool) == pid and pid_alive(pid)
    assert not [x for x in env.log_lines() if x["msg"] == "replaced daemon"]
    status = queued(env, "status").stdout
    assert "the daemon" not in status  # this shell has the daemon's own configuration


def test_status_and_doctor_name_a_daemon_with_another_configuration(env: HookEnv) -> None:
    start_queued(env)
    pid = wait_for(lambda: daemon_pid(env.spool) if (env.spool / "daemon.pid").exists() else 0)
    other = {**env.env(), "HOOKCLIENT_TOKEN": "another-token"}
    done = subprocess.run(
        [str(BIN / "queued"), "status", "--config", str(env.config)],
        env=other,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        f"the daemon (pid {pid}) delivers with another endpoint, token or signing secret than "
        "this configuration: restart it (its service manager, or `queued restart`)"
    ) in done.stdout
    as_json = subprocess.run(
        [str(BIN / "queued"), "status", "--json", "--config", str(env.config)],
        env=other,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "fingerprint" not in json.loads(as_json.stdout)["daemon"]


# -- flush never rewrites a file the daemon may be claiming -----------------------------


def test_flush_asks_the_next_daemon_and_leaves_every_file_as_it_was(
    env: HookEnv, receiver: Receiver
) -> None:
    env.configure(**{**env.settings, "delivery": {"mode": "auto", "autostart": False}})
    later = spool_later(env.spool, 7)
    [path] = list((env.spool / "pending").iterdir())
    before = path.read_bytes()
    done = queued(env, "flush")
    assert done.stdout.splitlines() == [
        "1 pending event(s) due now",
        "no daemon runs: start one with `queued run` (or `queued run --once`)",
    ]
    assert path.read_bytes() == before  # the file is the daemon's to change, not flush's
    assert json.loads((env.spool / "flush.json").read_text())["ids"] is None
    once = queued(env, "run", "--once")
    assert once.returncode == 0, once.stderr
    assert [r["envelope"]["requestId"] for r in receiver.rows()] == [later]


def test_a_claim_the_disk_refuses_leaves_the_file_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename refused (read-only, no permission) is a SpoolError, so the daemon
    pauses and says `cannot claim: spool not writable; pausing`, not "delivery crashed"."""
    import os

    from hookclient.errors import SpoolError

    spool_later(tmp_path / "spool", 8, seconds=0.0)
    spool = Spool(tmp_path / "spool")
    [record] = [r for r in spool.records(State.PENDING) if not isinstance(r, Exception)]

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SpoolError, match=r"cannot write to spool .*processing: Permission denied"):
        spool.claim(record, {"pid": 1, "by": "daemon", "claimedAt": "2026-12-01T00:00:00Z"})
    monkeypatch.undo()
    assert len(spool.names(State.PENDING)) == 1 and spool.names(State.PROCESSING) == []


def test_adopt_skips_a_claim_a_live_hook_holds_and_says_so(env: HookEnv, tmp_path: Path) -> None:
    import os

    from hookclient.clock import utc_iso

    other = tmp_path / "other-spool"
    envelope = make_envelope(9)
    owner: Owner = {"pid": os.getpid(), "by": "hook", "claimedAt": utc_iso(time.time())}
    Spool(other).add(
        envelope, new_state(time.time(), due=time.time(), owner=owner), State.PROCESSING
    )
    done = queued(env, "adopt", "--from", str(other))
    assert done.stdout.splitlines()[-2:] == [
        f"0 event(s) moved from {other} to {env.spool}/pending",
        "1 event(s) skipped: a hook is sending them right now "
        "(run `queued adopt` again in a minute)",
    ]
    assert len(list((other / "processing").iterdir())) == 1


# -- routing while the configuration cannot be read ------------------------------------


def test_a_misspelt_url_key_goes_to_the_last_good_spool(tmp_path: Path) -> None:
    """`ulr = ...` leaves the url at its default (no url): with a route known, the
    event goes to the spool of the configuration that last worked, not to unrouted."""
    from hookclient.hook import route

    config_file = tmp_path / "hookclient.toml"
    cache = ConfigCache(str(tmp_path / "cache.json"))
    config_file.write_text('[endpoint]\nurl = "http://127.0.0.1:9/hooks"\n')
    good = cfg.load_config([config_file], {}, strict=False)
    assert route(good, [str(config_file)], cache) == (good.queue.dir, good.logs.dir)
    config_file.write_text('[endpoint]\nulr = "http://127.0.0.1:9/hooks"\n')
    typo = cfg.load_config([config_file], {}, strict=False)
    assert typo.problems and typo.endpoint.url is None
    again = ConfigCache(str(tmp_path / "cache.json"))
    assert route(typo, [str(config_file)], again) == (good.queue.dir, good.logs.dir)


def test_a_spool_directory_that_cannot_be_written_keeps_the_event_in_unrouted(
    hook: HookEnv, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    hook.configure(queue={"dir": str(blocker / "spool")}, delivery={"mode": "spool"})
    run = hook.run(json.dumps({"hook_event_name": "Stop", "session_id": "s"}).encode())
    assert (run.returncode, run.stdout) == (0, b"")
    assert b"kept in" in run.stderr and run.stderr.count(b"\n") == 1
    unrouted = Path(dirs.unrouted_spool_dir())
    assert len(list((unrouted / "pending").glob("*.json"))) == 1
    [line] = [x for x in hook.log_lines() if x["msg"].startswith("spool not writable")]
    assert line["msg"] == "spool not writable; event kept in the unrouted spool"
    assert line["spool"] == str(unrouted) and str(blocker) in line["error"]
