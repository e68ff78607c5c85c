"""The end of a training step, shared by both trainers: log, checkpoint on schedule (with a
curves plot beside the log, train/curves.py), time budget."""
from __future__ import annotations

import json
import time
from typing import Callable, TextIO

from . import distributed as dist


def finish_step(done: int, total: int, save_every: int, record: dict, log: TextIO | None,
                save: Callable[[int], None], time_budget: float | None, started: float, device, bar,
                stop_reason: str | None = None) -> bool:
    """Write the step's record, save every `save_every` steps, at the end and when the time
    budget (agreed across ranks) runs out or the caller gives a `stop_reason` (the same on every
    rank). Returns True when the run must stop now."""
    if log is not None:
        log.write(json.dumps(record) + "\n")
        log.flush()
    out_of_time = dist.any_rank(time_budget is not None and time.monotonic() - started > time_budget, device)
    if done % save_every == 0 or done == total or out_of_time or stop_reason:
        save(done)
        if log is not None and getattr(log, "name", None):
            from pathlib import Path

            from .curves import plot_curves
            plot_curves(log.name, Path(log.name).with_name("curves.png"))
    if out_of_time:
        bar.write(f"time budget reached at step {done}")
    elif stop_reason:
        bar.write(stop_reason)
    return out_of_time or stop_reason is not None
