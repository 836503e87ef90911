from __future__ import annotations

import json
from pathlib import Path

from clinie.document import Document, Entity, Relation
from clinie.io import write_documents
from clinie.model.checkpoint import load_model
from clinie.model.train import TrainConfig, train

from .conftest import make_tiny_net

TEXT = "She took ibuprofen 400 mg orally for headache and developed a rash."


def gold() -> Document:
    t = TEXT
    ents = [
        Entity("T1", "Drug", t.index("ibuprofen"), t.index("ibuprofen") + 9),
        Entity("T2", "Dosage", t.index("400 mg"), t.index("400 mg") + 6),
        Entity("T3", "Route", t.index("orally"), t.index("orally") + 6),
        Entity("T4", "Reason", t.index("headache"), t.index("headache") + 8),
        Entity("T5", "ADE", t.index("rash"), t.index("rash") + 4),
    ]
    rels = [Relation("Dosage-Drug", "T2", "T1"), Relation("Route-Drug", "T3", "T1"),
            Relation("Reason-Drug", "T4", "T1"), Relation("ADE-Drug", "T5", "T1")]
    return Document(id="g1", text=t, labels=("Drug", "Dosage", "Route", "Reason", "ADE"), entities=tuple(ents),
                    relations=tuple(rels))


def test_tiny_training_run_learns_and_checkpoints(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "train.jsonl"
    write_documents(data, [gold()] * 8)
    net = make_tiny_net(max_segment_tokens=32)
    net.train()
    cfg = TrainConfig(train=[str(data)], dev=[str(data)], output_dir=str(tmp_path / "run"), epochs=25, patience=25,
                      batch_tokens=256, lr_encoder=3e-3, lr_head=1e-2, model=net.config)
    result = train(cfg, net_and_tokenizer=(net, tokenizer))
    assert result["best"]["strict_entity_f1"] > 0.5, result["best"]
    assert (tmp_path / "run" / "best" / "weights.pt").exists()
    history = [json.loads(x) for x in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert len(history) >= 1
    load_model(tmp_path / "run" / "best")
