"""Helpers for the extractor tests (the real components are session fixtures in tests/conftest.py)."""

from __future__ import annotations

import base64
import json


def docref(doc_id: str, text: str | None, *, version: str | None = None, content_type: str = "text/plain",
           data: str | None = None, patient: str = "p1") -> bytes:
    """A synthetic DocumentReference (no real patient text)."""
    attachment: dict[str, str] = {"contentType": content_type}
    if data is not None:
        attachment["data"] = data
    elif text is not None:
        attachment["data"] = base64.b64encode(text.encode()).decode()
    res: dict[str, object] = {
        "resourceType": "DocumentReference", "id": doc_id, "status": "current",
        "subject": {"reference": f"Patient/{patient}"},
        "date": "2024-03-01T10:00:00Z",
        "content": [{"attachment": attachment}],
        "context": {"encounter": [{"reference": "Encounter/e1"}]},
    }
    if version:
        res["meta"] = {"versionId": version}
    return json.dumps(res).encode()


NOTE = ("Assessment: type 2 diabetes and hypertension. Denies chest pain.\n"
        "Plan: metformin 500 mg PO BID for diabetes; lisinopril 10 mg daily. Rash after amoxicillin.\n")


