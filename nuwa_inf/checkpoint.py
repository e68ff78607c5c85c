"""Checkpoint directories: `config.json` + `*.safetensors`, never pickle.

Layout of a checkpoint directory:
    config.json            {"format": "nuwa-inf", "version": 1, "kind": ..., "config": {...}, ...}
    model.safetensors      the weights (fp32 or fp16 storage)
    optimizer.safetensors  optional: flattened optimizer state for exact resume
    state.json             optional: step, RNG states, data position

Loading validates the config and every tensor's shape, naming what does not match.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_path, write_json
from .errors import UserError

FORMAT = "nuwa-inf"
VERSION = 1


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> None:
    """Atomically write a safetensors file (optionally casting floating tensors to `dtype`)."""
    prepared = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        prepared[name] = tensor.contiguous()
    with atomic_path(path) as tmp:
        save_file(prepared, str(tmp))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file; anything else (a pickle, a torn file) is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint file missing: {path}")
    with open(path, "rb") as handle:
        head = handle.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. A header length
    # whose first byte is 0x80 or whose first two spell "PK" is fine: look at the header itself
    is_safetensors = len(head) == 9 and head[8:9] == b"{" and \
        8 + int.from_bytes(head[:8], "little") <= path.stat().st_size
    if not is_safetensors and (head[:1] == b"\x80" or head[:2] == b"PK"):
        raise UserError(f"{path} is a pickle/zip file, not safetensors; refusing to load it")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f"{path} is not a valid safetensors file ({str(err).splitlines()[0]})") from None


def save_checkpoint(directory: str | os.PathLike, kind: str, config: dict[str, Any],
                    model: torch.nn.Module, dtype: torch.dtype | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write `config.json` and `model.safetensors` into `directory` (each atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors(directory / "model.safetensors", model.state_dict(), dtype=dtype)
    meta = {"format": FORMAT, "version": VERSION, "kind": kind, "config": config}
    if extra:
        meta.update(extra)
    write_json(directory / "config.json", meta)
    return directory


def read_config(directory: str | os.PathLike, kind: str) -> dict[str, Any]:
    """Read and check `config.json` of a checkpoint directory of the given kind."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"checkpoint directory not found: {directory}")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise UserError(f"checkpoint {directory} has no config.json")
    try:
        meta = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{config_path} is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{config_path} is not a nuwa-inf checkpoint config")
    if meta.get("version", 0) > VERSION:
        raise UserError(f"{config_path} has format version {meta.get('version')}; this nuwa-inf reads up to {VERSION}")
    if meta.get("kind") != kind:
        raise UserError(f"{directory} holds a {meta.get('kind')!r} checkpoint, expected {kind!r}")
    if not isinstance(meta.get("config"), dict):
        raise UserError(f"{config_path} has no 'config' section")
    return meta


def load_state_into(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str,
                    may_lack: tuple[str, ...] = ()) -> None:
    """Copy `tensors` into `model`, naming every missing, unexpected or mis-shaped tensor;
    tensors named in `may_lack` may be absent and then keep the model's own values."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors) - set(may_lack))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        raise UserError(f"{source}: missing tensors {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        raise UserError(f"{source}: unexpected tensors "
                        f"{', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise UserError(f"{source}: tensor {name} has shape {tuple(tensor.shape)}, "
                            f"model expects {tuple(expected[name].shape)}")
    with torch.no_grad():
        for name, target in expected.items():
            if name in tensors:
                target.copy_(tensors[name].to(target.dtype))
