"""Operations behind ``clinie db`` and ``clinie publish``: existing PostgreSQL and Kafka, from the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clinie.errors import ClinieError, ErrorCode, TransientError

if TYPE_CHECKING:
    from services.settings import ExtractorSettings


def _echo(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- database


def _db_error(exc: Exception, url: str) -> TransientError:
    from sqlalchemy.engine import make_url

    where = make_url(url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    return TransientError(ErrorCode.STORAGE_UNAVAILABLE, f"PostgreSQL at {where}: {reason}")


def head_revision() -> str:
    """The newest migration shipped with this version of clinie."""
    from alembic.script import ScriptDirectory

    from clinie.storage.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The migration the database at ``url`` is at (``None``: no clinie schema yet)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import SQLAlchemyError

    from clinie.storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise _db_error(exc, url) from None
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """``alembic upgrade`` the database at ``url``; returns (revision before, revision after)."""
    from sqlalchemy.exc import SQLAlchemyError

    from clinie.storage.db import migrate

    before = current_revision(url)
    try:
        migrate(url, revision)
    except SQLAlchemyError as exc:
        raise _db_error(exc, url) from None
    return before, current_revision(url)


# ---------------------------------------------------------------------------------------------- publish


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    origin: str


def messages(args: list[str], pattern: str, patient: str | None, encounter: str | None = None
             ) -> Iterator[Message | Any]:
    """DocumentReference messages for ``clinie publish``: DocumentReferences as given (validated like the service
    does), plain text and interchange notes wrapped into DocumentReferences for ``patient``. Yields
    :class:`~clinie.annotate.sources.RecordError` for records that would be dead-lettered."""
    from clinie.annotate.sources import NoteInput, RecordError, document_reference_from_text, read_inputs
    from clinie.fhir.docref import parse_document_reference

    for item in read_inputs(args, pattern):
        if isinstance(item, RecordError):
            yield item
            continue
        assert isinstance(item, NoteInput)
        if item.note is not None:
            resource_id = item.note.resource_id
            raw = json.dumps(item.raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        else:
            resource = document_reference_from_text(item.document.text, item.document.id, patient=patient,
                                                    encounter=encounter)
            resource_id = str(resource.id)
            raw = resource.model_dump_json().encode("utf-8")
            try:
                parse_document_reference(raw)  # exactly the service's check
            except ClinieError as err:
                yield RecordError(item.origin, err)
                continue
        yield Message(resource_id.encode("utf-8"), raw, item.origin)


async def send(settings: ExtractorSettings, topic: str, batch: list[Message], timeout_s: float = 30.0) -> int:
    """Send ``batch`` to ``topic`` (acks=all), with the security of ``settings``; returns how many were sent."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from services.extractor.kafka_security import aiokafka_kwargs

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                                enable_idempotence=False, request_timeout_ms=int(timeout_s * 1000),
                                **aiokafka_kwargs(settings))
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        await producer.stop()
        raise TransientError(ErrorCode.BACKEND_UNAVAILABLE,
                             f"Kafka at {settings.kafka_bootstrap_servers}: {type(exc).__name__}") from None
    try:
        futures = [await producer.send(topic, m.value, key=m.key) for m in batch]
        await producer.flush()
        for f in futures:
            await f
    except KafkaError as exc:
        raise TransientError(ErrorCode.BACKEND_UNAVAILABLE, f"Kafka topic {topic}: {type(exc).__name__}") from None
    finally:
        await producer.stop()
    return len(batch)
