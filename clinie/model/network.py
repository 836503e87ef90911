"""The clinie network: BERT per window -> BiLSTM over the whole note -> NER, negation and relation heads.

Tensors in, logits out. No tokenizer, no decoding, no I/O here (see ``runtime`` and ``decode``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from clinie.model.config import ModelConfig
from clinie.schema import BIO, LabelSchema


@dataclass
class NetOutput:
    hidden: Tensor  # [B, T, D] note-level token representations (padded)
    lengths: Tensor  # [B] pieces per note
    ner_logits: Tensor  # [B, T, num_labels, 3]  O/B/I per label (labels may overlap)
    negation_logits: Tensor  # [B, T]


class ClinieNet(nn.Module):
    def __init__(self, config: ModelConfig, schema: LabelSchema, encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.schema = schema
        self.encoder = encoder
        encoder_config: Any = encoder.config  # a transformers model carries its config
        enc_hidden = int(encoder_config.hidden_size)
        self.lstm = nn.LSTM(
            enc_hidden,
            config.lstm_hidden,
            num_layers=config.lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.lstm_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        dim = 2 * config.lstm_hidden + enc_hidden
        self.hidden_dim = dim
        n_labels = len(schema.entity_labels)
        self.ner_head = nn.Linear(dim, n_labels * len(BIO))
        self.negation_head = nn.Linear(dim, 1)
        self.head_label_embedding = nn.Embedding(n_labels, 32)
        self.distance_embedding = nn.Embedding(2 * config.distance_buckets, 32)
        self.relation_head = nn.Sequential(
            nn.Linear(3 * dim + 64, config.relation_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.relation_hidden, 1),
        )
        self.freeze_encoder_layers(config.trainable_encoder_layers)

    def freeze_encoder_layers(self, trainable: int) -> None:
        """Freeze the embeddings and all but the top ``trainable`` encoder layers."""
        encoder: Any = self.encoder
        layers = encoder.encoder.layer
        n_frozen = max(0, len(layers) - trainable)
        for p in encoder.embeddings.parameters():
            p.requires_grad = trainable >= len(layers) + 1
        for i, layer in enumerate(layers):
            for p in layer.parameters():
                p.requires_grad = i >= n_frozen
        pooler = getattr(encoder, "pooler", None)
        if pooler is not None:
            for p in pooler.parameters():
                p.requires_grad = False

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, keep_mask: Tensor, note_index: Tensor
    ) -> NetOutput:
        """Windows of several notes in, note-level logits out.

        ``input_ids``, ``attention_mask``, ``keep_mask``: [S, L]; ``note_index``: [S], non-decreasing, the note each
        window belongs to (windows of a note contiguous and in order). Kept positions, row by row, are the note's
        pieces.
        """
        encoded = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [S, L, H]
        keep = keep_mask.bool()
        flat = encoded[keep]  # [N, H] in note order
        token_note = note_index.unsqueeze(1).expand_as(keep_mask)[keep]
        num_notes = int(note_index.max().item()) + 1 if note_index.numel() else 0
        lengths = torch.bincount(token_note, minlength=num_notes)
        if bool((lengths == 0).any()):
            raise ValueError("every note needs at least one kept word piece")
        per_note = torch.split(flat, lengths.tolist())
        padded = pad_sequence(list(per_note), batch_first=True)  # [B, T, H]
        packed = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        lstm_out, _ = self.lstm(packed)
        lstm_out, _ = pad_packed_sequence(lstm_out, batch_first=True, total_length=padded.shape[1])
        hidden = self.dropout(torch.cat([lstm_out, padded], dim=-1))
        b, t, _ = hidden.shape
        ner = self.ner_head(hidden).view(b, t, len(self.schema.entity_labels), len(BIO))
        neg = self.negation_head(hidden).squeeze(-1)
        return NetOutput(hidden=hidden, lengths=lengths, ner_logits=ner, negation_logits=neg)

    def _distance_bucket(self, delta: Tensor) -> Tensor:
        """Signed log-spaced buckets of (tail start - head start)."""
        nb = self.config.distance_buckets
        mag = torch.clamp(torch.log2(delta.abs().float() + 1).long(), max=nb - 1)
        return torch.where(delta >= 0, mag, mag + nb)

    def score_pairs(
        self, hidden: Tensor, pair_note: Tensor, head_spans: Tensor, tail_spans: Tensor, head_labels: Tensor
    ) -> Tensor:
        """Logit that (attribute head, Drug tail) are related. Spans are [P, 2] piece ranges (end exclusive)."""
        if pair_note.numel() == 0:
            return hidden.new_zeros((0,))
        cs = torch.nn.functional.pad(hidden.cumsum(dim=1), (0, 0, 1, 0))  # [B, T+1, D]

        def span_mean(spans: Tensor) -> Tensor:
            total = cs[pair_note, spans[:, 1]] - cs[pair_note, spans[:, 0]]
            return total / (spans[:, 1] - spans[:, 0]).clamp(min=1).unsqueeze(-1).to(total.dtype)

        h = span_mean(head_spans)
        t = span_mean(tail_spans)
        dist = self.distance_embedding(self._distance_bucket(tail_spans[:, 0] - head_spans[:, 0]))
        lab = self.head_label_embedding(head_labels)
        return self.relation_head(torch.cat([h, t, h * t, dist, lab], dim=-1)).squeeze(-1)
