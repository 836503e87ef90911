"""Licensed terminologies the user points clinie at: RxNorm (``RXNCONSO.RRF``) and SNOMED CT (RF2 snapshot).

clinie ships neither (RxNorm needs a UMLS licence, SNOMED CT an affiliate licence or a national release); with
the files, ``clinie terminology build --rxnorm PATH --snomed PATH`` reads them once into a compact index
(``Terminology.save``, gzip JSON) that ``clinie.normalize.default_stages(..., terminology_path=...)`` loads.

**RxNorm** ``RXNCONSO.RRF``: pipe-delimited, 18 columns and a trailing ``|``, in this order: RXCUI, LAT, TS, LUI,
STT, SUI, ISPREF, RXAUI, SAUI, SCUI, SDUI, SAB, TTY, CODE, STR, SRL, SUPPRESS, CVF. Kept: ``SAB = RXNORM``,
``LAT = ENG``, ``SUPPRESS = N`` (or empty), term types IN (ingredient), PIN (precise ingredient), MIN (multiple
ingredients) and BN (brand name); the display of an RXCUI is its IN/PIN/MIN/BN string. The version is the
``SVER`` of the RXNORM row of ``RXNSAB.RRF`` next to it when present (else the date in a release folder name
``RxNorm_full_MMDDYYYY``).

**SNOMED CT** RF2 snapshot (tab-separated, header row): ``sct2_Concept_Snapshot*.txt`` (id, effectiveTime,
active, moduleId, definitionStatusId) and ``sct2_Description_Snapshot*.txt`` (id, effectiveTime, active,
moduleId, conceptId, languageCode, typeId, term, caseSignificanceId). Kept: active descriptions (FSN
900000000000003001 and synonyms 900000000000013009) of active concepts, language ``en``. The semantic tag of the
FSN ("disorder", "finding", "substance", ...) says what the concept is; the display is the synonym equal to the
FSN without its tag, else the FSN. The version is the SNOMED CT URI
``http://snomed.info/sct/<module>/version/<YYYYMMDD>`` (module = the edition's module of most concepts, date = the
latest effectiveTime).

Lookup (``Terminology``): conditions by their match keys against SNOMED CT disorder/finding terms; ingredients
(each part of a combination) against RxNorm IN/PIN/MIN strings and SNOMED CT substance terms.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clinie.normalize.text import fold, keys

RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED_SYSTEM = "http://snomed.info/sct"
TERMINOLOGY_FORMAT = "clinie-terminology-index-1"
RXNCONSO_COLUMNS = (
    "RXCUI", "LAT", "TS", "LUI", "STT", "SUI", "ISPREF", "RXAUI", "SAUI", "SCUI", "SDUI", "SAB", "TTY", "CODE",
    "STR", "SRL", "SUPPRESS", "CVF",
)  # fmt: skip
RXNORM_TTYS = ("IN", "PIN", "MIN", "BN")
RF2_CONCEPT_HEADER = ("id", "effectiveTime", "active", "moduleId", "definitionStatusId")
RF2_DESCRIPTION_HEADER = (
    "id", "effectiveTime", "active", "moduleId", "conceptId", "languageCode", "typeId", "term", "caseSignificanceId",
)  # fmt: skip
FSN_TYPE = "900000000000003001"
SYNONYM_TYPE = "900000000000013009"
CONDITION_TAGS = frozenset({"disorder", "finding"})
SUBSTANCE_TAGS = frozenset({"substance"})
_TAG = re.compile(r"\s*\(([^()]+)\)\s*$")


class TerminologyFileError(ValueError):
    """A file is not in the expected RRF / RF2 format."""


@dataclass
class CodeSystemIndex:
    """One loaded terminology: folded term -> codes (best first), code -> display, code -> kind, version."""

    system: str
    version: str | None
    terms: dict[str, list[str]] = field(default_factory=dict)
    displays: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # RxNorm: TTY; SNOMED CT: semantic tag

    def add(self, term: str, code: str, kind: str) -> None:
        key = fold(term)
        if not key:
            return
        codes = self.terms.setdefault(key, [])
        if code not in codes:
            codes.append(code)
        self.kinds.setdefault(code, kind)

    def lookup(self, text: str, kinds: frozenset[str] | tuple[str, ...]) -> str | None:
        for k in keys(text):
            for code in self.terms.get(k, ()):
                if self.kinds.get(code) in kinds:
                    return code
        return None

    def as_dict(self) -> dict[str, object]:
        return {"system": self.system, "version": self.version, "terms": self.terms, "displays": self.displays,
                "kinds": self.kinds}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CodeSystemIndex:
        return cls(str(data["system"]), data.get("version") and str(data["version"]),  # type: ignore[arg-type]
                   dict(data["terms"]), dict(data["displays"]), dict(data["kinds"]))  # type: ignore[call-overload]


# ------------------------------------------------------------------------------------------------ RxNorm


def _rxnconso_path(path: Path) -> Path:
    if path.is_dir():
        found = sorted(path.rglob("RXNCONSO.RRF"))
        if not found:
            raise TerminologyFileError(f"no RXNCONSO.RRF under {path}")
        return found[0]
    return path


def _rxnorm_version(conso: Path) -> str | None:
    sab = conso.with_name("RXNSAB.RRF")
    if sab.exists():
        for line in sab.read_text(encoding="utf-8").splitlines():  # RSAB is the 4th column, SVER the 7th
            cols = line.split("|")
            if len(cols) > 6 and cols[3] == "RXNORM" and cols[6]:
                return cols[6]
    for part in conso.parts[::-1]:
        if m := re.search(r"RxNorm_full_(\d{2})(\d{2})(\d{4})", part):
            return f"{m.group(3)}{m.group(1)}{m.group(2)}"
    return None


def load_rxnorm(path: str | Path) -> CodeSystemIndex:
    """``RXNCONSO.RRF`` (or a release folder containing it) -> the RxNorm ingredient/brand index."""
    conso = _rxnconso_path(Path(path))
    index = CodeSystemIndex(RXNORM_SYSTEM, _rxnorm_version(conso))
    rank = {t: i for i, t in enumerate(RXNORM_TTYS)}
    best: dict[str, int] = {}
    with open(conso, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            cols = line.rstrip("\r\n").split("|")
            if cols and cols[-1] == "":
                cols = cols[:-1]
            if len(cols) != len(RXNCONSO_COLUMNS):
                raise TerminologyFileError(f"{conso.name} line {n}: {len(cols)} fields, RRF has 18")
            row = dict(zip(RXNCONSO_COLUMNS, cols, strict=True))
            if row["SAB"] != "RXNORM" or row["LAT"] != "ENG" or row["SUPPRESS"] not in ("", "N"):
                continue
            tty = row["TTY"]
            if tty not in rank:
                continue
            cui = row["RXCUI"]
            index.add(row["STR"], cui, tty)
            if rank[tty] < best.get(cui, 99):
                best[cui] = rank[tty]
                index.displays[cui] = row["STR"]
    return index


# ------------------------------------------------------------------------------------------------ SNOMED CT


def _rf2_rows(path: Path, header: tuple[str, ...]) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        first = next(reader, None)
        if first is None or tuple(first) != header:
            raise TerminologyFileError(f"{path.name}: not an RF2 file with the header {' '.join(header)}")
        for row in reader:
            if len(row) == len(header):
                yield dict(zip(header, row, strict=True))


def _rf2_file(path: Path, prefix: str) -> Path:
    if path.is_file():
        return path
    found = sorted(path.rglob(f"{prefix}*.txt"))
    if not found:
        raise TerminologyFileError(f"no {prefix}*.txt under {path}")
    return found[0]


def load_snomed(path: str | Path) -> CodeSystemIndex:
    """An RF2 snapshot folder (or its Terminology folder) -> the SNOMED CT term index."""
    root = Path(path)
    concept_file = _rf2_file(root, "sct2_Concept_Snapshot")
    description_file = _rf2_file(root if root.is_dir() else root.parent, "sct2_Description_Snapshot")
    active: set[str] = set()
    modules: Counter[str] = Counter()
    latest = ""
    for row in _rf2_rows(concept_file, RF2_CONCEPT_HEADER):
        if row["active"] == "1":
            active.add(row["id"])
            modules[row["moduleId"]] += 1
            latest = max(latest, row["effectiveTime"])
    fsn: dict[str, str] = {}
    synonyms: dict[str, list[str]] = {}
    for row in _rf2_rows(description_file, RF2_DESCRIPTION_HEADER):
        if row["active"] != "1" or row["conceptId"] not in active or row["languageCode"] != "en":
            continue
        latest = max(latest, row["effectiveTime"])
        if row["typeId"] == FSN_TYPE:
            fsn[row["conceptId"]] = row["term"]
        elif row["typeId"] == SYNONYM_TYPE:
            synonyms.setdefault(row["conceptId"], []).append(row["term"])
    module = modules.most_common(1)[0][0] if modules else None
    version = f"{SNOMED_SYSTEM}/{module}/version/{latest}" if module and latest else None
    index = CodeSystemIndex(SNOMED_SYSTEM, version)
    for cid, full in fsn.items():
        m = _TAG.search(full)
        tag = m.group(1) if m else ""
        bare = full[: m.start()] if m else full
        syns = synonyms.get(cid, [])
        index.displays[cid] = next((s for s in syns if s == bare), full)
        for term in (bare, *syns):
            index.add(term, cid, tag)
    return index


# ------------------------------------------------------------------------------------------------ together


@dataclass
class Terminology:
    """The loaded licensed terminologies (either may be absent)."""

    rxnorm: CodeSystemIndex | None = None
    snomed: CodeSystemIndex | None = None

    @property
    def versions(self) -> dict[str, str]:
        return {i.system: i.version or "unknown" for i in (self.rxnorm, self.snomed) if i is not None}

    def condition_codes(self, text: str) -> list[str]:
        """``system|code`` tokens for a condition mention (SNOMED CT disorder/finding)."""
        if self.snomed is None:
            return []
        code = self.snomed.lookup(text, CONDITION_TAGS)
        return [f"{SNOMED_SYSTEM}|{code}"] if code else []

    def ingredient_codes(self, ingredient: str) -> list[str]:
        """RxNorm IN/PIN/MIN and SNOMED CT substance codes of each part of an ingredient."""
        out: list[str] = []
        for part in ingredient.split(" / "):
            if self.rxnorm is not None and (code := self.rxnorm.lookup(part, ("IN", "PIN", "MIN"))):
                out.append(f"{RXNORM_SYSTEM}|{code}")
            if self.snomed is not None and (code := self.snomed.lookup(part, SUBSTANCE_TAGS)):
                out.append(f"{SNOMED_SYSTEM}|{code}")
        return list(dict.fromkeys(out))

    def register(self) -> None:
        """Let ``clinie.normalize.codings`` give the displays and versions of these systems' codes."""
        from clinie.normalize.codings import register

        for index in (self.rxnorm, self.snomed):
            if index is not None:
                register(index.system, index.version, index.displays.get)

    def save(self, path: str | Path) -> None:
        data = {"format": TERMINOLOGY_FORMAT,
                "rxnorm": self.rxnorm.as_dict() if self.rxnorm else None,
                "snomed": self.snomed.as_dict() if self.snomed else None}
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump(data, fh)

    @classmethod
    def load(cls, path: str | Path) -> Terminology:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("format") != TERMINOLOGY_FORMAT:
            raise TerminologyFileError(f"{path}: not a {TERMINOLOGY_FORMAT} file")
        return cls(*(CodeSystemIndex.from_dict(data[k]) if data.get(k) else None for k in ("rxnorm", "snomed")))

    @classmethod
    def from_release_files(cls, rxnorm: str | Path | None = None, snomed: str | Path | None = None) -> Terminology:
        return cls(load_rxnorm(rxnorm) if rxnorm else None, load_snomed(snomed) if snomed else None)
