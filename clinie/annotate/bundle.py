"""One FHIR R4 transaction Bundle per note: exactly the resources the extractor service stores for it.

The resources come from the service's own code path (``parse_document_reference`` -> ``map_extraction`` ->
``patient_stub``, as in ``services/extractor/processor.py`` and ``clinie.storage.repository.store_extraction``):

- every Condition, MedicationStatement and the Provenance: ``PUT <type>/<id>`` (ids are deterministic, so
  re-sending the Bundle updates in place, as the service's upsert does);
- the Patient stub (only an id) when the note names a patient: ``POST Patient`` with ``ifNoneExist: _id=<id>``,
  i.e. created only when that Patient does not exist yet (the service never overwrites a stored Patient).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhir.resources.R4B.resource import Resource

from clinie.document import Document
from clinie.fhir.docref import SourceNote
from clinie.fhir.mapping import MappedResources, map_extraction, patient_stub


def map_note(note: SourceNote, annotated: Document, model_version: str,
             asserted: datetime | None = None) -> MappedResources:
    """The service's mapping for one note (``asserted`` defaults to now, as in the extractor)."""
    return map_extraction(note, annotated, model_version, asserted=asserted or datetime.now(UTC))


def transaction_bundle(note: SourceNote, mapped: MappedResources) -> Bundle:
    """A transaction Bundle with what the service would store for ``note`` (see the module docstring)."""
    entries: list[BundleEntry] = []
    stub = patient_stub(note.patient_ref)
    if stub is not None:
        entries.append(BundleEntry(
            resource=stub,
            request=BundleEntryRequest(method="POST", url="Patient", ifNoneExist=f"_id={stub.id}"),
        ))
    for res in mapped.resources():
        entries.append(_put(res))
    return Bundle(type="transaction", entry=entries or None)


def _put(res: Resource) -> BundleEntry:
    rtype = res.get_resource_type()
    return BundleEntry(fullUrl=f"urn:uuid:{res.id}", resource=res,
                       request=BundleEntryRequest(method="PUT", url=f"{rtype}/{res.id}"))
