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

The canvas's top and bottom token rows are an exception: the encoder pads there (in training as
for the input), so its codes in those rows are edge codes of their own, which decode to the
sky's colour only as the first (last) row. Where the input reaches those rows, only its codes of
that very row are allowed there: with the reach of other rows, the model put the input's
second-row edge code into the first row of a night extension, which decodes as a blue glow
along the top.

Graded by colour (`colours` given): an unused code whose colour (colour_prior.code_colours) lies
far from every colour the input's codes have within reach pays up to `far_extra` more, from
NEAR to FAR in RGB distance: a dark bar in a pale sky pays −1 − far_extra, while a code of a
near shade (the truth's purple-grey beside the input's orange) keeps the plain −1.

Deterministic in the input's tokens (the input's kept token rectangle, the same on a resumed
run), so per-patch RNG, batch invariance and resume stay exact.
"""
from __future__ import annotations

import numpy as np
import torch

REACH = 8  # input token rows on each side of a canvas row whose codes are that row's own
NEAR = 0.10  # RGB distance (in [0, 1]) to the row's nearest used colour below which no extra applies
FAR = 0.30   # ... and from which the whole extra applies (linear between)


def row_code_prior(known: np.ndarray, first_row: int, canvas_rows: int, vocab: int,
                   reach: int = REACH, colours: np.ndarray | None = None, far_extra: float = 0.0,
                   edge_rows: bool = True) -> torch.Tensor:
    """(canvas_rows, vocab) float32: 0 for the codes that `known` (h, w), the input's tokens
    whose first row is canvas token row `first_row`, uses within `reach` rows of each canvas
    row (rows outside the input's span read its nearest row), −1 for every other code, down to
    −1 − `far_extra` for one whose colour (`colours`, (vocab, 3)) is far from all the used ones;
    with `edge_rows`, the canvas's first and last rows, where the input spans them, read only
    the input's own first and last rows."""
    h = known.shape[0]
    if h == 0 or known.shape[1] == 0:
        raise ValueError("the code prior needs the input's tokens")
    inside = np.clip(np.arange(canvas_rows) - first_row, 0, h - 1)  # each canvas row's nearest input row
    used = codes_by_row(known, vocab)                                    # (h, vocab)
    allowed = codes_within_reach(used, inside, reach)                    # (canvas_rows, vocab)
    # the canvas's top and bottom token rows are the encoder's edge rows (it pads there, in training
    # as for the input): where the input reaches them, only its own codes of that row are that row's
    if edge_rows and first_row == 0:
        allowed[0] = used[0]
    if edge_rows and first_row + h == canvas_rows:
        allowed[-1] = used[-1]
    prior = np.where(allowed, 0.0, -1.0).astype(np.float32)
    if colours is not None and far_extra > 0:
        prior -= far_extra * colour_farness(allowed, colours)
    return torch.from_numpy(prior)


def codes_by_row(tokens: np.ndarray, vocab: int) -> np.ndarray:
    """(h, vocab) bool: whether code c occurs in row r of `tokens` (h, w); negative entries
    (not drawn yet) are skipped."""
    h, w = tokens.shape
    rows, codes = np.repeat(np.arange(h), w), tokens.reshape(-1)
    drawn = codes >= 0
    used = np.zeros((h, vocab), dtype=bool)
    used[rows[drawn], codes[drawn]] = True
    return used


def codes_within_reach(used: np.ndarray, rows: np.ndarray, reach: int) -> np.ndarray:
    """(len(rows), vocab) bool: the codes `used` (h, vocab) within `reach` rows of each of `rows`
    (row indices into `used`)."""
    return window_sums(used.astype(np.int32), rows, reach) > 0


def window_sums(per_row: np.ndarray, rows: np.ndarray, reach: int) -> np.ndarray:
    """(len(rows), ...) the sums of `per_row` (h, ...) over the rows within `reach` of each of
    `rows` (row indices into `per_row`), as a running window of cumulative sums."""
    h = per_row.shape[0]
    totals = np.concatenate([np.zeros((1, *per_row.shape[1:]), per_row.dtype), np.cumsum(per_row, axis=0)])
    lo, hi = np.clip(rows - reach, 0, h), np.clip(rows + reach + 1, 0, h)
    return totals[hi] - totals[lo]


def colour_farness(allowed: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(rows, V) in [0, 1]: how far each code's colour lies from the nearest colour of the codes
    `allowed` (rows, V) in that row: 0 within NEAR, 1 from FAR; 0 where a code is allowed, and 0
    for every code of a row that allows none (no palette there to be far from)."""
    palette = torch.from_numpy(np.asarray(colours, dtype=np.float32))          # (V, 3)
    farness = np.zeros(allowed.shape, dtype=np.float32)
    windows, row_of = np.unique(allowed, axis=0, return_inverse=True)           # rows share few windows
    for w, used in enumerate(windows):
        if not used.any():
            continue
        nearest = torch.cdist(palette, palette[torch.from_numpy(used)]).min(dim=1).values.numpy()  # (V,)
        farness[row_of.reshape(-1) == w] = np.clip((nearest - NEAR) / (FAR - NEAR), 0.0, 1.0)
    return np.where(allowed, 0.0, farness)


def patch_row_bias(prior: torch.Tensor | None, patches: list, patch_h: int) -> torch.Tensor | None:
    """(n, patch_h, V) the rows of a (canvas token rows, V) `prior` that each patch (t, row, col)
    spans (what `sampler.sample_guided` takes as `row_bias`), or None without a prior."""
    if prior is None:
        return None
    return torch.stack([prior[r * patch_h:(r + 1) * patch_h] for _, r, _ in patches])
