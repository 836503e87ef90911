"""Vocabularies for synthetic notes: curated data files in ``data/`` plus the packaged drug dictionary
(drug-named-entity-recognition) and ICD-10-CM descriptions (simple-icd-10-cm)."""

from __future__ import annotations

import bz2
import csv
import json
import pickle
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).with_name("data")


@dataclass(frozen=True)
class ProblemInfo:
    code: str
    kind: str  # chronic | acute | symptom | finding | lab
    forms: tuple[str, ...]  # clinician forms first, then simplified ICD-10-CM terms
    abbrevs: tuple[str, ...]
    n_curated: int = 1  # forms[:n_curated] are the curated clinician forms
    sex: str | None = None  # "male"/"female" for sex-specific conditions

    @property
    def curated(self) -> tuple[str, ...]:
        return self.forms[: self.n_curated]

    @property
    def icd_forms(self) -> tuple[str, ...]:
        return self.forms[self.n_curated :]


@dataclass(frozen=True)
class DrugInfo:
    generic: str
    ingredient: str
    brands: tuple[str, ...]
    variants: tuple[str, ...]
    strengths: tuple[str, ...]
    unit: str
    form: str
    route: str
    freq_kinds: tuple[str, ...]
    indications: tuple[str, ...]
    prn_reason: str | None
    long_tail: bool = False


@dataclass(frozen=True)
class DrugClass:
    text: str
    ingredient: str
    indications: tuple[str, ...]
    routes: tuple[str, ...] = ()  # route kinds that may be written before it ("oral steroids", "IV fluids")


@dataclass(frozen=True)
class Allergen:
    text: str
    ingredient: str
    reactions: tuple[str, ...]
    code: str


@dataclass(frozen=True)
class Vocab:
    problems: dict[str, ProblemInfo]
    drugs: tuple[DrugInfo, ...]
    long_tail: tuple[DrugInfo, ...]
    classes: tuple[DrugClass, ...]
    adverse: dict[str, tuple[tuple[str, ...], str]]  # ingredient -> (effects, code)
    allergens: tuple[Allergen, ...]
    sig: dict[str, Any]
    ros: dict[str, list[list[str]]]
    exam: dict[str, dict[str, list[Any]]]
    names: dict[str, list[str]]
    presentations: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (code prefix, symptoms, exam systems)
    results: tuple[tuple[str, str, str], ...]  # (before, problem code, after)
    narrative: dict[str, list[str]]  # sentences without entities: hpi, instructions, social, family

    def presentation(self, code: str) -> tuple[list[ProblemInfo], list[str]]:
        """Typical symptoms and exam systems of a problem (longest matching code prefix)."""
        best = max((p for p in self.presentations if code.startswith(p[0])), key=lambda p: len(p[0]), default=None)
        if best is None:
            return [], []
        return [self.problems[c] for c in best[1] if c in self.problems], list(best[2])

    def by_kind(self, kind: str) -> list[ProblemInfo]:
        return [p for p in self.problems.values() if p.kind == kind]

    def drugs_for(self, code: str) -> list[DrugInfo]:
        return [d for d in self.drugs if code in d.indications]


def _rows(name: str) -> list[list[str]]:
    with open(DATA_DIR / name, encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip() and not line.startswith("#")]
    return [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter="\t")]


def _split(cell: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in cell.split("|") if x.strip())


def _json(name: str) -> Any:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


_DROP = re.compile(
    r"\b(unspecified|NOS|not elsewhere classified|site not specified|without complications|uncomplicated|"
    r"without esophagitis|initial encounter)\b",
    re.IGNORECASE,
)
_BAD = re.compile(r"\[|\b(other|and|or|due to|with|without|specified|classified|encounter|sequela|type [A-Z])\b|\d|,|/")


def simplify_icd_term(term: str) -> str | None:
    """An ICD-10-CM description as a clinician writes it, or None where it does not read naturally."""
    t = re.sub(r"\s*\([^)]*\)", "", term)  # parenthetical non-essential modifiers
    t = _DROP.sub("", t)
    t = re.sub(r"^\s*unspecified\s+", "", t, flags=re.IGNORECASE)
    t = re.sub(r"[\s,]+$", "", re.sub(r"\s{2,}", " ", t)).strip(" ,;")
    m = re.fullmatch(r"Pain in (right|left) (\w+)", t)
    if m:
        t = f"{m.group(1)} {m.group(2)} pain"
    if not t or _BAD.search(t) or len(t.split()) > 5 or len(t) < 3:
        return None
    # lowercase except acronyms and eponyms (a capitalized word after the first)
    words = t.split()
    first = words[0] if words[0].isupper() else words[0].lower()
    return " ".join([first, *words[1:]])


@lru_cache(maxsize=1)
def _icd_terms() -> dict[str, tuple[str, ...]]:
    import simple_icd_10_cm as icd

    out: dict[str, tuple[str, ...]] = {}
    for row in _rows("problems.tsv"):
        code = row[0]
        description = icd.get_description(code)
        if description.lower().startswith("other"):  # a catch-all code: its inclusion terms name other things
            continue
        terms = [description, *icd.get_inclusion_term(code)]
        simple = [s for s in (simplify_icd_term(t) for t in terms) if s]
        out[code] = tuple(dict.fromkeys(simple))
    return out


def icd_is_valid(code: str) -> bool:
    import simple_icd_10_cm as icd

    return bool(icd.is_valid_item(code))


@lru_cache(maxsize=1)
def drug_dictionary() -> dict[str, list[str]]:
    """drug variant (lowercase) -> canonical generic names, from drug-named-entity-recognition."""
    path = resources.files("drug_named_entity_recognition").joinpath("drug_ner_dictionary.pkl.bz2")
    with resources.as_file(path) as p, bz2.open(p, "rb") as fh:
        data = pickle.load(fh)  # the package's own shipped dictionary
    return dict(data["drug_variant_to_canonical"])


@lru_cache(maxsize=1)
def _drug_canonical_data() -> dict[str, dict[str, Any]]:
    path = resources.files("drug_named_entity_recognition").joinpath("drug_ner_dictionary.pkl.bz2")
    with resources.as_file(path) as p, bz2.open(p, "rb") as fh:
        data = pickle.load(fh)
    return dict(data["drug_canonical_to_data"])


def _ingredient(generic: str) -> str:
    return " / ".join(sorted(part.strip() for part in generic.lower().split(" and ")))


def _long_tail(curated: set[str], limit: int = 400) -> tuple[DrugInfo, ...]:
    """Less common single-ingredient drugs (MedlinePlus entries of the package), for medication-list variety."""
    canon = _drug_canonical_data()
    names = sorted(
        k
        for k, v in canon.items()
        if v.get("medline_plus_id")
        and re.fullmatch(r"[a-z]{6,16}", k)
        and k not in curated
        and not k.endswith(("mab", "cept", "vaccine", "toxin", "ase", "cel"))
    )
    step = max(1, len(names) // limit)
    picked = names[::step][:limit]
    return tuple(
        DrugInfo(
            generic=n, ingredient=n, brands=(), variants=(), strengths=("5", "10", "25", "50", "100"), unit="mg",
            form="tablet", route="oral", freq_kinds=("daily", "bid"), indications=(), prn_reason=None, long_tail=True,
        )
        for n in picked
    )


@lru_cache(maxsize=1)
def load_vocab() -> Vocab:
    icd_terms = _icd_terms()
    problems: dict[str, ProblemInfo] = {}
    for row in _rows("problems.tsv"):
        code, kind, forms, abbrevs, sex = ([*row, "", "", "", "", ""])[:5]
        curated = _split(forms)
        extra = tuple(t for t in icd_terms.get(code, ()) if t.lower() not in {f.lower() for f in curated})
        if code in problems:  # the same code listed under two kinds: keep the first, add forms
            continue
        problems[code] = ProblemInfo(code, kind, curated + extra, _split(abbrevs), len(curated), sex or None)
    drugs = []
    for row in _rows("drugs.tsv"):
        generic, brands, variants, strengths, unit, form, route, freqs, indications, prn = (row + [""] * 10)[:10]
        drugs.append(
            DrugInfo(
                generic=generic, ingredient=_ingredient(generic), brands=_split(brands), variants=_split(variants),
                strengths=_split(strengths), unit=unit, form=form, route=route, freq_kinds=_split(freqs),
                indications=_split(indications), prn_reason=prn or None,
            )
        )
    curated_names = {d.generic for d in drugs} | {v.lower() for d in drugs for v in d.brands + d.variants}
    classes = tuple(DrugClass(r[0], r[1], _split(r[2]), _split([*r, ""][3])) for r in _rows("drug_classes.tsv"))
    adverse: dict[str, tuple[tuple[str, ...], str]] = {}
    for r in _rows("adverse.tsv"):
        effects, code = adverse.get(r[0], ((), r[2]))
        adverse[r[0]] = (effects + _split(r[1]), code)
    allergens = tuple(Allergen(r[0], r[1], _split(r[2]), r[3]) for r in _rows("allergens.tsv"))
    return Vocab(
        problems=problems,
        drugs=tuple(drugs),
        long_tail=_long_tail(curated_names),
        classes=classes,
        adverse=adverse,
        allergens=allergens,
        sig=_json("sig.json"),
        ros=_json("ros.json"),
        exam=_json("exam.json"),
        names=_json("names.json"),
        presentations=tuple((r[0], _split(r[1]), _split(r[2])) for r in _rows("presentations.tsv")),
        results=tuple((r[0], r[1], r[2]) for r in _rows("results.tsv")),
        narrative=_json("narrative.json"),
    )
