"""The streaming extractor: Kafka DocumentReferences in, FHIR resources in PostgreSQL out."""
