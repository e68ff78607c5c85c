"""Text-control benchmark: does the image show what the prompt asked for?

Procedural scrolls have known attributes (palette, time of day, snow, water), so an attribute
probe (`nuwa_inf/eval/attribute_probe.py`: colour statistics per row band, a colour histogram
and a low-band spectrum, one logistic regression per attribute) trained on real procedural
images reads them back from any image. Three measurements:

  ceiling     the probe on held-out real images (seeds from 300000; trained on seeds from
              200000 and a blurred copy of each, attributes drawn uniformly, so chance is
              1 / number of values). With a model, also on the tokenizer's round trip of
              `--roundtrip` of them: how much of the ceiling survives the tokenizer alone, the
              practical ceiling of anything the model decodes.
  text→image  `--prompts` K prompts, `caption(attrs)` of uniformly drawn attributes (seeds from
              400000), each generated at every `--guidance` value (1 = no guidance, 0 =
              unconditional); accuracy = share of images whose probed value is the prompted
              one, per attribute, and its ratio to the ceiling; seconds per image.
  outpaint    real scrolls (`--outpaint-width`×height, seeds from 500000, attributes A), the
              centre `--piece` px cut out and extended back with the caption of A with one
              attribute changed (`--edits`: snow on, time to night, the other palette). Per
              edit and guidance: changed = share of the generated regions (left and right of
              the piece, each probed on its own) where the probe reads the new value; control
              = the same share when the prompt is A's own caption (at the largest guidance):
              what the probe says without being asked; kept = share of (region, other
              attribute) where the probe reads A's value; border = |horizontal gradient| at the
              piece's edges ÷ a few hundred px away (`eval/continuation.border_stats`), and
              border/truth, its ratio to the real scroll's value at the same columns.
              `--outpaint-scale S` renders and extends at S× that size (a procedural scene
              scales with the height, so S = 2 at 512 high is the main job's half scale, where
              the style memory was trained) and shrinks each region S× before probing it, so
              the probe sees the size it was trained on; "truth" = share of the real scroll's own
              regions, shrunk alike, where the probe reads A: how far the shrunk regions read
              like its training images.

The rendered training and held-out sets are cached as features (npz) under `--cache`, keyed by
size, counts, seeds, the feature version and a hash of a small render (a renderer change makes
new sets), and the fitted probe beside them: reruns skip straight to the model.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_text.py --probe-only --threads 1   # ceiling, ~2 min first time
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_text.py --model /work/runs/ft_text --threads 1 \\
        --prompts 12 --guidance 1,3 --json /work/runs/bench_text/ft_text.json --picture docs/text_control.webp
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench_continuation import git_state, save_small_webp, write_json
from common import machine_info, print_table  # (adds the repo to sys.path)
from nuwa_inf.data.procedural import PALETTES, caption, render_scroll
from nuwa_inf.errors import UserError
from nuwa_inf.eval.attribute_probe import (
    ATTRIBUTES,
    FEATURE_VERSION,
    AttributeProbe,
    chance,
    image_features,
    training_features,
    uniform_attributes,
)
from nuwa_inf.eval.continuation import border_stats
from nuwa_inf.infer.cli import DEFAULT_STYLE_WEIGHT

TRAIN_SEED, HELDOUT_SEED, PROMPT_SEED, OUTPAINT_SEED = 200000, 300000, 400000, 500000
CORE = ("palette", "time", "snow", "water")  # the attributes whose ceiling is near 1 (mist, trees: --attributes all)
EDITS = {  # name: (attribute, values A may hold, the value the prompt asks for; None = the other palette)
    "snow": ("snow", (False,), True),
    "night": ("time", ("day", "sunset"), "night"),
    "palette": ("palette", PALETTES, None),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def short(value) -> str:
    """An attribute value for a table or a picture: None → "none", booleans → "yes" / "no"."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# ---------------------------------------------------------------- the real sets and the probe


@functools.lru_cache(maxsize=1)
def render_hash() -> str:
    """Hash of a small render: cached feature sets go stale when the renderer changes."""
    return hashlib.sha1(render_scroll(256, 64, seed=1, attrs=uniform_attributes(1)).tobytes()).hexdigest()[:10]


def real_set(cache: Path, base: int, count: int, width: int, height: int,
             training: bool = False) -> tuple[np.ndarray, list[dict]]:
    """Features (count, 77) and attributes of real scrolls with seeds base, base+1, …, cached as npz;
    `training`: (count, 2, 77), each image's and its blurred copy's (`attribute_probe.training_features`)."""
    kind = "train" if training else "real"
    path = cache / f"{kind}_{width}x{height}_s{base}_n{count}_f{FEATURE_VERSION}_r{render_hash()}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return data["features"], json.loads(str(data["attrs"]))
    log(f"rendering {count} real {width}x{height} scrolls (seeds {base}..{base + count - 1})")
    started, features, attrs = time.monotonic(), [], []
    for i in range(count):
        a = uniform_attributes(base + i)
        image = render_scroll(width, height, base + i, attrs=a)
        features.append(training_features(image) if training else image_features(image))
        attrs.append(a)
    features = np.asarray(features)
    log(f"  {(time.monotonic() - started) / count:.2f} s per image (render + features)")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, features=features, attrs=np.array(json.dumps(attrs)))
    os.replace(tmp, path)
    return features, attrs


def trained_probe(args: argparse.Namespace, names: tuple[str, ...]) -> tuple[AttributeProbe, dict]:
    """(probe, its accuracy per attribute on the held-out real images: the ceiling); the probe is cached too."""
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    train_x, train_a = real_set(cache, TRAIN_SEED, args.train, args.width, args.height, training=True)
    test_x, test_a = real_set(cache, HELDOUT_SEED, args.heldout, args.width, args.height)
    path = cache / (f"probe_{args.width}x{args.height}_s{TRAIN_SEED}_n{args.train}_f{FEATURE_VERSION}"
                    f"_r{render_hash()}_{'-'.join(names)}.npz")
    if path.is_file():
        probe = AttributeProbe.load(path)
    else:
        log(f"fitting the probe on {args.train} images and their blurred copies "
            "(5-fold cross-validation of the L2 penalty)")
        copies = train_x.shape[1]  # (n, copies, F): each image's rows stay in one fold
        probe = AttributeProbe.fit(train_x.reshape(-1, train_x.shape[2]), [a for a in train_a for _ in range(copies)],
                                   names, groups=np.repeat(np.arange(len(train_a)), copies))
        tmp = path.with_name(path.name + ".tmp.npz")
        probe.save(tmp)
        os.replace(tmp, path)
    return probe, probe.accuracy(test_x, test_a)


# ---------------------------------------------------------------- the model


def load_text_model(args: argparse.Namespace, prompts: list[str]):
    """The model, refused early (UserError) without a text encoder or with prompts it cannot read."""
    import torch

    import nuwa_inf
    from nuwa_inf.model.text import check_prompt

    if args.threads:
        torch.set_num_threads(args.threads)
    model = nuwa_inf.load(args.model, device=args.device)
    transformer = model.bundle.transformer
    if transformer.text is None:
        raise UserError(f"this model has no text encoder ({model.directory}): pass --model DIR of a model "
                        "trained with captions")
    unknown = set()
    for prompt in prompts:
        unknown.update(check_prompt(prompt, transformer.text_vocab, transformer.cfg.text_len)[1])
    if unknown:
        log(f"warning: words the model does not know (read as unknown): {', '.join(sorted(unknown))}")
    return model, sorted(unknown)


def roundtrip_accuracy(model, probe: AttributeProbe, args: argparse.Namespace) -> tuple[dict, float]:
    """The probe on the tokenizer round trip of the first `--roundtrip` held-out scrolls; seconds each."""
    features, attrs, started = [], [], time.monotonic()
    for i in range(args.roundtrip):
        a = uniform_attributes(HELDOUT_SEED + i)
        real = render_scroll(args.width, args.height, HELDOUT_SEED + i, attrs=a)
        features.append(image_features(np.asarray(model.reconstruct(real).convert("RGB"))))
        attrs.append(a)
    return probe.accuracy(np.asarray(features), attrs), (time.monotonic() - started) / args.roundtrip


def text_to_image(model, probe: AttributeProbe, args: argparse.Namespace, guidance: list[float],
                  image_dir: Path | None) -> tuple[list[dict], dict]:
    """Generate every prompt at every guidance; (per-prompt records, thumbnails for the picture)."""
    records, thumbs = [], {}
    # generate's own defaults unless a sampling option was given
    sampling = {name: getattr(args, name) for name in ("temperature", "top_p", "min_p", "canvas_prior")
                if getattr(args, name) is not None}
    for k in range(args.first_prompt, args.first_prompt + args.prompts):
        attrs = uniform_attributes(PROMPT_SEED + k)
        prompt = caption(attrs)
        record = {"index": k, "attrs": attrs, "prompt": prompt, "runs": []}
        for g in guidance:
            started = time.monotonic()
            drawn = model.generate(width=args.width * args.draw_scale, height=args.height * args.draw_scale,
                                   text=prompt, guidance=g, seed=args.seed + k, batch=args.batch,
                                   **sampling).convert("RGB")
            if args.draw_scale != 1:  # drawn larger, shrunk to the size the probe knows
                drawn = drawn.resize((args.width, args.height), Image.LANCZOS)
            image = np.asarray(drawn)
            wall = time.monotonic() - started
            read = probe.predict(image_features(image))
            hits = {name: read[name] == attrs[name] for name in probe.names}
            record["runs"].append({"guidance": g, "wall_s": wall, "read": read, "hits": hits})
            log(f"  prompt {k + 1}/{args.first_prompt + args.prompts}, guidance {g:g}: {wall:.1f} s, "
                f"{sum(hits.values())}/{len(hits)} attributes read back")
            if k < args.picture_prompts:
                thumbs[(k, g)] = (image, read)
            if image_dir is not None:
                Image.fromarray(image).save(image_dir / f"prompt{k:02d}_g{g:g}.png")
        records.append(record)
    return records, thumbs


def text_summary(records: list[dict], guidance: list[float], names: list[str], ceiling: dict) -> dict:
    out = {}
    for g in guidance:
        runs = [r for rec in records for r in rec["runs"] if r["guidance"] == g]
        acc = {name: float(np.mean([r["hits"][name] for r in runs])) for name in names}
        out[f"{g:g}"] = {"accuracy": acc, "vs_ceiling": {n: acc[n] / ceiling[n] if ceiling[n] else None for n in names},
                         "mean_accuracy": float(np.mean(list(acc.values()))),
                         "wall_s_per_image": float(np.mean([r["wall_s"] for r in runs])), "images": len(runs)}
    return out


def edit_case(edit: str, j: int) -> tuple[int, dict, dict]:
    """(seed, attributes A, A with the edit applied) of outpainting case j of `edit`."""
    attribute, allowed, new = EDITS[edit]
    seed = OUTPAINT_SEED + j
    before = uniform_attributes(seed)
    if before[attribute] not in allowed:
        before[attribute] = allowed[seed % len(allowed)]
    after = dict(before)
    after[attribute] = new if new is not None else next(v for v in PALETTES if v != before["palette"])
    return seed, before, after


def outpaint(model, probe: AttributeProbe, args: argparse.Namespace, guidance: list[float],
             image_dir: Path | None) -> list[dict]:
    """Every (edit, case, guidance) extension, plus the control (A's own caption) at the largest guidance."""
    scale = args.outpaint_scale
    width, height, piece_w = args.outpaint_width * scale, args.height * scale, args.piece * scale
    snap = model.patch_pixels[1]
    x0 = (width - piece_w) // 2 // snap * snap  # where extend's "center" anchor puts the piece
    regions = [(name, lo, hi) for name, lo, hi in (("left", 0, x0), ("right", x0 + piece_w, width)) if hi > lo]
    records = []
    for edit in args.edits:
        attribute = EDITS[edit][0]
        for j in range(args.outpaint_cases):
            seed, before, after = edit_case(edit, j)
            truth = render_scroll(width, height, seed, attrs=before)
            piece = np.ascontiguousarray(truth[:, x0:x0 + piece_w])
            truth_border = border_stats(truth, (x0, x0 + piece_w))["ratio"]
            truth_reads = {name: probe.predict(shrunk_features(truth, lo, hi, scale)) for name, lo, hi in regions}
            truth_kept = [r[n] == before[n] for r in truth_reads.values() for n in probe.names]
            runs = [(g, caption(after), False) for g in guidance] + [(max(guidance), caption(before), True)]
            for g, prompt, control in runs:
                started = time.monotonic()
                image = np.asarray(model.extend(piece, width=width, height=height, anchor="center", text=prompt,
                                                guidance=g, seed=args.seed + j, batch=args.batch,
                                                style_weight=args.style_weight,
                                                code_prior=args.code_prior).convert("RGB"))
                wall = time.monotonic() - started
                reads = {name: probe.predict(shrunk_features(image, lo, hi, scale)) for name, lo, hi in regions}
                border = border_stats(image, (x0, x0 + piece_w))["ratio"]
                changed = [r[attribute] == after[attribute] for r in reads.values()]
                kept = [r[n] == before[n] for r in reads.values() for n in probe.names if n != attribute]
                records.append({"edit": edit, "attribute": attribute, "case": j, "seed": seed, "before": before,
                                "after": after, "prompt": prompt, "control": control, "guidance": g,
                                "wall_s": wall, "reads": reads, "changed": float(np.mean(changed)),
                                "kept": float(np.mean(kept)) if kept else None, "border": border,
                                "border_truth": truth_border, "truth_reads": truth_reads,
                                "truth_kept": float(np.mean(truth_kept)),
                                "border_vs_truth": border / truth_border if truth_border else None})
                log(f"  {edit} case {j + 1}/{args.outpaint_cases}, guidance {g:g}{' (control)' if control else ''}: "
                    f"{wall:.1f} s, {attribute} read as {[short(r[attribute]) for r in reads.values()]}, "
                    f"border {border:.2f} (truth {truth_border:.2f})")
                if image_dir is not None:
                    tag = "control" if control else f"g{g:g}"
                    Image.fromarray(image).save(image_dir / f"outpaint_{edit}{j:02d}_{tag}.png")
    return records


def shrunk_features(image: np.ndarray, x0: int, x1: int, scale: int) -> np.ndarray:
    """The probe's features of the columns [x0, x1) shrunk `scale`× (box filter) to the probe's size."""
    region = np.ascontiguousarray(image[:, x0:x1])
    if scale > 1:
        size = (region.shape[1] // scale, region.shape[0] // scale)
        region = np.asarray(Image.fromarray(region).resize(size, Image.Resampling.BOX))
    return image_features(region)


def outpaint_summary(records: list[dict], guidance: list[float], edits: list[str]) -> dict:
    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    out = {}
    for edit in edits:
        control = [r for r in records if r["edit"] == edit and r["control"]]
        for g in guidance:
            runs = [r for r in records if r["edit"] == edit and not r["control"] and r["guidance"] == g]
            out[f"{edit} @ {g:g}"] = {
                "edit": edit, "guidance": g, "changed": mean([r["changed"] for r in runs]),
                "control_changed": mean([r["changed"] for r in control]), "kept": mean([r["kept"] for r in runs]),
                "border": mean([r["border"] for r in runs]),
                "border_vs_truth": mean([r["border_vs_truth"] for r in runs]),
                "truth_kept": mean([r["truth_kept"] for r in runs]),
                "wall_s": mean([r["wall_s"] for r in runs]), "cases": len(runs)}
    return out


# ---------------------------------------------------------------- picture


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def picture(records: list[dict], thumbs: dict, guidance: list[float], names: list[str], thumb_w: int,
            aspect: float) -> Image.Image:
    """Rows of prompts, a column per guidance; under each thumbnail the attributes the probe reads
    otherwise than the prompt asked, under each row the prompt."""
    rows = sorted({k for k, _ in thumbs})
    thumb_h, pad, line = round(thumb_w / aspect), 6, 14
    font = _font(line - 3)
    chars = max(20, int(len(guidance) * (thumb_w + pad) / 6.2))  # ≈ characters per line of the prompt
    prompts = {k: textwrap.wrap(f"“{records[k]['prompt']}”", chars) for k in rows}
    row_h = [line + thumb_h + line + len(prompts[k]) * line + pad for k in rows]
    canvas = Image.new("RGB", (pad + len(guidance) * (thumb_w + pad), sum(row_h) + pad), (30, 30, 30))
    draw = ImageDraw.Draw(canvas)
    y = pad
    for k, h in zip(rows, row_h, strict=True):
        for c, g in enumerate(guidance):
            x = pad + c * (thumb_w + pad)
            image, read = thumbs[(k, g)]
            wrong = [f"{n} {short(read[n])}" for n in names if read[n] != records[k]["attrs"][n]]
            draw.text((x, y), f"guidance {g:g}" if g else "unconditional", fill=(235, 235, 235), font=font)
            canvas.paste(Image.fromarray(image).resize((thumb_w, thumb_h), Image.Resampling.LANCZOS), (x, y + line))
            verdict = "probe: all as asked" if not wrong else "not as asked: " + ", ".join(wrong)
            draw.text((x, y + line + thumb_h + 1), verdict, fill=(140, 220, 140) if not wrong else (240, 150, 120),
                      font=font)
        for i, text in enumerate(prompts[k]):
            draw.text((pad, y + 2 * line + thumb_h + i * line), text, fill=(255, 255, 255), font=font)
        y += h
    return canvas


# ---------------------------------------------------------------- main


def fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory with a text encoder (default: the bundled one)")
    parser.add_argument("--prompts", type=int, default=12, help="text-to-image prompts K")
    parser.add_argument("--guidance", default="1,3",
                        help="comma-separated guidance scales (1 = none, 0 = unconditional)")
    parser.add_argument("--width", type=int, default=1024, help="generated (and probe training) image width")
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--attributes", default=",".join(CORE),
                        help=f"probed attributes, or 'all' ({', '.join(ATTRIBUTES)})")
    parser.add_argument("--train", type=int, default=300, help="real training images of the probe")
    parser.add_argument("--heldout", type=int, default=200, help="held-out real images: the ceiling")
    parser.add_argument("--roundtrip", type=int, default=24, help="held-out images put through the tokenizer (0: skip)")
    parser.add_argument("--edits", default=",".join(EDITS), help=f"outpainting edits ({', '.join(EDITS)}; '' skips)")
    parser.add_argument("--outpaint-cases", type=int, default=3, help="scrolls per edit")
    parser.add_argument("--style-weight", type=float, default=DEFAULT_STYLE_WEIGHT,
                        help="extend's --style-weight for the outpainting (the share of the piece's style the "
                             f"prompted branch reads; default {DEFAULT_STYLE_WEIGHT:g})")
    parser.add_argument("--code-prior", type=float, default=None,
                        help="extend's --code-prior for the outpainting (default: extend's, off with a prompt)")
    parser.add_argument("--outpaint-width", type=int, default=3072, help="width the piece is extended back to")
    parser.add_argument("--piece", type=int, default=1024, help="width of the centre piece")
    parser.add_argument("--outpaint-scale", type=int, default=1,
                        help="outpaint at this multiple of --outpaint-width × --height × --piece; regions are "
                             "shrunk back before probing")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (prompt / case index is added)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="text-to-image: generate's --temperature (default: generate's)")
    parser.add_argument("--top-p", type=float, default=None,
                        help="text-to-image: generate's --top-p (default: generate's)")
    parser.add_argument("--min-p", type=float, default=None,
                        help="text-to-image: generate's --min-p (default: generate's)")
    parser.add_argument("--first-prompt", type=int, default=0,
                        help="text-to-image: start at this prompt (to split a run over processes)")
    parser.add_argument("--draw-scale", type=int, default=1,
                        help="text-to-image: draw at this multiple of --width × --height, then shrink (Lanczos)")
    parser.add_argument("--canvas-prior", type=float, default=None,
                        help="text-to-image: generate's --canvas-prior (default: generate's)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cache", default="/work/runs/bench_text", help="cached real feature sets and the probe")
    parser.add_argument("--probe-only", action="store_true",
                        help="only the probe, its ceiling and the tokenizer round trip (any model: no text needed)")
    parser.add_argument("--keep-images", action="store_true", help="save every generated image under --cache/images")
    parser.add_argument("--json", default=None, help="write all figures here")
    parser.add_argument("--picture", default=None, help="write a small WebP grid of a few prompts here")
    parser.add_argument("--picture-prompts", type=int, default=4)
    parser.add_argument("--thumb-width", type=int, default=320)
    args = parser.parse_args(argv)
    try:
        guidance = [float(g) for g in args.guidance.split(",") if g.strip()]
    except ValueError:
        parser.error(f"--guidance must be comma-separated numbers, got {args.guidance!r}")
    names = tuple(ATTRIBUTES) if args.attributes == "all" else tuple(a.strip() for a in args.attributes.split(","))
    args.edits = [e.strip() for e in args.edits.split(",") if e.strip()]
    if not guidance or any(g < 0 for g in guidance):
        parser.error("--guidance needs at least one scale, none negative")
    if set(names) - set(ATTRIBUTES) or set(args.edits) - set(EDITS):
        parser.error(f"--attributes must name {', '.join(ATTRIBUTES)}; --edits {', '.join(EDITS)}")
    if args.prompts < 0 or args.train < 10 or args.heldout < 1 or args.roundtrip < 0 or args.outpaint_cases < 0:
        parser.error("need --prompts ≥ 0, --train ≥ 10, --heldout ≥ 1, --roundtrip ≥ 0, --outpaint-cases ≥ 0")
    if args.first_prompt < 0 or args.draw_scale < 1:
        parser.error("need --first-prompt ≥ 0 and --draw-scale ≥ 1")
    if not 0 < args.piece < args.outpaint_width:
        parser.error("need 0 < --piece < --outpaint-width")
    if args.outpaint_scale < 1:
        parser.error("need --outpaint-scale ≥ 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    try:
        return run(args, guidance, names)
    except UserError as error:
        print(f"bench_text: error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, guidance: list[float], names: tuple[str, ...]) -> int:
    started = time.monotonic()
    probe, ceiling = trained_probe(args, names)
    names = probe.names
    payload = {"settings": {**vars(args), "guidance": guidance, "git": git_state()},
               "machine": machine_info(args.threads), "chance": {n: chance(n) for n in names},
               "probe": {"l2": probe.l2, "cv_accuracy": probe.cv_accuracy, "train": args.train,
                         "heldout": args.heldout}, "ceiling": ceiling}
    rows = [[n, len(ATTRIBUTES[n]), fmt(chance(n)), fmt(probe.cv_accuracy[n], 3), fmt(ceiling[n], 3)] for n in names]
    headers = ["attribute", "values", "chance", "cv (train + blurred)", "ceiling (held-out)"]

    model = None
    if not args.probe_only:
        prompts = [caption(uniform_attributes(PROMPT_SEED + k))
                   for k in range(args.first_prompt, args.first_prompt + args.prompts)]
        prompts += [caption(edit_case(e, j)[i]) for e in args.edits for j in range(args.outpaint_cases) for i in (1, 2)]
        model, unknown = load_text_model(args, prompts)
        payload["unknown_words"] = unknown
    elif args.roundtrip:  # the round trip needs only the tokenizer: any model will do
        import nuwa_inf

        model = nuwa_inf.load(args.model, device=args.device)
    if model is not None:
        payload["settings"]["model_dir"] = str(model.directory)
        if args.roundtrip:
            log(f"tokenizer round trip of {args.roundtrip} held-out scrolls")
            roundtrip, wall = roundtrip_accuracy(model, probe, args)
            payload["roundtrip"] = {"accuracy": roundtrip, "wall_s_per_image": wall, "images": args.roundtrip}
            headers.append(f"round trip ({args.roundtrip})")
            for row, n in zip(rows, names, strict=True):
                row.append(fmt(roundtrip[n], 3))
    print(f"\nattribute probe, {args.width}x{args.height}: trained on {args.train} real scrolls, "
          f"ceiling on {args.heldout} held-out")
    print_table(headers, rows)
    print(flush=True)
    if args.probe_only:
        return finish(args, payload, started)

    image_dir = None
    if args.keep_images:
        image_dir = Path(args.cache) / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
    if args.prompts:
        log(f"text to image: {args.prompts} prompts × guidance {guidance}, {args.width}x{args.height}")
        records, thumbs = text_to_image(model, probe, args, guidance, image_dir)
        summary = text_summary(records, guidance, names, ceiling)
        payload["text_to_image"] = {"summary": summary, "prompts": records}
        print(f"\ntext to image: {args.prompts} prompts, accuracy per attribute (÷ ceiling)")
        print_table(["guidance", *names, "mean", "s / image"],
                    [[f"{g}", *[f"{s['accuracy'][n]:.2f} ({fmt(s['vs_ceiling'][n])})" for n in names],
                      fmt(s["mean_accuracy"]), f"{s['wall_s_per_image']:.1f}"] for g, s in summary.items()])
        print(flush=True)
        if args.picture and thumbs:
            image = picture(records, thumbs, guidance, names, args.thumb_width, args.width / args.height)
            size = save_small_webp(image, Path(args.picture))
            log(f"picture: {args.picture} ({size / 1000:.0f} KB)")
            payload["picture"] = args.picture
        if args.json:
            write_json(Path(args.json), payload)

    if args.edits and args.outpaint_cases:
        log(f"outpainting: edits {args.edits}, {args.outpaint_cases} cases each, "
            f"{args.piece * args.outpaint_scale} px piece → "
            f"{args.outpaint_width * args.outpaint_scale}x{args.height * args.outpaint_scale}")
        records = outpaint(model, probe, args, guidance, image_dir)
        summary = outpaint_summary(records, guidance, args.edits)
        payload["outpaint"] = {"summary": summary, "cases": records}
        print(f"\ntext-guided outpainting: {args.outpaint_cases} cases per edit, 2 regions each "
              f"(changed / control: share of regions where the probe reads the new value)")
        print_table(["edit", "guidance", "changed", "control", "kept", "truth", "border", "border/truth",
                     "s / extend"],
                    [[s["edit"], f"{s['guidance']:g}", fmt(s["changed"]), fmt(s["control_changed"]), fmt(s["kept"]),
                      fmt(s["truth_kept"]), fmt(s["border"]), fmt(s["border_vs_truth"]), fmt(s["wall_s"], 1)]
                     for s in summary.values()])
        print(flush=True)
    return finish(args, payload, started)


def finish(args: argparse.Namespace, payload: dict, started: float) -> int:
    payload["wall_s"] = time.monotonic() - started
    log(f"done in {payload['wall_s']:.0f} s")
    if args.json:
        write_json(Path(args.json), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
