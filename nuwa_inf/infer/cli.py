"""`nuwa-inf extend` and `nuwa-inf generate`: the canvas jobs from the command line."""
from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path

ORDERS = "auto | strips | outward | raster | column | row-right-down | ... (8 sweep directions)"


def _sampling_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="output .png or .tif/.tiff (BigTIFF for huge)")
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0, help="0 = off")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=16, help="max patches sampled together")
    parser.add_argument("--order", default="auto", help=ORDERS)
    parser.add_argument("--run-dir", default=None, help="where run state lives (default: a temp dir next to the output)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a killed run")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--attn-backend", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--preview", default=None, help="also write a small preview PNG here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true")


def _check_flags(args: argparse.Namespace) -> None:
    from ..errors import UserError
    from ..model.orders import ALIASES, DIRECTIONS

    if args.batch <= 0:
        raise UserError(f"--batch must be positive, got {args.batch}")
    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0, got {args.temperature}")
    if args.top_k < 0:
        raise UserError(f"--top-k must be >= 0, got {args.top_k}")
    if not 0 < args.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")
    valid = {"auto", "strips", "outward"} | set(DIRECTIONS) | set(ALIASES)
    if args.order not in valid:
        raise UserError(f"--order {args.order!r} is not one of {', '.join(sorted(valid))}")


def run_canvas_job(args: argparse.Namespace, image_path: str | None) -> int:
    import numpy as np
    import torch

    from ..errors import UserError
    from ..images import check_output_path, load_rgb, refuse_overwrite
    from .bundle import load_bundle
    from .engine import CanvasRun, JobSpec, read_job, remove_run_dir, write_job
    from .placement import place
    from .writers import export, export_preview

    _check_flags(args)
    out = check_output_path(args.output)
    refuse_overwrite(out, args.overwrite)
    if args.preview:
        check_output_path(args.preview, (".png",))
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    bundle = load_bundle(args.model, args.device)
    image = load_rgb(image_path) if image_path else None
    in_h, in_w = image.shape[:2] if image is not None else (0, 0)
    cfg = bundle.transformer.cfg
    placement = place(args.width, args.height, in_w, in_h, getattr(args, "anchor", "center"),
                      bundle.tokenizer.downsample, cfg.patch_h, cfg.patch_w)
    spec = JobSpec(width=args.width, height=args.height, x0=placement.x0, y0=placement.y0, in_w=in_w, in_h=in_h,
                   input_sha=hashlib.sha1(image.tobytes()).hexdigest()[:16] if image is not None else "",
                   seed=args.seed, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   order=args.order, model_hash=bundle.weights_hash)
    temporary = False
    if args.resume:
        run_dir = Path(args.resume)
        saved = read_job(run_dir)
        if saved.input_sha != spec.input_sha or saved.model_hash != spec.model_hash:
            raise UserError(f"--resume {run_dir}: that run used a different input or model")
        spec = saved
    else:
        if args.run_dir:
            run_dir = Path(args.run_dir)
            if run_dir.exists() and any(run_dir.iterdir()):
                raise UserError(f"--run-dir {run_dir} is not empty (use --resume {run_dir} to continue it)")
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            run_dir = Path(tempfile.mkdtemp(prefix=f".{out.stem}.run.", dir=out.parent))
            temporary = True
        write_job(run_dir, spec)
        if not args.quiet:
            print(f"run directory: {run_dir} (resume with --resume {run_dir})")
    job = CanvasRun(bundle, spec, run_dir, image, batch=args.batch, backend=args.attn_backend,
                    progress=not args.quiet)
    canvas = job.run(resume=bool(args.resume))
    export(canvas, out)
    if args.preview:
        export_preview(canvas, args.preview)
    canvas.close()
    if temporary:
        remove_run_dir(run_dir)
    if not args.quiet:
        print(f"wrote {out} ({spec.width}x{spec.height})" + (f", preview {args.preview}" if args.preview else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    extend = subparsers.add_parser("extend", help="outpaint an image to a larger canvas")
    extend.add_argument("input", help="the image to extend")
    extend.add_argument("--anchor", default="center", help="left | center | right | top | bottom | X,Y")
    _sampling_flags(extend)
    extend.set_defaults(func=lambda args: run_canvas_job(args, args.input))
    generate = subparsers.add_parser("generate", help="unconditional generation of any size")
    _sampling_flags(generate)
    generate.set_defaults(func=lambda args: run_canvas_job(args, None))
