"""Keep the best model by validation: early stopping for small fine-tuning sets.

A fine-tune on a handful of images over-fits within a few hundred steps: its held-out bits
rise while the training bits keep falling. With `keep_best`, the trainer measures before the
first step and at every validation, copies the weights that scored lowest to `OUT/best/`
(`best.json` says step and score), and at the end makes them the run's usable top-level model.
Training checkpoints stay the latest ones, so `--resume` continues the run as before.
With a patience of N validations, the run stops once N validations in a row have not beaten the
best: the steps after that would only be thrown away.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..atomic import write_json


class BestKeeper:
    def __init__(self, out: Path):
        self.dir = out / "best"
        self.out = out
        record = self.dir / "best.json"
        self.best = json.loads(record.read_text()) if record.is_file() else None

    def offer(self, step: int, val_bits: float, save_model) -> bool:
        """Keep these weights if they beat the best so far; `save_model(directory)` writes them."""
        if self.best is not None and val_bits >= self.best["val_bits"]:
            return False
        staging = self.out / "best.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        save_model(staging)
        write_json(staging / "best.json", {"step": step, "val_bits": val_bits})
        shutil.rmtree(self.dir, ignore_errors=True)
        staging.rename(self.dir)
        self.best = {"step": step, "val_bits": val_bits}
        return True

    def stale(self, step: int, patience_steps: int) -> bool:
        """True when the best is at least `patience_steps` steps behind `step`."""
        return self.best is not None and step - self.best["step"] >= patience_steps

    def promote(self) -> dict | None:
        """Make the kept weights the run's top-level model; returns best.json's record."""
        if self.best is None:
            return None
        for name in ("model.safetensors", "config.json"):
            shutil.copy2(self.dir / name, self.out / name)
        return self.best
