"""parse_document_reference: the happy path, one test per bad-input class, HTML, and the Synthea notes."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clinie.errors import ErrorCode, InvalidInputError
from clinie.fhir.docref import SourceNote, parse_document_reference
from tests.fhir.factories import NOTE, docref_bytes, docref_dict


def test_parses_plain_text_note() -> None:
    note = parse_document_reference(docref_bytes("doc-1", NOTE))
    assert isinstance(note, SourceNote)
    assert note.resource_id == note.document.id == "doc-1"
    assert note.text == note.document.text == NOTE
    assert note.content_sha256 == hashlib.sha256(NOTE.encode()).hexdigest()
    assert note.version == note.content_sha256[:16]  # no meta.versionId
    assert note.patient_ref == "Patient/p1"
    assert note.encounter_ref == "Encounter/e1"
    assert note.date == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert note.content_type == "text/plain"


@pytest.mark.parametrize("kind", ["bytes", "str", "dict"])
def test_accepts_bytes_str_and_dict(kind: str) -> None:
    d = docref_dict("doc-2", "Some note.", version="7")
    payload = {"bytes": json.dumps(d).encode(), "str": json.dumps(d), "dict": d}[kind]
    note = parse_document_reference(payload)  # type: ignore[arg-type]
    assert note.text == "Some note." and note.version == "7"


def test_optional_fields_absent() -> None:
    note = parse_document_reference(docref_dict("doc-3", "x y", patient=None, encounter=None, date=None))
    assert note.patient_ref is None and note.encounter_ref is None and note.date is None


def test_reference_normalisation() -> None:
    d = docref_dict("doc-4", "x")
    d["subject"] = {"reference": "https://ehr.example/fhir/Patient/abc/_history/3"}
    d["context"] = {"encounter": [{"reference": "EpisodeOfCare/1"}, {"reference": "Encounter/enc-9"}]}
    note = parse_document_reference(d)
    assert note.patient_ref == "Patient/abc" and note.encounter_ref == "Encounter/enc-9"
    d["subject"] = {"reference": "Group/g1"}
    assert parse_document_reference(d).patient_ref is None


def test_content_hash_version_changes_with_text() -> None:
    a = parse_document_reference(docref_dict("d", "first text"))
    b = parse_document_reference(docref_dict("d", "second text"))
    assert a.version != b.version and len(a.version) == 16


def test_prefers_text_plain_and_skips_attachments_without_data() -> None:
    d = docref_dict("doc-5", "<p>html version</p>", content_type="text/html")
    d["content"].insert(0, {"attachment": {"contentType": "text/plain", "url": "https://x.example/n.txt"}})
    d["content"].append(
        {"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"plain version").decode()}}
    )
    note = parse_document_reference(d)
    assert note.text == "plain version" and note.content_type == "text/plain"


def test_declared_charset_is_used() -> None:
    text = "Café au lait spots, naïve."
    note = parse_document_reference(
        docref_dict("doc-6", text, content_type="text/plain; charset=ISO-8859-1", encoding="latin-1")
    )
    assert note.text == text


def test_utf8_bom_is_dropped() -> None:
    data = base64.b64encode("\ufeffNote body".encode()).decode()
    assert parse_document_reference(docref_dict("doc-7", None, data=data)).text == "Note body"


def test_base64_with_line_breaks_is_accepted() -> None:
    b64 = base64.encodebytes(("word " * 40).encode()).decode()  # MIME style, newline every 76 chars
    assert "\n" in b64.strip()
    assert parse_document_reference(docref_dict("doc-8", None, data=b64)).text == "word " * 40


# ---------------------------------------------------------------------------------------------- bad input


def _code(payload: object, **kw: int) -> ErrorCode:
    with pytest.raises(InvalidInputError) as exc:
        parse_document_reference(payload, **kw)  # type: ignore[arg-type]
    return exc.value.code


def test_not_json() -> None:
    assert _code(b"this is not json") == ErrorCode.NOT_JSON
    assert _code(b"\xff\xfe\x00garbage") == ErrorCode.NOT_JSON
    assert _code("{'single': 'quotes'}") == ErrorCode.NOT_JSON


def test_not_document_reference() -> None:
    assert _code(b'{"resourceType": "Patient", "id": "x"}') == ErrorCode.NOT_DOCUMENT_REFERENCE
    assert _code(b'{"id": "x"}') == ErrorCode.NOT_DOCUMENT_REFERENCE
    assert _code(b"[1, 2]") == ErrorCode.NOT_DOCUMENT_REFERENCE


def test_invalid_resource() -> None:
    assert (
        _code(b'{"resourceType": "DocumentReference", "id": "x", "status": "current", "content": 5}')
        == ErrorCode.INVALID_RESOURCE
    )
    d = docref_dict("x")
    d["date"] = "yesterday"
    assert _code(d) == ErrorCode.INVALID_RESOURCE
    d = docref_dict("x")
    del d["id"]
    assert _code(d) == ErrorCode.INVALID_RESOURCE
    d = docref_dict("x")
    d["unknownElement"] = True
    assert _code(d) == ErrorCode.INVALID_RESOURCE


def test_invalid_resource_message_has_no_values() -> None:
    d = docref_dict("x")
    d["description"] = {"secret": "Jane Doe has HIV"}  # wrong type, PHI-like value
    with pytest.raises(InvalidInputError) as exc:
        parse_document_reference(d)
    assert exc.value.code == ErrorCode.INVALID_RESOURCE
    assert "Jane" not in str(exc.value) and "description" in str(exc.value)
    d = docref_dict("x")
    d["Jane Doe, HIV+"] = 1  # an unknown element whose *name* is PHI-like
    with pytest.raises(InvalidInputError) as exc:
        parse_document_reference(d)
    assert exc.value.code == ErrorCode.INVALID_RESOURCE and "Jane" not in str(exc.value)
    with pytest.raises(InvalidInputError) as exc:
        parse_document_reference({"resourceType": "Jane Doe, HIV+"})
    assert exc.value.code == ErrorCode.NOT_DOCUMENT_REFERENCE and "Jane" not in str(exc.value)


def test_no_text() -> None:
    assert _code(docref_dict("x", None)) == ErrorCode.NO_TEXT  # attachment without data
    assert _code(docref_dict("x", "   \n\t ")) == ErrorCode.NO_TEXT  # whitespace only
    assert _code(docref_dict("x", "<p> </p><script>x()</script>", content_type="text/html")) == ErrorCode.NO_TEXT


@pytest.mark.parametrize("data", ["!!!not base64!!!", "aGVsbG8", "aGVsbG8=aGVsbG8=", "aGVs$bG8="])
def test_bad_base64(data: str) -> None:
    assert _code(docref_dict("x", None, data=data)) == ErrorCode.BAD_BASE64


@pytest.mark.parametrize("ctype", ["application/pdf", "image/png", "text/rtf", None])
def test_unsupported_content_type(ctype: str | None) -> None:
    assert _code(docref_dict("x", "a note", content_type=ctype)) == ErrorCode.UNSUPPORTED_CONTENT_TYPE


def test_unknown_charset_is_unsupported() -> None:
    assert (
        _code(docref_dict("x", "a note", content_type="text/plain; charset=klingon"))
        == ErrorCode.UNSUPPORTED_CONTENT_TYPE
    )
    assert (
        _code(docref_dict("x", "a note", content_type="text/plain; charset=zlib")) == ErrorCode.UNSUPPORTED_CONTENT_TYPE
    )


def test_bad_encoding() -> None:
    data = base64.b64encode(b"\xff\xfe\xfa caf\xe9").decode()
    assert _code(docref_dict("x", None, data=data)) == ErrorCode.BAD_ENCODING
    nul = base64.b64encode(b"abc\x00def").decode()
    assert _code(docref_dict("x", None, data=nul)) == ErrorCode.BAD_ENCODING


def test_note_too_large() -> None:
    assert _code(docref_dict("x", "word " * 500), max_chars=1000) == ErrorCode.NOTE_TOO_LARGE
    assert parse_document_reference(docref_dict("x", "a" * 1000), max_chars=1000).text == "a" * 1000
    # HTML: the limit applies to the extracted text, not the markup
    html = "<div class='x'>" + "<b></b>" * 500 + "short</div>"
    assert parse_document_reference(docref_dict("x", html, content_type="text/html"), max_chars=1000).text == "short"


def test_error_messages_never_contain_note_text() -> None:
    secret = "Patient Zelda Quux has syphilis"
    cases = [
        docref_dict("x", secret, content_type="application/pdf"),
        docref_dict("x", secret * 100),
        docref_dict("x", None, data=base64.b64encode(secret.encode("utf-16-le")).decode() + "!"),
    ]
    for payload in cases:
        with pytest.raises(InvalidInputError) as exc:
            parse_document_reference(payload, max_chars=100)
        assert "Zelda" not in str(exc.value)


# ---------------------------------------------------------------------------------------------- HTML


def test_html_note_offsets_refer_to_extracted_text() -> None:
    html = (
        "<html><head><style>p {color: red}</style></head><body>"
        "<h2>Assessment</h2><p>Patient has <b>chest&nbsp;pain</b> &amp; fever.</p>"
        "<script>alert('x')</script><ul><li>aspirin 81&#160;mg</li><li>no rash</li></ul></body></html>"
    )
    note = parse_document_reference(docref_dict("h1", html, content_type="text/html; charset=utf-8"))
    assert note.content_type == "text/html"
    # &nbsp; is whitespace and collapses to a plain space like any other run of whitespace
    assert note.text == "Assessment\nPatient has chest pain & fever.\naspirin 81 mg\nno rash"
    assert "<" not in note.text and "alert" not in note.text and "color" not in note.text
    start = note.text.index("fever")
    assert note.document.text[start : start + 5] == "fever"
    assert note.content_sha256 == hashlib.sha256(note.text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- real data


def test_all_synthea_notes_parse(shared_data: Path) -> None:
    path = shared_data / "synthea" / "DocumentReference.ndjson"
    lines = path.read_bytes().splitlines()
    assert len(lines) == 196
    for line in lines:
        raw = json.loads(line)
        note = parse_document_reference(line)
        assert note.resource_id == raw["id"]
        assert note.text.strip()
        assert note.patient_ref == raw["subject"]["reference"]
        assert note.encounter_ref == raw["context"]["encounter"][0]["reference"]
        assert note.date is not None and note.date.tzinfo is not None
        expected = base64.b64decode(raw["content"][0]["attachment"]["data"]).decode("utf-8")
        assert note.text == expected


# --- issue 12 (8): nesting deeper than the recursion limit is bad input with its own code, not E009 ------------


def _nested_extension(depth: int) -> dict[str, object]:
    ext: dict[str, object] = {"url": "http://example.org/x", "valueString": "v"}
    for _ in range(depth):
        ext = {"url": "http://example.org/x", "extension": [ext]}
    return ext


def test_resource_nested_300_deep_is_an_invalid_resource() -> None:
    data = docref_dict()
    data["extension"] = [_nested_extension(300)]
    with pytest.raises(InvalidInputError) as err:
        parse_document_reference(json.dumps(data).encode())
    assert err.value.code is ErrorCode.INVALID_RESOURCE


def test_json_nested_100000_deep_is_not_json() -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_document_reference(b"[" * 100_000 + b"]" * 100_000)
    assert err.value.code is ErrorCode.NOT_JSON
