"""Figures with matplotlib, an optional dependency (`pip install 'nuwa-inf[plots]'`).

`new_figure` returns a matplotlib `Figure` drawn by the Agg backend without touching pyplot's
global state, or None after one warning on stderr when matplotlib is missing: a plot is an
extra, so no caller fails for want of it. `save_figure` writes it atomically.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .atomic import atomic_path
from .errors import UserError

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def new_figure(what: str, width_in: float, height_in: float) -> Any | None:
    """A Figure of that size in inches, or None (with a warning naming `what`) without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(f"warning: matplotlib is not installed (pip install 'nuwa-inf[plots]'); no {what} drawn",
              file=sys.stderr)
        return None
    return Figure(figsize=(width_in, height_in), layout="constrained")


def check_plot_path(path: str | os.PathLike, flag: str = "--plot") -> Path:
    """A plot file name with a supported extension in an existing folder, or a UserError."""
    path = Path(os.path.expanduser(os.fspath(path)))
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(f"{flag} {path}: use a file name ending in {', '.join(PLOT_SUFFIXES)}")
    if not path.resolve().parent.is_dir():
        raise UserError(f"{flag} {path}: folder {path.parent} does not exist")
    return path


def save_figure(figure: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format=path.suffix.lower().lstrip("."))
    return path
