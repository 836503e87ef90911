"""benchmarks/stream.py: its input wrapping and options (the benchmark itself is run by hand, never as a test)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.stream import as_document_reference, load_notes, parse_args, percentiles
from clinie.fhir.docref import parse_document_reference


def test_aci_notes_wrap_into_valid_document_references(shared_data: Path) -> None:
    source = shared_data / "notes" / "aci_bench_notes.jsonl"
    payloads = load_notes(source, None)
    texts = [json.loads(line)["text"] for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(payloads) == len(texts) == 207
    ids = set()
    for payload, text in zip(payloads, texts, strict=True):
        note = parse_document_reference(payload, max_chars=10**7)
        assert note.document.text == text
        ids.add(note.resource_id)
    assert len(ids) == 207, "distinct FHIR ids"
    assert len(load_notes(source, 20)) == 20


def test_fhir_id_characters() -> None:
    res = as_document_reference("clef_taskC_test3-D2N168", "Aspirin.")
    assert res["id"] == "clef-taskC-test3-D2N168"
    assert res["subject"] == {"reference": "Patient/clef-taskC-test3-D2N168"}


def test_options() -> None:
    args = parse_args(["--notes", "20", "--max-in-flight", "8", "--protocol", "grpc", "--json", "out.json"])
    assert (args.notes, args.max_in_flight, args.protocol, args.json) == (20, 8, "grpc", Path("out.json"))


def test_percentiles() -> None:
    p = percentiles([float(i) for i in range(1, 101)])
    assert p["p50"] == 50.5 and p["max"] == 100.0
    assert percentiles([])["p50"] is None
