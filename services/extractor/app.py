"""FastStream consumer: DocumentReference messages -> NoteProcessor, with an explicit ack/nack policy.

Delivery: at-least-once. A message's offset is committed (``ack``) only after its resources are committed in
PostgreSQL, or after it was written to the dead-letter topic. Transient failures are retried in place with
exponential backoff; the partition waits (nothing after the failing message is committed). Writes are idempotent,
so a redelivery after a crash changes nothing.

Every message reaches ``handle``: the subscriber takes the raw bytes (no content-type driven decoding, which raised
before the handler ran on a JSON-declared non-JSON body, a non-UTF-8 text body or 100,000 nested arrays, and the
next ack then committed past the lost message), and header values that are not UTF-8 are replaced before FastStream
reads them. Dead-letter headers hold codes and fixed text only, never strings taken from the payload.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy

from clinie.errors import ClinieError, ErrorCode, InvalidInputError, TransientError
from services.extractor.kafka_security import faststream_security
from services.extractor.metrics import ExtractorMetrics
from services.extractor.processor import NoteProcessor
from services.settings import ExtractorSettings

log = logging.getLogger(__name__)

DLQ_HEADERS = ("clinie-error-code", "clinie-error-reason", "clinie-error-message", "clinie-source-topic",
               "clinie-source-partition", "clinie-source-offset", "clinie-failed-at")
#: extra headers on a truncated dead-letter copy
TRUNCATED_HEADERS = ("clinie-truncated", "clinie-original-bytes", "clinie-original-sha256")
#: exit status of the injected kill (``fault_kill_after_commit``), so a test can tell it from a crash
FAULT_EXIT_CODE = 86
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)

#: the text of the ``clinie-error-message`` header: fixed per code (error messages may quote the payload)
ERROR_TEXT = {
    ErrorCode.NOT_JSON: "the payload is not JSON",
    ErrorCode.NOT_DOCUMENT_REFERENCE: "the payload is not a FHIR DocumentReference",
    ErrorCode.INVALID_RESOURCE: "the DocumentReference is not valid FHIR R4",
    ErrorCode.NO_TEXT: "the DocumentReference has no note text",
    ErrorCode.BAD_BASE64: "the attachment data is not valid base64",
    ErrorCode.UNSUPPORTED_CONTENT_TYPE: "the attachment content type or charset is not supported",
    ErrorCode.NOTE_TOO_LARGE: "the note exceeds the size limit",
    ErrorCode.BAD_ENCODING: "the attachment bytes do not decode with the declared charset",
    ErrorCode.UNEXPECTED: "unexpected error while processing this input",
    ErrorCode.NOTE_TIMED_OUT: "inference for this note failed or timed out on every attempt while Triton was up",
}


async def raw_body(msg: StreamMessage[Any]) -> bytes:
    """FastStream decoder: the raw bytes, whatever the content-type header says (parsing is ours, with codes)."""
    return bytes(msg.body or b"")


async def lenient_parser(record: Any, original: Callable[[Any], Awaitable[StreamMessage[Any]]]
                         ) -> StreamMessage[Any]:
    """FastStream parser that survives header values which are not UTF-8 (or null): they become ``"?"``."""
    try:
        return await original(record)
    except (UnicodeDecodeError, AttributeError):
        record.headers = [(k, v if isinstance(v, bytes) and _utf8(v) else b"?") for k, v in record.headers]
        return await original(record)


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


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
            decoder=raw_body,
            parser=lenient_parser,
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
                             max_request_size=s.kafka_max_request_bytes, logger=logging.getLogger("faststream"),
                             **extra)
        broker.include_router(self.router())
        self.broker = broker
        return broker

    async def handle(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        ids = {"topic": record.topic, "partition": record.partition, "offset": record.offset}  # type: ignore[union-attr]
        payload: bytes = msg.body
        delay = self.settings.retry_initial_s
        failed_requests = 0  # Triton was up but this note's request failed/timed out
        while True:
            try:
                started = time.perf_counter()
                await asyncio.to_thread(self.processor.process, payload)
                self._maybe_inject_kill(ids)
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
                if err.code is ErrorCode.BACKEND_REQUEST_FAILED:
                    failed_requests += 1
                    if failed_requests >= self.settings.max_inference_attempts:
                        self.metrics.failures.labels(err.reason, "transient").inc()
                        timed_out = InvalidInputError(ErrorCode.NOTE_TIMED_OUT,
                                                      f"inference failed {failed_requests} times while Triton was up")
                        await self._dead_letter(msg, payload, timed_out, ids)
                        return
                self.metrics.failures.labels(err.reason, "transient").inc()
                self.metrics.retries.labels(err.reason).inc()
                log.warning("transient failure, will retry", extra={**ids, "code": err.code.value,
                                                                    "reason": err.reason, "retry_in_s": delay,
                                                                    "attempt": failed_requests or None})
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

    def _maybe_inject_kill(self, ids: dict[str, object]) -> None:
        """Fault injection (test only, ``fault_kill_after_commit``): die between the database commit and the offset
        commit of the Nth stored note, as a kill -9 would: no ack, no clean-up, no broker leave."""
        n = self.settings.fault_kill_after_commit
        if n and self.processed + 1 >= n:
            log.warning("fault injection: exiting after the database commit, before the offset commit",
                        extra={**ids, "stored_in_this_process": self.processed + 1})
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(FAULT_EXIT_CODE)

    async def _dead_letter(self, msg: KafkaMessage, payload: bytes, err: ClinieError, ids: dict[str, object]) -> None:
        """Write the payload to the dead-letter topic, then ack. Never blocks on size: a payload the producer or the
        broker refuses is replaced by its first ``dead_letter_truncate_bytes`` with its size and sha256 (and by an
        empty body if even that is refused). Other publish failures (broker down) are retried with backoff."""
        assert self.broker is not None
        s = self.settings
        headers = dict(zip(DLQ_HEADERS, (err.code.value, err.reason, ERROR_TEXT.get(err.code, "input rejected"),
                                          str(ids["topic"]), str(ids["partition"]), str(ids["offset"]),
                                          datetime.now(UTC).isoformat()), strict=True))
        bodies = [payload, payload[:s.dead_letter_truncate_bytes], b""]
        if len(payload) <= s.dead_letter_truncate_bytes:
            bodies = [payload, b""]
        truncated = dict(zip(TRUNCATED_HEADERS, ("true", str(len(payload)), hashlib.sha256(payload).hexdigest()),
                             strict=True))
        attempt = 0
        delay = s.retry_initial_s
        while True:
            body = bodies[attempt]
            try:
                await self.broker.publish(body, topic=s.dead_letter_topic, key=msg.raw_message.key,  # type: ignore[union-attr]
                                          headers=headers if attempt == 0 else {**headers, **truncated})
                break
            except _TOO_LARGE as exc:
                if attempt + 1 >= len(bodies):
                    raise  # an empty body with our headers refused: a broker misconfiguration, not this input
                attempt += 1
                log.warning("dead-letter payload too large, writing a truncated copy",
                            extra={**ids, "error_type": type(exc).__name__, "bytes": len(payload),
                                   "truncated_to": len(bodies[attempt])})
            except Exception as exc:  # the DLQ must not lose the message either: retry until it is written
                log.warning("dead-letter publish failed, retrying", extra={**ids, "error_type": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.retry_max_s)
        await msg.ack()
        self.dead_lettered += 1
        self.metrics.notes.labels("dead_lettered").inc()
        self.metrics.failures.labels(err.reason, "permanent").inc()
        log.info("dead-lettered", extra={**ids, "code": err.code.value, "reason": err.reason,
                                         "truncated": attempt > 0})

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
