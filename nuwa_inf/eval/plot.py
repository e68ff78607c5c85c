"""The `nuwa-inf eval --plot FILE` figure: seam ratio, distance to the references and drift along x.

One panel per figure of `columns.ColumnProfile`, sharing the canvas x axis (px); the input
region (--exclude) is shaded; dashed lines mark each panel's yardstick (seam ratio 1.0 =
seamless and the whole canvas's ratio; the reference's own window floor). matplotlib is
optional: without it `plot_columns` warns once and returns None.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..plots import new_figure, save_figure
from .columns import ColumnProfile
from .seams import Box


def plot_columns(profile: ColumnProfile, path: str | os.PathLike, title: str, overall_seam: float | None = None,
                 exclude: Box | None = None) -> Path | None:
    panels = 3 if profile.distance is not None else 2
    figure = new_figure("column figure", 12, 2.4 * panels)
    if figure is None:
        return None
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    centre = profile.x0 + profile.window / 2  # plot each window at its middle

    ax = axes[0]
    ax.plot(centre, profile.seam, ".-", color="tab:blue", linewidth=1, markersize=3, label="per window")
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":", label="1.0 = seamless")
    if overall_seam is not None and math.isfinite(overall_seam):
        ax.axhline(overall_seam, color="tab:blue", linewidth=0.8, linestyle="--", label=f"canvas {overall_seam:.3f}")
    ax.set_ylabel("seam ratio")
    ax.legend(loc="best", fontsize="small")
    ax.set_title(f"{title}: windows of {profile.window} px", fontsize="medium", loc="left")

    if profile.distance is not None:
        ax = axes[1]
        ax.plot(centre, profile.distance, ".-", color="tab:red", linewidth=1, markersize=3,
                label="window vs references")
        if math.isfinite(profile.window_floor):
            ax.axhline(profile.window_floor, color="tab:red", linewidth=0.8, linestyle="--",
                       label=f"real window {profile.window_floor:.2f}")
        ax.set_ylabel("block distance d²")
        ax.legend(loc="best", fontsize="small")

    ax = axes[-1]
    ax.plot(centre, profile.drift, ".-", color="tab:green", linewidth=1, markersize=3)
    ax.set_ylabel("d² to first third")
    ax.set_xlabel("canvas x (px)")
    right = float(profile.x0[-1] + profile.window) if profile.x0.size else 1.0
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, right)
        if exclude is not None:
            ax.axvspan(exclude[0], exclude[2], color="grey", alpha=0.2, linewidth=0)
        _start_at_zero(ax)
    if exclude is not None:
        axes[0].text(exclude[0], 1.0, " input", transform=axes[0].get_xaxis_transform(), va="top",
                     fontsize="small", color="dimgrey")
    return save_figure(figure, path)


def _start_at_zero(ax) -> None:
    """Distances and ratios are >= 0: show 0 so that small ups and downs do not look large."""
    lo, hi = ax.get_ylim()
    if np.isfinite(hi) and lo > 0:
        ax.set_ylim(0, hi)
