"""Match keys for mention text: lowercase, punctuation folded, determiners and modifiers dropped, plurals reduced.

``keys(text)`` yields candidate keys from most to least literal; the linkers try them in order, so an exact form
in a table always wins over a reduced one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources

_PUNCT = re.compile(r"[^a-z0-9/+ ]+")
_DETERMINERS = frozenset(
    [
        "a", "an", "the", "her", "his", "their", "its", "my", "your", "our", "some", "any", "this", "that",
        "these", "those", "of"
    ]
)
# words that qualify a finding without changing its ICD-10-CM code in the unspecified case
_MODIFIERS = frozenset(
    [
        "mild", "mildly", "moderate", "moderately", "severe", "severely", "slight", "slightly", "little", "bit",
        "minimal", "significant", "new", "ongoing", "worsening", "worsened", "increased", "increasing",
        "persistent", "recurrent", "intermittent", "occasional", "some", "few", "several", "much", "more",
        "frequent", "frequently", "constant", "recent", "acute", "subacute", "bad", "terrible", "possible",
        "probable", "likely", "suspected", "known", "current", "active", "presumed", "symptomatic", "uncontrolled",
        "controlled", "poorly", "well", "stable", "chronic", "nonhealing"
    ]
)
_SIDES = frozenset(["right", "left", "sided"])
_KEEP_S = ("ss", "us", "is", "ous", "sis", "itis", "ics", "ies")
_IRREGULAR = {"feet": "foot", "teeth": "tooth", "lymphadenopathies": "lymphadenopathy", "vomited": "vomiting",
              "diarrhea": "diarrhea", "rales": "rales", "rhonchi": "rhonchi", "chills": "chills",
              "hives": "hives", "sweats": "sweats", "herpes": "herpes", "diabetes": "diabetes",
              "aches": "ache", "feces": "feces", "stools": "stool", "bowels": "bowel", "tears": "tear"}


_SENTENCE_ENDS = ".!?;\n"


def line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) of the line that holds ``text[start:end]``."""
    line_end = text.find("\n", end)
    return text.rfind("\n", 0, start) + 1, line_end if line_end >= 0 else len(text)


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) of the sentence that holds ``text[start:end]``: cut at ". ! ? ;" and line breaks."""
    ends = [i for i in (text.find(c, end) for c in _SENTENCE_ENDS) if i >= 0]
    return max(text.rfind(c, 0, start) for c in _SENTENCE_ENDS) + 1, min(ends) if ends else len(text)


def fold(text: str) -> str:
    """Lowercase, hyphens and punctuation to spaces (``/`` and ``+`` kept), spaces collapsed."""
    t = text.lower().replace("’", "'").replace("'s ", " ")
    t = _PUNCT.sub(" ", t.replace("-", " "))
    return " ".join(t.split())


def singular(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_KEEP_S[:-1]):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    return word[:-1]


@lru_cache(maxsize=1)
def abbreviations() -> dict[str, str]:
    """Clinical abbreviation (folded) -> expansion, from ``data/abbreviations.tsv``."""
    out: dict[str, str] = {}
    for line in resources.files("clinie.normalize").joinpath("data/abbreviations.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        abbr, expansion = line.split("\t")[:2]
        out[fold(abbr)] = expansion.strip()
    return out


def expand(folded: str) -> str:
    """Expand abbreviations word by word (and the whole phrase first)."""
    table = abbreviations()
    if folded in table:
        return fold(table[folded])
    return " ".join(fold(table[w]) if w in table else w for w in folded.split())


def keys(text: str, *, drop_side: bool = True) -> Iterator[str]:
    """Candidate match keys for ``text``, most literal first, without repeats; the last one without the side words
    ("right", "left", "sided") unless ``drop_side`` is False (lexical retrieval keeps them)."""
    seen: set[str] = set()

    def emit(k: str) -> Iterator[str]:
        k = " ".join(k.split())
        if k and k not in seen:
            seen.add(k)
            yield k

    base = fold(text)
    yield from emit(base)
    words = [w for w in base.split() if w not in _DETERMINERS]
    yield from emit(" ".join(words))
    sing = [singular(w) for w in words]
    yield from emit(" ".join(sing))
    exp = expand(" ".join(sing))
    yield from emit(exp)
    yield from emit(" ".join(singular(w) for w in exp.split()))
    core = [w for w in exp.split() if w not in _MODIFIERS]
    yield from emit(" ".join(singular(w) for w in core))
    # without the side: the linker puts the side back from the mention (clinie.normalize.stage.side_of)
    if drop_side:
        yield from emit(" ".join(singular(w) for w in core if w not in _SIDES))
