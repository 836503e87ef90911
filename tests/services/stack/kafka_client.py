"""Small aiokafka helpers the broker and extractor tests share."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition


async def committed(bootstrap: str, topic: str, group: str, partition: int = 0) -> int | None:
    """The consumer group's committed offset on ``topic``'s partition (None when it has committed none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, partition))
    finally:
        await consumer.stop()
