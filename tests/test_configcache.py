"""hookclient.configcache: parsed config files reused only while the file is unchanged."""

from __future__ import annotations

import json
import os
import stat
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hookclient import configcache
from hookclient.config import Config, load_config
from hookclient.configcache import ConfigCache

SECRET = "tok-configcache-9d1f-secret"
LATER = 3_000_000_000  # ns past the file times: the file is "old" for the racy check


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "cache" / "config.json"


def later_clock() -> int:
    return time.time_ns() + LATER


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, cache: ConfigCache | None, env: dict[str, str] | None = None) -> Config:
    return load_config([path], env or {}, strict=False, cache=cache)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of tomllib.load, by file name."""
    calls: list[str] = []
    real = tomllib.load

    def counting(fh: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(fh.name)
        return real(fh, **kwargs)

    monkeypatch.setattr(tomllib, "load", counting)
    return calls


def test_an_unchanged_file_is_parsed_once(
    tmp_path: Path, cache_file: Path, parses: list[str]
) -> None:
    path = write(tmp_path / "c.toml", '[endpoint]\nurl = "https://a.test/hooks"\n')
    first = load(path, ConfigCache(str(cache_file), now_ns=later_clock))
    second = load(path, ConfigCache(str(cache_file), now_ns=later_clock))

    assert parses == [str(path)]
    assert second == first == load(path, None)  # the same Config, field by field
    assert second.endpoint.url == "https://a.test/hooks"


def test_an_edit_in_place_that_keeps_size_and_mtime_is_seen(
    tmp_path: Path, cache_file: Path, parses: list[str]
) -> None:
    """ctime is in the key: setting mtime back (touch -d, cp -p) cannot hide an edit."""
    path = write(tmp_path / "c.toml", '[endpoint]\nurl = "https://a.test/hooks"\n')
    load(path, ConfigCache(str(cache_file), now_ns=later_clock))
    before = path.stat()
    with path.open("r+b") as fh:  # same inode, same size
        fh.write(b'[endpoint]\nurl = "https://b.test/hooks"\n')
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    while path.stat().st_ctime_ns == before.st_ctime_ns:  # the same coarse tick: a few ms
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )

    c = load(path, ConfigCache(str(cache_file), now_ns=later_clock))
    assert c.endpoint.url == "https://b.test/hooks"
    assert len(parses) == 2


def test_a_file_replaced_by_rename_is_seen(
    tmp_path: Path, cache_file: Path, parses: list[str]
) -> None:
    path = write(tmp_path / "c.toml", "[queue]\nmax_retries = 2\n")
    load(path, ConfigCache(str(cache_file), now_ns=later_clock))
    write(tmp_path / "new.toml", "[queue]\nmax_retries = 3\n").replace(path)
    assert load(path, ConfigCache(str(cache_file), now_ns=later_clock)).queue.max_retries == 3


def test_a_freshly_changed_file_is_not_cached(
    tmp_path: Path, cache_file: Path, parses: list[str]
) -> None:
    """File times are coarse: a file changed within RACY_SECONDS could change again
    within the same tick, keeping its key, so it is read every time until it settles."""
    path = write(tmp_path / "c.toml", "[queue]\nmax_retries = 2\n")
    for _ in range(3):
        load(path, ConfigCache(str(cache_file)))  # the real clock: the file is new
    assert len(parses) == 3
    assert not cache_file.exists()


def test_a_file_with_an_unknown_key_is_never_cached(
    tmp_path: Path, cache_file: Path, parses: list[str]
) -> None:
    """The cache holds schema values only: a mistyped key (a token pasted into the
    file, say) never reaches it, and its problem is reported on every load."""
    path = write(tmp_path / "c.toml", f'[endpoint]\ntoken = "{SECRET}"\n[queue]\nworkers = 2\n')
    for _ in range(2):
        c = load(path, ConfigCache(str(cache_file), now_ns=later_clock))
        assert any("endpoint.token" in p for p in c.problems)
        assert c.queue.workers == 2
    assert len(parses) == 2
    assert not cache_file.exists() or SECRET not in cache_file.read_text()


def test_a_value_json_cannot_hold_is_read_with_tomllib_each_time(
    tmp_path: Path, cache_file: Path, parses: list[str]
) -> None:
    path = write(tmp_path / "c.toml", "[endpoint]\nurl = 2026-01-01T00:00:00Z\n")
    for _ in range(2):
        c = load(path, ConfigCache(str(cache_file), now_ns=later_clock))
        assert any("endpoint.url" in p for p in c.problems)
    assert len(parses) == 2


def test_no_secret_reaches_the_cache_and_it_is_private(
    tmp_path: Path, cache_file: Path, parses: list[str]
) -> None:
    token = write(tmp_path / "token", SECRET)
    token.chmod(0o600)
    path = write(
        tmp_path / "c.toml",
        f'[endpoint]\nurl = "https://a.test/hooks"\ntoken_file = "{token}"\n'
        'signing_secret_env = "SIGNING"\n',
    )
    env = {"SIGNING": SECRET + "-signing", "HOOKCLIENT_TOKEN": ""}
    c = load(path, ConfigCache(str(cache_file), now_ns=later_clock), env)
    assert c.endpoint.token == SECRET
    assert c.endpoint.signing_secret == SECRET + "-signing"

    text = cache_file.read_text()
    assert SECRET not in text
    assert str(token) in text  # the file's name is configuration; its content is not
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_file.parent.stat().st_mode) == 0o700
    # and a load from the cache still reads the token from its file
    again = load(path, ConfigCache(str(cache_file), now_ns=later_clock), env)
    assert again.endpoint.token == SECRET and len(parses) == 1


@pytest.mark.parametrize(
    "damage", ["readable by others", "not json", "wrong version", "a link", "a fifo"]
)
def test_a_damaged_or_foreign_cache_is_ignored(
    tmp_path: Path, cache_file: Path, parses: list[str], damage: str
) -> None:
    """Whoever could write the cache could send events elsewhere: it is trusted only
    when it is a private regular file of this user."""
    path = write(tmp_path / "c.toml", '[endpoint]\nurl = "https://a.test/hooks"\n')
    load(path, ConfigCache(str(cache_file), now_ns=later_clock))
    body = json.loads(cache_file.read_text())
    body["files"][str(path)]["table"]["endpoint"]["url"] = "https://evil.test/hooks"
    cache_file.write_text(json.dumps(body))  # a poisoned but otherwise matching entry
    if damage == "readable by others":
        cache_file.chmod(0o644)
    elif damage == "not json":
        cache_file.write_text("{")
    elif damage == "wrong version":
        cache_file.write_text(json.dumps({**body, "version": 0}))
    elif damage == "a link":
        target = tmp_path / "elsewhere.json"
        cache_file.replace(target)
        cache_file.symlink_to(target)
    else:  # opening it for reading would wait for a writer forever
        cache_file.unlink()
        os.mkfifo(cache_file, 0o600)

    c = load(path, ConfigCache(str(cache_file), now_ns=later_clock))
    assert c.endpoint.url == "https://a.test/hooks"
    assert len(parses) == 2


def test_the_cache_keeps_a_bounded_number_of_files(tmp_path: Path, cache_file: Path) -> None:
    cache = ConfigCache(str(cache_file), now_ns=later_clock)
    for n in range(configcache.MAX_ENTRIES + 5):
        load(write(tmp_path / f"c{n}.toml", f"[queue]\nworkers = {n + 1}\n"), cache)
    entries = json.loads(cache_file.read_text())["files"]
    assert len(entries) == configcache.MAX_ENTRIES
    assert str(tmp_path / f"c{configcache.MAX_ENTRIES + 4}.toml") in entries  # newest kept
    assert str(tmp_path / "c0.toml") not in entries


def test_missing_files_and_an_unwritable_cache_cost_nothing(tmp_path: Path) -> None:
    blocker = write(tmp_path / "blocker", "")
    cache = ConfigCache(str(blocker / "cache" / "config.json"), now_ns=later_clock)
    path = write(tmp_path / "c.toml", "[queue]\nworkers = 2\n")
    c = load_config([tmp_path / "absent.toml", path], {}, strict=False, cache=cache)
    assert c.queue.workers == 2 and c.problems == ()
    assert c.files == (str(path),)
