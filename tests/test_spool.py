"""hookclient.spool: durable writes, one-state-at-a-time moves, hostile files, limits."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookclient import spool as spool_mod
from hookclient.clock import file_stamp
from hookclient.envelope import uuid7
from hookclient.errors import CorruptFile, SpoolError, SpoolFull
from hookclient.spool import Record, Spool, State, file_name, new_state
from hookclient.spoolstate import Owner, SpoolState

NAME = re.compile(r"^(\d{8}T\d{12}Z)-(?P<rid>[0-9a-f-]{36})\.json$")


def envelope(request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "requestId": request_id or uuid7(),
        "event": "Stop",
        "payload": {"hook_event_name": "Stop"},
        **extra,
    }


def state() -> SpoolState:
    now = time.time()
    return new_state(now, due=now)


def owner(pid: int, by: str = "daemon") -> Owner:
    return {"pid": pid, "by": by, "claimedAt": "2026-12-01T00:00:00.000000Z"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def files(spool: Spool, where: State) -> list[str]:
    directory = spool.dir(where)
    return sorted(os.listdir(directory)) if directory.exists() else []


def states_holding(spool: Spool, name: str) -> list[State]:
    return [s for s in State if (spool.dir(s) / name).exists()]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- writing -------------------------------------------------------------------------


@pytest.mark.parametrize("where", [State.PENDING, State.PROCESSING])
def test_add_writes_a_private_parseable_file(spool: Spool, where: State, umask_zero: None) -> None:
    env = envelope()
    st = new_state(1000.0, due=1060.0, owner=owner(1) if where is State.PROCESSING else None)
    record = spool.add(env, st, where)

    assert record.path.parent == spool.dir(where)
    assert record.where is where
    assert record.request_id == env["requestId"]
    assert json.loads(record.path.read_bytes()) == {"envelope": env, "state": st}
    assert mode(record.path) == 0o600
    for s in State:
        assert mode(spool.dir(s)) == 0o700, s
    assert mode(Path(spool.root)) == 0o700
    assert files(spool, State.TMP) == []
    assert states_holding(spool, record.path.name) == [where]


def test_file_name_format_and_order(spool: Spool) -> None:
    before = time.time()
    record = spool.add(envelope(), state(), State.PENDING)
    after = time.time()
    match = NAME.match(record.path.name)
    assert match, record.path.name
    assert match["rid"] == record.request_id
    assert file_stamp(before) <= match[1] <= file_stamp(after)


def test_file_names_sort_in_creation_order() -> None:
    stamps = [1_790_000_000.0 + i * 0.000_25 for i in range(50)]  # quarter-ms apart
    names = [file_name(envelope(), t) for t in stamps]
    assert names == sorted(names)
    assert file_name(envelope("x"), 1_790_000_000.5) == "20260921T141320500000Z-x.json"


@pytest.mark.parametrize("bad", ["a/b", "../x", ".hidden", "a\\b", "/abs"])
def test_file_name_refuses_path_like_ids(bad: str) -> None:
    with pytest.raises(SpoolError, match="refusing request id"):
        file_name(envelope(bad), 0.0)


def test_add_refuses_a_path_like_id_without_writing(spool: Spool) -> None:
    with pytest.raises(SpoolError):
        spool.add(envelope("../../escape"), state(), State.PENDING)
    assert not (Path(spool.root).parent / "escape.json").exists()
    for s in State:
        assert files(spool, s) == []


def test_paths_lists_oldest_first(spool: Spool) -> None:
    added = [spool.add(envelope(), state(), State.PENDING).path for _ in range(5)]
    assert spool.paths(State.PENDING) == sorted(added)
    assert spool.paths(State.FAILED) == []


def test_paths_of_a_spool_never_written_is_empty(tmp_path: Path) -> None:
    assert Spool(tmp_path / "nothing").paths(State.PENDING) == []


# -- moves ---------------------------------------------------------------------------


def test_transition_rewrites_then_moves(spool: Spool) -> None:
    record = spool.add(envelope(), state(), State.PROCESSING)
    record.state["retries"] = 1
    record.state["lastError"] = {"kind": "http", "status": 503, "detail": "HTTP 503"}
    moved = spool.transition(record, State.PENDING)

    assert moved.path == spool.dir(State.PENDING) / record.path.name
    assert states_holding(spool, record.path.name) == [State.PENDING]
    body = json.loads(moved.path.read_bytes())
    assert body["state"]["retries"] == 1
    assert body["state"]["lastError"]["status"] == 503
    assert spool.read(moved.path).state == moved.state
    assert files(spool, State.TMP) == []


def test_update_keeps_history_bounded(spool: Spool) -> None:
    record = spool.add(envelope(), state(), State.PENDING)
    record.state["history"] = [{"attempt": i} for i in range(200)]
    spool.update(record)
    history = spool.read(record.path).state["history"]
    assert len(history) == spool_mod.HISTORY_KEEP
    assert history[-1] == {"attempt": 199}


def test_move_keeps_the_body(spool: Spool) -> None:
    record = spool.add(envelope(), state(), State.PENDING)
    before = record.path.read_bytes()
    moved = spool.move(record, State.FAILED)
    assert moved.path.read_bytes() == before
    assert states_holding(spool, record.path.name) == [State.FAILED]


def test_remove(spool: Spool) -> None:
    record = spool.add(envelope(), state(), State.PROCESSING)
    spool.remove(record)
    spool.remove(record)  # twice is fine
    assert states_holding(spool, record.path.name) == []


def test_claim_moves_to_processing_with_the_owner(spool: Spool) -> None:
    record = spool.add(envelope(), state(), State.PENDING)
    claimed = spool.claim(record, owner(42, "daemon"))
    assert claimed is not None
    assert claimed.where is State.PROCESSING
    assert spool.read(claimed.path).state["owner"] == owner(42, "daemon")
    assert states_holding(spool, record.path.name) == [State.PROCESSING]


def test_second_claim_of_the_same_record_loses(spool: Spool) -> None:
    record = spool.add(envelope(), state(), State.PENDING)
    first = spool.read(record.path)
    second = spool.read(record.path)
    assert spool.claim(first, owner(1)) is not None
    assert spool.claim(second, owner(2)) is None
    assert spool.read(spool.dir(State.PROCESSING) / record.path.name).state["owner"] == owner(1)


def test_claim_race_across_threads_has_one_winner(spool: Spool) -> None:
    record = spool.add(envelope(), state(), State.PENDING)
    copies = [spool.read(record.path) for _ in range(16)]
    barrier = threading.Barrier(len(copies))
    results: list[Record | None] = [None] * len(copies)

    def claim(i: int) -> None:
        barrier.wait()
        results[i] = spool.claim(copies[i], owner(i))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(copies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert states_holding(spool, record.path.name) == [State.PROCESSING]
    held = spool.read(winners[0].path).state["owner"]
    assert held == winners[0].state["owner"]


# -- reading hostile files -----------------------------------------------------------


def _write_bytes(data: bytes) -> Any:
    def make(path: Path) -> None:
        path.write_bytes(data)

    return make


def _symlink(path: Path) -> None:
    target = path.parent.parent / "elsewhere.json"
    target.write_text(json.dumps({"envelope": envelope(), "state": state()}))
    path.symlink_to(target)


def _directory(path: Path) -> None:
    path.mkdir()


GOOD = json.dumps({"envelope": envelope(), "state": state()}).encode()

CORRUPT = {
    "invalid-json": _write_bytes(b'{"envelope": {'),
    "empty": _write_bytes(b""),
    "not-utf8": _write_bytes(b'{"envelope": "\xff\xfe"}'),
    "json-list": _write_bytes(b"[1, 2]"),
    "json-string": _write_bytes(b'"text"'),
    "no-envelope": _write_bytes(json.dumps({"state": {}}).encode()),
    "envelope-not-object": _write_bytes(json.dumps({"envelope": [], "state": {}}).encode()),
    "no-request-id": _write_bytes(json.dumps({"envelope": {}, "state": {}}).encode()),
    "request-id-not-str": _write_bytes(
        json.dumps({"envelope": {"requestId": 7}, "state": {}}).encode()
    ),
    "no-state": _write_bytes(json.dumps({"envelope": {"requestId": "r"}}).encode()),
    "deep-nesting": _write_bytes(b"[" * 100_000 + b"]" * 100_000),
    "symlink": _symlink,
    "directory": _directory,
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_read_refuses_corrupt_files(spool: Spool, kind: str) -> None:
    spool.ensure()
    path = spool.dir(State.PENDING) / f"20260101T000000000000Z-{kind}.json"
    CORRUPT[kind](path)
    with pytest.raises(CorruptFile) as caught:
        spool.read(path)
    assert str(path) in str(caught.value)


GOOD_ID = "0191aaaa-0001-7000-8000-000000000001"
BAD_IDS = {
    "traversal": "../../x",
    "empty": "",
    "uppercase": GOOD_ID.upper(),
    "no-hyphens": GOOD_ID.replace("-", ""),
    "braces": "{" + GOOD_ID + "}",
    "urn": "urn:uuid:" + GOOD_ID,
    "hyphens-moved": "0191aaaa0-001-7000-8000-000000000001",
    "not-hex": "0191aaag-0001-7000-8000-000000000001",
    "trailing-newline": GOOD_ID + "\n",
    "too-long": GOOD_ID + "0",
}


@pytest.mark.parametrize("kind", sorted(BAD_IDS))
def test_read_refuses_a_request_id_that_is_not_a_canonical_uuid(spool: Spool, kind: str) -> None:
    """The daemon puts the requestId in a header and the receiver keys on it: an id
    the hook never writes (it writes lowercase hyphenated UUIDv7s) means the file was
    made by something else, and is quarantined rather than sent."""
    spool.ensure()
    path = spool.dir(State.PENDING) / f"20260101T000000000000Z-{GOOD_ID}.json"
    body = {"envelope": {**envelope(), "requestId": BAD_IDS[kind]}, "state": state()}
    path.write_text(json.dumps(body))
    with pytest.raises(CorruptFile, match="not a lowercase hyphenated UUID") as caught:
        spool.read(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("request_id", [[GOOD_ID], None, 7, {"id": GOOD_ID}])
def test_read_refuses_a_request_id_that_is_not_a_string(spool: Spool, request_id: Any) -> None:
    spool.ensure()
    path = spool.dir(State.PENDING) / f"20260101T000000000000Z-{GOOD_ID}.json"
    body = {"envelope": {**envelope(), "requestId": request_id}, "state": state()}
    path.write_text(json.dumps(body))
    with pytest.raises(CorruptFile, match="requestId"):
        spool.read(path)


def test_read_refuses_a_file_named_for_another_request_id(spool: Spool) -> None:
    """A file's name carries its requestId (``queued show``, ``trace`` and ``find`` go
    by it): a body that says another one was not written here under that name."""
    spool.ensure()
    other = "0191aaaa-0002-7000-8000-000000000002"
    path = spool.dir(State.PENDING) / f"20260101T000000000000Z-{other}.json"
    path.write_text(json.dumps({"envelope": envelope(GOOD_ID), "state": state()}))
    with pytest.raises(CorruptFile, match=f"named for '{other}', holds {GOOD_ID}"):
        spool.read(path)
    good = spool.add(envelope(GOOD_ID), state(), State.PENDING)
    assert spool.read(good.path).request_id == GOOD_ID
    assert spool.read(str(good.path)).request_id == GOOD_ID


def test_read_of_a_symlink_does_not_follow_it(spool: Spool) -> None:
    spool.ensure()
    path = spool.dir(State.PENDING) / "link.json"
    _symlink(path)
    with pytest.raises(CorruptFile, match="not a regular file"):
        spool.read(path)


def test_read_refuses_a_fifo_without_blocking(spool: Spool) -> None:
    spool.ensure()
    path = spool.dir(State.PENDING) / "fifo.json"
    os.mkfifo(path)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            spool.read(path)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the reader so the process can go on, then fail
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
        pytest.fail("read() blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], CorruptFile)


def test_read_refuses_an_oversized_file(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    record = spool.add(envelope(), state(), State.PENDING)
    assert spool.read(record.path).request_id == record.request_id
    monkeypatch.setattr(spool_mod, "MAX_FILE_BYTES", 64)
    with pytest.raises(CorruptFile, match="over 64"):
        spool.read(record.path)


def test_read_takes_a_file_that_grew_since_its_size_was_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size read by lstat only sizes the first read: the whole file is read, up to
    MAX_FILE_BYTES + 1 bytes, and one past that is refused by read()."""
    data = os.urandom(300_000)
    path = tmp_path / "grown"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert spool_mod._read_fd(fd, 10) == data  # "10 bytes" when it was looked at
    finally:
        os.close(fd)
    monkeypatch.setattr(spool_mod, "MAX_FILE_BYTES", 100_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert spool_mod._read_fd(fd, 10) == data[:100_001]
    finally:
        os.close(fd)


def test_read_of_a_vanished_file_is_file_not_found(spool: Spool) -> None:
    spool.ensure()
    with pytest.raises(FileNotFoundError):
        spool.read(spool.dir(State.PENDING) / "gone.json")


def test_quarantine_moves_the_file_as_it_is(spool: Spool) -> None:
    spool.ensure()
    path = spool.dir(State.PENDING) / "20260101T000000000000Z-bad.json"
    path.write_bytes(b"\x00garbage")
    target = spool.quarantine(path)
    assert target == spool.dir(State.CORRUPT) / path.name
    assert target.read_bytes() == b"\x00garbage"
    assert not path.exists()


def test_records_yields_errors_for_bad_files_and_records_for_good(spool: Spool) -> None:
    good = [spool.add(envelope(), state(), State.PENDING) for _ in range(2)]
    bad = spool.dir(State.PENDING) / "00000000T000000000000Z-bad.json"
    bad.write_bytes(b"{nope")
    (spool.dir(State.PENDING) / "ignored.txt").write_text("not a spool file")

    items = list(spool.records(State.PENDING))
    assert len(items) == 3
    assert isinstance(items[0], CorruptFile) and str(bad) in str(items[0])
    assert [r.request_id for r in items[1:] if isinstance(r, Record)] == [
        g.request_id for g in good
    ]


# -- find ----------------------------------------------------------------------------


def test_find_by_full_id_and_prefix_in_any_state(spool: Spool) -> None:
    a_id, b_id = "01900000-0000-7000-8000-00000000000a", "01911111-0000-7000-8000-00000000000b"
    pending = spool.add(envelope(a_id), state(), State.PENDING)
    failed = spool.move(spool.add(envelope(b_id), state(), State.PENDING), State.FAILED)

    found = spool.find(a_id)
    assert found is not None and found.path == pending.path
    found = spool.find(b_id)
    assert found is not None and found.path == failed.path and found.where is State.FAILED
    found = spool.find("0191")
    assert found is not None and found.request_id == b_id


def test_find_unknown_or_empty_is_none(spool: Spool) -> None:
    spool.add(envelope(), state(), State.PENDING)
    assert spool.find("0190ffff-ffff-7fff-bfff-ffffffffffff") is None
    assert spool.find("") is None


def test_find_does_not_match_the_time_stamp_or_the_middle_of_an_id(spool: Spool) -> None:
    record = spool.add(envelope(), state(), State.PENDING)
    stamp = record.path.name.split("-", 1)[0]
    assert spool.find(stamp[:8]) is None  # the date, not a requestId
    assert spool.find(record.request_id[4:]) is None  # a suffix is not a prefix
    assert spool.find(".json") is None


def test_find_with_an_ambiguous_prefix_is_none(spool: Spool) -> None:
    a = spool.add(envelope("abc00000-0000-7000-8000-000000000001"), state(), State.PENDING)
    b = spool.add(envelope("abc00000-0000-7000-8000-000000000002"), state(), State.FAILED)
    assert spool.find("abc0") is None
    found_a, found_b = spool.find(a.request_id), spool.find(b.request_id[:35] + "2")
    assert found_a is not None and found_a.request_id == a.request_id
    assert found_b is not None and found_b.where is State.FAILED


def test_find_skips_corrupt_files(spool: Spool) -> None:
    spool.ensure()
    rid = "0190aaaa-0000-7000-8000-000000000000"
    (spool.dir(State.PENDING) / f"20260101T000000000000Z-{rid}.json").write_text("{")
    assert spool.find(rid) is None


# -- room ----------------------------------------------------------------------------


def test_check_room_refuses_past_max_spool_bytes(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    Spool(root).add(envelope(blob="x" * 2000), state(), State.PENDING)
    full = Spool(root, max_bytes=1000)
    (root / "usage.json").unlink(missing_ok=True)  # no cached figure from the first write
    with pytest.raises(SpoolFull) as caught:
        full.check_room()
    assert "max_spool_bytes" in str(caught.value)
    assert "1000" in str(caught.value)
    with pytest.raises(SpoolFull):
        full.add(envelope(), state(), State.PENDING)
    assert len(files(full, State.PENDING)) == 1


def test_adds_stop_once_the_limit_is_crossed(tmp_path: Path) -> None:
    """The cached usage counts what this spool just wrote: a burst cannot overshoot."""
    spool = Spool(tmp_path / "spool", max_bytes=5000)
    sizes: list[int] = []
    with pytest.raises(SpoolFull, match="max_spool_bytes"):
        for _ in range(20):
            sizes.append(
                spool.add(envelope(blob="y" * 1500), state(), State.PENDING).path.stat().st_size
            )
    assert sum(sizes[:-1]) < 5000 <= sum(sizes)  # the first add past the limit was the last
    assert len(files(spool, State.PENDING)) == len(sizes)


def test_usage_sums_every_state(spool: Spool) -> None:
    a = spool.add(envelope(), state(), State.PENDING)
    b = spool.add(envelope(), state(), State.PROCESSING)
    assert spool.usage() == a.path.stat().st_size + b.path.stat().st_size


def test_enospc_while_writing_is_spool_full_and_leaves_nothing(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool.ensure()

    def no_space(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "write", no_space)
        with pytest.raises(SpoolFull, match="no space"):
            spool.add(envelope(), state(), State.PENDING)
    assert files(spool, State.TMP) == []
    assert files(spool, State.PENDING) == []


def test_read_only_spool_is_a_spool_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the spool's parent should be")
    with pytest.raises(SpoolError):
        Spool(blocker / "spool").add(envelope(), state(), State.PENDING)


def test_growth_since_the_last_count_is_counted_then_folded_in(tmp_path: Path) -> None:
    """Each add appends its size to usage.log; the next full count replaces them all."""
    root = tmp_path / "spool"
    spool = Spool(root)
    a = spool.add(envelope(), state(), State.PENDING)
    b = spool.add(envelope(), state(), State.PENDING)
    sizes = [a.path.stat().st_size, b.path.stat().st_size]
    assert (root / "usage.log").read_text().split() == [str(sizes[0]), str(sizes[1])]
    cached = json.loads((root / "usage.json").read_text())
    assert cached["bytes"] == 0  # counted before the first file was written

    cached["at"] -= spool_mod.USAGE_TTL  # the count is stale: the next add recounts
    (root / "usage.json").write_text(json.dumps(cached))
    c = spool.add(envelope(), state(), State.PENDING)
    assert json.loads((root / "usage.json").read_text())["bytes"] == sum(sizes)
    assert (root / "usage.log").read_text().split() == [str(c.path.stat().st_size)]
    assert stat.S_IMODE((root / "usage.log").stat().st_mode) == 0o600
