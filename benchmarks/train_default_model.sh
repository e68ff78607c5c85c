#!/usr/bin/env bash
# Recipe of the bundled default model (nuwa_inf/assets/default): procedural scrolls →
# small tokenizer → small transformer, all with the project's own commands. Resumable:
# rerun the same command after an interruption and every stage continues where it stopped.
#   RUN=/work/runs bash benchmarks/train_default_model.sh
set -euo pipefail
RUN=${RUN:-$HOME/nuwa-runs}
BIN=${BIN:-.venv/bin}
TOK_STEPS=${TOK_STEPS:-1500}
MODEL_STEPS=${MODEL_STEPS:-1800}
mkdir -p "$RUN"
# shared or busy machines: OpenMP spin-waiting makes 2 threads 10x slower than 1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# 1. data: 48 training + 4 validation scrolls, 4096×2048 (seeds disjoint)
[ -f "$RUN/data/train/.done" ] || {
  $BIN/nuwa-inf data procedural --out "$RUN/data/train" --count 48 --width 4096 --height 2048 --seed 1000
  touch "$RUN/data/train/.done"; }
[ -f "$RUN/data/val/.done" ] || {
  $BIN/nuwa-inf data procedural --out "$RUN/data/val" --count 4 --width 4096 --height 2048 --seed 90000
  touch "$RUN/data/val/.done"; }

resume() { [ -f "$1/checkpoints/latest.json" ] && echo --resume || true; }

# 2. tokenizer (the small preset: shortcuts around resampling, channel_shuffle 0.5)
$BIN/nuwa-inf train tokenizer --data "$RUN/data/train" --out "$RUN/tokenizer" --config small \
  --set lr=4e-4 --steps "$TOK_STEPS" --save-every 50 --seed 0 $(resume "$RUN/tokenizer")

# 3. transformer (pre-tokenises the data once, then trains; canvas RoPE and band embeddings
#    from the small preset), keeping the weights with the best validation bits/token
$BIN/nuwa-inf train model --data "$RUN/data/train" --val-data "$RUN/data/val" --tokenizer "$RUN/tokenizer" \
  --out "$RUN/model" --config small --steps "$MODEL_STEPS" --save-every 25 --val-every 100 --keep-best \
  --no-flips $(resume "$RUN/model")

# 4. export fp16 weights into the package
$BIN/python -m nuwa_inf.assets.export "$RUN/model" nuwa_inf/assets/default
