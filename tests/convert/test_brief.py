"""The brief annotation compiler: anchors resolve to exact offsets, and every mistake is reported, never guessed."""

from clinie.convert.brief import compile_brief, render

NOTE = "MEDICATIONS\n\nLisinopril 10 mg PO daily for hypertension.\nDenies chest pain. Pace and pain.\n"


def _brief(*rows: str) -> str:
    return "# note: n1\n" + "\n".join(rows) + "\n"


def test_compiles_anchors_to_offsets_ids_and_relations() -> None:
    res = compile_brief("n1", NOTE, _brief(
        "e1 | L3 | Drug | Lisinopril | ing=Lisinopril",
        "e2 | L3 | Dosage | 10 mg |",
        "e3 | L3 | Reason | hypertension |",
        "e4 | L4 | Problem | chest pain | neg",
        "e5 | L4#2 | Problem | pain |",
        "R | Dosage-Drug | e2 | e1",
        "R | Reason-Drug | e3 | e1",
    ))
    assert res.errors == [] and res.record is not None
    ents = res.record["entities"]
    assert [e["id"] for e in ents] == ["T1", "T2", "T3", "T4", "T5"]
    for e in ents:
        assert NOTE[e["start"]:e["end"]] == e["text"]
    assert ents[0]["ingredient"] == "lisinopril"
    assert ents[3]["negated"] is True
    assert ents[4]["start"] == NOTE.rindex("pain")
    assert {(r["label"], r["head"], r["tail"]) for r in res.record["relations"]} == {
        ("Dosage-Drug", "T2", "T1"), ("Reason-Drug", "T3", "T1")}
    assert "[Problem chest pain]{negated}" in render(res.record)


def test_reports_each_mistake_with_its_line() -> None:
    res = compile_brief("n1", NOTE, _brief(
        "e1 | L3 | Drug | lisinopril |",        # wrong case: not in the line
        "e2 | L9 | Problem | pain |",            # no such line
        "e3 | L3 | Dosage | 10 mg. |",           # trailing punctuation
        "e4 | L4 | Problem | ace |",             # inside "Pace"
        "e5 | L3 | Drug | Lisinopril | neg",     # neg on a Drug
        "R | Route-Drug | e5 | e5",              # wrong argument types
    ))
    assert res.record is None
    text = "\n".join(res.errors)
    for expected in ("brief line 2", "no line 9", "starts/ends", "longer word", "only applies", "cannot link"):
        assert expected in text


def test_rejects_nested_and_overlapping_spans() -> None:
    res = compile_brief("n1", NOTE, _brief(
        "e1 | L4 | Problem | chest pain |",
        "e2 | L4 | Problem | pain |",
    ))
    assert res.record is None and any("overlap" in e for e in res.errors)
