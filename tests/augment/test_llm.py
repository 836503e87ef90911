"""LLM paths without network: markup parsing, rejection reasons of corrupted answers, the client against the
project's replay server (retries, cache, token log) and ``clinie augment --method llm/annotate`` end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clinie.augment.llm import LLMClient, LLMConfig, LLMStats, augment_llm, plan_rewrites
from clinie.augment.markup import check_rewrite, parse, parse_annotation, render
from clinie.augment.pieces import to_pieces
from clinie.augment.replay import completion, record_line, replay_server
from clinie.augment.validate import validate_document
from tests.augment.notes import short_note, visit_note

DOC = short_note()
SOURCE = to_pieces(DOC)
MARKED = render(SOURCE)  # Start [Drug|e1 amoxicillin] [Dosage|e2 500 mg] ... [Problem|e6 fever] today.


def test_render_marks_every_entity_with_its_handle() -> None:
    assert MARKED.startswith("Start [Drug|e1 amoxicillin] [Dosage|e2 500 mg] [Frequency|e3 three times a day] ")
    parsed = parse(MARKED)
    assert not parsed.errors
    assert [(p.handle, p.label, p.text) for p in parsed.pieces if p.is_entity] == [
        (i, e["label"], e["text"]) for i, e in enumerate(DOC["entities"])
    ]


def _verdict(answer: str, **kw: Any) -> tuple[bool, list[str]]:
    v = check_rewrite(DOC, SOURCE, answer, **kw)
    return v.accepted, v.reasons


GOOD = (
    "For [Reason|e5 sinusitis], begin [Drug|e1 amoxicillin] [Dosage|e2 500 mg] [Frequency|e3 three times a day] "
    "[Duration|e4 for 10 days].\nToday she reports no [Problem|e6 fever]."
)


def test_a_faithful_rewrite_is_accepted_with_new_offsets() -> None:
    v = check_rewrite(DOC, SOURCE, GOOD)
    assert v.accepted, v.details
    assert v.pieces is not None
    from clinie.augment.pieces import assemble

    out = assemble(DOC, v.pieces)
    assert validate_document(out) == []
    assert out["text"].startswith("For sinusitis, begin amoxicillin 500 mg")
    fever = next(e for e in out["entities"] if e["text"] == "fever")
    assert fever["negated"] is True  # flags travel by handle
    assert len(out["relations"]) == len(DOC["relations"])


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (GOOD.replace("[Duration|e4 for 10 days]", "for 10 days"), "lost_entity"),
        (GOOD.replace("[Drug|e1 amoxicillin]", "[Drug|e1 amoxicilin]"), "changed_entity_text"),
        (GOOD.replace("[Dosage|e2 500 mg]", "[Route|e2 500 mg]"), "changed_label"),
        (GOOD.replace("[Problem|e6 fever]", "[Problem|e6 fever]s"), "shifted_offsets"),
        (GOOD.replace("[Drug|e1 amoxicillin]", "[Drug|e1 amoxicillin] and [Drug|e9 ibuprofen]"), "invented_entity"),
        (GOOD.replace("[Drug|e1 amoxicillin]", "[Drug|e1 amoxicillin"), "malformed_markup"),
        (GOOD + "\n[Problem|e6 fever]", "duplicated_entity"),
        (GOOD + "\n\nRELATIONS:\ne2 -> e1\ne3 -> e1\ne4 -> e1\ne5 -> e1\ne6 -> e1", "invented_relation"),
        (GOOD + "\n\nRELATIONS:\ne2 -> e1\ne3 -> e1", "lost_relation"),
        (GOOD.replace("[Drug|e1 amoxicillin] ", "[Drug|e1 amoxicillin]\n"), "split_relation"),
        (MARKED, "no_change"),
        (GOOD + "\nI made a few changes to the wording.", "extra_text"),
        ("", "empty_answer"),
    ],
)
def test_a_corrupted_answer_is_rejected_with_its_reason(answer: str, reason: str) -> None:
    accepted, reasons = _verdict(answer)
    assert not accepted
    assert reason in reasons


def test_json_answer_with_shifted_offsets_is_rejected() -> None:
    text = "Begin amoxicillin 500 mg three times a day for 10 days for sinusitis.\nNo fever today."
    ents = [("e1", "Drug", "amoxicillin"), ("e2", "Dosage", "500 mg"), ("e3", "Frequency", "three times a day"),
            ("e4", "Duration", "for 10 days"), ("e5", "Reason", "sinusitis"), ("e6", "Problem", "fever")]
    good = [{"handle": h, "label": lab, "start": text.index(t), "end": text.index(t) + len(t), "text": t}
            for h, lab, t in ents]
    assert check_rewrite(DOC, SOURCE, json.dumps({"text": text, "entities": good})).accepted
    shifted = [dict(e) for e in good]
    shifted[0]["start"] += 2
    shifted[0]["end"] += 2
    v = check_rewrite(DOC, SOURCE, json.dumps({"text": text, "entities": shifted}))
    assert not v.accepted and "shifted_offsets" in v.reasons


def test_type_consistent_entity_changes_only_when_allowed() -> None:
    answer = GOOD.replace("[Drug|e1 amoxicillin]", "[Drug|e1 Amoxil]")
    assert not _verdict(answer)[0]
    assert _verdict(answer, allow_entity_changes=True)[0]


def test_annotation_answer_parses_into_a_valid_document() -> None:
    note = "Take metformin 500 mg twice a day for diabetes.\nDenies chest pain."
    answer = ("Take [Drug|e1 metformin] [Dosage|e2 500 mg] [Frequency|e3 twice a day] for [Reason|e4 diabetes].\n"
              "Denies [Problem+negated|e5 chest pain].\n\nRELATIONS:\ne2 -> e1\ne3 -> e1\ne4 -> e1")
    doc, reasons, _ = parse_annotation(note, answer)
    assert doc is not None, reasons
    assert validate_document(doc) == []
    assert [e["text"] for e in doc["entities"]] == ["metformin", "500 mg", "twice a day", "diabetes", "chest pain"]
    assert doc["entities"][4]["negated"] is True
    assert {r["label"] for r in doc["relations"]} == {"Dosage-Drug", "Frequency-Drug", "Reason-Drug"}
    changed, reasons, _ = parse_annotation(note, answer.replace("Take", "Start"))
    assert changed is None and "changed_text" in reasons
    bad_rel, reasons, _ = parse_annotation(note, answer + "\ne5 -> e1")
    assert bad_rel is None and "invented_relation" in reasons


# ---------------------------------------------------------------- client and replay server


def _paraphrase(marked: str) -> str:
    """A rewrite that keeps every marker: what a good LLM answers (recorded for the replay server)."""
    return "\n".join("Noted: " + line if line.strip() else line for line in marked.split("\n"))


def _recordings(docs: list[dict[str, Any]], model: str, corrupt_first: bool = False) -> list[dict[str, Any]]:
    client = LLMClient(LLMConfig(url="http://unused/v1", model=model))
    _, units = plan_rewrites(docs, n=1, seed=13)
    lines = []
    for i, u in enumerate(units):
        user = u.messages[1]["content"]
        marked, _, rels = user.partition("\n\nRELATIONS:")
        answer = _paraphrase(marked) + (("\n\nRELATIONS:" + rels) if rels else "")
        if corrupt_first and i == 0:
            answer = re.sub(r"\[\w+\|e\d+ ([^\]]+)\]", r"\1", answer, count=1)  # a marker dropped: entity lost
        lines.append(record_line(client.payload(u.messages, **u.params), answer,
                                 {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}))
    return lines


def test_client_retries_caches_and_logs_tokens(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "hello"}]
    cfg = LLMConfig(url="", model="m", backoff_s=0.01, cache_dir=tmp_path / "cache", token_log=tmp_path / "t.jsonl")
    payload = LLMClient(cfg).payload(messages, temperature=0.0)
    from clinie.augment.llm import request_key

    recs = {request_key(payload): completion("hi there", "m", {"prompt_tokens": 3, "completion_tokens": 2,
                                                               "total_tokens": 5})}
    with replay_server(recs, fail_first=2) as server:
        client = LLMClient(LLMConfig(**{**cfg.__dict__, "url": server.url}))
        first = client.chat(messages, temperature=0.0)
        assert first.text == "hi there" and not first.cached
        assert server.requests == 3  # two 503s, then the answer
        again = client.chat(messages, temperature=0.0)
        assert again.cached and again.text == "hi there"
        assert server.requests == 3  # served from the on-disk cache
        with pytest.raises(Exception, match="HTTP 404"):
            client.chat([{"role": "user", "content": "never recorded"}], temperature=0.0)
    log = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [entry["status"] for entry in log] == ["ok", "ok", "HTTP 404"]
    assert log[0]["total_tokens"] == 5 and log[0]["attempts"] == 3 and log[1]["cached"]
    assert "hello" not in (tmp_path / "t.jsonl").read_text()  # no message text in the log


def test_llm_augmenter_through_the_replay_server() -> None:
    docs = [visit_note(), short_note()]
    recs = {line["key"]: line["response"] for line in _recordings(docs, "replay-model", corrupt_first=True)}
    with replay_server(recs) as server:
        client = LLMClient(LLMConfig(url=server.url, model="replay-model", max_concurrency=3))
        stats = LLMStats()
        outs = list(augment_llm(docs, client, stats=stats))
    assert len(outs) == 2
    assert stats.units == len(recs) and stats.accepted_units == stats.units - 1
    assert stats.rejected["lost_entity"] == 1
    for out, src in zip(outs, docs, strict=True):
        assert validate_document(out) == []
        assert "Noted: " in out["text"]
        assert len(out["entities"]) == len(src["entities"]) and len(out["relations"]) == len(src["relations"])


def test_clinie_augment_llm_end_to_end(tmp_path: Path) -> None:
    from services.cli.main import app

    docs = [visit_note("n1"), short_note("n2")]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(d) + "\n" for d in docs))
    rec_path = tmp_path / "recordings.jsonl"
    rec_path.write_text("".join(json.dumps(line) + "\n" for line in _recordings(docs, "replay-model")))
    from clinie.augment.replay import load_recordings

    with replay_server(load_recordings(rec_path)) as server:
        out = tmp_path / "out.jsonl"
        result = CliRunner().invoke(app, [
            "augment", "--in", str(inp), "--out", str(out), "--method", "llm", "--llm-url", server.url,
            "--llm-model", "replay-model", "--seed", "13", "--llm-cache", str(tmp_path / "cache"),
            "--token-log", str(tmp_path / "tokens.jsonl"), "--report", str(tmp_path / "report.json"),
        ])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["written"] == 2 and report["unit_acceptance"] == 1.0 and report["validator_pass_rate"] == 1.0
    outs = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(validate_document(d) == [] for d in outs)
    assert [d["meta"]["augmented_from"] for d in outs] == ["n1", "n2"]


def test_clinie_augment_offline_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("simple_icd_10_cm")
    from services.cli.main import app

    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(visit_note()) + "\n" + json.dumps(short_note()) + "\n")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["augment", "--in", str(inp), "--out", str(out), "--n", "2", "--seed", "3"])
    assert result.exit_code == 0, result.output
    outs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(outs) == 4 and all(validate_document(d) == [] for d in outs)


def test_llm_annotation_through_the_replay_server() -> None:
    from clinie.augment.llm import annotate_llm, default_guidelines

    notes = [{"id": "u1", "text": "Take metformin 500 mg twice a day.\nNo fever."},
             {"id": "u2", "text": "Continue lisinopril daily."}]
    answers = {
        "u1": "Take [Drug|e1 metformin] [Dosage|e2 500 mg] [Frequency|e3 twice a day].\nNo [Problem+negated|e4 fever]."
              "\n\nRELATIONS:\ne2 -> e1\ne3 -> e1",
        "u2": "Continue [Drug|e1 lisinopril] daily and aspirin.",  # the note's text was changed: rejected
    }
    client = LLMClient(LLMConfig(url="", model="m"))
    recs = {}
    from clinie.augment.llm import ANNOTATE_FORMAT, request_key

    for note in notes:
        budget = max(128, int(len(note["text"]) / 2.0) + 256)
        payload = client.payload([{"role": "system", "content": default_guidelines() + ANNOTATE_FORMAT},
                                  {"role": "user", "content": note["text"]}], temperature=0.0, max_tokens=budget)
        recs[request_key(payload)] = completion(answers[note["id"]], "m")
    with replay_server(recs) as server:
        stats = LLMStats()
        outs = list(annotate_llm(notes, LLMClient(LLMConfig(url=server.url, model="m")), stats=stats))
    assert [d["id"] for d in outs] == ["u1"]
    assert validate_document(outs[0]) == [] and len(outs[0]["relations"]) == 2
    assert stats.rejected["changed_text"] == 1
