"""Model-only cost vs note length, and where the time goes per note (in-process backend; measures only).

    # latency of synthetic notes of 1, 2, 4, 8, 16 windows, with a least-squares line
    .venv/bin/python -m benchmarks.model_scaling length --model model_repo/clinie_ie/4 \
        --input ../shared/data/notes/aci_bench_notes.jsonl --windows 1 2 4 8 16 --repeats 5 \
        --json benchmarks/results/model_length.json
    # per-stage time of annotating the notes one at a time with the normalisation stages (timers + cProfile)
    .venv/bin/python -m benchmarks.model_scaling profile --model model_repo/clinie_ie/4 \
        --input ../shared/data/notes/aci_bench_notes.jsonl --limit 0 --json benchmarks/results/model_profile.json

Synthetic notes: the ACI-Bench notes joined with blank lines, cut at a whitespace to the longest prefix that the
model's own segmentation (``clinie.model.encode.preprocess``) turns into exactly N windows.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import clinie.model.runtime as runtime
import clinie.pipeline as pipeline
from benchmarks.model_speed import machine
from benchmarks.variants import VARIANTS, apply_variant
from clinie.backends.torch_backend import TorchBackend
from clinie.document import Document
from clinie.io import read_documents
from clinie.model.encode import preprocess
from clinie.pipeline import Annotator


def synthetic_note(text: str, windows: int, backend: TorchBackend) -> Document:
    """The longest whitespace-cut prefix of ``text`` that segments into exactly ``windows`` windows."""
    config = backend.net.config

    def count(end: int) -> int:
        doc = Document(id="x", text=text[:end])
        return int(preprocess(doc, backend.tokenizer, config).encoded.input_ids.shape[0])

    lo, hi = 1, len(text)
    if count(hi) <= windows:
        raise ValueError(f"not enough text for {windows} windows")
    while lo < hi - 1:  # invariant: count(lo) <= windows < count(hi)
        mid = (lo + hi) // 2
        if count(mid) <= windows:
            lo = mid
        else:
            hi = mid
    cut = text.rfind(" ", 0, lo) if not text[lo - 1].isspace() else lo
    doc = Document(id=f"synthetic-{windows}w", text=text[: cut if cut > 0 else lo].rstrip())
    got = count(len(doc.text))
    if got != windows:
        raise ValueError(f"cut gave {got} windows, wanted {windows}")
    return doc


def length(args: argparse.Namespace, backend: TorchBackend) -> dict[str, Any]:
    text = "\n\n".join(d.text for d in read_documents(args.input))
    annotator = Annotator(backend, backend.tokenizer, backend.net.config, batch_windows=10_000)
    annotator.annotate([Document(id="w", text=text[:2000])])  # warm-up
    rows = []
    print("| windows | pieces | chars | median s | min s | s per window |")
    print("| --- | --- | --- | --- | --- | --- |")
    for w in args.windows:
        doc = synthetic_note(text, w, backend)
        pieces = preprocess(doc, backend.tokenizer, backend.net.config).encoded.num_tokens
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            annotator.annotate([doc])
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        rows.append({"windows": w, "pieces": pieces, "chars": len(doc.text), "median_s": round(med, 4),
                     "min_s": round(min(times), 4), "s_per_window": round(med / w, 4),
                     "runs_s": [round(t, 4) for t in times]})
        print(f"| {w} | {pieces} | {len(doc.text)} | {med:.3f} | {min(times):.3f} | {med / w:.3f} |")
    x = np.array([r["windows"] for r in rows], float)
    y = np.array([r["median_s"] for r in rows], float)
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    r2 = 1 - float(((y - pred) ** 2).sum()) / float(((y - y.mean()) ** 2).sum())
    # a power law y = c * x^k: k = 1 is linear, k > 1 superlinear
    k = float(np.polyfit(np.log(x), np.log(y), 1)[0])
    fit = {"slope_s_per_window": round(float(slope), 4), "intercept_s": round(float(intercept), 4),
           "r2": round(r2, 4), "loglog_exponent": round(k, 3),
           "max_rel_residual": round(float(np.max(np.abs(y - pred) / y)), 3)}
    print(f"\nleast squares: latency = {intercept:.4f} s + {slope:.4f} s x windows, R^2 = {r2:.4f}; "
          f"log-log exponent {k:.3f}")
    return {"rows": rows, "fit": fit, "repeats": args.repeats}


class _Timers:
    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.total[name] += time.perf_counter() - t0
                self.calls[name] += 1
        return timed

    def hook(self, name: str, module: torch.nn.Module) -> None:
        start: list[float] = []

        def pre(*_: Any) -> None:
            start.append(time.perf_counter())

        def post(*_: Any) -> None:
            self.total[name] += time.perf_counter() - start.pop()
            self.calls[name] += 1

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


def profile(args: argparse.Namespace, backend: TorchBackend) -> dict[str, Any]:
    from clinie.normalize import default_stages

    docs = [d.without_annotations() for d in read_documents(args.input)]
    docs = docs[: args.limit] if args.limit else docs
    stages = default_stages()
    net = backend.net
    Annotator(backend, backend.tokenizer, net.config, stages=stages).annotate(docs[:2])  # warm-up, lazy loads
    timers = _Timers()
    # the order of the table; "infer" is the whole backend call, the rows under it are parts of it
    pipeline.preprocess = timers.wrap("tokenise + segment (preprocess)", pipeline.preprocess)  # type: ignore[assignment]
    pipeline.postprocess = timers.wrap("postprocess (snap to words, thresholds, Document)",  # type: ignore[assignment]
                                       pipeline.postprocess)
    backend.infer = timers.wrap("infer", backend.infer)  # type: ignore[method-assign]
    timers.hook("encoder (MiniLM, 6 layers)", net.encoder)
    timers.hook("BiLSTM", net.lstm)
    timers.hook("NER + negation heads", net.ner_head)
    timers.hook("NER + negation heads", net.negation_head)
    timers.hook("forward total", net)
    net.score_pairs = timers.wrap("relation head (score_pairs)", net.score_pairs)  # type: ignore[method-assign]
    runtime.decode_entities = timers.wrap("decode (BIO spans, negation, pairs)", runtime.decode_entities)
    runtime.span_negation = timers.wrap("decode (BIO spans, negation, pairs)", runtime.span_negation)
    runtime.candidate_pairs = timers.wrap("decode (BIO spans, negation, pairs)", runtime.candidate_pairs)
    wrapped = [timers.wrap(f"stage: {type(s).__name__}", s) for s in stages]
    annotator = Annotator(backend, backend.tokenizer, net.config, batch_windows=1, stages=wrapped)
    prof = cProfile.Profile() if args.cprofile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    n = sum(1 for _ in annotator.pipe(docs))
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    t = timers.total
    # forward total includes encoder + BiLSTM + heads; the remainder of it is masking, pad/pack and the note split
    forward_rest = t["forward total"] - t["encoder (MiniLM, 6 layers)"] - t["BiLSTM"] - t["NER + negation heads"]
    infer_rest = (t["infer"] - t["forward total"] - t["relation head (score_pairs)"]
                  - t["decode (BIO spans, negation, pairs)"])
    rows: list[tuple[str, float]] = [
        ("tokenise + segment (preprocess)", t["tokenise + segment (preprocess)"]),
        ("encoder (MiniLM, 6 layers)", t["encoder (MiniLM, 6 layers)"]),
        ("BiLSTM", t["BiLSTM"]),
        ("NER + negation heads", t["NER + negation heads"]),
        ("forward: masks, pad/pack, note split", forward_rest),
        ("decode (BIO spans, negation, pairs)", t["decode (BIO spans, negation, pairs)"]),
        ("relation head (score_pairs)", t["relation head (score_pairs)"]),
        ("infer: batching, tensors, numpy copies", infer_rest),
        ("postprocess (snap to words, thresholds, Document)", t["postprocess (snap to words, thresholds, Document)"]),
    ]
    rows += [(k, v) for k, v in t.items() if k.startswith("stage: ")]
    rows.append(("other (iteration, generator, timers)", wall - sum(v for _, v in rows)))
    print(f"{n} notes, {wall:.1f} s wall{' (under cProfile)' if prof else ''}\n")
    print("| part | seconds | ms per note | share |")
    print("| --- | --- | --- | --- |")
    out_rows = []
    for name, secs in rows:
        out_rows.append({"part": name, "seconds": round(secs, 3), "ms_per_note": round(1000 * secs / n, 2),
                         "share": round(secs / wall, 4)})
        print(f"| {name} | {secs:.2f} | {1000 * secs / n:.1f} | {100 * secs / wall:.1f}% |")
    result: dict[str, Any] = {"notes": n, "wall_s": round(wall, 2), "rows": out_rows, "cprofile": bool(prof)}
    if prof:
        stats = pstats.Stats(prof)
        top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[: args.top]  # type: ignore[attr-defined]
        result["cprofile_top_tottime"] = [
            {"function": f"{Path(f).name}:{line}({fn})", "calls": nc, "tottime_s": round(tt, 3),
             "cumtime_s": round(ct, 3)} for (f, line, fn), (_, nc, tt, ct, _) in top]
        print("\n| function (cProfile, by own time) | calls | own s | cumulative s |")
        print("| --- | --- | --- | --- |")
        for r in result["cprofile_top_tottime"]:
            print(f"| `{r['function']}` | {r['calls']} | {r['tottime_s']:.2f} | {r['cumtime_s']:.2f} |")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["length", "profile"])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--input", type=Path, required=True, help="JSONL with id and text (the ACI-Bench notes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", choices=VARIANTS, default="fp32")
    ap.add_argument("--windows", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="profile: first N notes (0: all)")
    ap.add_argument("--cprofile", action="store_true", help="profile: also run under cProfile (adds overhead)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    backend = TorchBackend.from_dir(args.model)
    apply_variant(backend.net, args.variant, threads=args.threads)
    info = machine(args.threads)
    print(f"model {args.model} ({args.variant}); {info}\n")
    result = length(args, backend) if args.what == "length" else profile(args, backend)
    result = {"model": str(args.model), "variant": args.variant, "input": str(args.input), "machine": info,
              **result, "loadavg_after": list(__import__("os").getloadavg())}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
