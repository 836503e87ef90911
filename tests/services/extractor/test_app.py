"""The consumer's window, commit order, retries and clean stop, with a fake processor, message and broker (no Kafka).

The real-broker behaviour (redelivery, supersede, Triton outage, dead letters, a kill mid-batch) is in
test_integration.py.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition

from clinie.errors import ErrorCode, InvalidInputError, TransientError
from services.extractor.app import ExtractorService, OffsetTracker
from services.extractor.metrics import ExtractorMetrics
from services.settings import ExtractorSettings

TP = TopicPartition("notes", 0)


# --- OffsetTracker ---------------------------------------------------------------------------------------------


def test_commit_position_waits_for_the_lowest_unfinished_offset() -> None:
    t = OffsetTracker()
    for o in (10, 11, 12, 13):
        t.started(TP, o)
    t.finished(TP, 12)
    t.finished(TP, 11)
    assert t.to_commit() == {}, "10 is still in flight: nothing after it may be committed"
    t.finished(TP, 10)
    assert t.to_commit() == {TP: 13}
    t.committed({TP: 13})
    assert t.to_commit() == {}
    t.finished(TP, 13)
    assert t.to_commit() == {TP: 14}
    assert t.in_flight == 0


def test_partitions_are_independent() -> None:
    t, other = OffsetTracker(), TopicPartition("notes", 1)
    t.started(TP, 0)
    t.started(other, 5)
    t.finished(other, 5)
    assert t.to_commit() == {other: 6}
    t.committed({other: 6})
    assert t.to_commit() == {}


def test_an_abandoned_message_holds_the_position() -> None:
    t = OffsetTracker()
    for o in range(3):
        t.started(TP, o)
    t.finished(TP, 0)
    t.finished(TP, 2)  # 1 never finishes (stopped while retrying)
    assert t.to_commit() == {TP: 1}


def test_a_redelivered_offset_needs_both_copies_finished() -> None:
    t = OffsetTracker()
    t.started(TP, 0)
    t.started(TP, 0)  # the same offset again after a rebalance, first copy still in flight
    t.finished(TP, 0)
    assert t.to_commit() == {}
    t.finished(TP, 0)
    assert t.to_commit() == {TP: 1}


def test_a_revoked_partition_that_comes_back_never_commits_below_the_new_owner() -> None:
    t = OffsetTracker()
    old = t.started(TP, 3)  # still being processed when the partition is revoked
    t.forget([TP])  # another member takes the partition, finishes 3..9 and commits 10
    assert t.to_commit() == {} and t.in_flight == 0
    new = t.started(TP, 10)  # the partition comes back: it resumes at the group's committed offset
    t.finished(TP, 3, old)  # the old copy of 3 finishes late
    assert t.to_commit() == {}, "10 is in flight: nothing may be committed, least of all 3"
    t.finished(TP, 10, new)
    assert t.to_commit() == {TP: 11}


# --- ExtractorService with fakes -------------------------------------------------------------------------------


@dataclass
class FakeRecord:
    offset: int
    topic: str = "notes"
    partition: int = 0
    key: bytes = b"k"


@dataclass
class FakeConsumer:
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None


@dataclass
class FakeMessage:
    raw_message: FakeRecord
    consumer: FakeConsumer
    body: bytes = b"{}"


class FakeBroker:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.published: list[tuple[bytes, dict[str, str]]] = []
        self.attempts = 0

    async def publish(self, body: bytes, *, topic: str, key: Any, headers: dict[str, str]) -> None:
        self.attempts += 1
        if self.fail:
            raise ConnectionError("dead-letter topic unreachable")
        self.published.append((body, headers))


class Processor:
    """Runs ``behaviour(payload)`` in the worker thread; records the payloads it stored."""

    def __init__(self, behaviour: Any = None) -> None:
        self.behaviour = behaviour
        self.stored: list[bytes] = []
        self.lock = threading.Lock()

    def process(self, payload: bytes) -> None:
        if self.behaviour is not None:
            self.behaviour(payload)
        with self.lock:
            self.stored.append(payload)


def service(processor: Processor, broker: FakeBroker | None = None, **kw: Any) -> ExtractorService:
    settings = ExtractorSettings(**{"retry_initial_s": 0.01, "retry_max_s": 0.05, **kw})
    svc = ExtractorService(settings, processor, ExtractorMetrics())  # type: ignore[arg-type]
    svc.broker = broker or FakeBroker()  # type: ignore[assignment]
    return svc


async def handle(svc: ExtractorService, consumer: FakeConsumer, offset: int, body: bytes = b"{}") -> None:
    await svc.handle(FakeMessage(FakeRecord(offset), consumer, body))  # type: ignore[arg-type]


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def test_notes_run_concurrently_and_commit_in_order() -> None:
    gates = {i: threading.Event() for i in range(6)}
    proc = Processor(lambda payload: gates[int(payload)].wait(10))
    svc, consumer = service(proc, max_in_flight=4), FakeConsumer()
    for i in range(4):
        await handle(svc, consumer, i, str(i).encode())
    assert svc.tracker.in_flight == 4
    fifth = asyncio.create_task(handle(svc, consumer, 4, b"4"))
    await asyncio.sleep(0.1)
    assert not fifth.done(), "the window is full: the fifth message waits for a slot"
    gates[2].set()
    gates[3].set()
    await until(lambda: fifth.done())
    await until(lambda: len(proc.stored) == 2)
    assert consumer.commits == [], "offsets 0 and 1 are in flight: nothing may be committed yet"
    gates[0].set()
    await until(lambda: consumer.commits and consumer.commits[-1] == {TP: 1})
    gates[1].set()
    await until(lambda: consumer.commits[-1] == {TP: 4})
    gates[4].set()
    await until(lambda: consumer.commits[-1] == {TP: 5})
    positions = [c[TP] for c in consumer.commits]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    await svc.shutdown()
    assert svc.processed == 5


async def test_shutdown_ends_the_transient_retry_loop_and_commits_nothing_past_it() -> None:
    def down(payload: bytes) -> None:
        if payload == b"1":
            raise TransientError(ErrorCode.BACKEND_UNAVAILABLE, "Triton down")

    proc = Processor(down)
    svc, consumer = service(proc, retry_initial_s=5.0, retry_max_s=60.0), FakeConsumer()
    for i in range(3):
        await handle(svc, consumer, i, str(i).encode())
    await until(lambda: len(proc.stored) == 2)
    await until(lambda: consumer.commits and consumer.commits[-1] == {TP: 1})
    await asyncio.wait_for(svc.shutdown(), 5)  # the 5 s backoff wait ends at once
    assert consumer.commits[-1] == {TP: 1}, "offset 1 was never stored: 1 and 2 stay uncommitted"
    assert svc.processed == 2 and svc.dead_lettered == 0
    await handle(svc, consumer, 3)  # after the stop nothing is taken
    assert svc.tracker.in_flight == 1


async def test_shutdown_ends_the_dead_letter_retry_loop() -> None:
    def bad(payload: bytes) -> None:
        raise InvalidInputError(ErrorCode.NOT_JSON, "not json")

    broker = FakeBroker(fail=True)
    svc, consumer = service(Processor(bad), broker), FakeConsumer()
    await handle(svc, consumer, 0)
    await until(lambda: broker.attempts >= 3)
    await asyncio.wait_for(svc.shutdown(), 5)
    assert svc.dead_lettered == 0 and consumer.commits == []


async def test_dead_letter_publish_is_retried_until_written() -> None:
    def bad(payload: bytes) -> None:
        raise InvalidInputError(ErrorCode.NOT_JSON, "not json")

    broker = FakeBroker(fail=True)
    svc, consumer = service(Processor(bad), broker), FakeConsumer()
    await handle(svc, consumer, 0, b"oops")
    await until(lambda: broker.attempts >= 3)
    broker.fail = False
    await until(lambda: svc.dead_lettered == 1)
    await until(lambda: consumer.commits == [{TP: 1}])
    [(body, headers)] = broker.published
    assert body == b"oops" and headers["clinie-error-reason"] == "not_json"
    await svc.shutdown()


async def test_failed_requests_are_bounded_then_dead_lettered() -> None:
    def slow(payload: bytes) -> None:
        raise TransientError(ErrorCode.BACKEND_REQUEST_FAILED, "timed out")

    broker = FakeBroker()
    svc, consumer = service(Processor(slow), broker, max_inference_attempts=3), FakeConsumer()
    await handle(svc, consumer, 0)
    await until(lambda: svc.dead_lettered == 1)
    assert broker.published[0][1]["clinie-error-reason"] == "note_timed_out"
    assert svc.metrics.registry.get_sample_value("clinie_retries_total", {"reason": "backend_request_failed"}) == 2
    await svc.shutdown()


async def test_an_unexpected_error_is_dead_lettered_as_e009() -> None:
    def bug(payload: bytes) -> None:
        raise KeyError("boom")

    broker = FakeBroker()
    svc, consumer = service(Processor(bug), broker), FakeConsumer()
    await handle(svc, consumer, 0)
    await until(lambda: svc.dead_lettered == 1)
    assert broker.published[0][1]["clinie-error-code"] == "E009"
    await svc.shutdown()


@pytest.mark.parametrize("max_in_flight", [0, 257])
def test_max_in_flight_is_bounded(max_in_flight: int) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        ExtractorSettings(max_in_flight=max_in_flight)
