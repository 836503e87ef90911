"""Targeted check of the fault suite's open finding (docs/reliability.md, run 2): does the extractor's consumer stall
after a kill -9 of Tansu on ``s3://`` storage?

The real consuming side of the extractor (``ExtractorService``: FastStream subscriber, in-flight window, ordered
offset commits, dead-letter producer) around a stub processor (no Triton, no PostgreSQL: a short sleep; payloads
starting with ``bad`` are invalid and dead-lettered), Tansu on a local S3 server (moto), a 2-partition topic. Each
try publishes a wave, kills the broker with -9 while half of it is in flight, restarts it, publishes the next wave
and waits for every message to be stored or dead-lettered. When nothing moves for ``--stall-s`` seconds it prints
what is needed to tell the cases apart: the consumer's assignment, position, committed offset and the group's
state, the partitions' end offsets, and which outstanding messages a fresh group-less consumer can still read.

    PYTHONPATH=. .venv/bin/python benchmarks/faults/broker_stall.py --tries 5 --json stall.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from clinie.errors import ErrorCode, InvalidInputError
from services.extractor.app import ExtractorService
from services.extractor.metrics import ExtractorMetrics
from services.settings import ExtractorSettings
from services.stack.kafka import TansuBroker, acreate_topics
from services.stack.s3 import S3Server

BUCKET = "tansu"


def say(text: str) -> None:
    print(f"[stall] {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


class StubProcessor:
    """Stands in for NoteProcessor: records what it saw; ``bad...`` payloads are invalid input."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.stored: set[str] = set()
        self.lock = threading.Lock()

    def process(self, payload: bytes) -> None:
        time.sleep(self.delay_s)
        key = payload.decode(errors="replace")
        if key.startswith("bad"):
            raise InvalidInputError(ErrorCode.NOT_JSON, "stub: invalid")
        with self.lock:
            self.stored.add(key)


async def read_topic(bootstrap: str, topic: str, partitions: int) -> dict[int, list[str]]:
    """Every value of every partition, read by a group-less consumer up to the fetch answers' high watermarks (not
    ListOffsets' end offsets, which lag on Tansu's s3:// storage: see ``benchmarks/faults/run.py``, ``read_dlq``)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: dict[int, list[str]] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                out[tp.partition] += [r.value.decode(errors="replace") for r in records if r.value is not None]
            behind = [tp for tp in tps if consumer.highwater(tp) is None]
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) < highwater:
                    behind.append(tp)
            if not behind:
                break
        return out
    finally:
        await consumer.stop()


async def group_view(bootstrap: str, topic: str, group: str, partitions: int) -> dict[str, Any]:
    """ListOffsets' end offsets (they lag on Tansu's s3:// storage) and the group's committed offsets, from outside
    the consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        committed = {tp.partition: await consumer.committed(tp) for tp in tps}
        return {"end_offsets": {tp.partition: ends[tp] for tp in tps}, "committed": committed}
    finally:
        await consumer.stop()


def consumer_view(consumer: Any, topic: str, partitions: int) -> dict[str, Any]:
    """What the extractor's own aiokafka consumer believes (private fields read for diagnosis only)."""
    view: dict[str, Any] = {}
    try:
        assigned = consumer.assignment()
        view["assignment"] = sorted(tp.partition for tp in assigned)
        sub = consumer._subscription
        coord = consumer._coordinator
        view["coordinator_id"] = getattr(coord, "coordinator_id", None)
        view["member_id"] = getattr(coord, "member_id", None)
        view["generation"] = getattr(coord, "generation", None)
        view["need_rejoin"] = coord.need_rejoin(sub.subscription) if sub.subscription is not None else None
        positions: dict[int, Any] = {}
        for p in range(partitions):
            tp = TopicPartition(topic, p)
            state = None
            if sub.subscription is not None and sub.subscription.assignment is not None and tp in assigned:
                state = sub.subscription.assignment.state_value(tp)
            positions[p] = None if state is None else {
                "position": state.position if state.has_valid_position else None,
                "awaiting_reset": state.awaiting_reset, "paused": state.paused,
                "highwater": state.highwater}
        view["partitions"] = positions
        fetcher = consumer._fetcher
        view["fetch_task_done"] = fetcher._fetch_task.done() if getattr(fetcher, "_fetch_task", None) else None
        coord_task = getattr(coord, "_coordination_task", None)
        view["coordination_task_done"] = coord_task.done() if coord_task is not None else None
        hb = getattr(coord, "_heartbeat_task", None)
        view["heartbeat_task_done"] = hb.done() if hb is not None else None
    except Exception as exc:  # diagnosis only: report what could not be read
        view["error"] = repr(exc)
    return view


async def publish(bootstrap: str, topic: str, values: list[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for i, v in enumerate(values):
            await producer.send_and_wait(topic, v.encode(), key=str(i % 7).encode())
    finally:
        await producer.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="clinie-stall-"))
    s3 = S3Server(work / "s3")
    await asyncio.to_thread(s3.start, 300)
    s3.create_bucket(BUCKET)
    kafka = TansuBroker(work / "kafka", storage=S3Server.storage_url(BUCKET), storage_env=s3.env())
    await asyncio.to_thread(kafka.start, 120)
    bootstrap, topic = kafka.bootstrap_servers, "stall-notes"
    result: dict[str, Any] = {"tries": [], "work": str(work)}
    try:
        await acreate_topics(bootstrap, [topic], partitions=args.partitions)
        await acreate_topics(bootstrap, [f"{topic}.dlq"])
        settings = ExtractorSettings(
            kafka_bootstrap_servers=bootstrap, input_topic=topic, dead_letter_topic=f"{topic}.dlq",
            consumer_group="g-stall", kafka_session_timeout_ms=6000, kafka_heartbeat_interval_ms=1000,
            retry_max_s=5.0, max_in_flight=args.in_flight)
        stub = StubProcessor(args.delay)
        service = ExtractorService(settings, stub, ExtractorMetrics())  # type: ignore[arg-type]
        consumers: list[Any] = []
        handle = service.handle

        async def spy(msg: Any) -> None:
            consumer = getattr(msg, "consumer", None)
            if consumer is not None and (not consumers or consumers[-1] is not consumer):
                consumers.append(consumer)
            await handle(msg)

        service.handle = spy  # type: ignore[method-assign]
        fbroker = service.create_broker()
        await fbroker.start()
        expected = 0
        rng = random.Random(args.seed)
        for t in range(args.tries):
            wave = [("bad" if j % 5 == 4 else "ok") + f"-{t}-{j}" for j in range(args.wave)]
            before = service.processed + service.dead_lettered
            await publish(bootstrap, topic, wave)
            expected += len(wave)
            kill_at = before + max(1, int(len(wave) * rng.uniform(args.kill_from, args.kill_to)))
            while service.processed + service.dead_lettered < kill_at:
                await asyncio.sleep(0.05)
            at = service.processed + service.dead_lettered
            say(f"try {t}: kill -9 of the broker at {at}/{expected}")
            t_kill = time.monotonic()
            await asyncio.to_thread(kafka.kill9)
            await asyncio.sleep(args.down_s)
            await asyncio.to_thread(kafka.start, 120)
            say(f"try {t}: broker back after {time.monotonic() - t_kill:.1f}s")
            after = [f"after-{t}-{j}" for j in range(args.wave // 2)]
            await publish(bootstrap, topic, after)
            expected += len(after)
            last, last_change = -1, time.monotonic()
            stalled: dict[str, Any] | None = None
            while True:
                done = service.processed + service.dead_lettered
                if done != last:
                    last, last_change = done, time.monotonic()
                if done >= expected:
                    break
                if time.monotonic() - last_change > args.stall_s:
                    stalled = {"done": done, "expected": expected,
                               "in_flight_tasks": len(service._tasks),
                               "window_free": service._window._value,
                               "consumers_seen": len(consumers),
                               "consumer": consumer_view(consumers[-1], topic, args.partitions) if consumers else None,
                               "group": await group_view(bootstrap, topic, "g-stall", args.partitions)}
                    content = await read_topic(bootstrap, topic, args.partitions)
                    seen = stub.stored
                    missing = {p: [v for v in vs if v.startswith(("ok", "after")) and v not in seen]
                               for p, vs in content.items()}
                    stalled["readable_count"] = {p: len(vs) for p, vs in content.items()}
                    stalled["ok_not_stored_by_partition"] = {p: len(v) for p, v in missing.items()}
                    stalled["ok_not_stored_sample"] = {p: v[:5] for p, v in missing.items()}
                    say(f"try {t}: STALL {json.dumps(stalled, default=str)}")
                    break
                await asyncio.sleep(0.2)
            took = time.monotonic() - t_kill
            result["tries"].append({"try": t, "stalled": stalled is not None, "detail": stalled,
                                    "recovered_s": None if stalled else round(took, 1)})
            say(f"try {t}: {'STALLED' if stalled else f'all {expected} accounted for, {took:.1f}s after the kill'}")
            if stalled and not args.keep_going:
                break
            if stalled:  # let it try to recover before the next wave, for the record
                expected = service.processed + service.dead_lettered
        await service.shutdown(5)
        await fbroker.stop()
    finally:
        kafka.stop()
        s3.stop()
    result["stalls"] = sum(1 for t in result["tries"] if t["stalled"])
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tries", type=int, default=5, help="broker kills, one per wave")
    ap.add_argument("--wave", type=int, default=60, help="messages per wave (a fifth of them invalid)")
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--delay", type=float, default=0.05, help="stub processing time per message (s)")
    ap.add_argument("--kill-from", type=float, default=0.5, help="kill after this share of a wave (low end)")
    ap.add_argument("--kill-to", type=float, default=0.5, help="kill after this share of a wave (high end)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--down-s", type=float, default=1.0, help="time between the kill and the restart (s)")
    ap.add_argument("--stall-s", type=float, default=120.0, help="no progress this long counts as a stall (s)")
    ap.add_argument("--keep-going", action="store_true", help="continue after a stall")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("faststream").setLevel(logging.WARNING)
    result = asyncio.run(run(args))
    text = json.dumps(result, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
