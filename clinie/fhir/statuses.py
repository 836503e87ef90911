"""Cue rules over a mention's clause: MedicationStatement.status and allergy context.

The clause is the sentence or list item of the mention (``clinie.normalize.context`` scopes). Cues are checked in
this order, first hit wins:

==============  ========================================================================================
status          cue (case-insensitive, whole words, anywhere in the clause)
==============  ========================================================================================
not-taken       the Drug mention is negated; avoid, do not take, don't take, not to take, allergic to,
                allergy to, intolerant (of|to), refused, declined
stopped         stop, stopped, stopping, discontinue(d), d/c, came off, taken off, no longer taking, quit
on-hold         hold, holding, held
completed       completed, finished
intended        start, starting, initiate, begin, will prescribe, prescribe, prescribed, will add, add,
                trial of, recommend, will send in, refer(red)? for
active          otherwise (a drug the note names for this patient is taken to be current)
==============  ========================================================================================

Allergy context (``in_allergy_context``): the mention lies under a heading or line label naming allergies
("ALLERGIES", "Allergies:", "Drug allergies"), or its clause has "allergic to", "allergy to", "allergies to",
"allergy:".
"""

from __future__ import annotations

import re
from functools import lru_cache

from clinie.document import Document, Entity
from clinie.normalize.context import _scopes, _sections

_STATUS_CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (status, re.compile(rf"(?<![\w-])(?:{pattern})(?![\w-])", re.IGNORECASE))
    for status, pattern in (
        ("not-taken", r"avoid|avoiding|do\s+not\s+take|don't\s+take|not\s+to\s+take|allergic\s+to|allergy\s+to|"
                      r"intolerant\s+(?:of|to)|refused|declined"),
        ("stopped", r"stop|stopped|stopping|discontinued?|discontinuing|d/c|came\s+off|taken\s+off|"
                    r"no\s+longer\s+taking|quit"),
        ("on-hold", r"hold|holding|held"),
        ("completed", r"completed|finished"),
        ("intended", r"start|starting|initiate|begin|will\s+prescribe|prescribe|prescribed|will\s+add|add|"
                     r"trial\s+of|recommend|will\s+send\s+in"),
    )
)
_ALLERGY_CLAUSE = re.compile(r"allergic\s+to|allerg(?:y|ies)\s+to|allerg(?:y|ies)\s*:", re.IGNORECASE)
_ALLERGY_HEADING = re.compile(r"ALLERG", re.IGNORECASE)


@lru_cache(maxsize=64)
def _layout(text: str) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, str], ...]]:
    return tuple(_scopes(text)), tuple(_sections(text))


def _clause_bounds(doc: Document, e: Entity) -> tuple[int, int]:
    scopes, _ = _layout(doc.text)
    s0, s1 = next(((a, b) for a, b in scopes if a <= e.start < b), (0, len(doc.text)))
    return s0, max(s1, e.end)


def clause(doc: Document, e: Entity) -> str:
    s0, s1 = _clause_bounds(doc, e)
    return doc.text[s0:s1]


def medication_status(doc: Document, drug: Entity) -> str:
    if drug.negated:
        return "not-taken"
    text = clause(doc, drug)
    for status, pattern in _STATUS_CUES:
        if pattern.search(text):
            return status
    return "active"


def in_allergy_context(doc: Document, e: Entity) -> bool:
    _, sections = _layout(doc.text)
    section = next((name for pos, name in reversed(sections) if pos <= e.start), "")
    if _ALLERGY_HEADING.search(section):
        return True
    line_start = doc.text.rfind("\n", 0, e.start) + 1
    if re.match(r"\s*(?:drug\s+)?allerg(?:y|ies)\b", doc.text[line_start : e.start], re.IGNORECASE):
        return True
    s0, _ = _clause_bounds(doc, e)
    return bool(_ALLERGY_CLAUSE.search(doc.text[min(s0, line_start) : e.start]))
