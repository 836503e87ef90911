"""Training-data experiments: the same model and budget trained on different corpus mixtures, scored on held-out sets.

An experiment config (TOML) names a base training config (model, optimiser, dev sets), the budget shared by every
variant (epochs x steps per epoch), the seeds, the evaluation sets and the variants (each a weighted mixture).
:func:`run_experiment` trains every (variant, seed) into ``output_dir/<variant>/seed<k>`` — a finished pair is
skipped and an interrupted one resumes — evaluates its best checkpoint on every evaluation set and writes
``results.json`` next to it; :func:`results_markdown` turns the results into the tables of
``docs/experiments/augmentation.md``.
"""

from __future__ import annotations

import json
import statistics
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from clinie.io import read_documents
from clinie.model.train import CorpusSpec, TrainConfig, evaluate_net, train


class Variant(BaseModel):
    name: str
    description: str = ""
    train: list[CorpusSpec]


class ExperimentConfig(BaseModel):
    base: str = Field(description="TrainConfig TOML giving the model, optimiser, init_from and dev sets.")
    output_dir: str = "runs/experiments/augmentation"
    seeds: list[int] = Field(default_factory=lambda: [13])
    epochs: int = Field(2, ge=1)
    steps_per_epoch: int = Field(150, ge=1, description="The same optimiser steps for every variant.")
    dev: list[str] | None = Field(None, description="Model-selection sets (default: the base config's).")
    eval: list[str] = Field(description="Held-out interchange JSONL files to report on.")
    variants: list[Variant]

    @classmethod
    def from_file(cls, path: str | Path) -> ExperimentConfig:
        return cls.model_validate(tomllib.loads(Path(path).read_text()))

    def train_config(self, variant: Variant, seed: int) -> TrainConfig:
        out = Path(self.output_dir) / variant.name / f"seed{seed}"
        return TrainConfig.from_file(self.base, train=[c.model_dump() for c in variant.train], seed=seed,
                                     epochs=self.epochs, steps_per_epoch=self.steps_per_epoch, output_dir=str(out),
                                     patience=self.epochs, dev=self.dev)


def evaluate_model(model_dir: Path, eval_paths: list[str]) -> dict[str, Any]:
    """Score a saved model on each evaluation set with the project's scorer (reports as dicts)."""
    from clinie.backends.torch_backend import TorchBackend

    backend = TorchBackend.from_dir(model_dir)
    return {Path(p).stem: evaluate_net(backend.net, backend.tokenizer, read_documents(p))["report"]
            for p in eval_paths}


def run_experiment(cfg: ExperimentConfig, only: list[str] | None = None) -> list[dict[str, Any]]:
    results = []
    for variant in cfg.variants:
        if only and variant.name not in only:
            continue
        for seed in cfg.seeds:
            tcfg = cfg.train_config(variant, seed)
            out = Path(tcfg.output_dir)
            done = out / "results.json"
            if done.exists():
                results.append(json.loads(done.read_text()))
                continue
            summary = train(tcfg, resume=True)
            result = {"variant": variant.name, "seed": seed, "train": [c.model_dump() for c in variant.train],
                      "best_epoch": summary["best"].get("epoch"), "train_seconds": summary["seconds"],
                      "eval": evaluate_model(out / "best", cfg.eval)}
            done.write_text(json.dumps(result, indent=2))
            results.append(result)
    return results


def _f1(report: dict[str, Any], mode: str, kind: str, label: str | None = None) -> float:
    block = report[f"{mode}_{kind}"]
    counts = block["micro"] if label is None else block["by_label"].get(label)
    return float(counts["f1"]) if counts else 0.0


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def results_markdown(results: list[dict[str, Any]]) -> str:
    """One micro table per evaluation set (strict and lenient, entities and relations) and one per-label table."""
    variants = list(dict.fromkeys(r["variant"] for r in results))
    sets = list(dict.fromkeys(s for r in results for s in r["eval"]))
    seeds = sorted({r["seed"] for r in results})
    lines = [f"Seeds per variant: {len(seeds)} ({', '.join(map(str, seeds))}); mean ± sd where more than one.", ""]
    for name in sets:
        per = {v: [r["eval"][name] for r in results if r["variant"] == v and name in r["eval"]] for v in variants}
        labels = sorted({lab for reps in per.values() for rep in reps
                         for lab in rep["strict_entities"]["by_label"]})
        rel_labels = sorted({lab for reps in per.values() for rep in reps
                             for lab in rep["strict_relations"]["by_label"]})
        lines += [f"#### {name}", "",
                  "| variant | entity strict | entity lenient | relation strict | relation lenient |",
                  "| --- | --- | --- | --- | --- |"]
        for v, reps in per.items():
            cells = [_cell([_f1(r, m, k) for r in reps]) for k in ("entities", "relations")
                     for m in ("strict", "lenient")]
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines += ["", "Per label, strict / lenient F1:", "",
                  "| variant | " + " | ".join(labels + rel_labels) + " |",
                  "| --- |" + " --- |" * (len(labels) + len(rel_labels))]
        for v, reps in per.items():
            cells = [f"{_cell([_f1(r, 'strict', 'entities', lab) for r in reps])} / "
                     f"{_cell([_f1(r, 'lenient', 'entities', lab) for r in reps])}" for lab in labels]
            cells += [f"{_cell([_f1(r, 'strict', 'relations', lab) for r in reps])} / "
                      f"{_cell([_f1(r, 'lenient', 'relations', lab) for r in reps])}" for lab in rel_labels]
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["ExperimentConfig", "Variant", "evaluate_model", "results_markdown", "run_experiment"]
