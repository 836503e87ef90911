"""Generic findings coded by the site the note gives them ("pain" on the right-knee exam line -> M25.561).

The annotation guidelines ask for the site a note gives a site-less mention. ``data/sited_findings.tsv`` holds,
for the generic finding forms of the silver train notes ("pain", "swelling", "effusion", "ulcer", ...), the code
coders chose in context, per body site, with the side taken out (``corpora/aci-notes-train/condition_codes.py
sited``). At run time the site is the table's site phrase nearest to the mention in its sentence, else in its line;
the side goes back in by the normaliser's laterality step. No site found, or a (form, site) pair never coded: the
other tiers decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

from clinie.document import Document, Entity
from clinie.normalize.icd import lateral_variant
from clinie.normalize.text import fold, line_bounds, sentence_bounds

TABLE = "data/sited_findings.tsv"
_SIDE_BEFORE = re.compile(r"\b(right|left)\s+(?:\w+\s+)?$")  # "right knee", "left lower leg"


@dataclass(frozen=True)
class SitedFindings:
    codes: dict[tuple[str, str], str]  # (folded form, site) -> code with the side unspecified

    @classmethod
    def from_rows(cls, rows: list[tuple[str, str, str]]) -> SitedFindings:
        return cls({(fold(form), fold(site)): code for form, site, code in rows})

    @cached_property
    def forms(self) -> frozenset[str]:
        return frozenset(form for form, _ in self.codes)

    @cached_property
    def site_pattern(self) -> re.Pattern[str]:
        sites = sorted({site for _, site in self.codes}, key=len, reverse=True)
        alternatives = "|".join(r"\s+".join(map(re.escape, s.split())) for s in sites)
        return re.compile(rf"\b({alternatives})\b") if sites else re.compile(r"(?!)")

    def site_of(self, doc: Document, e: Entity) -> tuple[str, str | None] | None:
        """The site phrase nearest to the mention in its sentence, else in its line, with the side written right
        before it ("the right knee" -> ("knee", "right")); None if neither names a site."""
        text = doc.text
        for start, end in (sentence_bounds(text, e.start, e.end), line_bounds(text, e.start, e.end)):
            window = fold_keep_offsets(text[start:end])
            hits = [(abs(m.start() + start - e.start), m.start(), " ".join(m.group(1).split()))
                    for m in self.site_pattern.finditer(window)
                    if not (start + m.start() >= e.start and start + m.end() <= e.end)]
            if hits:
                _, at, site = min(hits)
                side = _SIDE_BEFORE.search(window[:at])
                return site, side.group(1) if side else None
        return None

    def code(self, doc: Document, e: Entity) -> str | None:
        """The code for a generic finding at the site its note gives, sided where the site is; None otherwise."""
        form = fold(doc.span_text(e))
        if form not in self.forms:
            return None
        found = self.site_of(doc, e)
        if found is None or (code := self.codes.get((form, found[0]))) is None:
            return None
        return (lateral_variant(code, found[1]) or code) if found[1] else code


def fold_keep_offsets(text: str) -> str:
    """Lowercase with every non-alphanumeric character a space: same length as ``text``, so offsets carry over."""
    return "".join(c.lower() if c.isalnum() else " " for c in text)


@lru_cache(maxsize=1)
def default_sited() -> SitedFindings:
    rows = []
    for line in resources.files("clinie.normalize").joinpath(TABLE).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            form, site, code = line.split("\t")[:3]
            rows.append((form, site, code))
    return SitedFindings.from_rows(rows)
