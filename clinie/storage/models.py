"""Tables. Resources are stored whole as JSONB, with the search columns the FHIR API filters on.

``fhir_resources``: one row per current resource (Condition, MedicationStatement, AllergyIntolerance,
Provenance, Patient).
Ids are deterministic (see ``clinie.fhir.ids``), so reprocessing the same document version with the same model
version upserts the same rows. When a new version of a DocumentReference arrives, the rows derived from older
versions are deleted in the same transaction that writes the new ones.

``source_documents``: one row per DocumentReference id: which version and model produced the current rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class FhirResource(Base):
    __tablename__ = "fhir_resources"

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    last_updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    patient_id: Mapped[str | None] = mapped_column(String(128))
    encounter_id: Mapped[str | None] = mapped_column(String(128))
    source_document_id: Mapped[str | None] = mapped_column(String(128))
    source_document_version: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(128))
    # lower-cased concept text (Condition.code.text, MedicationStatement.medicationCodeableConcept.text)
    code_text: Mapped[str | None] = mapped_column(Text)
    # tokens "system|code" and "code" for token search
    codes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # Condition/AllergyIntolerance clinicalStatus code / MedicationStatement.status
    status: Mapped[str | None] = mapped_column(String(32))
    verification_status: Mapped[str | None] = mapped_column(String(32))
    recorded_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # recordedDate / recorded
    effective_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # onset / effective[x]
    effective_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Provenance: the references in Provenance.target ("Condition/abc", ...)
    targets: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    resource: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)

    __table_args__ = (
        Index("ix_fhir_patient_type_code", "patient_id", "resource_type", "code_text"),
        Index("ix_fhir_type_code_text", "resource_type", "code_text"),
        Index("ix_fhir_source_document", "source_document_id"),
        Index("ix_fhir_type_recorded", "resource_type", "recorded_date"),
        Index("ix_fhir_type_updated", "resource_type", "last_updated"),
        Index("ix_fhir_encounter", "encounter_id"),
        Index("ix_fhir_codes", "codes", postgresql_using="gin"),
        Index("ix_fhir_targets", "targets", postgresql_using="gin"),
    )


class SourceDocument(Base):
    __tablename__ = "source_documents"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # DocumentReference.id
    version: Mapped[str] = mapped_column(String(64), nullable=False)  # meta.versionId, else content hash
    content_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(128), nullable=False)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    conditions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    medication_statements: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
