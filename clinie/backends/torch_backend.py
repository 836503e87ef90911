"""In-process PyTorch backend: the embedded default, unit tests, and ``clinie predict``."""

from __future__ import annotations

from pathlib import Path

import torch

from clinie.model.checkpoint import load_model
from clinie.model.network import ClinieNet
from clinie.model.runtime import NoteInputs, NoteOutput, run_notes
from clinie.text.tokenize import WordPieceTokenizer


class TorchBackend:
    def __init__(self, net: ClinieNet, tokenizer: WordPieceTokenizer, model_version: str = "local",
                 device: str = "cpu") -> None:
        self.net = net.to(device).eval()
        self.tokenizer = tokenizer
        self.schema = net.schema
        self.model_version = model_version
        self.device = device

    @classmethod
    def from_dir(cls, model_dir: str | Path, model_version: str | None = None, device: str = "cpu") -> TorchBackend:
        net, tok = load_model(model_dir, device=device)
        return cls(net, tok, model_version or Path(model_dir).name, device)

    def infer(self, notes: list[NoteInputs]) -> list[NoteOutput]:
        return run_notes(self.net, notes, self.device)

    def close(self) -> None:
        if self.device != "cpu":
            torch.cuda.empty_cache()
