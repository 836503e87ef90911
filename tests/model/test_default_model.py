"""The shipped default model on a long note: entities in every window, offsets exact by construction."""

from __future__ import annotations

import pytest

from clinie.backends.torch_backend import TorchBackend
from clinie.document import Document
from clinie.model.repository import default_repository, version_dir, versions
from clinie.pipeline import Annotator

DRUGS = ["metformin", "lisinopril", "atorvastatin", "amoxicillin", "warfarin", "omeprazole", "sertraline",
         "levothyroxine", "amlodipine", "gabapentin", "prednisone", "furosemide"]


def long_note(n_sentences: int) -> tuple[str, list[tuple[int, int]]]:
    """Synthetic text; returns it with the exact character span of each drug mention (known by construction)."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for i in range(n_sentences):
        drug = DRUGS[i % len(DRUGS)]
        prefix = f"On day {i + 1} the patient was started on "
        sentence = f"{prefix}{drug} 20 mg orally twice daily for hypertension, and developed a mild rash. "
        spans.append((pos + len(prefix), pos + len(prefix) + len(drug)))
        parts.append(sentence)
        pos += len(sentence)
    return "".join(parts), spans


@pytest.fixture(scope="module")
def extractor() -> Annotator:
    backend = TorchBackend.from_dir(version_dir(default_repository()))
    return Annotator(backend, backend.tokenizer, backend.net.config)


def test_five_times_longer_note_has_entities_in_every_window(extractor: Annotator) -> None:
    text, drug_spans = long_note(60)
    doc = extractor.annotate([Document(id="long", text=text)])[0]
    window = extractor.config.max_segment_tokens
    assert doc.segments[-1].token_end >= 5 * window, "the note is at least five windows long"
    assert len(doc.segments) >= 5
    drugs = [(e.start, e.end) for e in doc.entities if e.label == "Drug"]
    # every window (its kept character range) holds predicted entities
    for seg in doc.segments:
        inside = [e for e in doc.entities if seg.char_start <= e.start < seg.char_end]
        assert inside, f"no entity in window {seg.index}"
    # Drug predictions sit exactly on the known drug mentions
    assert len(set(drugs) & set(drug_spans)) >= 0.9 * len(drug_spans)
    for e in doc.entities:
        assert 0 <= e.start < e.end <= len(text)
        assert text[e.start : e.end] == text[e.start : e.end].strip()


def test_relations_link_attributes_to_drugs(extractor: Annotator) -> None:
    text, _ = long_note(3)
    doc = extractor.annotate([Document(id="short", text=text)])[0]
    labels = {r.label for r in doc.relations}
    assert {"Dosage-Drug", "Route-Drug", "Frequency-Drug"} & labels
    for r in doc.relations:
        assert doc.entity(r.tail).label == "Drug"


def test_every_shipped_version_carries_its_thresholds() -> None:
    """The thresholds are part of the model version: written in each version's config.json, not in code."""
    import json

    shipped = versions(default_repository())
    assert shipped, "no shipped model version found"
    for v in shipped:
        config = json.loads((version_dir(default_repository(), version=v) / "config.json").read_text())
        assert 0.0 <= config["relation_threshold"] <= 1.0, v
        assert 0.0 <= config["negation_threshold"] <= 1.0, v
