from __future__ import annotations

from pathlib import Path

from clinie.model.experiment import ExperimentConfig, Variant, results_markdown
from clinie.model.train import Batch, CorpusSpec, fit_steps

BASE = """
train = ["x.jsonl"]
dev = ["d.jsonl"]
epochs = 9
batch_tokens = 512
"""


def test_every_variant_gets_the_same_budget(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(BASE)
    cfg = ExperimentConfig(base=str(tmp_path / "base.toml"), output_dir=str(tmp_path / "exp"), epochs=2,
                           steps_per_epoch=7, eval=["e.jsonl"],
                           variants=[Variant(name="a", train=[CorpusSpec(path="a.jsonl")]),
                                     Variant(name="b", train=[CorpusSpec(path="a.jsonl"),
                                                              CorpusSpec(path="b.jsonl", weight=3)])])
    a, b = (cfg.train_config(v, 5) for v in cfg.variants)
    assert (a.epochs, a.steps_per_epoch, a.seed, a.batch_tokens) == (b.epochs, b.steps_per_epoch, b.seed, 512) == (
        2, 7, 5, 512)
    assert [c.path for c in b.corpora] == ["a.jsonl", "b.jsonl"] and a.output_dir.endswith("a/seed5")


def test_fit_steps_cuts_or_cycles() -> None:
    batches = [Batch([]), Batch([]), Batch([])]
    assert fit_steps(batches, 2) == batches[:2]
    assert fit_steps(batches, 7) == batches * 2 + batches[:1]


def _report(f1: float) -> dict[str, object]:
    counts = {"precision": f1, "recall": f1, "f1": f1, "tp": 1, "fp": 0, "fn": 0}
    block = {"micro": counts, "by_label": {"Drug": counts}}
    return {"strict_entities": block, "lenient_entities": block, "strict_relations": {"micro": counts,
            "by_label": {}}, "lenient_relations": {"micro": counts, "by_label": {}}}


def test_results_table_has_a_row_per_variant_and_mean_sd_over_seeds() -> None:
    results = [{"variant": "real", "seed": s, "eval": {"aci-notes-test": _report(f)}}
               for s, f in ((1, 0.5), (2, 0.7))]
    results.append({"variant": "real+synthetic", "seed": 1, "eval": {"aci-notes-test": _report(0.8)}})
    md = results_markdown(results)
    assert "#### aci-notes-test" in md
    assert "| real | 0.600 ± 0.141 |" in md
    assert "| real+synthetic | 0.800 |" in md
