"""The shipped PHEE corpus is reproducible from the PHEE JSON with `clinie convert phee`."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinie.convert.phee import phee_to_document, read_phee
from clinie.errors import ErrorCode, InvalidInputError
from clinie.io import document_to_json, read_documents


@pytest.mark.parametrize("split", ["dev", "train"])
def test_reproduces_the_shipped_phee_corpus(shared_data: Path, split: str) -> None:
    mine = [document_to_json(d) for d in read_phee(shared_data / "phee" / f"{split}.jsonl")]
    shipped = [document_to_json(d) for d in read_documents(shared_data / "corpus" / f"phee-{split}.jsonl")]
    assert mine == shipped


def test_offsets_that_miss_the_sentence_are_reported() -> None:
    record = {"id": "1_1", "context": "aspirin SECRET", "annotations": [{"events": [
        {"event_type": "Adverse_event", "Treatment": {"Drug": {"text": [["aspirin"]], "start": [[3]]}}}]}]}
    with pytest.raises(InvalidInputError) as info:
        phee_to_document(record, "phee.json:7")
    assert info.value.code == ErrorCode.OFFSET_MISMATCH and "phee.json:7" in info.value.message
    assert "SECRET" not in info.value.message and "aspirin" not in info.value.message


def test_not_phee(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"id": "1"}\n')
    with pytest.raises(InvalidInputError) as info:
        list(read_phee(tmp_path / "x.jsonl"))
    assert info.value.code == ErrorCode.BAD_ANNOTATION and "x.jsonl:1" in info.value.message
