"""brat standoff -> interchange (label map, events, attributes, discontinuous spans) and back, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinie.convert.brat import parse_ann, read_brat_folder, write_brat_folder
from clinie.convert.labelmap import LabelMap, load_label_map
from clinie.errors import ErrorCode, InvalidInputError
from clinie.io import document_to_json, read_documents

FIXTURES = Path(__file__).parent / "fixtures" / "brat"
REPO = Path(__file__).resolve().parents[2]
MACCROBAT_MAP = REPO / "configs" / "label-maps" / "maccrobat.toml"


def _spans(doc_json: dict) -> list[tuple[str, str, bool]]:
    return [(e["label"], e["text"], e["negated"]) for e in doc_json["entities"]]


def test_maccrobat_style_note_with_the_label_map() -> None:
    [doc] = read_brat_folder(FIXTURES / "maccrobat-style", load_label_map(MACCROBAT_MAP))
    out = document_to_json(doc)
    assert out["id"] == "n1" and out["source"] == "maccrobat"
    assert out["labels"] == ["Problem", "Drug", "Dosage", "Route", "Frequency", "Duration"]
    # kept types in .ann order (the discontinuous 'rash;fever' split in two, POLARITY NEG on both), then the
    # linked attributes in relation order; Age is dropped, Frequency kept because MODIFY links it (Arg1 = the drug)
    assert _spans(out) == [
        ("Problem", "chest pain", True), ("Drug", "metformin", False), ("Problem", "type 2 diabetes", False),
        ("Problem", "rash", True), ("Problem", "fever", True),
        ("Dosage", "500 mg", False), ("Route", "PO", False), ("Frequency", "BID", False),
    ]
    assert [e["id"] for e in out["entities"]] == [f"T{k}" for k in range(1, 9)]
    assert out["relations"] == [
        {"label": "Dosage-Drug", "head": "T6", "tail": "T2"},
        {"label": "Route-Drug", "head": "T7", "tail": "T2"},
        {"label": "Frequency-Drug", "head": "T8", "tail": "T2"},
    ]


def test_identity_map_is_recursive_and_keeps_types_and_relations() -> None:
    docs = [document_to_json(d) for d in read_brat_folder(FIXTURES / "clinie", LabelMap(source="mine"))]
    assert [d["id"] for d in docs] == ["n3", "sub/n2"]
    assert _spans(docs[1]) == [("Drug", "Lisinopril", False), ("Dosage", "10 mg", False)]
    assert docs[1]["relations"] == [{"label": "Dosage-Drug", "head": "T2", "tail": "T1"}]
    assert docs[0]["source"] == "mine" and "labels" not in docs[0]


def test_join_keeps_a_discontinuous_span_whole(tmp_path: Path) -> None:
    lmap = LabelMap(discontinuous="join")
    text = "rash, no fever"
    ann = parse_ann("T1\tProblem 0 4;9 14\trash fever\n", text, "x.ann")
    from clinie.convert.brat import brat_to_document

    doc = brat_to_document("x", text, ann, lmap)
    assert [(e.start, e.end) for e in doc.entities] == [(0, 14)]


@pytest.mark.parametrize(("line", "code", "where"), [
    ("T1\tProblem 0 4\n", ErrorCode.BAD_ANNOTATION, "note.ann:1:"),
    ("T1\tProblem zero 4\tpain\n", ErrorCode.BAD_ANNOTATION, "note.ann:1:"),
    ("\nR1\tMODIFY Arg1:T1\n", ErrorCode.BAD_ANNOTATION, "note.ann:2:"),
    ("X1\twhat\n", ErrorCode.BAD_ANNOTATION, "note.ann:1:"),
    ("\ufeffT1\tProblem 0 4\tpain\nE1\tProblem:T2\n", ErrorCode.BAD_ANNOTATION, "note.ann:2:"),
    ("T1\tProblem 0 4\tache\n", ErrorCode.OFFSET_MISMATCH, "note.ann:1:"),
    ("T1\tProblem 0 400\tpain\n", ErrorCode.OFFSET_MISMATCH, "note.ann:1:"),
])
def test_malformed_lines_name_file_and_line_never_the_note(line: str, code: ErrorCode, where: str) -> None:
    text = "pain SECRET-NOTE-TEXT"
    with pytest.raises(InvalidInputError) as info:
        parse_ann(line, text, "note.ann")
    assert info.value.code == code
    assert where in info.value.message and "SECRET" not in info.value.message and "pain" not in info.value.message


def test_relation_to_a_missing_entity_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("pain")
    (tmp_path / "a.ann").write_text("T1\tProblem 0 4\tpain\nR1\tX Arg1:T1 Arg2:T9\n")
    with pytest.raises(InvalidInputError) as info:
        list(read_brat_folder(tmp_path))
    assert info.value.code == ErrorCode.BAD_ANNOTATION and "a.ann:2:" in info.value.message


def test_unmapped_type_is_an_error_not_a_silent_drop(tmp_path: Path) -> None:
    lmap_path = tmp_path / "m.toml"
    lmap_path.write_text('[entities]\nMedication = "Drug"\n')
    with pytest.raises(InvalidInputError) as info:
        list(read_brat_folder(FIXTURES / "maccrobat-style", load_label_map(lmap_path)))
    assert info.value.code == ErrorCode.BAD_LABEL_MAP and "Sign_symptom" in info.value.message


@pytest.mark.parametrize("split", ["dev", "test", "train"])
def test_label_map_reproduces_the_shipped_maccrobat_corpus(shared_data: Path, split: str) -> None:
    docs = read_brat_folder(shared_data / "maccrobat" / split, load_label_map(MACCROBAT_MAP))
    mine = [document_to_json(d) for d in docs]
    shipped = [document_to_json(d) for d in read_documents(shared_data / "corpus" / f"maccrobat-{split}.jsonl")]
    assert mine == shipped


@pytest.mark.parametrize("name", ["maccrobat-dev", "maccrobat-test", "maccrobat-train", "phee-dev",
                                  "aci-notes-test"])
def test_interchange_to_brat_and_back_is_exact(shared_data: Path, tmp_path: Path, name: str) -> None:
    docs = read_documents(shared_data / "corpus" / f"{name}.jsonl")
    assert write_brat_folder(tmp_path, docs) == len(docs)
    back = {d.id: d for d in read_brat_folder(tmp_path, LabelMap(source=docs[0].source, labels=docs[0].labels))}
    assert [document_to_json(back[d.id]) for d in docs] == [document_to_json(d) for d in docs]
