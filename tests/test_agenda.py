"""The daemon's agenda (queued.agenda.Agenda): a heap of (due, name), one live
entry per name."""

from __future__ import annotations

import threading

from queued.agenda import Agenda


def drain(agenda: Agenda, now: float = float("inf")) -> list[str]:
    return agenda.pop_due(now, 1_000_000)


def test_empty_agenda() -> None:
    agenda = Agenda()
    assert len(agenda) == 0
    assert agenda.next_due() is None
    assert agenda.pop_due(1e12, 10) == []


def test_orders_by_due_time_then_name() -> None:
    agenda = Agenda()
    agenda.add("c", 5.0)
    agenda.add("b", 1.0)
    agenda.add("a", 5.0)
    agenda.add("d", 3.0)
    agenda.add("0", 5.0)
    assert len(agenda) == 5
    assert agenda.next_due() == 1.0
    assert drain(agenda) == ["b", "d", "0", "a", "c"]
    assert len(agenda) == 0
    assert agenda.next_due() is None


def test_same_due_time_keeps_creation_order_of_spool_names() -> None:
    agenda = Agenda()
    names = [f"20261122T1000000000{i:02d}Z-{'f' * (8 - i % 8)}.json" for i in range(12)]
    for name in reversed(names):
        agenda.add(name, 100.0)
    assert drain(agenda, 100.0) == names


def test_a_second_add_replaces_the_due_time() -> None:
    agenda = Agenda()
    agenda.add("a", 10.0)
    agenda.add("b", 20.0)
    agenda.add("a", 30.0)  # later: a is no longer due at 10
    assert len(agenda) == 2
    assert agenda.next_due() == 20.0
    assert agenda.pop_due(25.0, 10) == ["b"]
    assert agenda.pop_due(29.9, 10) == []
    assert agenda.pop_due(30.0, 10) == ["a"]
    assert len(agenda) == 0

    agenda.add("a", 30.0)
    agenda.add("a", 5.0)  # earlier
    assert agenda.next_due() == 5.0
    assert agenda.pop_due(5.0, 10) == ["a"]
    assert agenda.next_due() is None  # the stale 30.0 entry is gone with it
    assert agenda.pop_due(1e9, 10) == []


def test_readding_the_same_time_is_one_entry() -> None:
    agenda = Agenda()
    for _ in range(5):
        agenda.add("a", 7.0)
    assert len(agenda) == 1
    assert agenda.pop_due(7.0, 10) == ["a"]
    assert agenda.pop_due(7.0, 10) == []


def test_back_and_forth_rescheduling_yields_the_name_once() -> None:
    agenda = Agenda()
    agenda.add("a", 1.0)
    agenda.add("a", 2.0)
    agenda.add("a", 1.0)  # the old (1.0, a) heap entry is live again, twice over
    assert len(agenda) == 1
    assert drain(agenda) == ["a"]
    assert agenda.next_due() is None


def test_a_rescheduled_name_leaves_a_stale_heap_entry_that_is_skipped() -> None:
    agenda = Agenda()
    agenda.add("a", 1.0)
    agenda.add("b", 2.0)
    agenda.add("a", 3.0)  # (1.0, a) is stale now
    assert len(agenda) == 2
    assert agenda.next_due() == 2.0
    assert drain(agenda) == ["b", "a"]


def test_pop_due_stops_at_the_limit_and_at_now() -> None:
    agenda = Agenda()
    for i in range(10):
        agenda.add(f"n{i}", float(i))
    assert agenda.pop_due(5.0, 3) == ["n0", "n1", "n2"]
    assert agenda.pop_due(5.0, 0) == []
    assert agenda.pop_due(5.0, 100) == ["n3", "n4", "n5"]  # n6 is not due at 5.0
    assert len(agenda) == 4
    assert agenda.next_due() == 6.0
    assert agenda.pop_due(6.0, 100) == ["n6"]  # n5 went out above, once


def test_pop_due_limit_does_not_count_stale_entries() -> None:
    agenda = Agenda()
    for i in range(5):
        agenda.add(f"n{i}", float(i))
    for i in range(3):
        agenda.add(f"n{i}", 100.0 + i)  # their first entries are stale now
    assert agenda.pop_due(10.0, 2) == ["n3", "n4"]


def test_next_due_skips_stale_entries() -> None:
    agenda = Agenda()
    agenda.add("a", 1.0)
    agenda.add("b", 2.0)
    agenda.add("c", 3.0)
    agenda.add("a", 10.0)  # stale (1.0, a)
    agenda.add("b", 20.0)  # stale (2.0, b)
    assert agenda.next_due() == 3.0
    assert agenda.next_due() == 3.0  # asking twice changes nothing
    assert len(agenda) == 3
    assert agenda.pop_due(3.0, 10) == ["c"]
    assert agenda.next_due() == 10.0
    assert agenda.pop_due(10.0, 10) == ["a"]
    assert agenda.next_due() == 20.0


def test_add_new_never_duplicates_or_replaces() -> None:
    agenda = Agenda()
    assert agenda.add_new("a", 50.0) is True
    assert agenda.add_new("a", 1.0) is False  # known: the earlier time is ignored
    assert agenda.add_new("a", 50.0) is False
    assert len(agenda) == 1
    assert agenda.next_due() == 50.0
    assert agenda.pop_due(49.0, 10) == []
    assert agenda.pop_due(50.0, 10) == ["a"]
    assert agenda.add_new("a", 1.0) is True  # popped: new again
    assert drain(agenda) == ["a"]


def test_add_replaces_a_name_added_with_add_new() -> None:
    agenda = Agenda()
    agenda.add_new("a", 0.0)
    agenda.add("a", 100.0)
    assert agenda.pop_due(99.0, 10) == []
    assert agenda.pop_due(100.0, 10) == ["a"]


def test_concurrent_adds_from_several_threads() -> None:
    agenda = Agenda()
    threads_n, per_thread = 8, 500
    start = threading.Barrier(threads_n)
    results: list[list[bool]] = [[] for _ in range(threads_n)]

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            agenda.add(f"t{t}-{i:04d}", float(i))
            # every thread also races for the same shared names
            results[t].append(agenda.add_new(f"shared-{i:04d}", float(i)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(agenda) == threads_n * per_thread + per_thread
    # each shared name was added by exactly one thread
    assert sum(sum(r) for r in results) == per_thread
    names = drain(agenda)
    assert len(names) == len(set(names)) == threads_n * per_thread + per_thread
    assert len(agenda) == 0


def test_concurrent_pops_hand_each_name_out_once() -> None:
    agenda = Agenda()
    for i in range(2000):
        agenda.add(f"n{i:05d}", float(i % 7))
    got: list[list[str]] = [[] for _ in range(6)]

    def work(t: int) -> None:
        while True:
            names = agenda.pop_due(10.0, 3)
            if not names:
                return
            got[t].extend(names)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    flat = [n for g in got for n in g]
    assert len(flat) == len(set(flat)) == 2000
