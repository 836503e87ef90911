"""FHIR JSON of validated R4B models, without fhir.resources' generic serializer.

``resource_json(resource)`` returns the same dict as ``json.loads(resource.model_dump_json())`` (the FHIR JSON
that fhir.resources writes), about an order of magnitude faster: ``model_dump_json`` runs a pure-Python
``model_serializer`` (``FHIRAbstractModel._fhir_iter``) on every element and calls ``model_dump`` for every nested
element, looking up the field order, aliases and primitive-ness of each class on every call. Here that is
computed once per class (``_plan``) and the already-validated values are walked directly, with the same rules:

* ``resourceType`` first for resources; elements in the FHIR element order, under their JSON names (aliases);
* ``None`` and empty lists are omitted; an element that serialises to ``{}`` is kept (as fhir.resources does);
* primitive extensions (``_field``) follow their field, when not empty; ``fhir_comments`` last, when set;
* primitive values: ``Decimal`` as an integer when integral with a non-negative exponent, else as a float;
  ``UUID`` as ``urn:uuid:...``; dates and times as pydantic writes them in JSON (``to_jsonable_python``).

Anything this walk does not handle exactly (``bytes`` values, non-finite numbers, non-FHIR values in complex
elements) makes it fall back to ``model_dump_json`` for that resource, so the output never differs.
``tests/fhir/test_serialize.py`` checks the equality over the resources mapped from annotated notes.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from fhir_core.fhirabstractmodel import FHIR_COMMENTS_FIELD_NAME, FHIRAbstractModel
from fhir_core.utils import is_primitive_type
from pydantic_core import to_jsonable_python


class _Unsupported(Exception):
    """A value the fast walk does not serialise exactly like fhir.resources: use ``model_dump_json``."""


@dataclass(frozen=True, slots=True)
class _Element:
    key: str  # attribute name in the model's ``__dict__``
    name: str  # JSON name (the alias)
    primitive: bool
    ext_key: str | None  # ``<key>__ext``: the primitive extension, when the class has one
    ext_name: str | None  # its JSON name (``_<name>``)


@dataclass(frozen=True, slots=True)
class _Plan:
    resource_type: str | None  # set for resources (``resourceType`` is written first)
    elements: tuple[_Element, ...]


_PLANS: dict[type[FHIRAbstractModel], _Plan] = {}


def _plan(cls: type[FHIRAbstractModel]) -> _Plan:
    """The serialisation order and names of one model class (as ``FHIRAbstractModel._fhir_iter`` derives them)."""
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    aliases = cls.get_alias_mapping()
    fields = cls.model_fields
    elements = []
    for prop in cls.elements_sequence():
        key = aliases[prop]
        info = fields[key]
        primitive = is_primitive_type(info)
        ext_key = f"{key}__ext"
        has_ext = primitive and ext_key in fields
        elements.append(
            _Element(
                key=key,
                name=info.alias or key,
                primitive=primitive,
                ext_key=ext_key if has_ext else None,
                ext_name=(fields[ext_key].alias or ext_key) if has_ext else None,
            )
        )
    plan = _Plan(cls.get_resource_type() if cls.has_resource_base() else None, tuple(elements))
    _PLANS[cls] = plan
    return plan


def resource_json(resource: FHIRAbstractModel) -> dict[str, Any]:
    """``json.loads(resource.model_dump_json())``, computed without the generic serializer (see the module doc)."""
    if resource.__fhir_serialization_summary_only__ or resource.__fhir_serialization_exclude_comment__:
        return _slow(resource)  # a caller changed the serialisation flags: not the default output
    try:
        return _model(resource)
    except _Unsupported:
        return _slow(resource)


def _slow(resource: FHIRAbstractModel) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(resource.model_dump_json())
    return result


def _model(model: FHIRAbstractModel) -> dict[str, Any]:
    plan = _PLANS.get(type(model)) or _plan(type(model))
    values = model.__dict__
    out: dict[str, Any] = {}
    if plan.resource_type is not None:
        out["resourceType"] = plan.resource_type
    for el in plan.elements:
        value = values.get(el.key)
        if value is not None:
            value = _primitive(value) if el.primitive else _complex(value)
            if not (type(value) is list and not value):
                out[el.name] = value
        if el.ext_key is not None:
            ext = values.get(el.ext_key)
            if ext is not None:
                ext = _complex(ext)
                if ext:
                    out[el.ext_name] = ext  # type: ignore[index]  # set together with ext_key
    comments = values.get(FHIR_COMMENTS_FIELD_NAME)
    if comments is not None:
        out[FHIR_COMMENTS_FIELD_NAME] = _primitive(comments)
    return out


def _complex(value: Any) -> Any:
    if isinstance(value, FHIRAbstractModel):
        return _model(value)
    if type(value) is list:
        return [_complex(v) for v in value]
    if value is None:
        return None
    raise _Unsupported(type(value).__name__)


def _primitive(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return value
    if kind is list:
        return [_primitive(v) for v in value]
    if kind is float:
        if not math.isfinite(value):
            raise _Unsupported("non-finite float")
        return value
    if value is None:
        return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _Unsupported("non-finite decimal")
        exp = value.as_tuple().exponent
        if value == value.to_integral_value() and isinstance(exp, int) and exp >= 0:
            return int(value)
        number = float(value)
        if not math.isfinite(number):
            raise _Unsupported("decimal out of float range")
        return number
    if isinstance(value, uuid.UUID):
        return f"urn:uuid:{value}"
    if isinstance(value, (datetime, date, time, str)):
        return to_jsonable_python(value)
    raise _Unsupported(kind.__name__)
