"""hookclient.config: defaults, precedence, parsing, errors, secrets, derived paths."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest
from platformdirs import user_state_dir

from hookclient import config as cfg
from hookclient import dirs
from hookclient.commands import describe
from hookclient.config import Config, Delivery, Endpoint, Logs, Queue, load_config
from hookclient.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SECRET_TOKEN = "tok-7d41c0ffee-secret"
SECRET_SIGNING = "whsec-signing-9c1e-secret"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(
    *paths: Path,
    env: dict[str, str] | None = None,
    flags: dict[str, Any] | None = None,
    strict: bool = True,
) -> Config:
    return load_config(list(paths), env or {}, flags, strict=strict)


def token_file(tmp_path: Path, mode: int, text: str = SECRET_TOKEN + "\n") -> Path:
    path = write(tmp_path / "token", text)
    path.chmod(mode)
    return path


# -- defaults ------------------------------------------------------------------------


def test_defaults_match_the_design() -> None:
    c = load()
    assert c.endpoint.url is None
    assert c.endpoint.token_env == "HOOKCLIENT_TOKEN"
    assert c.endpoint.token_file is None
    assert c.endpoint.timeout == 5.0
    assert c.endpoint.verify is True
    assert c.endpoint.ca_bundle is None
    assert c.endpoint.signing_secret_env is None
    assert c.endpoint.token is None
    assert c.delivery.mode == "auto"
    assert c.delivery.inline_attempts == 3
    assert c.delivery.inline_delay == 1.0
    assert c.delivery.inline_budget == 5.0
    assert c.delivery.stdin_timeout == 2.0
    assert c.delivery.max_payload_bytes == 8 * 1024 * 1024
    assert c.delivery.redact_keys == (
        "token",
        "secret",
        "password",
        "api_key",
        "apikey",
        "authorization",
    )
    assert c.delivery.autostart is True
    assert c.queue.idle_exit == 600.0
    assert c.queue.backoff == (60.0, 300.0, 900.0, 3600.0, 7200.0)
    assert c.queue.jitter == 0.1
    assert c.queue.max_retries == 5
    assert c.queue.max_spool_bytes == 1024 * 1024 * 1024
    assert c.queue.retry_after_cap == 6 * 3600.0
    assert c.queue.breaker_failures == 5
    assert c.queue.breaker_cooldown == 30.0
    assert c.queue.rescan_interval == 30.0
    assert c.queue.workers >= 1
    assert c.logs.level == "info"
    assert c.logs.max_bytes == 10 * 1024 * 1024
    assert c.logs.backups == 5
    assert set(c.sources.values()) == {"default"}
    assert c.files == ()
    assert c.problems == ()


def test_list_defaults_are_tuples_like_parsed_values(tmp_path: Path) -> None:
    """A default and a configured list have the same type (the dataclasses say tuple)."""
    default = load()
    configured = load(write(tmp_path / "c.toml", "[queue]\nbackoff = [1, 2]\n"))
    assert isinstance(default.queue.backoff, tuple)
    assert isinstance(default.delivery.redact_keys, tuple)
    assert type(configured.queue.backoff) is type(default.queue.backoff)


def test_the_example_config_loads_strictly() -> None:
    example = REPO / "config" / "hookclient.example.toml"
    c = load(example)
    assert c.files == (str(example),)
    assert c.problems == ()
    assert c.queue.backoff == (60.0, 300.0, 900.0, 3600.0, 7200.0)


# -- precedence ----------------------------------------------------------------------


def test_precedence_flag_over_env_over_files_over_default(tmp_path: Path) -> None:
    user = write(
        tmp_path / "user.toml",
        '[delivery]\nmode = "spool"\ninline_attempts = 7\ninline_delay = 0.5\n'
        "[queue]\nworkers = 2\n",
    )
    project = write(tmp_path / "project.toml", '[delivery]\nmode = "direct"\ninline_attempts = 8\n')
    env = {"HOOKCLIENT_DELIVERY_MODE": "spool", "HOOKCLIENT_QUEUE_WORKERS": "9"}
    c = load(user, project, env=env, flags={"delivery.mode": "direct"})

    assert (c.delivery.mode, c.sources["delivery.mode"]) == ("direct", "flag")
    assert (c.queue.workers, c.sources["queue.workers"]) == (9, "env HOOKCLIENT_QUEUE_WORKERS")
    # the later file wins over the earlier one
    assert (c.delivery.inline_attempts, c.sources["delivery.inline_attempts"]) == (
        8,
        str(project),
    )
    assert (c.delivery.inline_delay, c.sources["delivery.inline_delay"]) == (0.5, str(user))
    assert (c.delivery.inline_budget, c.sources["delivery.inline_budget"]) == (5.0, "default")
    assert c.files == (str(user), str(project))


def test_a_flag_of_none_means_not_given(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[delivery]\nmode = "spool"\n')
    c = load(path, flags={"delivery.mode": None})
    assert (c.delivery.mode, c.sources["delivery.mode"]) == ("spool", str(path))


def test_missing_files_are_skipped(tmp_path: Path) -> None:
    present = write(tmp_path / "b.toml", "[queue]\nmax_retries = 2\n")
    c = load(tmp_path / "absent.toml", present)
    assert c.files == (str(present),)
    assert c.queue.max_retries == 2


def test_default_paths_are_user_then_project(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    paths = cfg.default_paths({"CLAUDE_PROJECT_DIR": str(project)})
    assert paths == [cfg.user_config_file(), str(project / ".claude" / "hookclient.toml")]


def test_explicit_config_replaces_the_discovered_files(tmp_path: Path) -> None:
    explicit = tmp_path / "only.toml"
    env = {"CLAUDE_PROJECT_DIR": str(tmp_path / "proj")}
    assert cfg.default_paths(env, explicit) == [str(explicit)]
    assert cfg.default_paths({**env, "HOOKCLIENT_CONFIG": str(explicit)}) == [str(explicit)]
    # the flag beats the variable
    other = tmp_path / "flag.toml"
    assert cfg.default_paths({"HOOKCLIENT_CONFIG": str(explicit)}, other) == [str(other)]


def test_hookclient_config_env_is_used_when_no_paths_are_given(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    write(project / ".claude" / "hookclient.toml", "[queue]\nmax_retries = 1\n")
    chosen = write(tmp_path / "chosen.toml", "[queue]\nmax_retries = 4\n")
    env = {"CLAUDE_PROJECT_DIR": str(project), "HOOKCLIENT_CONFIG": str(chosen)}
    c = load_config(None, env)
    assert c.queue.max_retries == 4
    assert c.files == (str(chosen),)
    c = load_config(None, {"CLAUDE_PROJECT_DIR": str(project)})
    assert c.queue.max_retries == 1


# -- environment parsing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
    ],
)
def test_env_bool(text: str, expected: bool) -> None:
    c = load(env={"HOOKCLIENT_DELIVERY_AUTOSTART": text, "HOOKCLIENT_ENDPOINT_VERIFY": text})
    assert c.delivery.autostart is expected
    assert c.endpoint.verify is expected
    assert c.sources["delivery.autostart"] == "env HOOKCLIENT_DELIVERY_AUTOSTART"


def test_env_numbers_and_lists() -> None:
    c = load(
        env={
            "HOOKCLIENT_QUEUE_MAX_RETRIES": " 12 ",
            "HOOKCLIENT_ENDPOINT_TIMEOUT": "2.5",
            "HOOKCLIENT_QUEUE_JITTER": "0",
            "HOOKCLIENT_QUEUE_BACKOFF": "1, 2.5,10",
            "HOOKCLIENT_DELIVERY_REDACT_KEYS": " token , cookie,,",
            "HOOKCLIENT_ENDPOINT_URL": "https://example.test/hooks",
            "HOOKCLIENT_QUEUE_DIR": "~/spool-here",
        }
    )
    assert c.queue.max_retries == 12 and isinstance(c.queue.max_retries, int)
    assert c.endpoint.timeout == 2.5
    assert c.queue.jitter == 0.0
    assert c.queue.backoff == (1.0, 2.5, 10.0)
    assert c.delivery.redact_keys == ("token", "cookie")
    assert c.endpoint.url == "https://example.test/hooks"
    assert c.queue.dir == str(Path("~/spool-here").expanduser())


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("HOOKCLIENT_DELIVERY_AUTOSTART", "maybe"),
        ("HOOKCLIENT_QUEUE_WORKERS", "many"),
        ("HOOKCLIENT_QUEUE_MAX_RETRIES", "1.5"),
        ("HOOKCLIENT_ENDPOINT_TIMEOUT", "-1"),
        ("HOOKCLIENT_QUEUE_JITTER", "nan"),
        ("HOOKCLIENT_QUEUE_BACKOFF", "60,soon"),
        ("HOOKCLIENT_DELIVERY_MODE", "turbo"),
        ("HOOKCLIENT_ENDPOINT_URL", "ftp://example.test"),
        ("HOOKCLIENT_QUEUE_WORKERS", "0"),
    ],
)
def test_bad_env_value_names_key_and_variable(var: str, value: str) -> None:
    key = var.removeprefix("HOOKCLIENT_").lower().replace("_", ".", 1)
    with pytest.raises(ConfigError) as caught:
        load(env={var: value})
    assert key in str(caught.value)
    assert var in str(caught.value)

    c = load(env={var: value}, strict=False)
    assert len(c.problems) == 1
    assert key in c.problems[0] and var in c.problems[0]
    section, name = key.split(".")
    assert getattr(getattr(c, section), name) == getattr(getattr(load(), section), name)
    assert c.sources[key] == f"default (invalid in env {var})"


# -- file errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[endpoint]\ntimeout = "fast"\n', "endpoint.timeout"),
        ("[endpoint]\ntimeout = 0\n", "endpoint.timeout"),
        ('[endpoint]\nverify = "yes"\n', "endpoint.verify"),
        ('[endpoint]\nurl = "example.test/hooks"\n', "endpoint.url"),
        ("[endpoint]\nurl = 42\n", "endpoint.url"),
        ("[delivery]\ninline_attempts = 0\n", "delivery.inline_attempts"),
        ("[delivery]\ninline_attempts = 2.5\n", "delivery.inline_attempts"),
        ('[delivery]\nredact_keys = "token"\n', "delivery.redact_keys"),
        ("[delivery]\nredact_patterns = ['(unclosed']\n", "delivery.redact_patterns"),
        ("[queue]\nbackoff = []\n", "queue.backoff"),
        ("[queue]\njitter = 1.5\n", "queue.jitter"),
        ("[queue]\nmax_retries = -1\n", "queue.max_retries"),
        ("[queue]\nmax_retries = true\n", "queue.max_retries"),
        ('[logs]\nlevel = "loud"\n', "logs.level"),
    ],
)
def test_bad_file_value_names_key_and_file(tmp_path: Path, toml: str, key: str) -> None:
    path = write(tmp_path / "bad.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert key in str(caught.value)
    assert str(path) in str(caught.value)

    c = load(path, strict=False)
    assert len(c.problems) == 1
    assert key in c.problems[0] and str(path) in c.problems[0]
    section, name = key.split(".")
    assert getattr(getattr(c, section), name) == getattr(getattr(load(), section), name)
    assert c.sources[key].startswith("default (invalid in ")


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[queue]\nmax_retry = 3\nworkers = 2\n")
    with pytest.raises(ConfigError, match=r"queue\.max_retry") as caught:
        load(path)
    assert str(path) in str(caught.value)
    assert "max_retries" in str(caught.value)  # the known keys are listed

    c = load(path, strict=False)
    assert c.queue.workers == 2  # the rest of the file still applies
    assert any("queue.max_retry" in p and str(path) in p for p in c.problems)


@pytest.mark.parametrize("toml", ["[network]\nurl = 1\n", 'endpoint = "x"\n'])
def test_unknown_or_malformed_section_is_named_with_the_file(tmp_path: Path, toml: str) -> None:
    path = write(tmp_path / "c.toml", toml + "[logs]\nbackups = 2\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "unknown section" in str(caught.value)
    assert str(path) in str(caught.value)
    c = load(path, strict=False)
    assert c.logs.backups == 2
    assert len(c.problems) == 1


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good.toml", "[queue]\nmax_retries = 2\n")
    broken = write(tmp_path / "broken.toml", "[queue\nmax_retries = \n")
    with pytest.raises(ConfigError) as caught:
        load(good, broken)
    assert str(broken) in str(caught.value)

    c = load(good, broken, strict=False)
    assert c.queue.max_retries == 2
    assert c.files == (str(good),)
    assert len(c.problems) == 1 and str(broken) in c.problems[0]


def test_unreadable_config_path_is_a_config_error(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.toml"
    directory.mkdir()
    with pytest.raises(ConfigError, match=re.escape(str(directory))):
        load(directory)


def test_non_utf8_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[endpoint]\nurl = "http://caf\xe9.test"\n')
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load(path)


# -- secrets -------------------------------------------------------------------------


def test_token_comes_from_the_named_env_var() -> None:
    c = load(env={"HOOKCLIENT_TOKEN": f"  {SECRET_TOKEN}\n"})
    assert c.endpoint.token == SECRET_TOKEN
    assert c.endpoint.token_source == "env HOOKCLIENT_TOKEN"

    c = load(env={"HOOKCLIENT_ENDPOINT_TOKEN_ENV": "MY_TOKEN", "MY_TOKEN": SECRET_TOKEN})
    assert c.endpoint.token == SECRET_TOKEN
    assert c.endpoint.token_source == "env MY_TOKEN"


def test_token_from_a_private_file(tmp_path: Path) -> None:
    path = token_file(tmp_path, 0o600)
    c = load(write(tmp_path / "c.toml", f'[endpoint]\ntoken_file = "{path}"\n'))
    assert c.endpoint.token == SECRET_TOKEN
    assert str(path) in c.endpoint.token_source


def test_env_token_wins_over_the_file(tmp_path: Path) -> None:
    path = token_file(tmp_path, 0o600, "from-file")
    c = load(
        env={"HOOKCLIENT_TOKEN": "from-env", "HOOKCLIENT_ENDPOINT_TOKEN_FILE": str(path)},
    )
    assert c.endpoint.token == "from-env"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_token_file_readable_by_others_is_refused_with_a_chmod_hint(
    tmp_path: Path, mode: int
) -> None:
    path = token_file(tmp_path, mode)
    env = {"HOOKCLIENT_ENDPOINT_TOKEN_FILE": str(path)}
    with pytest.raises(ConfigError) as caught:
        load(env=env)
    message = str(caught.value)
    assert "endpoint.token_file" in message and str(path) in message
    assert f"chmod 600 {path}" in message
    assert SECRET_TOKEN not in message

    c = load(env=env, strict=False)
    assert c.endpoint.token is None
    assert len(c.problems) == 1 and "chmod 600" in c.problems[0]


def test_missing_token_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(ConfigError, match=r"endpoint\.token_file"):
        load(env={"HOOKCLIENT_ENDPOINT_TOKEN_FILE": str(path)})


def test_secrets_never_appear_in_repr_or_describe(tmp_path: Path) -> None:
    env = {
        "HOOKCLIENT_TOKEN": SECRET_TOKEN,
        "HOOKCLIENT_ENDPOINT_SIGNING_SECRET_ENV": "SIGNING",
        "SIGNING": SECRET_SIGNING,
    }
    c = load(env=env)
    assert c.endpoint.token == SECRET_TOKEN
    assert c.endpoint.signing_secret == SECRET_SIGNING
    for text in (repr(c), repr(c.endpoint), str(c), repr(describe(c))):
        assert SECRET_TOKEN not in text
        assert SECRET_SIGNING not in text
    rows = {row[0]: row for row in describe(c)}
    assert rows["endpoint.token"][1] == "[REDACTED]"
    assert rows["endpoint.signing_secret"][1] == "[REDACTED]"

    unset = {row[0]: row for row in describe(load())}
    assert unset["endpoint.token"][1] == "(not set)"


def test_token_file_secret_stays_out_of_repr(tmp_path: Path) -> None:
    path = token_file(tmp_path, 0o600)
    c = load(env={"HOOKCLIENT_ENDPOINT_TOKEN_FILE": str(path)})
    assert c.endpoint.token == SECRET_TOKEN
    assert SECRET_TOKEN not in repr(c)
    assert SECRET_TOKEN not in repr(describe(c))


def test_describe_names_value_source_and_env_var(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[queue]\nbackoff = [5, 10]\n")
    c = load(path, env={"HOOKCLIENT_LOGS_LEVEL": "debug"})
    rows = {row[0]: row for row in describe(c)}
    assert len(rows) == len(cfg.SCHEMA) + 2
    assert rows["queue.backoff"] == (
        "queue.backoff",
        "[5.0, 10.0]",
        str(path),
        "HOOKCLIENT_QUEUE_BACKOFF",
    )
    assert rows["logs.level"] == (
        "logs.level",
        "debug",
        "env HOOKCLIENT_LOGS_LEVEL",
        "HOOKCLIENT_LOGS_LEVEL",
    )
    assert rows["endpoint.url"][1:3] == ("", "default")


# -- derived values ------------------------------------------------------------------


def test_default_spool_dir_is_keyed_by_the_endpoint_url() -> None:
    a_url, b_url = "https://a.example.test/hooks", "https://b.example.test/hooks"
    a = load(env={"HOOKCLIENT_ENDPOINT_URL": a_url})
    b = load(env={"HOOKCLIENT_ENDPOINT_URL": b_url})
    key = hashlib.sha256(a_url.encode()).hexdigest()[:12]
    assert a.queue.dir == str(Path(user_state_dir("hookclient", appauthor=False)) / "spool" / key)
    assert Path(a.queue.dir).name == key and len(key) == 12
    assert a.queue.dir != b.queue.dir
    assert Path(a.queue.dir).parent == Path(b.queue.dir).parent
    assert a.sources["queue.dir"] == "default"


def test_explicit_spool_dir_wins(tmp_path: Path) -> None:
    c = load(env={"HOOKCLIENT_QUEUE_DIR": str(tmp_path / "q")})
    assert c.queue.dir == str(tmp_path / "q")


def test_default_log_dir_comes_from_platformdirs() -> None:
    from platformdirs import user_log_dir

    assert load().logs.dir == user_log_dir("hookclient", appauthor=False)


@pytest.mark.parametrize(
    ("budget", "event", "expected"),
    [
        (5.0, "SessionEnd", 1.0),
        (0.4, "SessionEnd", 0.4),
        (5.0, "PostToolUse", 5.0),
        (5.0, "Stop", 5.0),
    ],
)
def test_session_end_budget(budget: float, event: str, expected: float) -> None:
    c = load(env={"HOOKCLIENT_DELIVERY_INLINE_BUDGET": str(budget)})
    assert c.delivery.budget_for(event) == expected


def test_config_is_frozen() -> None:
    c = load()
    with pytest.raises(AttributeError):
        c.queue.workers = 3  # type: ignore[misc]


def test_load_config_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKCLIENT_QUEUE_MAX_RETRIES", "3")
    assert load_config([]).queue.max_retries == 3
    assert os.environ["HOOKCLIENT_QUEUE_MAX_RETRIES"] == "3"


def test_token_file_that_is_not_text_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"\xff\xfe\x00binary")
    path.chmod(0o600)
    env = {"HOOKCLIENT_ENDPOINT_TOKEN_FILE": str(path)}
    with pytest.raises(ConfigError, match=r"endpoint\.token_file"):
        load(env=env)
    c = load(env=env, strict=False)
    assert c.endpoint.token is None
    assert len(c.problems) == 1 and str(path) in c.problems[0]


@pytest.mark.parametrize("bad", ["tök-en", "tok\x00en", "tok\x1ben"])
def test_token_that_cannot_be_a_header_is_a_config_error(tmp_path: Path, bad: str) -> None:
    env = {"HOOKCLIENT_TOKEN": bad}
    with pytest.raises(ConfigError) as caught:
        load(env=env)
    assert "HOOKCLIENT_TOKEN" in str(caught.value)
    assert bad not in str(caught.value)
    c = load(env=env, strict=False)
    assert c.endpoint.token is None
    assert len(c.problems) == 1


def test_token_file_with_a_bad_token_names_the_file(tmp_path: Path) -> None:
    path = token_file(tmp_path, 0o600, "caf\u00e9\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load(env={"HOOKCLIENT_ENDPOINT_TOKEN_FILE": str(path)})


def test_signing_secret_whsec_must_be_base64() -> None:
    good = {
        "HOOKCLIENT_ENDPOINT_SIGNING_SECRET_ENV": "S",
        "S": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }
    assert load(env=good).endpoint.signing_secret == good["S"]
    plain = {"HOOKCLIENT_ENDPOINT_SIGNING_SECRET_ENV": "S", "S": "any plain string!"}
    assert load(env=plain).endpoint.signing_secret == "any plain string!"
    bad = {"HOOKCLIENT_ENDPOINT_SIGNING_SECRET_ENV": "S", "S": "whsec_not*base64!"}
    with pytest.raises(ConfigError) as caught:
        load(env=bad)
    assert "signing_secret_env" in str(caught.value) and "env S" in str(caught.value)
    assert "not*base64" not in str(caught.value)
    c = load(env=bad, strict=False)
    assert c.endpoint.signing_secret is None
    assert len(c.problems) == 1


def test_signing_secret_env_set_but_empty_means_no_secret() -> None:
    c = load(env={"HOOKCLIENT_ENDPOINT_SIGNING_SECRET_ENV": "S"})
    assert c.endpoint.signing_secret is None


# -- the hook's cheap path -----------------------------------------------------------


@pytest.mark.parametrize("url", [None, "", "https://a.example.test/hooks", "http://x/é?q=1"])
def test_spool_key_is_the_sha256_of_the_url(url: str | None) -> None:
    """The key comes from CPython's own SHA-256 (no OpenSSL import): the same digest."""
    assert dirs.spool_key(url) == hashlib.sha256((url or "").encode()).hexdigest()[:12]


def test_paths_are_paths_and_their_strings_match(tmp_path: Path) -> None:
    """Callers still get Path objects; the hook reads the same places as strings."""
    path = write(
        tmp_path / "c.toml",
        f'[queue]\ndir = "{tmp_path}//q/"\n[logs]\ndir = "~/logs"\n'
        f'[endpoint]\nca_bundle = "./ca.pem"\n',
    )
    c = load(path)
    assert c.queue.dir == str(tmp_path / "q")
    assert c.logs.dir == str(Path("~/logs").expanduser())
    assert c.endpoint.ca_bundle == "ca.pem" and c.endpoint.token_file is None
    assert c.files == (str(path),)


def test_config_values_compare_copy_and_hide_secrets_like_dataclasses() -> None:
    import copy
    import pickle

    c = load(env={"HOOKCLIENT_TOKEN": SECRET_TOKEN})
    assert c == load(env={"HOOKCLIENT_TOKEN": SECRET_TOKEN})
    assert c != load(env={"HOOKCLIENT_TOKEN": "other"})  # secrets compare, unseen
    assert copy.deepcopy(c) == c == pickle.loads(pickle.dumps(c))  # noqa: S301 - our own bytes
    assert hash(c.queue) == hash(load().queue)
    assert repr(c.delivery).startswith("Delivery(mode='auto', inline_attempts=3,")
    with pytest.raises(AttributeError):
        del c.endpoint.url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/in", "https://hooks.example.com/in"),
        ("https://bob:s3cr3t@hooks.example.com/in", "https://bob:[REDACTED]@hooks.example.com/in"),
        ("https://t0ken@hooks.example.com:8443/in", "https://[REDACTED]@hooks.example.com:8443/in"),
        ("http://127.0.0.1:9/hooks?a=b@c", "http://127.0.0.1:9/hooks?a=[REDACTED]"),
        (
            "https://h.example.test/x?token=s3cret&v=1",
            "https://h.example.test/x?token=[REDACTED]&v=[REDACTED]",
        ),
        (None, None),
    ],
)
def test_credentials_in_the_url_are_never_shown(url: str | None, shown: str | None) -> None:
    from hookclient.urls import safe_url

    assert safe_url(url) == shown


def test_config_show_and_the_daemon_never_print_url_credentials(tmp_path: Path) -> None:
    from hookclient.commands import describe

    path = write(
        tmp_path / "c.toml", '[endpoint]\nurl = "https://bob:s3cr3t@hooks.example.com/in"\n'
    )
    rows = describe(load(path))
    assert "s3cr3t" not in repr(rows) and "s3cr3t" not in repr(load(path))


# -- typos and relative directories ----------------------------------------------------

ENDPOINT_KEYS = "url, token_env, token_file, timeout, verify, ca_bundle, signing_secret_env"


def test_a_misspelt_key_is_answered_with_the_closest_one(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[endpoint]\ntimout = 3\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == (
        f'unknown key endpoint.timout in {path}: did you mean "timeout"? (known: {ENDPOINT_KEYS})'
    )
    assert load(path, strict=False).problems == (str(caught.value),)


def test_a_key_like_no_other_gets_no_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[endpoint]\nzzz = 3\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == f"unknown key endpoint.zzz in {path} (known: {ENDPOINT_KEYS})"


def test_a_misspelt_section_is_answered_with_the_closest_one(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[endpiont]\nurl = "http://127.0.0.1:9/hooks"\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == f"unknown section [endpiont] in {path}: did you mean [endpoint]?"


def test_difflib_is_imported_only_for_an_unknown_key(tmp_path: Path) -> None:
    """The hook loads a valid config on every event: no difflib for it."""
    import subprocess
    import sys

    good = write(tmp_path / "good.toml", "[endpoint]\ntimeout = 3\n")
    typo = write(tmp_path / "typo.toml", "[endpoint]\ntimout = 3\n")
    probe = (
        "import sys\nfrom hookclient.config import load_config\n"
        "load_config([sys.argv[1]], {}, strict=False)\nprint('difflib' in sys.modules)\n"
    )
    for path, imported in ((good, "False"), (typo, "True")):
        out = subprocess.run(
            [sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        assert out.stdout.strip() == imported, (path, out.stderr)


@pytest.mark.parametrize("key", ["queue.dir", "logs.dir"])
@pytest.mark.parametrize("value", ["spool", "./spool", "a/b"])
def test_a_relative_directory_in_a_file_is_refused(tmp_path: Path, key: str, value: str) -> None:
    section, name = key.split(".")
    path = write(tmp_path / "c.toml", f'[{section}]\n{name} = "{value}"\n')
    message = f"{key} in {path}: expected an absolute directory, got {value!r}"
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == message

    c = load(path, strict=False)
    assert c.problems == (message,)
    assert getattr(c, section).dir == getattr(load(), section).dir  # the default
    assert c.sources[key] == f"default (invalid in {path})"


@pytest.mark.parametrize("key", ["queue.dir", "logs.dir"])
def test_a_relative_directory_in_a_variable_is_refused(key: str) -> None:
    section, name = key.split(".")
    var = f"HOOKCLIENT_{section.upper()}_{name.upper()}"
    message = f"{key} in env {var}: expected an absolute directory, got 'spool'"
    with pytest.raises(ConfigError) as caught:
        load(env={var: "spool"})
    assert str(caught.value) == message
    c = load(env={var: "spool"}, strict=False)
    assert c.problems == (message,)
    assert getattr(c, section).dir == getattr(load(), section).dir


def test_home_relative_and_absolute_directories_are_accepted(tmp_path: Path) -> None:
    c = load(env={"HOOKCLIENT_QUEUE_DIR": "~/q", "HOOKCLIENT_LOGS_DIR": str(tmp_path / "l")})
    assert c.queue.dir == str(Path("~/q").expanduser()) and os.path.isabs(c.queue.dir)
    assert c.logs.dir == str(tmp_path / "l") and c.problems == ()


def test_a_home_that_cannot_be_expanded_is_a_config_problem_not_a_crash() -> None:
    env = {"HOOKCLIENT_QUEUE_DIR": "~no-such-user-4f1c/q"}
    message = (
        "queue.dir in env HOOKCLIENT_QUEUE_DIR: expected a path whose ~ can be expanded, "
        "got '~no-such-user-4f1c/q'"
    )
    with pytest.raises(ConfigError) as caught:
        load(env=env)
    assert str(caught.value) == message
    assert load(env=env, strict=False).problems == (message,)


def test_each_key_is_declared_once_as_a_field_of_its_section() -> None:
    """SCHEMA, the constructor and repr all come from the one declaration per key."""
    from hookclient.settings import SECTIONS

    for (section, key), (kind, default, help_text) in cfg.SCHEMA.items():
        field = SECTIONS[section].fields[key]
        assert (field.kind, field.default, field.help) == (kind, default, help_text)
        assert kind in {"str", "str?", "path?", "int", "float", "bool", "list[str]", "list[float]"}
    assert cfg.SCHEMA[("queue", "retry_after_cap")] == (
        "float",
        6 * 3600.0,
        "cap on a server's Retry-After",
    )
    assert Queue(retry_after_cap=60.0).retry_after_cap == 60.0
    assert Queue().retry_after_cap == 6 * 3600.0  # the declared default
    with pytest.raises(TypeError, match="has no field retry_after_capp"):
        Queue(retry_after_capp=60.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"needs endpoint="):
        Config(delivery=Delivery(), queue=Queue(), logs=Logs(), sources={}, files=())  # type: ignore[call-arg]
    assert Endpoint(url=None, token_file=Path("/t")).token_file == "/t"  # type: ignore[arg-type]
