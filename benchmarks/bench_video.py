"""Animation benchmark with an answer key: animate frame 0 of a procedural clip, compare with the clip.

A procedural clip is known at every frame (`render_clip`: clouds and mist drift, the water
shimmers, the sun moves), so its frame 0 is a still whose true animation is the clip itself.
For each case (fixed attributes: palette, time of day, water, snow, mist; seed 97000 + i, a
seed no bundled model trained on) the still is animated to `--frames` frames by
`nuwa_inf.load(--model).animate(still, frames=T, seed=...)` (timed), and the generated clip is
scored beside the real one with `nuwa_inf/eval/video_metrics.py`:

    motion ×      generated motion ÷ real motion (mean |Δluma| per frame step); 0 = frozen
    flicker ×     generated flicker ÷ real flicker (change undone by the next step); real
                  drift hardly goes back and forth (≈ 0.02 levels), so this ratio is large
                  for anything noisy: read it beside the absolute `flicker` in the JSON
    identical     consecutive generated frames within 1 level everywhere (T − 1 = frozen)
    drift ×       block-statistics change frame 0 → T−1, generated ÷ real (1 = as far as real)
    static        mean |L_t − L_0| (grey levels) of the generated clip where the real clip stands
                  still (ridges, trees, the moon: `video_metrics.static_change`); real: < 2
    PSNR          frame 0 against the still: exact (148 dB printed) with the still's detail added back
                  (video/still_detail.py); `--no-still-detail`: the tokenizer's round trip bounds it
    seam          mean per-frame seam ratio (1.0 = no visible 256-px patch borders), beside
                  the real clip's; `mid` is the same ratio on lines half a patch off the grid
                  (on the axes the seam figure reads), where no border lies: what the content
                  alone scores (at 512×256 the ratio reads one column of 256 pairs, so read the
                  two side by side)
    s / frame     wall seconds of `animate` per generated frame (T − 1 of them)

`--from-text` is text-to-video: each clip generated from its case's caption alone
(`Model.generate_clip(text=...)`), scored against the real clip of that caption the same way
(frame-0 PSNR then only says how far the two scenes differ). `--probe NPZ` (the attribute probe
`bench_text.py` caches) reads palette, time of day, snow and water in the generated frames 0 and
T−1 and in the real frame 0 (the probe's ceiling at this size). `--first-frame clip` samples frame 0
with the video transformer (the only way before 2026-12-05's fourth session), `image` draws it with
the image transformer and animates it (`infer/first_frame.py`; the default where a model has both):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video.py --from-text --cases 4 \\
        --probe /work/runs/bench_text/probe_1024x512_s200000_n300_f2_r0fb2bda5eb_palette-time-snow-water.npz

`--rss-frames 16,64` measures the peak RSS of one animation of each length in a fresh
subprocess (this script with `--rss-child`), so peaks do not mix.

`--real-only` needs no model: it scores each real clip against itself (ratios 1 by definition:
the real clip's absolute figures are the yardstick) and two baselines built from it, *frozen*
(frame 0 repeated: what "no motion" scores) and *shuffled* (the real frames in a random order:
real content without continuity). Its picture and strip show real beside frozen.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video.py --real-only --cases 4
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video.py --model /work/runs/video_model --cases 4 \\
        --json /work/runs/bench_video/run.json --picture docs/animation.webp --strip /work/runs/bench_video/strip.png \\
        --rss-frames 16,64
"""
from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench_continuation import _font, git_state, save_small_webp, write_json
from common import machine_info, print_table  # (adds the repo to sys.path)
from nuwa_inf.data.procedural import caption, full_attributes, render_clip
from nuwa_inf.errors import UserError
from nuwa_inf.eval.attribute_probe import AttributeProbe, image_features
from nuwa_inf.eval.video_metrics import clip_figures

CLIP_SEED = 97000  # case i renders seed CLIP_SEED + i
CASES = [  # (name, fixed attributes); trees come from the seed
    ("blue-green day, lake", {"palette": "blue-green", "time": "day", "water": "lake", "snow": False, "mist": True}),
    ("ink sunset, river", {"palette": "ink", "time": "sunset", "water": "river", "snow": False, "mist": True}),
    ("blue-green night, river", {"palette": "blue-green", "time": "night", "water": "river", "snow": False,
                                 "mist": True}),
    ("ink snowy day, lake", {"palette": "ink", "time": "day", "water": "lake", "snow": True, "mist": True}),
    ("blue-green sunset, lake", {"palette": "blue-green", "time": "sunset", "water": "lake", "snow": False,
                                 "mist": False}),
    ("ink night, lake", {"palette": "ink", "time": "night", "water": "lake", "snow": False, "mist": True}),
]
PICTURE_BYTES = 600_000  # the animated README picture
RATIO_KEYS = ("motion_ratio", "flicker_ratio", "identical_pairs", "drift", "static_change", "first_frame_psnr",
              "seam", "seam_control", "real_seam", "real_seam_control")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def case_spec(index: int) -> dict:
    name, attrs = CASES[index % len(CASES)]
    seed = CLIP_SEED + index
    return {"index": index, "name": name, "seed": seed, "attrs": full_attributes(seed, attrs)}


def real_clip(case: dict, width: int, height: int, frames: int) -> np.ndarray:
    """(frames, height, width, 3) uint8: the case's true animation."""
    return render_clip(width, height, frames, case["seed"], case["attrs"])


# ---------------------------------------------------------------- figures


def _ratio(num: float, den: float) -> float:
    if den == 0:
        return 1.0 if num == 0 else float("inf")
    return num / den


def score(clip: np.ndarray, real: np.ndarray, seconds: float | None = None, truth: dict | None = None) -> dict:
    """`clip`'s figures beside the real clip's (`truth`: its `clip_figures`, computed if not given):
    motion and flicker ratios, drift ratio, first-frame PSNR against real frame 0, seams."""
    mine = clip_figures(clip, real, still=real[0])
    truth = truth or clip_figures(real, real)
    out = {**mine, "motion_ratio": _ratio(mine["motion"], truth["motion"]),
           "flicker_ratio": _ratio(mine["flicker"], truth["flicker"]), "real_motion": truth["motion"],
           "real_flicker": truth["flicker"], "real_seam": truth["seam"],
           "real_seam_control": truth["seam_control"]}
    if seconds is not None:
        out["wall_s"] = seconds
        out["s_per_frame"] = seconds / max(1, len(clip) - 1)
    return out


def baselines(real: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """What a model that does not animate (frozen) or animates without continuity (shuffled) scores."""
    order = np.random.default_rng(seed).permutation(len(real))
    return {"real": real, "frozen": np.repeat(real[:1], len(real), axis=0), "shuffled": real[order]}


def mean_figures(records: list[dict], keys: tuple[str, ...]) -> dict:
    out = {}
    for key in keys:
        values = [r[key] for r in records if r.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    return out


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(value)
    return "inf" if np.isinf(value) else f"{value:.{digits}f}"


def table_row(label: str, figures: dict) -> list[str]:
    return [label, fmt(figures["motion_ratio"]), fmt(figures["motion"]), fmt(figures["flicker_ratio"], 1),
            fmt(figures["flicker"], 3), fmt(figures["identical_pairs"]), fmt(figures["drift"]),
            fmt(figures.get("static_change"), 2), fmt(figures["first_frame_psnr"], 1),
            f"{fmt(figures['seam'], 3)} ({fmt(figures.get('real_seam'), 3)})",
            f"{fmt(figures.get('seam_control'), 3)} ({fmt(figures.get('real_seam_control'), 3)})",
            fmt(figures.get("s_per_frame"), 1)]


HEADERS = ["case", "motion ×", "motion", "flicker ×", "flicker", "identical", "drift ×", "static", "PSNR",
           "seam (real)", "mid (real)", "s / frame"]


def probe_hits(probe: AttributeProbe, frame: np.ndarray, attrs: dict) -> dict[str, bool]:
    """Per attribute: does the probe read the case's value in `frame`?"""
    read = probe.predict(image_features(frame))
    return {name: bool(read[name] == attrs[name]) for name in probe.names}


def probe_accuracy(records: list[dict], names: list[str]) -> dict[str, dict[str, float]]:
    """Share of cases whose frames show the prompted value, per attribute: generated frame 0, its
    last frame, and the real clip's frame 0 (the probe's ceiling at this size)."""
    rows = {key: [r["figures"]["probe"][key] for r in records] for key in records[0]["figures"]["probe"]}
    rows["real frame 0"] = [r["figures"]["probe_real"] for r in records]
    return {key: {n: float(np.mean([hits[n] for hits in values])) for n in names} for key, values in rows.items()}


# ---------------------------------------------------------------- pictures


def _thumb(frame: np.ndarray, width: int) -> np.ndarray:
    height = round(frame.shape[0] * width / frame.shape[1])
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS))


def _label_bar(texts: list[str], width: int, height: int = 16) -> np.ndarray:
    """(height, width · len(texts), 3) uint8: a dark bar with each text over its column."""
    bar = Image.new("RGB", (width * len(texts), height), (30, 30, 30))
    draw = ImageDraw.Draw(bar)
    for i, text in enumerate(texts):
        draw.text((i * width + 4, 2), text, fill=(235, 235, 235), font=_font(height - 4))
    return np.asarray(bar)


def animation_frames(pairs: list[tuple[str, np.ndarray, np.ndarray]], generated_name: str,
                     thumb_width: int) -> list[Image.Image]:
    """Per frame t: for each case a labelled row real | generated, cases stacked top to bottom."""
    frames = []
    for t in range(len(pairs[0][1])):
        rows = []
        for name, real, generated in pairs:
            rows.append(_label_bar([f"real: {name}", generated_name], thumb_width))
            rows.append(np.concatenate([_thumb(real[t], thumb_width), _thumb(generated[t], thumb_width)], axis=1))
        frames.append(Image.fromarray(np.concatenate(rows, axis=0)))
    return frames


def save_animation(frames: list[Image.Image], path: Path, fps: float, limit: int = PICTURE_BYTES) -> int:
    """Animated WebP at the highest quality (80, 70, ...) under `limit` bytes; each frame round(1000 / fps) ms."""
    for quality in range(80, 9, -10):
        buffer = io.BytesIO()
        frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                       loop=0, quality=quality, method=4)
        if buffer.tell() < limit:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


def contact_sheet(pairs: list[tuple[str, np.ndarray, np.ndarray]], generated_name: str,
                  thumb_width: int) -> Image.Image:
    """Per case a row: frames 0, T/2, T−1 of the real clip, then of the generated one, labelled."""
    rows = []
    for name, real, generated in pairs:
        picks = [0, len(real) // 2, len(real) - 1]
        rows.append(_label_bar([f"real {t}" if i else f"{name}: real {t}" for i, t in enumerate(picks)]
                               + [f"{generated_name} {t}" for t in picks], thumb_width))
        rows.append(np.concatenate([_thumb(clip[t], thumb_width) for clip in (real, generated) for t in picks], axis=1))
    return Image.fromarray(np.concatenate(rows, axis=0))


# ---------------------------------------------------------------- peak RSS


def rss_child(args: argparse.Namespace) -> int:
    """In a fresh process: load the model, animate case 0's still once, print the peaks (MiB) as JSON."""
    import nuwa_inf

    still = real_clip(case_spec(0), args.width, args.height, 1)[0]
    model = nuwa_inf.load(args.model, device=args.device)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    started = time.monotonic()
    model.animate(still, frames=args.rss_child, seed=args.seed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": args.rss_child, "peak_rss_mib": peak, "after_load_mib": loaded,
                      "wall_s": time.monotonic() - started}))
    return 0


def peak_rss(args: argparse.Namespace, frames: int) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(frames), "--width", str(args.width),
               "--height", str(args.height), "--device", args.device, "--seed", str(args.seed)]
    if args.model:
        command += ["--model", str(args.model)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"the peak-RSS run of {frames} frames failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main


def run_real_only(args: argparse.Namespace, payload: dict) -> list[tuple[str, np.ndarray, np.ndarray]]:
    records, pairs, rows = [], [], []
    for i in range(args.cases):
        case = case_spec(i)
        real = real_clip(case, args.width, args.height, args.frames)
        clips = baselines(real, case["seed"])
        truth = clip_figures(real, real)
        figures = {name: score(clip, real, truth=truth) for name, clip in clips.items()}
        records.append({**case, "figures": figures})
        rows += [[f"{case['name']}: {name}", *table_row(name, f)[1:]] for name, f in figures.items()]
        pairs.append((case["name"], real, clips["frozen"]))
        log(f"case {i}: {case['name']} (seed {case['seed']}): real motion {figures['real']['motion']:.2f}, "
            f"flicker {figures['real']['flicker']:.3f}")
    payload["cases"] = records
    payload["mean"] = {name: mean_figures([r["figures"][name] for r in records], RATIO_KEYS + ("motion", "flicker"))
                       for name in ("real", "frozen", "shuffled")}
    print(f"\nreal clips scored against themselves and two baselines ({args.cases} cases, "
          f"{args.width}x{args.height}, {args.frames} frames)")
    print_table(HEADERS, rows + [[f"mean: {name}", *table_row(name, {**m, "s_per_frame": None})[1:]]
                                 for name, m in payload["mean"].items()])
    return pairs


def run_model(args: argparse.Namespace, payload: dict) -> list[tuple[str, np.ndarray, np.ndarray]]:
    import nuwa_inf

    model = nuwa_inf.load(args.model, device=args.device)
    payload["settings"]["model_dir"] = str(model.directory)
    probe = AttributeProbe.load(args.probe) if args.probe else None
    records, pairs, rows = [], [], []
    for i in range(args.cases):
        case = case_spec(i)
        real = real_clip(case, args.width, args.height, args.frames)
        options = {"text": caption(case["attrs"])} if args.text or args.from_text else {}
        started = time.monotonic()
        if args.from_text:  # text-to-video: no still, frame 0 generated too
            generated = np.asarray(model.generate_clip(args.width, args.height, args.frames, seed=args.seed + i,
                                                       temperature=args.temperature, top_k=args.top_k,
                                                       top_p=args.top_p, persistence=args.persistence,
                                                       first_frame_temperature=args.first_frame_temperature,
                                                       first_frame=args.first_frame, code_prior=args.code_prior,
                                                       keep_motion=args.keep_motion,
                                                       still_detail=not args.no_still_detail,
                                                       deflicker=not args.no_deflicker, **options))
        else:
            generated = np.asarray(model.animate(real[0], frames=args.frames, seed=args.seed + i,
                                                 temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                                 persistence=args.persistence, deflicker=not args.no_deflicker,
                                                 code_prior=args.code_prior, keep_motion=args.keep_motion,
                                                 still_detail=not args.no_still_detail, **options))
        seconds = time.monotonic() - started
        if generated.shape != real.shape or generated.dtype != np.uint8:
            raise UserError(f"animate returned {generated.shape} {generated.dtype}, expected {real.shape} uint8")
        figures = score(generated, real, seconds)
        if probe is not None:  # does the clip show what its prompt names, at its start and end?
            figures["probe"] = {f"frame {t}": probe_hits(probe, generated[t], case["attrs"])
                                for t in (0, len(generated) - 1)}
            figures["probe_real"] = probe_hits(probe, real[0], case["attrs"])
            log(f"  probe, generated frames 0 / last: {figures['probe']}; real frame 0: {figures['probe_real']}")
        records.append({**case, "prompt": options.get("text"), "figures": figures})
        rows.append(table_row(case["name"], figures))
        pairs.append((case["name"], real, generated))
        log(f"case {i}: {case['name']}: {seconds:.1f} s, motion × {figures['motion_ratio']:.2f}, "
            f"flicker × {figures['flicker_ratio']:.1f}, drift × {figures['drift']:.2f}, "
            f"static {figures['static_change']:.2f}")
        if args.keep_clips:
            Path(args.keep_clips).mkdir(parents=True, exist_ok=True)
            np.savez_compressed(Path(args.keep_clips) / f"case{i}.npz", real=real, generated=generated)
    payload["cases"] = records
    payload["mean"] = mean_figures([r["figures"] for r in records], RATIO_KEYS + ("motion", "flicker", "s_per_frame"))
    if probe is not None:
        payload["probe_accuracy"] = probe_accuracy(records, probe.names)
        print_table(["probe on", *probe.names], [[key, *(fmt(acc[n]) for n in probe.names)]
                                                 for key, acc in payload["probe_accuracy"].items()])
    what = "clips from the captions of" if args.from_text else "animations of"
    print(f"\n{what} {args.cases} held-out stills ({args.width}x{args.height}, {args.frames} frames)")
    print_table(HEADERS, rows + [table_row("mean", payload["mean"])])
    if args.rss_frames:
        payload["peak_rss"] = [peak_rss(args, frames) for frames in args.rss_frames]
        print_table(["frames", "peak RSS MiB", "after load MiB", "s"],
                    [[r["frames"], f"{r['peak_rss_mib']:.0f}", f"{r['after_load_mib']:.0f}", f"{r['wall_s']:.0f}"]
                     for r in payload["peak_rss"]])
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory with a video transformer (default: bundled)")
    parser.add_argument("--cases", type=int, default=4, help=f"clips (styles cycle through {len(CASES)})")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=float, default=8.0, help="playback rate of --picture")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (the case index is added)")
    parser.add_argument("--text", action="store_true", help="animate with the case's caption as the prompt")
    parser.add_argument("--from-text", action="store_true",
                        help="text-to-video: generate each clip from its caption alone (no still; frame-0 PSNR "
                             "then says nothing)")
    parser.add_argument("--code-prior", type=float, default=None,
                        help="penalty on codes the given frame 0 does not use near each height (default: the clip "
                             "default)")
    parser.add_argument("--first-frame", choices=("auto", "image", "clip"), default="auto",
                        help="with --from-text: frame 0 drawn by the image transformer (image) or sampled by the "
                             "video transformer (clip); auto: the default of generate --frames")
    parser.add_argument("--first-frame-temperature", type=float, default=None,
                        help="--from-text: frame 0's sampling temperature (default: the clip's)")
    parser.add_argument("--probe", default=None, metavar="NPZ",
                        help="an attribute probe (bench_text.py's cache) to read each clip's frames 0 and T-1")
    parser.add_argument("--temperature", type=float, default=None, help="default: the clip default (0.3)")
    parser.add_argument("--persistence", type=float, default=None, help="default: the clip default")
    parser.add_argument("--keep-motion", type=float, default=None, help="default: the clip default (keep_motion.py)")
    parser.add_argument("--no-deflicker", action="store_true", help="score the frames as sampled (no temporal median)")
    parser.add_argument("--no-still-detail", action="store_true",
                        help="score the frames as decoded, without frame 0's detail added back (still_detail.py)")
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--real-only", action="store_true", help="no model: real clips vs frozen / shuffled baselines")
    parser.add_argument("--rss-frames", default="", help="comma-separated clip lengths, e.g. 16,64: peak RSS of each")
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="write all figures here")
    parser.add_argument("--picture", default=None, help="animated WebP, real | generated per case (README)")
    parser.add_argument("--strip", default=None, help="PNG contact sheet: frames 0, T/2, T-1 of real and generated")
    parser.add_argument("--picture-cases", type=int, default=3, help="cases in --picture and --strip")
    parser.add_argument("--thumb-width", type=int, default=320)
    parser.add_argument("--keep-clips", default=None, help="save each case's real and generated clip (npz) here")
    args = parser.parse_args(argv)
    try:
        args.rss_frames = [int(n) for n in args.rss_frames.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--rss-frames must be comma-separated frame counts, got {args.rss_frames!r}")
    if args.cases < 1 or args.frames < 3 or args.width < 64 or args.height < 64 or args.fps <= 0:
        parser.error("need --cases ≥ 1, --frames ≥ 3, --width and --height ≥ 64, --fps > 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        if args.rss_child is not None:
            return rss_child(args)
        return run(args)
    except UserError as error:
        print(f"bench_video: error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    payload = {"settings": {**vars(args), "git": git_state()}, "machine": machine_info(args.threads),
               "what": "real-only" if args.real_only else "animate"}
    pairs = run_real_only(args, payload) if args.real_only else run_model(args, payload)
    generated_name = "frozen (baseline)" if args.real_only else "generated"
    shown = pairs[:args.picture_cases]
    if args.picture:
        size = save_animation(animation_frames(shown, generated_name, args.thumb_width), Path(args.picture), args.fps)
        log(f"picture: {args.picture} ({size / 1000:.0f} KB, {args.frames} frames at {args.fps:g} fps)")
        payload["picture"] = args.picture
    if args.strip:
        sheet = contact_sheet(shown, generated_name, args.thumb_width)
        Path(args.strip).parent.mkdir(parents=True, exist_ok=True)
        if Path(args.strip).suffix.lower() == ".webp":
            save_small_webp(sheet, Path(args.strip))
        else:
            sheet.save(args.strip)
        log(f"strip: {args.strip}")
        payload["strip"] = args.strip
    payload["wall_s"] = time.monotonic() - started
    log(f"done in {payload['wall_s']:.0f} s")
    if args.json:
        write_json(Path(args.json), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
