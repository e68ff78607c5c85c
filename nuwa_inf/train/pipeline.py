"""`nuwa-inf train all`: from a folder of images to a model directory in one command.

Stages (each recorded in OUT/pipeline.json when done, so `--resume` skips what is done and
continues the stage that was running from its last checkpoint):

  1. prepare    list the images (nested folders, mixed formats; unreadable ones named and
                skipped), set aside validation images (10%, at least 1; a single image is
                cut: its far end along the long side is held out), pick the transformer's
                training crop to fit the images and upscale those smaller than it.
  2. before     measure the starting model on the held-out images: tokenizer PSNR (tiled
                round trip) and transformer bits per token (fixed crops and orders).
  3. tokenizer  keep the starting tokenizer when its PSNR is already good enough, else
                fine-tune it (decoder only by default: the codes stay valid, so the
                transformer's start is not thrown away); from scratch without --init.
  4. transformer  pre-tokenise, then fine-tune (or train) the transformer; 10 % of the
                training images (when 4+ remain) only validate, every 1/20 of the steps,
                and the best step — the starting weights included — is what is kept
                (small sets over-fit within a few hundred steps); after PATIENCE
                validations in a row without a new best the stage stops early.
  5. after      measure again, write OUT/tokenizer, print before/after.

OUT is a model directory (`--model OUT`): OUT/tokenizer/ and OUT/transformer/ (the
transformer's training run: its usable weights at its top level, checkpoints below).
OUT/work/ holds the staged data and the tokenizer's run; OUT/report.json the figures.

A time budget is split between the stages; a stage's step count is set from a timed
probe step so that its learning-rate schedule ends with its share of the budget.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import write_json
from ..checkpoint import read_config
from ..config import from_dict, from_preset, parse_overrides, to_dict
from ..data.datasets import list_images, upscale_to, warn
from ..errors import UserError
from ..images import image_size, load_rgb
from ..model.config import MODEL_PRESETS, ModelConfig
from ..tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
from .finetune import base_lr

STATE_FILE = "pipeline.json"
DEFAULT_TIME_BUDGET = 20 * 60.0
PATIENCE = 5  # transformer validations (1/20 of its steps each) without a new best before it stops
MAX_VAL_IMAGES = 16
VAL_CROP_PX = 512               # tokenizer PSNR is measured on a centre crop this size at most
VAL_CROPS = 16                  # transformer bits/token: this many fixed crops
TOKENIZER_SHARE = 0.25          # of the remaining budget, when the tokenizer is fine-tuned
TOKENIZER_SHARE_SCRATCH = 0.4   # ... and when it is trained from scratch
FINETUNE_LR_SCALE = {"tokenizer": 0.5, "transformer": 0.3}


@dataclass
class PipelineRun:
    data: str
    out: str
    init: str | None = None            # "default" or a model directory; None: from scratch
    config: str = "small"              # preset when training from scratch
    steps: int | None = None           # per training stage
    time_budget: float | None = None   # seconds, whole pipeline
    val_fraction: float = 0.1
    keep_psnr: float = 28.0            # keep the starting tokenizer at or above this PSNR (dB)
    tokenizer: str = "auto"            # auto | keep | train
    tokenizer_overrides: list = field(default_factory=list)
    model_overrides: list = field(default_factory=list)
    seed: int = 0
    resume: bool = False
    threads: int | None = None
    backend: str = "auto"

    def check(self) -> None:
        if self.steps is not None and self.steps <= 0:
            raise UserError(f"--steps must be positive, got {self.steps}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.tokenizer not in ("auto", "keep", "train"):
            raise UserError(f"--tokenizer must be auto, keep or train, got {self.tokenizer!r}")
        if self.tokenizer == "keep" and self.init is None:
            raise UserError("--tokenizer keep needs --init (there is no tokenizer to keep)")


class Pipeline:
    """One `train all` run bound to its output directory and its state file."""

    def __init__(self, run: PipelineRun):
        self.out = Path(run.out)
        self.work = self.out / "work"
        state_path = self.out / STATE_FILE
        if run.resume:
            if not state_path.is_file():
                raise UserError(f"--resume: {self.out} holds no `train all` run ({STATE_FILE} missing)")
            self.state = json.loads(state_path.read_text())
            saved = PipelineRun(**self.state["run"])
            if Path(run.data).resolve() != Path(saved.data).resolve():
                warn(f"--resume: continuing with the run's own data {saved.data}, not {run.data}")
            saved.resume, saved.threads, saved.backend = True, run.threads, run.backend
            run = saved
        else:
            if state_path.is_file():
                raise UserError(f"{self.out} already holds a `train all` run; pass --resume to continue it "
                                f"or pick another --out")
            if self.out.exists() and any(self.out.iterdir()):
                raise UserError(f"--out {self.out} is not empty; pick a new directory")
            self.state = {"run": asdict(run), "done": [], "spent": 0.0}
        run.check()
        self.run = run
        if run.steps is None and run.time_budget is None:
            run.time_budget = DEFAULT_TIME_BUDGET
        self.started = time.monotonic()

    # -- bookkeeping ---------------------------------------------------------------------
    def save_state(self) -> None:
        write_json(self.out / STATE_FILE, self.state)

    def elapsed(self) -> float:
        """Seconds spent by this pipeline, earlier sessions' finished stages included."""
        return self.state["spent"] + time.monotonic() - self.started

    def remaining(self) -> float | None:
        return None if self.run.time_budget is None else max(0.0, self.run.time_budget - self.elapsed())

    def finish_stage(self, name: str, **values: Any) -> None:
        self.state.update(values)
        self.state["done"].append(name)
        self.state["spent"] = self.elapsed()
        self.started = time.monotonic()
        self.save_state()

    def say(self, message: str) -> None:
        print(f"[train all] {message}", flush=True)

    # -- the whole path --------------------------------------------------------------------
    def execute(self) -> dict:
        run = self.run
        if run.threads:
            torch.set_num_threads(run.threads)
        self.out.mkdir(parents=True, exist_ok=True)
        if run.resume:
            self.say(f"resuming {self.out}: done so far: {', '.join(self.state['done']) or 'nothing'}")
        self.save_state()
        for name, stage in (("prepare", self.prepare), ("before", self.measure_before),
                            ("tokenizer", self.tokenizer_stage), ("transformer", self.transformer_stage),
                            ("after", self.measure_after)):
            if name not in self.state["done"]:
                stage()
        self.print_report()
        return self.state["report"]

    # -- 1. data -----------------------------------------------------------------------
    def prepare(self) -> None:
        run = self.run
        self.say(f"stage 1/5: reading {run.data}")
        files = [p for p in list_images(run.data) if self.out.resolve() not in p.resolve().parents]
        sizes = {}
        for path in files:
            try:
                sizes[path] = image_size(path)
            except UserError as err:
                warn(f"skipping unreadable image: {err}")
        if not sizes:
            raise UserError(f"none of the {len(files)} images under {run.data} can be read")
        tok_cfg, model_cfg = self.start_configs()
        f = tok_cfg.downsample
        patch_px = (model_cfg.patch_h * f, model_cfg.patch_w * f)
        rows, cols = choose_crop(list(sizes.values()), patch_px, (model_cfg.crop_rows, model_cfg.crop_cols))
        crop_px = (rows * patch_px[0], cols * patch_px[1])
        for sub in ("train", "val", "train_crops", "val_crops", "tune_crops"):
            shutil.rmtree(self.work / sub, ignore_errors=True)
            (self.work / sub).mkdir(parents=True)
        paths = sorted(sizes)
        if len(paths) == 1:
            train, val = self.split_one_image(paths[0], crop_px)
        else:
            order = np.random.default_rng(run.seed).permutation(len(paths))
            n_val = min(MAX_VAL_IMAGES, max(1, round(len(paths) * run.val_fraction)))
            val = [paths[i] for i in sorted(order[:n_val])]
            train = [paths[i] for i in sorted(order[n_val:])]
        tune = self.tune_split(train)
        for index, path in enumerate(train):
            stage_image(path, self.work / "train", index)
            stage_image(path, self.work / ("tune_crops" if path in tune else "train_crops"), index, crop_px)
        for index, path in enumerate(val):
            stage_image(path, self.work / "val", index)
            stage_image(path, self.work / "val_crops", index, crop_px)
        self.say(f"{len(train)} training and {len(val)} held-out images; transformer crops of "
                 f"{rows}x{cols} patches ({crop_px[1]}x{crop_px[0]} px)")
        if tune:
            self.say(f"{len(tune)} of the training images pick the transformer's best step (early stopping); "
                     f"the held-out ones stay unseen until the final figures")
        self.finish_stage("prepare", crop=[rows, cols],
                          images={"train": len(train), "val": len(val), "tune": len(tune)})

    def tune_split(self, train: list[Path]) -> list[Path]:
        """Training images whose transformer crops only validate (pick the best step): 10 %, at
        least 1, when 4 or more images remain to train on; otherwise none (the held-out set is used)."""
        n_tune = max(1, round(len(train) * self.run.val_fraction))
        if len(train) - n_tune < 4:
            return []
        order = np.random.default_rng(self.run.seed + 1).permutation(len(train))
        return [train[i] for i in sorted(order[:n_tune])]

    def split_one_image(self, path: Path, crop_px: tuple[int, int]) -> tuple[list[Path], list[Path]]:
        """One image (a scroll): hold out its far end along the long side, at least one crop long."""
        image = load_rgb(path)
        height, width = image.shape[:2]
        axis = 1 if width >= height else 0
        length, crop = image.shape[axis], crop_px[axis]
        held = max(math.ceil(length * self.run.val_fraction), crop)
        if length - held < crop:
            warn(f"{path} is the only image and too small to split; its validation figures are on training data")
            return [path], [path]
        cut = length - held
        parts = {}
        for name, piece in (("train", image[:, :cut] if axis else image[:cut]),
                            ("val", image[:, cut:] if axis else image[cut:])):
            parts[name] = self.work / f"{path.stem}_{name}.png"
            from PIL import Image
            Image.fromarray(np.ascontiguousarray(piece)).save(parts[name])
        self.say(f"one image: the last {held} px of its {'width' if axis else 'height'} are held out")
        return [parts["train"]], [parts["val"]]

    # -- configs --------------------------------------------------------------------------
    def init_dir(self, kind: str) -> Path:
        from .tokenizer_trainer import resolve_init

        return resolve_init(self.run.init, kind)

    def start_configs(self) -> tuple[TokenizerConfig, ModelConfig]:
        """The starting model's configs (from --init), or the --config preset's."""
        if self.run.init is not None:
            tok = from_dict(TokenizerConfig, read_config(self.init_dir("tokenizer"), "tokenizer")["config"])
            model = from_dict(ModelConfig, read_config(self.init_dir("transformer"), "transformer")["config"])
            return tok, model
        tok = from_preset(TokenizerConfig, TOKENIZER_PRESETS, self.run.config, self.run.tokenizer_overrides)
        model = from_preset(ModelConfig, MODEL_PRESETS, self.run.config,
                            {"vocab_size": tok.codebook_size, **parse_overrides(self.run.model_overrides)})
        return tok, model

    def stage_overrides(self, cfg: Any, kind: str, user: list) -> tuple[str, dict]:
        """(preset, overrides) that rebuild `cfg` exactly, with the fine-tuning learning rate,
        then the user's `--tokenizer-set` / `--model-set` on top."""
        presets = TOKENIZER_PRESETS if kind == "tokenizer" else MODEL_PRESETS
        values = to_dict(cfg)
        preset = values.pop("preset")
        if self.run.init is not None:
            values["lr"] = base_lr(to_dict(cfg), presets, type(cfg)) * FINETUNE_LR_SCALE[kind]
        values.update(parse_overrides(user))
        return (preset if preset in presets else next(iter(presets))), values

    # -- 2. and 5. measurements ----------------------------------------------------------
    def measure(self, tokenizer_dir: Path | None, transformer_dir: Path | None, cache: Path) -> dict:
        """Held-out PSNR of a tokenizer and bits/token of a transformer (with that tokenizer's codes)."""
        from ..tokenizer.vqgan import VQGAN

        figures: dict[str, float | None] = {"psnr": None, "bits": None}
        if tokenizer_dir is None:
            return figures
        tokenizer = VQGAN.load(tokenizer_dir)
        figures["psnr"] = heldout_psnr(tokenizer, list_images(self.work / "val"))
        if transformer_dir is not None:
            figures["bits"] = heldout_bits(tokenizer, transformer_dir, self.work / "val_crops", cache,
                                           tuple(self.state["crop"]), self.run.backend)
        return figures

    def measure_before(self) -> None:
        if self.run.init is None:
            self.say("stage 2/5: no starting model (--init not given): training from scratch")
            self.finish_stage("before", before={"psnr": None, "bits": None})
            return
        self.say(f"stage 2/5: measuring the starting model ({self.run.init}) on the held-out images")
        before = self.measure(self.init_dir("tokenizer"), self.init_dir("transformer"),
                              self.work / "cache_before")
        self.say(f"starting model: tokenizer PSNR {before['psnr']:.2f} dB, {before['bits']:.3f} bits/token")
        self.finish_stage("before", before=before, measure_seconds=self.elapsed() - self.state["spent"])

    def measure_after(self) -> None:
        self.say("stage 5/5: measuring the trained model on the held-out images")
        tokenizer_dir = Path(self.state["tokenizer_dir"])
        final = self.out / "tokenizer"
        if final.exists():
            shutil.rmtree(final)
        final.mkdir()
        for name in ("config.json", "model.safetensors"):
            shutil.copy2(tokenizer_dir / name, final / name)
        after = self.measure(final, self.out / "transformer", self.out / "transformer" / "token_cache_val")
        before = self.state["before"]
        report = {"before": before, "after": after, "tokenizer": self.state["tokenizer_choice"],
                  "steps": self.state.get("steps", {}), "images": self.state["images"],
                  "crop": self.state["crop"], "seconds": round(self.elapsed(), 1), "model_dir": str(self.out)}
        write_json(self.out / "report.json", report)
        self.finish_stage("after", report=report)

    # -- 3. tokenizer ----------------------------------------------------------------------
    def tokenizer_stage(self) -> None:
        run, before = self.run, self.state["before"]
        if run.init is None:
            choice, reason = "trained", "no starting model"
        elif run.tokenizer == "keep":
            choice, reason = "kept", "--tokenizer keep"
        elif run.tokenizer == "train":
            choice, reason = "fine-tuned", "--tokenizer train"
        elif before["psnr"] >= run.keep_psnr:
            choice, reason = "kept", f"its held-out PSNR {before['psnr']:.2f} dB is already >= {run.keep_psnr:g} dB"
        else:
            choice, reason = "fine-tuned", f"its held-out PSNR {before['psnr']:.2f} dB is below {run.keep_psnr:g} dB"
        if choice == "kept":
            self.say(f"stage 3/5: keeping the starting tokenizer: {reason}")
            self.finish_stage("tokenizer", tokenizer_dir=str(self.init_dir("tokenizer")),
                              tokenizer_choice={"choice": "kept", "reason": reason})
            return
        from .tokenizer_trainer import TokenizerRun, train_tokenizer

        self.say(f"stage 3/5: {'fine-tuning' if run.init else 'training'} the tokenizer: {reason}")
        start_cfg = self.start_configs()[0]
        preset, overrides = self.stage_overrides(start_cfg, "tokenizer", [])
        if run.init is not None:
            overrides["freeze"] = "encoder"  # the default for fine-tuning; --tokenizer-set freeze=none undoes it
        overrides.update(parse_overrides(run.tokenizer_overrides))
        cfg = from_preset(TokenizerConfig, TOKENIZER_PRESETS, preset, overrides)
        share = TOKENIZER_SHARE if run.init else TOKENIZER_SHARE_SCRATCH
        steps, budget = self.stage_budget("tokenizer", share, lambda: probe_tokenizer_step(cfg))
        if run.init is not None and cfg.freeze == "encoder":
            self.say("the encoder and quantiser stay fixed (codes unchanged); only the decoder trains")
        run_dir = self.work / "tokenizer"
        train_tokenizer(TokenizerRun(
            data=str(self.work / "train"), out=str(run_dir), config=preset, overrides=overrides, steps=steps,
            save_every=save_every(steps), seed=run.seed, resume=has_checkpoint(run_dir),
            init=run.init, time_budget=budget, threads=run.threads))
        chosen, note = run_dir, reason
        if run.init is not None:
            from ..tokenizer.vqgan import VQGAN

            psnr_new = heldout_psnr(VQGAN.load(run_dir), list_images(self.work / "val"))
            if psnr_new < before["psnr"]:
                chosen, choice = self.init_dir("tokenizer"), "kept"
                note = (f"{reason}; fine-tuned PSNR {psnr_new:.2f} dB did not beat the starting "
                        f"{before['psnr']:.2f} dB, so the starting tokenizer is kept")
                self.say(note)
            else:
                self.say(f"fine-tuned tokenizer: held-out PSNR {before['psnr']:.2f} -> {psnr_new:.2f} dB")
        self.finish_stage("tokenizer", tokenizer_dir=str(chosen), tokenizer_choice={"choice": choice, "reason": note},
                          steps={**self.state.get("steps", {}), "tokenizer": steps})

    # -- 4. transformer --------------------------------------------------------------------
    def transformer_stage(self) -> None:
        from ..tokenizer.vqgan import VQGAN
        from .model_trainer import ModelRun, train_model
        from .token_cache import pretokenize

        run = self.run
        out = self.out / "transformer"
        rows, cols = self.state["crop"]
        start_cfg = self.start_configs()[1]
        preset, overrides = self.stage_overrides(start_cfg, "transformer", run.model_overrides)
        overrides.update({"crop_rows": rows, "crop_cols": cols})
        tokenizer_dir = Path(self.state["tokenizer_dir"])
        tokenizer = VQGAN.load(tokenizer_dir)
        overrides["vocab_size"] = tokenizer.codebook_size
        cfg = from_preset(ModelConfig, MODEL_PRESETS, preset, overrides)
        self.say(f"stage 4/5: pre-tokenising, then {'fine-tuning' if run.init else 'training'} the transformer")
        crop_tokens = (rows * cfg.patch_h, cols * cfg.patch_w)
        pretokenize(self.work / "train_crops", tokenizer, out / "token_cache", crop_tokens, flips=True)
        pretokenize(self.work / "val_crops", tokenizer, out / "token_cache_val", crop_tokens, flips=False)
        del tokenizer
        steps, budget = self.stage_budget("transformer", 1.0, lambda: probe_model_step(cfg, run.backend),
                                          reserve=self.state.get("measure_seconds", 0.0))
        tune = self.work / "tune_crops"
        has_tune = tune.is_dir() and any(tune.iterdir())
        train_model(ModelRun(
            data=str(self.work / "train_crops"), out=str(out), tokenizer=str(tokenizer_dir),
            val_data=str(tune if has_tune else self.work / "val_crops"), config=preset, overrides=overrides,
            steps=steps, save_every=save_every(steps), val_every=max(1, steps // 20), seed=run.seed,
            resume=has_checkpoint(out), init=run.init, time_budget=budget, threads=run.threads,
            backend=run.backend, keep_best=True, patience=PATIENCE))
        self.finish_stage("transformer", steps={**self.state.get("steps", {}), "transformer": last_step(out, steps)})

    def stage_budget(self, name: str, share: float, probe, reserve: float = 0.0) -> tuple[int, float | None]:
        """(steps, seconds) for a training stage: --steps and/or its share of the time left;
        with a time budget and no --steps, steps = seconds ÷ a probed step time. A resumed
        stage keeps the step count it started with (its learning-rate schedule depends on it)."""
        planned = self.state.setdefault("planned_steps", {})
        seconds = probe() if name not in planned and self.run.steps is None else None
        remaining = self.remaining()  # after the probe: its time is not the stage's
        budget = None if remaining is None else max(1.0, (remaining - reserve) * share)
        if name in planned:
            steps = planned[name]
        elif self.run.steps is not None:
            steps = self.run.steps
        else:
            steps = max(1, int(budget / (seconds * 1.1)))
            self.say(f"{name}: {seconds:.2f} s/step measured, {steps} steps fit in {budget / 60:.1f} min")
        planned[name] = steps
        self.save_state()
        return steps, budget

    # -- report ---------------------------------------------------------------------------
    def print_report(self) -> None:
        report = self.state["report"]
        before, after = report["before"], report["after"]

        def fmt(value: float | None, unit: str) -> str:
            return "—" if value is None else f"{value:.2f}{unit}" if unit == " dB" else f"{value:.3f}{unit}"

        def change(key: str, relative: bool) -> str:
            if before[key] is None or after[key] is None:
                return ""
            if relative:
                return f"  ({100 * (after[key] - before[key]) / before[key]:+.1f}%)"
            return f"  ({after[key] - before[key]:+.2f} dB)"

        print(f"\nheld-out images: {report['images']['val']}   training images: {report['images']['train']}")
        print(f"{'':24}{'before':>12}{'after':>12}")
        print(f"{'tokenizer PSNR':24}{fmt(before['psnr'], ' dB'):>12}{fmt(after['psnr'], ' dB'):>12}"
              f"{change('psnr', False)}")
        print(f"{'transformer bits/token':24}{fmt(before['bits'], ''):>12}{fmt(after['bits'], ''):>12}"
              f"{change('bits', True)}")
        print(f"tokenizer {report['tokenizer']['choice']}: {report['tokenizer']['reason']}")
        print(f"wall time {report['seconds'] / 60:.1f} min; model directory {self.out} "
              f"(nuwa-inf extend IMAGE -o OUT.png --width W --height H --model {self.out})")


# -- helpers ----------------------------------------------------------------------------------
def train_all(run: PipelineRun) -> dict:
    """Run (or resume) the whole training path; returns the report (before/after figures)."""
    return Pipeline(run).execute()


def choose_crop(sizes: list[tuple[int, int]], patch_px: tuple[int, int],
                limit: tuple[int, int]) -> tuple[int, int]:
    """Transformer training crop (rows, cols) in patches: what the median image holds, within
    the preset's crop, and at least two patches (a patch needs a neighbour to learn context)."""
    rows = min(limit[0], max(1, int(statistics.median(h // patch_px[0] for _, h in sizes))))
    cols = min(limit[1], max(1, int(statistics.median(w // patch_px[1] for w, _ in sizes))))
    if rows * cols < 2:
        if limit[1] >= 2:
            cols = 2
        else:
            rows = 2
    return rows, cols


def stage_image(path: Path, folder: Path, index: int, min_px: tuple[int, int] | None = None) -> None:
    """Put `path` into `folder` as a link (a copy where links fail); with `min_px` (h, w), an
    image smaller than that is written upscaled to cover it, with a message naming it."""
    target = folder / f"{index:05d}_{path.stem}{path.suffix.lower()}"
    if min_px is not None:
        try:
            width, height = image_size(path)
        except UserError:
            return
        if height < min_px[0] or width < min_px[1]:
            try:
                image = load_rgb(path)
            except UserError as err:
                warn(f"skipping unreadable image: {err}")
                return
            scale = max(min_px[0] / height, min_px[1] / width)
            image = upscale_to(image, math.ceil(min(height, width) * scale))
            while image.shape[0] < min_px[0] or image.shape[1] < min_px[1]:  # rounding
                image = upscale_to(image, min(image.shape[:2]) + 1)
            from PIL import Image

            Image.fromarray(image).save(target.with_suffix(".png"))
            warn(f"{path} ({width}x{height}) is smaller than a transformer training crop "
                 f"({min_px[1]}x{min_px[0]}); upscaled to {image.shape[1]}x{image.shape[0]}")
            return
    try:
        os.symlink(path.resolve(), target)
    except OSError:
        shutil.copy2(path, target)


def center_crop(image: np.ndarray, size: int, multiple: int) -> np.ndarray:
    """The centre of `image`, at most size×size, sides cut down to multiples of `multiple`."""
    height = min(image.shape[0], size) // multiple * multiple
    width = min(image.shape[1], size) // multiple * multiple
    y0, x0 = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[y0:y0 + height, x0:x0 + width]


def heldout_psnr(tokenizer, files: list[Path]) -> float:
    """Mean PSNR (dB) of the tiled round trip over centre crops (≤ VAL_CROP_PX) of held-out images."""
    from ..tokenizer.tiled import decode_tiled, encode_tiled

    values = []
    for path in files[:MAX_VAL_IMAGES]:
        try:
            image = load_rgb(path)
        except UserError as err:
            warn(f"skipping unreadable image: {err}")
            continue
        f = tokenizer.downsample
        if min(image.shape[:2]) < f:
            image = upscale_to(image, f)
        crop = center_crop(image, VAL_CROP_PX, f)
        recon = decode_tiled(tokenizer, encode_tiled(tokenizer, crop))
        mse = float(np.mean((recon.astype(np.float32) - crop.astype(np.float32)) ** 2))
        values.append(10 * math.log10(255.0 ** 2 / max(mse, 1e-10)))
    if not values:
        raise UserError("none of the held-out images can be read")
    return float(np.mean(values))


def heldout_bits(tokenizer, transformer_dir: Path, folder: Path, cache: Path, crop: tuple[int, int],
                 backend: str) -> float:
    """Bits per token of a transformer on fixed crops (and fixed orders) of the held-out images."""
    import dataclasses

    from ..model.rope import crop_grid_positions
    from ..model.transformer import LocalTransformer
    from .memory_crops import training_memory
    from .model_trainer import bits_per_token, fixed_validation
    from .token_cache import TokenCropSampler, pretokenize

    model = LocalTransformer.load(transformer_dir)
    cfg = dataclasses.replace(model.cfg, crop_rows=crop[0], crop_cols=crop[1])  # crops may differ from the model's
    grids = pretokenize(folder, tokenizer, cache, (crop[0] * cfg.patch_h, crop[1] * cfg.patch_w), flips=False)
    tokens, layout, canvas_rows, picks = fixed_validation(
        TokenCropSampler(grids, crop[0], crop[1], cfg.patch_h, cfg.patch_w), cfg, count=VAL_CROPS)
    positions = crop_grid_positions(crop[0], crop[1], cfg.crop_frames, tokens.shape[0])
    memory = None
    if model.memory is not None:  # each crop's memory from another crop of its image, as in training
        with torch.no_grad():
            memory = training_memory(model, grids, picks, cfg, torch.Generator().manual_seed(4321), "cpu",
                                     crop[0] * crop[1], drop=0.0)
    return bits_per_token(model, tokens, layout, backend, positions, canvas_rows, memory)


def probe_tokenizer_step(cfg: TokenizerConfig) -> float:
    """Seconds for one training step of a tokenizer of this config (random weights and crops)."""
    from ..tokenizer.objective import config_loss
    from ..tokenizer.vqgan import VQGAN

    model = VQGAN(cfg).train()
    batch = torch.rand(cfg.batch_size, 3, cfg.crop, cfg.crop) * 2 - 1

    def step() -> None:
        if cfg.freeze == "encoder":
            with torch.no_grad():
                quantised, _ = model.quantizer(model.encoder(batch))
            recon = model.decoder(quantised)
        else:
            recon, _ = model(batch)
        config_loss(recon, batch, cfg).backward()

    return _time_second_call(step)


def probe_model_step(cfg: ModelConfig, backend: str) -> float:
    """Seconds for one training step of a transformer of this config (random weights and tokens)."""
    import torch.nn.functional as F

    from ..model.transformer import LocalTransformer
    from .crop_layout import batch_layout, sample_crop_contexts

    model = LocalTransformer(cfg).train()
    generator = torch.Generator().manual_seed(0)
    layout = batch_layout([sample_crop_contexts(cfg, generator) for _ in range(cfg.batch_size)], cfg.n_offsets)
    tokens = torch.randint(cfg.vocab_size, (cfg.batch_size * cfg.crop_rows * cfg.crop_cols, cfg.patch_tokens))

    def step() -> None:
        logits = model.forward_train(tokens, layout, backend)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1)).backward()

    return _time_second_call(step)


def _time_second_call(step) -> float:
    step()  # the first call pays for allocations and kernel selection
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def save_every(steps: int) -> int:
    return max(1, min(500, steps // 10))


def last_step(run_dir: Path, planned: int) -> int:
    """The step a training run ended at (its log's last record), or `planned` if it has none."""
    log = run_dir / "log.jsonl"
    lines = log.read_text().splitlines() if log.is_file() else []
    return json.loads(lines[-1])["step"] if lines else planned


def has_checkpoint(run_dir: Path) -> bool:
    from .state import latest_checkpoint

    return latest_checkpoint(run_dir) is not None
