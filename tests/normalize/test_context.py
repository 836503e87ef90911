"""ConText-style assertion rules: each flag, scope bounds, sections."""

from __future__ import annotations

import pytest

from clinie.document import Document, Entity
from clinie.normalize.context import Assertion, AssertionTagger, assert_mention


def flags(text: str, mention: str) -> Assertion:
    i = text.index(mention)
    return assert_mention(text, i, i + len(mention))


@pytest.mark.parametrize(
    ("text", "mention", "expected"),
    [
        ("Denies chest pain.", "chest pain", "negated"),
        ("Possible sepsis.", "sepsis", "uncertain"),
        ("We will rule out meningitis.", "meningitis", "uncertain"),
        ("There is concern for pneumonia.", "pneumonia", "uncertain"),
        ("Call if chest pain develops.", "chest pain", "hypothetical"),
        ("She is at risk of bleeding.", "bleeding", "hypothetical"),
        ("Heparin to prevent DVT.", "DVT", "hypothetical"),
        ("Tuberculosis in 1998, treated.", "Tuberculosis", "historical"),
        ("Rash last year that resolved.", "Rash", "historical"),
        ("Status post appendectomy for appendicitis.", "appendicitis", "historical"),
    ],
)
def test_flag(text: str, mention: str, expected: str) -> None:
    a = flags(text, mention)
    assert getattr(a, expected) is True
    others = {"negated", "uncertain", "hypothetical", "historical"} - {expected}
    assert not any(getattr(a, f) for f in others)


def test_plain_mention_has_no_flags() -> None:
    assert flags("She has hypertension and diabetes.", "diabetes") == Assertion()


def test_history_of_a_chronic_condition_is_not_historical() -> None:
    assert not flags("Patient reports history of hypertension.", "hypertension").historical


def test_scope_ends_at_sentence_and_terminator() -> None:
    text = "No fever. She has a cough but denies wheezing."
    assert flags(text, "fever").negated
    assert not flags(text, "cough").negated
    assert flags(text, "wheezing").negated
    assert not flags("Denies fever; reports cough.", "cough").negated


def test_scope_ends_at_list_item() -> None:
    text = "• Respiratory: Denies shortness of breath.\n• Cardiovascular: chest pain with exertion."
    assert flags(text, "shortness of breath").negated
    assert not flags(text, "chest pain").negated


def test_family_history_section_and_family_cue() -> None:
    text = "FAMILY HISTORY\n\nBreast cancer.\n\nSOCIAL HISTORY\n\nNo smoking. Asthma."
    assert flags(text, "Breast cancer").subject == "family"
    assert flags(text, "Asthma").subject == "patient"
    assert flags("Her mother had breast cancer.", "breast cancer").subject == "family"
    # a parent in the sentence who is not the subject of the finding
    assert flags("Her father brought her in for abdominal pain.", "abdominal pain").subject == "patient"


def test_tagger_sets_flags_and_keeps_model_negation_unless_asked() -> None:
    text = "No fever. Possible pneumonia."
    ents = (Entity("T1", "Problem", 3, 8), Entity("T2", "Problem", 19, 28), Entity("T3", "Drug", 0, 2))
    doc = Document("d", text, entities=ents)
    out = AssertionTagger()(doc)
    assert [e.negated for e in out.entities] == [False, False, False]
    assert out.entity("T2").uncertain and not out.entity("T1").uncertain
    out = AssertionTagger(negation=True)(doc)
    assert out.entity("T1").negated and not out.entity("T2").negated
    assert out.entity("T3") == ents[2]  # a Drug gets no assertion flags


@pytest.mark.parametrize(
    ("text", "mention", "expected"),
    [
        ("He had a prior DVT.", "DVT", "historical"),
        ("Hip fracture as a teenager.", "fracture", "historical"),
        ("She broke her arm when she was in fifth grade.", "broke her arm", "historical"),
        ("He had an episode of syncope.", "syncope", "historical"),
        ("Mild chest pain at that time that eased after an hour.", "chest pain", "historical"),
        ("Toe numbness, which resolved within a day.", "Toe numbness", "historical"),
        ("Findings suggest gout.", "gout", "uncertain"),
        ("I am concerned that this is a lupus flare.", "lupus flare", "uncertain"),
        ("Referred for a sleep apnea workup.", "sleep apnea", "uncertain"),
        ("We reviewed the risks, including infection and bleeding.", "bleeding", "hypothetical"),
        ("The diuretic can cause dizziness.", "dizziness", "hypothetical"),
        ("Discussed the possible side effects such as nausea.", "nausea", "hypothetical"),
        ("Aspirin for stroke prevention.", "stroke", "hypothetical"),
    ],
)
def test_more_cues(text: str, mention: str, expected: str) -> None:
    a = flags(text, mention)
    assert getattr(a, expected) is True
    others = {"uncertain", "hypothetical", "historical"} - {expected}
    assert not any(getattr(a, f) for f in others)


def test_time_expressions_reach_only_their_phrase() -> None:
    text = "History of heart attack in 2015, chronic kidney disease and gout."
    assert flags(text, "heart attack").historical
    assert not flags(text, "chronic kidney disease").historical
    assert not flags(text, "gout").historical


def test_current_conditions_with_time_or_conditional_words() -> None:
    assert not flags("No flares of colitis over the past year.", "colitis").historical
    assert not flags("Her back pain began 3 years ago.", "back pain").historical
    assert not flags("Her murmur, heard previously, is unchanged.", "murmur").historical
    a = flags("If his knee pain does not improve, we will order an MRI.", "knee pain")
    assert not a.hypothetical and not a.negated
    a = flags("X-rays show no obvious signs of fracture.", "fracture")
    assert a.negated and not a.hypothetical
    assert not flags("Prior to this visit she had headaches.", "headaches").historical


def test_patient_concern_is_not_clinical_uncertainty() -> None:
    assert not flags("She voiced concern about headaches and nausea.", "nausea").uncertain
    assert flags("There is concern for appendicitis.", "appendicitis").uncertain
    a = flags("There does not appear to be any swelling.", "swelling")
    assert a.negated and not a.uncertain


@pytest.mark.parametrize(
    ("text", "mention"),
    [
        ("He had a kidney stone last year that passed.", "kidney stone"),
        ("She noticed a rash on her arm, but it has since resolved.", "rash"),
        ("He had blurred vision in the left eye; however, this went away.", "blurred vision"),
        ("After the fall she felt dizzy. This has completely resolved.", "dizzy"),
        ("Her wrist swelling. It cleared up.", "wrist swelling"),
        ("He had a cyst removed from his back.", "cyst"),
        ("She has a history of a wrist fracture.", "wrist fracture"),
        ("He reports a history of anaphylaxis.", "anaphylaxis"),
        ("Exacerbation of asthma in 2019.", "Exacerbation of asthma"),
        ("He had shingles, which cleared up with treatment.", "shingles"),
        ("Tonsillitis in childhood.", "Tonsillitis"),
        ("Hives after eating shellfish, without recurrence.", "Hives"),
    ],
)
def test_past_and_over_is_historical(text: str, mention: str) -> None:
    a = flags(text, mention)
    assert a.historical
    assert not (a.negated or a.uncertain or a.hypothetical)


@pytest.mark.parametrize(
    ("text", "mention"),
    [
        # chronic conditions stay present whatever the time cue (chronic_conditions.tsv)
        ("Hypertension diagnosed in 2015.", "Hypertension"),
        ("She has had type 2 diabetes for 5 years ago and more.", "type 2 diabetes"),
        ("Status post stent placement, with coronary artery disease.", "coronary artery disease"),
        ("He has a history of asthma.", "asthma"),
        # a resolution that is habitual or future is not a past event
        ("She gets migraines. The headache will resolve with rest.", "migraines"),
        ("Her knee pain. The swelling resolves with ice.", "knee pain"),
        # the symptom came back: not over
        ("The cough improved, the cough did not return until evening.", "cough"),
        # removal that is not right next to the mention is not a past removal of it
        ("There is a cyst on the back, and we discussed having it removed.", "cyst"),
        # the start of a current problem
        ("Her back pain began 3 years ago.", "back pain"),
    ],
)
def test_current_conditions_are_not_historical(text: str, mention: str) -> None:
    assert not flags(text, mention).historical


def test_denied_history_of_an_event_is_negated_not_historical() -> None:
    a = flags("He denies any history of fracture.", "fracture")
    assert a.negated and not a.historical


def test_resolution_in_the_next_sentence_reaches_only_the_sentence_before() -> None:
    text = "She has hip pain. He had a rash on his leg. This has resolved."
    assert flags(text, "rash").historical
    assert not flags(text, "hip pain").historical


def test_chronic_and_event_lists() -> None:
    from clinie.normalize.context import is_chronic, load_events

    assert is_chronic("poorly controlled hypertension")
    assert is_chronic("Chronic low back pain")
    assert not is_chronic("acute exacerbation of COPD")
    assert not is_chronic("asthma attack")
    assert not is_chronic("kidney stone")
    assert load_events().search("left ankle fracture") is not None
    assert load_events().search("diabetes") is None


def test_bad_rule_line_is_rejected() -> None:
    from clinie.normalize.context import parse_rules

    assert parse_rules("gone\tresolved\tprevious\nremoved\tresolved\tbackward\tadjacent\n")[1].adjacent
    for bad in ("x\thistorical\tsideways", "x\tpast\tforward", "x\thistorical\tforward\tnear"):
        with pytest.raises(ValueError, match="bad context rule"):
            parse_rules(bad)
