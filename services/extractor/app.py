"""FastStream consumer: DocumentReference messages -> NoteProcessor, with an explicit commit policy.

Delivery: at-least-once. Up to ``max_in_flight`` notes of a consumer are processed at once (inference and storage in
a thread pool). Offsets are committed in order: offset N is committed only when every message up to N was stored in
PostgreSQL or written to the dead-letter topic (:class:`OffsetTracker`), so a crash never skips a note. Transient
failures are retried in place with exponential backoff (tenacity); nothing after the failing message is committed
while it waits. Writes are idempotent and storage takes a per-document lock and ignores older versions, so notes may
finish out of order and a redelivery after a crash changes nothing.

Stopping (:meth:`ExtractorService.shutdown`) ends every retry loop at its next wait, waits for the notes already in
inference or storage, commits what is complete and leaves the rest uncommitted for the next consumer.

Every message reaches ``handle``: the subscriber takes the raw bytes (no content-type driven decoding, which raised
before the handler ran on a JSON-declared non-JSON body, a non-UTF-8 text body or 100,000 nested arrays, and the
next ack then committed past the lost message), and header values that are not UTF-8 are replaced before FastStream
reads them. Dead-letter headers hold codes and fixed text only, never strings taken from the payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, retry_if_exception_type, wait_exponential

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


class ShuttingDown(Exception):
    """Raised at the start of an attempt once the service stops: the message stays uncommitted."""


@dataclass
class _Partition:
    in_flight: Counter[int] = field(default_factory=Counter)
    highest: int = -1  # the highest offset taken
    committed: int = -1  # the last position committed (Kafka's "next offset to read")


class OffsetTracker:
    """Which offsets may be committed while the messages of a partition finish out of order.

    :meth:`started` when a message is taken, :meth:`finished` once it is stored or dead-lettered. The commit
    position of a partition is the lowest offset still in flight or, when none is, one past the highest offset
    taken: every message before that position is finished. A message abandoned at shutdown never finishes, so
    nothing at or after it is committed. A redelivered offset (after a rebalance) is counted again, so its first
    copy finishing does not release it.
    """

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _Partition] = {}

    def started(self, tp: TopicPartition, offset: int) -> _Partition:
        """Count ``offset`` in flight; pass the returned state back to :meth:`finished`."""
        part = self._parts.get(tp)
        if part is None:  # the first offset taken is where the group's committed position already is
            part = self._parts[tp] = _Partition(committed=offset)
        part.in_flight[offset] += 1
        part.highest = max(part.highest, offset)
        return part

    def finished(self, tp: TopicPartition, offset: int, part: _Partition | None = None) -> None:
        """``part`` is what :meth:`started` returned: a message taken before its partition was revoked finishes
        against that old state, never against the state of a later assignment of the same partition."""
        part = part if part is not None else self._parts[tp]
        part.in_flight[offset] -= 1
        if part.in_flight[offset] <= 0:
            del part.in_flight[offset]

    def position(self, tp: TopicPartition) -> int:
        """The offset to commit for ``tp``: every message before it is finished (-1 when nothing was taken)."""
        part = self._parts.get(tp)
        if part is None:
            return -1
        return min(part.in_flight) if part.in_flight else part.highest + 1

    def to_commit(self) -> dict[TopicPartition, int]:
        """The positions that moved past what was last committed."""
        return {tp: pos for tp, part in self._parts.items() if (pos := self.position(tp)) > part.committed}

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, pos in offsets.items():
            part = self._parts[tp]
            part.committed = max(part.committed, pos)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop the state of revoked partitions. Their unfinished messages go to the new owner; if a partition
        comes back, its position starts again from the group's committed offset, so a message still finishing
        from the earlier assignment can never pull the group's offset back below what another member committed."""
        for tp in tps:
            self._parts.pop(tp, None)

    @property
    def in_flight(self) -> int:
        return sum(sum(p.in_flight.values()) for p in self._parts.values())


class _ForgetRevoked(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance listener: revoked partitions leave the :class:`OffsetTracker`."""

    def __init__(self, tracker: OffsetTracker) -> None:
        self.tracker = tracker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.tracker.forget(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        return None


class ExtractorService:
    """Owns the in-flight window, the retry/dead-letter policy and the offset commits around a NoteProcessor."""

    def __init__(self, settings: ExtractorSettings, processor: NoteProcessor, metrics: ExtractorMetrics) -> None:
        self.settings = settings
        self.processor = processor
        self.metrics = metrics
        self.stopping = asyncio.Event()
        self.processed = 0
        self.dead_lettered = 0
        self.broker: KafkaBroker | None = None
        self.tracker = OffsetTracker()
        self._window = asyncio.Semaphore(settings.max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._commit_lock = asyncio.Lock()

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
            listener=_ForgetRevoked(self.tracker),
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

    # --- the window ------------------------------------------------------------------------------------------

    async def handle(self, msg: KafkaMessage) -> None:
        """Take ``msg`` into the in-flight window (waiting while it is full) and return, so FastStream fetches the
        next message while this one is processed. Once stopping, messages are left uncommitted."""
        if not await self._take_slot():
            return
        record = msg.raw_message
        tp = TopicPartition(record.topic, record.partition)  # type: ignore[union-attr]
        offset: int = record.offset  # type: ignore[union-attr]
        part = self.tracker.started(tp, offset)
        task = asyncio.create_task(self._settle(msg, tp, offset, part))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take_slot(self) -> bool:
        if self.stopping.is_set():
            return False
        acquire = asyncio.ensure_future(self._window.acquire())
        stopped = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not acquire.done():
                acquire.cancel()
        if acquire.done() and not acquire.cancelled():
            if self.stopping.is_set():
                self._window.release()
                return False
            return True
        return False

    async def _settle(self, msg: KafkaMessage, tp: TopicPartition, offset: int, part: _Partition) -> None:
        try:
            if await self._process(msg):
                self.tracker.finished(tp, offset, part)
                await self._commit(msg)
        except Exception as exc:  # e.g. the dead-letter topic refused an empty body: hold the commits, never skip
            log.error("message neither stored nor dead-lettered; offsets from here on stay uncommitted",
                      extra={"topic": tp.topic, "partition": tp.partition, "offset": offset,
                             "error_type": type(exc).__name__})
        finally:
            self._window.release()

    async def _commit(self, msg: KafkaMessage) -> None:
        """Commit every partition position that moved (in order: see :class:`OffsetTracker`)."""
        consumer = getattr(msg, "consumer", None)
        if consumer is None:
            return
        async with self._commit_lock:
            offsets = self.tracker.to_commit()
            with contextlib.suppress(Exception):
                assigned = consumer.assignment()
                offsets = {tp: pos for tp, pos in offsets.items() if tp in assigned}
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except Exception as exc:  # rebalance, consumer stopping: the messages are redelivered, writes idempotent
                log.warning("offset commit failed; uncommitted messages will be redelivered",
                            extra={"error_type": type(exc).__name__})
                return
            self.tracker.committed(offsets)

    async def shutdown(self, timeout_s: float | None = None) -> None:
        """Stop cleanly: take no more messages, end every retry loop at its next wait, wait for the notes already in
        inference or storage (at most ``timeout_s``, default ``shutdown_timeout_s``) and commit what finished.
        Call it before stopping the broker; the messages it leaves are redelivered to the next consumer."""
        self.stopping.set()
        tasks = set(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s or self.settings.shutdown_timeout_s)
            if pending:
                log.warning("stopping with notes still in flight; they will be redelivered",
                            extra={"in_flight": len(pending)})
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # --- one message -----------------------------------------------------------------------------------------

    def _retrying(self, retry: Any, before_sleep: Callable[[RetryCallState], None]) -> AsyncRetrying:
        """Exponential backoff from ``retry_initial_s`` to ``retry_max_s``; every wait ends when the service stops,
        and the loop stops there (the next attempt raises :class:`ShuttingDown` if it was already under way)."""
        s = self.settings
        return AsyncRetrying(retry=retry, stop=lambda _state: self.stopping.is_set(),
                             wait=wait_exponential(multiplier=s.retry_initial_s, max=s.retry_max_s),
                             sleep=self._sleep, before_sleep=before_sleep, reraise=True)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.settings.max_in_flight,
                                                thread_name_prefix="clinie-note")
        return self._executor

    async def _process(self, msg: KafkaMessage) -> bool:
        """Store ``msg`` (retrying transient failures) or dead-letter it: True; False when stopped before either."""
        record = msg.raw_message
        ids = {"topic": record.topic, "partition": record.partition, "offset": record.offset}  # type: ignore[union-attr]
        payload: bytes = msg.body
        failed_requests = 0  # Triton was up but this note's request failed/timed out
        loop = asyncio.get_running_loop()

        async def attempt() -> None:
            nonlocal failed_requests
            if self.stopping.is_set():
                raise ShuttingDown
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._pool(), self.processor.process, payload)
            except TransientError as err:
                self.metrics.failures.labels(err.reason, "transient").inc()
                if err.code is ErrorCode.BACKEND_REQUEST_FAILED:
                    failed_requests += 1
                    if failed_requests >= self.settings.max_inference_attempts:
                        raise InvalidInputError(ErrorCode.NOTE_TIMED_OUT, f"inference failed {failed_requests} "
                                                "times while Triton was up") from err
                raise
            self.metrics.latency.labels("total").observe(time.perf_counter() - started)

        def log_retry(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome is not None else None
            if isinstance(err, TransientError):
                self.metrics.retries.labels(err.reason).inc()
                log.warning("transient failure, will retry", extra={**ids, "code": err.code.value,
                                                                    "reason": err.reason,
                                                                    "retry_in_s": state.upcoming_sleep,
                                                                    "attempt": failed_requests or None})

        try:
            try:
                await self._retrying(retry_if_exception_type(TransientError), log_retry)(attempt)
            except InvalidInputError as err:
                await self._dead_letter(msg, payload, err, ids)
                return True
            except (ShuttingDown, TransientError):  # a TransientError gets here only once stopping
                log.info("stopping: message left uncommitted", extra=ids)
                return False
            except Exception as exc:  # an unexpected bug for this input: dead-letter it rather than block forever
                log.exception("unexpected error", extra={**ids, "error_type": type(exc).__name__})
                unexpected = InvalidInputError(ErrorCode.UNEXPECTED, f"unexpected {type(exc).__name__}")
                await self._dead_letter(msg, payload, unexpected, ids)
                return True
        except ShuttingDown:
            log.info("stopping: dead letter not written, message left uncommitted", extra=ids)
            return False
        self._maybe_inject_kill(ids)  # test only: between the database commit and the offset commit (_settle)
        self.processed += 1
        self.metrics.notes.labels("stored").inc()
        self._update_lag(msg)
        return True

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
        """Write the payload to the dead-letter topic. Never blocks on size: a payload the producer or the broker
        refuses is replaced by its first ``dead_letter_truncate_bytes`` with its size and sha256 (and by an empty
        body if even that is refused). Other publish failures (broker down) are retried with backoff until the
        service stops (then :class:`ShuttingDown`: the message stays uncommitted)."""
        assert self.broker is not None
        broker = self.broker
        s = self.settings
        headers = dict(zip(DLQ_HEADERS, (err.code.value, err.reason, ERROR_TEXT.get(err.code, "input rejected"),
                                          str(ids["topic"]), str(ids["partition"]), str(ids["offset"]),
                                          datetime.now(UTC).isoformat()), strict=True))
        bodies = [payload, payload[:s.dead_letter_truncate_bytes], b""]
        if len(payload) <= s.dead_letter_truncate_bytes:
            bodies = [payload, b""]
        truncated = dict(zip(TRUNCATED_HEADERS, ("true", str(len(payload)), hashlib.sha256(payload).hexdigest()),
                             strict=True))
        key = msg.raw_message.key  # type: ignore[union-attr]

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.warning("dead-letter publish failed, retrying", extra={**ids, "error_type": type(exc).__name__,
                                                                      "retry_in_s": state.upcoming_sleep})

        attempt = 0
        while True:
            body, hdrs = bodies[attempt], headers if attempt == 0 else {**headers, **truncated}

            async def publish(body: bytes = body, hdrs: dict[str, str] = hdrs) -> None:
                if self.stopping.is_set():
                    raise ShuttingDown
                await broker.publish(body, topic=s.dead_letter_topic, key=key, headers=hdrs)

            try:
                # the DLQ must not lose the message either: retry until it is written (or the service stops)
                await self._retrying(retry_if_exception(lambda e: not isinstance(e, (*_TOO_LARGE, ShuttingDown))),
                                     log_retry)(publish)
                break
            except _TOO_LARGE as exc:
                if attempt + 1 >= len(bodies):
                    raise  # an empty body with our headers refused: a broker misconfiguration, not this input
                attempt += 1
                log.warning("dead-letter payload too large, writing a truncated copy",
                            extra={**ids, "error_type": type(exc).__name__, "bytes": len(payload),
                                   "truncated_to": len(bodies[attempt])})
            except ShuttingDown:
                raise
            except Exception as exc:
                if self.stopping.is_set():
                    raise ShuttingDown from exc
                raise
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
