"""Named presets plus `key=value` overrides, shared by the tokenizer and the transformer configs."""
from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from .errors import UserError

C = TypeVar("C")


def from_preset(cls: type[C], presets: dict[str, dict[str, Any]], name: str,
                overrides: list[str] | dict[str, Any] | None = None) -> C:
    """Build a config dataclass from a named preset, then apply overrides.

    Overrides are `key=value` strings (values parsed as JSON when they parse, e.g.
    `ch_mult=[1,2,2,4,4]`, `dim=192`) or a dict.
    """
    if name not in presets:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(presets)}")
    values = dict(presets[name])
    values["preset"] = name
    values.update(parse_overrides(overrides))
    return from_dict(cls, values)


def parse_overrides(overrides: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    parsed = {}
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return parsed


def from_dict(cls: type[C], values: dict[str, Any]) -> C:
    """Instantiate `cls` from a dict, rejecting unknown keys and converting lists to tuples."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        config = cls(**clean)
    except TypeError as err:
        raise UserError(f"bad {cls.__name__}: {err}") from None
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def to_dict(config: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
