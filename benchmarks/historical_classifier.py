"""Experiment (issue 8): does a small trained classifier add to the rules for the ``historical`` flag?

    nice -n 19 python benchmarks/historical_classifier.py corpora/aci-notes-train/aci-notes-train.jsonl \
        ../shared/data/corpus/aci-notes-dev.jsonl [--embed] [--c 0.1]

Trained on the silver ``aci-notes-train`` flags only. Held-out estimate: 5-fold cross-validation grouped by note
(note i is in fold i % 5), then a model on all of train scored on dev. Two feature sets:

- ``features``: the rules' own flags, the tense of the nearest verb-like word on each side of the mention in its
  clause, counts of past / present verb forms, time expressions, resolution and current-state words in the
  sentence, the sentence before and the line, the section heading, and the entity label;
- ``--embed``: the packaged MiniLM sentence embedding (``clinie.normalize.dense.Encoder``) of the sentence before
  plus the mention's sentence with the mention in brackets (a linear probe).

A class-weighted L2 logistic regression (numpy, Newton steps) gives a probability; the flag is the rules' flag OR
probability >= threshold. Prints P/R/F1 (tp, fp, fn) per threshold for cross-validation and dev. Not shipped:
see docs/normalization.md (neither variant beat the rules alone on the silver cross-validation).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from clinie.document import Document, Entity
from clinie.io import read_documents
from clinie.normalize.context import Rule, _scopes, _sections, assert_mention, load_rules
from clinie.schema import NEGATABLE_LABELS

WORD = re.compile(r"[A-Za-z][A-Za-z'/-]*|\d+")
PAST = frozenset(("had", "was", "were", "did", "felt", "went", "broke", "saw", "got", "took", "began", "came",
    "fell", "hit", "hurt", "underwent", "developed", "experienced", "told", "gave", "found", "made", "lost",
    "thought", "became", "tore"))
PRESENT = frozenset(("is", "are", "has", "have", "does", "do", "feels", "reports", "complains", "presents",
    "notes", "endorses", "continues", "states", "describes", "says", "gets", "takes", "uses"))
NOT_VERB = frozenset(("elevated", "increased", "decreased", "related", "associated", "limited", "used", "advanced",
    "controlled", "uncontrolled", "noted", "tired", "swollen"))
CUES = {
    "year": r"\b(19|20)\d\d\b", "date": r"\b\d{1,2}/\d{2,4}\b", "ago": r"\bago\b",
    "last_unit": r"\blast (week|month|year|spring|summer|fall|winter|night)\b",
    "month": r"\b(in|since|during) (january|february|march|april|may|june|july|august|september|october|november|"
             r"december)\b",
    "initially": r"\binitially\b", "at_time": r"\bat (that|the) time\b",
    "when": r"\bwhen (he|she|they) (was|were|had)\b",
    "since": r"\bsince\b", "before": r"\bbefore\b", "prior": r"\bprior\b", "past": r"\bpast\b",
    "previous": r"\bprevious(ly)?\b", "history_of": r"\bhistory of\b", "episode": r"\bepisodes?\b",
    "hospital": r"\b(emergency (room|department)|er|ed|hospital\w*|admitted|urgent care)\b",
    "resolved": r"\b(resolved|resolution|passed|went away|gone|healed|recovered|cleared|subsided|no longer)\b",
    "not_recurred": r"\b(not recurred|no (further|additional|more) (episodes?|issues)|not had any|since then)\b",
    "removed": r"\b(removed|repaired|repair|excised)\b",
    "current": r"\b(currently|current|today|this morning|now|still|continues?|ongoing|persistent|persists)\b",
    "course": r"\b(worse(ning)?|improv(ed|ing)|better)\b", "chronic": r"\b(chronic|long history)\b",
    "presents": r"\b(presents?|complains?|here for|follow[- ]up)\b",
}
SECTIONS = {"hpi": r"PRESENT ILLNESS|HPI|SUBJECTIVE", "pmh": r"MEDICAL HISTORY|PAST HISTORY|SURGICAL|PMH",
            "ros": r"REVIEW OF", "exam": r"EXAM|VITALS", "results": r"RESULTS",
            "plan": r"ASSESSMENT|PLAN|IMPRESSION", "cc": r"CHIEF COMPLAINT", "instructions": r"INSTRUCTIONS"}


def _tenses(words: list[str]) -> list[str]:
    out = []
    for w in (x.lower() for x in words):
        if w in PAST or (w.endswith("ed") and len(w) > 4 and w not in NOT_VERB):
            out.append("past")
        elif w in PRESENT:
            out.append("present")
    return out


def features(doc: Document, e: Entity, scopes: list[tuple[int, int]], sections: list[tuple[int, str]],
             rules: tuple[Rule, ...]) -> dict[str, float]:
    text = doc.text
    k = next((i for i, (a, b) in enumerate(scopes) if a <= e.start < b), 0)
    s0, s1 = scopes[k]
    prev = text[scopes[k - 1][0]:scopes[k - 1][1]].lower() if k > 0 else ""
    a = assert_mention(text, e.start, e.end, rules=rules, scopes=scopes, sections=sections)
    f = {"rule_historical": float(a.historical), "rule_negated": float(a.negated),
         "rule_uncertain": float(a.uncertain), "rule_hypothetical": float(a.hypothetical), f"label_{e.label}": 1.0}
    left, right = _tenses(WORD.findall(text[s0:e.start])), _tenses(WORD.findall(text[e.end:s1]))
    if left:
        f[f"left_verb_{left[-1]}"] = 1.0
    if right:
        f[f"right_verb_{right[0]}"] = 1.0
    f["n_past"] = min(3, (left + right).count("past")) / 3
    f["n_present"] = min(3, (left + right).count("present")) / 3
    ls = text.rfind("\n", 0, e.start) + 1
    le = text.find("\n", e.end)
    line = text[ls:le if le >= 0 else len(text)].lower()
    sentence = text[s0:s1].lower()
    for name, rx in CUES.items():
        for where, chunk in (("s", sentence), ("p", prev), ("l", line)):
            if re.search(rx, chunk):
                f[f"{where}_{name}"] = 1.0
    section = next((name for pos, name in reversed(sections) if pos <= e.start), "")
    for name, rx in SECTIONS.items():
        if re.search(rx, section):
            f[f"section_{name}"] = 1.0
    return f


def context_window(doc: Document, e: Entity, scopes: list[tuple[int, int]]) -> str:
    k = next((i for i, (a, b) in enumerate(scopes) if a <= e.start < b), 0)
    a = scopes[k - 1][0] if k > 0 else scopes[k][0]
    t = doc.text
    return f"{t[a:e.start]}[{t[e.start:e.end]}]{t[e.end:scopes[k][1]]}".replace("\n", " ").strip()


def dataset(path: Path) -> tuple[list[dict[str, float]], list[str], np.ndarray, np.ndarray, np.ndarray]:
    rules = load_rules()
    feats, windows, y, groups, rule = [], [], [], [], []
    for i, doc in enumerate(read_documents(path)):
        scopes, sections = _scopes(doc.text), _sections(doc.text)
        for e in doc.entities:
            if e.label in NEGATABLE_LABELS:
                f = features(doc, e, scopes, sections, rules)
                feats.append(f)
                windows.append(context_window(doc, e, scopes))
                y.append(int(e.historical))
                groups.append(i)
                rule.append(int(f["rule_historical"]))
    return feats, windows, np.array(y), np.array(groups), np.array(rule)


def fit(x: np.ndarray, y: np.ndarray, c: float, steps: int = 25) -> np.ndarray:
    """Class-balanced L2 logistic regression by Newton steps; returns weights (last = bias)."""
    x = np.hstack([x, np.ones((len(x), 1))])
    sw = np.where(y == 1, len(y) / (2 * max(1, y.sum())), len(y) / (2 * max(1, (1 - y).sum())))
    w = np.zeros(x.shape[1])
    reg = np.full(x.shape[1], 1.0 / c)
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        g = x.T @ (sw * (p - y)) + reg * w
        h = (x * (sw * p * (1 - p))[:, None]).T @ x + np.diag(reg + 1e-6)
        w -= np.linalg.solve(h, g)
    return w


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-(x @ w[:-1] + w[-1]))))


def prf(y: np.ndarray, p: np.ndarray) -> str:
    tp, fp, fn = int((y & p).sum()), int(((1 - y) & p).sum()), int((y & (1 - p)).sum())
    pr = tp / (tp + fp) if tp + fp else 0.0
    rc = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
    return f"P {pr:.3f} R {rc:.3f} F1 {f1:.3f} ({tp}/{fp}/{fn})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train", type=Path)
    ap.add_argument("dev", type=Path)
    ap.add_argument("--embed", action="store_true", help="linear probe on MiniLM embeddings instead of features")
    ap.add_argument("--c", type=float, default=0.1)
    args = ap.parse_args()
    ft, wt, yt, gt, rt = dataset(args.train)
    fd, wd, yd, _, rd = dataset(args.dev)
    if args.embed:
        from clinie.normalize.dense import Encoder

        enc = Encoder(threads=2)
        xt, xd = np.asarray(enc.encode(wt, batch_size=64)), np.asarray(enc.encode(wd, batch_size=64))
    else:
        names = sorted({k for f in ft for k in f})
        col = {k: i for i, k in enumerate(names)}

        def mat(fs: list[dict[str, float]]) -> np.ndarray:
            m = np.zeros((len(fs), len(names)))
            for r, f in enumerate(fs):
                for k, v in f.items():
                    if k in col:
                        m[r, col[k]] = v
            return m

        xt, xd = mat(ft), mat(fd)
    oof = np.zeros(len(yt))
    for k in range(5):
        held = gt % 5 == k
        oof[held] = predict(fit(xt[~held], yt[~held], args.c), xt[held])
    pd_ = predict(fit(xt, yt, args.c), xd)
    print(f"rules alone: train {prf(yt, rt)} | dev {prf(yd, rd)}")
    for th in (0.8, 0.9, 0.95, 0.97):
        print(f"threshold {th}: cv model {prf(yt, (oof >= th).astype(int))} | cv rules OR model "
              f"{prf(yt, ((oof >= th) | (rt > 0)).astype(int))} | dev rules OR model "
              f"{prf(yd, ((pd_ >= th) | (rd > 0)).astype(int))}")


if __name__ == "__main__":
    main()
