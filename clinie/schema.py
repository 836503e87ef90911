"""The clinie label schema v1 (see docs/label-schema.md): entity labels, relations and the tag layout.

The label map travels with every model version (``labels.json`` beside the weights) and is checked on load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENTITY_LABELS: tuple[str, ...] = ("Problem", "Drug", "Dosage", "Route", "Frequency", "Duration", "Reason", "ADE")
# attributes that relate to a Drug (head = attribute, tail = Drug), n2c2 2018 track 2 naming
ATTRIBUTE_LABELS: tuple[str, ...] = ("Dosage", "Route", "Frequency", "Duration", "Reason", "ADE")
NEGATABLE_LABELS: tuple[str, ...] = ("Problem", "Reason", "ADE")
BIO: tuple[str, ...] = ("O", "B", "I")
SCHEMA_VERSION = "clinie-labels-v1"


def relation_label(head_label: str) -> str:
    return f"{head_label}-Drug"


@dataclass(frozen=True)
class LabelSchema:
    """Entity labels in head order; each label has its own O/B/I head so labels may overlap."""

    entity_labels: tuple[str, ...] = ENTITY_LABELS
    attribute_labels: tuple[str, ...] = ATTRIBUTE_LABELS
    negatable_labels: tuple[str, ...] = NEGATABLE_LABELS
    version: str = SCHEMA_VERSION
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {lab: i for i, lab in enumerate(self.entity_labels)})

    @property
    def relation_labels(self) -> tuple[str, ...]:
        return tuple(relation_label(a) for a in self.attribute_labels)

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "entity_labels": list(self.entity_labels),
            "attribute_labels": list(self.attribute_labels),
            "negatable_labels": list(self.negatable_labels),
            "relation_labels": list(self.relation_labels),
            "tags": list(BIO),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LabelSchema:
        def tup(key: str) -> tuple[str, ...]:
            value = data[key]
            assert isinstance(value, list)
            return tuple(str(v) for v in value)

        return cls(
            entity_labels=tup("entity_labels"),
            attribute_labels=tup("attribute_labels"),
            negatable_labels=tup("negatable_labels"),
            version=str(data.get("version", SCHEMA_VERSION)),
        )


DEFAULT_SCHEMA = LabelSchema()
