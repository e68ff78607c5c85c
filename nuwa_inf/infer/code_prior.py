"""A code prior from the input: at each height of the canvas, the codes the input uses near there.

Measured on held-out 8192×2048 scrolls (`bench_continuation.py` cases, centre 2048 px as the
input): 88–96 % of the tokens of the true continuation use a code that the input itself uses
within 8 token rows (128 px) of the same height, where the bundled model's extension used such
codes for only 72–81 % (night: a dark scroll of 150 distinct codes continued with 1600). The
codes it adds are the rogue ones: a dark block in a day sky, a pale speck in a night, tan
smeared into the water, which the neighbouring patches then copy.

So every code gets a logit bias: 0 where the input uses it within `reach` token rows of the row
being sampled, −`strength` elsewhere (canvas rows above or below the input read its nearest
rows). A soft penalty, not a mask: a code the model wants strongly still comes through. Unlike
the colour prior (colour_prior.py), which judged codes by their colour and so penalised the grey
ink codes that ridges are drawn with, this one keeps every code the input draws with at that
height, structure included.

Deterministic in the input's tokens (the input's kept token rectangle, the same on a resumed
run), so per-patch RNG, batch invariance and resume stay exact.
"""
from __future__ import annotations

import numpy as np
import torch

REACH = 8  # input token rows on each side of a canvas row whose codes are that row's own


def row_code_prior(known: np.ndarray, first_row: int, canvas_rows: int, vocab: int,
                   reach: int = REACH) -> torch.Tensor:
    """(canvas_rows, vocab) float32: 0 for the codes that `known` (h, w), the input's tokens
    whose first row is canvas token row `first_row`, uses within `reach` rows of each canvas
    row (rows outside the input's span read its nearest row), −1 for every other code."""
    h = known.shape[0]
    if h == 0 or known.shape[1] == 0:
        raise ValueError("the code prior needs the input's tokens")
    used = np.zeros((h, vocab), dtype=bool)                  # used[r, c]: code c occurs in input row r
    used[np.repeat(np.arange(h), known.shape[1]), known.reshape(-1)] = True
    # rows within reach, as a running window: cumulative counts per code over the input rows
    counts = np.concatenate([np.zeros((1, vocab), np.int32), np.cumsum(used, axis=0, dtype=np.int32)])
    inside = np.clip(np.arange(canvas_rows) - first_row, 0, h - 1)  # each canvas row's nearest input row
    lo, hi = np.clip(inside - reach, 0, h), np.clip(inside + reach + 1, 0, h)
    allowed = (counts[hi] - counts[lo]) > 0                   # (canvas_rows, vocab)
    return torch.from_numpy(np.where(allowed, 0.0, -1.0).astype(np.float32))


def patch_row_bias(prior: torch.Tensor | None, patches: list, patch_h: int) -> torch.Tensor | None:
    """(n, patch_h, V) the rows of a (canvas token rows, V) `prior` that each patch (t, row, col)
    spans (what `sampler.sample_guided` takes as `row_bias`), or None without a prior."""
    if prior is None:
        return None
    return torch.stack([prior[r * patch_h:(r + 1) * patch_h] for _, r, _ in patches])
