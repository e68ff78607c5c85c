#!/usr/bin/env bash
# Recipe of the bundled default model (nuwa_inf/assets/default): procedural scrolls →
# small tokenizer → small transformer, all with the project's own commands. Resumable:
# rerun the same command after an interruption and every stage continues where it stopped.
#   RUN=/work/runs bash benchmarks/train_default_model.sh
set -euo pipefail
RUN=${RUN:-$HOME/nuwa-runs}
BIN=${BIN:-.venv/bin}
TOK_STEPS=${TOK_STEPS:-1000}
MODEL_STEPS=${MODEL_STEPS:-1600}
BAND_STEPS=${BAND_STEPS:-2150}
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

# 2. tokenizer
$BIN/nuwa-inf train tokenizer --data "$RUN/data/train" --out "$RUN/tokenizer" --config small \
  --set lr=4e-4 --steps "$TOK_STEPS" --save-every 50 $(resume "$RUN/tokenizer")

# 3. transformer (pre-tokenises the data once, then trains), first without band embeddings
#    (the bundled weights were trained in these two stages; a fresh run could keep row_bins=16 throughout)
$BIN/nuwa-inf train model --data "$RUN/data/train" --val-data "$RUN/data/val" --tokenizer "$RUN/tokenizer" \
  --out "$RUN/model" --config small --set row_bins=0 --steps "$MODEL_STEPS" --save-every 25 --val-every 50 \
  --no-flips $(resume "$RUN/model")

# 4. then with them (zero-initialised: the start is stage 3's model), keeping the best validation
mkdir -p "$RUN/model_band"
for cache in token_cache token_cache_val; do  # the same tokens: skip pre-tokenising again
  [ -e "$RUN/model_band/$cache" ] || cp -r "$RUN/model/$cache" "$RUN/model_band/$cache"; done
$BIN/nuwa-inf train model --data "$RUN/data/train" --val-data "$RUN/data/val" --tokenizer "$RUN/tokenizer" \
  --out "$RUN/model_band" --init "$RUN/model" --set row_bins=16 --set lr=3e-4 --seed 1 --steps "$BAND_STEPS" \
  --time-budget 75m --save-every 50 --val-every 100 --keep-best --no-flips $(resume "$RUN/model_band")

# 5. export fp16 weights into the package
$BIN/python -m nuwa_inf.assets.export "$RUN/model_band" nuwa_inf/assets/default
