"""Dense retrieval (with a bag-of-words stand-in for the MiniLM encoder), laterality, the 7th character."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from clinie.document import Document, Entity
from clinie.normalize.dense import DENSE_FORMAT, DenseIndex, rerank
from clinie.normalize.icd import INDEX_FORMAT, IcdIndex, _simplify, lateral_variant
from clinie.normalize.stage import Normalizer, side_of


class BagEncoder:
    """Deterministic stand-in for ``Encoder``: L2-normalised hashed bag of words."""

    def one(self, text: str) -> np.ndarray:
        v = np.zeros(384, dtype=np.float32)
        for w in text.lower().replace(";", " ").split():
            v[zlib.crc32(w.encode()) % 384] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        return np.stack([self.one(t) for t in texts])


TERMS = [("Chronic sinusitis, unspecified", "J32.9"), ("Other specified disorders of nose and nasal sinuses", "J34.89"),
         ("Pain, unspecified", "R52"), ("Calculus of kidney", "N20.0"), ("Calculus of ureter", "N20.1")]


def small(weights: tuple[float, float, float] = (0.0, 0.1, 0.3)) -> tuple[DenseIndex, IcdIndex]:
    enc = BagEncoder()
    dense = DenseIndex(enc.encode([t for t, _ in TERMS]).astype(np.float16), np.array([c for _, c in TERMS]),
                       np.array([t for t, _ in TERMS]), {"format": DENSE_FORMAT, "scope": "test", "terms": 5,
                                                         "encoder": "bag"},
                       encoder=enc, weights=weights)  # type: ignore[arg-type]
    icd = IcdIndex({"format": INDEX_FORMAT, "version": "test",
                    "displays": {c: t for t, c in TERMS},
                    "tiers": [{}, {}, {_simplify(t): [c] for t, c in TERMS}], "ade": {}})
    return dense, icd


def test_save_load_roundtrip(tmp_path: Path) -> None:
    dense, _ = small()
    path = tmp_path / "d.npz"
    dense.save(path)
    back = DenseIndex.load(path)
    assert back.meta["format"] == DENSE_FORMAT and list(back.codes) == [c for _, c in TERMS]
    assert back.embeddings.shape == (5, 384)
    np.savez(tmp_path / "bad.npz", meta=np.array('{"format": "other"}'))
    with pytest.raises(ValueError):
        DenseIndex.load(tmp_path / "bad.npz")


def test_search_and_context_rerank() -> None:
    dense, icd = small()
    assert dense.search(dense.embed("calculus of ureter"), 1)[0][0] == "N20.1"
    # the sentence decides between two candidates with the same lexical overlap
    ranked = rerank(dense, icd, "calculus", "calculus of ureter seen on CT")
    assert ranked[0].code == "N20.1"
    ranked = rerank(dense, icd, "calculus", "calculus of kidney seen on CT")
    assert ranked[0].code == "N20.0"


def test_normalizer_dense_off_and_on() -> None:
    dense, icd = small()
    doc = Document(id="d", text="CT: calculus of ureter.",
                   entities=(Entity(id="T1", label="Problem", start=4, end=12),))
    on = Normalizer(icd, dense=dense, dense_threshold=0.3)(doc).entities[0]
    assert on.codes and on.codes[0].endswith("|N20.1")
    assert on.codes == Normalizer(icd, dense=dense, dense_threshold=0.3).predict(doc)["T1"].codes
    assert "dense" in Normalizer(icd, dense=dense).versions
    # a high dense threshold leaves the mention text-only
    assert Normalizer(icd, dense=dense, dense_threshold=0.99)(doc).entities[0].codes == ()


def test_encounter_folded_and_laterality() -> None:
    assert _simplify("Sprain of medial collateral ligament of unspecified knee, initial encounter") == (
        _simplify("Sprain of medial collateral ligament of unspecified knee, sequela"))
    assert lateral_variant("M25.569", "left") == "M25.562"
    assert lateral_variant("S83.419A", "right") == "S83.411A"
    assert lateral_variant("I10", "left") is None and lateral_variant("M25.562", "right") is None
    text = "Right knee: pain and swelling. Tenderness on the left paraspinal area. No calf tenderness."
    s2 = text.index("calf tenderness")
    ents = (Entity(id="T1", label="Problem", start=12, end=16),
            Entity(id="T2", label="Problem", start=s2, end=s2 + len("calf tenderness")))
    doc = Document(id="d", text=text, entities=ents)
    assert side_of(doc, ents[0]) == "right"
    assert side_of(doc, ents[1]) is None  # the side is in another sentence
