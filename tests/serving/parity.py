"""The one definition of "two backends predict the same" used by the serving tests."""

from __future__ import annotations

from clinie.document import Document


def assert_same_predictions(ours: list[Document], theirs: list[Document], score_tol: float = 1e-3) -> None:
    """Same entities (label, offsets, negation) and relations, in the same order; scores within ``score_tol``."""
    for a, b in zip(ours, theirs, strict=True):
        assert [(e.label, e.start, e.end, e.negated) for e in a.entities] == \
            [(e.label, e.start, e.end, e.negated) for e in b.entities]
        assert [(r.label, r.head, r.tail) for r in a.relations] == [(r.label, r.head, r.tail) for r in b.relations]
        for e1, e2 in zip(a.entities, b.entities, strict=True):
            assert e1.score is not None and e2.score is not None
            assert abs(e1.score - e2.score) < score_tol
