"""``clinie annotate`` / ``clinie predict`` with real files: text, folders, stdin, interchange, FHIR in; JSONL, FHIR
Bundles (validated with fhir.resources, compared with what the store writes) and HTML (parsed) out; coded errors."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from clinie.model.repository import version_dir
from services.cli.main import app

NOTE = "Patient denies chest pain. Started metformin 500 mg PO BID for type 2 diabetes.\n"


@pytest.fixture(scope="module")
def model(tiny_repository: Path) -> str:
    return str(version_dir(tiny_repository))


def run(*args: str, stdin: str | bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def docref(rid: str, text: str, patient: str = "p1") -> dict[str, object]:
    return {"resourceType": "DocumentReference", "id": rid, "status": "current",
            "subject": {"reference": f"Patient/{patient}"},
            "content": [{"attachment": {"contentType": "text/plain",
                                        "data": base64.b64encode(text.encode()).decode()}}]}


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def test_text_file_to_jsonl(tmp_path: Path, model: str) -> None:
    note = tmp_path / "visit-1.txt"
    note.write_text(NOTE)
    out = tmp_path / "out.jsonl"
    code, _, err = run("annotate", str(note), "-o", str(out), "--model", model)
    assert code == 0, err
    (doc,) = lines(out)
    assert doc["id"] == "visit-1" and doc["text"] == NOTE
    assert "1 note(s) annotated" in err


def test_predict_alias_takes_a_text_file(tmp_path: Path, model: str) -> None:
    note = tmp_path / "note.txt"
    note.write_text(NOTE)
    out = tmp_path / "out.jsonl"
    code, _, err = run("predict", str(note), str(out), "--model", model)
    assert code == 0, err
    assert lines(out)[0]["text"] == NOTE


def test_folder_recursive_with_glob_and_progress(tmp_path: Path, model: str) -> None:
    (tmp_path / "notes" / "ward").mkdir(parents=True)
    for i in range(4):
        (tmp_path / "notes" / f"n{i}.txt").write_text(f"Note {i}: {NOTE}")
        (tmp_path / "notes" / "ward" / f"w{i}.txt").write_text(f"Ward {i}: {NOTE}")
    (tmp_path / "notes" / "ignored.md").write_text("not a note")
    out = tmp_path / "out.jsonl"
    code, _, err = run("annotate", str(tmp_path / "notes"), "-o", str(out), "--model", model)
    assert code == 0, err
    ids = [d["id"] for d in lines(out)]
    assert ids == [f"n{i}" for i in range(4)] + [f"ward/w{i}" for i in range(4)]
    assert "8/8" in err  # progress bar on stderr for more than a handful of notes
    code, _, err = run("annotate", str(tmp_path / "notes"), "--glob", "ward/*.txt", "-o", str(out), "-q",
                       "--model", model)
    assert code == 0 and [d["id"] for d in lines(out)] == [f"ward/w{i}" for i in range(4)]
    assert "/4" not in err


def test_quoted_glob(tmp_path: Path, model: str) -> None:
    for i in range(2):
        (tmp_path / f"a{i}.txt").write_text(NOTE)
    code, out, err = run("annotate", str(tmp_path / "*.txt"), "--model", model)
    assert code == 0, err
    assert [json.loads(ln)["id"] for ln in out.splitlines()] == ["a0", "a1"]


def test_stdin_text_and_stdin_jsonl(model: str) -> None:
    code, out, err = run("annotate", "-", "--model", model, stdin=NOTE)
    assert code == 0, err
    assert json.loads(out)["text"] == NOTE and json.loads(out)["id"] == "stdin"
    jsonl = json.dumps({"id": "a", "text": NOTE}) + "\n" + json.dumps({"id": "b", "text": "No fever."}) + "\n"
    code, out, err = run("annotate", "-", "--model", model, stdin=jsonl)
    assert code == 0, err
    assert [json.loads(ln)["id"] for ln in out.splitlines()] == ["a", "b"]


def test_fhir_ndjson_and_bundle_in_fhir_bundles_out(tmp_path: Path, model: str) -> None:
    ndjson = tmp_path / "docs.ndjson"
    ndjson.write_text(json.dumps(docref("doc-1", NOTE)) + "\n" + json.dumps(docref("doc-2", "Aspirin daily.")) + "\n")
    bundle_in = tmp_path / "bundle.json"
    bundle_in.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                     "entry": [{"resource": docref("doc-3", NOTE, "p2")}]}, indent=2))
    out = tmp_path / "out.ndjson"
    code, _, err = run("annotate", str(ndjson), str(bundle_in), "-f", "fhir", "-o", str(out), "--model", model)
    assert code == 0, err
    bundles = [Bundle.model_validate(b) for b in lines(out)]
    assert len(bundles) == 3
    for b in bundles:
        assert b.type == "transaction"
        for e in b.entry or []:
            assert e.request is not None
            rtype = e.resource.get_resource_type()
            if rtype == "Patient":
                assert e.request.method == "POST" and e.request.ifNoneExist == f"_id={e.resource.id}"
            else:
                assert e.request.method == "PUT" and e.request.url == f"{rtype}/{e.resource.id}"
                assert rtype in ("Condition", "MedicationStatement", "Provenance")
    first = bundles[0].entry or []
    assert first[0].resource.get_resource_type() == "Patient" and first[0].resource.id == "p1"


def test_fhir_bundle_is_what_the_store_writes(tmp_path: Path, model: str, pg_url: str) -> None:
    """The Bundle's resources are the rows the extractor's storage writes for the same note and model."""
    from clinie.backends.torch_backend import TorchBackend
    from clinie.fhir.docref import parse_document_reference
    from clinie.fhir.mapping import map_extraction
    from clinie.normalize import default_stages
    from clinie.pipeline import Annotator
    from clinie.storage.db import make_engine, migrate, session_factory
    from clinie.storage.repository import iter_resources, store_extraction

    src = tmp_path / "doc.ndjson"
    src.write_text(json.dumps(docref("doc-store", NOTE, "p-store")) + "\n")
    out = tmp_path / "bundle.ndjson"
    code, _, err = run("annotate", str(src), "-f", "fhir", "-o", str(out), "--model", model)
    assert code == 0, err
    bundle = lines(out)[0]
    assert isinstance(bundle["entry"], list)
    from_cli = {(e["resource"]["resourceType"], e["resource"]["id"]): e["resource"] for e in bundle["entry"]}

    mdir = Path(model)
    backend = TorchBackend.from_dir(mdir, model_version=f"{mdir.parent.name}/{mdir.name}")
    note = parse_document_reference(src.read_text())
    annotated = Annotator(backend, backend.tokenizer, backend.net.config,
                          stages=default_stages()).annotate([note.document])[0]
    migrate(pg_url)
    engine = make_engine(pg_url)
    with session_factory(engine)() as session, session.begin():
        store_extraction(session, note, map_extraction(note, annotated, backend.model_version), backend.model_version)
    with session_factory(engine)() as session:
        stored = {(r["resourceType"], r["id"]): r for t in ("Condition", "MedicationStatement", "Provenance", "Patient")
                  for r in iter_resources(session, t)
                  if (t == "Patient" and r["id"] == "p-store") or r.get("id") in {k[1] for k in from_cli}}
    engine.dispose()
    assert set(stored) == set(from_cli)
    volatile = {"meta", "recorded", "dateAsserted"}
    for key, res in from_cli.items():
        assert {k: v for k, v in res.items() if k not in volatile} == \
            {k: v for k, v in stored[key].items() if k not in volatile}


def test_fhir_to_a_folder_and_text_with_patient(tmp_path: Path, model: str) -> None:
    note = tmp_path / "my note_1.txt"
    note.write_text(NOTE)
    outdir = tmp_path / "bundles"
    outdir.mkdir()
    code, _, err = run("annotate", str(note), "-f", "fhir", "-o", str(outdir), "--patient", "pat-9", "--model", model)
    assert code == 0, err
    (path,) = outdir.iterdir()
    assert path.name == "my-note-1.json"  # a valid FHIR id
    b = Bundle.model_validate_json(path.read_text())
    refs = {e.resource.subject.reference for e in b.entry or [] if hasattr(e.resource, "subject")}
    assert refs <= {"Patient/pat-9"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.marks: list[dict[str, str | None]] = []
        self.sections: list[dict[str, str | None]] = []
        self.scripts = 0
        self.text: list[str] = []  # the note text as shown (inside div.text, without the label tags)
        self.external: list[str] = []
        self._in_text = self._in_tag = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._in_text = False
        elif tag == "span":
            self._in_tag = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and a.get("class") == "text":
            self._in_text = True
        elif tag == "span" and a.get("class") == "tag":
            self._in_tag = True
        elif tag == "mark":
            self.marks.append(a)
        elif tag == "section":
            self.sections.append(a)
        elif tag == "script":
            self.scripts += 1
            if a.get("src"):
                self.external.append(str(a["src"]))
        elif tag == "link":
            self.external.append(str(a.get("href")))

    def handle_data(self, data: str) -> None:
        if self._in_text and not self._in_tag:
            self.text.append(data)


def test_html_page(tmp_path: Path, model: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "x<1>", "text": "<script>alert(1)</script> " + NOTE}) + "\n")
    out = tmp_path / "page.html"
    code, _, err = run("annotate", str(src), "-f", "html", "-o", str(out), "--model", model)
    assert code == 0, err
    page = out.read_text()
    parser = _Page()
    parser.feed(page)
    assert parser.scripts == 1 and not parser.external  # self-contained: only the inline arc script
    assert "<script>alert" not in page  # note text is escaped (marks may split it, so check the decoded text)
    assert "".join(parser.text) == "<script>alert(1)</script> " + NOTE
    assert len(parser.sections) == 1 and parser.sections[0]["data-doc-id"] == "x<1>"
    json.loads(str(parser.sections[0]["data-relations"]))


def test_html_renderer_marks_spans_negation_and_relations() -> None:
    from clinie.annotate.html import render_html
    from clinie.document import Document, Entity, Relation

    text = "No fever. Metformin 500 mg for diabetes."
    doc = Document("d", text, entities=(
        Entity("T1", "Problem", 3, 8, negated=True), Entity("T2", "Drug", 10, 19), Entity("T3", "Dosage", 20, 26),
        Entity("T4", "Reason", 31, 39), Entity("T5", "Problem", 31, 39)),
        relations=(Relation("Dosage-Drug", "T3", "T2"), Relation("Reason-Drug", "T4", "T2")))
    parser = _Page()
    parser.feed(render_html([doc]))
    marks = {m["data-ids"]: m for m in parser.marks}
    assert set(marks) == {"T1", "T2", "T3", "T4 T5"}  # same span: one mark, both labels
    assert "neg" in str(marks["T1"]["class"]) and "neg" not in str(marks["T2"]["class"])
    assert marks["T4 T5"]["data-labels"] == "Reason Problem"
    rels = json.loads(str(parser.sections[0]["data-relations"]))
    assert {(r["label"], r["head"], r["tail"]) for r in rels} == {("Dosage-Drug", "T3", "T2"),
                                                                  ("Reason-Drug", "T4", "T2")}
    # the visible text, without the tags and tables, is the note
    assert "".join(parser.text) == text


def test_nested_spans_render_nested() -> None:
    from clinie.annotate.html import render_html
    from clinie.document import Document, Entity

    doc = Document("d", "type 2 diabetes mellitus", entities=(Entity("T1", "Problem", 0, 24),
                                                               Entity("T2", "Reason", 7, 15)))
    page = render_html([doc])
    outer = page.index('data-ids="T1"')
    inner = page.index('data-ids="T2"')
    assert outer < inner < page.index("</mark>", inner) < page.rindex("</mark>")


# ---------------------------------------------------------------------------------------------- errors


def test_missing_input_is_one_line_and_no_output(tmp_path: Path, model: str) -> None:
    out = tmp_path / "out.jsonl"
    code, _, err = run("annotate", str(tmp_path / "nope.txt"), "-o", str(out), "--model", model)
    assert code == 1
    assert err.strip().count("\n") == 0 and "[E301]" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("setup", "code_"), [
    (lambda d: (d / "bad.txt").write_bytes(b"\xff\xfe\x00bad"), "E302"),  # not UTF-8
    (lambda d: (d / "empty").mkdir(), "E303"),  # a folder without notes
])
def test_unreadable_inputs(tmp_path: Path, model: str, setup: object, code_: str) -> None:
    setup(tmp_path)  # type: ignore[operator]
    target = next(tmp_path.iterdir())
    out = tmp_path / "out.jsonl"
    code, _, err = run("annotate", str(target), "-o", str(out), "--model", model)
    assert code == 1 and f"[{code_}]" in err and err.strip().count("\n") == 0
    assert not out.exists()


def test_unwritable_output(tmp_path: Path, model: str) -> None:
    note = tmp_path / "n.txt"
    note.write_text(NOTE)
    code, _, err = run("annotate", str(note), "-o", str(tmp_path / "no" / "such" / "dir.jsonl"), "--model", model)
    assert code == 1 and "[E305]" in err


def test_bad_records_are_reported_and_the_rest_written(tmp_path: Path, model: str) -> None:
    bad = docref("doc-bad", NOTE)
    bad["content"] = [{"attachment": {"contentType": "text/plain", "data": "***not base64***"}}]
    src = tmp_path / "mixed.ndjson"
    src.write_text(json.dumps(docref("doc-ok", NOTE)) + "\n" + json.dumps(bad) + "\nnot json\n")
    out = tmp_path / "out.jsonl"
    code, _, err = run("annotate", str(src), "-o", str(out), "--model", model)
    assert code == 1
    assert [d["id"] for d in lines(out)] == ["doc-ok"]
    assert f"{src}:2: [E005]" in err and f"{src}:3: [E001]" in err and "2 input record(s) skipped" in err
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_model_is_coded(tmp_path: Path) -> None:
    note = tmp_path / "n.txt"
    note.write_text(NOTE)
    code, _, err = run("annotate", str(note), "--model", str(tmp_path / "no-model"))
    assert code == 1 and "[E101]" in err
