"""Synthetic clinical notes with exact gold annotations (label schema v1.1, annotation-guidelines.md).

Every note is built left to right by appending pieces to a :class:`NoteBuilder`, so entity offsets are correct by
construction. A note is planned from a sampled patient (chronic problems with their medications, a reason for the
visit, symptoms, allergies, an adverse drug event) and rendered as a clinic visit, ED note, discharge summary or
progress note with varied section headers, sig styles and noise.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from clinie.augment.builder import NoteBuilder
from clinie.augment.validate import validate_document
from clinie.augment.vocab import DrugClass, DrugInfo, ProblemInfo, Vocab, load_vocab

T = TypeVar("T")
NOTE_TYPES = ("clinic", "ed", "discharge", "progress")
BULLETS = ("• ", "- ", "* ", "")
_TOPICAL_UNITS = ("cream", "ointment", "gel")  # written "triamcinolone 0.1% cream, apply a thin layer topically"


# ---------------------------------------------------------------------------------------------------- planning
@dataclass
class Med:
    """One medication of the patient: the drug, a chosen strength/frequency and what it is for."""

    drug: DrugInfo
    strength: str
    freq_kind: str
    reason: ProblemInfo | None
    name: str  # how this note usually writes it
    new: bool = False
    duration: bool = False


@dataclass
class Patient:
    first: str
    last: str
    age: int
    sex: str
    chronic: list[ProblemInfo]
    meds: list[Med]
    acute: ProblemInfo
    symptoms: list[ProblemInfo]
    negatives: list[ProblemInfo]
    new_meds: list[Med]
    class_mention: DrugClass | None
    ade: tuple[Med, str, str] | None  # (med, effect text, code)
    allergies: list[tuple[str, str, str | None, str]]  # (allergen, ingredient, reaction, code)
    history: list[ProblemInfo]  # past, resolved problems
    differential: ProblemInfo | None
    warnings: list[ProblemInfo]  # return precautions (hypothetical)
    exam_systems: list[str] = field(default_factory=list)  # systems where the visit's findings are

    @property
    def he(self) -> str:
        return "he" if self.sex == "male" else "she"

    @property
    def his(self) -> str:
        return "his" if self.sex == "male" else "her"

    @property
    def him(self) -> str:
        return "him" if self.sex == "male" else "her"


class Writer:
    """A NoteBuilder with a random source and the rendering helpers of entity mentions."""

    def __init__(self, vocab: Vocab, rng: random.Random) -> None:
        self.v = vocab
        self.rng = rng
        self.b = NoteBuilder()
        self.forms: dict[str, str] = {}  # problem code -> the form this note uses
        self.typo_rate = rng.choice((0.0, 0.0, 0.01, 0.02, 0.04))

    # -- randomness
    def p(self, prob: float) -> bool:
        return self.rng.random() < prob

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.rng.randrange(len(seq))]

    # -- plain text (with occasional typos in non-entity words)
    def t(self, text: str) -> None:
        if self.typo_rate and len(text) > 8:
            words = text.split(" ")
            for i, w in enumerate(words):
                if len(w) > 5 and w.isalpha() and w.islower() and self.p(self.typo_rate):
                    j = self.rng.randrange(1, len(w) - 2)
                    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
            text = " ".join(words)
        self.b.add(text)

    # -- problems
    def form(self, prob: ProblemInfo, *, fresh: bool = False) -> str:
        if prob.code in self.forms and not fresh and self.p(0.75):
            return self.forms[prob.code]
        if prob.abbrevs and self.p(0.3):
            f = self.pick(prob.abbrevs)
        elif prob.icd_forms and self.p(0.1):
            f = self.pick(prob.icd_forms)
        else:
            f = self.pick(prob.curated)
        self.forms.setdefault(prob.code, f)
        return f

    def problem(self, prob: ProblemInfo, label: str = "Problem", *, cap: bool = False, text: str | None = None,
                negated: bool = False, uncertain: bool = False, hypothetical: bool = False,
                historical: bool = False) -> int:
        f = text or self.form(prob)
        if cap and f[:1].islower():
            f = f[0].upper() + f[1:]
        return self.b.ent(f, label, code=prob.code, negated=negated, uncertain=uncertain, hypothetical=hypothetical,
                          historical=historical)

    def problem_list(self, probs: Sequence[ProblemInfo], conj: str = "and", label: str = "Problem",
                     negated: bool = False, hypothetical: bool = False) -> list[int]:
        handles = []
        for i, prob in enumerate(probs):
            if i:
                self.t(f", {conj} " if i == len(probs) - 1 and len(probs) > 2 else (f" {conj} " if i == len(probs)
                       - 1 else ", "))
            handles.append(self.problem(prob, label, negated=negated, hypothetical=hypothetical))
        return handles

    # -- drugs and sigs
    def drug_name(self, drug: DrugInfo) -> str:
        r = self.rng.random()
        if drug.brands and r < 0.35:
            return self.pick(drug.brands)
        if drug.variants and r < 0.5:
            return self.pick(drug.variants)
        name = drug.generic
        return name.capitalize() if self.p(0.1) else name

    def drug(self, med: Med | DrugInfo, *, fresh: bool = False, cap: bool = False, upper: bool = False) -> int:
        info = med.drug if isinstance(med, Med) else med
        name = med.name if isinstance(med, Med) and not (fresh and self.p(0.5)) else self.drug_name(info)
        if upper:
            name = name.upper()
        elif cap:
            name = name[0].upper() + name[1:]
        return self.b.ent(name, "Drug", ingredient=info.ingredient)

    def drug_class(self, cls: DrugClass, *, route: bool = False) -> int:
        """A drug class ("steroids", "an antibiotic": the article stays outside the span); with ``route``, a route
        written before it where the class allows one ("oral steroids", "an IV antibiotic", "IV fluids"), linked
        as Route-Drug."""
        article, _, name = cls.text.partition(" ") if cls.text.startswith(("a ", "an ")) else ("", "", cls.text)
        prefix = self.route_prefix(self.pick(cls.routes)) if route and cls.routes else None
        if article:
            vowel = prefix is not None and (prefix[0].lower() in "aeiou" or prefix.startswith("IV"))
            self.t("an " if vowel else f"{article} " if prefix is None else "a ")
        r = None
        if prefix is not None:
            r = self.b.ent(prefix, "Route")
            self.t(" ")
        d = self.b.ent(name, "Drug", ingredient=cls.ingredient)
        self.b.link(r, d)
        return d

    def route_prefix(self, kind: str) -> str | None:
        """A route as written before the drug ("oral", "topical", "IV"), or None where that route has no such form."""
        forms = self.v.sig["route_prefixes"].get(kind)
        return self.pick(forms) if forms else None

    def dose_text(self, med: Med) -> str:
        d = med.drug
        if d.unit == "puffs":
            return f"{med.strength} puffs"
        if d.unit in _TOPICAL_UNITS:
            return med.strength
        if d.unit == "mg" and self.p(0.25):
            return f"{med.strength}mg"
        return f"{med.strength} {d.unit}"

    def route_text(self, med: Med) -> str | None:
        routes = self.v.sig["routes"].get(med.drug.route)
        return self.pick(routes) if routes else None

    def freq_text(self, kind: str) -> str:
        return self.pick(self.v.sig["frequencies"][kind])

    def duration_text(self) -> str:
        tpl = self.pick(self.v.sig["durations"])
        return tpl.format(n=self.pick(self.v.sig["duration_days"]), w=self.pick(self.v.sig["duration_weeks"]),
                          m=self.pick(self.v.sig["duration_months"]))

    def sig(self, med: Med, drug: int, *, style: str | None = None, reason: bool = True,
            duration: bool | None = None) -> list[int]:
        """Write the sig after a drug mention (starting with a space); return the handles of its attributes."""
        d = med.drug
        style = style or self.pick(("list", "list", "compact", "tablet", "words", "dose_only", "freq_only"))
        attrs: list[int] = []

        def put(text: str, label: str) -> None:
            self.t(" ")
            attrs.append(self.b.ent(text, label))

        prn = med.freq_kind == "prn"
        if d.unit in _TOPICAL_UNITS:
            self.t(f" {med.strength} {d.unit}, apply a thin layer")
            route = self.route_text(med) or "topically"
            put("topically" if route == "topical" else route, "Route")  # "apply a thin layer topically"
            put(self.freq_text(med.freq_kind if not prn else "bid"), "Frequency")
        elif style == "tablet" and d.form in ("tablet", "capsule"):
            put(self.dose_text(med), "Dosage")
            self.t(f" {d.form}, take")
            count = self.pick(("1", "one", "1", "2")) if not med.strength.startswith(("1000", "800")) else "1"
            form_word = self.pick(self.v.sig["dose_forms"].get(d.form) or [d.form])
            if count not in ("1", "one"):
                form_word += "s"
            put(f"{count} {form_word}", "Dosage")
            r = self.route_text(med)
            if r:
                put(r, "Route")
            put(self.freq_text(med.freq_kind), "Frequency")
        elif style == "words" and d.unit in ("mg", "mcg", "g", "units"):
            self.t(",")
            put(self.dose_text(med), "Dosage")
            r = self.route_text(med)
            if r:
                put(r, "Route")
            put(self.freq_text(med.freq_kind), "Frequency")
        elif style == "dose_only":
            put(self.dose_text(med), "Dosage")
        elif style == "freq_only":
            put(self.freq_text(med.freq_kind), "Frequency")
        else:  # list / compact
            put(self.dose_text(med), "Dosage")
            if style == "list" or d.route not in ("oral",):
                r = self.route_text(med)
                if r:
                    put(r, "Route")
            put(self.freq_text(med.freq_kind), "Frequency")
        if duration if duration is not None else (med.duration and self.p(0.8)):
            put(self.duration_text(), "Duration")
        self.b.link_all(attrs, [drug])
        if reason and med.reason is not None and (prn or self.p(0.35)):
            self.t(" " if prn and self.p(0.3) else " for ")
            r_handle = self.problem(med.reason, "Reason")
            self.b.link(r_handle, drug)
            attrs.append(r_handle)
        return attrs

    def med_phrase(self, med: Med, *, style: str | None = None, reason: bool = True, cap: bool = False,
                   duration: bool | None = None, upper: bool = False) -> int:
        prefix = self.route_prefix(med.drug.route) if med.drug.route != "oral" and self.p(0.2) else None
        route = None
        if prefix is not None:  # the route as an adjective: "topical hydrocortisone", "IV ceftriaxone"
            prefix = prefix.upper() if upper else prefix[0].upper() + prefix[1:] if cap else prefix
            route = self.b.ent(prefix, "Route")
            self.t(" ")
            cap = False
        drug = self.drug(med, cap=cap, upper=upper)
        self.b.link(route, drug)
        if style != "none":
            self.sig(med, drug, style=style, reason=reason, duration=duration)
        elif reason and med.reason is not None and self.p(0.5):
            self.t(" for ")
            self.b.link(self.problem(med.reason, "Reason"), drug)
        return drug


# ---------------------------------------------------------------------------------------------------- sampling
# Injected drugs written with the form as route ("steroid injection"), and where they go.
_INJECTABLES = (("steroid", "corticosteroids"), ("cortisone", "cortisone"), ("corticosteroid", "corticosteroids"),
                ("Kenalog", "triamcinolone"), ("Toradol", "ketorolac"), ("Depo-Medrol", "methylprednisolone"),
                ("cortisone", "cortisone"), ("steroid", "corticosteroids"))
_INJECTION_SITES = (" into the right knee", " to the left shoulder", " into the lumbar spine", " into the hip joint",
                    " under fluoroscopy", "", " today", " if symptoms persist")


def _pronoun_cap(word: str) -> str:
    return word[0].upper() + word[1:]


def sample_patient(v: Vocab, rng: random.Random, w: Writer, note_type: str = "clinic", verbosity: int = 1) -> Patient:
    sex = rng.choice(("male", "female"))
    first = rng.choice(v.names[sex])
    last = rng.choice(v.names["last"])
    age = rng.randint(19, 88)
    chronic_pool = [p for p in v.by_kind("chronic") if v.drugs_for(p.code) and p.sex in (None, sex)]
    chronic = rng.sample(chronic_pool, min(len(chronic_pool), rng.choice((1, 2, 2, 3, 3, 4, 5, 6)) + verbosity // 2))
    meds: list[Med] = []
    for prob in chronic:
        options = [d for d in v.drugs_for(prob.code) if d.freq_kinds != ("prn",)]
        for drug in rng.sample(options, min(len(options), rng.choice((0, 1, 1, 1, 2)))):
            if all(m.drug.generic != drug.generic for m in meds):
                meds.append(_med(w, drug, prob))
    for drug in rng.sample(v.long_tail, rng.choice((0, 0, 0, 1, 1, 2))):
        meds.append(_med(w, drug, None))
    acute_pool = v.by_kind("acute") + [p for p in chronic_pool if p not in chronic][:10]
    if note_type in ("ed", "discharge"):  # conditions treated with IV drugs in hospital
        inpatient = [p for p in acute_pool if any(d.route == "iv" for d in v.drugs_for(p.code))]
        acute_pool = inpatient or acute_pool
    acute = rng.choice(acute_pool)
    typical, systems = v.presentation(acute.code)
    symptoms = rng.sample(typical, min(len(typical), rng.randint(1, 3))) if typical else []
    if not symptoms or rng.random() < 0.25:
        symptoms.append(rng.choice([p for p in v.by_kind("symptom") if p not in symptoms]))
    negatives = [p for p in rng.sample(v.by_kind("symptom"), 10) if p not in symptoms and p.code not in
                 {s.code for s in symptoms}][: rng.randint(2, 6)]
    new_meds = []
    options = [d for d in v.drugs_for(acute.code) if all(m.drug.generic != d.generic for m in meds)
               and (d.route != "iv" or note_type == "ed")]
    if not options:  # symptomatic treatment
        options = [d for d in v.drugs if d.prn_reason and d.route == "oral"
                   and any(s.code == d.prn_reason for s in symptoms)]
    picked = rng.sample(options, min(len(options), rng.choice((0, 1, 1, 1, 1))))
    symptomatic = [d for d in v.drugs if d.prn_reason and d.route == "oral" and d not in picked
                   and any(s.code == d.prn_reason for s in symptoms)]
    if symptomatic and rng.random() < 0.4:
        picked.append(rng.choice(symptomatic))
    for drug in picked:
        reason = v.problems.get(drug.prn_reason or "") if drug in symptomatic else None
        m = _med(w, drug, reason or acute)
        m.new = True
        m.duration = drug.route in ("oral", "topical") and rng.random() < 0.85 and acute.kind != "chronic"
        new_meds.append(m)
    cls_options = [c for c in v.classes if acute.code in c.indications]
    class_mention = rng.choice(cls_options) if cls_options and rng.random() < 0.7 else None
    ade = None
    ade_meds = [m for m in meds if m.drug.ingredient in v.adverse]
    if ade_meds and rng.random() < 0.45:
        m = rng.choice(ade_meds)
        effects, code = v.adverse[m.drug.ingredient]
        ade = (m, rng.choice(effects), code)
    allergies = []
    for a in rng.sample(v.allergens, rng.choice((0, 0, 1, 1, 2, 3))):
        reaction = rng.choice(a.reactions) if rng.random() < 0.75 else None
        allergies.append((a.text, a.ingredient, reaction, a.code))
    history_pool = [v.problems[c] for c in ("I82.409", "N20.0", "I21.9", "J18.9", "L03.90", "B02.9", "I26.99",
                                             "K80.20", "R55", "G45.9", "N39.0") if c in v.problems]
    history = rng.sample(history_pool, rng.choice((0, 0, 1, 1, 2)))
    diff_pool = [p for p in v.by_kind("acute") if p.code != acute.code]
    differential = rng.choice(diff_pool) if rng.random() < 0.5 else None
    red_flags = [v.problems[c] for c in ("R50.9", "R07.9", "R06.02", "R11.10", "R55", "R41.0") if c in v.problems]
    warnings = rng.sample(red_flags + typical, rng.choice((0, 1, 2, 2, 3)))
    return Patient(first, last, age, sex, chronic, meds, acute, symptoms, negatives, new_meds, class_mention, ade,
                   allergies, history, differential, warnings, systems)


def _med(w: Writer, drug: DrugInfo, reason: ProblemInfo | None) -> Med:
    return Med(drug=drug, strength=w.pick(drug.strengths), freq_kind=w.pick(drug.freq_kinds), reason=reason,
               name=w.drug_name(drug))


# ---------------------------------------------------------------------------------------------------- sections
class NoteRenderer:
    def __init__(self, v: Vocab, rng: random.Random, note_type: str = "clinic") -> None:
        self.v = v
        self.rng = rng
        self.w = Writer(v, rng)
        self.note_type = note_type
        self.verbosity = rng.choice((1, 1, 2, 2, 2, 3, 4))
        self.pt = sample_patient(v, rng, self.w, note_type, self.verbosity)
        self.header_style = rng.choice(("upper", "upper", "upper_colon", "title", "title_colon"))
        self.blank = rng.choice(("\n\n", "\n\n", "\n"))
        self.bullet = rng.choice(BULLETS)

    # -- layout
    def header(self, name: str) -> None:
        w = self.w
        if self.w.b.length:
            w.b.trim()
            w.b.add("\n\n")
        style = self.header_style
        text = name.upper() if style.startswith("upper") else name.title().replace(" And ", " and ")
        w.b.add(text + (":" if style.endswith("colon") else ""))
        w.b.add(self.blank)

    def item_start(self, i: int, marker: str) -> None:
        self.w.b.add(f"{i}. " if marker == "1." else (f"{i}) " if marker == "1)" else marker))

    def list_marker(self) -> str:
        return self.rng.choice((self.bullet, self.bullet, "1.", "1)", "- ", ""))

    # -- sections
    def chief_complaint(self) -> None:
        w, pt = self.w, self.pt
        self.header(w.pick(("Chief Complaint", "Chief Complaint", "CC", "Reason for Visit")))
        if w.p(0.6):
            w.problem(pt.acute, cap=True)
            w.t(".")
        else:
            w.problem_list(pt.symptoms[:2])
            w.t(w.pick((".", " x3 days.", " for 1 week.", "")))

    def hpi(self) -> None:
        w, pt = self.w, self.pt
        self.header(w.pick(("History of Present Illness", "History of Present Illness", "HPI", "Subjective")))
        intro = w.pick(("is a", "is a pleasant", "is an established", "is a"))
        w.t(f"{pt.first} {pt.last} {intro} {pt.age}-year-old {pt.sex} ")
        if pt.chronic:
            w.t(w.pick(("with a past medical history significant for ", "with a history of ", "with PMH of ",
                        "with known ")))
            w.problem_list(pt.chronic)
            w.t(" ")
        w.t(w.pick(("who presents with ", "who presents today for evaluation of ", "who comes in with ",
                    "presenting with ")))
        w.problem(pt.acute)
        w.t(". ")
        he = _pronoun_cap(pt.he)
        w.t(f"{he} {w.pick(('reports', 'notes', 'describes', 'endorses'))} ")
        w.problem_list(pt.symptoms)
        w.t(w.pick((f" for the past {w.rng.randint(2, 14)} days. ", " that started last week. ",
                    " over the last few days. ", f" since {w.pick(('Monday', 'Friday', 'the weekend'))}. ")))
        for _ in range(self.rng.randint(self.verbosity - 1, 2 * self.verbosity)):
            w.t(self.fill("hpi") + " ")
        if w.p(0.35):
            self.prior_course()
        if pt.negatives:
            self.negated_sentence(pt.negatives[:4])
        if pt.class_mention and w.p(0.8):
            w.t(f"{he} has tried ")
            drug = w.drug_class(pt.class_mention, route=w.p(0.5))
            if w.p(0.5):
                w.t(" for ")
                w.b.link(w.problem(pt.acute, "Reason"), drug)
            w.t(w.pick((" without much relief. ", " with some improvement. ", " in the past. ")))
        self.chronic_paragraph()
        if pt.meds and w.p(0.5):
            med = w.pick(pt.meds)
            w.t(f"{he} {w.pick(('takes', 'is on', 'has been taking', 'uses'))} ")
            w.med_phrase(med, style=w.pick(("none", "dose_only", "freq_only", "list")))
            w.t(w.pick((" and has been compliant. ", ". ", " without issues. ", " as prescribed. ")))
        if pt.ade:
            med, effect, code = pt.ade
            self.ade_sentence(med, effect, code)
        for h in pt.history:
            w.t(w.pick((f"{he} had ", f"{he} had a ", "History of ", "Remote history of ", f"{he} reports a prior ")))
            w.problem(h, historical=True)
            w.t(w.pick((f" {w.rng.randint(2, 15)} years ago", " that resolved", " in the past", "")) + ". ")
        w.t(f"{he} {w.pick(('is otherwise doing well', 'has no other concerns', 'is here today alone'))}.")

    def prior_course(self) -> None:
        """A completed earlier treatment: drug with a duration, and its (historical) reason."""
        w, pt = self.w, self.pt
        courses = ("amoxicillin", "azithromycin", "doxycycline", "cephalexin", "nitrofurantoin", "ciprofloxacin",
                   "prednisone", "methylprednisolone", "oseltamivir", "valacyclovir", "amoxicillin / clavulanate",
                   "sulfamethoxazole / trimethoprim", "cyclobenzaprine", "naproxen")
        pool = [d for d in self.v.drugs if d.ingredient in courses and any(
            self.v.problems.get(c) and self.v.problems[c].kind == "acute" for c in d.indications)]
        drug = w.pick(pool)
        reason = self.v.problems[w.pick([c for c in drug.indications if self.v.problems[c].kind == "acute"])]
        med = _med(w, drug, reason)
        w.t(w.pick((f"{_pronoun_cap(pt.he)} was treated with ", f"Last month {pt.he} completed ",
                    f"{_pronoun_cap(pt.he)} recently finished ")))
        d = w.drug(med)
        w.sig(med, d, style=w.pick(("dose_only", "list", "freq_only")), reason=False, duration=True)
        w.t(" for ")
        w.b.link(w.problem(reason, "Reason", historical=True), d)
        w.t(w.pick((", which resolved. ", ". ", " with good effect. ")))

    def chronic_paragraph(self) -> None:
        w, pt = self.w, self.pt
        he, his = pt.he, pt.his
        if not pt.chronic or w.p(0.25):
            return
        w.b.add("\n\n")
        for prob in pt.chronic[: w.rng.randint(1, 4)]:
            meds = [m for m in pt.meds if m.reason is prob]
            if not meds:
                w.t(w.pick((f"{_pronoun_cap(his)} ", f"Regarding {his} ")))
                w.problem(prob)
                w.t(w.pick((" has been stable. ", ", no recent changes. ", f", {he} has no new concerns. ")))
                continue
            med = meds[0]
            n = w.rng.randrange(4)
            if n == 0:
                w.t(f"Regarding {his} ")
                r = w.problem(prob, "Reason")
                w.t(f", {he} {w.pick(('continues on', 'takes', 'remains on'))} ")
                d = w.med_phrase(med, style=w.pick(("none", "list", "dose_only", "freq_only")), reason=False)
            elif n == 1:
                w.t(f"{_pronoun_cap(his)} ")
                r = w.problem(prob, "Reason")
                w.t(w.pick((" is managed with ", " is well controlled on ", " is treated with ")))
                d = w.med_phrase(med, style=w.pick(("none", "dose_only", "list")), reason=False)
            elif n == 2:
                w.t(f"For {his} ")
                r = w.problem(prob, "Reason")
                w.t(f", {he} takes ")
                d = w.med_phrase(med, style=w.pick(("none", "words", "list")), reason=False)
            else:
                w.t(f"{_pronoun_cap(he)} {w.pick(('takes', 'is on', 'uses'))} ")
                d = w.med_phrase(med, style=w.pick(("none", "dose_only", "compact")), reason=False)
                w.t(" for ")
                r = w.problem(prob, "Reason")
            w.b.link(r, d)
            w.t(w.pick((". ", " and tolerates it well. ", ", no side effects. ", ". ")))
        w.b.trim()
        w.b.add("\n\n")

    def negated_sentence(self, probs: Sequence[ProblemInfo]) -> None:
        w = self.w
        he = _pronoun_cap(self.pt.he)
        lead = w.pick((f"{he} denies ", f"{he} denies any ", "No ", f"{he} has not had any ", "Negative for ",
                       f"{he} reports no ", "Denies "))
        w.t(lead)
        w.problem_list(probs, conj="or" if not lead.startswith("No") else w.pick(("or", "and")), negated=True)
        w.t(". ")

    def ade_sentence(self, med: Med, effect: str, code: str) -> None:
        w = self.w
        he = _pronoun_cap(self.pt.he)
        style = w.rng.randrange(4)
        if style == 0:
            w.t(f"{he} reports a ")
            a = w.b.ent(effect, "ADE", code=code)
            w.t(" since starting ")
            d = w.drug(med)
        elif style == 1:
            w.t(f"{he} stopped ")
            d = w.drug(med)
            w.t(" because of ")
            a = w.b.ent(effect, "ADE", code=code)
        elif style == 2:
            w.t(f"{he} thinks the ")
            d = w.drug(med)
            w.t(" is causing ")
            a = w.b.ent(effect, "ADE", code=code)
        else:
            w.t(f"{he} developed ")
            a = w.b.ent(effect, "ADE", code=code)
            w.t(" on ")
            d = w.drug(med)
        w.b.link(a, d)
        w.t(". ")

    def past_history(self) -> None:
        w, pt = self.w, self.pt
        if not pt.chronic and not pt.history:
            return
        self.header(w.pick(("Past Medical History", "Medical History", "PMH")))
        items: list[tuple[ProblemInfo, bool]] = [(p, False) for p in pt.chronic] + [(p, True) for p in pt.history]
        if w.p(0.5):
            marker = self.list_marker()
            for i, (prob, hist) in enumerate(items, 1):
                if i > 1:
                    w.b.add("\n")
                self.item_start(i, marker)
                if hist:
                    w.t(w.pick(("History of ", "Prior ", "")))
                w.problem(prob, cap=True, historical=hist)
                if hist and w.p(0.5):
                    w.t(w.pick((", resolved", f" ({2000 + w.rng.randint(5, 23)})")))
        else:
            w.t(w.pick(("Significant for ", "Notable for ", "")))
            for i, (prob, hist) in enumerate(items):
                if i:
                    w.t(", ")
                if hist:
                    w.t("prior ")
                w.problem(prob, historical=hist)
            w.t(".")

    def medications(self, title: str = "Medications", meds: Sequence[Med] | None = None) -> None:
        w, pt = self.w, self.pt
        meds = list(pt.meds if meds is None else meds)
        self.header(title)
        if not meds:
            w.t(w.pick(("None.", "No current medications.", "Takes no daily medications.")))
            return
        if w.p(0.8):
            style = w.pick(("list", "compact", "tablet", "words", None))
            marker = self.list_marker()
            upper = w.p(0.1)
            for i, med in enumerate(meds, 1):
                if i > 1:
                    w.b.add("\n")
                self.item_start(i, marker)
                if title.startswith("Discharge") and w.p(0.5):
                    w.t("NEW: " if med.new else w.pick(("Continue ", "CONTINUE: ", "")))
                w.med_phrase(med, style=style, cap=w.p(0.5), upper=upper)
                w.t(w.pick(("", ".", "")))
        else:
            w.t(f"{_pronoun_cap(pt.he)} takes ")
            for i, med in enumerate(meds):
                if i:
                    w.t(", and " if i == len(meds) - 1 else ", ")
                w.med_phrase(med, style=w.pick(("none", "dose_only", "list")))
            w.t(".")

    def allergies(self) -> None:
        w, pt = self.w, self.pt
        self.header(w.pick(("Allergies", "Allergies", "Drug Allergies")))
        if not pt.allergies:
            w.t(w.pick(("NKDA.", "No known drug allergies.", "No known allergies.", "None known.")))
            return
        for i, (allergen, ingredient, reaction, code) in enumerate(pt.allergies):
            if i:
                w.t(w.pick(("\n", ", ", "; ")))
            d = w.b.ent(allergen.capitalize() if w.p(0.5) else allergen, "Drug", ingredient=ingredient)
            if reaction:
                style = w.rng.randrange(3)
                w.t(" (" if style == 0 else (" - " if style == 1 else ": "))
                w.b.link(w.b.ent(reaction, "ADE", code=code), d)
                if style == 0:
                    w.t(")")

    def fill(self, kind: str) -> str:
        pt = self.pt
        return self.w.pick(self.v.narrative[kind]).format(
            He=_pronoun_cap(pt.he), he=pt.he, His=_pronoun_cap(pt.his), his=pt.his, him=pt.him,
            n=self.rng.randint(2, 8))

    def social_family(self) -> None:
        w = self.w
        if w.p(0.6):
            self.header("Social History")
            w.t(self.fill("social"))
        if w.p(0.5):
            self.header("Family History")
            w.t(self.fill("family"))  # family history is not annotated (guidelines)

    def instructions(self) -> None:
        w = self.w
        self.header(w.pick(("Instructions", "Patient Instructions", "Discharge Instructions", "Follow-up")))
        for i in range(self.verbosity):
            if i:
                w.t(" ")
            w.t(self.fill("instructions"))

    def ros(self) -> None:
        w, pt = self.w, self.pt
        self.header(w.pick(("Review of Systems", "Review of Systems", "ROS")))
        systems = list(self.v.ros)
        chosen = w.rng.sample(systems, min(len(systems), w.rng.randint(2, 4) + self.verbosity * 2))
        bullet = w.pick(("• ", "• ", "- ", ""))
        positives = {p.code for p in pt.symptoms}
        for i, system in enumerate(chosen):
            if i:
                w.b.add("\n")
            w.b.add(f"{bullet}{system}: ")
            entries = self.v.ros[system]
            pos = [e for e in entries if e[1] in positives]
            neg = [e for e in w.rng.sample(entries, min(len(entries), w.rng.randint(1, 3))) if e[1] not in positives]
            if pos:
                w.t(w.pick(("Endorses ", "Positive for ", "Reports ", "+ ")))
                self.plain_list(pos, negated=False)
                w.t(". ")
            if neg:
                w.t(w.pick(("Denies ", "Negative for ", "No ", "Denies ")))
                self.plain_list(neg, negated=True)
                w.t(".")
            if not pos and not neg:
                w.t("Negative.")
            if w.b.parts[-1].endswith(" "):
                w.b.parts[-1] = w.b.parts[-1].rstrip(" ")
                w.b.length = sum(len(x) for x in w.b.parts)

    def plain_list(self, entries: Sequence[Sequence[str]], *, negated: bool) -> None:
        w = self.w
        for i, (text, code) in enumerate(entries):
            if i:
                w.t(", " if i < len(entries) - 1 else w.pick((", ", " or ", ", or ", " and ")))
            w.b.ent(text, "Problem", code=code, negated=negated)

    def exam(self, *, header: bool = True) -> None:
        w = self.w
        if header:
            self.header(w.pick(("Physical Examination", "Physical Exam", "Exam", "Physical Examination")))
        if w.p(0.5):
            w.t(w.pick(("Vitals: BP 138/84, HR 76, RR 16, T 98.4 F, SpO2 98% on room air.\n",
                        "BP 124/78. Pulse 88. Temp 99.1. O2 sat 97% RA.\n", "Vital signs reviewed and stable.\n")))
        relevant = [x for x in self.pt.exam_systems if x in self.v.exam]
        others = [x for x in self.v.exam if x not in relevant]
        systems = relevant + w.rng.sample(others, min(len(others), w.rng.randint(1, 3) + self.verbosity))
        w.rng.shuffle(systems)
        bullet = w.pick(("• ", "- ", "", ""))
        for i, system in enumerate(systems):
            if i:
                w.b.add("\n")
            w.b.add(f"{bullet}{system}: ")
            data = self.v.exam[system]
            if data["abnormal"] and w.p(0.6 if system in relevant else 0.08):
                pre, text, post, code = w.pick(data["abnormal"])
                w.t(pre)
                if code:
                    w.b.ent(text, "Problem", code=code)
                else:
                    w.t(text)
                w.t(post)
            else:
                w.t(w.pick(data["normal"]))
            if data["negatable"] and w.p(0.6):
                neg = w.rng.sample(data["negatable"], min(len(data["negatable"]), w.rng.randint(1, 3)))
                w.t(" No ")
                self.plain_list(neg, negated=True)
                w.t(".")

    def results(self) -> None:
        w = self.w
        self.header(w.pick(("Results", "Results", "Labs", "Data Reviewed", "Diagnostics")))
        lines = w.rng.sample(self.v.results, w.rng.choice((0, 1, 1, 2, 3)))
        for pre, code, post in lines:
            w.t(pre + " ")
            w.problem(self.v.problems[code], cap=pre.endswith("."))
            w.t(post if post[:1] in ",.;" else " " + post)
            w.b.add("\n")
        w.t(w.pick(("Hemoglobin A1c 7.8%.", "CBC within normal limits.", "Lipid panel pending.",
                    "Urinalysis negative for nitrites.", "ECG: normal sinus rhythm, no ST changes.")))

    # -- assessment and plan
    def plan(self) -> None:
        w, pt = self.w, self.pt
        style = w.pick(("reasoning", "numbered", "hash", "colon"))
        if self.note_type == "discharge":
            self.header(w.pick(("Discharge Diagnoses and Plan", "Hospital Problem List", "Assessment and Plan")))
        elif self.note_type == "ed" and w.p(0.5):
            self.header("Medical Decision Making")
            w.t("Differential diagnosis includes ")
            w.problem(pt.acute, uncertain=True)
            if pt.differential:
                w.t(" and ")
                w.problem(pt.differential, uncertain=True)
            w.t(".")
            self.header("Assessment and Plan")
        elif w.p(0.5):
            self.header(w.pick(("Assessment and Plan", "Assessment and Plan", "A/P", "Assessment & Plan")))
        else:
            self.header("Assessment")
            w.t(f"{pt.first} {pt.last} is a {pt.age}-year-old {pt.sex} seen today for ")
            w.problem(pt.acute)
            if pt.differential:
                w.t(w.pick(("; concern for ", ", possible ", ", rule out ", "; differential includes ")))
                w.problem(pt.differential, uncertain=True)
            w.t(".")
            self.header("Plan")
        items: list[tuple[ProblemInfo, list[Med], str]] = [(pt.acute, pt.new_meds, "new")]
        ade_reason = pt.ade[0].reason if pt.ade else None
        for prob in pt.chronic:
            meds = [m for m in pt.meds if m.reason is prob and not (pt.ade and m is pt.ade[0])]
            items.append((prob, meds, "ade" if prob is ade_reason else "continue"))
        if pt.ade and (ade_reason is None or ade_reason not in pt.chronic):
            items.append((ade_reason or pt.acute, [], "ade"))
        for i, (prob, meds, kind) in enumerate(items, 1):
            if i > 1:
                w.b.add("\n\n" if style == "reasoning" else "\n")
            self.plan_item(i, prob, meds, kind, style)
        if pt.warnings:
            w.b.add("\n\n")
            w.t(w.pick(("Return precautions: ", "Patient Education: ", "")))
            w.t(f"{_pronoun_cap(pt.he)} {w.pick(('should call', 'will return', 'was told to come back'))} if ")
            w.problem_list(pt.warnings, conj="or", hypothetical=True)
            w.t(w.pick((" develops.", " occurs.", " worsens or develops.")))
        w.b.add("\n\n")
        w.t(w.pick(("Follow up in 4 weeks.", "Return to clinic in 3 months.",
                    "Follow-up in 2 weeks or sooner as needed.",
                    "Questions answered; the patient is in agreement with this plan.")))

    def plan_item(self, i: int, prob: ProblemInfo, meds: list[Med], kind: str, style: str) -> None:
        w, pt = self.w, self.pt
        ade = pt.ade if kind == "ade" else None
        has_drug = bool(meds) or ade is not None
        label = "Reason" if has_drug else "Problem"
        if style == "numbered":
            w.b.add(f"{i}. ")
        elif style == "hash":
            w.b.add(w.pick(("# ", "#")))
        head = w.problem(prob, label, cap=True)
        heads = [head] if label == "Reason" else []
        drugs: list[int] = []
        bullet = "• " if style == "reasoning" else ("- " if style == "hash" else "")
        if style == "hash":
            w.b.add("\n")
        elif style == "colon":
            w.b.add(w.pick((": ", " - ", ". ")))
        else:
            w.b.add(w.pick((".", ":")) + ("\n" if style == "reasoning" else " "))
        if style == "reasoning":
            w.b.add(f"{bullet}Medical Reasoning: ")
            self.reasoning(prob, kind)
            w.b.add(f"\n{bullet}Medical Treatment: ")
        elif bullet:
            w.b.add(bullet)
        elif w.p(0.5):
            self.reasoning(prob, kind)
            w.t(" ")
        if ade is not None:
            med, effect, code = ade
            w.t(w.pick(("Stop ", "Discontinue ", "We will discontinue ", "Hold ")))
            d = w.drug(med)
            drugs.append(d)
            w.t(w.pick((" given ", " due to ", " because of ")))
            w.b.link(w.b.ent(effect, "ADE", code=code), d)
            alternatives = [x for x in self.v.drugs_for(prob.code) if x.generic != med.drug.generic and
                            x.freq_kinds != ("prn",)] if med.reason else []
            if alternatives:
                alt = _med(w, w.pick(alternatives), prob)
                w.t(w.pick(("; switch to ", ". Start ", ". We will try ")))
                drugs.append(w.med_phrase(alt, reason=False, style=w.pick(("list", "words", "compact"))))
            w.t(".")
        elif not meds:
            w.t(w.pick(("Monitor.", "No medication changes.", "Continue current management.",
                        "Lifestyle modifications discussed.", "Will reassess at the next visit.")))
        for j, med in enumerate(meds):
            w.b.add(f"\n{bullet}" if bullet and (j or ade is not None) else " " if (j or ade is not None) else "")
            drugs.append(self.plan_med_sentence(med, kind, cap=True))
        if kind == "new" and w.p(0.3):
            w.b.add(f"\n{bullet}" if bullet else " ")
            w.t(self.fill("orders"))
        if kind == "new" and w.p(0.12):
            w.b.add(f"\n{bullet}" if bullet and drugs else " " if drugs or ade is not None else "")
            drugs.append(self.injection_sentence())
        if any(m.drug.ingredient in ("apixaban", "warfarin", "rivaroxaban", "clopidogrel", "enoxaparin")
               for m in meds) and "R58" in self.v.problems:
            w.t(" Discussed the ")
            w.t("risk of ")
            w.problem(self.v.problems["R58"], text="bleeding", hypothetical=True)
            w.t(".")
        if style == "reasoning" and w.p(0.5):
            w.b.add(f"\n{bullet}")
            w.t(w.pick(("Additional Testing: Lipid panel and hemoglobin A1c ordered today.",
                        "Additional Testing: Repeat labs in 3 months.",
                        "Patient Education and Counseling: Risks and benefits of treatment were reviewed.",
                        "Patient Education and Counseling: We discussed diet and exercise.")))
        w.b.link_all(heads, drugs)

    def injection_sentence(self) -> int:
        """"We will proceed with a steroid injection into the right knee.": the route written as the dosage form
        (annotation-guidelines.md: Route), linked to the drug."""
        w = self.w
        name, ingredient = w.pick(_INJECTABLES)
        epidural = w.p(0.2)
        w.t(w.pick(("We will proceed with ", "We can consider ", "I recommend ", "Plan for ", "Today we gave ")))
        if not epidural and w.p(0.2):  # the form as an adjective before the drug: "an injectable steroid"
            w.t("an ")
            r = w.b.ent("injectable", "Route")
            w.t(" ")
            d = w.b.ent(name, "Drug", ingredient=ingredient)
        else:
            w.t("an epidural " if epidural else "a ")
            d = w.b.ent(name, "Drug", ingredient=ingredient)
            w.t(" ")
            r = w.b.ent("injections" if w.p(0.15) else "injection", "Route")
        w.b.link(r, d)
        w.t(w.pick(_INJECTION_SITES) + ".")
        return d

    def reasoning(self, prob: ProblemInfo, kind: str) -> None:
        """A Medical Reasoning sentence, mentioning the visit's symptoms, findings or an uncertain diagnosis."""
        w, pt = self.w, self.pt
        he = _pronoun_cap(pt.he)
        if kind == "new" and pt.symptoms:
            w.t(f"{he} {w.pick(('presents with', 'reports', 'has had'))} ")
            w.problem_list(pt.symptoms[:2])
            w.t(". ")
            if pt.differential:
                w.t(w.pick(("Possible ", "Cannot rule out ", "Concern for ", "Differential includes ", "R/o ")))
                w.problem(pt.differential, uncertain=True)
                w.t(".")
            else:
                w.t(w.pick(("Exam is consistent with this diagnosis.", "Findings discussed with the patient.")))
        else:
            pool = ["Stable on the current regimen.", "This is not well controlled.", "Blood pressure today is 146/92.",
                    "Last A1c was 8.1.", "Symptoms are improving.", f"{he} is doing well overall.",
                    "Reviewed recent labs with the patient.", "We discussed the importance of adherence.",
                    f"{he} would like to avoid adding new medications if possible.",
                    "Goals of treatment were reviewed.", f"{he} has been checking at home regularly."]
            w.t(" ".join(w.rng.sample(pool, min(len(pool), w.rng.randint(1, self.verbosity)))))

    def plan_med_sentence(self, med: Med, kind: str, *, cap: bool) -> int:
        w, pt = self.w, self.pt
        he, him, his = pt.he, pt.him, pt.his
        if kind == "new":
            n = w.rng.randrange(6)
            prefix = w.route_prefix(med.drug.route) if n == 5 else None
            if prefix is not None:
                # the route written before the drug: "I'm going to prescribe topical mupirocin 2% ointment"
                w.t(w.pick(("I'm going to prescribe ", "We will start ", "Start ", "I recommend ", "Prescribed ")))
                r = w.b.ent(prefix, "Route")
                w.t(" ")
                d = w.drug(med)
                w.b.link(r, d)
                if med.drug.unit not in _TOPICAL_UNITS:
                    w.sig(med, d, style=w.pick(("dose_only", "freq_only")), reason=False)
                if med.reason and w.p(0.4):
                    w.t(" for ")
                    w.b.link(w.problem(med.reason, "Reason"), d)
                w.t(".")
                return d
            n = n % 5
            if n == 0:
                w.t(f"We will start {him} on ")
                d = w.med_phrase(med, style=w.pick(("words", "list", "tablet")), reason=False)
                if med.reason and w.p(0.5):
                    w.t(f" for {his} ")
                    w.b.link(w.problem(med.reason, "Reason"), d)
                w.t(".")
            elif n == 1:
                w.t("I'm going to prescribe ")
                d = w.med_phrase(med, style=w.pick(("words", "list", "compact")), reason=False)
                w.t(".")
            elif n == 2:
                w.t(w.pick(("Start ", "Begin ", "Rx: ", "Prescribed ")))
                d = w.med_phrase(med, reason=True)
                w.t(".")
            elif n == 3:
                w.t(f"I recommend {he} take ")
                d = w.med_phrase(med, style=w.pick(("list", "freq_only", "tablet")), reason=False)
                w.t(".")
            else:
                w.t(w.pick(("Sent in a prescription for ", "E-prescribed ")))
                d = w.med_phrase(med, reason=False)
                w.t(" to the pharmacy.")
            return d
        n = w.rng.randrange(5)
        if n == 0:
            w.t(w.pick(("Continue ", "Continue ", "Refill ", "Will continue ")))
            d = w.med_phrase(med, style=w.pick(("list", "compact", "none", "dose_only")), reason=False)
            w.t(".")
        elif n == 1:
            w.t(w.pick(("Increase ", "We will increase ")))
            d = w.drug(med)
            w.t(" to")
            w.sig(med, d, style=w.pick(("list", "compact", "dose_only")), reason=False)
            w.t(".")
        elif n == 2:
            w.t(f"{_pronoun_cap(he)} will continue to take ")
            d = w.med_phrase(med, style=w.pick(("none", "freq_only", "list")), reason=False)
            w.t(".")
        elif n == 3:
            d = w.drug(med, cap=True)
            w.t(" refilled")
            w.sig(med, d, style="list", reason=False)
            w.t(".")
        else:
            w.t("Continue ")
            d = w.drug(med)
            w.t(w.pick(("; tolerating well.", " at the current dose.", ", no side effects.")))
        return d

    # -- note types
    def ed_course(self) -> None:
        w, pt = self.w, self.pt
        self.header(w.pick(("ED Course", "Emergency Department Course", "Course in the ED")))
        iv = [d for d in self.v.drugs if d.route == "iv"]
        given = [_med(w, d, pt.acute) for d in w.rng.sample(iv, w.rng.randint(1, 3))]
        w.t(f"In the ED, {pt.he} was given ")
        drugs: list[int] = []
        for i, med in enumerate(given):
            if i:
                w.t(" and " if i == len(given) - 1 else ", ")
            if w.p(0.3):  # "IV ondansetron 4 mg"
                r = w.b.ent(w.route_prefix("iv") or "IV", "Route")
                w.t(" ")
                d = w.drug(med)
                w.t(" ")
                w.b.link_all([r, w.b.ent(w.dose_text(med), "Dosage")], [d])
            else:
                d = w.drug(med)
                w.t(" ")
                attrs = [w.b.ent(w.dose_text(med), "Dosage")]
                w.t(" ")
                attrs.append(w.b.ent(w.route_text(med) or "IV", "Route"))
                w.b.link_all(attrs, [d])
            drugs.append(d)
        fluids = next((c for c in self.v.classes if c.text == "fluids"), None)
        if fluids is not None and w.p(0.3):
            w.t(" and ")
            drugs.append(w.drug_class(fluids, route=True))
        if w.p(0.6):
            w.t(" for ")
            w.b.link_all([w.problem(w.pick(pt.symptoms or [pt.acute]), "Reason")], drugs)
        w.t(w.pick((" with improvement.", ". Symptoms improved.", " and was reassessed.")))
        w.t(" Labs and imaging as below.")

    def hospital_course(self) -> None:
        w, pt = self.w, self.pt
        self.header("Hospital Course")
        w.t("The patient was admitted with ")
        w.problem(pt.acute)
        w.t(". ")
        iv = [d for d in self.v.drugs if d.route == "iv" and pt.acute.code in d.indications] or [
            d for d in self.v.drugs if d.route == "iv"]
        med = _med(w, w.pick(iv), pt.acute)
        w.t(f"{_pronoun_cap(pt.he)} was treated with ")
        d = w.drug(med)
        w.t(" ")
        attrs = [w.b.ent(w.dose_text(med), "Dosage"), ]
        w.t(" ")
        attrs.append(w.b.ent(w.route_text(med) or "IV", "Route"))
        w.t(" ")
        attrs.append(w.b.ent(w.freq_text(med.freq_kind), "Frequency"))
        w.b.link_all(attrs, [d])
        w.t(w.pick((" with steady improvement. ", " and improved. ")))
        if w.p(0.5):
            dvt = _med(w, w.pick([x for x in self.v.drugs if x.generic in ("enoxaparin", "heparin")]), None)
            w.t(f"{_pronoun_cap(pt.he)} received ")
            d = w.drug(dvt)
            w.sig(dvt, d, style="list", reason=False, duration=False)
            w.t(w.pick((" to prevent ", " for prophylaxis against ", " for ")))
            w.b.link(w.problem(self.v.problems["I82.409"], "Reason", hypothetical=True,
                               text=w.pick(("DVT", "deep vein thrombosis", "blood clots"))), d)
            w.t(". ")
        if pt.ade:
            self.ade_sentence(*pt.ade)
        w.t(f"By discharge {pt.he} was {w.pick(('afebrile', 'ambulating', 'tolerating a diet'))}.")

    def render(self, note_type: str) -> NoteBuilder:
        pt = self.pt
        if note_type == "clinic":
            self.chief_complaint()
            self.hpi()
            self.past_history()
            self.medications(self.w.pick(("Medications", "Current Medications", "Home Medications")))
            self.allergies()
            self.social_family()
            self.ros()
            self.exam()
            if self.w.p(0.7):
                self.results()
            self.plan()
            if self.w.p(0.6):
                self.instructions()
        elif note_type == "ed":
            self.chief_complaint()
            self.hpi()
            self.past_history()
            self.medications("Home Medications")
            self.allergies()
            self.ros()
            self.exam()
            self.ed_course()
            self.results()
            self.plan()
            self.header("Disposition")
            self.w.t(self.w.pick(("Discharged home in stable condition.", "Admitted to medicine.",
                                  "Discharged with outpatient follow-up.")))
        elif note_type == "discharge":
            self.header("Admission Diagnosis")
            self.w.problem(pt.acute, cap=True)
            self.hpi()
            self.hospital_course()
            self.past_history()
            self.allergies()
            self.exam()
            self.results()
            self.medications("Discharge Medications", pt.meds + pt.new_meds)
            self.plan()
            self.instructions()
        else:
            self.header("Subjective")
            self.w.t(f"{pt.first} is seen for follow-up of ")
            self.w.problem(pt.acute)
            self.w.t(". ")
            self.negated_sentence(pt.negatives[:3])
            self.chronic_paragraph()
            self.past_history()
            self.medications()
            self.allergies()
            self.ros()
            self.header("Objective")
            self.exam(header=False)
            if self.w.p(0.5):
                self.results()
            self.plan()
        return self.w.b


# ---------------------------------------------------------------------------------------------------- driver
def synthesize_note(v: Vocab, rng: random.Random, doc_id: str) -> dict[str, Any]:
    note_type = rng.choice(NOTE_TYPES)
    builder = NoteRenderer(v, rng, note_type).render(note_type)
    doc = builder.to_json(doc_id)
    doc["meta"] = {"note_type": note_type}
    return doc


def synthesize(n: int, seed: int, *, vocab: Vocab | None = None) -> Iterator[dict[str, Any]]:
    """``n`` validated notes, the same for the same seed."""
    v = vocab or load_vocab()
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")
        doc = synthesize_note(v, rng, f"synth-{seed}-{i:05d}")
        errors = validate_document(doc)
        if errors:
            raise ValueError(f"{doc['id']}: {len(errors)} validation errors, first: {errors[0]}")
        yield doc


def summarize(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    labels: Counter[str] = Counter()
    relations: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    types: Counter[str] = Counter()
    lengths = [len(d["text"]) for d in docs]
    for d in docs:
        types[d.get("meta", {}).get("note_type", "?")] += 1
        for e in d["entities"]:
            labels[e["label"]] += 1
            for f in ("negated", "uncertain", "hypothetical", "historical"):
                if e.get(f):
                    flags[f] += 1
        for r in d["relations"]:
            relations[r["label"]] += 1
    return {
        "documents": len(docs),
        "note_types": dict(types),
        "chars": {"min": min(lengths, default=0), "mean": sum(lengths) // max(1, len(lengths)),
                  "max": max(lengths, default=0)},
        "entities": dict(labels.most_common()),
        "relations": dict(relations.most_common()),
        "flags": dict(flags),
    }


def write_jsonl(path: str | Path, docs: Sequence[dict[str, Any]]) -> None:
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")


__all__: list[str] = ["summarize", "synthesize", "synthesize_note", "write_jsonl"]
