"""The search-parameter registry: the one place where a FHIR search parameter of clinie is defined.

For each resource type and parameter it says the name, FHIR type, the storage column(s) it is answered from, how
those columns are filled from a resource (``extract``), how it is queried (``index``), its modifiers and prefixes,
and whether (and by which column) it sorts. Storage fills the search columns on write with ``index_columns``; the
FHIR API builds its queries and its CapabilityStatement from ``SEARCH_PARAMETERS``; the tests walk it.

Resources are read in their JSON form (``resource.model_dump`` of the R4B models, or stored JSONB).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from clinie.fhir.extensions import MODEL_VERSION_SYSTEM, SOURCE_VERSION_URL, read_evidence
from clinie.fhir.references import reference_id
from clinie.fhir.search.dates import DATE_PREFIXES, parse_date
from clinie.fhir.systems import (
    ALLERGY_CLINICAL_SYSTEM,
    ALLERGY_VERIFICATION_SYSTEM,
    CLINICAL_STATUS_SYSTEM,
    ICD10CM,
    MED_STATUS_SYSTEM,
    VERIFICATION_STATUS_SYSTEM,
)

HL7_SP = "http://hl7.org/fhir/SearchParameter/"
SOURCE_DOCUMENT_SP = "https://clinie.dev/fhir/SearchParameter/source-document"

Json = Mapping[str, Any]
ColumnFiller = Callable[[Json], dict[str, Any]]
# how a parameter is answered from its columns:
#   id: the row id; instant: a date on one timestamp column; period: a date on (start, end) columns;
#   reference: a bare id of one target type; targets: "Type/id" references of any type in an array column;
#   code: "system|code" and "code" tokens in an array column + lower-cased concept text (for :text);
#   status: one code of a fixed code system in a text column
Index = Literal["id", "instant", "period", "reference", "targets", "code", "status"]
FhirType = Literal["token", "reference", "date"]

# every column of ``fhir_resources`` that search parameters use (the storage model has them all; a test checks)
SEARCH_COLUMNS = (
    "patient_id",
    "encounter_id",
    "source_document_id",
    "source_document_version",
    "model_version",
    "code_text",
    "codes",
    "status",
    "verification_status",
    "recorded_date",
    "effective_start",
    "effective_end",
    "targets",
)


@dataclass(frozen=True)
class Hierarchy:
    """How the descendants of a code are spelled in a code system whose codes nest by prefix.

    ICD-10-CM: a category ``E11`` has the descendants ``E11.x...`` (``separator`` "."); a subcategory ``E11.6``
    has ``E11.6x...`` (a code that already contains the separator extends without it). ``code:below=system|X``
    matches X itself and every descendant."""

    separator: str

    def descendant_prefix(self, code: str) -> str:
        return code if self.separator in code else code + self.separator


ICD10CM_HIERARCHY = Hierarchy(".")


@dataclass(frozen=True)
class SearchParameter:
    resource_type: str
    name: str
    type: FhirType
    index: Index
    columns: tuple[str, ...]  # storage columns, queried in this order (period: start, end; code: codes, text)
    documentation: str
    definition: str | None = None
    extract: ColumnFiller | None = None  # fills ``columns`` from a resource (None: row metadata, e.g. id)
    # "missing", "not", "text", "type" (= :[type] on references), "below" (code: subsumption in ``hierarchies``)
    modifiers: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    sort_column: str | None = None  # None: not sortable
    target_type: str | None = None  # reference: the type the column's ids belong to
    system: str | None = None  # status: the code system of the column's codes
    # code :below: the code systems whose hierarchy is known, each with how a code's descendants are written
    hierarchies: tuple[tuple[str, Hierarchy], ...] = ()

    def hierarchy(self, system: str | None) -> Hierarchy | None:
        """The hierarchy of ``system`` for ``:below`` (None: not declared)."""
        return next((h for s, h in self.hierarchies if s == system), None)

    @property
    def sortable(self) -> bool:
        return self.sort_column is not None

    @property
    def sort_kind(self) -> Literal["datetime", "str"]:
        return "datetime" if self.type == "date" else "str"


# ------------------------------------------------------------------------------------------------ extractors


def _ref(value: Any) -> str | None:
    return value.get("reference") if isinstance(value, Mapping) else None


def _first_code(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    return next((str(c["code"]) for c in concept.get("coding") or () if c.get("code")), None)


def _patient(data: Json) -> dict[str, Any]:
    if data.get("resourceType") == "Patient":
        return {"patient_id": data.get("id")}
    return {"patient_id": reference_id(_ref(data.get("subject") or data.get("patient")), "Patient")}


def _encounter(element: str) -> ColumnFiller:
    return lambda data: {"encounter_id": reference_id(_ref(data.get(element)), "Encounter")}


def _concept(element: str) -> ColumnFiller:
    def extract(data: Json) -> dict[str, Any]:
        concept = data.get(element)
        if not isinstance(concept, Mapping):
            return {"codes": None, "code_text": None}
        codings = [c for c in concept.get("coding") or () if isinstance(c, Mapping)]
        label = concept.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
        tokens: list[str] = []
        for c in codings:
            if c.get("code"):
                if c.get("system"):
                    tokens.append(f"{c['system']}|{c['code']}")
                tokens.append(str(c["code"]))
        return {"codes": list(dict.fromkeys(tokens)) or None, "code_text": str(label).lower() if label else None}

    return extract


def _status_code(element: str, column: str) -> ColumnFiller:
    def extract(data: Json) -> dict[str, Any]:
        value = data.get(element)
        return {column: value if isinstance(value, str) else _first_code(value)}

    return extract


def _instant(element: str, column: str) -> ColumnFiller:
    def extract(data: Json) -> dict[str, Any]:
        rng = parse_date(data.get(element))
        return {column: None if rng is None else rng.low}

    return extract


def _period(prefix: str) -> ColumnFiller:
    """``<prefix>DateTime`` or ``<prefix>Period`` as (effective_start, effective_end)."""

    def extract(data: Json) -> dict[str, Any]:
        start: datetime | None = None
        end: datetime | None = None
        if (dt := parse_date(data.get(f"{prefix}DateTime"))) is not None:
            start, end = dt.low, dt.last
        elif isinstance(period := data.get(f"{prefix}Period"), Mapping):
            lo, hi = parse_date(period.get("start")), parse_date(period.get("end"))
            start, end = (lo.low if lo else None), (hi.last if hi else None)
        return {"effective_start": start, "effective_end": end}

    return extract


def _targets(data: Json) -> dict[str, Any]:
    refs = [str(t["reference"]) for t in data.get("target") or () if isinstance(t, Mapping) and t.get("reference")]
    return {"targets": refs or None}


def _source(data: Json) -> dict[str, Any]:
    """source_document_id (and its version and the model version, bookkeeping columns of the same origin): from
    the note-evidence extension, else derivedFrom (MedicationStatement) or entity/agent (Provenance)."""
    evidence = read_evidence(data)
    if evidence:
        ev = evidence[0]
        return {
            "source_document_id": ev.document_id,
            "source_document_version": ev.document_version,
            "model_version": ev.model_version,
        }
    out: dict[str, Any] = {"source_document_id": None, "source_document_version": None, "model_version": None}
    for ref in data.get("derivedFrom") or ():
        if doc := reference_id(_ref(ref), "DocumentReference"):
            out["source_document_id"] = doc
            break
    for ent in data.get("entity") or ():
        if ent.get("role") == "source" and (doc := reference_id(_ref(ent.get("what")), "DocumentReference")):
            out["source_document_id"] = doc
            for ext in ent.get("extension") or ():
                if ext.get("url") == SOURCE_VERSION_URL:
                    out["source_document_version"] = ext.get("valueString")
            break
    for agent in data.get("agent") or ():
        ident = (agent.get("who") or {}).get("identifier") or {}
        if ident.get("system") == MODEL_VERSION_SYSTEM:
            out["model_version"] = ident.get("value")
    return out


# ------------------------------------------------------------------------------------------------ parameters

_DATE_DOC = "; prefixes " + " ".join(DATE_PREFIXES) + "."


def _common(rtype: str) -> list[SearchParameter]:
    return [
        SearchParameter(
            rtype, "_id", "token", "id", ("id",), "Logical id; comma-separated ids = OR.", HL7_SP + "Resource-id",
            sort_column="id",
        ),
        SearchParameter(
            rtype, "_lastUpdated", "date", "instant", ("last_updated",),
            "When the resource was last written (meta.lastUpdated)" + _DATE_DOC, HL7_SP + "Resource-lastUpdated",
            prefixes=DATE_PREFIXES, sort_column="last_updated",
        ),
    ]  # fmt: skip


def _reference(
    rtype: str, name: str, column: str, target: str, doc: str, definition: str, extract: ColumnFiller
) -> SearchParameter:
    return SearchParameter(
        rtype, name, "reference", "reference", (column,), doc, definition, extract,
        modifiers=("type", "missing"), sort_column=column, target_type=target,
    )  # fmt: skip


_PATIENT_DOC = "The patient (id, Patient/id or an absolute Patient URL)."


def _patients(rtype: str) -> list[SearchParameter]:
    return [
        _reference(rtype, "patient", "patient_id", "Patient", _PATIENT_DOC, HL7_SP + "clinical-patient", _patient),
        _reference(rtype, "subject", "patient_id", "Patient", _PATIENT_DOC, HL7_SP + f"{rtype}-subject", _patient),
    ]


def _source_document(rtype: str) -> SearchParameter:
    return _reference(
        rtype, "source-document", "source_document_id", "DocumentReference",
        "The clinical note (DocumentReference id or DocumentReference/id) the resource was extracted from.",
        SOURCE_DOCUMENT_SP, _source,
    )  # fmt: skip


def _code(rtype: str, element: str, hierarchies: tuple[tuple[str, Hierarchy], ...] = ()) -> SearchParameter:
    doc = (
        "Concept code: system|code, |code, code, system|; :text = case-insensitive substring of the concept text; "
        ":not negates."
    )
    modifiers: tuple[str, ...] = ("text", "not", "missing")
    if hierarchies:
        systems = ", ".join(s for s, _ in hierarchies)
        doc += f" :below=system|code matches the code and its descendants, for {systems} (E11: E11, E11.9, E11.65)."
        modifiers = (*modifiers, "below")
    return SearchParameter(
        rtype, "code", "token", "code", ("codes", "code_text"), doc, HL7_SP + "clinical-code", _concept(element),
        modifiers=modifiers, sort_column="code_text", hierarchies=hierarchies,
    )  # fmt: skip


def _status(
    rtype: str, name: str, column: str, element: str, system: str, doc: str, definition: str
) -> SearchParameter:
    return SearchParameter(
        rtype, name, "token", "status", (column,), doc, definition, _status_code(element, column),
        modifiers=("not", "missing"), sort_column=column, system=system,
    )  # fmt: skip


def _date(rtype: str, name: str, column: str, element: str, doc: str, definition: str) -> SearchParameter:
    return SearchParameter(
        rtype, name, "date", "instant", (column,), doc + _DATE_DOC, definition, _instant(element, column),
        modifiers=("missing",), prefixes=DATE_PREFIXES, sort_column=column,
    )  # fmt: skip


def _period_param(rtype: str, name: str, prefix: str, doc: str, definition: str) -> SearchParameter:
    return SearchParameter(
        rtype, name, "date", "period", ("effective_start", "effective_end"), doc + _DATE_DOC, definition,
        _period(prefix), modifiers=("missing",), prefixes=DATE_PREFIXES, sort_column="effective_start",
    )  # fmt: skip


_ENCOUNTER_DOC = "The encounter of the note (id or Encounter/id)."

_ALL: list[SearchParameter] = [
    # Condition
    *_common("Condition"),
    *_patients("Condition"),
    _code("Condition", "code", ((ICD10CM, ICD10CM_HIERARCHY),)),
    _status(
        "Condition", "clinical-status", "status", "clinicalStatus", CLINICAL_STATUS_SYSTEM,
        "Condition.clinicalStatus (active, recurrence, relapse, inactive, remission, resolved).",
        HL7_SP + "Condition-clinical-status",
    ),
    _status(
        "Condition", "verification-status", "verification_status", "verificationStatus", VERIFICATION_STATUS_SYSTEM,
        "Condition.verificationStatus (unconfirmed, provisional, differential, confirmed, refuted, "
        "entered-in-error).",
        HL7_SP + "Condition-verification-status",
    ),
    _reference(
        "Condition", "encounter", "encounter_id", "Encounter", _ENCOUNTER_DOC, HL7_SP + "Condition-encounter",
        _encounter("encounter"),
    ),
    _date("Condition", "recorded-date", "recorded_date", "recordedDate", "Condition.recordedDate",
          HL7_SP + "Condition-recorded-date"),
    _period_param("Condition", "onset-date", "onset", "Condition.onset[x] as a period",
                  HL7_SP + "Condition-onset-date"),
    _source_document("Condition"),
    # MedicationStatement
    *_common("MedicationStatement"),
    *_patients("MedicationStatement"),
    _code("MedicationStatement", "medicationCodeableConcept"),
    _status(
        "MedicationStatement", "status", "status", "status", MED_STATUS_SYSTEM,
        "MedicationStatement.status (active, completed, entered-in-error, intended, stopped, on-hold, "
        "unknown, not-taken).",
        HL7_SP + "medications-status",
    ),
    _period_param("MedicationStatement", "effective", "effective", "MedicationStatement.effective[x] as a period",
                  HL7_SP + "MedicationStatement-effective"),
    _reference(
        "MedicationStatement", "context", "encounter_id", "Encounter", _ENCOUNTER_DOC,
        HL7_SP + "MedicationStatement-context", _encounter("context"),
    ),
    _source_document("MedicationStatement"),
    # AllergyIntolerance (FHIR defines no ``subject`` or ``encounter`` parameter for it; ``patient`` only)
    *_common("AllergyIntolerance"),
    _reference("AllergyIntolerance", "patient", "patient_id", "Patient", _PATIENT_DOC, HL7_SP + "clinical-patient",
               _patient),
    _code("AllergyIntolerance", "code"),
    _status(
        "AllergyIntolerance", "clinical-status", "status", "clinicalStatus", ALLERGY_CLINICAL_SYSTEM,
        "AllergyIntolerance.clinicalStatus (active, inactive, resolved).",
        HL7_SP + "AllergyIntolerance-clinical-status",
    ),
    _status(
        "AllergyIntolerance", "verification-status", "verification_status", "verificationStatus",
        ALLERGY_VERIFICATION_SYSTEM,
        "AllergyIntolerance.verificationStatus (unconfirmed, confirmed, refuted, entered-in-error).",
        HL7_SP + "AllergyIntolerance-verification-status",
    ),
    _date("AllergyIntolerance", "date", "recorded_date", "recordedDate", "AllergyIntolerance.recordedDate",
          HL7_SP + "clinical-date"),
    _source_document("AllergyIntolerance"),
    # Provenance
    *_common("Provenance"),
    SearchParameter(
        "Provenance", "target", "reference", "targets", ("targets",),
        "A resource the Provenance is about: Type/id (exact) or a bare id (any type).",
        HL7_SP + "Provenance-target", _targets, modifiers=("type", "missing"),
    ),
    _date("Provenance", "recorded", "recorded_date", "recorded",
          "Provenance.recorded (when the extraction was stored)", HL7_SP + "Provenance-recorded"),
    _source_document("Provenance"),
    # Patient
    *_common("Patient"),
]  # fmt: skip

RESOURCE_TYPES: tuple[str, ...] = ("Condition", "MedicationStatement", "AllergyIntolerance", "Provenance", "Patient")
SEARCH_PARAMETERS: dict[str, dict[str, SearchParameter]] = {
    rtype: {p.name: p for p in _ALL if p.resource_type == rtype} for rtype in RESOURCE_TYPES
}


def sort_parameters(resource_type: str) -> list[SearchParameter]:
    """The sortable parameters of a type, in registry order."""
    return [p for p in SEARCH_PARAMETERS[resource_type].values() if p.sortable]


def index_columns(resource: Json) -> dict[str, Any]:
    """The search columns of a resource in JSON form: every column in ``SEARCH_COLUMNS``, None when absent.

    ``patient_id`` is also the patient compartment: a Patient's own id; other types' subject/patient (storage
    puts a Provenance in the compartment of its note's patient)."""
    cols: dict[str, Any] = dict.fromkeys(SEARCH_COLUMNS)
    rtype = resource.get("resourceType")
    cols.update(_patient(resource))
    extractors = {p.extract for p in SEARCH_PARAMETERS.get(str(rtype), {}).values() if p.extract is not None}
    for extract in extractors:
        cols.update(extract(resource))
    if rtype == "Patient":
        cols["patient_id"] = resource.get("id")
    return cols
