"""FastStream consumer: DocumentReference messages -> NoteProcessor, with an explicit ack/nack policy.

Delivery: at-least-once. A message's offset is committed (``ack``) only after its resources are committed in
PostgreSQL, or after it was written to the dead-letter topic. Transient failures are retried in place with
exponential backoff; the partition waits (nothing after the failing message is committed). Writes are idempotent,
so a redelivery after a crash changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from clinie.errors import ClinieError, ErrorCode, InvalidInputError, TransientError
from clinie.settings import ExtractorSettings
from services.extractor.kafka_security import faststream_security
from services.extractor.metrics import ExtractorMetrics
from services.extractor.processor import NoteProcessor

log = logging.getLogger(__name__)

DLQ_HEADERS = ("clinie-error-code", "clinie-error-reason", "clinie-error-message", "clinie-source-topic",
               "clinie-source-partition", "clinie-source-offset", "clinie-failed-at")


class ExtractorService:
    """Owns the retry/dead-letter policy around a :class:`NoteProcessor`."""

    def __init__(self, settings: ExtractorSettings, processor: NoteProcessor, metrics: ExtractorMetrics) -> None:
        self.settings = settings
        self.processor = processor
        self.metrics = metrics
        self.stopping = asyncio.Event()
        self.processed = 0
        self.dead_lettered = 0
        self.broker: KafkaBroker | None = None

    def router(self) -> KafkaRouter:
        router = KafkaRouter()
        s = self.settings

        @router.subscriber(
            s.input_topic,
            group_id=s.consumer_group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            max_poll_interval_ms=30 * 60 * 1000,  # a note may wait long for Triton/PostgreSQL to come back
            session_timeout_ms=s.kafka_session_timeout_ms,
            heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
        )
        async def on_document_reference(msg: KafkaMessage) -> None:
            await self.handle(msg)

        return router

    def create_broker(self) -> KafkaBroker:
        s = self.settings
        security, extra = faststream_security(s)
        broker = KafkaBroker(s.kafka_bootstrap_servers, security=security, enable_idempotence=False,
                             logger=logging.getLogger("faststream"), **extra)
        broker.include_router(self.router())
        self.broker = broker
        return broker

    async def handle(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        ids = {"topic": record.topic, "partition": record.partition, "offset": record.offset}  # type: ignore[union-attr]
        payload: bytes = msg.body
        delay = self.settings.retry_initial_s
        while True:
            try:
                started = time.perf_counter()
                await asyncio.to_thread(self.processor.process, payload)
                await msg.ack()
                self.processed += 1
                self.metrics.notes.labels("stored").inc()
                self.metrics.latency.labels("total").observe(time.perf_counter() - started)
                self._update_lag(msg)
                return
            except InvalidInputError as err:
                await self._dead_letter(msg, payload, err, ids)
                return
            except TransientError as err:
                self.metrics.failures.labels(err.reason, "transient").inc()
                self.metrics.retries.labels(err.reason).inc()
                log.warning("transient failure, will retry", extra={**ids, "code": err.code.value,
                                                                    "reason": err.reason, "retry_in_s": delay})
            except Exception as exc:  # an unexpected bug for this input: dead-letter it rather than block forever
                log.exception("unexpected error", extra={**ids, "error_type": type(exc).__name__})
                unexpected = InvalidInputError(ErrorCode.UNEXPECTED, f"unexpected {type(exc).__name__}")
                await self._dead_letter(msg, payload, unexpected, ids)
                return
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            await msg.nack()  # shutting down: leave the offset uncommitted for the next consumer
            return

    async def _dead_letter(self, msg: KafkaMessage, payload: bytes, err: ClinieError, ids: dict[str, object]) -> None:
        assert self.broker is not None
        headers = dict(zip(DLQ_HEADERS, (err.code.value, err.reason, err.message[:500], str(ids["topic"]),
                                          str(ids["partition"]), str(ids["offset"]),
                                          datetime.now(UTC).isoformat()), strict=True))
        delay = self.settings.retry_initial_s
        while True:
            try:
                await self.broker.publish(payload, topic=self.settings.dead_letter_topic,
                                          key=msg.raw_message.key, headers=headers)  # type: ignore[union-attr]
                break
            except Exception as exc:  # the DLQ must not lose the message either: retry until it is written
                log.warning("dead-letter publish failed, retrying", extra={**ids, "error_type": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)
        await msg.ack()
        self.dead_lettered += 1
        self.metrics.notes.labels("dead_lettered").inc()
        self.metrics.failures.labels(err.reason, "permanent").inc()
        log.info("dead-lettered", extra={**ids, "code": err.code.value, "reason": err.reason})

    def _update_lag(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        consumer = getattr(msg, "consumer", None)
        if consumer is None:
            return
        try:
            high = consumer.highwater(TopicPartition(record.topic, record.partition))  # type: ignore[union-attr]
        except Exception:
            return
        if high is not None:
            lag = max(0, high - record.offset - 1)  # type: ignore[union-attr]
            self.metrics.lag.labels(record.topic, str(record.partition)).set(lag)  # type: ignore[union-attr]
