"""One message -> stored resources. Synchronous and free of Kafka: the consumer calls it in a worker thread.

``process`` raises :class:`InvalidInputError` for input that can never succeed (-> dead-letter) and
:class:`TransientError` when a dependency (Triton, PostgreSQL) failed (-> retry, don't commit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from clinie.errors import ErrorCode, TransientError
from clinie.fhir.docref import parse_document_reference
from clinie.fhir.mapping import map_extraction
from clinie.pipeline import Annotator
from clinie.storage.repository import StoreResult, store_extraction
from services.extractor.metrics import ExtractorMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processed:
    document_id: str
    document_version: str
    segments: int
    entities: int
    relations: int
    stored: StoreResult


class NoteProcessor:
    def __init__(self, extractor: Annotator, session_factory: Callable[[], Session], model_version: str,
                 max_note_chars: int, metrics: ExtractorMetrics | None = None) -> None:
        self.extractor = extractor
        self.session_factory = session_factory
        self.model_version = model_version
        self.max_note_chars = max_note_chars
        self.metrics = metrics or ExtractorMetrics()

    def process(self, payload: bytes) -> Processed:
        t0 = time.perf_counter()
        note = parse_document_reference(payload, max_chars=self.max_note_chars)
        t1 = time.perf_counter()
        annotated = self.extractor.annotate([note.document])[0]
        t2 = time.perf_counter()
        mapped = map_extraction(note, annotated, self.model_version, asserted=datetime.now(UTC))
        try:
            with self.session_factory() as session, session.begin():
                stored = store_extraction(session, note, mapped, self.model_version)
        except DBAPIError as exc:
            # connection lost / server down / timeouts are transient; a constraint or data error is a bug (E009)
            if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
                raise
            raise TransientError(ErrorCode.STORAGE_UNAVAILABLE, f"PostgreSQL: {type(exc.orig).__name__}") from exc
        t3 = time.perf_counter()
        m = self.metrics
        m.latency.labels("parse").observe(t1 - t0)
        m.latency.labels("inference").observe(t2 - t1)
        m.latency.labels("map_store").observe(t3 - t2)
        m.segments.inc(len(annotated.segments))
        m.resources.labels("Condition").inc(stored.conditions)
        m.resources.labels("MedicationStatement").inc(stored.medication_statements)
        log.info("note stored", extra={"document_id": note.resource_id, "document_version": note.version,
                                       "segments": len(annotated.segments), "entities": len(annotated.entities),
                                       "relations": len(annotated.relations), "conditions": stored.conditions,
                                       "medication_statements": stored.medication_statements,
                                       "seconds": round(t3 - t0, 3)})
        return Processed(note.resource_id, note.version, len(annotated.segments), len(annotated.entities),
                         len(annotated.relations), stored)
