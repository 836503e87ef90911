"""Inference variants of a loaded clinie network, for benchmarks only (the serving path is not changed).

Each variant swaps ``net.encoder`` (the transformer, ~all of the FLOPs) for a faster equivalent and leaves the
BiLSTM, heads and decoding as they are, so ``clinie.model.runtime.run_notes`` runs unchanged:

- ``fp32``: the shipped model as loaded.
- ``int8``: ``torch.ao.quantization.quantize_dynamic`` on the encoder's ``nn.Linear`` layers (int8 weights,
  activations quantised per batch at run time).
- ``int8-ffn``: only the feed-forward Linears (``intermediate.dense``, ``output.dense``) int8; attention fp32.
- ``int8-attn``: only the self-attention Linears (query, key, value, attention output) int8; feed-forward fp32.
- ``int8-lstm``: ``int8`` plus the BiLSTM dynamically quantised too.
- ``torchscript``: the encoder traced with ``torch.jit.trace`` and frozen.
- ``onnx``: the encoder exported to ONNX and run by ONNX Runtime (CPU, ``intra_op_num_threads`` = threads).
- ``onnx-int8``: that ONNX graph with ``onnxruntime.quantization.quantize_dynamic`` (int8 weights).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from clinie.model.network import ClinieNet

VARIANTS = ("fp32", "int8", "int8-ffn", "int8-attn", "int8-lstm", "torchscript", "onnx", "onnx-int8")


class _HiddenOnly(nn.Module):
    """The encoder returning only ``last_hidden_state`` (a tensor), so it can be traced or exported."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # type: ignore[no-any-return]


class _TensorEncoder(nn.Module):
    """Wraps a tensor-returning encoder back into the ``.last_hidden_state`` interface ``ClinieNet`` calls."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> SimpleNamespace:
        return SimpleNamespace(last_hidden_state=self.fn(input_ids, attention_mask))


class _OrtEncoder:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between calls: the BiLSTM and decoding run on the same cores in torch's threads
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        (out,) = self.session.run(
            None, {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        )
        return torch.from_numpy(np.ascontiguousarray(out))


def _example(net: ClinieNet) -> tuple[Tensor, Tensor]:
    ids = torch.randint(1000, 2000, (2, net.config.max_segment_tokens + 2), dtype=torch.long)
    return ids, torch.ones_like(ids)


def _export_onnx(net: ClinieNet, path: Path) -> None:
    wrapped = _HiddenOnly(net.encoder).eval()
    torch.onnx.export(
        wrapped, _example(net), str(path), input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"], opset_version=17, dynamo=False,
        dynamic_axes={"input_ids": {0: "windows", 1: "len"}, "attention_mask": {0: "windows", 1: "len"},
                      "last_hidden_state": {0: "windows", 1: "len"}},
    )


def apply_variant(net: ClinieNet, variant: str, threads: int = 2, workdir: Path | None = None) -> ClinieNet:
    """``net`` (in eval mode) with its encoder replaced by ``variant``; modifies and returns ``net``."""
    net.eval()
    if variant == "fp32":
        return net
    if variant in ("int8", "int8-lstm"):
        net.encoder = torch.ao.quantization.quantize_dynamic(net.encoder, {nn.Linear}, dtype=torch.qint8)
        if variant == "int8-lstm":
            net.lstm = torch.ao.quantization.quantize_dynamic(
                nn.Sequential(net.lstm), {nn.LSTM}, dtype=torch.qint8)[0]
        return net
    if variant in ("int8-ffn", "int8-attn"):
        attn = variant == "int8-attn"
        names = {n for n, m in net.encoder.named_modules()
                 if isinstance(m, nn.Linear) and (".attention." in n) == attn}
        net.encoder = torch.ao.quantization.quantize_dynamic(net.encoder, names, dtype=torch.qint8)
        return net
    if variant == "torchscript":
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(_HiddenOnly(net.encoder).eval(), _example(net), strict=False)
            traced = torch.jit.freeze(traced)
        net.encoder = _TensorEncoder(traced)
        return net
    if variant in ("onnx", "onnx-int8"):
        folder = workdir or Path(tempfile.mkdtemp(prefix="clinie-onnx-"))
        path = folder / "encoder.onnx"
        _export_onnx(net, path)
        if variant == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            qpath = folder / "encoder.int8.onnx"
            quantize_dynamic(str(path), str(qpath), weight_type=QuantType.QInt8)
            path = qpath
        net.encoder = _TensorEncoder(_OrtEncoder(path, threads))
        return net
    raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
