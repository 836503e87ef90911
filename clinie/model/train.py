"""Training loop: token-budget batches, masked multi-task loss, early stopping on dev F1, checkpoints."""

from __future__ import annotations

import json
import logging
import random
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, ValidationError
from tqdm import tqdm

from clinie.backends.torch_backend import TorchBackend
from clinie.document import Document
from clinie.errors import ErrorCode, InvalidInputError, ModelError
from clinie.evaluate import score
from clinie.io import read_documents
from clinie.model.checkpoint import WEIGHTS, build_pretrained, save_model
from clinie.model.config import ModelConfig
from clinie.model.features import TrainExample, make_example
from clinie.model.network import ClinieNet
from clinie.model.runtime import stack_notes
from clinie.pipeline import Annotator
from clinie.schema import DEFAULT_SCHEMA, LabelSchema
from clinie.text.tokenize import WordPieceTokenizer

log = logging.getLogger(__name__)


class CorpusSpec(BaseModel):
    """One training corpus of a mixture: ``weight`` x its documents are drawn each epoch (repeated when > 1,
    a fresh random subset when < 1)."""

    path: str
    weight: float = Field(1.0, gt=0)


class TrainConfig(BaseModel):
    model: ModelConfig = Field(default_factory=ModelConfig)  # type: ignore[arg-type]
    train: list[CorpusSpec | str]
    dev: list[str] = Field(description="Dev sets; the objective is the mean over sets of (entity F1 + relation F1)/2.")
    init_from: str | None = Field(None, description="Model directory whose trained weights start the run.")
    output_dir: str = "runs/default"
    seed: int = 13
    epochs: int = Field(6, ge=1)
    patience: int = Field(2, ge=1, description="Epochs without dev improvement before stopping.")
    batch_tokens: int = Field(2048, ge=64, description="Padded pieces (windows x length) per optimiser step.")
    lr_encoder: float = 5e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    negation_weight: float = 0.5
    relation_weight: float = 1.0
    steps_per_epoch: int | None = Field(None, ge=1, description="Fix the optimiser steps per epoch (a budget equal "
                                        "across mixtures); the epoch's batches are cut or cycled to this count.")
    max_train_docs: int | None = None
    max_dev_docs: int | None = None
    threads: int | None = None

    @property
    def corpora(self) -> list[CorpusSpec]:
        return [c if isinstance(c, CorpusSpec) else CorpusSpec(path=c) for c in self.train]

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a TOML config; ``overrides`` that are not None replace its keys. Errors are one coded line:
        E301 (no such file), E302 (unreadable), E307 (not TOML, or a key missing or invalid)."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInputError(ErrorCode.INPUT_NOT_FOUND, f"training config {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(ErrorCode.INPUT_UNREADABLE, f"training config {path}: cannot read ({exc})") \
                from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(ErrorCode.BAD_TRAIN_CONFIG, f"training config {path}: not TOML ({exc})") from None
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                              for e in err.errors(include_url=False, include_input=False)[:3])
            raise InvalidInputError(ErrorCode.BAD_TRAIN_CONFIG, f"training config {path}: {where}") from None

    def check_paths(self) -> None:
        """Every corpus and ``init_from`` exists (E301/E101 naming the first that does not), before any work."""
        for kind, paths in (("train", [c.path for c in self.corpora]), ("dev", list(self.dev))):
            if not paths:
                raise InvalidInputError(ErrorCode.NO_INPUT, f"no {kind} corpus (set {kind} in the config or "
                                        f"pass --{kind})")
            for p in paths:
                if not Path(p).is_file():
                    raise InvalidInputError(ErrorCode.INPUT_NOT_FOUND, f"{kind} corpus {p}: no such file")
        if self.init_from and not (Path(self.init_from) / WEIGHTS).is_file():
            raise ModelError(ErrorCode.MODEL_NOT_FOUND, f"init_from {self.init_from}: no {WEIGHTS} there")


@dataclass
class Batch:
    examples: list[TrainExample]


def make_batches(examples: list[TrainExample], batch_tokens: int, max_len: int, rng: random.Random) -> list[Batch]:
    """Group notes of similar length so that windows x window-length stays under ``batch_tokens``."""
    order = sorted(range(len(examples)), key=lambda i: (examples[i].num_tokens, rng.random()))
    batches: list[Batch] = []
    cur: list[TrainExample] = []
    rows = 0
    width = 0
    for i in order:
        ex = examples[i]
        w = min(max_len, ex.inputs.input_ids.shape[1])
        if cur and (rows + ex.num_windows) * max(width, w) > batch_tokens:
            batches.append(Batch(cur))
            cur, rows, width = [], 0, 0
        cur.append(ex)
        rows += ex.num_windows
        width = max(width, w)
    if cur:
        batches.append(Batch(cur))
    rng.shuffle(batches)
    return batches


def batch_loss(net: ClinieNet, batch: Batch, cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    exs = batch.examples
    out = net(**stack_notes([e.inputs for e in exs]))
    b, t, n_labels, n_tags = out.ner_logits.shape
    tags = torch.zeros((b, t, n_labels), dtype=torch.long)
    neg = torch.zeros((b, t))
    neg_mask = torch.zeros((b, t), dtype=torch.bool)
    label_mask = torch.from_numpy(np.stack([e.label_mask for e in exs]))
    for k, e in enumerate(exs):
        tags[k, : e.num_tokens] = torch.from_numpy(e.ner_tags)
        neg[k, : e.num_tokens] = torch.from_numpy(e.negation)
        neg_mask[k, : e.num_tokens] = torch.from_numpy(e.negation_mask)
    valid = torch.arange(t).unsqueeze(0) < out.lengths.unsqueeze(1)  # [B, T]
    ce = F.cross_entropy(out.ner_logits.reshape(-1, n_tags), tags.reshape(-1), reduction="none").view(b, t, n_labels)
    cell_mask = valid.unsqueeze(-1) & label_mask.unsqueeze(1)
    ner_loss = (ce * cell_mask).sum() / valid.sum().clamp(min=1)
    if bool(neg_mask.any()):
        neg_loss = F.binary_cross_entropy_with_logits(out.negation_logits[neg_mask], neg[neg_mask])
    else:
        neg_loss = out.negation_logits.sum() * 0.0
    pair_note = np.concatenate([np.full(e.pair_heads.shape[0], k) for k, e in enumerate(exs)]).astype(np.int64)
    if pair_note.size:
        heads = np.concatenate([e.spans[e.pair_heads] for e in exs if e.pair_heads.size])
        tails = np.concatenate([e.spans[e.pair_tails] for e in exs if e.pair_tails.size])
        targets = torch.from_numpy(np.concatenate([e.pair_targets for e in exs]))
        logits = net.score_pairs(out.hidden, torch.from_numpy(pair_note), torch.from_numpy(heads[:, :2]),
                                 torch.from_numpy(tails[:, :2]), torch.from_numpy(heads[:, 2]))
        rel_loss = F.binary_cross_entropy_with_logits(logits, targets)
    else:
        rel_loss = out.hidden.sum() * 0.0
    loss = ner_loss + cfg.negation_weight * neg_loss + cfg.relation_weight * rel_loss
    return loss, {"ner": ner_loss.item(), "neg": neg_loss.item(), "rel": rel_loss.item()}


def evaluate_net(net: ClinieNet, tokenizer: WordPieceTokenizer, docs: list[Document]) -> dict[str, Any]:
    extractor = Annotator(TorchBackend(net, tokenizer), tokenizer, net.config, batch_windows=32)
    preds = list(extractor.pipe(d.without_annotations() for d in docs))
    report = score(docs, preds)
    ent = report.micro("strict", "entities").f1
    rel = report.micro("strict", "relations").f1
    return {"strict_entity_f1": round(ent, 4), "strict_relation_f1": round(rel, 4),
            "objective": round((ent + rel) / 2, 4), "report": report.as_dict()}


def evaluate_sets(net: ClinieNet, tokenizer: WordPieceTokenizer, sets: dict[str, list[Document]]) -> dict[str, Any]:
    """Evaluate each dev set on its own; the objective is their mean, so a small in-domain set counts as much as a
    large out-of-domain one."""
    per_set = {name: evaluate_net(net, tokenizer, docs) for name, docs in sets.items()}
    objective = sum(r["objective"] for r in per_set.values()) / max(1, len(per_set))
    return {"objective": round(objective, 4),
            "sets": {name: {k: v for k, v in r.items() if k != "report"} for name, r in per_set.items()},
            "report": {name: r["report"] for name, r in per_set.items()}}


def load_docs(paths: list[str], limit: int | None) -> list[Document]:
    docs: list[Document] = []
    for p in paths:
        part = read_documents(p)
        docs.extend(part[:limit] if limit else part)
    return docs


def epoch_sample(groups: list[tuple[list[TrainExample], float]], rng: random.Random) -> list[TrainExample]:
    """One epoch of a weighted mixture: each corpus contributes weight x its size (whole repeats + a random rest)."""
    out: list[TrainExample] = []
    for examples, weight in groups:
        whole, frac = divmod(weight * len(examples), len(examples)) if examples else (0, 0.0)
        out.extend(examples * int(whole))
        out.extend(rng.sample(examples, round(frac)))
    return out


def fit_steps(batches: list[Batch], steps: int) -> list[Batch]:
    """Exactly ``steps`` batches: the first ones when there are more, cycled when there are fewer."""
    if not batches:
        return batches
    return [batches[i % len(batches)] for i in range(steps)]


def init_weights(net: ClinieNet, model_dir: str | Path) -> None:
    """Start from a saved model version's trained tensors (fine-tuning); every tensor must fit."""
    state = torch.load(Path(model_dir) / WEIGHTS, map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    own = net.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ModelError(ErrorCode.LABEL_MAP_MISMATCH, f"{model_dir} does not fit this network ({bad[:3]})")
    net.load_state_dict(state, strict=False)


def _resume(net: ClinieNet, opt: torch.optim.Optimizer, sched: Any, rng: random.Random,
            out_dir: Path) -> tuple[int, dict[str, Any], list[dict[str, Any]], int]:
    init_weights(net, out_dir / "last")
    state = torch.load(out_dir / "last" / "trainer.pt", map_location="cpu", weights_only=False)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    rng.setstate(state["rng"])
    tqdm.write(f"resuming after epoch {state['epoch']}")
    return int(state["epoch"]) + 1, dict(state["best"]), list(state["history"]), int(state["bad_epochs"])


def train(cfg: TrainConfig, schema: LabelSchema = DEFAULT_SCHEMA,
          net_and_tokenizer: tuple[ClinieNet, WordPieceTokenizer] | None = None, resume: bool = False
          ) -> dict[str, Any]:
    """Train, evaluate on dev after every epoch, keep the best checkpoint in ``output_dir/best``."""
    cfg.check_paths()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train_config.json").write_text(cfg.model_dump_json(indent=2))
    net, tokenizer = net_and_tokenizer or build_pretrained(cfg.model, schema)
    if cfg.init_from:
        init_weights(net, cfg.init_from)
    dev_sets = {Path(p).stem: load_docs([p], cfg.max_dev_docs) for p in cfg.dev}
    groups: list[tuple[list[TrainExample], float]] = []
    for corpus in cfg.corpora:
        docs = load_docs([corpus.path], cfg.max_train_docs)
        groups.append(([make_example(d, tokenizer, cfg.model, schema) for d in docs], corpus.weight))
    all_examples = [e for exs, _ in groups for e in exs]
    lost = sum(e.lost_relations for e in all_examples)
    log.info("training examples=%d windows=%d pieces=%d relations_out_of_reach=%d", len(all_examples),
             sum(e.num_windows for e in all_examples), sum(e.num_tokens for e in all_examples), lost)
    rng = random.Random(cfg.seed)
    examples = epoch_sample(groups, random.Random(0))
    steps_per_epoch = cfg.steps_per_epoch or len(
        make_batches(examples, cfg.batch_tokens, cfg.model.max_segment_tokens, random.Random(0)))
    total_steps = steps_per_epoch * cfg.epochs
    enc_params = [p for n, p in net.named_parameters() if p.requires_grad and n.startswith("encoder.")]
    head_params = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": cfg.lr_encoder}, {"params": head_params, "lr": cfg.lr_head}],
                            weight_decay=cfg.weight_decay)
    warmup = max(1, int(cfg.warmup_ratio * total_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    )
    best: dict[str, Any] = {"objective": -1.0}
    history: list[dict[str, Any]] = []
    bad_epochs = 0
    started = time.perf_counter()
    first_epoch = 1
    if resume and (out_dir / "last" / "trainer.pt").exists():
        first_epoch, best, history, bad_epochs = _resume(net, opt, sched, rng, out_dir)
    for epoch in range(first_epoch, cfg.epochs + 1):
        net.train()
        batches = make_batches(epoch_sample(groups, rng), cfg.batch_tokens, cfg.model.max_segment_tokens, rng)
        if cfg.steps_per_epoch:
            batches = fit_steps(batches, cfg.steps_per_epoch)
        bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", dynamic_ncols=True)
        running = 0.0
        for step, batch in enumerate(bar, 1):
            loss, parts = batch_loss(net, batch, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / step:.3f}", **{k: f"{v:.3f}" for k, v in parts.items()})
        epoch_seconds = time.perf_counter() - started
        dev = evaluate_sets(net, tokenizer, dev_sets)
        entry = {"epoch": epoch, "train_loss": round(running / max(1, len(batches)), 4),
                 "seconds": round(epoch_seconds, 1), **{k: v for k, v in dev.items() if k != "report"}}
        history.append(entry)
        with open(out_dir / "history.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")
        tqdm.write(json.dumps(entry))
        if dev["objective"] > best["objective"]:
            best = {**entry, "report": dev["report"]}
            bad_epochs = 0
            save_model(net, tokenizer, out_dir / "best", metrics={"dev": best, "history": history})
        else:
            bad_epochs += 1
        # checkpoint every epoch so an interrupted run resumes (``resume=True``) where it stopped
        save_model(net, tokenizer, out_dir / "last", metrics={"history": history})
        torch.save({"epoch": epoch, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "best": {k: v for k, v in best.items() if k != "report"}, "history": history,
                    "bad_epochs": bad_epochs, "rng": rng.getstate()}, out_dir / "last" / "trainer.pt")
        if bad_epochs >= cfg.patience:
            tqdm.write(f"early stop: no dev improvement in {bad_epochs} epochs")
            break
    return {"best": {k: v for k, v in best.items() if k != "report"}, "history": history,
            "seconds": round(time.perf_counter() - started, 1)}
