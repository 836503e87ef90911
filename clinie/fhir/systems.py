"""The external code-system URLs clinie writes and searches (one source; clinie's own URLs are in ``extensions``)."""

from __future__ import annotations

SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
CLINICAL_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY_HL7_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
PARTICIPANT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ALLERGY_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
MED_STATUS_SYSTEM = "http://hl7.org/fhir/CodeSystem/medication-statement-status"
OBSERVATION_VALUE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
ALLERGY_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

__all__ = [
    "ALLERGY_CLINICAL_SYSTEM",
    "ALLERGY_VERIFICATION_SYSTEM",
    "CLINICAL_STATUS_SYSTEM",
    "CONDITION_CATEGORY_HL7_SYSTEM",
    "ICD10CM",
    "MED_STATUS_SYSTEM",
    "OBSERVATION_VALUE_SYSTEM",
    "PARTICIPANT_TYPE_SYSTEM",
    "RXNORM",
    "SNOMED",
    "UCUM",
    "VERIFICATION_STATUS_SYSTEM",
]
# clinie's own code system of generic drug ingredients (lower-case names; coding.code = the ingredient)
INGREDIENT = "https://clinie.dev/fhir/CodeSystem/ingredient"
