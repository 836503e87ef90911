"""CoNLL/BIO -> interchange with offsets found exactly in the notes, and interchange -> CoNLL -> interchange."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinie.convert.conll import read_conll, write_conll
from clinie.convert.labelmap import LabelMap
from clinie.errors import ErrorCode, InvalidInputError
from clinie.io import read_documents

FIXTURES = Path(__file__).parent / "fixtures" / "conll"


def test_offsets_against_the_notes_bio_bioes_and_hash_tokens() -> None:
    c1, c2 = read_conll(FIXTURES / "two.conll", FIXTURES)
    assert c1.id == "c1" and c1.text == (FIXTURES / "c1.txt").read_text()
    got = [(e.label, c1.text[e.start:e.end]) for e in c1.entities]
    assert got == [("Problem", "chest pain"), ("Drug", "metformin"), ("Dosage", "500 mg"), ("Dosage", "4")]
    # U-Problem ends the entity, so the I-Problem after an O starts a new one (IOB1 style)
    assert [(e.label, c2.text[e.start:e.end]) for e in c2.entities] == [("Problem", "Fever"), ("Problem", "rash")]


def test_without_notes_the_text_is_rebuilt() -> None:
    c1, _ = read_conll(FIXTURES / "two.conll", label_map=LabelMap(source="s", labels=("Problem", "Drug")))
    assert c1.text == "Denies chest pain .\nStarted metformin 500 mg # 4"
    assert [c1.text[e.start:e.end] for e in c1.entities] == ["chest pain", "metformin", "500 mg", "4"]
    assert c1.source == "s" and c1.labels == ("Problem", "Drug")


def test_token_not_in_the_note_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "c1.txt").write_text("Denies chest ache. SECRET")
    (tmp_path / "x.conll").write_text("# doc_id = c1\nDenies\tO\nchest\tB-Problem\npain\tI-Problem\n")
    with pytest.raises(InvalidInputError) as info:
        list(read_conll(tmp_path / "x.conll", tmp_path))
    assert info.value.code == ErrorCode.OFFSET_MISMATCH
    assert "x.conll:4:" in info.value.message and "SECRET" not in info.value.message


@pytest.mark.parametrize("body", ["word\tX-Problem\n", "lonely\n"])
def test_malformed_lines(tmp_path: Path, body: str) -> None:
    (tmp_path / "x.conll").write_text("-DOCSTART- O\n" + body)
    with pytest.raises(InvalidInputError) as info:
        list(read_conll(tmp_path / "x.conll"))
    assert info.value.code == ErrorCode.BAD_ANNOTATION and "x.conll:2:" in info.value.message


@pytest.mark.parametrize("name", ["maccrobat-dev", "maccrobat-test", "aci-notes-test"])
def test_round_trip_on_shared_corpora_keeps_every_non_overlapping_entity(shared_data: Path, tmp_path: Path,
                                                                         name: str) -> None:
    docs = read_documents(shared_data / "corpus" / f"{name}.jsonl")
    for doc in docs:
        with open(tmp_path / f"{doc.id}.txt", "w", encoding="utf-8", newline="") as fh:
            fh.write(doc.text)
    stats = write_conll(tmp_path / "x.conll", docs)
    back = list(read_conll(tmp_path / "x.conll", tmp_path))
    assert [d.id for d in back] == [d.id for d in docs] and [d.text for d in back] == [d.text for d in docs]
    kept = lost = 0
    for doc, again in zip(docs, back, strict=True):
        gold = set()
        for e in doc.entities:  # tokens hold no whitespace: compare spans without edge whitespace
            t = doc.text[e.start:e.end]
            gold.add((e.label, e.start + len(t) - len(t.lstrip()), e.end - len(t) + len(t.rstrip())))
        got = {(e.label, e.start, e.end) for e in again.entities}
        assert got <= gold
        kept += len(got)
        lost += len(gold) - len(got)
    assert lost == stats.skipped  # only entities that overlap another one are lost
    assert kept > 500
