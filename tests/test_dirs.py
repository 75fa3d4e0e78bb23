"""hookclient.dirs: the same directories platformdirs gives, without importing it."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pytest
from platformdirs.macos import MacOS
from platformdirs.unix import Unix

from hookclient import dirs

APP = "hookclient"
KINDS = ("config", "state", "log")

#: Environments to compare in: (name, variables set; None removes one).
ENVIRONMENTS: list[tuple[str, dict[str, str | None]]] = [
    ("plain", {}),
    ("xdg set", {"XDG_CONFIG_HOME": "/x/config", "XDG_STATE_HOME": "/x/state"}),
    ("xdg trailing slash", {"XDG_CONFIG_HOME": "/x/config/", "XDG_STATE_HOME": "/x//state/"}),
    ("xdg empty", {"XDG_CONFIG_HOME": "", "XDG_STATE_HOME": ""}),
    ("xdg relative", {"XDG_CONFIG_HOME": "rel/config", "XDG_STATE_HOME": "rel/state"}),
    ("xdg blank", {"XDG_CONFIG_HOME": "  ", "XDG_STATE_HOME": " /x/padded "}),
    ("home with trailing slash", {"HOME": "/home/someone/"}),
    ("home is root", {"HOME": "/"}),
    ("home relative", {"HOME": "relative/home"}),
    ("home empty", {"HOME": ""}),
    ("home unset", {"HOME": None}),
    ("android", {"ANDROID_DATA": "/data", "ANDROID_ROOT": "/system"}),
]


def _apply(monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None]) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def _platformdirs_answer(kind: str) -> str | Exception:
    try:
        if kind == "config":
            return platformdirs.user_config_dir(APP, appauthor=False)
        if kind == "state":
            return platformdirs.user_state_dir(APP, appauthor=False)
        return platformdirs.user_log_dir(APP, appauthor=False)
    except Exception as exc:  # platformdirs raises on a home it cannot find
        return exc


def _ours(kind: str) -> str | Exception:
    try:
        return {"config": dirs.user_config_dir, "state": dirs.user_state_dir}.get(
            kind, dirs.user_log_dir
        )()
    except Exception as exc:
        return exc


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "env"), ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS])
def test_same_answer_as_platformdirs_here(
    monkeypatch: pytest.MonkeyPatch, kind: str, name: str, env: dict[str, str | None]
) -> None:
    """Whatever the environment, the public functions answer what platformdirs does."""
    _apply(monkeypatch, env)
    expected, got = _platformdirs_answer(kind), _ours(kind)
    if isinstance(expected, Exception):
        assert type(got) is type(expected), (got, expected)
    else:
        assert got == expected


#: Environments the resolver leaves to platformdirs on Linux, for every kind.
DEFERRED = {"xdg relative", "xdg blank", "home relative", "home empty", "home unset", "android"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "env"), ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS])
def test_linux_rule_matches_platformdirs_unix_or_defers(
    monkeypatch: pytest.MonkeyPatch, kind: str, name: str, env: dict[str, str | None]
) -> None:
    """Where the resolver answers on its own it agrees with platformdirs' Unix class
    (which runs anywhere); the odd environments it leaves to platformdirs."""
    _apply(monkeypatch, env)
    answer = dirs.resolve(kind, "linux")
    if name in DEFERRED:
        assert answer is None
    else:
        assert answer == getattr(Unix(APP, appauthor=False), f"user_{kind}_dir")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "env"), ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS])
def test_macos_rule_matches_platformdirs_macos_or_defers(
    monkeypatch: pytest.MonkeyPatch, kind: str, name: str, env: dict[str, str | None]
) -> None:
    """The macOS rule, checked against platformdirs' own MacOS class (it runs anywhere)."""
    _apply(monkeypatch, env)
    answer = dirs.resolve(kind, "darwin")
    if answer is None:
        return
    assert not os.environ.get("XDG_CONFIG_HOME") and not os.environ.get("XDG_STATE_HOME")
    assert answer == getattr(MacOS(APP, appauthor=False), f"user_{kind}_dir")


def test_the_plain_environment_is_resolved_without_platformdirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The common case really is the fast one: no fallback on Linux or macOS."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for platform in ("linux", "darwin"):
        for kind in KINDS:
            assert dirs.resolve(kind, platform) is not None, (platform, kind)
    assert dirs.resolve("state", "linux") == str(tmp_path / ".local" / "state" / APP)
    assert dirs.resolve("log", "darwin") == str(tmp_path / "Library" / "Logs" / APP)


@pytest.mark.parametrize("platform", ["win32", "freebsd14", "cygwin", "ios"])
def test_other_platforms_are_left_to_platformdirs(platform: str) -> None:
    assert [dirs.resolve(kind, platform) for kind in KINDS] == [None, None, None]


@pytest.mark.parametrize(
    "path",
    [
        "a",
        "/a/b",
        "a/b/",
        "a//b",
        "//a/b",
        "///a",
        "./a",
        "a/./b",
        "a/.",
        ".",
        "..",
        "a/../b",
        "/",
        "",
        "~/x",
        "/tmp/spool dir/é",
    ],
)
def test_clean_is_what_pathlib_prints(path: str) -> None:
    assert dirs.clean(path) == str(Path(path))


@pytest.mark.parametrize("path", ["~", "~/x/", "x/~", "/abs", "rel//x"])
def test_expand_is_what_pathlib_expanduser_prints(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path) + "/")
    assert dirs.expand(path) == str(Path(path).expanduser())


def test_expand_an_unknown_user_is_an_error_like_pathlib() -> None:
    with pytest.raises(RuntimeError):
        Path("~no-such-user-hookclient/x").expanduser()
    with pytest.raises(RuntimeError):
        dirs.expand("~no-such-user-hookclient/x")
