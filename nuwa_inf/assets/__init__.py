"""Bundled files: the default model (`default/tokenizer`, `default/transformer`) and an example scroll."""
from pathlib import Path

ASSETS = Path(__file__).parent


def default_model_dir() -> Path:
    return ASSETS / "default"


def example_scroll() -> Path:
    return ASSETS / "example_scroll.png"
