from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clinie.backends.torch_backend import TorchBackend
from clinie.document import Document
from clinie.io import document_to_json
from clinie.model.checkpoint import load_model, save_model
from clinie.model.encode import preprocess
from clinie.model.runtime import run_notes
from clinie.pipeline import Annotator
from clinie.text.tokenize import WordPieceTokenizer

from .conftest import make_tiny_net

TEXTS = [
    "Metformin 500 mg PO BID was started for diabetes.",
    "No chest pain. " * 30 + "Aspirin 81 mg daily.",
    "Rash after amoxicillin.",
]


def docs() -> list[Document]:
    return [Document(id=f"d{i}", text=t) for i, t in enumerate(TEXTS)]


def as_json(ds: list[Document]) -> list[dict]:  # type: ignore[type-arg]
    return [document_to_json(d) for d in ds]


def without_scores(ds: list[Document]) -> list[dict]:  # type: ignore[type-arg]
    """Annotations without their confidences: padding a window to a batch changes float sums in the last bits."""
    out = as_json(ds)
    for d in out:
        for item in d["entities"] + d["relations"]:
            item.pop("score", None)
    return out


def scores(ds: list[Document]) -> list[float]:
    return [x.score or 0.0 for d in ds for x in (*d.entities, *d.relations)]


def test_forward_shapes(tiny_net, tokenizer: WordPieceTokenizer) -> None:  # type: ignore[no-untyped-def]
    p = preprocess(docs()[1], tokenizer, tiny_net.config)
    assert p.encoded.input_ids.shape[0] > 1, "the long note needs several windows"
    out = tiny_net(
        input_ids=torch.from_numpy(p.encoded.input_ids), attention_mask=torch.from_numpy(p.encoded.attention_mask),
        keep_mask=torch.from_numpy(p.encoded.keep_mask), note_index=torch.zeros(p.encoded.input_ids.shape[0],
                                                                                    dtype=torch.long))
    assert out.ner_logits.shape == (1, p.encoded.num_tokens, 8, 3)
    assert out.negation_logits.shape == (1, p.encoded.num_tokens)


def test_batched_and_single_predictions_agree(tiny_net, tokenizer) -> None:  # type: ignore[no-untyped-def]
    extractor = Annotator(TorchBackend(tiny_net, tokenizer), tokenizer, tiny_net.config)
    batched = extractor.annotate(docs())
    single = [extractor.annotate([d])[0] for d in docs()]
    assert without_scores(batched) == without_scores(single)
    np.testing.assert_allclose(scores(batched), scores(single), atol=1e-3)
    assert any(d.entities for d in batched), "the tiny net predicts spans"


def test_runtime_batched_outputs_identical(tiny_net, tokenizer) -> None:  # type: ignore[no-untyped-def]
    notes = [preprocess(d, tokenizer, tiny_net.config).inputs for d in docs()]
    together = run_notes(tiny_net, notes)
    alone = [run_notes(tiny_net, [n])[0] for n in notes]
    for a, b in zip(together, alone, strict=True):
        assert np.array_equal(a.entities, b.entities)
        assert np.allclose(a.entity_scores, b.entity_scores, atol=1e-5)
        assert np.array_equal(a.relations, b.relations)


def test_save_load_predict_identical(tiny_net, tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = Annotator(TorchBackend(tiny_net, tokenizer), tokenizer, tiny_net.config).annotate(docs())
    save_model(tiny_net, tokenizer, tmp_path / "m")
    net2, tok2 = load_model(tmp_path / "m")
    after = Annotator(TorchBackend(net2, tok2), tok2, net2.config).annotate(docs())
    assert as_json(before) == as_json(after)


def test_entity_offsets_are_piece_boundaries(tiny_net, tokenizer) -> None:  # type: ignore[no-untyped-def]
    out = Annotator(TorchBackend(tiny_net, tokenizer), tokenizer, tiny_net.config).annotate(docs())
    assert any(d.entities for d in out), "the tiny net predicts spans"
    for d in out:
        for e in d.entities:
            span = d.text[e.start : e.end]
            assert span and span == span.strip()
        seg_ids = {s.index for s in d.segments}
        assert seg_ids == set(range(len(d.segments)))


def test_different_seeds_differ() -> None:
    a, b = make_tiny_net(seed=0), make_tiny_net(seed=1)
    assert not torch.equal(a.ner_head.weight, b.ner_head.weight)


def test_snap_to_words() -> None:
    from clinie.pipeline import snap_to_words

    word_start = np.array([True, False, False, True, True, False])
    assert snap_to_words(1, 2, word_start) == (0, 3)
    assert snap_to_words(3, 4, word_start) == (3, 4)
    assert snap_to_words(5, 6, word_start) == (4, 6)


def test_runtime_returns_every_scored_candidate_and_the_config_thresholds_decide(  # type: ignore[no-untyped-def]
        tiny_net, tokenizer, tmp_path: Path) -> None:
    """No threshold inside the runtime (served by Triton too): postprocess applies the saved version's ones."""
    outs = run_notes(tiny_net, [preprocess(d, tokenizer, tiny_net.config).inputs for d in docs()])
    scores_all = np.concatenate([o.relation_scores for o in outs])
    assert scores_all.size > 0, "the tiny net scores relation candidates"
    assert all(o.relations.shape[0] == o.relation_scores.shape[0] for o in outs)
    low = tiny_net.config.model_copy(update={"relation_threshold": 0.0, "negation_threshold": 0.0})
    tiny_net.config = low
    save_model(tiny_net, tokenizer, tmp_path / "m")
    net2, tok2 = load_model(tmp_path / "m")
    assert (net2.config.relation_threshold, net2.config.negation_threshold) == (0.0, 0.0)
    annotated = Annotator(TorchBackend(net2, tok2), tok2, net2.config).annotate(docs())
    assert any(d.relations for d in annotated), "threshold 0: every scored candidate is a relation"
    negatable = [e for d in annotated for e in d.entities if e.label in net2.schema.negatable_labels]
    assert negatable and all(e.negated for e in negatable), "threshold 0: every negatable entity is negated"
