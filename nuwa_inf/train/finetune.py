"""Fine-tuning defaults for `--init`: start from a checkpoint's config, gentler optimisation.

Without an explicit `--config`, a run started with `--init` takes the init checkpoint's own
configuration (so `--init default` just works), with a short warm-up and `LR_SCALE` times the
from-scratch learning rate of the checkpoint's preset (`base_lr`), unless the user overrides them.
The preset's rate, not the checkpoint's own: a checkpoint's `lr` is whatever its last stage ran
at, and scaling that would shrink the rate again with every fine-tune of a fine-tune. An
explicit `--config` is honoured, and a shape mismatch with the init weights is then reported
tensor by tensor.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch

from ..checkpoint import read_config
from ..config import from_dict, from_preset, parse_overrides

C = TypeVar("C")
LR_SCALE = 0.3
WARMUP_STEPS = 50


def resolve_config(cls: type[C], presets: dict, kind: str, preset: str | None, init_dir: Path | None,
                   overrides: Any, fixed: dict | None = None) -> C:
    """The run's config: `preset` (default 'small'), or the init checkpoint's own with fine-tune lr."""
    values = dict(fixed or {})
    values.update(parse_overrides(overrides))
    if init_dir is None or preset is not None:
        return from_preset(cls, presets, preset or "small", values)
    config = dict(read_config(init_dir, kind)["config"])
    if "lr" not in values:
        values["lr"] = base_lr(config, presets, cls) * LR_SCALE
    config.update(values)
    return from_dict(cls, config)


def base_lr(config: dict, presets: dict, cls: type) -> float:
    """The from-scratch learning rate of a checkpoint's config: its preset's (or the config
    class's default when the preset leaves it), the config's own when it names no known preset."""
    preset = config.get("preset")
    if preset not in presets:
        return config["lr"]
    return presets[preset].get("lr", cls().lr)


def warmup_steps(total: int, finetune: bool, default_cap: int) -> int:
    return min(WARMUP_STEPS if finetune else default_cap, max(1, total // 20))


def grow_offset_tables(tensors: dict, n_offsets: int, spatial: int) -> dict:
    """A checkpoint's tensors with the direction controller's per-offset tables (offset_vec
    (H, O, Dh), offset_bias (H, O)) grown to `n_offsets` for a model that reads more frames back:
    an image model fine-tuned for video, or a video model for a longer reach in time. Offsets
    are numbered Δt-major in blocks of `spatial` (ModelConfig.offset_id), so the old table holds
    the blocks Δt = 0 … −k; each new, earlier frame starts as a copy of the earliest block held
    (a patch two frames back is first read like one frame back; one frame back, like a
    neighbour of this frame)."""
    grown = dict(tensors)
    for name, table in tensors.items():
        if not name.endswith(("attn.offset_vec", "attn.offset_bias")):
            continue
        old = table.shape[1]
        if old >= n_offsets or old % spatial or n_offsets % spatial:
            continue
        earliest = table[:, old - spatial:]                                  # (H, spatial[, Dh])
        extra = earliest.repeat(1, (n_offsets - old) // spatial, *([1] * (table.dim() - 2)))
        grown[name] = torch.cat([table, extra], dim=1)
    return grown
