#!/usr/bin/env bash
# Reproduce the accuracy tables of docs/model.md: the default model (or MODEL=dir) on ACI-Bench notes, PHEE dev, MACCROBAT.
#   bash benchmarks/model_eval.sh            # writes runs/eval/*.pred.jsonl, *.json and prints markdown tables
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CLINIE_SHARED_DATA:-../shared/data}/corpus
OUT=${OUT:-runs/eval}
MODEL_ARG=()
[ -n "${MODEL:-}" ] && MODEL_ARG=(--model "$MODEL")
mkdir -p "$OUT"
for set in aci-notes-test aci-notes-dev phee-dev maccrobat-test maccrobat-dev; do
  /usr/bin/time -f "$set predict: %e s wall, %M KB max RSS" \
    .venv/bin/clinie predict "${MODEL_ARG[@]}" "$DATA/$set.jsonl" "$OUT/$set.pred.jsonl"
  .venv/bin/clinie evaluate "$DATA/$set.jsonl" "$OUT/$set.pred.jsonl" --json "$OUT/$set.json"
done
