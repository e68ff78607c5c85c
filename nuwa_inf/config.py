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
    for key, value in clean.items():
        check_type(cls.__name__, key, value, fields[key].default)
    try:
        config = cls(**clean)
    except TypeError as err:
        raise UserError(f"bad {cls.__name__}: {err}") from None
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def check_type(owner: str, key: str, value: Any, default: Any) -> None:
    """An override must have the type of the field's default (ints for ints, numbers for floats,
    tuples of ints for tuples, strings for strings)."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif is_int(default):
        ok = is_int(value)
    elif isinstance(default, float):
        ok = is_int(value) or isinstance(value, float)
    elif isinstance(default, tuple):
        ok = isinstance(value, tuple) and all(is_int(v) for v in value)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        kind = type(default).__name__ if not isinstance(default, tuple) else "list of ints"
        raise UserError(f"{owner} option {key}={value!r} must be {'an' if kind == 'int' else 'a'} {kind}")


def require_positive(owner: str, **values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise UserError(f"{owner} option {key} must be positive, got {value}")


def to_dict(config: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
