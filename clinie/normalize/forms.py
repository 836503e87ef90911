"""Nearest curated form (BioSyn-style synonym retrieval) for condition mentions no curated form matches exactly.

The packaged MiniLM sentence encoder (``clinie.normalize.dense.Encoder``) embeds every form of the curated tables
(``clinie.normalize.icd.CURATED_TABLES``: the hand-curated visit-note forms, the silver-coded forms, the
clinician-phrase lexicon; ~10k forms). A mention that no exact tier matches is embedded by its last match key
(abbreviations expanded, modifiers and side dropped) and takes the code of the most similar form when the cosine
reaches ``FORM_THRESHOLD``: "knee soreness" -> "knee pain" M25.569, "lost weight" -> "weight loss" R63.4. Unlike the
ICD-10-CM titles of ``clinie.normalize.dense``, the neighbours are clinicians' and patients' own wordings, each
already coded by the guidelines' conventions.

The index is built in-process from the packaged tables (``default_forms``, ~20 s on 2 CPU cores) or loaded from the
versioned ``.npz`` of ``clinie terminology build --forms``; a file built from other tables is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from clinie.normalize.dense import Encoder, encoder_version, load_npz, save_npz, top_k

FORMS_FORMAT = "clinie-condition-forms-1"
DEFAULT_FORMS_PATH = Path("terminology/condition-forms-v1.npz")
# chosen on the held-out silver forms (benchmarks/icd_forms_eval.py): accuracy flat from 0.45 to 0.7, and 0.7 codes
# fewer of the forms the coders called not codable (29 of 61, against 45 at 0.6); aci-notes-dev the same
FORM_THRESHOLD = 0.7
TOP_K = 10  # neighbours looked at: the first one that names no body site the mention lacks is used


@dataclass(frozen=True, slots=True)
class Neighbour:
    code: str
    form: str
    cosine: float


@dataclass
class FormIndex:
    embeddings: np.ndarray  # (n, 384) float32, L2-normalised
    forms: np.ndarray  # (n,) str
    codes: np.ndarray  # (n,) str, dotted ICD-10-CM
    meta: dict[str, object]
    encoder: Encoder | None = field(default=None, repr=False)

    @classmethod
    def build(cls, tables: tuple[str, ...] | None = None, *, threads: int | None = None) -> FormIndex:
        """Embed the forms of the curated ``tables`` (first table wins a form listed twice)."""
        from clinie.normalize.icd import CURATED_TABLES, _curated_rows, curated_version
        from clinie.normalize.text import fold

        tables = CURATED_TABLES if tables is None else tables
        t0 = time.perf_counter()
        first: dict[str, str] = {}
        for term, code, _ in _curated_rows(tables):
            if code:
                first.setdefault(fold(term), code)
        encoder = Encoder(threads)
        forms = list(first)
        emb = encoder.encode(forms)
        meta: dict[str, object] = {"format": FORMS_FORMAT, "tables": curated_version(tables),
                                   "encoder": encoder_version(), "forms": len(forms),
                                   "build_seconds": round(time.perf_counter() - t0, 1)}
        return cls(emb, np.array(forms), np.array([first[f] for f in forms]), meta, encoder)

    def save(self, path: str | Path) -> None:
        save_npz(path, self.meta, embeddings=self.embeddings, forms=self.forms, codes=self.codes)

    @classmethod
    def load(cls, path: str | Path) -> FormIndex:
        from clinie.normalize.icd import curated_version

        arrays, meta = load_npz(path, FORMS_FORMAT)
        if meta.get("tables") != curated_version():
            raise ValueError(f"{path} was built from other curated tables ({meta.get('tables')}); rebuild it "
                             "with `clinie terminology build --forms`")
        return cls(arrays["embeddings"], arrays["forms"], arrays["codes"], meta)

    @property
    def version(self) -> str:
        return f"{self.meta['format']} ({self.meta['forms']} forms, {self.meta['tables']}, {self.meta['encoder']})"

    def nearest(self, text: str, k: int = TOP_K) -> list[Neighbour]:
        """The ``k`` curated forms most similar to ``text`` (its last match key), best first, whatever the cosine."""
        from clinie.normalize.text import keys

        all_keys = list(keys(text))
        if not all_keys or not len(self.forms):
            return []
        if self.encoder is None:
            self.encoder = Encoder()
        sims = self.embeddings @ self.encoder.one(all_keys[-1])
        return [Neighbour(str(self.codes[i]), str(self.forms[i]), float(sims[i])) for i in top_k(sims, k)]


@lru_cache(maxsize=1)
def default_forms() -> FormIndex:
    """The form index of the packaged curated tables, built once per process."""
    return FormIndex.build()
