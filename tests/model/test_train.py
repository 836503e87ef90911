from __future__ import annotations

import json
import random
from pathlib import Path

from clinie.document import Document, Entity, Relation
from clinie.io import write_documents
from clinie.model.checkpoint import load_model
from clinie.model.train import CorpusSpec, TrainConfig, epoch_sample, train

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
    assert result["best"]["sets"]["train"]["strict_entity_f1"] > 0.5, result["best"]
    assert (tmp_path / "run" / "best" / "weights.pt").exists()
    history = [json.loads(x) for x in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert len(history) >= 1
    load_model(tmp_path / "run" / "best")


def test_mixture_weights_repeat_and_subsample() -> None:
    a, b = list(range(10)), list(range(100, 104))
    sample = epoch_sample([(a, 2.0), (b, 0.5)], random.Random(0))  # type: ignore[list-item]
    assert sorted(x for x in sample if x < 100) == sorted(a * 2)
    assert len([x for x in sample if x >= 100]) == 2


def test_config_accepts_plain_paths_and_weighted_corpora() -> None:
    cfg = TrainConfig(train=["a.jsonl", CorpusSpec(path="b.jsonl", weight=3)], dev=["d.jsonl"])
    assert [(c.path, c.weight) for c in cfg.corpora] == [("a.jsonl", 1.0), ("b.jsonl", 3.0)]


def test_init_from_and_resume(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "train.jsonl"
    write_documents(data, [gold()] * 4)
    net = make_tiny_net(max_segment_tokens=32)
    cfg = TrainConfig(train=[str(data)], dev=[str(data)], output_dir=str(tmp_path / "a"), epochs=2, patience=5,
                      batch_tokens=256, lr_encoder=3e-3, lr_head=1e-2, model=net.config)
    train(cfg, net_and_tokenizer=(net, tokenizer))
    assert (tmp_path / "a" / "last" / "trainer.pt").exists()
    # resume: a longer run continues after the two finished epochs
    more = cfg.model_copy(update={"epochs": 3})
    result = train(more, net_and_tokenizer=(make_tiny_net(max_segment_tokens=32), tokenizer), resume=True)
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    # init_from: a new run starts from the saved weights
    start = cfg.model_copy(update={"output_dir": str(tmp_path / "b"), "init_from": str(tmp_path / "a" / "last"),
                                   "epochs": 1})
    fresh = make_tiny_net(max_segment_tokens=32, seed=5)
    from clinie.model.train import init_weights
    init_weights(fresh, tmp_path / "a" / "last")
    loaded, _ = load_model(tmp_path / "a" / "last")
    for (k, v), (k2, v2) in zip(fresh.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and v.shape == v2.shape
    assert train(start, net_and_tokenizer=(make_tiny_net(max_segment_tokens=32, seed=5), tokenizer))["history"]
