"""Initial schema: fhir_resources and source_documents (as clinie/storage/models.py).

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fhir_resources",
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=True),
        sa.Column("encounter_id", sa.String(128), nullable=True),
        sa.Column("source_document_id", sa.String(128), nullable=True),
        sa.Column("source_document_version", sa.String(64), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("code_text", sa.Text(), nullable=True),
        sa.Column("codes", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("verification_status", sa.String(32), nullable=True),
        sa.Column("recorded_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("effective_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("effective_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("targets", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("resource", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "id"),
    )
    op.create_index("ix_fhir_patient_type_code", "fhir_resources", ["patient_id", "resource_type", "code_text"])
    op.create_index("ix_fhir_type_code_text", "fhir_resources", ["resource_type", "code_text"])
    op.create_index("ix_fhir_source_document", "fhir_resources", ["source_document_id"])
    op.create_index("ix_fhir_type_recorded", "fhir_resources", ["resource_type", "recorded_date"])
    op.create_index("ix_fhir_type_updated", "fhir_resources", ["resource_type", "last_updated"])
    op.create_index("ix_fhir_encounter", "fhir_resources", ["encounter_id"])
    op.create_index("ix_fhir_codes", "fhir_resources", ["codes"], postgresql_using="gin")
    op.create_index("ix_fhir_targets", "fhir_resources", ["targets"], postgresql_using="gin")

    op.create_table(
        "source_documents",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("conditions", sa.Integer(), nullable=False),
        sa.Column("medication_statements", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("source_documents")
    for name in (
        "ix_fhir_targets",
        "ix_fhir_codes",
        "ix_fhir_encounter",
        "ix_fhir_type_updated",
        "ix_fhir_type_recorded",
        "ix_fhir_source_document",
        "ix_fhir_type_code_text",
        "ix_fhir_patient_type_code",
    ):
        op.drop_index(name, table_name="fhir_resources")
    op.drop_table("fhir_resources")
