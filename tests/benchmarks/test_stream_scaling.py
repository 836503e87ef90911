"""benchmarks/stream.py (several extractors) and benchmarks/stream_scaling.py: the plumbing only (never run here)."""

from __future__ import annotations

import queue
from typing import Any

import pytest

from benchmarks.stream import Progress, balanced, parse_args, warmup_plan
from benchmarks.stream_scaling import parse_args as scaling_args
from benchmarks.stream_scaling import table


def test_warmup_goes_to_every_partition() -> None:
    payloads, keys, parts = warmup_plan([b"a", b"b"], 3)
    assert parts == [0, 0, 1, 1, 2, 2]
    assert payloads == [b"a", b"b"] * 3
    assert len(set(keys)) == 6 and all(k.startswith("warmup-") for k in keys)


@pytest.mark.parametrize(("assigned", "consumers", "partitions", "ok"), [
    ({0: [0, 1, 2, 3]}, 1, 4, True),
    ({0: [0, 1], 1: [2, 3]}, 2, 4, True),
    ({0: [0, 1, 2, 3]}, 2, 4, False),  # the second member has not joined
    ({0: [0, 1, 2, 3], 1: []}, 2, 4, False),  # joined, not yet given a partition
    ({0: [0, 1], 1: [1, 2, 3]}, 2, 4, False),  # a partition owned twice (mid-rebalance)
    ({0: [0], 1: [1], 2: [2], 3: [3]}, 4, 4, True),
    ({0: [0], 1: []}, 2, 1, True),  # more members than partitions: one idles
])
def test_balanced(assigned: dict[int, list[int]], consumers: int, partitions: int, ok: bool) -> None:
    assert balanced(assigned, consumers, partitions) is ok


def test_progress_tracks_assignments_and_finished_keys() -> None:
    q: queue.Queue[Any] = queue.Queue()
    for item in [("assigned", 0, [0, 1, 2, 3], 1.0), ("assigned", 1, [2, 3], 2.0), ("assigned", 0, [0, 1], 2.1),
                 ("done", 0, "n1"), ("done", 1, "n2"), ("done", 0, "n2")]:
        q.put(item)
    progress = Progress(q)  # type: ignore[arg-type]
    progress.drain()
    assert progress.assigned == {0: [0, 1], 1: [2, 3]}
    assert progress.done == {"n1": [0], "n2": [1, 0]}  # a redelivered note is seen by both
    assert len(progress.assignment_log) == 3


def test_options() -> None:
    args = parse_args(["--partitions", "4", "--consumers", "2", "--session-timeout-ms", "10000"])
    assert (args.partitions, args.consumers, args.session_timeout_ms) == (4, 2, 10000)
    assert (parse_args([]).partitions, parse_args([]).consumers) == (1, 1)  # the single-extractor run as before
    s = scaling_args(["--notes", "20", "--consumers", "1", "2"])
    assert (s.notes, s.consumers, s.partitions, s.session_timeout_ms) == (20, [1, 2], 4, 10_000)
    assert scaling_args([]).consumers == [1, 2, 4]


def _run(consumers: int, nps: float) -> dict[str, Any]:
    lat = {"p50": 1.0, "p95": 2.0, "p99": 2.5, "max": 3.0}
    return {"consumers": consumers, "notes_per_s": nps, "windows_per_s": nps * 3,
            "latency_s": {"service": lat, "end_to_end": lat}, "peak_rss_mb": {"triton": 900.0},
            "rebalances_during_run": [],
            "extractors": [{"partitions_at_start": [i], "notes": 5, "peak_rss_mb": 1100.0}
                           for i in range(consumers)]}


def test_table() -> None:
    rows = table([_run(1, 5.0), _run(2, 6.0)]).splitlines()
    assert len(rows) == 4
    assert "| 2 | 0 / 1 | 6.00 | 1.20 |" in rows[3]
    assert "1,100 / 1,100" in rows[3]
