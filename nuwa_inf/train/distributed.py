"""Multi-process training under `torchrun`: process group, DDP wrapping, rank-0 duties.

    torchrun --nproc_per_node=N -m nuwa_inf train tokenizer|model ...

`init()` joins the process group when torchrun's environment says WORLD_SIZE > 1 (NCCL on
GPUs, gloo on CPU); otherwise every helper here is a no-op and the trainers run exactly as
a single process. Each rank draws its own crops (sampler seeded with seed + rank); rank 0
logs, shows progress and writes checkpoints while the others wait at a barrier.

Test hook: with NUWA_DEBUG_DUMP_WEIGHTS=DIR every rank writes DIR/<tag>.rank<r>.txt holding
a hash of its weights (and of its sampler state) at the end of training, so a test can
check that all ranks ended with identical weights but drew different data.
"""
from __future__ import annotations

import atexit
import contextlib
import gc
import hashlib
import os
import sys
from pathlib import Path
from typing import Iterator, NoReturn

import torch
import torch.distributed as tdist
from torch import nn

from ..errors import UserError


def init(device: str = "auto") -> None:
    """Join the process group described by torchrun's env vars (no-op for one process):
    NCCL when the processes train on GPUs, gloo on the CPU (`device` as in `pick_device`)."""
    if tdist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    if device not in ("auto", "cpu", "cuda"):
        return  # pick_device names the bad value
    if torch.cuda.is_available() and device != "cpu":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "nccl"
    else:
        backend = "gloo"
    tdist.init_process_group(backend)
    atexit.register(_shutdown)


def _shutdown() -> None:
    """At exit: every rank waits for the others before any tears its connections down. A rank
    that destroyed its gloo group while its peer still had a pending receive could take the
    peer down with SIGABRT ("terminate called without an active exception") after a run that
    had finished fine."""
    if tdist.is_initialized():
        with contextlib.suppress(RuntimeError):  # a peer that already died: nothing to wait for
            tdist.barrier()
        tdist.destroy_process_group()


def leave(code: int) -> NoReturn:
    """End a torchrun worker with exit status `code`, skipping the interpreter's teardown.

    Run after the command returned: the trainers' DDP wrappers are collected (they hold the
    gloo group), every rank meets at a barrier, the group is destroyed and the output flushed;
    then `os._exit`. A normal exit let the interpreter finalise while gloo's C++ threads
    were alive, and now and then a two-rank run ended in SIGABRT ("terminate called without
    an active exception") after it had written everything (twice in fresh-clone test runs)."""
    gc.collect()
    _shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def world_size() -> int:
    return tdist.get_world_size() if tdist.is_initialized() else 1


def rank() -> int:
    return tdist.get_rank() if tdist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        tdist.barrier()


def pick_device(requested: str = "auto") -> torch.device:
    """`auto`: this rank's GPU when there is one, else the CPU."""
    if requested not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on the CPU (fp32 there, bit-for-bit as before)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def keep_fp32(module: nn.Module) -> None:
    """Run `module` outside autocast on float32 inputs (the FSQ quantiser: rounding to
    levels and the code index need full precision)."""
    forward = module.forward

    def fp32_forward(*args, **kwargs):
        args = tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)
        with torch.autocast("cuda", enabled=False):
            return forward(*args, **kwargs)

    module.forward = fp32_forward


class _Entry(nn.Module):
    """Calls `module.<method>` as its forward: DDP only hooks `forward`, the transformer
    trains through `forward_train`."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args, **kwargs):
        return getattr(self.module, self.method)(*args, **kwargs)


def wrap(module: nn.Module, method: str | None = None) -> nn.Module:
    """DistributedDataParallel around `module` (or around its `method`) when distributed;
    the module itself (or a thin caller of `method`) for one process."""
    if method is not None:
        module = _Entry(module, method)
    if world_size() == 1:
        return module
    # device_ids=None: the module already sits on this rank's device, inputs are moved by the caller
    return nn.parallel.DistributedDataParallel(module, device_ids=None)


def no_sync(modules: list[nn.Module], skip_sync: bool) -> contextlib.AbstractContextManager:
    """Gradient accumulation: skip DDP's all-reduce for all but the last micro-batch."""
    stack = contextlib.ExitStack()
    if skip_sync:
        for module in modules:
            if isinstance(module, nn.parallel.DistributedDataParallel):
                stack.enter_context(module.no_sync())
    return stack


def mean_scalars(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average logged scalars over ranks (one all-reduce); unchanged for one process."""
    if world_size() == 1:
        return values
    keys = sorted(values)
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    tdist.all_reduce(packed)
    packed /= world_size()
    return {**values, **dict(zip(keys, packed.tolist(), strict=True))}


def any_rank(flag: bool, device: torch.device) -> bool:
    """True when `flag` is true on any rank (all ranks stop at the same step)."""
    if world_size() == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    tdist.all_reduce(value, op=tdist.ReduceOp.MAX)
    return bool(value.item() > 0)


def gather_states(state: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    """Every rank's copy of a same-sized tensor (a generator state), in rank order, on the CPU."""
    if world_size() == 1:
        return [state]
    local = state.to(device)
    parts = [torch.empty_like(local) for _ in range(world_size())]
    tdist.all_gather(parts, local)
    return [part.cpu() for part in parts]


def debug_dump(tag: str, modules: dict[str, nn.Module], generator: torch.Generator) -> None:
    """With NUWA_DEBUG_DUMP_WEIGHTS=DIR: write this rank's weight and sampler hashes (tests)."""
    folder = os.environ.get("NUWA_DEBUG_DUMP_WEIGHTS")
    if not folder:
        return
    weights = hashlib.sha1()
    for prefix, module in modules.items():
        for name, tensor in sorted(module.state_dict().items()):
            weights.update(f"{prefix}.{name}".encode())
            weights.update(tensor.detach().cpu().float().numpy().tobytes())
    sampler = hashlib.sha1(generator.get_state().numpy().tobytes()).hexdigest()
    path = Path(folder) / f"{tag}.rank{rank()}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"weights {weights.hexdigest()}\nsampler {sampler}\n")


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. fills a cache), the others after it (reading it)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()
