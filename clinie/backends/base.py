from __future__ import annotations

from typing import Protocol

from clinie.model.runtime import NoteInputs, NoteOutput
from clinie.schema import LabelSchema


class InferenceBackend(Protocol):
    """Runs the model on encoded notes. All windows of one note travel together (the BiLSTM spans the note)."""

    model_version: str
    schema: LabelSchema

    def infer(self, notes: list[NoteInputs]) -> list[NoteOutput]: ...

    def close(self) -> None: ...
