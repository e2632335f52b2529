#!/usr/bin/env bash
# The README's GPU benchmarks: a randomly initialised model with Llama 3.1 8B's shape (no weights can
# be fetched on this project's machines), then bench score and bench train in bf16 and in 4-bit NF4
# (QLoRA). Each step's JSON goes to OUTDIR; a failed step is reported and the next one still runs.
#
#   bash scripts/gpu_bench.sh OUTDIR [TOKENIZER]      # TOKENIZER: a source or a directory (default: embedded SmolLM2)
#
# Run from the repository root. Env: GAPSCOPE (the command; default .venv/bin/gapscope, else
# `python3 -m gapscope`), MODEL_DIR (default /dev/shm/gapscope-llama8b: 16 GB of bf16 weights, written
# once), PRESET (default llama-3.1-8b), STEP_TIMEOUT (seconds, default 240),
# STEPS (default "score_bf16 train_bf16 train_4bit score_4bit"), SCORE_N (default 128), TRAIN_N (default 256).
set -uo pipefail
OUTDIR=${1:?usage: gpu_bench.sh OUTDIR [TOKENIZER]}
TOKENIZER=${2:-embedded:smollm2-135m}
if [ -x .venv/bin/gapscope ]; then G=${GAPSCOPE:-.venv/bin/gapscope}; else G=${GAPSCOPE:-python3 -m gapscope}; fi
MODEL_DIR=${MODEL_DIR:-/dev/shm/gapscope-llama8b}
PRESET=${PRESET:-llama-3.1-8b}
T=${STEP_TIMEOUT:-240}
STEPS=${STEPS:-score_bf16 train_bf16 train_4bit score_4bit}
SCORE_N=${SCORE_N:-128}
TRAIN_N=${TRAIN_N:-256}
mkdir -p "$OUTDIR"
failed=0

step() {  # step NAME COMMAND...: JSON to OUTDIR/NAME.json, the log to OUTDIR/NAME.log
  local name=$1; shift
  local t0=$SECONDS
  echo "== $name: $*"
  if timeout "$T" "$@" >"$OUTDIR/$name.json" 2>"$OUTDIR/$name.log"; then
    echo "   done in $((SECONDS - t0)) s"
  else
    echo "   FAILED (exit $?) after $((SECONDS - t0)) s; last lines of $name.log:"
    tail -n 5 "$OUTDIR/$name.log" | sed 's/^/   /'
    failed=$((failed + 1))
  fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if [ ! -f "$MODEL_DIR/config.json" ]; then
  step random_model $G bench random-model --out "$MODEL_DIR" --preset "$PRESET" --tokenizer "$TOKENIZER" --json
fi
for s in $STEPS; do
  case $s in
    score_bf16) step score_bf16 $G bench score --model "$MODEL_DIR" --n "$SCORE_N" --batch-size 16 --json ;;
    score_4bit) step score_4bit $G bench score --model "$MODEL_DIR" --n "$SCORE_N" --batch-size 16 --load-in-4bit --json ;;
    train_bf16) step train_bf16 $G bench train --model "$MODEL_DIR" --n "$TRAIN_N" --json ;;
    train_4bit) step train_4bit $G bench train --model "$MODEL_DIR" --n "$TRAIN_N" --load-in-4bit --json ;;
    *) echo "unknown step $s"; failed=$((failed + 1)) ;;
  esac
done

python3 - "$OUTDIR" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for name in ("score_bf16", "score_4bit", "train_bf16", "train_4bit"):
    try:
        r = json.loads((out / f"{name}.json").read_text())
    except (OSError, ValueError):
        print(f"{name:11s} no result"); continue
    if r["benchmark"] == "score":
        print(f"{name:11s} naive {r['naive_tokens_per_s']:>9.0f} tok/s  gapscope {r['gapscope_tokens_per_s']:>9.0f} tok/s"
              f"  {r['speedup']:.2f}x  {r['fraction_of_peak']:.0%} of {r['matmul_peak_flops']/1e12:.0f} TFLOP/s"
              f"  GPU peak {r['gapscope_gpu_peak_gib']} vs {r['naive_gpu_peak_gib']} GiB  r={r['margin_correlation']}")
    else:
        print(f"{name:11s} plain {r['plain_tokens_per_s']:>9.0f} tok/s  gapscope {r['gapscope_tokens_per_s']:>9.0f} tok/s"
              f"  {r['speedup']:.2f}x  loss {r['gapscope_final_loss']} vs {r['plain_final_loss']}"
              f"  (prefix {r.get('gapscope_prefix_seconds')} s, loop {r.get('gapscope_loop_seconds')} s of {r['gapscope_seconds']} s)"
              f"  GPU peak {r['gapscope_gpu_peak_gib']} vs {r['plain_gpu_peak_gib']} GiB")
PY
exit $failed
