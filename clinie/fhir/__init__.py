"""FHIR R4 (R4B models) in and out of clinie.

- ``clinie.fhir.docref``: parse and validate an incoming ``DocumentReference`` into a :class:`SourceNote`.
- ``clinie.fhir.mapping``: map an annotated document to ``Condition``, ``MedicationStatement`` and ``Provenance``.
- ``clinie.fhir.dosage``: parse dosage, route, frequency and duration mentions into structured values.
- ``clinie.fhir.ids``: deterministic resource ids; ``clinie.fhir.extensions``: clinie's extension URLs.

Nothing is imported here, so importing ``clinie.fhir`` stays cheap and free of side effects.
"""
