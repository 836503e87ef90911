"""Deterministic resource ids."""

from __future__ import annotations

import uuid

from clinie.fhir.ids import CLINIE_NAMESPACE, entity_key, resource_id


def test_same_inputs_same_id() -> None:
    a = resource_id("Condition", "doc", "v1", "m1", *entity_key(3, 9))
    assert a == resource_id("Condition", "doc", "v1", "m1", *entity_key(3, 9))
    assert uuid.UUID(a).version == 5


def test_any_input_change_changes_the_id() -> None:
    base = resource_id("Condition", "doc", "v1", "m1", *entity_key(3, 9))
    variants = [
        resource_id("MedicationStatement", "doc", "v1", "m1", *entity_key(3, 9)),
        resource_id("Condition", "doc2", "v1", "m1", *entity_key(3, 9)),
        resource_id("Condition", "doc", "v2", "m1", *entity_key(3, 9)),
        resource_id("Condition", "doc", "v1", "m2", *entity_key(3, 9)),
        resource_id("Condition", "doc", "v1", "m1", *entity_key(3, 10)),
        resource_id("Condition", "doc", "v1", "m1", *entity_key(3, 9, "ADE")),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_no_ambiguity_between_parts() -> None:
    assert resource_id("C", "a", "bc", "m") != resource_id("C", "ab", "c", "m")


def test_namespace_is_frozen() -> None:
    # changing the namespace would re-key every stored resource: this value must never change
    assert str(CLINIE_NAMESPACE) == "0b8c7c1e-2f55-5a4e-9a43-3b0c6c3f9d21"
    assert resource_id("Provenance", "d", "1", "m") == str(uuid.uuid5(CLINIE_NAMESPACE, "Provenance\x1fd\x1f1\x1fm"))
