"""Scoring as the n2c2 2018 track 2 evaluator: micro P/R/F1 over entities and relations, strict and lenient.

- strict: same label, exact start and end; lenient: same label, overlapping spans, matched one-to-one.
- a relation matches when its label matches and its head and tail both match under the same criterion.
- predicted entities whose ``subject`` is not ``patient`` are dropped before matching (gold annotates the patient).
- on gold entities matched strictly (label schema v1.1 Scoring): P/R/F1 of each assertion flag on Problem/Reason/
  ADE; code accuracy over gold entities with ``codes`` (exact: the gold code is among the predicted codes; category:
  the first predicted code shares the gold's 3-character ICD-10-CM category); ingredient accuracy over gold Drugs
  with an ``ingredient`` (exact after lowercasing and collapsing spaces).
- labels a gold document is not annotated for (its ``labels`` field) are ignored for that document, in gold and
  predictions alike; a relation is scored only where both its attribute label and Drug are annotated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from clinie.document import Document, Entity, Span
from clinie.schema import NEGATABLE_LABELS

FLAGS: tuple[str, ...] = ("negated", "uncertain", "hypothetical", "historical")

Mode = str  # "strict" | "lenient"
MODES: tuple[Mode, ...] = ("strict", "lenient")


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def as_dict(self) -> dict[str, float | int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4), "f1": round(self.f1, 4)}


@dataclass
class Report:
    # [mode]["entities"|"relations"][label] -> Counts
    by_label: dict[Mode, dict[str, dict[str, Counts]]] = field(
        default_factory=lambda: {m: {"entities": defaultdict(Counts), "relations": defaultdict(Counts)} for m in MODES}
    )
    documents: int = 0
    # negation of strictly matched negatable entities; positive class = negated
    negation: Counts = field(default_factory=Counts)
    negation_agree: int = 0
    negation_total: int = 0
    # assertion flags on strictly matched Problem/Reason/ADE (negated repeats ``negation``)
    flags: dict[str, Counts] = field(default_factory=lambda: {f: Counts() for f in FLAGS})
    code_total: int = 0
    code_exact: int = 0
    code_category: int = 0
    ingredient_total: int = 0
    ingredient_correct: int = 0

    def micro(self, mode: Mode, kind: str) -> Counts:
        total = Counts()
        for c in self.by_label[mode][kind].values():
            total.add(c)
        return total

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"documents": self.documents}
        out["negation_on_strict_matches"] = {**self.negation.as_dict(), "accuracy": round(
            self.negation_agree / self.negation_total, 4) if self.negation_total else 0.0, "n": self.negation_total}
        out["flags_on_strict_matches"] = {f: c.as_dict() for f, c in self.flags.items()}
        out["codes_on_strict_matches"] = {
            "n": self.code_total,
            "exact_accuracy": round(self.code_exact / self.code_total, 4) if self.code_total else 0.0,
            "category_accuracy": round(self.code_category / self.code_total, 4) if self.code_total else 0.0,
        }
        out["ingredient_on_strict_matches"] = {
            "n": self.ingredient_total,
            "accuracy": round(self.ingredient_correct / self.ingredient_total, 4) if self.ingredient_total else 0.0,
        }
        for m in MODES:
            for kind in ("entities", "relations"):
                out[f"{m}_{kind}"] = {
                    "micro": self.micro(m, kind).as_dict(),
                    "by_label": {lab: c.as_dict() for lab, c in sorted(self.by_label[m][kind].items())},
                }
        return out

    def to_markdown(self, title: str = "") -> str:
        lines = [f"#### {title}" if title else "", ""]
        lines.append("| kind | label | strict P | strict R | strict F1 | lenient P | lenient R | lenient F1 | gold |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for kind in ("entities", "relations"):
            labels = sorted(set(self.by_label["strict"][kind]) | set(self.by_label["lenient"][kind]))
            rows = [(lab, self.by_label["strict"][kind][lab], self.by_label["lenient"][kind][lab]) for lab in labels]
            rows.append(("**micro**", self.micro("strict", kind), self.micro("lenient", kind)))
            for lab, s, le in rows:
                lines.append(
                    f"| {kind} | {lab} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | "
                    f"{le.precision:.3f} | {le.recall:.3f} | {le.f1:.3f} | {s.tp + s.fn} |"
                )
        if self.negation_total:
            n = self.negation
            lines += ["", f"Negation on {self.negation_total} strictly matched Problem/Reason/ADE mentions: accuracy "
                      f"{self.negation_agree / self.negation_total:.3f}; negated class P {n.precision:.3f} "
                      f"R {n.recall:.3f} F1 {n.f1:.3f} (gold negated {n.tp + n.fn})."]
            lines += ["", "| flag | P | R | F1 | gold |", "| --- | --- | --- | --- | --- |"]
            for flag, c in self.flags.items():
                lines.append(f"| {flag} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {c.tp + c.fn} |")
        if self.code_total:
            lines += ["", f"Codes on {self.code_total} strictly matched coded mentions: exact accuracy "
                      f"{self.code_exact / self.code_total:.3f}, category accuracy "
                      f"{self.code_category / self.code_total:.3f}."]
        if self.ingredient_total:
            lines += ["", f"Ingredient on {self.ingredient_total} strictly matched Drugs: accuracy "
                      f"{self.ingredient_correct / self.ingredient_total:.3f}."]
        return "\n".join(lines).strip() + "\n"


def _match(gold: list[tuple[str, tuple[Span, ...]]], pred: list[tuple[str, tuple[Span, ...]]],
           mode: Mode) -> tuple[dict[str, Counts], list[tuple[int, int]]]:
    """One-to-one matching of (label, spans) items; every span of an item must match its counterpart.

    Returns per-label counts and the matched (gold index, prediction index) pairs.
    """
    counts: dict[str, Counts] = defaultdict(Counts)
    pairs: list[tuple[int, int]] = []

    def same(a: tuple[Span, ...], b: tuple[Span, ...]) -> bool:
        if mode == "strict":
            return a == b
        return all(x.overlaps(y) for x, y in zip(a, b, strict=True))

    used = [False] * len(gold)
    matched_pred = [False] * len(pred)
    # exact matches first, so that lenient matching never takes an exact partner from another prediction
    for exact_only in ((True, False) if mode == "lenient" else (True,)):
        for pi, (plab, pspans) in enumerate(pred):
            if matched_pred[pi]:
                continue
            for gi, (glab, gspans) in enumerate(gold):
                if used[gi] or glab != plab:
                    continue
                if (pspans == gspans) if exact_only else same(pspans, gspans):
                    used[gi] = matched_pred[pi] = True
                    counts[plab].tp += 1
                    pairs.append((gi, pi))
                    break
    for pi, (plab, _) in enumerate(pred):
        if not matched_pred[pi]:
            counts[plab].fp += 1
    for gi, (glab, _) in enumerate(gold):
        if not used[gi]:
            counts[glab].fn += 1
    return counts, pairs


def _entities(doc: Document, allowed: set[str] | None) -> list[Entity]:
    return [e for e in doc.entities if allowed is None or e.label in allowed]


def _entity_items(doc: Document, allowed: set[str] | None) -> list[tuple[str, tuple[Span, ...]]]:
    return [(e.label, (e.span,)) for e in _entities(doc, allowed)]


def _relation_items(doc: Document, allowed: set[str] | None) -> list[tuple[str, tuple[Span, ...]]]:
    ents: dict[str, Entity] = {e.id: e for e in doc.entities}
    items: list[tuple[str, tuple[Span, ...]]] = []
    for r in doc.relations:
        head, tail = ents[r.head], ents[r.tail]
        if allowed is not None and (head.label not in allowed or tail.label not in allowed):
            continue
        items.append((r.label, (head.span, tail.span)))
    return items


def _patient_only(doc: Document) -> Document:
    if all(e.subject == "patient" for e in doc.entities):
        return doc
    keep = [e for e in doc.entities if e.subject == "patient"]
    ids = {e.id for e in keep}
    return doc.with_annotations(entities=keep, relations=[r for r in doc.relations if r.head in ids and r.tail in ids])


def _category(code: str) -> str:
    return code.rsplit("|", 1)[-1].replace(".", "")[:3].upper()


def _norm_ingredient(text: str) -> str:
    return " ".join(text.lower().split())


def _score_attributes(report: Report, gold: list[Entity], pred: list[Entity], pairs: list[tuple[int, int]]) -> None:
    for gi, pi in pairs:
        g, p = gold[gi], pred[pi]
        if g.label in NEGATABLE_LABELS:
            for flag in FLAGS:
                gv, pv = bool(getattr(g, flag)), bool(getattr(p, flag))
                c = report.flags[flag]
                c.tp += int(gv and pv)
                c.fp += int(pv and not gv)
                c.fn += int(gv and not pv)
        if g.codes:
            report.code_total += 1
            report.code_exact += int(g.codes[0] in p.codes)
            report.code_category += int(bool(p.codes) and _category(p.codes[0]) == _category(g.codes[0]))
        if g.label == "Drug" and g.ingredient:
            report.ingredient_total += 1
            report.ingredient_correct += int(
                p.ingredient is not None and _norm_ingredient(p.ingredient) == _norm_ingredient(g.ingredient))


def score(gold_docs: Iterable[Document], pred_docs: Iterable[Document]) -> Report:
    preds = {d.id: d for d in pred_docs}
    report = Report()
    for gold in gold_docs:
        pred = preds.get(gold.id)
        allowed = set(gold.labels) if gold.labels is not None else None
        report.documents += 1
        for mode in MODES:
            for kind, items in (("entities", _entity_items), ("relations", _relation_items)):
                g = items(gold, allowed)
                p = items(_patient_only(pred), allowed) if pred is not None else []
                counts, pairs = _match(g, p, mode)
                for lab, c in counts.items():
                    report.by_label[mode][kind][lab].add(c)
                if mode == "strict" and kind == "entities" and pred is not None:
                    gold_ents, pred_ents = _entities(gold, allowed), _entities(_patient_only(pred), allowed)
                    _score_negation(report, gold_ents, pred_ents, pairs)
                    _score_attributes(report, gold_ents, pred_ents, pairs)
    return report


def _score_negation(report: Report, gold: list[Entity], pred: list[Entity], pairs: list[tuple[int, int]]) -> None:
    for gi, pi in pairs:
        g, p = gold[gi], pred[pi]
        if g.label not in NEGATABLE_LABELS:
            continue
        report.negation_total += 1
        report.negation_agree += int(g.negated == p.negated)
        if p.negated and g.negated:
            report.negation.tp += 1
        elif p.negated:
            report.negation.fp += 1
        elif g.negated:
            report.negation.fn += 1
