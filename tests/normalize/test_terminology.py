"""RxNorm (RXNCONSO.RRF) and SNOMED CT (RF2 snapshot) loaders on tiny made-up fixtures in the exact formats, their
use in normalisation and the Provenance terminology versions (the CLI: tests/services/cli/test_terminology_cli.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinie.document import Document, Entity
from clinie.fhir.docref import parse_document_reference
from clinie.fhir.extensions import TERMINOLOGY_VERSION_URL
from clinie.fhir.mapping import map_extraction
from clinie.normalize import codings
from clinie.normalize.icd import ICD10CM_SYSTEM, INDEX_FORMAT, IcdIndex
from clinie.normalize.stage import Normalizer
from clinie.normalize.terminology import (
    RXNORM_SYSTEM,
    SNOMED_SYSTEM,
    Terminology,
    TerminologyFileError,
    load_rxnorm,
    load_snomed,
)
from tests.fhir.factories import docref_dict, entity

FIXTURES = Path(__file__).parent / "fixtures"
RXNORM = FIXTURES / "rxnorm"
SNOMED = FIXTURES / "snomed"
SNOMED_VERSION = f"{SNOMED_SYSTEM}/900000000000207008/version/20990101"


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(codings, "_REGISTERED", {})
    yield


def test_rxnorm_loader() -> None:
    rx = load_rxnorm(RXNORM / "RXNCONSO.RRF")
    assert rx.system == RXNORM_SYSTEM and rx.version == "20AA_240101F"  # SVER of RXNSAB.RRF
    assert rx.lookup("Metformin", ("IN",)) == "9000001" and rx.displays["9000001"] == "metformin"
    assert rx.lookup("glucophage", ("BN",)) == "9000002" and rx.lookup("glucophage", ("IN",)) is None
    assert rx.lookup("metformin hydrochloride", ("PIN",)) == "9000003"
    assert "9000005" not in rx.displays  # SCD: not an ingredient or brand
    assert "9000009" not in rx.displays  # suppressed (SUPPRESS=O)
    assert rx.lookup("metformine", ("IN", "SU")) is None  # MTHSPL row, not SAB=RXNORM
    assert load_rxnorm(RXNORM).displays == rx.displays  # the release folder works too


def test_rxnorm_loader_rejects_other_formats(tmp_path: Path) -> None:
    bad = tmp_path / "RXNCONSO.RRF"
    bad.write_text("9000001|ENG|metformin|\n")
    with pytest.raises(TerminologyFileError):
        load_rxnorm(bad)


def test_snomed_loader() -> None:
    sct = load_snomed(SNOMED)
    assert sct.system == SNOMED_SYSTEM and sct.version == SNOMED_VERSION
    assert sct.lookup("Type II diabetes mellitus", ("disorder",)) == "9100001"
    assert sct.displays["9100001"] == "Type 2 diabetes mellitus"  # the synonym equal to the FSN without its tag
    assert sct.lookup("chest pain", ("disorder", "finding")) == "9100004"
    assert sct.lookup("metformin", ("substance",)) == "9100003"
    assert sct.lookup("metformin product", ("substance",)) is None  # a product, not a substance
    assert sct.lookup("retired diabetes concept", ("disorder",)) is None  # inactive concept
    assert sct.lookup("hypertensive disease, old term", ("disorder",)) is None  # inactive description
    assert load_snomed(SNOMED / "Snapshot" / "Terminology").version == SNOMED_VERSION


def test_snomed_loader_rejects_other_headers(tmp_path: Path) -> None:
    (tmp_path / "sct2_Concept_Snapshot_X.txt").write_text("id,effectiveTime\n1,2\n")
    with pytest.raises(TerminologyFileError):
        load_snomed(tmp_path)


def test_save_and_load(tmp_path: Path) -> None:
    t = Terminology.from_release_files(RXNORM, SNOMED)
    t.save(tmp_path / "t.json.gz")
    back = Terminology.load(tmp_path / "t.json.gz")
    assert back.versions == {RXNORM_SYSTEM: "20AA_240101F", SNOMED_SYSTEM: SNOMED_VERSION}
    assert back.ingredient_codes("amoxicillin / clavulanate") == [f"{RXNORM_SYSTEM}|9000006",
                                                                  f"{RXNORM_SYSTEM}|9000007"]


def test_normalisation_mapping_and_provenance_versions() -> None:
    index = IcdIndex({"format": INDEX_FORMAT, "version": "test", "displays": {"E11.9": "Type 2 diabetes mellitus"},
                      "tiers": [{"type 2 diabetes mellitus": ["E11.9"]}, {}, {}], "ade": {}})
    normalizer = Normalizer(index, terminology=Terminology.from_release_files(RXNORM, SNOMED))
    text = "Assessment: Type 2 diabetes mellitus.\nPlan: metformin 500 mg daily.\n"
    note = parse_document_reference(docref_dict("doc-t", text))
    ents = [entity(text, "Type 2 diabetes mellitus", "Problem", "T1"), entity(text, "metformin", "Drug", "T2")]
    doc: Document = normalizer(note.document.with_annotations(ents, []))
    assert doc.entity("T1").codes == (f"{ICD10CM_SYSTEM}|E11.9", f"{SNOMED_SYSTEM}|9100001")
    assert {f"{RXNORM_SYSTEM}|9000001", f"{SNOMED_SYSTEM}|9100003"} <= set(doc.entity("T2").codes)
    assert normalizer.versions[SNOMED_SYSTEM] == SNOMED_VERSION

    mapped = map_extraction(note, doc, "clinie_ie/test")
    (cond,) = mapped.conditions
    sct = next(c for c in cond.code.coding if c.system == SNOMED_SYSTEM)
    assert (sct.code, sct.display, sct.version) == ("9100001", "Type 2 diabetes mellitus", SNOMED_VERSION)
    rx = next(c for c in mapped.medication_statements[0].medicationCodeableConcept.coding if c.system == RXNORM_SYSTEM)
    assert (rx.code, rx.display, rx.version) == ("9000001", "metformin", "20AA_240101F")
    prov = json.loads(mapped.provenance[0].model_dump_json())
    versions = {e["valueCoding"]["system"]: e["valueCoding"]["version"] for e in prov["extension"]
                if e["url"] == TERMINOLOGY_VERSION_URL}
    assert versions[SNOMED_SYSTEM] == SNOMED_VERSION and versions[RXNORM_SYSTEM] == "20AA_240101F"
    assert versions[ICD10CM_SYSTEM] == "2026"


def test_entity_without_terminology_is_unchanged() -> None:
    doc = Document("d", "metformin", entities=(Entity("T1", "Drug", 0, 9),))
    index = IcdIndex({"format": INDEX_FORMAT, "version": "t", "displays": {}, "tiers": [{}, {}, {}], "ade": {}})
    codes = Normalizer(index)(doc).entity("T1").codes
    assert not any(c.startswith((RXNORM_SYSTEM, SNOMED_SYSTEM)) for c in codes)

