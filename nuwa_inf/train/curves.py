"""Training curves of a long run from its `log.jsonl`: `plot_curves(log, "curves.png")`.

Both trainers append one JSON record per step to OUT/log.jsonl:
    transformer: step, loss, bits, lr, grad_norm, and val_bits every val_every steps
    tokenizer:   step, loss, psnr, usage, perplexity, d_loss, lr
The figure has three panels sharing the step axis:
    loss        every step (faint) and a moving average (window ~1 % of the run)
    validation  transformer: train bits (moving average) and val_bits;
                tokenizer: PSNR (moving average); left out when the log has neither
    lr          the schedule
Torn lines (a killed run) are skipped; a step logged twice (a resumed run) keeps its last record.
matplotlib is optional (`nuwa-inf[plots]`): without it there is one warning and no figure.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..plots import check_plot_path, new_figure, save_figure

MAX_POINTS = 4000  # raw points drawn per line; longer runs are thinned (the averages use every step)


def read_log(path: str | os.PathLike) -> list[dict]:
    """The log's records in step order, one per step (the last one written wins)."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise UserError(f"{path}: no such training log") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a log.jsonl file") from None
    by_step: dict[int, dict] = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
            by_step[int(record["step"])] = record
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a torn last line or something that is not a record
    return [by_step[step] for step in sorted(by_step)]


def series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the records that carry a finite number under `key`."""
    pairs = [(r["step"], float(r[key])) for r in records
             if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*pairs, strict=True)
    return np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` values (shorter at the start), same length as `values`."""
    if window <= 1 or values.size == 0:
        return values
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(0, ends - window)
    return (cumsum[ends] - cumsum[starts]) / (ends - starts)


def plot_curves(log_jsonl_path: str | os.PathLike, out_png: str | os.PathLike) -> Path | None:
    """Draw the loss / validation / lr panels of a training log into `out_png`; its path, or None
    when matplotlib is missing or the log holds no record (one warning on stderr)."""
    out = check_plot_path(out_png, "plot")
    records = read_log(log_jsonl_path)
    if not records:
        import sys

        print(f"warning: {log_jsonl_path} holds no training records; no curves drawn", file=sys.stderr)
        return None
    loss_steps, loss = series(records, "loss")
    val_steps, val_bits = series(records, "val_bits")
    bits_steps, bits = series(records, "bits")
    psnr_steps, psnr = series(records, "psnr")
    lr_steps, lr = series(records, "lr")
    has_validation = val_bits.size > 0 or psnr.size > 0
    panels = 2 + int(has_validation)
    figure = new_figure("training curves", 10, 2.6 * panels)
    if figure is None:
        return None
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    window = max(1, len(records) // 100)

    ax = axes[0]
    if loss.size:
        thin = max(1, loss.size // MAX_POINTS)
        ax.plot(loss_steps[::thin], loss[::thin], color="tab:blue", alpha=0.25, linewidth=0.8, label="loss")
        ax.plot(loss_steps, moving_average(loss, window), color="tab:blue", linewidth=1.6,
                label=f"mean of {window} steps" if window > 1 else "loss")
        if loss.min() > 0 and loss.max() / loss.min() > 30:
            ax.set_yscale("log")  # early losses dwarf the rest of a long run
    ax.set_ylabel("training loss")
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(f"{Path(log_jsonl_path)}: {len(records)} steps", fontsize="medium", loc="left")

    if has_validation:
        ax = axes[1]
        if val_bits.size:
            if bits.size:
                ax.plot(bits_steps, moving_average(bits, window), color="tab:blue", linewidth=1.2,
                        label="train bits/token (mean)")
            ax.plot(val_steps, val_bits, "o-", color="tab:red", markersize=3, linewidth=1.2, label="val bits/token")
            for key, colour, label in (("val_bits_no_memory", "tab:gray", "val, memory left out"),
                                       ("val_bits_no_text", "tab:green", "val, caption left out")):
                steps, values = series(records, key)
                if values.size:
                    ax.plot(steps, values, "o--", color=colour, markersize=2, linewidth=1.0, label=label)
            best = int(np.argmin(val_bits))
            ax.annotate(f"best {val_bits[best]:.3f} @ {int(val_steps[best])}", (val_steps[best], val_bits[best]),
                        textcoords="offset points", xytext=(4, 8), fontsize="small", color="tab:red")
            ax.set_ylabel("bits per token")
        else:
            thin = max(1, psnr.size // MAX_POINTS)
            ax.plot(psnr_steps[::thin], psnr[::thin], color="tab:green", alpha=0.25, linewidth=0.8, label="PSNR")
            ax.plot(psnr_steps, moving_average(psnr, window), color="tab:green", linewidth=1.6,
                    label="PSNR (mean)")
            ax.set_ylabel("PSNR (dB)")
        ax.legend(loc="best", fontsize="small")

    ax = axes[-1]
    if lr.size:
        ax.plot(lr_steps, lr, color="tab:purple", linewidth=1.2)
    ax.set_ylabel("learning rate")
    ax.set_xlabel("step")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return save_figure(figure, out)
