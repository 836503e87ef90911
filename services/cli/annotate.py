"""``clinie annotate`` (and its older name ``clinie predict``): read notes, run the model in-process, write results.

Kept apart from ``services.cli.main`` so the command's logic can be tested without a terminal. Fatal problems
(missing or unreadable input, no note at all, unwritable output, missing model) raise :class:`ClinieError` before
any output file exists; records that cannot be used (an invalid DocumentReference in an NDJSON file) are reported
one line each on stderr, the rest is written, and the exit status is 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING

from clinie.errors import ClinieError, ErrorCode

if TYPE_CHECKING:
    from clinie.annotate.sources import NoteInput, RecordError
    from clinie.document import Document
    from clinie.fhir.docref import SourceNote

PROGRESS_MIN_NOTES = 5


class OutputFormat(StrEnum):
    jsonl = "jsonl"
    fhir = "fhir"
    html = "html"


def _echo(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def atomic_output(path: Path | None) -> Iterator[IO[str]]:
    """Write to ``path`` (``None`` or ``-``: stdout) through a temporary file renamed on success, removed on failure:
    a failed run never leaves an empty or half-written output behind."""
    if path is None or str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fh = open(tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed below, before the rename
    except OSError as exc:
        raise ClinieError(ErrorCode.OUTPUT_UNWRITABLE,
                          f"{path}: cannot write ({exc.strerror or type(exc).__name__})") from None
    try:
        with fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _progress(total: int, quiet: bool) -> object:
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit="note", desc="annotating", dynamic_ncols=True,
                disable=quiet or total <= PROGRESS_MIN_NOTES)


def run_annotate(
    inputs: list[str],
    output: Path | None = None,
    fmt: OutputFormat = OutputFormat.jsonl,
    *,
    pattern: str = "**/*.txt",
    model: Path | None = None,
    patient: str | None = None,
    batch_windows: int = 32,
    quiet: bool = False,
) -> int:
    """Annotate ``inputs`` and write ``output`` in ``fmt``; returns the exit status (1: records skipped)."""
    from clinie.annotate.sources import NoteInput, RecordError, read_inputs

    items = read_inputs(inputs, pattern)
    errors: list[RecordError] = [i for i in items if isinstance(i, RecordError)]
    notes: list[NoteInput] = [i for i in items if isinstance(i, NoteInput)]
    sources: list[SourceNote | None] = [None] * len(notes)
    if fmt is OutputFormat.fhir:  # the service's view of each note: plain text becomes a DocumentReference first
        kept: list[NoteInput] = []
        kept_sources: list[SourceNote | None] = []
        for n in notes:
            try:
                sn = n.source_note(patient=patient)
            except ClinieError as err:
                errors.append(RecordError(n.origin, err))
                continue
            kept.append(NoteInput(sn.document, n.origin, sn))
            kept_sources.append(sn)
        notes, sources = kept, kept_sources
    for rec in errors:
        _echo(f"clinie: skipped {rec}")
    if not notes:
        raise ClinieError(ErrorCode.NO_INPUT, "no note could be read from the input" if errors else "no note given")
    if output is not None and str(output) != "-" and output.is_dir() and fmt is not OutputFormat.fhir:
        raise ClinieError(ErrorCode.OUTPUT_UNWRITABLE, f"{output}: is a folder (only --format fhir writes one "
                                                       "file per note into a folder)")

    from clinie.backends.torch_backend import TorchBackend
    from clinie.model.repository import default_repository, version_dir
    from clinie.normalize import default_stages
    from clinie.pipeline import Annotator

    model_dir = model or version_dir(default_repository())
    if not model_dir.is_dir():
        raise ClinieError(ErrorCode.MODEL_NOT_FOUND, f"{model_dir}: no such model directory")
    started = time.perf_counter()
    backend = TorchBackend.from_dir(model_dir, model_version=f"{model_dir.parent.name}/{model_dir.name}")
    # the same stages as the extractor service: assertions beyond negation, ICD-10-CM codes, ingredients
    extractor = Annotator(backend, backend.tokenizer, backend.net.config, batch_windows=batch_windows,
                          stages=default_stages())

    bar = _progress(len(notes), quiet)

    def annotated() -> Iterator[Document]:
        for doc in extractor.pipe(n.document.without_annotations() for n in notes):
            bar.update(1)  # type: ignore[attr-defined]
            yield doc

    n_ents = n_rels = 0
    try:
        if fmt is OutputFormat.fhir and output is not None and output.is_dir():
            for src, doc in zip(sources, annotated(), strict=True):
                assert src is not None
                with atomic_output(output / f"{src.resource_id}.json") as fh:
                    fh.write(_bundle_json(src, doc, backend.model_version, indent=2) + "\n")
                n_ents, n_rels = n_ents + len(doc.entities), n_rels + len(doc.relations)
        else:
            with atomic_output(output) as fh:
                if fmt is OutputFormat.html:
                    from clinie.annotate.html import render_html

                    docs = list(annotated())
                    n_ents, n_rels = sum(len(d.entities) for d in docs), sum(len(d.relations) for d in docs)
                    fh.write(render_html(docs, title=f"clinie annotations ({backend.model_version})"))
                else:
                    for src, doc in zip(sources, annotated(), strict=True):
                        if fmt is OutputFormat.fhir:
                            assert src is not None
                            fh.write(_bundle_json(src, doc, backend.model_version) + "\n")
                        else:
                            from clinie.io import document_to_json

                            fh.write(json.dumps(document_to_json(doc), ensure_ascii=False) + "\n")
                        n_ents, n_rels = n_ents + len(doc.entities), n_rels + len(doc.relations)
    finally:
        bar.close()  # type: ignore[attr-defined]
    where = "stdout" if output is None or str(output) == "-" else str(output)
    _echo(f"clinie: {len(notes)} note(s) annotated ({n_ents} entities, {n_rels} relations) with "
          f"{backend.model_version} in {time.perf_counter() - started:.1f}s -> {where} ({fmt.value})")
    if errors:
        _echo(f"clinie: {len(errors)} input record(s) skipped (listed above)")
        return 1
    return 0


def _bundle_json(note: SourceNote, doc: Document, model_version: str, indent: int | None = None) -> str:
    from clinie.annotate.bundle import map_note, transaction_bundle
    from clinie.fhir.serialize import resource_json

    bundle = transaction_bundle(note, map_note(note, doc, model_version))
    data = resource_json(bundle)
    return json.dumps(data, ensure_ascii=False, indent=indent, separators=None if indent else (",", ":"))
