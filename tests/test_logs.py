"""hookclient.logs: JSON lines, levels, privacy, rotation under concurrency, structlog."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookclient.clock import parse_iso
from hookclient.logs import LogWriter, log_files, structlog_logger


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stream_lines(directory: Path, stream: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in log_files(directory):
        if path.name.startswith(f"{stream}.log"):
            out.extend(lines(path))
    return out


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- LogWriter ---------------------------------------------------------------------


def test_one_json_object_per_line_with_the_schema(tmp_path: Path) -> None:
    w = LogWriter(tmp_path / "logs", component="hook")
    w.log(
        "success",
        "info",
        "delivered",
        requestId="r-1",
        traceId="t" * 32,
        spanId="s" * 16,
        event="Stop",
        attempt=2,
        status=200,
        elapsedMs=12.5,
        outcome="delivered",
        error=None,
    )
    w.log("success", "info", "second", requestId="r-2", text="line\nbreak ✓")
    raw = (tmp_path / "logs" / "success.log").read_text(encoding="utf-8")
    assert raw.count("\n") == 2 and raw.endswith("\n")
    first, second = lines(tmp_path / "logs" / "success.log")
    assert first["level"] == "info"
    assert first["msg"] == "delivered"
    assert first["component"] == "hook"
    assert first["pid"] == os.getpid()
    assert first["requestId"] == "r-1"
    assert first["traceId"] == "t" * 32 and first["spanId"] == "s" * 16
    assert (first["event"], first["attempt"], first["status"]) == ("Stop", 2, 200)
    assert (first["elapsedMs"], first["outcome"]) == (12.5, "delivered")
    assert "error" not in first  # None fields are left out
    assert first["ts"].endswith("Z") and abs(parse_iso(first["ts"]) - parse_iso(second["ts"])) < 5
    assert second["text"] == "line\nbreak ✓"


def test_each_stream_has_its_file(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, component="daemon", level="debug")
    for stream in ("success", "queue", "error", "debug"):
        w.log(stream, "info", f"to {stream}")
    for stream in ("success", "queue", "error", "debug"):
        assert [r["msg"] for r in lines(tmp_path / f"{stream}.log")] == [f"to {stream}"]


def test_unserialisable_values_are_written_as_text(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, component="cli")
    w.log("queue", "info", "path", file=tmp_path / "x.json")
    assert lines(tmp_path / "queue.log")[0]["file"] == str(tmp_path / "x.json")


@pytest.mark.parametrize(
    ("threshold", "written"),
    [
        ("debug", ["debug", "info", "warning", "error"]),
        ("info", ["info", "warning", "error"]),
        ("warning", ["warning", "error"]),
        ("error", ["error"]),
    ],
)
def test_level_filtering(tmp_path: Path, threshold: str, written: list[str]) -> None:
    w = LogWriter(tmp_path, component="hook", level=threshold)
    for level in ("debug", "info", "warning", "error"):
        w.log("queue", level, level)
    path = tmp_path / "queue.log"
    assert [r["level"] for r in lines(path)] == written


def test_files_are_private_whatever_the_umask(tmp_path: Path, umask_zero: None) -> None:
    directory = tmp_path / "logs"
    LogWriter(directory, component="hook").log("error", "error", "x")
    assert stat.S_IMODE((directory / "error.log").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_an_unwritable_log_dir_sets_broken_instead_of_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory's parent should be")
    w = LogWriter(blocker / "logs", component="hook")
    assert w.broken is None
    w.log("error", "error", "cannot land anywhere")
    assert w.broken is not None
    assert str(blocker / "logs") in w.broken


def test_a_log_file_that_is_a_directory_sets_broken(tmp_path: Path) -> None:
    (tmp_path / "queue.log").mkdir()
    w = LogWriter(tmp_path, component="hook")
    w.log("queue", "info", "x")
    assert w.broken is not None
    w.log("success", "info", "other streams still work")
    assert lines(tmp_path / "success.log")[0]["msg"] == "other streams still work"


# -- rotation ----------------------------------------------------------------------


def test_rotation_keeps_backups_numbered_and_the_newest_lines(tmp_path: Path) -> None:
    tmp_path = tmp_path / "logs"
    w = LogWriter(tmp_path, component="hook", max_bytes=300, backups=3)
    for n in range(100):
        w.log("queue", "info", "line", n=n)
    w.log("queue", "info", "line", n=100)  # the 100th line may have just rotated the file
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert names == ["queue.log", "queue.log.1", "queue.log.2", "queue.log.3"]
    kept = [r["n"] for r in stream_lines(tmp_path, "queue")]
    assert kept == list(range(kept[0], 101))  # oldest to newest, no gap, ends with the last
    for name in ("queue.log.1", "queue.log.2", "queue.log.3"):
        size = (tmp_path / name).stat().st_size
        assert 300 < size <= 300 + 120  # rotated just past max_bytes
    assert (tmp_path / "queue.log").stat().st_size <= 300


def test_rotation_with_no_backups_truncates(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, component="hook", max_bytes=200, backups=0)
    for n in range(20):
        w.log("queue", "info", "line", n=n)
    assert not (tmp_path / "queue.log.1").exists()
    assert (tmp_path / "queue.log").stat().st_size <= 200


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hookclient.logs import LogWriter

    directory, proc, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    w = LogWriter(directory, component="hook", max_bytes=4096, backups=10000)
    for n in range(count):
        w.log("queue", "info", "concurrent line", proc=proc, n=n, requestId=f"r-{proc}-{n}")
    assert w.broken is None, w.broken
    """
)


def test_concurrent_writers_lose_no_line_at_rotation(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    procs, count = 6, 500
    children = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(directory), str(p), str(count)])
        for p in range(procs)
    ]
    for child in children:
        assert child.wait(timeout=100) == 0

    files = log_files(directory)
    assert len(files) > 10  # rotation really happened, many times
    seen: list[tuple[int, int]] = []
    for path in files:
        for text in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(text)  # a torn line would not parse
            seen.append((record["proc"], record["n"]))
    assert len(seen) == procs * count
    assert set(seen) == {(p, n) for p in range(procs) for n in range(count)}
    for p in range(procs):  # each writer's lines stay in its order across the files
        mine = [n for proc, n in seen if proc == p]
        assert mine == sorted(mine)


def test_log_files_order_oldest_first_per_stream(tmp_path: Path) -> None:
    for name in (
        "success.log",
        "success.log.1",
        "success.log.2",
        "success.log.10",
        "success.log.bak",
        ".success.log.lock",
        "queue.log.1",
        "error.log",
        "debug.log.3",
        "debug.log",
        "other.log",
    ):
        (tmp_path / name).write_text("")
    assert [p.name for p in log_files(tmp_path)] == [
        "success.log.10",
        "success.log.2",
        "success.log.1",
        "success.log",
        "queue.log.1",
        "error.log",
        "debug.log.3",
        "debug.log",
    ]


def test_log_files_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert log_files(tmp_path / "none") == []


# -- structlog ---------------------------------------------------------------------


def test_structlog_logger_writes_the_same_schema(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, component="daemon")
    log = structlog_logger(w, requestId="r-9", traceId="a" * 32)
    log.info("attempt", attempt=3, status=503, skipped=None)
    (record,) = lines(tmp_path / "queue.log")
    assert record["msg"] == "attempt"
    assert record["level"] == "info"
    assert record["component"] == "daemon"
    assert record["pid"] == os.getpid()
    assert record["requestId"] == "r-9" and record["traceId"] == "a" * 32
    assert (record["attempt"], record["status"]) == (3, 503)
    assert "skipped" not in record and "event" not in record
    assert set(record) >= {"ts", "level", "msg", "component", "pid"}


def test_structlog_routes_by_level_and_stream(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, component="daemon", level="debug")
    log = structlog_logger(w)
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.info("delivered", stream="success")
    assert [(r["msg"], r["level"]) for r in lines(tmp_path / "debug.log")] == [("d", "debug")]
    assert [r["msg"] for r in lines(tmp_path / "queue.log")] == ["i"]
    assert [(r["msg"], r["level"]) for r in lines(tmp_path / "error.log")] == [
        ("w", "warning"),
        ("e", "error"),
    ]
    (success,) = lines(tmp_path / "success.log")
    assert success["msg"] == "delivered" and "stream" not in success


def test_structlog_event_field_is_the_hook_event(tmp_path: Path) -> None:
    log = structlog_logger(LogWriter(tmp_path, component="daemon"))
    log.info("attempt", event="PostToolUse", requestId="r-e")
    (record,) = lines(tmp_path / "queue.log")
    assert (record["msg"], record["event"], record["requestId"]) == (
        "attempt",
        "PostToolUse",
        "r-e",
    )
    assert "_hook_event" not in record


def test_structlog_respects_the_writer_level(tmp_path: Path) -> None:
    log = structlog_logger(LogWriter(tmp_path, component="daemon", level="warning"))
    log.debug("d")
    log.info("i")
    log.warning("w")
    assert not (tmp_path / "queue.log").exists()
    assert not (tmp_path / "debug.log").exists()
    assert [r["msg"] for r in lines(tmp_path / "error.log")] == ["w"]


def test_structlog_bound_fields_and_contextvars(tmp_path: Path) -> None:
    import structlog

    log = structlog_logger(LogWriter(tmp_path, component="daemon"), worker=2)
    with structlog.contextvars.bound_contextvars(requestId="r-b"):
        log.info("claimed")
    log.info("after")
    first, second = lines(tmp_path / "queue.log")
    assert (first["worker"], first["requestId"]) == (2, "r-b")
    assert second["worker"] == 2 and "requestId" not in second
