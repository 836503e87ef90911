"""Label maps for ``clinie convert``: source labels to clinie labels, what to drop, how to read attributes.

A label map is a TOML file (``configs/label-maps/maccrobat.toml`` is a complete example)::

    source = "maccrobat"                 # the interchange "source" of every converted document
    labels = ["Problem", "Drug"]         # the labels these documents are annotated for (interchange "labels")
    discontinuous = "split"              # brat spans "a b;c d": "split" (one entity per fragment) or "join"
    drop = ["Age", "Sex"]                # source entity types to leave out
    drop_relations = ["BEFORE"]          # source relation types to leave out
    drop_unmapped = false                # true: leave out any type not named in the tables below

    [entities]                           # source type -> clinie label
    Disease_disorder = "Problem"
    Medication = "Drug"

    [linked_entities]                    # kept only where a mapped relation links them to a kept entity
    Administration = "Route"

    [relations]                          # source type -> clinie relation label, or "*": <attribute>-Drug
    MODIFY = "*"

    [attributes]                         # brat attribute NAME or NAME=VALUE -> flag
    "POLARITY=NEG" = "negated"

A type that is neither mapped nor dropped is an error (E106) unless ``drop_unmapped`` is true, so a new label in
someone's data is never lost silently. Without a label map every type keeps its own name.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinie.errors import ErrorCode, InvalidInputError

FLAGS: tuple[str, ...] = ("negated", "uncertain", "hypothetical", "historical", "subject=family", "subject=other")
DEFAULT_ATTRIBUTES: dict[str, str] = {
    "Negated": "negated",
    "Negation": "negated",
    "POLARITY=NEG": "negated",
    "Uncertain": "uncertain",
    "Hypothetical": "hypothetical",
    "Historical": "historical",
    "Subject=family": "subject=family",
    "Subject=other": "subject=other",
}
DISCONTINUOUS = ("split", "join")
ANY_DRUG_RELATION = "*"


@dataclass(frozen=True)
class LabelMap:
    """How source labels become clinie labels. ``LabelMap()`` is the identity map."""

    source: str | None = None
    labels: tuple[str, ...] | None = None
    entities: dict[str, str] = field(default_factory=dict)
    linked_entities: dict[str, str] = field(default_factory=dict)
    relations: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))
    drop: frozenset[str] = frozenset()
    drop_relations: frozenset[str] = frozenset()
    drop_unmapped: bool = False
    discontinuous: str = "split"
    identity: bool = True
    path: str = "(identity)"

    def entity_label(self, source_type: str) -> tuple[str | None, bool]:
        """(clinie label or None to drop, whether it is kept only when linked)."""
        if self.identity:
            return source_type, False
        if source_type in self.entities:
            return self.entities[source_type], False
        if source_type in self.linked_entities:
            return self.linked_entities[source_type], True
        if source_type in self.drop or self.drop_unmapped:
            return None, False
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{self.path}: entity type {source_type!r} is neither "
                                "mapped nor in drop (add it, or set drop_unmapped = true)")

    def relation_label(self, source_type: str) -> str | None:
        if self.identity:
            return source_type
        if source_type in self.relations:
            return self.relations[source_type]
        if source_type in self.drop_relations or self.drop_unmapped:
            return None
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{self.path}: relation type {source_type!r} is neither "
                                "mapped nor in drop_relations (add it, or set drop_unmapped = true)")

    def flag(self, name: str, value: str | None) -> str | None:
        if value is not None and f"{name}={value}" in self.attributes:
            return self.attributes[f"{name}={value}"]
        if value is None or value == "true":
            return self.attributes.get(name)
        return None


def _str_table(data: dict[str, Any], key: str, path: str) -> dict[str, str]:
    table = data.get(key, {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{path}: [{key}] must map names to strings")
    return {str(k): v for k, v in table.items()}


def _str_list(data: dict[str, Any], key: str, path: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{path}: {key} must be a list of strings")
    return list(value)


KNOWN_KEYS = {"source", "labels", "discontinuous", "drop", "drop_relations", "drop_unmapped", "entities",
              "linked_entities", "relations", "attributes"}


def load_label_map(path: str | Path | None) -> LabelMap:
    """Read a label map TOML file; ``None`` gives the identity map."""
    if path is None:
        return LabelMap()
    name = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{name}: no such label map") from None
    except OSError as exc:
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{name}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{name}: not TOML ({exc})") from None
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{name}: unknown key(s) {', '.join(unknown)}")
    attributes = _str_table(data, "attributes", name) if "attributes" in data else dict(DEFAULT_ATTRIBUTES)
    bad = sorted(v for v in attributes.values() if v not in FLAGS)
    if bad:
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{name}: unknown flag(s) {', '.join(bad)} "
                                f"(one of {', '.join(FLAGS)})")
    discontinuous = data.get("discontinuous", "split")
    if discontinuous not in DISCONTINUOUS:
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{name}: discontinuous must be 'split' or 'join'")
    labels = _str_list(data, "labels", name) if "labels" in data else None
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidInputError(ErrorCode.BAD_LABEL_MAP, f"{name}: source must be a string")
    return LabelMap(
        source=source,
        labels=tuple(labels) if labels is not None else None,
        entities=_str_table(data, "entities", name),
        linked_entities=_str_table(data, "linked_entities", name),
        relations=_str_table(data, "relations", name),
        attributes=attributes,
        drop=frozenset(_str_list(data, "drop", name)),
        drop_relations=frozenset(_str_list(data, "drop_relations", name)),
        drop_unmapped=bool(data.get("drop_unmapped", False)),
        discontinuous=discontinuous,
        identity=False,
        path=name,
    )
