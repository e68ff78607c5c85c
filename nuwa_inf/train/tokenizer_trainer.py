"""`nuwa-inf train tokenizer`: the VQGAN loop (reconstruction + delayed PatchGAN hinge).

Logs loss, PSNR and codebook usage/perplexity on a progress bar and to OUT/log.jsonl;
checkpoints every `save_every` steps; `--resume` restores weights, optimizers, step,
RNG and the data sampler, so a resumed run continues exactly. Under torchrun both the
VQGAN and the PatchGAN run as DDP (FSQ has no codebook state to sync); `grad_accum`
micro-batches make one optimizer step; on CUDA the nets run in bf16 autocast, the
quantiser in fp32.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import load_state_into, load_tensors, read_config
from ..config import from_dict, to_dict
from ..data.datasets import CropSampler, warn
from ..errors import UserError
from ..tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
from ..tokenizer.discriminator import PatchDiscriminator, hinge_d_loss
from ..tokenizer.losses import psnr
from ..tokenizer.objective import config_loss
from ..tokenizer.quantizer import UsageMeter
from ..tokenizer.vqgan import VQGAN
from . import distributed as dist
from .finetune import resolve_config, warmup_steps
from .loop import finish_step
from .schedule import warmup_cosine
from .state import latest_checkpoint, load_training, rank_tensors, restore_rank_state, save_training, trim_log


@dataclass
class TokenizerRun:
    data: str
    out: str
    config: str | None = None         # preset; None: "small", or the --init checkpoint's own config
    overrides: list | None = None
    steps: int = 10000
    batch_size: int | None = None
    save_every: int = 500
    seed: int = 0
    resume: bool = False
    init: str | None = None
    time_budget: float | None = None  # seconds
    threads: int | None = None
    grad_accum: int = 1               # micro-batches per optimizer step
    device: str = "auto"              # auto | cpu | cuda (under torchrun: this rank's GPU)


def train_tokenizer(run: TokenizerRun) -> Path:
    out = Path(run.out)
    if run.threads:
        torch.set_num_threads(run.threads)
    dist.init(run.device)
    device = dist.pick_device(run.device)
    checkpoint = latest_checkpoint(out) if run.resume else None
    if run.resume and checkpoint is None:
        raise UserError(f"--resume: no checkpoint under {out}/checkpoints")
    if not run.resume and latest_checkpoint(out) is not None:
        raise UserError(f"{out} already holds a training run; pass --resume to continue it or pick another --out")

    init_dir = resolve_init(run.init, "tokenizer") if run.init and checkpoint is None else None
    if checkpoint is not None:
        cfg = from_dict(TokenizerConfig, read_config(checkpoint, "tokenizer")["config"])
    else:
        cfg = resolve_config(TokenizerConfig, TOKENIZER_PRESETS, "tokenizer", run.config, init_dir, run.overrides)
    batch_size = run.batch_size or cfg.batch_size
    torch.manual_seed(run.seed)
    model = VQGAN(cfg)
    disc = PatchDiscriminator(cfg.disc_ch)
    if init_dir is not None:
        load_state_into(model, load_tensors(init_dir / "model.safetensors"), str(init_dir))
    model.to(device)
    disc.to(device)
    trainable = [p for name, p in model.named_parameters()
                 if cfg.freeze == "none" or name.startswith("decoder.")]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, betas=(0.5, 0.9), weight_decay=0.0)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9), weight_decay=0.0)
    sampler = CropSampler(run.data, cfg.crop, flip=True, seed=run.seed + dist.rank(),
                          channel_shuffle=cfg.channel_shuffle)
    check_readable(sampler)
    start = 0
    if checkpoint is not None:
        load_state_into(model, load_tensors(checkpoint / "model.safetensors"), str(checkpoint))
        tensors, meta = load_training(checkpoint, {"opt": opt, "opt_d": opt_d})
        load_state_into(disc, {k[5:]: v for k, v in tensors.items() if k.startswith("disc.")}, "discriminator")
        if not restore_rank_state(sampler.generator, tensors, "rng.sampler", dist.rank()):
            warn(f"rank {dist.rank()}: the checkpoint has no data-sampler state for this rank "
                 f"(it was written by fewer processes); its crops start afresh")
        start = meta["step"]
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
    if device.type == "cuda":
        dist.keep_fp32(model.quantizer)
    # what DDP wraps: the whole VQGAN, or only the decoder when the encoder is frozen
    net = dist.wrap(model.decoder if cfg.freeze == "encoder" else model)
    disc_net = dist.wrap(disc)

    def save(step: int) -> None:
        sampler_states = dist.gather_states(sampler.generator.get_state(), device)  # every rank takes part
        if dist.is_main():
            save_training(out, step, lambda d: model.save(d), {"opt": opt, "opt_d": opt_d},
                          {**{f"disc.{k}": v for k, v in disc.state_dict().items()},
                           **rank_tensors("rng.sampler", sampler_states)},
                          {"kind": "tokenizer", "config": to_dict(cfg)})
        dist.barrier()  # the other ranks wait until the checkpoint is complete

    usage_meter = UsageMeter(model.codebook_size)
    warmup = warmup_steps(run.steps, bool(run.init), 500)
    accum = run.grad_accum
    started = time.monotonic()
    if checkpoint is not None and dist.is_main():
        trim_log(out / "log.jsonl", start)
    log = open(out / "log.jsonl", "a") if dist.is_main() else None
    bar = tqdm(range(start, run.steps), initial=start, total=run.steps, desc="tokenizer", dynamic_ncols=True,
               disable=not dist.is_main())
    step = start
    for step in bar:
        lr = cfg.lr * warmup_cosine(step, run.steps, warmup)
        for group in opt.param_groups + opt_d.param_groups:
            group["lr"] = lr
        gan_on = step >= cfg.disc_start and cfg.disc_weight > 0
        model.train()
        opt.zero_grad(set_to_none=True)
        pairs, losses = [], []  # (real, reconstruction) per micro-batch, for the discriminator
        for micro in range(accum):
            batch = sampler.sample(batch_size).to(device)
            with dist.no_sync([net, disc_net], micro < accum - 1):
                with dist.autocast(device):
                    if cfg.freeze == "encoder":
                        with torch.no_grad():
                            quantised, indices = model.quantizer(model.encoder(batch))
                        recon = net(quantised)
                    else:
                        recon, indices = net(batch)
                    recon = recon.float()
                    loss = config_loss(recon, batch, cfg)
                    if cfg.entropy_weight > 0 and model.quantizer.aux_loss is not None:
                        loss = loss + cfg.entropy_weight * model.quantizer.aux_loss
                    if gan_on:
                        loss = loss - cfg.disc_weight * disc_net(recon).float().mean()
                (loss / accum if accum > 1 else loss).backward()
            pairs.append((batch, recon.detach()))
            losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        d_loss = 0.0
        if gan_on:
            opt_d.zero_grad(set_to_none=True)
            for micro, (real, fake) in enumerate(pairs):
                with dist.no_sync([disc_net], micro < accum - 1):
                    with dist.autocast(device):
                        d = hinge_d_loss(disc_net(real).float(), disc_net(fake).float())
                    (d / accum if accum > 1 else d).backward()
                d_loss += d.item() / accum
            opt_d.step()
        usage, perplexity = usage_meter.update(indices)
        record = {"step": step + 1, "loss": sum(losses) / accum, "psnr": psnr(recon.detach(), batch),
                  "usage": usage, "perplexity": perplexity, "d_loss": d_loss, "lr": lr}
        record.update(dist.mean_scalars({k: record[k] for k in ("loss", "psnr", "d_loss")}, device))
        bar.set_postfix(loss=f"{record['loss']:.4f}", psnr=f"{record['psnr']:.2f}",
                        usage=f"{usage:.2f}", ppl=f"{perplexity:.0f}")
        if finish_step(step + 1, run.steps, run.save_every, record, log, save, run.time_budget, started, device, bar):
            break
    bar.close()
    if log is not None:
        log.close()
    dist.debug_dump("tokenizer", {"model": model, "disc": disc}, sampler.generator)
    if start >= run.steps and dist.is_main():
        print(f"already trained to step {start}")
    return out


def check_readable(sampler: CropSampler) -> None:
    """Fail before anything is written when no training image can be read: one file with its
    own message, a folder once every file was tried (each unreadable one named in a warning)."""
    if len(sampler.files) == 1:
        sampler.cache.get(sampler.files[0])  # raises the file's UserError
        return
    for path in sampler.files:
        if sampler._image(path) is not None:  # warns about, and remembers, unreadable files
            return
    raise UserError(f"none of the {len(sampler.files)} images under {sampler.root} can be read")


def resolve_init(init: str, kind: str) -> Path:
    """`default` → the bundled model's part; otherwise a checkpoint directory (a model dir or its part)."""
    from ..assets import default_model_dir

    base = default_model_dir() if init == "default" else Path(init)
    for candidate in (base / kind, base):
        if (candidate / "config.json").is_file():
            read_config(candidate, kind)
            return candidate
    raise UserError(f"--init {init}: no {kind} checkpoint found in {base}")
