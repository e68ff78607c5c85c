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
MORE_STEPS=${MORE_STEPS:-1400}
WIDER_STEPS=${WIDER_STEPS:-1800}
MIRROR_STEPS=${MIRROR_STEPS:-1200}
DECODER_STEPS=${DECODER_STEPS:-600}
MEMORY_STEPS=${MEMORY_STEPS:-400}
TEXT_STEPS=${TEXT_STEPS:-600}
STYLE_STEPS=${STYLE_STEPS:-1000}
SCALE_STEPS=${SCALE_STEPS:-600}
VIDEO_STEPS=${VIDEO_STEPS:-400}
VIDEO_MORE_STEPS=${VIDEO_MORE_STEPS:-800}
T2I_STEPS=${T2I_STEPS:-1600}
mkdir -p "$RUN"
# shared or busy machines: OpenMP spin-waiting makes 2 threads 10x slower than 1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# render DIR ARGS...: procedural scrolls into $RUN/data/DIR once (a .done marker says it finished)
render() { local dir="$RUN/data/$1"; shift
  [ -f "$dir/.done" ] || { $BIN/nuwa-inf data procedural --out "$dir" "$@"; touch "$dir/.done"; }; }

# 1. data: 48 training + 4 validation scrolls, 4096×2048 (seeds disjoint)
render train --count 48 --width 4096 --height 2048 --seed 1000
render val --count 4 --width 4096 --height 2048 --seed 90000

resume() { [ -f "$1/checkpoints/latest.json" ] && echo --resume || true; }

# 2. tokenizer (the small preset: shortcuts around resampling, channel_shuffle 0.5)
$BIN/nuwa-inf train tokenizer --data "$RUN/data/train" --out "$RUN/tokenizer" --config small \
  --steps "$TOK_STEPS" --save-every 50 --seed 0 $(resume "$RUN/tokenizer")

# 3. transformer (pre-tokenises the data once, then trains; canvas RoPE and band embeddings
#    from the small preset), keeping the weights with the best validation bits/token
$BIN/nuwa-inf train model --data "$RUN/data/train" --val-data "$RUN/data/val" --tokenizer "$RUN/tokenizer" \
  --out "$RUN/model" --config small --steps "$MODEL_STEPS" --save-every 25 --val-every 100 --keep-best \
  --no-flips $(resume "$RUN/model")

# 4. 48 more scrolls (seeds disjoint), the transformer continued on all 96 from stage 3's weights
[ -f "$RUN/data/more/.done" ] || {
  $BIN/nuwa-inf data procedural --out "$RUN/data/more" --count 48 --width 4096 --height 2048 --seed 5000
  touch "$RUN/data/more/.done"; }
mkdir -p "$RUN/data/train96" "$RUN/model96"
for f in "$RUN"/data/train/scroll_* "$RUN"/data/more/scroll_*; do
  ln -sf "$f" "$RUN/data/train96/$(basename "$(dirname "$f")")_$(basename "$f")"; done
# the cache is keyed by each image's resolved path: stage 3's 48 grids are reused
[ -d "$RUN/model96/token_cache" ] || cp -r "$RUN/model/token_cache" "$RUN/model96/token_cache"
$BIN/nuwa-inf train model --data "$RUN/data/train96" --val-data "$RUN/data/val" --tokenizer "$RUN/tokenizer" \
  --out "$RUN/model96" --steps "$MORE_STEPS" --save-every 25 --val-every 100 --keep-best --no-flips \
  $( [ -f "$RUN/model96/checkpoints/latest.json" ] && echo --resume || echo --init "$RUN/model" --set lr=3e-4 )

# 4b. 48 more scrolls again (seeds from 8000; 144 in all), continued from stage 4, still without
#     mirror copies
[ -f "$RUN/data/extra/.done" ] || {
  $BIN/nuwa-inf data procedural --out "$RUN/data/extra" --count 48 --width 4096 --height 2048 --seed 8000
  touch "$RUN/data/extra/.done"; }
mkdir -p "$RUN/data/train144" "$RUN/model144"
for f in "$RUN"/data/train96/* "$RUN"/data/extra/scroll_*; do
  ln -sf "$(readlink -f "$f")" "$RUN/data/train144/$(basename "$(dirname "$f")")_$(basename "$f")"; done
[ -d "$RUN/model144/token_cache" ] || cp -r "$RUN/model96/token_cache" "$RUN/model144/token_cache"
$BIN/nuwa-inf train model --data "$RUN/data/train144" --val-data "$RUN/data/val" --tokenizer "$RUN/tokenizer" \
  --out "$RUN/model144" --steps "$WIDER_STEPS" --save-every 25 --val-every 100 --keep-best --no-flips \
  $( [ -f "$RUN/model144/checkpoints/latest.json" ] && echo --resume || echo --init "$RUN/model96" --set lr=2.5e-4 )

# 4c. the same 144 scrolls WITH their mirror copies (the procedural night skies darken left to
#     right; without mirrors the model learned "further right is darker" and drifted to night)
mkdir -p "$RUN/model_mirror"
[ -d "$RUN/model_mirror/token_cache" ] || cp -r "$RUN/model144/token_cache" "$RUN/model_mirror/token_cache"
$BIN/nuwa-inf train model --data "$RUN/data/train144" --val-data "$RUN/data/val" --tokenizer "$RUN/tokenizer" \
  --out "$RUN/model_mirror" --steps "$MIRROR_STEPS" --save-every 25 --val-every 100 --keep-best \
  $( [ -f "$RUN/model_mirror/checkpoints/latest.json" ] && echo --resume || echo --init "$RUN/model144" --set lr=2e-4 )

# 5. the decoder's texture: encoder and quantiser frozen (the codes, and so the transformer, stay
#    valid), band-power and grid losses on (tokenizer/spectral.py)
$BIN/nuwa-inf train tokenizer --data "$RUN/data/train" --out "$RUN/tokenizer_texture" --init "$RUN/tokenizer" \
  --set freeze=encoder --set spectral_weight=0.01 --set grid_weight=0.03 --set lr=1e-4 \
  --steps "$DECODER_STEPS" --save-every 50 --seed 3 $(resume "$RUN/tokenizer_texture")

# 4d. the style memory (model/memory.py): stage 4c's transformer gains the cross-attended memory
#     of the input's pooled tokens (its output projections start at zero: the fine-tune starts
#     from exactly stage 4c), each training crop reading the memory of another crop of its
#     scroll; the base frozen (only the memory learns: 21 scrolls over-fit the whole model within
#     100 steps), a quarter of the crops without context (the memory their only view), on the
#     first 21 scrolls (seeds from 1000) with mirror copies and their captions
mkdir -p "$RUN/data/train21" "$RUN/model_memory"
for f in $(ls "$RUN"/data/train/scroll_*.png | head -21); do
  ln -sf "$(readlink -f "$f")" "$RUN/data/train21/"; ln -sf "$(readlink -f "${f%.png}.txt")" "$RUN/data/train21/"; done
$BIN/nuwa-inf train model --data "$RUN/data/train21" --val-data "$RUN/data/val" --tokenizer "$RUN/tokenizer_texture" \
  --out "$RUN/model_memory" --steps "$MEMORY_STEPS" --save-every 25 --val-every 50 --keep-best \
  $( [ -f "$RUN/model_memory/checkpoints/latest.json" ] && echo --resume || \
     echo --init "$RUN/model_mirror" --set memory_rows=16 --set freeze=base --set context_drop=0.25 \
       --set memory_drop=0.1 --set lr=1e-3 )

# 4e. text (model/text.py): the captions' words and a 2-layer text encoder join the memory as a
#     softmax group of their own with zero-initialised output projections (text_gate), and only
#     they learn (freeze=text): the fine-tune starts from exactly stage 4d, and a job without a
#     prompt stays exactly stage 4d's model. 96 captioned scrolls of 2048×1024 (seeds from 30000;
#     small, so that pre-tokenising buys many captions: ≈ 19 s a scroll with its mirror copy), 8
#     for validation (seeds from 31000); half the crops without the style memory (text-to-image
#     has none), a quarter without context, captions dropped for 15 % (guidance's uncond branch)
render text96 --count 96 --width 2048 --height 1024 --seed 30000
render text_val --count 8 --width 2048 --height 1024 --seed 31000
$BIN/nuwa-inf train model --data "$RUN/data/text96" --val-data "$RUN/data/text_val" --tokenizer "$RUN/tokenizer_texture" \
  --out "$RUN/model_text" --steps "$TEXT_STEPS" --save-every 25 --val-every 100 --keep-best \
  $( [ -f "$RUN/model_text/checkpoints/latest.json" ] && echo --resume || \
     echo --init "$RUN/model_memory" --set text_len=32 --set text_gate=true --set freeze=text \
       --set memory_drop=0.5 --set context_drop=0.25 --set lr=1e-3 )

# 4f. the style memory trained further (the bundled transformer 2026-12-05, first session): stage 4e's
#     base still frozen, the memory, cross-attention and text learn together, 1000 steps on the
#     same 96 captioned scrolls, a quarter of the crops without context, the memory dropped for
#     10 %, captions for half (≈ 29 min at 2 threads): the memory's gain on validation crops went
#     from 0.004 to 0.085 bits/token, and the continuation benchmark's carry from 0.448 to 0.272
$BIN/nuwa-inf train model --data "$RUN/data/text96" --val-data "$RUN/data/text_val" --tokenizer "$RUN/tokenizer_texture" \
  --out "$RUN/model_style" --steps "$STYLE_STEPS" --save-every 25 --val-every 100 --keep-best \
  $( [ -f "$RUN/model_style/checkpoints/latest.json" ] && echo --resume || \
     echo --init "$RUN/model_text" --set freeze=base --set context_drop=0.25 --set memory_drop=0.1 \
       --set text_drop=0.5 --set lr=7e-4 )

# 4h. the memory at full scale (the bundled transformer since 2026-12-05, second session): a scene
#     scales with the scroll's height, so the 2048×1024 scrolls of 4e/4f are the main job's scenes
#     at half scale. 48 scrolls of 3072×2048 (seeds from 32000; ≈ 33 s a scroll with its mirror
#     copy) beside 48 of the half-scale ones, base still frozen, 600 steps (≈ 21 min at 2 threads);
#     validation on 4 full-scale (seeds from 33000) and the 8 half-scale scrolls. Continuation
#     benchmark at 8192×2048: carry 0.398 → 0.303
render full48 --count 48 --width 3072 --height 2048 --seed 32000
render full_val --count 4 --width 3072 --height 2048 --seed 33000
mkdir -p "$RUN/data/mix4h" "$RUN/data/val4h"
for f in "$RUN"/data/full48/scroll_*; do ln -sf "$f" "$RUN/data/mix4h/full_$(basename "$f")"; done
for f in $(ls "$RUN"/data/text96/scroll_*.png | head -48); do
  ln -sf "$f" "$RUN/data/mix4h/half_$(basename "$f")"; ln -sf "${f%.png}.txt" "$RUN/data/mix4h/half_$(basename "${f%.png}").txt"; done
for f in "$RUN"/data/full_val/scroll_*; do ln -sf "$f" "$RUN/data/val4h/full_$(basename "$f")"; done
for f in "$RUN"/data/text_val/scroll_*; do ln -sf "$f" "$RUN/data/val4h/half_$(basename "$f")"; done
$BIN/nuwa-inf train model --data "$RUN/data/mix4h" --val-data "$RUN/data/val4h" --tokenizer "$RUN/tokenizer_texture" \
  --out "$RUN/model_scale" --steps "$SCALE_STEPS" --save-every 25 --val-every 100 --keep-best \
  $( [ -f "$RUN/model_scale/checkpoints/latest.json" ] && echo --resume || \
     echo --init "$RUN/model_style" --set freeze=base --set context_drop=0.25 --set memory_drop=0.1 \
       --set text_drop=0.5 --set lr=5e-4 )

# 7. the video transformer (animate, generate --frames): the bundled image transformer (4d) fine-tuned
#    on 24 procedural clips of 16 frames at 512×256 (seeds from 30000; 4 validation clips from 96000),
#    crops of 3 frames × 1×2 patches, 1 frame back (extent_t 1: the direction controller's tables
#    grow a Δt = -1 block that starts as a copy of the spatial one), 8 rotary time channels, a text
#    encoder on the clips' captions, the whole model trained
[ -f "$RUN/data/clips/.done" ] || {
  $BIN/nuwa-inf data procedural --video --frames 16 --width 512 --height 256 --count 48 --seed 30000 \
    --out "$RUN/data/clips"; touch "$RUN/data/clips/.done"; }
[ -f "$RUN/data/clips_val/.done" ] || {
  $BIN/nuwa-inf data procedural --video --frames 16 --width 512 --height 256 --count 4 --seed 96000 \
    --out "$RUN/data/clips_val"; touch "$RUN/data/clips_val/.done"; }
mkdir -p "$RUN/data/clips24"
for d in $(ls -d "$RUN"/data/clips/clip_* | grep -v '\.txt$' | head -24); do
  ln -sfn "$(readlink -f "$d")" "$RUN/data/clips24/"; ln -sf "$(readlink -f "$d.txt")" "$RUN/data/clips24/"; done
$BIN/nuwa-inf train model --video --frames 3 --data "$RUN/data/clips24" --val-data "$RUN/data/clips_val" \
  --out "$RUN/video_model" --steps "$VIDEO_STEPS" --save-every 25 --val-every 50 --keep-best --no-flips \
  $( [ -f "$RUN/video_model/checkpoints/latest.json" ] && echo --resume || \
     echo --init "$RUN/model_memory" --set crop_rows=1 --set crop_cols=2 --set rope_time_dims=8 \
       --set text_len=32 --set lr=3e-4 )

# 7b. the video transformer trained further (2026-12-06): 96 new clips of the current renderer (seeds
#     from 31000) with their mirror copies, 800 steps at 2e-4 from stage 7's weights, 1 thread
#     (≈ 35 min; pre-tokenising the 96 clips ≈ 10 min at 2 threads); validation 3.08 bits/token
[ -f "$RUN/data/clips96/.done" ] || {
  $BIN/nuwa-inf data procedural --video --frames 16 --width 512 --height 256 --count 96 --seed 31000 \
    --out "$RUN/data/clips96"; touch "$RUN/data/clips96/.done"; }
$BIN/nuwa-inf train model --video --frames 3 --data "$RUN/data/clips96" --val-data "$RUN/data/clips_val" \
  --out "$RUN/video_more" --steps "$VIDEO_MORE_STEPS" --save-every 25 --val-every 100 --keep-best \
  $( [ -f "$RUN/video_more/checkpoints/latest.json" ] && echo --resume || \
     echo --init "$RUN/video_model" --set lr=2e-4 )

# 8. the text-to-image transformer (generate --text without an input; 2026-12-07): stage 4h's
#    transformer fine-tuned whole on captioned scenes of the size text-to-image draws, kept apart
#    from the continuation's weights (a whole-network fine-tune on small scenes broke the main
#    job's scale: README, "Text control") — 160 scenes of 2048×512 (the whole sky-to-water layout
#    in two patch rows; seeds from 600000) and 32 of 2048×1024 (610000), 8 + 4 held out (700000,
#    710000); crops of 2×4 patches, the style memory dropped for 3/4 of the crops (text-to-image
#    has no input to read), the caption for 15 %, no mirror copies; 2 threads
render t2i/train/small --count 160 --width 2048 --height 512 --seed 600000
render t2i/train/medium --count 32 --width 2048 --height 1024 --seed 610000
render t2i/val/small --count 8 --width 2048 --height 512 --seed 700000
render t2i/val/medium --count 4 --width 2048 --height 1024 --seed 710000
$BIN/nuwa-inf train model --data "$RUN/data/t2i/train" --val-data "$RUN/data/t2i/val" --out "$RUN/text_model" \
  --steps "$T2I_STEPS" --save-every 100 --val-every 200 --keep-best --no-flips \
  $( [ -f "$RUN/text_model/checkpoints/latest.json" ] && echo --resume || \
     echo --init "$RUN/model_scale" --set freeze=none --set crop_rows=2 --set crop_cols=4 \
       --set text_drop=0.15 --set memory_drop=0.75 --set lr=3e-4 )

# 6. export fp16 weights into the package: stage 4h's transformer, stage 5's tokenizer, stage 7b's video,
#    stage 8's text-to-image transformer
$BIN/python -m nuwa_inf.assets.export "$RUN/model_scale" nuwa_inf/assets/default "$RUN/tokenizer_texture"
$BIN/python -m nuwa_inf.assets.export "$RUN/video_more" nuwa_inf/assets/default --video
$BIN/python -m nuwa_inf.assets.export "$RUN/text_model" nuwa_inf/assets/default --text
