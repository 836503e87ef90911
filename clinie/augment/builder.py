"""Build a note by appending pieces, recording entity offsets as the text grows (offsets correct by construction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clinie.fhir.systems import ICD10CM
from clinie.schema import ENTITY_LABELS, relation_label


@dataclass(slots=True)
class Mention:
    label: str
    start: int
    end: int
    negated: bool = False
    uncertain: bool = False
    hypothetical: bool = False
    historical: bool = False
    code: str | None = None
    ingredient: str | None = None


@dataclass
class NoteBuilder:
    """Append-only note text with entity mentions and relations between them (by mention handle)."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    mentions: list[Mention] = field(default_factory=list)
    links: list[tuple[int, int]] = field(default_factory=list)  # (attribute handle, drug handle)

    def add(self, text: str) -> None:
        """Append plain text; a line break drops the spaces before it (entity pieces never end in a space)."""
        if text.startswith("\n") and self.parts and self.parts[-1].endswith(" ") and self.parts[-1].strip():
            trimmed = self.parts[-1].rstrip(" ")
            self.length -= len(self.parts[-1]) - len(trimmed)
            self.parts[-1] = trimmed
        if text:
            self.parts.append(text)
            self.length += len(text)

    def trim(self) -> None:
        """Drop trailing whitespace (entity pieces never end in whitespace, so no entity is touched)."""
        while self.parts and self.parts[-1] != self.parts[-1].rstrip():
            trimmed = self.parts[-1].rstrip()
            self.length -= len(self.parts[-1]) - len(trimmed)
            if trimmed:
                self.parts[-1] = trimmed
            else:
                self.parts.pop()

    def ent(
        self,
        text: str,
        label: str,
        *,
        negated: bool = False,
        uncertain: bool = False,
        hypothetical: bool = False,
        historical: bool = False,
        code: str | None = None,
        ingredient: str | None = None,
    ) -> int:
        """Append ``text`` as an entity of ``label``; return its handle."""
        if label not in ENTITY_LABELS:
            raise ValueError(f"unknown label {label}")
        if not text:
            raise ValueError("empty entity")
        start = self.length
        self.add(text)
        self.mentions.append(
            Mention(label, start, self.length, negated, uncertain, hypothetical, historical, code, ingredient)
        )
        return len(self.mentions) - 1

    def link(self, attribute: int | None, drug: int | None) -> None:
        if attribute is None or drug is None:
            return
        if self.mentions[drug].label != "Drug":
            raise ValueError("relation tail must be a Drug")
        pair = (attribute, drug)
        if pair not in self.links:
            self.links.append(pair)

    def link_all(self, attributes: list[int], drugs: list[int]) -> None:
        for a in attributes:
            for d in drugs:
                self.link(a, d)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def to_json(self, doc_id: str, source: str = "synthetic") -> dict[str, Any]:
        """The interchange JSON: ids T1.. in order of start, relations by id."""
        text = self.text
        order = sorted(range(len(self.mentions)), key=lambda i: (self.mentions[i].start, self.mentions[i].end))
        ids = {handle: f"T{n}" for n, handle in enumerate(order, 1)}
        entities: list[dict[str, Any]] = []
        for handle in order:
            m = self.mentions[handle]
            item: dict[str, Any] = {
                "id": ids[handle],
                "label": m.label,
                "start": m.start,
                "end": m.end,
                "text": text[m.start : m.end],
                "negated": m.negated,
            }
            for flag in ("uncertain", "hypothetical", "historical"):
                if getattr(m, flag):
                    item[flag] = True
            if m.code:
                item["codes"] = [f"{ICD10CM}|{m.code}"]
            if m.ingredient:
                item["ingredient"] = m.ingredient
            entities.append(item)
        relations = [
            {"label": relation_label(self.mentions[a].label), "head": ids[a], "tail": ids[d]}
            for a, d in sorted(self.links, key=lambda p: (self.mentions[p[1]].start, self.mentions[p[0]].start))
        ]
        return {
            "id": doc_id,
            "source": source,
            "text": text,
            "labels": list(ENTITY_LABELS),
            "entities": entities,
            "relations": relations,
        }
