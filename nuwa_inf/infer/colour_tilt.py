"""Holding the input's colour at each height along the canvas: a feedback tilt of the code probabilities.

Measured on the held-out night scroll of benchmarks/bench_continuation.py (README, "Continuation
against the truth"): from 512 px out, the extension's lower sky (rows 416–928 px) comes out brighter
than the input's at the same height (mean luma 59 against the input's 52 and the truth's 50), and
its chroma sits ≈ 2 levels off the input's at every height, where the true continuation stays
within half a level. Nothing in the sampler sees a bias that builds up over many patches: each
patch reads only its neighbours. This prior does.

Before each wave, for each canvas token row r (within `REACH` rows of it):
    μ_r  the mean colour of the input's kept tokens (each code's colour, colour_prior.code_colours),
    g_r  the mean colour of the tokens generated so far (outside the input), n_r how many there are,
and every code k gets the logit
    − strength · n_r / (n_r + SETTLE) · (g_r − μ_r)ᵀ (Σ_r + RIDGE·I)⁻¹ (c_k − μ_r), within ±CAP
(Σ_r the covariance of the input's token colours near that height, `NORMALISE = "input"`, or
Σ_r + RIDGE·I replaced by SCALE²·I, "fixed"; colours in RGB, or Cb and Cr: `SPACE`),
the exponential tilt that moves the expected colour against the bias measured: codes on the far
side of μ_r from g_r gain, codes beyond g_r lose, and nothing changes where the generated rows keep
the input's mean. Rows the input does not reach get nothing.

Deterministic in the tokens of earlier waves (a wave's patches never see each other's), so per-patch
RNG, batch invariance and resume at a wave boundary stay exact.
"""
from __future__ import annotations

import numpy as np
import torch

from ..colour import ycbcr
from .code_prior import window_sums

REACH = 4        # token rows either side pooled into a row's means (64 px at 16 px a token)
SCALE = 0.1      # colour distance (RGB in [0, 1]) at which a bias of the same size moves a logit by 1
SETTLE = 256.0   # generated tokens near a row before its bias is read at half weight
# no code's logit moves further than this either way: the tilt is linear in a code's colour, so
# without a bound the codes farthest from the input's mean (black, white) take the largest pull, and
# at strength 1 a bright day's rows drew black blocks (README)
CAP = 1.5
# the colours compared: "rgb" (R, G, B at SCALE each: the option as measured on two seeds) or
# "chroma" (Cb and Cr only, at CHROMA_SCALE each: the palette held, the light left to the model;
# one seed: the sunset better, the snowy day worse, README)
SPACE = "rgb"
CHROMA_SCALE = 0.03
# how a bias turns into logits: "input" (× the inverse of the colour covariance of the input's tokens
# at that height, plus RIDGE: the exponential tilt that moves a distribution of that spread by
# `strength` × the bias, so busy rows (snow and ink) get a gentle pull and uniform ones (a night sky)
# a firm one; extend's default since 2026-12-07, measured on three seeds at 8192 px wide: README) or
# "fixed" (÷ SCALE², the same in every row: the first rule, which darkened a snowy day's ridges on
# one machine's samples)
NORMALISE = "input"
RIDGE = 0.03 ** 2


def _row_sums(values: np.ndarray, mask: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """values (rows, cols, channels), mask (rows, cols) → per row, over the rows within `reach`:
    (sum of the masked values (rows, channels), their count (rows,))."""
    sums = (values * mask[..., None]).sum(axis=1)                     # (rows, channels)
    counts = mask.sum(axis=1).astype(np.float64)                      # (rows,)
    rows = np.arange(len(counts))
    return window_sums(sums, rows, reach), window_sums(counts, rows, reach)


def colour_tilt(tokens: np.ndarray, known: tuple[int, int, int, int], colours: np.ndarray,
                strength: float, reach: int = REACH) -> torch.Tensor:
    """(canvas token rows, V) float32 logits: the tilt above, from `tokens` (rows, cols; −1 where not
    drawn yet), the input's kept token rectangle `known` (ty0, tx0, ty1, tx1) and the codes' colours
    (V, 3)."""
    drawn = tokens >= 0
    inside = np.zeros_like(drawn)
    ty0, tx0, ty1, tx1 = known
    inside[ty0:ty1, tx0:tx1] = True
    colours = _scaled(colours)                                         # (V, channels), SCALE = 1
    values = colours[np.where(drawn, tokens, 0)]                      # (rows, cols, channels)
    # the input's sums read only its columns (the rest of the mask is False there)
    input_values, input_mask = values[:, tx0:tx1], (drawn & inside)[:, tx0:tx1]
    input_sum, input_n = _row_sums(input_values, input_mask, reach)
    made_sum, made_n = _row_sums(values, drawn & ~inside, reach)
    reached = (input_n > 0) & (made_n > 0)
    safe = lambda n: np.maximum(n, 1)[:, None]                       # noqa: E731
    target, made = input_sum / safe(input_n), made_sum / safe(made_n)  # (rows, channels)
    weight = np.where(reached, made_n / (made_n + SETTLE), 0.0)      # (rows,)
    bias = (made - target) * weight[:, None]                          # (rows, channels)
    if NORMALISE == "input":
        bias = _whitened(bias, input_values, input_mask, target, input_n, reach)
    # −(g − μ)·(c_k − μ): the row's constant −(g − μ)·(−μ) is dropped (softmax ignores it) only after
    # the product, to keep the logits' size what the docstring says
    logits = -(bias @ colours.T - (bias * target).sum(1, keepdims=True))
    return torch.from_numpy(np.clip(strength * logits, -CAP, CAP).astype(np.float32))


def _whitened(bias: np.ndarray, values: np.ndarray, mask: np.ndarray, target: np.ndarray,
              count: np.ndarray, reach: int) -> np.ndarray:
    """bias (rows, channels) → Σ_r⁻¹ · bias per row, Σ_r the covariance (+ RIDGE, in SCALE units) of
    the masked values (rows, cols, channels) within `reach` rows: the tilt that moves a distribution
    with the input's spread at that height by the bias itself."""
    rows, cols, channels = values.shape
    outer = values[..., :, None] * values[..., None, :]               # (rows, cols, channels, channels)
    second, _ = _row_sums(outer.reshape(rows, cols, channels * channels), mask, reach)  # cols may be 0
    second = second.reshape(-1, channels, channels) / np.maximum(count, 1)[:, None, None]
    spread = second - target[:, :, None] * target[:, None, :]         # (rows, channels, channels)
    spread += np.eye(channels) * RIDGE / _unit() ** 2
    return np.linalg.solve(spread, bias[:, :, None])[:, :, 0]


def _unit() -> float:
    """The colour distance that `_scaled` makes 1."""
    return CHROMA_SCALE if SPACE == "chroma" else SCALE


def _scaled(colours: np.ndarray) -> np.ndarray:
    """(V, 3) RGB in [0, 1] → (V, channels) float64 in units of the scale (`SPACE`)."""
    picked = ycbcr(colours)[:, 1:] if SPACE == "chroma" else colours.astype(np.float64)
    return picked / _unit()
