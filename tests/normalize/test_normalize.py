"""Normalisation: match keys, the ICD-10-CM linker tiers and threshold, drug ingredients, the stage."""

from __future__ import annotations

import pytest

from clinie.document import Document, Entity
from clinie.normalize.drugs import normalize_drug
from clinie.normalize.icd import ICD10CM_SYSTEM, INDEX_FORMAT, IcdIndex
from clinie.normalize.stage import Normalizer
from clinie.normalize.text import expand, fold, keys, singular


def small_index() -> IcdIndex:
    return IcdIndex({
        "format": INDEX_FORMAT,
        "version": "test",
        "displays": {"I10": "Essential (primary) hypertension", "R21": "Rash", "L27.0": "Drug rash",
                     "M25.561": "Pain in right knee", "R52": "Pain, unspecified", "R05.9": "Cough, unspecified",
                     "J45.909": "Unspecified asthma, uncomplicated"},
        "tiers": [{"hypertension": ["I10"], "rash": ["R21"], "right knee pain": ["M25.561"], "pain": ["R52"]},
                  {"cough": ["R05.9"]},
                  {"asthma uncomplicated": ["J45.909"]}],
        "ade": {"rash": "L27.0"},
    })


def test_keys_and_text() -> None:
    assert fold("Right-sided  Pain!") == "right sided pain"
    assert singular("aches") == "ache" and singular("diabetes") == "diabetes" and singular("bronchitis") == (
        "bronchitis")
    assert expand("htn") == "hypertension"
    ks = list(keys("Some mild HTN"))
    assert ks[0] == "some mild htn" and "hypertension" in ks


def test_icd_tiers_abbreviation_ade_and_lexical() -> None:
    ix = small_index()
    hit = ix.link("HTN")
    assert hit is not None and hit.code == "I10" and hit.coding == f"{ICD10CM_SYSTEM}|I10"
    assert ix.link("Rash").code == "R21"  # type: ignore[union-attr]
    assert ix.link("rash", ade=True).code == "L27.0"  # type: ignore[union-attr]
    assert ix.link("coughs").source == "vocab"  # type: ignore[union-attr]
    lex = ix.link("asthma, mild")
    assert lex is not None and lex.source == "lexical" and lex.code == "J45.909" and lex.score < 0.9


def test_stage_threshold_site_and_drugs() -> None:
    text = "Right knee: pain. Wheezy thing. Took Crestor and Toprol XL."
    ents = (Entity("T1", "Problem", 12, 16), Entity("T2", "Problem", 18, 30),
            Entity("T3", "Drug", 37, 44), Entity("T4", "Drug", 49, 58))
    doc = Document("d", text, entities=ents)
    out = Normalizer(small_index(), threshold=0.5)(doc)
    assert out.entity("T1").codes == (f"{ICD10CM_SYSTEM}|M25.561",)  # site from the line
    assert out.entity("T2").codes == ()  # nothing above the threshold: text only
    assert out.entity("T3").ingredient == "rosuvastatin"
    assert out.entity("T4").ingredient == "metoprolol"
    assert any(c.endswith("|DB01098") for c in out.entity("T3").codes)


@pytest.mark.parametrize(
    ("mention", "ingredient"),
    [("Norvasc", "amlodipine"), ("metformin 500 mg", "metformin"), ("Augmentin", "amoxicillin / clavulanate"),
     ("NSAIDs", "nsaids"), ("Tylenol", "acetaminophen"), ("lisinopril", "lisinopril")],
)
def test_drug_ingredient(mention: str, ingredient: str) -> None:
    m = normalize_drug(mention)
    assert m is not None and m.ingredient == ingredient


def test_unknown_drug_stays_unset() -> None:
    assert normalize_drug("zzqx") is None
    assert normalize_drug("--") is None  # a span of punctuation only
    assert small_index().link("(.)") is None


@pytest.mark.parametrize(
    ("mention", "code"),
    [
        ("aortic stenosis", "I35.0"),  # not the congenital Q23.0 that word overlap picked
        ("Lupus", "M32.9"),
        ("breast cancer", "C50.919"),
        ("PVCs", "I49.3"),
        ("rebound tenderness", "R10.829"),
        ("peptic ulcer disease", "K27.9"),
        ("uncontrolled sleep apnea", "G47.33"),  # 'uncontrolled' no longer blocks the curated form
        ("chronic neck pain", "M54.2"),
    ],
)
def test_common_visit_note_forms(mention: str, code: str) -> None:
    from clinie.normalize.icd import default_index

    hit = default_index().link(mention)
    assert hit is not None and hit.code == code


def test_side_is_dropped_for_lookup_and_put_back() -> None:
    keys_ = list(keys("Right heel pain"))
    assert keys_[-1] == "heel pain"
    assert list(keys("Right heel pain", drop_side=False))[-1] == "right heel pain"
    text = "She has right heel pain. Elbow pain too."
    a, b = text.index("right heel pain"), text.index("Elbow pain")
    doc = Document("n1", text, entities=(Entity("T1", "Problem", a, a + 15), Entity("T2", "Problem", b, b + 10)))
    out = Normalizer()(doc)
    assert out.entity("T1").codes[0] == f"{ICD10CM_SYSTEM}|M79.671"  # M79.673 + right
    assert out.entity("T2").codes[0] == f"{ICD10CM_SYSTEM}|M25.529"  # 'Pain in unspecified elbow', no side said


def test_exam_line_organ_codes_a_generic_finding() -> None:
    text = "Examination of Pharynx: mild erythema, no exudate.\nLumbar spine exam: pain on palpation."
    spans = [("erythema", "J39.2"), ("exudate", "J39.2"), ("pain", "M54.50")]
    ents = tuple(Entity(f"T{i}", "Problem", text.index(w), text.index(w) + len(w)) for i, (w, _) in enumerate(spans))
    out = Normalizer()(Document("n2", text, entities=ents))
    for i, (_, code) in enumerate(spans):
        assert out.entity(f"T{i}").codes[0] == f"{ICD10CM_SYSTEM}|{code}"


def _table(name: str) -> list[tuple[str, list[str], str]]:
    from importlib import resources

    rows = []
    for line in resources.files("clinie.normalize").joinpath(name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            code, forms, ade = [*line.split("\t"), ""][:3]
            rows.append((code, forms.split("|"), ade))
    return rows


@pytest.mark.parametrize(("name", "minimum"), [("data/conditions_silver.tsv", 300),
                                               ("data/conditions_lexicon.tsv", 2000)])
def test_coded_tables_hold_billable_codes(name: str, minimum: int) -> None:
    icd = pytest.importorskip("simple_icd_10_cm")
    rows = _table(name)
    assert len(rows) > minimum
    for code, forms, ade in rows:
        for c in filter(None, (code, ade)):
            assert icd.is_valid_item(c) and icd.is_leaf(c), (c, forms)


def test_curated_tables_link_exactly_and_the_earlier_table_wins() -> None:
    """conditions.tsv, then conditions_silver.tsv, then conditions_lexicon.tsv: a form takes the code of the first
    table that lists it (by its first match key), for plain and for ADE mentions."""
    from clinie.normalize.icd import CURATED_TABLES, default_index

    ix = default_index()
    first: dict[str, str] = {}
    first_ade: dict[str, str] = {}
    checked = 0
    for name in CURATED_TABLES:
        for code, forms, ade in _table(name):
            for form in forms:
                k = next(iter(keys(form)))
                if ade:
                    expected_ade = first_ade.setdefault(k, ade)
                    hit = ix.exact(form, ade=True)
                    assert hit is not None and hit.code == expected_ade, (name, form)
                if not code:
                    continue  # an ADE-only row adds no code for other mentions
                expected = first.setdefault(k, code)
                hit = ix.exact(form)
                assert hit is not None and hit.source == "curated", (name, form)
                assert hit.code == expected, (name, form)
                checked += 1
    assert checked > 8000


def test_lexicon_codes_forms_the_other_tables_lack() -> None:
    from clinie.normalize.icd import IcdIndex, default_index

    without = IcdIndex.build(("data/conditions.tsv", "data/conditions_silver.tsv"))
    with_lexicon = default_index()
    for form, code in [("plantar fasciitis", "M72.2"), ("trigger finger", "M65.30"), ("afib", "I48.91")]:
        hit = with_lexicon.exact(form)
        assert hit is not None and (hit.code, hit.source) == (code, "curated"), form
    assert without.exact("positive finkelstein test") is None
    assert with_lexicon.exact("positive finkelstein test") is not None
