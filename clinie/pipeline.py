"""Document in, annotated document out: ``preprocess`` -> backend ``infer`` -> ``postprocess``.

``preprocess`` is ``clinie.model.encode.preprocess``, the encode step training uses too.

Pre- and post-processing are pure functions of their inputs; the backend is the only part that runs a model.
Character offsets come from the tokenizer's offset map, never from searching the text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from clinie.backends.base import InferenceBackend
from clinie.document import Document, Entity, Relation
from clinie.model.config import ModelConfig
from clinie.model.encode import Prepared, preprocess
from clinie.model.runtime import NoteOutput
from clinie.schema import LabelSchema, relation_label
from clinie.text.tokenize import WordPieceTokenizer

# a stage after extraction (assertions, normalisation): Document in, new Document out
Stage = Callable[[Document], Document]


def snap_to_words(start: int, end: int, word_start: NDArray[np.bool_]) -> tuple[int, int]:
    """Widen a piece span [start, end) to whole words: never cut "histolytica" into "histo"."""
    while start > 0 and not word_start[start]:
        start -= 1
    while end < word_start.shape[0] and not word_start[end]:
        end += 1
    return start, end


# pieces that end a token's widening: brackets, quotes and sentence punctuation ("(Norvasc)," stays "Norvasc")
_TOKEN_STOPS = frozenset(".,;:!?()[]{}<>\"'")


def widen_to_token(start: int, end: int, offsets: NDArray[np.int64], text: str) -> tuple[int, int]:
    """Widen a piece span [start, end) over the pieces glued to it without whitespace ("lisinopril/" +
    "hydrochlorothiazide", "Retin" + "-A"), stopping at brackets, quotes and sentence punctuation."""
    def stop(i: int) -> bool:
        return text[int(offsets[i, 0]):int(offsets[i, 1])] in _TOKEN_STOPS

    while start > 0 and offsets[start - 1, 1] == offsets[start, 0] and not stop(start - 1):
        start -= 1
    while end < offsets.shape[0] and offsets[end, 0] == offsets[end - 1, 1] and not stop(end):
        end += 1
    # never end on a joining character: "Retin-" alone is not a drug name
    while end - start > 1 and text[int(offsets[end - 1, 0]):int(offsets[end - 1, 1])] in ("-", "/"):
        end -= 1
    while end - start > 1 and text[int(offsets[start, 0]):int(offsets[start, 1])] in ("-", "/"):
        start += 1
    return start, end


def postprocess(prepared: Prepared, output: NoteOutput, schema: LabelSchema, config: ModelConfig) -> Document:
    """Piece-level predictions -> entities and relations on the document: the one place decisions are made.

    The model version's thresholds (``config.negation_threshold``, ``config.relation_threshold``) are applied
    here and nowhere else, so every backend returning the same scores gives the same document. Fragments of one
    word that widen to the same span become one entity; a span of punctuation only is dropped with its relations;
    a (head, tail) pair is linked at most once.
    """
    offsets = prepared.encoded.offsets
    word_start = prepared.encoded.word_start
    entities: list[Entity] = []
    row_to_entity: dict[int, int] = {}
    seen: dict[tuple[int, int, int], int] = {}
    for k, (ts, te, lab) in enumerate(output.entities.tolist()):
        ts, te = snap_to_words(ts, te, word_start)
        if schema.entity_labels[lab] in config.whole_token_labels:
            ts, te = widen_to_token(ts, te, offsets, prepared.doc.text)
        if (ts, te, lab) in seen:  # two fragments of one word became the same span
            row_to_entity[k] = seen[(ts, te, lab)]
            continue
        start, end = int(offsets[ts, 0]), int(offsets[te - 1, 1])
        if not any(c.isalnum() for c in prepared.doc.text[start:end]):
            continue  # punctuation only (the "." of "e.l.f."): never a mention under the annotation guidelines
        label = schema.entity_labels[lab]
        conf, negp = output.entity_scores[k].tolist()
        seen[(ts, te, lab)] = row_to_entity[k] = len(entities)
        entities.append(
            Entity(
                id=f"T{len(entities) + 1}",
                label=label,
                start=start,
                end=end,
                negated=label in schema.negatable_labels and negp >= config.negation_threshold,
                score=float(conf),
            )
        )
    relations: list[Relation] = []
    linked: set[tuple[int, int]] = set()
    for (h, t), score in zip(output.relations.tolist(), output.relation_scores.tolist(), strict=True):
        if score < config.relation_threshold:
            continue
        if h not in row_to_entity or t not in row_to_entity:  # an argument dropped above
            continue
        head, tail = row_to_entity[h], row_to_entity[t]
        if (head, tail) in linked:
            continue
        linked.add((head, tail))
        relations.append(Relation(
            label=relation_label(entities[head].label),
            head=entities[head].id,
            tail=entities[tail].id,
            score=float(score),
        ))
    return prepared.doc.without_annotations().with_annotations(
        entities=entities, relations=relations, segments=prepared.encoded.segments
    )


class Annotator:
    """Bundles tokenizer, model config and a backend; ``annotate``/``pipe`` annotate documents in batches.

    (The library's document annotator; the Kafka service that runs one is ``services.extractor``.)

    ``stages`` run in order on every annotated document (e.g. ``clinie.normalize.default_stages()``).
    """

    def __init__(self, backend: InferenceBackend, tokenizer: WordPieceTokenizer, config: ModelConfig,
                 batch_windows: int = 16, stages: Sequence[Stage] = ()) -> None:
        self.backend = backend
        self.tokenizer = tokenizer
        self.config = config
        self.batch_windows = batch_windows
        self.stages = tuple(stages)

    def annotate(self, docs: list[Document]) -> list[Document]:
        """Annotate ``docs`` in one backend call."""
        return list(self._run([preprocess(d, self.tokenizer, self.config) for d in docs]))

    def pipe(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Annotate a stream, batching notes up to ``batch_windows`` windows per model call."""
        batch: list[Prepared] = []
        windows = 0
        for doc in docs:
            p = preprocess(doc, self.tokenizer, self.config)
            n = p.encoded.input_ids.shape[0]
            if batch and windows + n > self.batch_windows:
                yield from self._run(batch)
                batch, windows = [], 0
            batch.append(p)
            windows += n
        if batch:
            yield from self._run(batch)

    def _run(self, batch: list[Prepared]) -> Iterator[Document]:
        outputs = self.backend.infer([p.inputs for p in batch])
        for p, o in zip(batch, outputs, strict=True):
            doc = postprocess(p, o, self.backend.schema, self.config)
            for stage in self.stages:
                doc = stage(doc)
            yield doc
