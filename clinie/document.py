"""The one document type that flows through clinie.

The note text is stored once; segments, entities and relations point into it by character offsets
(``start`` inclusive, ``end`` exclusive). Documents are immutable: stages return a new document
(``with_annotations``) instead of mutating one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from clinie.errors import ErrorCode, InvalidInputError


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    label: str
    start: int
    end: int
    negated: bool = False
    score: float | None = None
    # label schema v1.1 assertions (Problem/Reason/ADE) and normalisation (see docs/normalization.md)
    uncertain: bool = False
    hypothetical: bool = False
    historical: bool = False
    subject: str = "patient"  # "patient" | "family" | "other"
    codes: tuple[str, ...] = ()  # "system|code", best first
    ingredient: str | None = None  # Drug: lowercase generic ingredient(s), combinations joined by " / "

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Relation:
    label: str
    head: str  # entity id of the attribute
    tail: str  # entity id of the Drug
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A window of the note: token range in the note's tokenization and the character range it covers."""

    index: int
    token_start: int
    token_end: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    source: str | None = None
    labels: tuple[str, ...] | None = None  # labels the document is annotated for (None: all / unknown)
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()
    segments: tuple[Segment, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.text)
        ids = set()
        for e in self.entities:
            if not (0 <= e.start < e.end <= n):
                raise InvalidInputError(
                    ErrorCode.BAD_INTERCHANGE,
                    f"document {self.id}: entity {e.id} has offsets {e.start}..{e.end} outside 0..{n}",
                )
            ids.add(e.id)
        for r in self.relations:
            if r.head not in ids or r.tail not in ids:
                raise InvalidInputError(
                    ErrorCode.BAD_INTERCHANGE, f"document {self.id}: relation {r.label} points to a missing entity"
                )

    def span_text(self, entity: Entity) -> str:
        return self.text[entity.start : entity.end]

    def entity(self, entity_id: str) -> Entity:
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise KeyError(entity_id)

    def annotated(self, label: str) -> bool:
        return self.labels is None or label in self.labels

    def with_annotations(
        self,
        entities: Iterable[Entity] | None = None,
        relations: Iterable[Relation] | None = None,
        segments: Iterable[Segment] | None = None,
    ) -> Document:
        return replace(
            self,
            entities=self.entities if entities is None else tuple(entities),
            relations=self.relations if relations is None else tuple(relations),
            segments=self.segments if segments is None else tuple(segments),
        )

    def without_annotations(self) -> Document:
        return replace(self, entities=(), relations=(), segments=(), labels=None)
