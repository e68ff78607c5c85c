"""`nuwa-inf train model`: teacher-forced training of the local AR transformer.

Each step takes B crops of R×C patches from the pre-tokenised data, gives each crop a
random generation order (see crop_layout.py), runs all patches in one forward pass
through the patch-structured attention, and minimises token cross-entropy.
AdamW, warm-up + cosine, gradient clipping, validation bits/token on held-out images,
periodic safetensors checkpoints, exact resume (weights, optimizer, step, RNG, sampler).
Under torchrun the transformer runs as DDP, each rank with its own crops and orders;
`grad_accum` micro-batches make one step; on CUDA the forward runs in bf16 autocast.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import load_state_into, load_tensors, read_config
from ..config import from_dict, to_dict
from ..data.datasets import list_images, warn
from ..errors import UserError
from ..kernels import resolve_backend
from ..model.config import MODEL_PRESETS, ModelConfig
from ..model.transformer import GAINABLE, TEXT_PARTS, LocalTransformer, gainable
from ..tokenizer.cli import find_tokenizer_dir
from ..tokenizer.vqgan import VQGAN
from ..video.clips import list_clips
from . import distributed as dist
from .best import BestKeeper
from .captions import caption_vocab, grid_caption_ids, grow_word_table, training_captions
from .clip_data import ClipCropSampler, clip_captions, pretokenize_clips
from .crop_layout import batch_layout, sample_clip_contexts, sample_crop_contexts
from .crop_loss import crop_loss
from .finetune import grow_offset_tables, resolve_config, warmup_steps
from .loop import finish_step
from .memory_crops import training_memory
from .optimizer import set_rate, transformer_optimizer
from .schedule import warmup_cosine
from .state import latest_checkpoint, load_training, rank_tensors, restore_rank_state, save_training, trim_log
from .token_cache import TokenCropSampler, pretokenize
from .tokenizer_trainer import resolve_init


@dataclass
class ModelRun:
    data: str
    out: str
    tokenizer: str | None = None
    val_data: str | None = None
    config: str | None = None         # preset; None: "small", or the --init checkpoint's own config
    overrides: list | None = None
    steps: int = 10000
    batch_size: int | None = None
    save_every: int = 500
    val_every: int = 250
    seed: int = 0
    resume: bool = False
    init: str | None = None
    time_budget: float | None = None
    threads: int | None = None
    backend: str = "auto"
    flips: bool = True                # also pre-tokenise mirrored images (2× data, 2× encode time)
    grad_accum: int = 1               # micro-batches per optimizer step
    device: str = "auto"              # auto | cpu | cuda (under torchrun: this rank's GPU)
    keep_best: bool = False           # end with the weights of the best validation (see best.py)
    patience: int | None = None       # with keep_best: stop after this many validations without a new best
    video: bool = False               # train on clips (frame folders, video files): crops of crop_frames frames
    recompute: bool = False           # keep only each block's input, compute the rest again in backward

# A rank's order generator is seeded seed + 1 + ORDER_SEED_STRIDE·rank: apart from every
# rank's crop generator (seed + rank), and seed + 1 for one process, as before.
ORDER_SEED_STRIDE = 1_000_003


def bits_per_token(model: LocalTransformer, tokens: torch.Tensor, layout, backend: str,
                   positions: torch.Tensor | None = None, canvas_rows: torch.Tensor | None = None,
                   memory=None) -> float:
    """Mean bits/token; `positions`, `canvas_rows` and `memory` as in `forward_train` (positions
    are needed for crops not of the model's size)."""
    with torch.no_grad():
        nats = model.forward_train(tokens, layout, backend, positions, canvas_rows, memory, targets=tokens)
    return float(nats) / math.log(2)


def fixed_validation(sampler, cfg: ModelConfig, count: int = 8, seed: int = 1234, contexts=sample_crop_contexts):
    """The same validation crops and orders every time: (tokens, layout, canvas rows, picks)."""
    sampler.generator.manual_seed(seed)
    tokens, canvas_rows, picks = sampler.sample_with_picks(count)
    generator = torch.Generator().manual_seed(seed)
    layout = batch_layout([contexts(cfg, generator) for _ in range(count)], cfg.n_offsets)
    return tokens, layout, canvas_rows, picks


def crop_patches(cfg: ModelConfig) -> int:
    """Patches of one training crop."""
    return cfg.crop_frames * cfg.crop_rows * cfg.crop_cols


def validation_bits(model: LocalTransformer, val, grids, cfg: ModelConfig, backend: str, device,
                    text_ids: torch.Tensor | None = None) -> dict:
    """{"val_bits": …} on the fixed validation crops, with their memories (the same memory
    crops every time) and, for a model with memory, also without them ("val_bits_no_memory")."""
    tokens, layout, rows, picks = val
    if model.memory is None:
        return {"val_bits": bits_per_token(model, tokens, layout, backend, canvas_rows=rows)}
    with torch.no_grad():
        memory = training_memory(model, grids, picks, cfg, torch.Generator().manual_seed(4321), device,
                                 crop_patches(cfg), drop=0.0, text_ids=text_ids, text_drop=0.0)
    record = {"val_bits": bits_per_token(model, tokens, layout, backend, canvas_rows=rows, memory=memory),
              "val_bits_no_memory": bits_per_token(model, tokens, layout, backend, canvas_rows=rows)}
    if text_ids is not None and model.text is not None:  # the style memory without the captions
        with torch.no_grad():
            style_only = training_memory(model, grids, picks, cfg, torch.Generator().manual_seed(4321), device,
                                         crop_patches(cfg), drop=0.0)
        record["val_bits_no_text"] = bits_per_token(model, tokens, layout, backend, canvas_rows=rows, memory=style_only)
    return record


def out_of_patience(run: ModelRun, keeper: BestKeeper | None, done: int, device) -> str | None:
    """Why to stop early, or None: `patience` validations in a row without a new best (agreed
    across ranks; only the main rank keeps the best)."""
    if not run.patience or done % run.val_every or done == run.steps:
        return None
    if not dist.any_rank(keeper is not None and keeper.stale(done, run.patience * run.val_every), device):
        return None
    best = f" (step {keeper.best['step']}, {keeper.best['val_bits']:.3f} bits/token)" if keeper is not None else ""
    return f"stopping at step {done}: {run.patience} validations without beating the best{best}"


def train_model(run: ModelRun) -> Path:
    out = Path(run.out)
    if run.threads:
        torch.set_num_threads(run.threads)
    dist.init(run.device)
    device = dist.pick_device(run.device)
    try:
        resolve_backend(run.backend, device)
    except ValueError as err:
        raise UserError(f"--attn-backend: {err}") from None
    listing = list_clips if run.video else list_images
    listing(run.data)  # a missing or image-less --data fails before anything is written
    if run.val_data:
        listing(run.val_data)
    checkpoint = latest_checkpoint(out) if run.resume else None
    if run.resume and checkpoint is None:
        raise UserError(f"--resume: no checkpoint under {out}/checkpoints")
    if not run.resume and latest_checkpoint(out) is not None:
        raise UserError(f"{out} already holds a training run; pass --resume to continue it or pick another --out")
    tokenizer_dir = out / "tokenizer" if checkpoint is not None else find_tokenizer_dir(run.tokenizer)
    tokenizer = VQGAN.load(tokenizer_dir)
    init_dir = resolve_init(run.init, "transformer") if run.init and checkpoint is None else None
    if checkpoint is not None:
        cfg = from_dict(ModelConfig, read_config(checkpoint, "transformer")["config"])
    else:
        cfg = resolve_config(ModelConfig, MODEL_PRESETS, "transformer", run.config, init_dir, run.overrides,
                             fixed={"vocab_size": tokenizer.codebook_size})
    vocab: list[str] = []
    if cfg.text_len:  # the word vocabulary: the checkpoint's, or the init model's plus the captions' new words
        source = checkpoint if checkpoint is not None else init_dir
        vocab = list(read_config(source, "transformer").get("text_vocab", [])) if source is not None else []
        captions = clip_captions(run.data) if run.video else training_captions(run.data)
        if checkpoint is None:
            vocab = caption_vocab(captions, vocab)
            cfg = dataclasses.replace(cfg, text_vocab_size=len(vocab) + 2)
        if not captions:
            warn(f"no captions under {run.data}: the text encoder trains on nothing (every crop unconditional)")
    if run.video and cfg.crop_frames < 2:
        raise UserError(f"--video trains on crops of several frames: crop_frames is {cfg.crop_frames} "
                        f"(--frames T, T >= 2)")
    if cfg.vocab_size != tokenizer.codebook_size:
        raise UserError(f"model vocab_size {cfg.vocab_size} != tokenizer codebook size {tokenizer.codebook_size}")
    batch_size = run.batch_size or cfg.batch_size
    torch.manual_seed(run.seed)
    model = LocalTransformer(cfg)
    model.text_vocab = vocab
    if init_dir is not None:
        tensors = grow_word_table(load_tensors(init_dir / "model.safetensors"), cfg.text_vocab_size)
        tensors = grow_offset_tables(tensors, cfg.n_offsets, cfg.offsets_per_frame)  # more frames back
        load_state_into(model, tensors, str(init_dir), may_lack=gainable(model))
    model.to(device)

    created = not out.exists()
    try:
        with dist.main_first():  # rank 0 writes the tokenizer and fills the token caches, the others read them
            out.mkdir(parents=True, exist_ok=True)
            if checkpoint is None and dist.is_main():
                tokenizer.save(out / "tokenizer")  # the model directory carries its tokenizer

            crop_tokens = (cfg.crop_rows * cfg.patch_h, cfg.crop_cols * cfg.patch_w)
            if run.video:
                grids, sources = pretokenize_clips(run.data, tokenizer, out / "token_cache",
                                                   (cfg.crop_frames, *crop_tokens), flips=run.flips)
            else:
                grids, sources = pretokenize(run.data, tokenizer, out / "token_cache", crop_tokens, flips=run.flips,
                                             with_sources=True)
            if run.val_data and run.video:
                val_grids, val_sources = pretokenize_clips(run.val_data, tokenizer, out / "token_cache_val",
                                                           (cfg.crop_frames, *crop_tokens), flips=False)
            elif run.val_data:
                val_grids, val_sources = pretokenize(run.val_data, tokenizer, out / "token_cache_val", crop_tokens,
                                                     flips=False, with_sources=True)
            else:
                val_grids, val_sources = grids[-max(1, len(grids) // 10):], sources[-max(1, len(grids) // 10):]
    except UserError:
        if created and dist.is_main():
            shutil.rmtree(out, ignore_errors=True)  # no half-made model directory (no usable images)
        raise
    del tokenizer
    text_ids = val_text_ids = None
    if cfg.text_len:  # (G, T) word ids of each grid's caption
        text_ids = grid_caption_ids(sources, captions, vocab, cfg.text_len)
        val_captions = (clip_captions if run.video else training_captions)(run.val_data) if run.val_data else captions
        val_text_ids = grid_caption_ids(val_sources, val_captions, vocab, cfg.text_len)

    if cfg.freeze != "none":  # only the parts a fine-tune gains learn: the base model cannot drift or over-fit
        learns = GAINABLE if cfg.freeze == "base" else TEXT_PARTS
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(bool(learns.fullmatch(name)))
    opt = transformer_optimizer(model, cfg.lr, cfg.weight_decay)
    if run.video:  # clips: crops of frames, each crop's memory from its clip's first frame
        sampler = ClipCropSampler(grids, cfg.crop_frames, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w,
                                  seed=run.seed + dist.rank())
        val_sampler = ClipCropSampler(val_grids, cfg.crop_frames, cfg.crop_rows, cfg.crop_cols, cfg.patch_h,
                                      cfg.patch_w)
        contexts, memory_grids = sample_clip_contexts, sampler.first_frames()
        val_memory_grids = val_sampler.first_frames()
    else:
        sampler = TokenCropSampler(grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w,
                                   seed=run.seed + dist.rank())
        val_sampler = TokenCropSampler(val_grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w)
        contexts, memory_grids, val_memory_grids = sample_crop_contexts, grids, val_grids
    order_rng = torch.Generator().manual_seed(run.seed + 1 + ORDER_SEED_STRIDE * dist.rank())
    val_tokens, val_layout, val_rows, val_picks = fixed_validation(val_sampler, cfg, contexts=contexts)
    val = (val_tokens.to(device), val_layout, val_rows, val_picks)
    start = 0
    if checkpoint is not None:
        load_state_into(model, load_tensors(checkpoint / "model.safetensors"), str(checkpoint))
        tensors, meta = load_training(checkpoint, {"opt": opt})
        restored = [restore_rank_state(sampler.generator, tensors, "rng.sampler", dist.rank()),
                    restore_rank_state(order_rng, tensors, "rng.order", dist.rank())]
        if not all(restored):
            warn(f"rank {dist.rank()}: the checkpoint has no data-sampler state for this rank "
                 f"(it was written by fewer processes); its crops start afresh")
        start = meta["step"]
    model.recompute = run.recompute   # (training passes only: validation runs without gradients)
    train_forward = dist.wrap(model, method="forward_train")  # DDP hooks forward; this calls forward_train

    def save(step: int) -> None:
        sampler_states = dist.gather_states(sampler.generator.get_state(), device)  # every rank takes part
        order_states = dist.gather_states(order_rng.get_state(), device)
        if dist.is_main():
            save_training(out, step, lambda d: model.save(d), {"opt": opt},
                          {**rank_tensors("rng.sampler", sampler_states), **rank_tensors("rng.order", order_states)},
                          {"kind": "transformer", "config": to_dict(cfg)})
        dist.barrier()  # the other ranks wait until the checkpoint is complete

    warmup = warmup_steps(run.steps, bool(run.init), 300)
    accum = run.grad_accum
    started = time.monotonic()
    if checkpoint is not None and dist.is_main():
        trim_log(out / "log.jsonl", start)
    log = open(out / "log.jsonl", "a") if dist.is_main() else None
    keeper = BestKeeper(out) if run.keep_best and dist.is_main() else None
    if keeper is not None and keeper.best is None and start == 0:
        model.eval()
        with dist.autocast(device):
            keeper.offer(0, validation_bits(model, val, val_memory_grids, cfg, run.backend, device,
                                            val_text_ids)["val_bits"],
                         model.save)
    bar = tqdm(range(start, run.steps), initial=start, total=run.steps, desc="transformer", dynamic_ncols=True,
               disable=not dist.is_main())
    for step in bar:
        lr = cfg.lr * warmup_cosine(step, run.steps, warmup)
        set_rate(opt, lr)
        model.train()
        opt.zero_grad(set_to_none=True)
        losses = []
        for micro in range(accum):
            with dist.no_sync([train_forward], micro < accum - 1):
                with dist.autocast(device):
                    loss = crop_loss(model, train_forward, sampler, cfg, batch_size, order_rng, contexts,
                                     memory_grids, run.backend, device, text_ids)
                (loss / accum if accum > 1 else loss).backward()
            losses.append(loss.item())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        done = step + 1
        mean_loss = dist.mean_scalars({"loss": sum(losses) / accum}, device)["loss"]
        record = {"step": done, "loss": mean_loss, "bits": mean_loss / math.log(2), "lr": lr,
                  "grad_norm": grad_norm}
        if dist.is_main() and (done % run.val_every == 0 or done == run.steps):
            model.eval()
            with dist.autocast(device):
                record.update(validation_bits(model, val, val_memory_grids, cfg, run.backend, device, val_text_ids))
            if keeper is not None:
                keeper.offer(done, record["val_bits"], model.save)
        shown = {"val": f"{record['val_bits']:.3f}"} if "val_bits" in record else {}
        bar.set_postfix(bits=f"{record['bits']:.3f}", **shown)
        if finish_step(done, run.steps, run.save_every, record, log, save, run.time_budget, started, device, bar,
                       stop_reason=out_of_patience(run, keeper, done, device)):
            break
    bar.close()
    if log is not None:
        log.close()
    if keeper is not None and (best := keeper.promote()) is not None:
        print(f"keeping the weights of step {best['step']}: validation {best['val_bits']:.3f} bits/token, "
              f"the best of the run")
    dist.debug_dump("model", {"model": model}, sampler.generator)
    return out
