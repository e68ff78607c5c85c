"""Training checkpoints that resume exactly: weights, optimizer, step, RNG and data-sampler state.

    OUT/                      the usable model directory (config.json + model.safetensors)
    OUT/checkpoints/step_N/   config.json, model.safetensors, train_state.safetensors, train_state.json
    OUT/checkpoints/latest.json   {"step": N, "dir": "step_N"}  -- renamed into place last

A kill at any moment leaves `latest.json` pointing at a complete checkpoint. Under torchrun
rank 0 writes it, with every rank's data-sampler state (`rng.sampler.rank{r}`).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_bytes, write_json
from ..checkpoint import load_tensors, save_tensors
from ..errors import UserError

KEEP_CHECKPOINTS = 2


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten an optimizer state dict into safetensors-compatible tensors + JSON metadata."""
    state = optimizer.state_dict()
    tensors = {}
    scalars: dict[str, Any] = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith("optim."):
            continue
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training(out: Path, step: int, save_model, optimizers: dict[str, torch.optim.Optimizer],
                  extra_tensors: dict[str, torch.Tensor], extra_meta: dict[str, Any]) -> Path:
    """Write checkpoint `step`, then point `latest.json` at it, then prune old ones.

    `save_model(directory)` writes config.json + model.safetensors (the caller's format).
    """
    root = out / "checkpoints"
    directory = root / f"step_{step:08d}"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    save_model(directory)
    tensors = dict(extra_tensors)
    meta: dict[str, Any] = {"step": step, "optimizers": {}, **extra_meta}
    for name, optimizer in optimizers.items():
        opt_tensors, opt_meta = optimizer_tensors(optimizer)
        tensors.update({f"{name}.{k}": v for k, v in opt_tensors.items()})
        meta["optimizers"][name] = opt_meta
    tensors["rng.torch"] = torch.get_rng_state()
    save_tensors(directory / "train_state.safetensors", tensors)
    write_json(directory / "train_state.json", meta)
    write_json(root / "latest.json", {"step": step, "dir": directory.name})
    save_model(out)  # the top-level usable model follows the latest checkpoint
    for old in sorted(root.glob("step_*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return directory


def rank_tensors(name: str, states: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Generator states for a checkpoint: one process stores `name`; several ranks store
    `name.rank{r}` each (a resume with fewer ranks reads the first ones)."""
    if len(states) == 1:
        return {name: states[0]}
    return {f"{name}.rank{r}": state for r, state in enumerate(states)}


def restore_rank_state(generator: torch.Generator, tensors: dict[str, torch.Tensor], name: str,
                       rank: int) -> bool:
    """Set `generator` to this rank's saved state; False when the checkpoint has none for
    this rank (it was written by fewer processes)."""
    state = tensors.get(f"{name}.rank{rank}")
    if state is None and rank == 0:
        state = tensors.get(name)
    if state is None:
        return False
    generator.set_state(state)
    return True


def trim_log(path: Path, step: int) -> None:
    """Drop log records after `step` (written by a run killed after its last checkpoint), so
    that a resumed run's log holds every step once. Torn or foreign lines are dropped too."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            if int(json.loads(line)["step"]) <= step:
                kept.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    write_bytes(path, "".join(kept).encode())


def latest_checkpoint(out: Path) -> Path | None:
    pointer = out / "checkpoints" / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text())["dir"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{pointer} is corrupt ({err.__class__.__name__}: {err})") from None
    if not isinstance(name, str) or Path(name).name != name or not name.startswith("step_"):
        raise UserError(f"{pointer} is corrupt (dir {name!r} is not a step_N folder beside it)")
    directory = out / "checkpoints" / name
    if not directory.is_dir():
        raise UserError(f"{pointer} points at missing checkpoint {directory}")
    return directory


def load_training(directory: Path,
                  optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore optimizers and the global torch RNG; return (extra tensors, meta) for the caller."""
    tensors = load_tensors(directory / "train_state.safetensors")
    meta_path = directory / "train_state.json"
    try:
        meta = json.loads(meta_path.read_text())
        step = int(meta["step"])
        for name, optimizer in optimizers.items():
            prefix = f"{name}."
            restore_optimizer(optimizer, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                              meta["optimizers"][name])
        torch.set_rng_state(tensors["rng.torch"])
    except FileNotFoundError:
        raise UserError(f"checkpoint file missing: {meta_path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{meta_path} is not valid JSON ({err})") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise UserError(f"{directory}: training state does not fit this run "
                        f"({err.__class__.__name__}: {' '.join(str(err).split())})") from None
    meta["step"] = step
    return tensors, meta
