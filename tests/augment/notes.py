"""Small invented notes (no patient data) built with exact offsets, for the augmentation tests."""

from __future__ import annotations

from typing import Any

from clinie.augment.builder import NoteBuilder


def visit_note(doc_id: str = "note-1") -> dict[str, Any]:
    b = NoteBuilder()
    b.add("HISTORY OF PRESENT ILLNESS\n\nThe patient has a history of ")
    htn = b.ent("HTN", "Problem")
    b.add(" and ")
    b.ent("type 2 diabetes", "Problem")
    b.add(". She denies ")
    b.ent("chest pain", "Problem", negated=True)
    b.add(". Appetite is good. Home sugars are stable. Weight is unchanged.\n\nMEDICATIONS\n\n• ")
    d1 = b.ent("metoprolol succinate", "Drug", ingredient="metoprolol")
    b.add(" ")
    a1 = b.ent("25 mg", "Dosage")
    b.add(" ")
    r1 = b.ent("PO", "Route")
    b.add(" ")
    f1 = b.ent("daily", "Frequency")
    b.link_all([a1, r1, f1], [d1])
    b.add("\n• ")
    d2 = b.ent("metformin", "Drug", ingredient="metformin")
    b.add(" ")
    a2 = b.ent("500 mg", "Dosage")
    b.add(" ")
    f2 = b.ent("twice a day", "Frequency")
    b.add(" for ")
    rs2 = b.ent("type 2 diabetes", "Reason")
    b.link_all([a2, f2, rs2], [d2])
    b.add("\n• ")
    d3 = b.ent("lisinopril", "Drug", ingredient="lisinopril")
    b.add(" ")
    a3 = b.ent("10 mg", "Dosage")
    b.add(" ")
    f3 = b.ent("once a day", "Frequency")
    b.link_all([a3, f3], [d3])
    b.add("\n\nPLAN\n\nContinue ")
    d4 = b.ent("lisinopril", "Drug", ingredient="lisinopril")
    b.add(" for ")
    rs4 = b.ent("hypertension", "Reason")
    b.link(rs4, d4)
    b.add(". Follow up in 3 months.\n")
    assert htn == 0
    return b.to_json(doc_id, source="test")


def short_note(doc_id: str = "note-2") -> dict[str, Any]:
    b = NoteBuilder()
    b.add("Start ")
    d = b.ent("amoxicillin", "Drug", ingredient="amoxicillin")
    b.add(" ")
    a = b.ent("500 mg", "Dosage")
    b.add(" ")
    f = b.ent("three times a day", "Frequency")
    b.add(" ")
    du = b.ent("for 10 days", "Duration")
    b.add(" for ")
    r = b.ent("sinusitis", "Reason")
    b.link_all([a, f, du, r], [d])
    b.add(".\nShe has no ")
    b.ent("fever", "Problem", negated=True)
    b.add(" today.")
    return b.to_json(doc_id, source="test")
