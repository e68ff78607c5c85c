"""Fine-tuning defaults for `--init`: start from a checkpoint's config, gentler optimisation.

Without an explicit `--config`, a run started with `--init` takes the init checkpoint's own
configuration (so `--init default` just works), with the learning rate scaled by
`LR_SCALE` and a short warm-up, unless the user overrides them. An explicit `--config` is
honoured, and a shape mismatch with the init weights is then reported tensor by tensor.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

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
        values["lr"] = config["lr"] * LR_SCALE
    config.update(values)
    return from_dict(cls, config)


def warmup_steps(total: int, finetune: bool, default_cap: int) -> int:
    return min(WARMUP_STEPS if finetune else default_cap, max(1, total // 20))
