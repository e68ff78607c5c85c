#!/usr/bin/env bash
# One GPU call that trains the bundled transformer further: the model is what limits continuation
# and text (README, "Continuation against the truth"), and 9 hours of a 2-core CPU are what it
# has had. On a GPU machine (16 cores, one H100: PyTorch there, nothing to install) this
#   1. renders SCROLLS captioned procedural scrolls of 3072x2048 (seeds from SEED, none of them
#      the benchmarks' held-out seeds) and VAL of them for validation, on every CPU core;
#   2. fine-tunes the bundled transformer, everything trainable (memory and text too), with the
#      recipe's drops (a quarter of the crops without context, the style memory dropped for 10 %,
#      the captions for half), for at most MINUTES, keeping the weights that validate best;
#   3. writes the model in the package's layout (fp16) under $OUT/bundle (tokenizer/ unchanged,
#      transformer/ new: copy that one into nuwa_inf/assets/default; video/ is not touched), with
#      the training log.
# The model keeps its size (the main job's 10 minutes on 2 CPU cores bound it), so the result
# drops into nuwa_inf/assets/default as it is; judge it here with bench_continuation.py and
# bench_text.py before it replaces the bundled one.
#
#   device run (timeout_s 600): bash benchmarks/train_on_device.sh   (env: MINUTES SCROLLS VAL STEPS BATCH LR SEED SMALL)
#   rendering takes ≈ 2 s a scroll on one core (512 on 16 cores ≈ 1 min); MINUTES counts it in
#   CPU smoke:   DEVICE=cpu SCROLLS=2 VAL=1 STEPS=2 BATCH=2 WIDTH=1024 HEIGHT=768 OUT=/tmp/o \
#                PY=.venv/bin/python bash benchmarks/train_on_device.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-8}; SCROLLS=${SCROLLS:-512}; VAL=${VAL:-8}; STEPS=${STEPS:-4000}; BATCH=${BATCH:-32}
LR=${LR:-2e-4}; SEED=${SEED:-40000}; SMALL=${SMALL:-0}; WIDTH=${WIDTH:-3072}; HEIGHT=${HEIGHT:-2048}; DEVICE=${DEVICE:-cuda}
OUT=${OUT:?set OUT: the folder whose files come back}
WORK=${WORK:-/tmp/nuwa_device}
PY=${PY:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$WORK/train" "$WORK/val" "$OUT"
started=$(date +%s)

# 1. data: one renderer per core, each its own seed range (item i of seed S is seed-derived)
cores=$(nproc); per=$(( (SCROLLS + cores - 1) / cores )); pids=()
for ((i = 0; i < cores && i * per < SCROLLS; i++)); do
  count=$(( SCROLLS - i * per < per ? SCROLLS - i * per : per ))
  OMP_NUM_THREADS=1 $PY -m nuwa_inf data procedural --out "$WORK/train/part$i" --count "$count" \
    --width "$WIDTH" --height "$HEIGHT" --seed $(( SEED + 1000 * i )) > "$WORK/render$i.log" 2>&1 & pids+=($!)
done
OMP_NUM_THREADS=1 $PY -m nuwa_inf data procedural --out "$WORK/val" --count "$VAL" --width "$WIDTH" \
  --height "$HEIGHT" --seed $(( SEED + 900000 )) > "$WORK/render_val.log" 2>&1 & pids+=($!)
# SMALL > 0: that many quarter-scale scenes (2048x512: the whole scene in two patch rows, the size
# text-to-image is benchmarked at) beside them, crops of 2x4 patches and the scale embedding, so
# that one model learns both scales apart (README, "Training at the scale it draws")
scale_sets=()
if (( SMALL > 0 )); then
  OMP_NUM_THREADS=1 $PY -m nuwa_inf data procedural --out "$WORK/train/small" --count "$SMALL" --width 2048 \
    --height 512 --seed $(( SEED + 600000 )) > "$WORK/render_small.log" 2>&1 & pids+=($!)
  OMP_NUM_THREADS=1 $PY -m nuwa_inf data procedural --out "$WORK/val/small" --count "$VAL" --width 2048 \
    --height 512 --seed $(( SEED + 700000 )) > "$WORK/render_small_val.log" 2>&1 & pids+=($!)
  scale_sets=(--set scale_bins=4 --set crop_rows=2 --set crop_cols=4)
fi
for pid in "${pids[@]}"; do wait "$pid" || { tail -n 3 "$WORK"/render*.log; exit 1; }; done
echo "rendered $SCROLLS + $VAL scrolls and $SMALL quarter-scale scenes in $(( $(date +%s) - started )) s"

# 2. training, within what is left of MINUTES (pre-tokenising on the GPU counts in it)
left=$(( MINUTES * 60 - ($(date +%s) - started) ))
$PY -m nuwa_inf train model --data "$WORK/train" --val-data "$WORK/val" --out "$WORK/model" --init default \
  --device "$DEVICE" --steps "$STEPS" --batch-size "$BATCH" --time-budget "${left}s" --save-every 250 \
  --val-every 250 --keep-best --set freeze=none --set context_drop=0.25 --set memory_drop=0.1 \
  --set text_drop=0.5 --set lr="$LR" "${scale_sets[@]}" 2>&1 | tr '\r' '\n' | grep -v -e "it/s" -e "s/it" | tee "$OUT/train.log"

# 3. the package's layout, fp16: $OUT/bundle/{tokenizer,transformer}/…
$PY -m nuwa_inf.assets.export "$WORK/model" "$OUT/bundle"
cp "$WORK/model/log.jsonl" "$OUT/log.jsonl"
echo "done in $(( $(date +%s) - started )) s"
