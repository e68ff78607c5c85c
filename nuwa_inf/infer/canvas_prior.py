"""A colour prior from the canvas itself, for jobs without an input (text-to-image, frame 0 of
text-to-video): at each height, codes far in colour from everything already drawn near there.

A landscape's palette runs in horizontal bands (sky, ridges, water), and a prompt-drawn canvas
keeps them while its first patches agree. But one patch at temperature 1 can switch the scene:
a pale day block in a night sky, which the patches after it continue, so the canvas splits in
two at a patch border (text-to-video's night caption, README "Video"). The input's code prior
(code_prior.py) cannot help, there being no input; this prior reads the canvas instead.

Before each wave, for each canvas token row, the codes that the patches finished so far use
within `REACH` rows are that height's palette, and every code gets −strength × its colour's
farness from that palette (code_prior.colour_farness: 0 within NEAR in RGB, 1 from FAR). Near
shades and every code the canvas already holds cost nothing; rows with nothing drawn near them
yet cost nothing. So the first patches draw freely, and later ones may bring a far colour only
where the model wants it strongly (a moon).

Deterministic in the tokens of earlier waves (a wave's patches never see each other's), so
per-patch RNG, batch invariance and resume at a wave boundary stay exact.
"""
from __future__ import annotations

import numpy as np
import torch

from .code_prior import REACH, codes_by_row, codes_within_reach, colour_farness


def canvas_colour_prior(tokens: np.ndarray, colours: np.ndarray, reach: int = REACH) -> torch.Tensor:
    """(canvas token rows, V) float32 in [−1, 0]: −(farness of each code's colour from the codes
    `tokens` (rows, cols; −1 where not drawn yet) holds within `reach` rows); 0 on rows with
    nothing drawn within reach."""
    rows = tokens.shape[0]
    allowed = codes_within_reach(codes_by_row(tokens, len(colours)), np.arange(rows), reach)  # (rows, V)
    return torch.from_numpy(-colour_farness(allowed, colours))
