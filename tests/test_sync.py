"""Transcript sync (hookclient.sync): what a session's files gained reaches the spool once,
in Transcript envelopes, whatever the CLI does to the files (CLAUDE-CODE.md
"Transcripts": appends in pieces, rewrites, truncates, moves, torn lines), and the
checkpoint moves only after the spool write."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hookclient.checkpoints import Checkpoints, key_of
from hookclient.config import Config, load_config
from hookclient.logs import LogWriter, structlog_logger
from hookclient.spool import Spool
from hookclient.sync import Counts, Syncer, TranscriptFile, session_files
from tests.test_conversations import LARGE, RICH, SUBAGENT

SESSION = "5e55a0d1-0000-4000-8000-000000000001"


def config(
    tmp_path: Path, patterns: tuple[str, ...] = ("sk-[a-z0-9]{6,}",), **transcripts: Any
) -> Config:
    path = tmp_path / "hookclient.toml"
    lines = [
        "[endpoint]",
        'url = "http://127.0.0.1:9/hooks"',
        "[queue]",
        f'dir = "{tmp_path / "spool"}"',
        "[logs]",
        f'dir = "{tmp_path / "logs"}"',
        "[delivery]",
        f"redact_patterns = {json.dumps(list(patterns))}",
        "[transcripts]",
        f'projects_dir = "{tmp_path / "projects"}"',
        *(f"{k} = {json.dumps(v)}" for k, v in transcripts.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return load_config([path], environ={})


def syncer(cfg: Config) -> Syncer:
    writer = LogWriter(Path(cfg.logs.dir), component="daemon", level="debug")
    spool = Spool(cfg.queue.dir, max_bytes=cfg.queue.max_spool_bytes)
    return Syncer(cfg, spool, structlog_logger(writer))


def spooled(cfg: Config) -> list[dict[str, Any]]:
    """The Transcript envelopes in pending/, oldest first."""
    pending = Path(cfg.queue.dir) / "pending"
    files = sorted(pending.glob("*.json")) if pending.exists() else []
    envelopes = [json.loads(p.read_text())["envelope"] for p in files]
    return [e for e in envelopes if e["event"] == "Transcript"]


def shipped(cfg: Config) -> list[dict[str, Any]]:
    return [r for e in spooled(cfg) for r in e["payload"]["records"]]


def line(n: int, **extra: Any) -> bytes:
    record = {"type": "user", "uuid": f"u-{n}", "sessionId": SESSION, "n": n, **extra}
    return (json.dumps(record) + "\n").encode()


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    folder = tmp_path / "projects" / "-home-me-proj"
    folder.mkdir(parents=True)
    return folder / f"{SESSION}.jsonl"


def sync(cfg: Config, path: Path, **kw: Any) -> Counts:
    return syncer(cfg).session(str(path), SESSION, **kw)


def numbers(cfg: Config) -> list[int]:
    return [r["n"] for r in shipped(cfg)]


def test_complete_lines_are_shipped_once_and_a_line_without_its_newline_waits(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path)
    piece = line(3)
    transcript.write_bytes(line(1) + line(2) + piece[:10])
    first = sync(cfg, transcript)
    assert (first.records, first.envelopes) == (2, 1)
    assert numbers(cfg) == [1, 2]
    assert sync(cfg, transcript).records == 0  # nothing new: nothing spooled
    with transcript.open("ab") as fh:
        fh.write(piece[10:] + line(4))
    assert sync(cfg, transcript).records == 2
    assert numbers(cfg) == [1, 2, 3, 4]
    envelope = spooled(cfg)[-1]
    payload = envelope["payload"]
    assert envelope["event"] == "Transcript" and envelope["sessionId"] == SESSION
    assert (payload["offset"], payload["endOffset"]) == (
        len(line(1) + line(2)),
        transcript.stat().st_size,
    )
    info = transcript.stat()
    assert payload["fileId"] == f"{info.st_dev}:{info.st_ino}" and payload["agentId"] is None


def test_an_empty_read_advances_nothing(tmp_path: Path, transcript: Path) -> None:
    cfg = config(tmp_path)
    transcript.write_bytes(b'{"type": "user", "uuid": "torn')  # the CLI is mid-write
    assert sync(cfg, transcript).envelopes == 0
    assert Checkpoints(cfg.queue.dir).load(key_of(SESSION, None)) is None
    assert spooled(cfg) == []


def test_batches_hold_at_most_batch_records_and_batch_bytes(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path, batch_records=3, batch_bytes=4096)
    big = "x" * 2500
    transcript.write_bytes(b"".join(line(i, text=big if i >= 7 else "") for i in range(10)))
    counts = sync(cfg, transcript)
    sizes = [len(e["payload"]["records"]) for e in spooled(cfg)]
    assert sizes == [3, 3, 2, 1, 1] and counts.envelopes == 5  # 3 records, then ~4 KiB
    assert numbers(cfg) == list(range(10))
    ends = [(e["payload"]["offset"], e["payload"]["endOffset"]) for e in spooled(cfg)]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ends))  # contiguous


def test_records_are_redacted_cut_to_their_ids_or_kept_as_invalid(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path, max_record_bytes=4096)
    huge = {
        "type": "assistant", "uuid": "u-big", "parentUuid": "u-1", "sessionId": SESSION,
        "timestamp": "2026-12-02T10:00:00Z",
        "message": {"id": "msg_1", "role": "assistant", "content": "y" * 10_000},
    }  # fmt: skip
    transcript.write_bytes(
        line(1, api_key="hunter2", text="run with sk-abcdef123 please")
        + (json.dumps(huge) + "\n").encode()
        + b"this is not json\n"
        + b"[1, 2]\n"
        + b"\n"
    )
    sync(cfg, transcript)
    first, cut, text, array = shipped(cfg)
    assert first["api_key"] == "[REDACTED]" and first["text"] == "run with [REDACTED] please"
    assert cut == {
        "type": "assistant", "uuid": "u-big", "parentUuid": "u-1", "sessionId": SESSION,
        "timestamp": "2026-12-02T10:00:00Z", "message": {"id": "msg_1", "role": "assistant"},
        "truncated": True, "bytes": len(json.dumps(huge)) + 1,
    }  # fmt: skip
    assert text["type"] == "hookclient.invalid" and text["raw"] == "this is not json"
    assert text["error"].startswith("not JSON: ")
    assert array == {
        "type": "hookclient.invalid",
        "error": "a JSON list, not an object",
        "raw": "[1, 2]",
    }


def test_a_truncated_and_rewritten_tail_is_read_again_from_the_start(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path)
    transcript.write_bytes(line(1) + line(2) + line(3))
    sync(cfg, transcript)
    with transcript.open("r+b") as fh:  # the CLI drops line 3: truncate, write a new tail
        fh.truncate(len(line(1) + line(2)))
        fh.seek(0, os.SEEK_END)
        fh.write(line(9))
    assert transcript.stat().st_size == len(line(1) + line(2) + line(3))  # same size
    sync(cfg, transcript)
    assert numbers(cfg) == [1, 2, 3, 1, 2, 9]  # again from 0: the store keeps each once
    logged = [json.loads(x) for x in (Path(cfg.logs.dir) / "queue.log").read_text().splitlines()]
    assert any(r["msg"] == "transcript changed, read again from the start" and
               r["reason"] == "rewritten" for r in logged)  # fmt: skip


def test_a_shorter_file_or_a_replaced_one_is_read_again_from_the_start(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path)
    transcript.write_bytes(line(1) + line(2))
    sync(cfg, transcript)
    transcript.write_bytes(line(5))  # shrank
    sync(cfg, transcript)
    replacement = transcript.with_suffix(".new")
    replacement.write_bytes(line(5) + line(6))
    os.replace(replacement, transcript)  # rewritten whole: another inode
    sync(cfg, transcript)
    assert numbers(cfg) == [1, 2, 5, 5, 6]


def test_a_transcript_moved_to_another_project_is_found_by_its_session(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path)
    transcript.write_bytes(line(1) + line(2))
    sync(cfg, transcript)
    moved = tmp_path / "projects" / "-home-me-elsewhere" / transcript.name
    moved.parent.mkdir()
    os.rename(transcript, moved)  # the CLI relocates it on a cwd change, and says so
    with moved.open("ab") as fh:
        fh.write((json.dumps({"type": "relocated", "sessionId": SESSION}) + "\n").encode())
    sync(cfg, transcript)  # the daemon still knows the old path
    assert [r.get("n", r["type"]) for r in shipped(cfg)] == [1, 2, "relocated"]
    assert spooled(cfg)[-1]["payload"]["transcriptPath"] == str(moved)


def test_a_torn_last_line_is_kept_whole_once_the_file_goes_on(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path)
    transcript.write_bytes(line(1) + b'{"type": "assistant", "uu')  # a crash mid-line
    sync(cfg, transcript)
    with transcript.open("ab") as fh:  # --resume appends after the fragment
        fh.write(line(2))
    sync(cfg, transcript)
    records = shipped(cfg)
    assert records[0]["n"] == 1 and records[1]["type"] == "hookclient.invalid"
    assert records[1]["raw"] == '{"type": "assistant", "uu' + line(2).decode().rstrip("\n")


def test_a_deleted_transcript_is_skipped_quietly(tmp_path: Path, transcript: Path) -> None:
    cfg = config(tmp_path)
    counts = sync(cfg, transcript)  # SessionStart: the CLI has not written it yet
    assert (counts.skipped, counts.errors, counts.envelopes) == (1, 0, 0)


def test_force_reads_everything_again_and_dry_run_writes_nothing(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path)
    transcript.write_bytes(line(1) + line(2))
    dry = sync(cfg, transcript, dry_run=True)
    assert (dry.records, dry.envelopes) == (2, 1) and spooled(cfg) == []
    assert Checkpoints(cfg.queue.dir).load(key_of(SESSION, None)) is None
    sync(cfg, transcript)
    assert sync(cfg, transcript).records == 0
    assert sync(cfg, transcript, force=True).records == 2
    assert numbers(cfg) == [1, 2, 1, 2]


def test_a_session_brings_its_subagents_and_its_tool_result_files(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    project = tmp_path / "projects" / "p"
    shutil.copytree(SUBAGENT.parent, project)
    shutil.copytree(LARGE.parent, project, dirs_exist_ok=True)
    main = project / SUBAGENT.name
    files = session_files(str(main), SUBAGENT.stem)
    assert [f.agent_id for f in files] == [None, "aa7a471765535adfa"]
    counts = syncer(cfg).session(str(main), SUBAGENT.stem)
    lines = len(SUBAGENT.read_text().splitlines())
    agent_lines = len(Path(files[1].path).read_text().splitlines())
    assert counts.records == lines + agent_lines
    agents = {e["payload"]["agentId"] for e in spooled(cfg)}
    assert agents == {None, "aa7a471765535adfa"}
    large = project / LARGE.name
    syncer(cfg).session(str(large), LARGE.stem)
    [result] = [r for r in shipped(cfg) if r["type"] == "hookclient.tool-result"]
    full = (LARGE.parent / LARGE.stem / "tool-results" / "bpfz5n2lv.txt").read_text()
    assert (result["file"], result["text"], result["bytes"]) == ("bpfz5n2lv.txt", full, len(full))
    assert syncer(cfg).session(str(large), LARGE.stem).records == 0  # shipped once


def test_a_real_transcript_arrives_whole_in_order(tmp_path: Path) -> None:
    cfg = config(tmp_path, patterns=(), batch_records=4)
    project = tmp_path / "projects" / "p"
    project.mkdir(parents=True)
    shutil.copy(RICH, project)
    syncer(cfg).session(str(project / RICH.name), RICH.stem)
    expected = [json.loads(x) for x in RICH.read_text().splitlines()]
    assert shipped(cfg) == expected


def test_two_writers_at_once_ship_every_line_once_and_never_move_back(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path, batch_records=7)
    transcript.write_bytes(b"")
    stop = threading.Event()
    offsets: list[int] = []
    checkpoints = Checkpoints(cfg.queue.dir)

    def writer() -> None:
        with transcript.open("ab") as fh:
            for n in range(400):
                fh.write(line(n))
                fh.flush()

    def reader(make: Callable[[], Syncer]) -> None:
        while not stop.is_set():
            make().file(TranscriptFile(str(transcript), SESSION))
            with checkpoints.lock(key_of(SESSION, None)):  # as it was between two syncs
                saved = checkpoints.load(key_of(SESSION, None))
                if saved is not None:
                    offsets.append(saved.offset)

    threads = [threading.Thread(target=reader, args=(lambda: syncer(cfg),)) for _ in range(2)]
    for t in threads:
        t.start()
    writer()
    stop.set()
    for t in threads:
        t.join()
    sync(cfg, transcript)
    assert [r for r in shipped(cfg) if "n" not in r] == []
    assert numbers(cfg) == list(range(400))  # each line once, in order
    assert offsets == sorted(offsets)


def test_a_fifo_named_as_the_transcript_is_refused_at_once(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path)
    os.mkfifo(transcript)  # nobody ever writes to it: an open() for reading would block
    done = threading.Thread(target=lambda: sync(cfg, transcript), daemon=True)
    done.start()
    done.join(timeout=30)
    assert not done.is_alive()
    [warning] = [json.loads(x) for x in (Path(cfg.logs.dir) / "error.log").read_text().splitlines()]
    assert warning["msg"] == "transcript unreadable" and "not a regular file" in warning["error"]


def test_queued_status_lists_the_files_followed_and_how_far_behind(
    tmp_path: Path, transcript: Path
) -> None:
    from queued.admin import format_status, status

    cfg = config(tmp_path)
    transcript.write_bytes(line(1))
    sync(cfg, transcript)
    with transcript.open("ab") as fh:
        fh.write(line(2))
    info = status(cfg)
    [followed] = info["transcripts"]
    assert (followed["path"], followed["offset"]) == (str(transcript), len(line(1)))
    assert followed["behind"] == len(line(2)) and followed["sessionId"] == SESSION
    text = format_status(info).splitlines()
    assert f"transcripts 1 with checkpoints, 1 behind by {len(line(2))} bytes" in text
    assert any(row.endswith(f"bytes behind  {transcript}") for row in text)


def test_tool_results_go_in_batches_and_each_is_marked_once_its_envelope_is_spooled(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path, batch_bytes=8192)
    transcript.write_bytes(line(1))
    results = transcript.parent / SESSION / "tool-results"
    results.mkdir(parents=True)
    for n in range(5):
        (results / f"r{n}.txt").write_text(str(n) * 3000)
    sync(cfg, transcript)
    envelopes = [e for e in spooled(cfg) if e["payload"]["records"][0]["type"] != "user"]
    sizes = [sum(r["bytes"] for r in e["payload"]["records"]) for e in envelopes]
    assert sizes == [6000, 6000, 3000]  # at most batch_bytes each
    saved = Checkpoints(cfg.queue.dir).load(key_of(SESSION, None))
    assert saved is not None and saved.tool_results == {f"r{n}.txt": 3000 for n in range(5)}
    assert sync(cfg, transcript).records == 0


def test_transcripts_stop_at_half_the_spool_and_leave_the_rest_to_the_hooks(
    tmp_path: Path, transcript: Path
) -> None:
    from hookclient.spool import State, new_state

    cfg = config(tmp_path, batch_records=20)
    path = tmp_path / "hookclient.toml"
    path.write_text(path.read_text().replace("[queue]\n", "[queue]\nmax_spool_bytes = 60000\n"))
    cfg = load_config([path], environ={})
    transcript.write_bytes(b"".join(line(n, text="y" * 400) for n in range(300)))  # 150 KB
    pending = Path(cfg.queue.dir) / "pending"
    got: list[int] = []
    for _ in range(50):
        counts = sync(cfg, transcript)
        spool = Spool(cfg.queue.dir, max_bytes=cfg.queue.max_spool_bytes)
        assert spool.usage() <= 30000 + 20 * 600  # its share, and at most one batch more
        spool.add(
            {
                "requestId": "0193a5f0-0000-7000-8000-00000000000" + str(len(got) % 10),
                "event": "Stop",
            },
            new_state(0, due=0),
            State.PENDING,
        )  # hooks still fit
        got += numbers(cfg)
        for file in pending.glob("*.json"):  # the daemon delivered it all
            file.unlink()
        if not counts.deferred:
            break
    assert got == list(range(300))  # every line once, in order, over the rounds


def test_an_unreadable_tool_result_skips_that_file_and_nothing_else(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path)
    transcript.write_bytes(line(1))
    folder = transcript.parent / SESSION
    (folder / "tool-results").mkdir(parents=True)
    os.mkfifo(folder / "tool-results" / "a-fifo.txt")  # opening it to read would block
    (folder / "tool-results" / "b-gone.txt").symlink_to(tmp_path / "nowhere")
    (folder / "tool-results" / "c-good.txt").write_text("full output")
    (folder / "subagents").mkdir()
    (folder / "subagents" / "agent-a1.jsonl").write_bytes(line(7))
    done: list[Counts] = []
    reader = threading.Thread(target=lambda: done.append(sync(cfg, transcript)), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert done, "the sync blocked"
    records = shipped(cfg)
    assert [r.get("n", r.get("file")) for r in records] == [1, "c-good.txt", 7]
    assert done[0].errors == 2


def test_a_line_longer_than_max_record_bytes_is_cut_to_its_ids_in_bounded_memory(
    tmp_path: Path, transcript: Path
) -> None:
    cfg = config(tmp_path, max_record_bytes=4096)
    huge = (
        '{"parentUuid":"p-1","isSidechain":false,"sessionId":"' + SESSION + '","type":"user",'
        '"message":{"role":"user","content":"' + "z" * 3_000_000 + '"},'
        '"uuid":"u-huge","timestamp":"2026-12-02T10:00:00Z"}\n'
    ).encode()
    transcript.write_bytes(huge + line(2))
    sync(cfg, transcript)
    cut, after = shipped(cfg)
    assert cut == {
        "type": "user", "uuid": "u-huge", "parentUuid": "p-1", "sessionId": SESSION,
        "timestamp": "2026-12-02T10:00:00Z", "isSidechain": False,
        "message": {"role": "user"}, "truncated": True, "bytes": len(huge),
    }  # fmt: skip
    assert after["n"] == 2


def test_each_batch_carries_the_hash_of_the_bytes_it_read(tmp_path: Path, transcript: Path) -> None:
    import hashlib

    from hookclient.transcript import TAIL_BYTES, Limits, batches

    data = b"".join(line(n, text="w" * (n * 37 % 900)) for n in range(200))
    transcript.write_bytes(data)
    with transcript.open("rb") as fh:
        found = list(batches(fh, 0, Limits(batch_records=7)))
    assert len(found) == 29
    for batch in found:
        start = max(0, batch.end_offset - TAIL_BYTES)
        assert batch.tail == hashlib.sha256(data[start : batch.end_offset]).hexdigest()


def test_queued_status_tells_a_deleted_transcript_from_one_not_written_yet(
    tmp_path: Path, transcript: Path
) -> None:
    from queued.admin import format_status, status

    cfg = config(tmp_path)
    transcript.write_bytes(line(1))
    sync(cfg, transcript)
    transcript.unlink()  # cleanupPeriodDays, say
    syncer(cfg).remember(str(transcript.parent / "later.jsonl"), "later")  # SessionStart
    [summary] = [x for x in format_status(status(cfg)).splitlines() if x.startswith("transcripts")]
    assert summary == (
        "transcripts 2 with checkpoints, 0 behind, 1 deleted since they were shipped "
        "(cleanupPeriodDays), 1 named by an event but not written (yet)"
    )
