"""benchmarks/serialize_speed.py: its notes, the old store code it patches in, and the paired timing (no database)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.serialize_speed import legacy_json, legacy_rows, legacy_store, load_notes, paired, rows
from clinie.fhir.serialize import resource_json
from clinie.storage import repository


def test_notes_map_and_both_paths_agree(shared_data: Path) -> None:
    notes = load_notes(shared_data / "corpus" / "aci-notes-dev.jsonl", 2)
    assert len(notes) == 2
    resources = [r for n in notes for r in n.resources()]
    assert any(r.get_resource_type() == "Patient" for r in resources)  # the stub is counted, as the store writes it
    assert all(resource_json(r) == legacy_json(r) for r in resources)
    result = paired(notes, legacy_rows, rows, 2)
    assert set(result) >= {"old_ms_per_note", "new_ms_per_note", "old_ms_per_resource", "new_ms_per_resource",
                           "speedup_median", "saved_ms_per_note"}
    assert result["old_ms_per_note"] > 0 and result["new_ms_per_note"] > 0


def test_legacy_store_is_restored() -> None:
    before = repository._as_json, repository._with_meta
    with legacy_store():
        assert repository._as_json is not before[0]
    assert (repository._as_json, repository._with_meta) == before
