"""A texture prior from the input: the codes the input puts where its neighbourhood looks like this one.

The model alone does not carry the input's structure across its edge: its extension of a lake
is grey strokes, its foothills lose their green (README, "Continuation against the truth"). The
input itself says what follows what at each height. So while a token is sampled, its known
neighbours on the canvas (of the 8 around it at `RADIUS` 1, those drawn: earlier tokens of its
own patch, finished patches around it) are compared with the neighbourhood of every input token
within `rows` token rows of the same height; each such input token votes for its own code with
weight exp(−distance / τ), and the votes, normalised, are mixed into the model's probabilities:

    p = (1 − λ) · p_model + λ · p_match                 (kNN-LM's interpolation)

with λ = L · Σ p_match², the votes' concentration (`SHARE`): where the input's like neighbourhoods
agree on one code (a smooth sky, still water, a horizon) the votes take nearly L, where they are
split (a ridge may start anywhere) the model keeps its say.

Distances are between codes' FSQ digits (each code's level on each latent channel, scaled to
[−1, 1]): near codes of a smooth sky are near, a tree's code is far from the water's. An input
neighbour outside the input counts as `MISSING`. A token with no known neighbour gets the codes
of its height, counted. Far rows cost `ROW_COST` per row, so the layout (sky, ridges, horizon,
water) stays at its height.

Deterministic in the canvas's tokens (earlier waves') and the patch's own earlier tokens, so
per-patch RNG, batch invariance and resume stay exact.

Measured (README, "Continuation against the truth"): at a flat share the horizon, the water's
level and a clean sky run on along the whole strip, but the votes favour the input's commonest
codes at each height, so ridges lose mass and the carry figure got worse; scaled by their
concentration they keep the horizon and water and leave most ridges their peaks (not where the
input's own ridges are flat inside: a snowy day's thin to spikes). Extend's default without a
prompt (`--neighbour-match`, infer/cli.py).
"""
from __future__ import annotations

import numpy as np
import torch

RADIUS = 1        # the neighbourhood compared: the (2·RADIUS + 1)² tokens around, less the token itself
ROWS = 2          # input token rows on each side of a token's height whose tokens vote
TAU = 0.05        # distance scale of the votes' weights (squared digit distance, mean over neighbours)
MISSING = 1.0     # distance of a neighbour the input lacks (outside it)
ROW_COST = 0.02   # distance added per row between a voter and the token's height
SHARE = "confidence"  # "flat": the votes take the share L of every token; "confidence": L · Σ votes², their
                      # concentration — near L where the input's like neighbourhoods agree on one code
                      # (a smooth sky, still water), near 0 where they are split (a ridge may start anywhere)


def neighbourhood(radius: int) -> tuple[tuple[int, int], ...]:
    """The (dy, dx) offsets of a token's neighbours within `radius`, row by row."""
    return tuple((dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1) if dy or dx)


def code_digits(quantizer) -> torch.Tensor:
    """(codebook size, dims) float32: each code's level on each of the FSQ `quantizer`'s dims,
    scaled to [−1, 1]."""
    codes = torch.arange(quantizer.codebook_size).view(1, -1, 1)              # (1, V, 1) as (B, h, w)
    levels = quantizer.digits(codes)[0, :, :, 0].T.float()                    # (V, dims)
    return 2.0 * levels / (torch.tensor(quantizer.levels, dtype=torch.float32) - 1) - 1.0


class InputNeighbours:
    """The input's kept tokens `known` (h, w), whose first row is canvas token row `first_row`,
    with the digits of each token's neighbours (`neighbourhood(radius)`), ready to vote."""

    def __init__(self, known: np.ndarray, first_row: int, digits: torch.Tensor, rows: int = ROWS,
                 tau: float = TAU, radius: int | None = None):
        h, w = known.shape
        if h == 0 or w == 0:
            raise ValueError("the neighbour match needs the input's tokens")
        self.h, self.w, self.first_row, self.rows, self.tau = h, w, first_row, rows, tau
        self.digits = digits
        self.radius = RADIUS if radius is None else radius
        self.offsets = neighbourhood(self.radius)
        self.codes = torch.from_numpy(known.astype(np.int64)).reshape(-1)           # (h·w,)
        k = self.radius
        padded = np.pad(known, k, constant_values=-1)
        around = np.stack([padded[k + dy:k + dy + h, k + dx:k + dx + w] for dy, dx in self.offsets], -1)  # (h, w, N)
        around = torch.from_numpy(around.astype(np.int64)).reshape(h * w, len(self.offsets))
        self.present = around >= 0                                                     # (h·w, N)
        self.around = digits[around.clamp_min(0)]                                      # (h·w, N, D)

    def window(self, canvas_row: int) -> tuple[int, int]:
        """(first, last + 1) input rows that vote for a token at `canvas_row`: 2·rows + 1 of them
        (fewer in a thinner input), centred on its nearest input row, shifted to stay inside."""
        span = min(2 * self.rows + 1, self.h)
        centre = int(np.clip(canvas_row - self.first_row, 0, self.h - 1))
        first = int(np.clip(centre - self.rows, 0, self.h - span))
        return first, first + span

    def voters(self, canvas_rows: list[int]) -> dict:
        """The input tokens that vote for tokens at `canvas_rows` (n of them), C = (2·rows + 1)·w
        each: their `features` (n, C, N·D + 3N) — their neighbours' digits (zero where absent),
        which are present, the digits' squared lengths, which are absent — so that one batched
        product with a token's own (`votes`) gives the summed squared distances; their `codes`
        (n, C) and the rows' `row_cost` (n, C). The same for every token of a patch row: made once a row."""
        windows = [self.window(r) for r in canvas_rows]
        index = torch.stack([torch.arange(a * self.w, b * self.w) for a, b in windows])    # (n, C)
        present = self.present[index].float()                                              # (n, C, N)
        theirs = self.around[index] * present[..., None]                                   # (n, C, N, D)
        features = torch.cat([theirs.flatten(2), present, theirs.square().sum(-1), 1.0 - present], -1)
        centres = torch.tensor([int(np.clip(r - self.first_row, 0, self.h - 1)) for r in canvas_rows])
        return {"features": features, "codes": self.codes[index],
                "row_cost": ROW_COST * (index // self.w - centres[:, None]).abs()}

    def votes(self, neighbours: torch.Tensor, voters: dict, vocab: int) -> torch.Tensor:
        """(n, vocab) probabilities: the input's votes for tokens whose neighbours' codes (at
        `self.offsets`) are `neighbours` (n, N), −1 where not drawn, from `voters` (`voters()`).

        d = the mean over the seen neighbours of |mine − theirs|² (MISSING where the voter lacks
        that neighbour): −2·mine·theirs + |mine|²·present + |theirs|² + MISSING·absent, each summed
        over the seen ones, in one batched product with the voters' features."""
        seen = (neighbours >= 0).float()                                                   # (n, N)
        mine = self.digits[neighbours.clamp_min(0)] * seen[..., None]                     # (n, N, D)
        mine_terms = torch.cat([-2.0 * mine.flatten(1), mine.square().sum(-1), seen, MISSING * seen], -1)
        apart = torch.bmm(voters["features"], mine_terms[..., None])[..., 0]               # (n, C)
        distance = apart.clamp_min(0.0) / seen.sum(-1, keepdim=True).clamp_min(1.0) + voters["row_cost"]
        weights = torch.softmax(-distance.double() / self.tau, dim=-1)                    # (n, C)
        return torch.zeros(len(seen), vocab, dtype=torch.float64).scatter_add_(1, voters["codes"], weights)


class PatchNeighbours:
    """The neighbours of each token of a chunk of patches while they are sampled: the canvas
    around each patch (a frame `radius` tokens wide, finished patches' tokens, −1 where not drawn) and
    the patch's own tokens drawn so far."""

    def __init__(self, source: InputNeighbours, canvas: np.ndarray, patches: list, patch_h: int, patch_w: int,
                 vocab: int):
        self.source, self.patch_h, self.patch_w, self.vocab = source, patch_h, patch_w, vocab
        k = self.k = source.radius
        padded = np.pad(canvas, k, constant_values=-1)
        frames = []
        for _, r, c in patches:
            y, x = r * patch_h, c * patch_w                       # the patch's corner = its frame's, padded
            frame = padded[y: y + patch_h + 2 * k, x: x + patch_w + 2 * k].copy()
            frame[k:-k, k:-k] = -1                                 # the patch itself: its own tokens, as drawn
            frames.append(frame)
        self.frames = torch.from_numpy(np.stack(frames).astype(np.int64))   # (n, ph + 2k, pw + 2k)
        self.first_rows = [r * patch_h for _, r, _ in patches]
        self.row_voters = (-1, None)                               # (patch row, its voters), made per row

    def __call__(self, t: int, drawn: torch.Tensor) -> torch.Tensor:
        """(n, vocab) the input's votes for token t of each patch, given its tokens `drawn` (n, ≥ t)."""
        row = t // self.patch_w
        if self.row_voters[0] != row:
            self.row_voters = (row, self.source.voters([first + row for first in self.first_rows]))
        return self.source.votes(self.neighbours(t, drawn), self.row_voters[1], self.vocab)

    def shares(self, votes: torch.Tensor, weight: float) -> torch.Tensor:
        """(n, 1) the share of `votes` (n, vocab) in each token's probabilities at `--neighbour-match`
        `weight`: see `SHARE`."""
        if SHARE == "flat":
            return torch.full((len(votes), 1), weight, dtype=votes.dtype)
        return weight * votes.square().sum(-1, keepdim=True)

    def neighbours(self, t: int, drawn: torch.Tensor) -> torch.Tensor:
        """(n, N) the codes around token t of each patch (−1: not drawn), its own `drawn` (n, ≥ t) in."""
        row, col = divmod(t, self.patch_w)
        k = self.k
        frames = self.frames.clone()
        inner = frames[:, k:-k, k:-k].reshape(len(frames), -1)     # (n, P) a copy: reshape of a slice
        inner[:, :t] = drawn[:, :t]
        frames[:, k:-k, k:-k] = inner.reshape(len(frames), self.patch_h, self.patch_w)
        return torch.stack([frames[:, row + k + dy, col + k + dx] for dy, dx in self.source.offsets], -1)
