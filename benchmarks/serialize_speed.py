"""FHIR serialisation on the storage path: fhir.resources' ``model_dump_json`` against ``resource_json`` (issue 11).

The resources are those ``map_extraction`` builds from gold-annotated notes (no model needed), plus the note's
Patient stub, as the extractor stores them::

    .venv/bin/python -m benchmarks.serialize_speed --input ../shared/data/corpus/aci-notes-dev.jsonl \
        --reps 15 --json runs/serialize_speed.json
    # and the whole store step (one transaction per note, rolled back), against a PostgreSQL database:
    .venv/bin/python -m benchmarks.serialize_speed --pg-url postgresql://postgres@127.0.0.1:5432/clinie_bench

Three steps, each timed per note for the old and the new code, **paired and interleaved** (for every note and
repetition both variants run back to back, alternating which goes first), so a background load hits both alike:

* ``serialize``: ``json.loads(r.model_dump_json())`` vs ``resource_json(r)`` for every resource of the note;
* ``rows``: the ``fhir_resources`` rows (``resource_row``: JSON, search columns, ``meta``), the old row code being
  the store as it was (``model_dump_json`` for the resource and for its ``meta``);
* ``store`` (with ``--pg-url``): ``store_extraction`` in a transaction that is rolled back, so every repetition
  inserts every row (as a new note does in the stream).

Reported per step: the median over repetitions of the per-note and per-resource mean (ms), and the median of the
paired old/new ratios.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.resource import Resource

from clinie.fhir.docref import SourceNote, parse_document_reference
from clinie.fhir.mapping import MappedResources, map_extraction, patient_stub
from clinie.fhir.serialize import resource_json
from clinie.io import read_documents
from clinie.storage import repository

MODEL = "clinie_ie/4"
DEFAULT_INPUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "aci-notes-dev.jsonl"


def legacy_json(resource: Resource) -> dict[str, Any]:
    """The store's serialisation before ``resource_json``."""
    out: dict[str, Any] = json.loads(resource.model_dump_json())
    return out


def _legacy_as_json(resource: Any) -> dict[str, Any]:
    return dict(resource) if isinstance(resource, dict) else legacy_json(resource)


def _legacy_with_meta(data: Any, version: int, now: datetime) -> dict[str, Any]:
    meta = Meta.model_validate({**(data.get("meta") or {}), "versionId": str(version), "lastUpdated": now})
    return {**data, "meta": json.loads(meta.model_dump_json())}


@contextmanager
def legacy_store() -> Iterator[None]:
    """``clinie.storage.repository`` with its serialisation as it was before ``resource_json``."""
    saved = repository._as_json, repository._with_meta
    repository._as_json, repository._with_meta = _legacy_as_json, _legacy_with_meta  # type: ignore[assignment]
    try:
        yield
    finally:
        repository._as_json, repository._with_meta = saved


@dataclasses.dataclass
class Note:
    source: SourceNote
    mapped: MappedResources

    def resources(self) -> list[Resource]:
        stub = patient_stub(self.source.patient_ref)
        return [*self.mapped.resources(), *([stub] if stub is not None else [])]


def load_notes(path: Path, limit: int) -> list[Note]:
    docs = read_documents(path)
    docs = docs[:limit] if limit else docs
    notes = []
    for i, doc in enumerate(docs):
        fhir_id = re.sub(r"[^A-Za-z0-9\-.]", "-", doc.id)[:64]
        b64 = base64.b64encode(doc.text.encode()).decode()
        payload = {"resourceType": "DocumentReference", "id": fhir_id, "status": "current",
                   "meta": {"versionId": str(i + 1)}, "subject": {"reference": f"Patient/{fhir_id}"},
                   "date": "2024-01-01T00:00:00Z",
                   "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": b64}}]}
        source = parse_document_reference(json.dumps(payload).encode(), max_chars=max(len(doc.text), 1))
        annotated = dataclasses.replace(doc, id=source.resource_id)
        notes.append(Note(source, map_extraction(source, annotated, MODEL, asserted=datetime.now(UTC))))
    return notes


Step = Callable[[Note], object]


def paired(notes: list[Note], old: Step, new: Step, reps: int) -> dict[str, Any]:
    """Per repetition, the summed seconds of ``old`` and ``new`` over all notes (each note: both, alternating)."""
    old_s, new_s = [0.0] * reps, [0.0] * reps
    for rep in range(reps):
        for i, note in enumerate(notes):
            order = (old, new) if (rep + i) % 2 == 0 else (new, old)
            for fn in order:
                t0 = time.perf_counter()
                fn(note)
                dt = time.perf_counter() - t0
                if fn is old:
                    old_s[rep] += dt
                else:
                    new_s[rep] += dt
    n_notes = len(notes)
    n_res = sum(len(n.resources()) for n in notes)

    def ms(values: list[float], per: int) -> float:
        return round(statistics.median(values) / per * 1000, 3)

    return {
        "old_ms_per_note": ms(old_s, n_notes), "new_ms_per_note": ms(new_s, n_notes),
        "old_ms_per_resource": ms(old_s, n_res), "new_ms_per_resource": ms(new_s, n_res),
        "speedup_median": round(statistics.median(o / n for o, n in zip(old_s, new_s, strict=True)), 1),
        "saved_ms_per_note": round(statistics.median(o - n for o, n in zip(old_s, new_s, strict=True))
                                   / n_notes * 1000, 2),
    }


def rows(note: Note) -> None:
    now = datetime.now(UTC)
    for res in note.resources():
        repository.resource_row(res, version_id=1, last_updated=now)


def legacy_rows(note: Note) -> None:
    with legacy_store():
        rows(note)


def store_steps(pg_url: str) -> tuple[Step, Step, Callable[[], None]]:
    from clinie.storage.db import make_engine, migrate, session_factory

    migrate(pg_url)
    engine = make_engine(pg_url)
    factory = session_factory(engine)

    def store(note: Note) -> None:
        with factory() as session:
            session.begin()
            repository.store_extraction(session, note.source, note.mapped, MODEL)
            session.flush()
            session.rollback()

    def legacy(note: Note) -> None:
        with legacy_store():
            store(note)

    return legacy, store, engine.dispose


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT, help="annotated notes (clinie JSONL)")
    ap.add_argument("--limit", type=int, default=0, help="first N notes (0: all)")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--pg-url", help="also time store_extraction against this (migrated, rolled back) database")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    notes = load_notes(args.input, args.limit)
    n_res = sum(len(n.resources()) for n in notes)
    for note in notes:  # the two paths agree (tests/fhir/test_serialize.py checks this more widely)
        for res in note.resources():
            assert resource_json(res) == legacy_json(res)
    load_start = os.getloadavg()[0]
    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                            "python": platform.python_version(), "loadavg_start": load_start}
    result: dict[str, Any] = {"input": str(args.input), "notes": len(notes), "resources": n_res,
                              "resources_per_note": round(n_res / len(notes), 1), "reps": args.reps, "machine": info}

    def serialize_old(note: Note) -> None:
        for res in note.resources():
            legacy_json(res)

    def serialize_new(note: Note) -> None:
        for res in note.resources():
            resource_json(res)

    paired(notes[:2], serialize_old, serialize_new, 1)  # warm the class plans and imports
    result["serialize"] = paired(notes, serialize_old, serialize_new, args.reps)
    result["rows"] = paired(notes, legacy_rows, rows, args.reps)
    if args.pg_url:
        legacy, store, close = store_steps(args.pg_url)
        try:
            paired(notes[:2], legacy, store, 1)
            result["store"] = paired(notes, legacy, store, args.reps)
        finally:
            close()
    load_end = info["loadavg_end"] = os.getloadavg()[0]
    print(f"{len(notes)} notes, {n_res} resources ({n_res / len(notes):.1f} per note), {args.reps} paired reps, "
          f"load {load_start:.1f} -> {load_end:.1f}")
    for step in ("serialize", "rows", "store"):
        if step in result:
            r = result[step]
            print(f"{step:>9}: {r['old_ms_per_note']:8.2f} -> {r['new_ms_per_note']:7.2f} ms/note, "
                  f"{r['old_ms_per_resource']:6.3f} -> {r['new_ms_per_resource']:6.3f} ms/resource, "
                  f"x{r['speedup_median']} (saves {r['saved_ms_per_note']} ms/note)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
