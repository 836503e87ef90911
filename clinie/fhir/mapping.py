"""Map an annotated note to FHIR R4 ``Condition``, ``MedicationStatement`` and ``Provenance`` (R4B models).

Rules (``map_extraction``):

- **Conditions** come from Problem, Reason and ADE mentions, **one Condition per distinct concept per note**:
  mentions with the same ICD-10-CM code (``Entity.codes``, set by ``clinie.normalize``), else the same normalised
  text, share one Condition, which carries one evidence extension per mention (every offset is kept).
  ``code.coding`` = the ICD-10-CM coding (system, code, display, version) when the mentions are coded,
  ``code.text`` is the first mention's text, ``subject``/``encounter``/``recordedDate`` come from the note,
  ``category`` is ``encounter-diagnosis``.
- **Not the patient's Condition** (documented rule): mentions with ``subject`` family/other (FamilyMemberHistory is
  not emitted) and ``hypothetical`` mentions ("call if chest pain", "risk of bleeding") produce no Condition; ADE
  mentions related to a drug in an allergy list become the AllergyIntolerance's reaction instead.
- **Negation**: a span is refuted when any mention of that span is negated; a Condition is
  ``verificationStatus = refuted`` with no ``clinicalStatus`` only when all its spans are refuted (a negated
  finding never becomes an active or confirmed Condition). Otherwise ``provisional`` when every affirmed mention is
  ``uncertain`` ("possible", "rule out", "concern for"), else ``unconfirmed``: NLP output is a claim found in the
  note, not a clinician-verified diagnosis. ``clinicalStatus`` is ``resolved`` when every affirmed mention is
  ``historical``, else ``active``.
- FHIR invariants: con-3 (clinicalStatus required for problem-list-item) does not apply (encounter-diagnosis);
  con-4 (abated => inactive/resolved/remission) does not apply (no abatement is set); con-5 (no clinicalStatus
  when entered-in-error) holds (never entered-in-error).
- **ADE** spans also get the category ``CONDITION_CATEGORY_SYSTEM|adverse-drug-event`` and
  ``evidence[0].detail`` = the MedicationStatement(s) of the Drug(s) the ADE relates to (``ADE-Drug``).
- **Reason** spans are Conditions too (a reason is a disorder the patient has); a non-negated Reason related
  to a Drug is that MedicationStatement's ``reasonCode`` (text) and ``reasonReference`` (the Condition).
- **MedicationStatement** per Drug span (not for drugs in an allergy context): ``status`` from cue rules over the
  mention's clause (``clinie.fhir.statuses``: not-taken for a negated mention or "avoid", stopped, on-hold,
  completed, intended for "start", else active); ``medicationCodeableConcept.text`` (the mention) and ``coding``:
  the ingredient (``INGREDIENT_SYSTEM``), UNII, DrugBank (and RxNorm/SNOMED CT when loaded) codes that
  ``clinie.normalize`` found, each with display and version (``clinie.normalize.codings``),
  ``subject``, ``context`` (encounter), ``dateAsserted`` (note date, else
  ``asserted``), ``derivedFrom`` the DocumentReference. ``dosage[0]``: ``text`` = the Dosage/Route/Frequency/
  Duration mentions related to the Drug, in that fixed order, without repeats (a text equal to or contained in
  another of the same drug is dropped); ``doseAndRate[0].doseQuantity``/``doseRange``,
  ``route`` (text + SNOMED CT), ``timing`` (``code.text`` + ``repeat``), ``repeat.boundsDuration``/
  ``boundsRange`` and ``asNeededBoolean`` from the first parseable mention of each kind (``clinie.fhir.dosage``).
  Attributes without a relation to a Drug are not mapped.
- **AllergyIntolerance** per Drug in an allergy context (an allergies heading or line, "allergic to X"):
  ``category`` medication, ``code`` as the MedicationStatement's, ``clinicalStatus`` active, ``verificationStatus``
  unconfirmed, ``reaction[].manifestation`` = the ADE mentions related to the drug (``ADE-Drug``), coded.
- **Evidence**: every Condition and MedicationStatement carries a note-evidence extension per mention used
  (``clinie.fhir.extensions``): document, document version, model version, offsets, label, negated,
  confidence.
- **Provenance** (one, when anything was emitted): ``target`` = every emitted resource, ``recorded`` =
  ``asserted``, ``agent`` = the model (type ``assembler``, ``who.display`` "clinie model <version>",
  ``who.identifier`` the version), ``entity`` = the DocumentReference (role ``source``, version in the display
  and in the ``source-document-version`` extension).
- **Subject**: ``Patient/<id>`` from the note; when the note has no patient subject, the (required) ``subject``
  carries only a data-absent-reason extension (``unknown``).
- Ids are deterministic (``clinie.fhir.ids``): Conditions are keyed by their concept, MedicationStatements and
  AllergyIntolerances by their span.
- ``asserted`` defaults to the note date, else the current time (naive datetimes are taken as UTC). Storage
  ignores ``Provenance.recorded`` and ``MedicationStatement.dateAsserted`` when deciding whether a reprocessed
  resource changed (``VOLATILE_FIELDS``), so reprocessing at a later time changes nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance, AllergyIntoleranceReaction
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.condition import Condition, ConditionEvidence
from fhir.resources.R4B.dosage import Dosage, DosageDoseAndRate
from fhir.resources.R4B.duration import Duration
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent, ProvenanceEntity
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.range import Range
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.timing import Timing, TimingRepeat

from clinie.document import Document, Entity
from clinie.errors import ErrorCode, InvalidInputError
from clinie.fhir import dosage as dp
from clinie.fhir.docref import SourceNote
from clinie.fhir.extensions import (
    ADE_CATEGORY_CODE,
    CONDITION_CATEGORY_SYSTEM,
    DATA_ABSENT_REASON_URL,
    INGREDIENT_SYSTEM,
    MODEL_VERSION_SYSTEM,
    SOURCE_VERSION_URL,
    TERMINOLOGY_VERSION_URL,
    Evidence,
    evidence_extension,
)
from clinie.fhir.ids import entity_key, resource_id
from clinie.fhir.references import reference_id
from clinie.fhir.statuses import in_allergy_context, medication_status
from clinie.fhir.systems import (
    ALLERGY_CLINICAL_SYSTEM,
    ALLERGY_VERIFICATION_SYSTEM,
    CLINICAL_STATUS_SYSTEM,
    PARTICIPANT_TYPE_SYSTEM,
    SNOMED,
    UCUM,
    VERIFICATION_STATUS_SYSTEM,
)
from clinie.fhir.systems import CONDITION_CATEGORY_HL7_SYSTEM as CATEGORY_SYSTEM
from clinie.fhir.systems import ICD10CM as ICD10CM_SYSTEM
from clinie.normalize.codings import describe, terminology_versions
from clinie.normalize.text import fold

MAX_MODEL_VERSION = 128  # source_documents.model_version / fhir_resources.model_version
CONDITION_LABELS = ("Problem", "Reason", "ADE")
DOSAGE_LABELS = ("Dosage", "Route", "Frequency", "Duration")
# fields that record *when* clinie processed the note rather than *what* it found (see module docstring)
VOLATILE_FIELDS: dict[str, tuple[str, ...]] = {
    "Provenance": ("recorded",),
    "MedicationStatement": ("dateAsserted",),
}

Span = tuple[int, int]
T = TypeVar("T")


@dataclass(frozen=True)
class MappedResources:
    """The resources derived from one note version by one model version."""

    conditions: list[Condition] = field(default_factory=list)
    medication_statements: list[MedicationStatement] = field(default_factory=list)
    provenance: list[Provenance] = field(default_factory=list)  # one Provenance, or none if nothing was found
    allergies: list[AllergyIntolerance] = field(default_factory=list)

    def resources(self) -> list[Resource]:
        """Conditions, MedicationStatements, AllergyIntolerances, then the Provenance."""
        return [*self.conditions, *self.medication_statements, *self.allergies, *self.provenance]


def patient_stub(patient_ref: str | None) -> Patient | None:
    """A minimal Patient (only the id) for a ``Patient/<id>`` reference, so referenced patients can be listed."""
    pid = reference_id(patient_ref, "Patient")
    return None if pid is None else Patient(id=pid)


def map_extraction(
    note: SourceNote, annotated: Document, model_version: str, *, asserted: datetime | None = None
) -> MappedResources:
    """Map the entities and relations of ``annotated`` (the note's text, annotated by the model) to FHIR."""
    if annotated.id != note.resource_id or annotated.text != note.text:
        raise InvalidInputError(
            ErrorCode.BAD_INTERCHANGE,
            f"annotated document {annotated.id} does not match the text of DocumentReference/{note.resource_id}",
        )
    if not 0 < len(model_version) <= MAX_MODEL_VERSION:
        raise ValueError(f"model_version must have 1..{MAX_MODEL_VERSION} characters")
    if asserted is None:
        asserted = note.date or datetime.now(UTC)
    elif asserted.tzinfo is None:
        asserted = asserted.replace(tzinfo=UTC)
    return _Mapper(note, annotated, model_version, asserted).run()


class _Mapper:
    """One mapping run (holds the note, the indexes of the annotated document and the computed ids)."""

    def __init__(self, note: SourceNote, doc: Document, model_version: str, asserted: datetime) -> None:
        self.note, self.doc, self.model_version, self.asserted = note, doc, model_version, asserted
        usable = [e for e in doc.entities if doc.span_text(e).strip()]
        self.by_id = {e.id: e for e in usable}
        self.condition_spans: dict[Span, list[Entity]] = defaultdict(list)
        self.drugs: dict[Span, Entity] = {}
        self.allergy_drugs: dict[Span, Entity] = {}
        for e in sorted(usable, key=lambda e: (e.start, e.end, e.label, e.id)):
            if e.label == "Drug" and e.subject == "patient":
                if not e.negated and in_allergy_context(doc, e):
                    self.allergy_drugs.setdefault((e.start, e.end), e)
                else:
                    self.drugs.setdefault((e.start, e.end), e)
        # Drug span -> related attribute entities (relation head = attribute, tail = Drug)
        self.attributes: dict[Span, list[Entity]] = defaultdict(list)
        self.ade_drugs: dict[Span, list[Span]] = defaultdict(list)
        self.reactions: dict[Span, list[Entity]] = defaultdict(list)
        for r in doc.relations:
            head, tail = self.by_id.get(r.head), self.by_id.get(r.tail)
            if head is None or tail is None or tail.label != "Drug" or head.label == "Drug":
                continue
            dspan = (tail.start, tail.end)
            if dspan in self.allergy_drugs:
                if head.label == "ADE" and head not in self.reactions[dspan]:
                    self.reactions[dspan].append(head)
                continue
            if head not in self.attributes[dspan]:
                self.attributes[dspan].append(head)
            if head.label == "ADE" and dspan not in self.ade_drugs[(head.start, head.end)]:
                self.ade_drugs[(head.start, head.end)].append(dspan)
        reaction_ids = {e.id for rs in self.reactions.values() for e in rs}
        for e in sorted(usable, key=lambda e: (e.start, e.end, e.label, e.id)):
            if (e.label in CONDITION_LABELS and e.subject == "patient" and not e.hypothetical
                    and e.id not in reaction_ids):
                self.condition_spans[(e.start, e.end)].append(e)
        # concept -> spans (one Condition per concept), in order of first mention
        self.concepts: dict[str, list[Span]] = defaultdict(list)
        self.span_concept: dict[Span, str] = {}
        for span, ents in sorted(self.condition_spans.items()):
            key = _concept_key(doc, ents)
            self.concepts[key].append(span)
            self.span_concept[span] = key
        self.concept_ids = {k: self._id("Condition", k) for k in self.concepts}
        self.condition_ids = {s: self.concept_ids[k] for s, k in self.span_concept.items()}
        self.med_ids = {s: self._id("MedicationStatement", *entity_key(*s)) for s in self.drugs}

    # ------------------------------------------------------------------ helpers

    def _id(self, kind: str, *parts: str | int) -> str:
        return resource_id(kind, self.note.resource_id, self.note.version, self.model_version, *parts)

    def _text(self, e: Entity) -> str:
        return self.doc.span_text(e)

    def _evidence(self, e: Entity) -> Extension:
        return evidence_extension(
            Evidence(
                document_id=self.note.resource_id,
                document_version=self.note.version,
                model_version=self.model_version,
                start=e.start,
                end=e.end,
                label=e.label,
                negated=e.negated,
                confidence=e.score,
            )
        )

    def _subject(self) -> Reference:
        if self.note.patient_ref is not None:
            return Reference(reference=self.note.patient_ref)
        return Reference(extension=[Extension(url=DATA_ABSENT_REASON_URL, valueCode="unknown")])

    def _encounter(self) -> Reference | None:
        return Reference(reference=self.note.encounter_ref) if self.note.encounter_ref else None

    def _refuted(self, span: Span) -> bool:
        return any(e.negated for e in self.condition_spans.get(span, ()))

    # ------------------------------------------------------------------ resources

    def run(self) -> MappedResources:
        conditions = [self._condition(key, spans) for key, spans in self.concepts.items()]
        meds = [self._medication(span, drug) for span, drug in sorted(self.drugs.items())]
        allergies = [self._allergy(span, drug) for span, drug in sorted(self.allergy_drugs.items())]
        targets = [*conditions, *meds, *allergies]
        provenance = [self._provenance(targets)] if targets else []
        return MappedResources(conditions=conditions, medication_statements=meds, provenance=provenance,
                               allergies=allergies)

    def _condition(self, key: str, spans: list[Span]) -> Condition:
        mentions = [e for span in spans for e in self.condition_spans[span]]
        affirmed = [e for span in spans if not self._refuted(span) for e in self.condition_spans[span]]
        refuted = not affirmed
        is_ade = any(e.label == "ADE" for e in mentions)
        category = [_cc(CATEGORY_SYSTEM, "encounter-diagnosis", "Encounter Diagnosis")]
        if is_ade:
            category.append(_cc(CONDITION_CATEGORY_SYSTEM, ADE_CATEGORY_CODE, "Adverse drug event"))
        details = [
            Reference(reference=f"MedicationStatement/{self.med_ids[d]}", display=self._text(self.drugs[d]))
            for d in dict.fromkeys(d for span in spans for d in self.ade_drugs.get(span, ()))
            if d in self.med_ids
        ]
        if refuted:
            verification = _cc(VERIFICATION_STATUS_SYSTEM, "refuted", "Refuted")
            clinical = None
        else:
            verification = (
                _cc(VERIFICATION_STATUS_SYSTEM, "provisional", "Provisional")
                if all(e.uncertain for e in affirmed)
                else _cc(VERIFICATION_STATUS_SYSTEM, "unconfirmed", "Unconfirmed")
            )
            clinical = (
                _cc(CLINICAL_STATUS_SYSTEM, "resolved", "Resolved")
                if all(e.historical for e in affirmed)
                else _cc(CLINICAL_STATUS_SYSTEM, "active", "Active")
            )
        first = (affirmed or mentions)[0]
        return Condition(
            id=self.concept_ids[key],
            extension=[self._evidence(e) for e in mentions],
            clinicalStatus=clinical,
            verificationStatus=verification,
            category=category,
            code=_condition_code(self._text(first), mentions),
            subject=self._subject(),
            encounter=self._encounter(),
            recordedDate=self.note.date,
            evidence=[ConditionEvidence(detail=details)] if details else None,
        )

    def _allergy(self, span: Span, drug: Entity) -> AllergyIntolerance:
        reactions = _unique_spans(sorted(self.reactions.get(span, ()), key=lambda e: (e.start, e.end)))
        return AllergyIntolerance(
            id=self._id("AllergyIntolerance", *entity_key(*span)),
            extension=[self._evidence(drug), *(self._evidence(e) for e in reactions)],
            clinicalStatus=_cc(ALLERGY_CLINICAL_SYSTEM, "active", "Active"),
            verificationStatus=_cc(ALLERGY_VERIFICATION_SYSTEM, "unconfirmed", "Unconfirmed"),
            type="allergy",
            category=["medication"],
            code=_drug_code(self._text(drug), drug),
            patient=self._subject(),
            encounter=self._encounter(),
            recordedDate=self.note.date,
            reaction=[
                AllergyIntoleranceReaction(manifestation=[_condition_code(self._text(e), [e])]) for e in reactions
            ] or None,
        )

    def _medication(self, span: Span, drug: Entity) -> MedicationStatement:
        attrs = sorted(self.attributes.get(span, ()), key=lambda e: (e.start, e.end, e.label))
        reasons = [e for e in attrs if e.label == "Reason" and not e.negated and not self._refuted((e.start, e.end))]
        # a Reason that is not a Condition of the patient (hypothetical "Tylenol for pain if needed", a family
        # member's) keeps its reasonCode text but has no Condition to reference
        reason_spans = [s for s in dict.fromkeys((e.start, e.end) for e in reasons) if s in self.condition_ids]
        used = [e for e in attrs if e.label in (*DOSAGE_LABELS, "Reason")]
        return MedicationStatement(
            id=self.med_ids[span],
            extension=[self._evidence(drug), *(self._evidence(e) for e in used)],
            status=medication_status(self.doc, drug),
            medicationCodeableConcept=_drug_code(self._text(drug), drug),
            subject=self._subject(),
            context=self._encounter(),
            dateAsserted=self.note.date or self.asserted,
            derivedFrom=[Reference(reference=f"DocumentReference/{self.note.resource_id}")],
            reasonCode=[CodeableConcept(text=self._text(e)) for e in _unique_spans(reasons)] or None,
            reasonReference=[Reference(reference=f"Condition/{self.condition_ids[s]}") for s in reason_spans] or None,
            dosage=self._dosage([e for e in attrs if e.label in DOSAGE_LABELS]),
        )

    def _dosage(self, attrs: list[Entity]) -> list[Dosage] | None:
        if not attrs:
            return None
        texts = _dosage_texts([(e.label, self._text(e)) for e in _unique_spans(attrs)])
        of = {label: [self._text(e) for e in attrs if e.label == label] for label in DOSAGE_LABELS}
        dose = _first(dp.parse_dose, of["Dosage"])
        route_text = of["Route"][0] if of["Route"] else None
        route_code = dp.parse_route(route_text) if route_text else None
        freq_text = next((t for t in of["Frequency"] if dp.parse_frequency(t)), None) or (
            of["Frequency"][0] if of["Frequency"] else None
        )
        freq = dp.parse_frequency(freq_text) if freq_text else None
        duration = _first(dp.parse_duration, of["Duration"])
        return [
            Dosage(
                text=" ".join(texts),
                doseAndRate=[_dose_and_rate(dose)] if dose else None,
                route=(
                    CodeableConcept(
                        text=route_text,
                        coding=[Coding(system=route_code.system, code=route_code.code, display=route_code.display)]
                        if route_code
                        else None,
                    )
                    if route_text
                    else None
                ),
                timing=_timing(freq_text, freq, duration),
                asNeededBoolean=True if freq is not None and freq.as_needed else None,
            )
        ]

    def _provenance(self, targets: Sequence[Resource]) -> Provenance:
        doc_ref = f"DocumentReference/{self.note.resource_id}"
        systems = {c.system for r in targets for c in _codings(r) if c.system}
        versions = [
            Extension(url=TERMINOLOGY_VERSION_URL, valueCoding=Coding(system=system, version=version))
            for system, version in terminology_versions(systems).items()
        ]
        return Provenance(
            id=self._id("Provenance"),
            extension=versions or None,
            target=[Reference(reference=f"{r.get_resource_type()}/{r.id}") for r in targets],
            recorded=self.asserted,
            agent=[
                ProvenanceAgent(
                    type=_cc(PARTICIPANT_TYPE_SYSTEM, "assembler", "Assembler"),
                    who=Reference(
                        display=f"clinie model {self.model_version}",
                        identifier=Identifier(system=MODEL_VERSION_SYSTEM, value=self.model_version),
                    ),
                )
            ],
            entity=[
                ProvenanceEntity(
                    role="source",
                    what=Reference(reference=doc_ref, display=f"{doc_ref} version {self.note.version}"),
                    extension=[Extension(url=SOURCE_VERSION_URL, valueString=self.note.version)],
                )
            ],
        )


# ---------------------------------------------------------------------- small builders


def _codings(resource: Resource) -> list[Coding]:
    """The codings of a resource's clinical concepts (what ``clinie.normalize`` coded)."""
    concepts: list[CodeableConcept | None] = []
    if isinstance(resource, Condition):
        concepts.append(resource.code)
    elif isinstance(resource, MedicationStatement):
        concepts.append(resource.medicationCodeableConcept)
    elif isinstance(resource, AllergyIntolerance):
        concepts += [resource.code, *(m for r in resource.reaction or () for m in r.manifestation or ())]
    return [c for cc in concepts if cc is not None for c in cc.coding or ()]


def _cc(system: str, code: str, display: str) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display)])


def _concept_key(doc: Document, mentions: list[Entity]) -> str:
    """The concept a group of same-span mentions names: its ICD-10-CM code, else its normalised text."""
    for e in mentions:
        for c in e.codes:
            if c.startswith(ICD10CM_SYSTEM + "|"):
                return c
    return "text|" + fold(doc.span_text(mentions[0]))


def _condition_code(text: str, mentions: list[Entity]) -> CodeableConcept:
    codes: list[str] = []
    for system in (ICD10CM_SYSTEM, SNOMED):  # the first code of each system the mentions were coded in
        codes += [c for e in mentions for c in e.codes if c.startswith(system + "|")][:1]
    return CodeableConcept(coding=[_coding(c) for c in codes] or None, text=text)


def _coding(token: str) -> Coding:
    """A Coding with system, code, display and version (``clinie.normalize.codings``)."""
    info = describe(token)
    return Coding(system=info.system, code=info.code, display=info.display, version=info.version)


def _drug_code(text: str, drug: Entity) -> CodeableConcept:
    tokens = [f"{INGREDIENT_SYSTEM}|{drug.ingredient}"] if drug.ingredient else []
    tokens += [c for c in drug.codes if c.rpartition("|")[0] and c.rpartition("|")[2]]
    return CodeableConcept(coding=[_coding(t) for t in dict.fromkeys(tokens)] or None, text=text)


def _dosage_texts(items: list[tuple[str, str]]) -> list[str]:
    """Attribute texts in the fixed order Dosage, Route, Frequency, Duration, without repeats: a text equal to
    (case-insensitively) or contained in another kept text is dropped."""
    ordered = sorted(items, key=lambda it: DOSAGE_LABELS.index(it[0]) if it[0] in DOSAGE_LABELS else 99)
    folded = [" ".join(t.lower().split()) for _, t in ordered]
    out: list[str] = []
    for i, (_, text) in enumerate(ordered):
        f = folded[i]
        if any(f == g and j < i for j, g in enumerate(folded)):
            continue
        if any(f != g and re.search(rf"(?<!\w){re.escape(f)}(?!\w)", g) for g in folded):
            continue
        out.append(" ".join(text.split()))
    return out


def _unique_spans(entities: Iterable[Entity]) -> list[Entity]:
    seen: dict[Span, Entity] = {}
    for e in entities:
        seen.setdefault((e.start, e.end), e)
    return list(seen.values())


def _first(parse: Callable[[str], T | None], texts: list[str]) -> T | None:
    for t in texts:
        parsed = parse(t)
        if parsed is not None:
            return parsed
    return None


def _quantity(value: object, unit: str, code: str | None) -> Quantity:
    return Quantity(value=value, unit=unit, system=UCUM if code else None, code=code)


def _dose_and_rate(dose: dp.DoseSpec) -> DosageDoseAndRate:
    if dose.high is None:
        return DosageDoseAndRate(doseQuantity=_quantity(dose.value, dose.unit, dose.code))
    return DosageDoseAndRate(
        doseRange=Range(
            low=_quantity(dose.value, dose.unit, dose.code), high=_quantity(dose.high, dose.unit, dose.code)
        )
    )


def _timing(freq_text: str | None, freq: dp.FrequencySpec | None, duration: dp.DurationSpec | None) -> Timing | None:
    repeat: dict[str, object] = {}
    if freq is not None and freq.has_repeat:
        repeat.update(
            frequency=freq.frequency, period=freq.period, periodUnit=freq.period_unit, periodMax=freq.period_max
        )
        if freq.when:
            repeat["when"] = list(freq.when)
    if duration is not None:
        if duration.high is None:
            repeat["boundsDuration"] = Duration(
                value=duration.value, unit=duration.unit_display, system=UCUM, code=duration.unit
            )
        else:
            low = _quantity(duration.value, duration.unit_display, duration.unit)
            repeat["boundsRange"] = Range(low=low, high=_quantity(duration.high, duration.unit_display, duration.unit))
    if not repeat and not freq_text:
        return None
    return Timing(
        code=CodeableConcept(text=freq_text) if freq_text else None,
        repeat=TimingRepeat(**{k: v for k, v in repeat.items() if v is not None}) if repeat else None,
    )
