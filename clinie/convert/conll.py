"""CoNLL / BIO token columns to and from the clinie interchange format.

Reading (``read_conll``): one token a line, the token in the first column and its tag in the last (``O``,
``B-X``/``I-X``; ``S-X``/``E-X`` and ``U-X``/``L-X`` of BIOES/BILOU are read too, and an ``I-X`` that does not
continue an ``X`` starts one); columns are split on tabs, or on spaces when a line has no tab. A blank line ends
a sentence. ``-DOCSTART-`` or a comment ``# doc_id = ID`` (also ``# id = ID``) starts a document; other ``#``
lines are comments, except a ``#`` token followed by a tag. Documents without an id are ``<file stem>-<n>``.

Offsets: with ``texts`` (a folder of ``<id>.txt``) each token is found in the note after the previous one,
skipping only whitespace, so the entities get the note's exact character offsets; a token that is not there is
E105 with the file and line number. Without it, the text is rebuilt: tokens joined by one space, sentences by a
newline. CoNLL has no relations or assertions; ``linked_entities`` of a label map are kept as plain entities.

Writing (``write_conll``) splits the text into words and punctuation, and also at every entity edge, so reading the
file back with the notes as ``texts`` gives the same spans. BIO cannot hold overlapping entities: of two that
overlap, the one that starts first (the longer on a tie) is written and the other counted in ``skipped``; tokens
hold no whitespace, so an entity that begins or ends with a space reads back without it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from clinie.convert.brat import read_text
from clinie.convert.labelmap import LabelMap
from clinie.document import Document, Entity
from clinie.errors import ErrorCode, InvalidInputError

_DOC_ID = re.compile(r"^#\s*(?:doc_id|id)\s*=\s*(\S+)\s*$")
_WORD = re.compile(r"\w+|[^\w\s]")
_TAG = re.compile(r"^(O|[BIESUL][-_]\S+)$")


@dataclass
class _Token:
    text: str
    tag: str
    line: int
    sentence: int


def _tag(raw: str, where: str, lineno: int) -> tuple[str, str | None]:
    if raw == "O":
        return "O", None
    if len(raw) > 2 and raw[1] in "-_" and raw[0] in "BIESUL":
        return raw[0], raw[2:]
    raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{where}:{lineno}: tag is not O, B-X, I-X (or S/E/U/L-X)")


def _iter_blocks(fh: TextIO, where: str) -> Iterator[tuple[str | None, list[_Token]]]:
    doc_id: str | None = None
    tokens: list[_Token] = []
    sentence = 0
    started = False
    for lineno, raw in enumerate(fh, 1):
        line = raw.rstrip("\r\n")
        m = _DOC_ID.match(line)
        if m or line.split(maxsplit=1)[:1] == ["-DOCSTART-"]:
            if started:
                yield doc_id, tokens
            doc_id, tokens, sentence, started = (m.group(1) if m else None), [], 0, True
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if line.startswith("#") and not (len(cols) >= 2 and _TAG.match(cols[-1].strip())):
            continue  # a comment (a "#" token has a tag after it)
        if not line.strip():
            if tokens and tokens[-1].sentence == sentence:
                sentence += 1
            continue
        if len(cols) < 2 or not cols[0]:
            raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{where}:{lineno}: expected '<token> ... <tag>'")
        tokens.append(_Token(cols[0], cols[-1].strip(), lineno, sentence))
        started = True
    if started:
        yield doc_id, tokens


def _offsets(tokens: list[_Token], text: str | None, where: str, txt_name: str) -> tuple[str, list[tuple[int, int]]]:
    spans: list[tuple[int, int]] = []
    if text is None:
        parts: list[str] = []
        pos = 0
        for k, tok in enumerate(tokens):
            if k:
                sep = "\n" if tok.sentence != tokens[k - 1].sentence else " "
                parts.append(sep)
                pos += 1
            spans.append((pos, pos + len(tok.text)))
            parts.append(tok.text)
            pos += len(tok.text)
        return "".join(parts), spans
    pos = 0
    for tok in tokens:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith(tok.text, pos):
            raise InvalidInputError(ErrorCode.OFFSET_MISMATCH, f"{where}:{tok.line}: the token does not match "
                                    f"{txt_name} at offset {pos} (is that the note these tokens came from?)")
        spans.append((pos, pos + len(tok.text)))
        pos += len(tok.text)
    return text, spans


def read_conll(path: str | Path, texts: str | Path | None = None,
               label_map: LabelMap | None = None) -> Iterator[Document]:
    """Documents of one CoNLL/BIO file (see the module docstring)."""
    lmap = label_map or LabelMap()
    where = str(path)
    if not Path(path).is_file():
        raise InvalidInputError(ErrorCode.INPUT_NOT_FOUND, f"{path}: no such file")
    with open(path, encoding="utf-8") as fh:
        for n, (doc_id, tokens) in enumerate(_iter_blocks(fh, where), 1):
            did = doc_id or f"{Path(path).stem}-{n}"
            note: str | None = None
            txt_name = ""
            if texts is not None:
                txt = Path(texts) / f"{did}.txt"
                if not txt.is_file():
                    raise InvalidInputError(ErrorCode.INPUT_NOT_FOUND, f"{where}: no {txt} for document {did}")
                note, txt_name = read_text(txt), txt.name
            text, spans = _offsets(tokens, note, where, txt_name)
            found: list[tuple[str, int, int]] = []
            current: tuple[str, int, int] | None = None
            for tok, (start, end) in zip(tokens, spans, strict=True):
                prefix, label = _tag(tok.tag, where, tok.line)
                continues = current is not None and prefix in "IEL" and label == current[0]
                if continues and current is not None:
                    current = (current[0], current[1], end)
                else:
                    if current is not None:
                        found.append(current)
                    current = (label, start, end) if label is not None else None
                if prefix in "SEUL" and current is not None:
                    found.append(current)
                    current = None
            if current is not None:
                found.append(current)
            entities: list[Entity] = []
            for label, start, end in found:
                mapped, _linked = lmap.entity_label(label)
                if mapped is not None:
                    entities.append(Entity(id=f"T{len(entities) + 1}", label=mapped, start=start, end=end))
            yield Document(id=did, text=text, source=lmap.source, labels=lmap.labels, entities=tuple(entities))


@dataclass
class ConllWritten:
    documents: int = 0
    tokens: int = 0
    skipped: int = 0  # entities left out because they overlap one already written


def document_to_conll(doc: Document, stats: ConllWritten | None = None) -> str:
    stats = stats if stats is not None else ConllWritten()
    kept: list[Entity] = []
    for e in sorted(doc.entities, key=lambda e: (e.start, -(e.end - e.start))):
        if kept and e.start < kept[-1].end:
            stats.skipped += 1
            continue
        kept.append(e)
    cuts = sorted({p for e in kept for p in (e.start, e.end)})
    lines = [f"# doc_id = {doc.id}"]
    ent_i = 0
    prev_end = 0
    for m in _WORD.finditer(doc.text):
        # split a word at every entity edge inside it
        edges = [m.start()] + [c for c in cuts if m.start() < c < m.end()] + [m.end()]
        for a, b in itertools.pairwise(edges):
            while ent_i < len(kept) and kept[ent_i].end <= a:
                ent_i += 1
            inside = ent_i < len(kept) and kept[ent_i].start < a
            if "\n" in doc.text[prev_end:a] and lines[-1] != "" and not inside:  # a line break ends a sentence
                lines.append("")
            tag = "O"
            if ent_i < len(kept) and kept[ent_i].start <= a < kept[ent_i].end:
                tag = ("B-" if a == kept[ent_i].start else "I-") + kept[ent_i].label
            lines.append(f"{doc.text[a:b]}\t{tag}")
            stats.tokens += 1
            prev_end = b
    stats.documents += 1
    return "\n".join(lines).rstrip("\n") + "\n\n"


def write_conll(path: str | Path, docs: Iterable[Document]) -> ConllWritten:
    stats = ConllWritten()
    with open(path, "w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(document_to_conll(doc, stats))
    return stats
