"""``clinie convert``: annotated data (brat, CoNLL/BIO, PHEE) to and from the interchange JSONL.

The conversion rules live in ``clinie.convert`` (brat, conll, phee, labelmap); docs/training-data.md is the guide.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from clinie.document import Document
from clinie.errors import ErrorCode, InvalidInputError
from services.cli.errors import friendly_errors

CONTEXT = {"help_option_names": ["-h", "--help"]}
convert_app = typer.Typer(help="Convert annotated data (brat, CoNLL/BIO, PHEE) to and from the interchange JSONL.",
                          no_args_is_help=True, context_settings=CONTEXT)

Output = Annotated[Path | None, typer.Option("--output", "-o", help="Interchange JSONL to write (default: stdout).")]
LabelMapOpt = Annotated[Path | None, typer.Option(
    help="TOML label map: source label -> clinie label, drop lists, attributes (configs/label-maps/).")]
SourceOpt = Annotated[str | None, typer.Option(help="The documents' 'source' (overrides the label map's).")]
LabelsOpt = Annotated[str | None, typer.Option(
    help="Comma-separated labels the documents are annotated for (overrides the label map's).")]


def _label_map(path: Path | None, source: str | None, labels: str | None):  # type: ignore[no-untyped-def]
    from clinie.convert.labelmap import load_label_map

    lmap = load_label_map(path)
    if source is not None:
        lmap = dataclasses.replace(lmap, source=source)
    if labels is not None:
        lmap = dataclasses.replace(lmap, labels=tuple(x.strip() for x in labels.split(",") if x.strip()))
    return lmap


def _write(docs: Iterable[Document], output: Path | None) -> None:
    from clinie.io import document_to_json

    n = ents = rels = 0

    def counted() -> Iterator[str]:
        nonlocal n, ents, rels
        for doc in docs:
            n += 1
            ents += len(doc.entities)
            rels += len(doc.relations)
            yield json.dumps(document_to_json(doc), ensure_ascii=False) + "\n"

    if output is None:
        for line in counted():
            sys.stdout.write(line)
        sys.stdout.flush()
    else:
        lines = list(counted())  # convert everything first: an error leaves no half-written file
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text("".join(lines), encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(ErrorCode.OUTPUT_UNWRITABLE, f"{output}: {exc.strerror}") from None
    typer.echo(f"clinie: converted {n} document(s): {ents} entities, {rels} relations"
               + (f" -> {output}" if output else ""), err=True)


def _read_interchange(path: Path) -> list[Document]:
    from clinie.io import read_documents

    if not path.is_file():
        raise InvalidInputError(ErrorCode.INPUT_NOT_FOUND, f"{path}: no such file")
    return read_documents(path)


@convert_app.command("brat")
@friendly_errors
def convert_brat(
    folder: Annotated[Path, typer.Argument(help="Folder of NAME.txt + NAME.ann pairs (searched recursively).")],
    output: Output = None,
    label_map: LabelMapOpt = None,
    source: SourceOpt = None,
    labels: LabelsOpt = None,
) -> None:
    """brat standoff (T entities, discontinuous spans, E events, R relations, A attributes) -> interchange JSONL."""
    from clinie.convert.brat import read_brat_folder

    _write(read_brat_folder(folder, _label_map(label_map, source, labels)), output)


@convert_app.command("conll")
@friendly_errors
def convert_conll(
    path: Annotated[Path, typer.Argument(help="CoNLL/BIO file: token first, tag last, blank line between sentences.")],
    output: Output = None,
    text: Annotated[Path | None, typer.Option(
        help="Folder of <doc id>.txt: offsets are found in these notes exactly (else the text is rebuilt).")] = None,
    label_map: LabelMapOpt = None,
    source: SourceOpt = None,
    labels: LabelsOpt = None,
) -> None:
    """CoNLL/BIO token columns -> interchange JSONL (entities only)."""
    from clinie.convert.conll import read_conll

    _write(read_conll(path, text, _label_map(label_map, source, labels)), output)


@convert_app.command("phee")
@friendly_errors
def convert_phee(
    path: Annotated[Path, typer.Argument(help="PHEE JSON lines (github.com/ZhaoyueSun/PHEE data/json).")],
    output: Output = None,
) -> None:
    """PHEE events -> interchange JSONL (Drug and its attributes, Reason, ADE, and their relations)."""
    from clinie.convert.phee import read_phee

    _write(read_phee(path), output)


@convert_app.command("to-brat")
@friendly_errors
def convert_to_brat(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Interchange JSONL.")],
    folder: Annotated[Path, typer.Argument(help="Folder to write <id>.txt and <id>.ann into.")],
) -> None:
    """Interchange JSONL -> brat standoff (flags as attributes, codes and ingredients as notes)."""
    from clinie.convert.brat import write_brat_folder

    docs = _read_interchange(input_path)
    try:
        n = write_brat_folder(folder, docs)
    except OSError as exc:
        raise InvalidInputError(ErrorCode.OUTPUT_UNWRITABLE, f"{folder}: {exc.strerror}") from None
    typer.echo(f"clinie: wrote {n} document(s) to {folder}", err=True)


@convert_app.command("to-conll")
@friendly_errors
def convert_to_conll(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Interchange JSONL.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CoNLL file to write.")],
    text_dir: Annotated[Path | None, typer.Option(
        help="Also write each note as <id>.txt here, for `clinie convert conll --text` to find exact offsets.")] = None,
) -> None:
    """Interchange JSONL -> CoNLL/BIO (token<TAB>tag; overlapping entities: the first is kept)."""
    from clinie.convert.conll import write_conll

    docs = _read_interchange(input_path)
    try:
        stats = write_conll(output, docs)
        if text_dir is not None:
            for doc in docs:
                (text_dir / f"{doc.id}.txt").parent.mkdir(parents=True, exist_ok=True)
                with open(text_dir / f"{doc.id}.txt", "w", encoding="utf-8", newline="") as fh:
                    fh.write(doc.text)
    except OSError as exc:
        raise InvalidInputError(ErrorCode.OUTPUT_UNWRITABLE, f"{exc.filename}: {exc.strerror}") from None
    typer.echo(f"clinie: wrote {stats.documents} document(s), {stats.tokens} tokens to {output}"
               + (f"; {stats.skipped} overlapping entities left out" if stats.skipped else ""), err=True)
