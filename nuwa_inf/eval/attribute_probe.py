"""Attribute probe: does an image show the scene attributes a prompt asked for?

A procedural scroll's attributes (palette, time of day, snow, water, mist, trees) are known,
so a classifier trained on real procedural images can read them back from any image of the
domain, a generated one included. The probe is deliberately simple: what it reads is plain
colour, layout and coarse texture, what a viewer would also look at:

    features   per 256-px-wide column stripe, the image's height split into `BANDS` = 8 row
               bands, each giving mean and std of Y, Cb, Cr (BT.601, 8-bit levels) (48);
               a coarse colour histogram, 8 bins each of Y, Cb, Cr over the whole image,
               square-rooted shares (24); the log power of luma in 5 octave bands of spatial
               frequency, 1–32 cycles per 256 px, per 256×256 block (5). Stripe and block
               values are averaged, so any width (and any height, bands being fractions of
               it) gives the same 77 numbers.
    classifier one multinomial logistic regression per attribute on the standardised features
               (L2 penalty picked by 5-fold cross-validation on the training images), fitted in
               float64 with L-BFGS.
    training   real images and a Gaussian-blurred copy of each (`BLUR_PX` = 3 px radius per 512 px
               of height). Generated images come through a tokenizer's decoder, which blurs: on
               the bundled tokenizer's round trip of 48 held-out scrolls, training without the
               copies read snow 0.88 and water 0.79 of the time, with them 0.96 and 0.90 (time
               1.0 both ways, palette 0.85-0.88: a colour shift, not blur; a saturation jitter
               made it worse, 0.71-0.73). Real held-out accuracy is unchanged (≥ 0.96).

Trained only on real images, its accuracy on held-out real images is the ceiling any model's
images can reach (at 1024×512, 300 training scrolls: palette 1.00, time 1.00, snow 1.00, water
0.97; mist 0.63 and trees 0.45, chance 0.5 and 0.33, are too weak to use); a probe trained on shuffled labels is at
chance (a test pins both).

    >>> probe = AttributeProbe.fit(features, attrs)        # features (n, 77), attrs: list of dicts
    >>> probe.accuracy(test_features, test_attrs)          # {'palette': 1.0, 'time': 1.0, 'snow': 1.0, 'water': 0.97}
    >>> probe.predict(image_features(image))               # {'palette': 'ink', 'time': 'night', ...}
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..colour import channel_planes
from ..data.procedural import PALETTES, TIMES, TREES, WATERS, full_attributes

ATTRIBUTES: dict[str, tuple] = {"palette": PALETTES, "time": TIMES, "snow": (False, True), "water": WATERS,
                                "mist": (False, True), "trees": TREES}
FEATURE_VERSION = 2          # bump when the features change: cached feature sets are keyed by it
STRIPE = 256                 # px: column stripes of the band statistics, blocks of the spectrum
BANDS = 8                    # row bands over the image height
HIST_BINS = 8
HIST_RANGE = {"Y": (0.0, 256.0), "Cb": (-64.0, 64.0), "Cr": (-64.0, 64.0)}  # chroma beyond ±64 falls in the end bins
OCTAVES = (1, 2, 4, 8, 16, 32)  # cycles per 256 px: edges of the spectrum's 5 bands
BLUR_PX = 3.0                # Gaussian radius per 512 px of height of the blurred training copies
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FEATURE_NAMES = ([f"{stat}_{ch}_band{b}" for b in range(BANDS) for stat in ("mean", "std") for ch in ("Y", "Cb", "Cr")]
                 + [f"hist_{ch}_{k}" for ch in ("Y", "Cb", "Cr") for k in range(HIST_BINS)]
                 + [f"logpow_{lo}-{hi}" for lo, hi in zip(OCTAVES[:-1], OCTAVES[1:], strict=True)])


# ---------------------------------------------------------------- features


def _planes(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 → (3, h, w) float32 Y, Cb, Cr (chroma centred on 0)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if image.shape[0] < BANDS or image.shape[1] < 1:
        raise ValueError(f"an image of {image.shape[1]}x{image.shape[0]} is too small to probe")
    r, g, b = (image[..., c].astype(np.float32) for c in range(3))
    return np.stack(channel_planes(r, g, b))


def _band_stats(planes: np.ndarray) -> np.ndarray:
    """(48,) mean and std of Y, Cb, Cr per row band, averaged over 256-px column stripes."""
    _, height, width = planes.shape
    band_h = height // BANDS
    rows = planes[:, : band_h * BANDS]
    out = []
    for x in range(0, max(1, width - STRIPE // 2), STRIPE):  # a last stripe under half a stripe wide is left out
        stripe = rows[:, :, x:x + STRIPE].reshape(3, BANDS, -1).astype(np.float64)  # (3, bands, band_h·w)
        out.append(np.concatenate([stripe.mean(axis=2), stripe.std(axis=2)]).T)       # (bands, 6)
    return np.mean(out, axis=0).reshape(-1)  # (bands · [mean Y Cb Cr, std Y Cb Cr])


def _histogram(planes: np.ndarray) -> np.ndarray:
    """(24,) √(share of pixels) in 8 bins of each of Y, Cb, Cr."""
    out = []
    for plane, (lo, hi) in zip(planes, HIST_RANGE.values(), strict=True):
        index = np.clip(((plane - lo) * (HIST_BINS / (hi - lo))).astype(np.int64), 0, HIST_BINS - 1)
        out.append(np.sqrt(np.bincount(index.ravel(), minlength=HIST_BINS) / index.size))
    return np.concatenate(out)


def _spectrum(luma: np.ndarray) -> np.ndarray:
    """(5,) log mean power of luma per octave band of spatial frequency, averaged over square blocks."""
    height, width = luma.shape
    size = min(STRIPE, height, width)
    freq = np.fft.fftfreq(size) * STRIPE                       # cycles per 256 px
    radius = np.hypot(freq[:, None], freq[None, :])
    bands = [(radius >= lo) & (radius < hi) for lo, hi in zip(OCTAVES[:-1], OCTAVES[1:], strict=True)]
    out = []
    for y in range(0, height - size + 1, size):
        for x in range(0, width - size + 1, size):
            block = luma[y:y + size, x:x + size].astype(np.float64)
            power = np.abs(np.fft.fft2(block - block.mean())) ** 2 / size ** 4  # levels² per coefficient
            out.append([np.log(power[band].mean() + 1e-6) if band.any() else 0.0 for band in bands])
    return np.mean(out, axis=0)


def image_features(image: np.ndarray) -> np.ndarray:
    """(77,) float64 probe features of an (H, W, 3) uint8 image (module docstring); names in FEATURE_NAMES."""
    planes = _planes(np.asarray(image))
    return np.concatenate([_band_stats(planes), _histogram(planes), _spectrum(planes[0])])


def region_features(image: np.ndarray, x0: int, x1: int) -> np.ndarray:
    """`image_features` of the columns [x0, x1), full height."""
    return image_features(np.asarray(image)[:, x0:x1])


def blurred(image: np.ndarray) -> np.ndarray:
    """`image` under a Gaussian blur of BLUR_PX per 512 px of its height: the training augmentation."""
    from PIL import Image, ImageFilter

    radius = BLUR_PX * image.shape[0] / 512
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).filter(ImageFilter.GaussianBlur(radius)))


def training_features(image: np.ndarray) -> np.ndarray:
    """(2, 77): the features of a real training image and of its blurred copy."""
    return np.stack([image_features(image), image_features(blurred(image))])


# ---------------------------------------------------------------- attributes


def uniform_attributes(seed: int) -> dict:
    """Scene attributes drawn uniformly, each on its own (unlike `sample_attributes`, whose day is
    half of all scrolls and snow a quarter): chance is 1 / (number of values) for every attribute."""
    rng = np.random.default_rng([int(seed) % (1 << 63), 0x9B0E])
    return full_attributes(seed, {name: values[int(rng.integers(len(values)))] for name, values in ATTRIBUTES.items()})


def encode(attrs: Sequence[dict], name: str) -> np.ndarray:
    """(n,) int64 index of each dict's `name` value in ATTRIBUTES[name]."""
    values = ATTRIBUTES[name]
    return np.array([values.index(a[name]) for a in attrs], dtype=np.int64)


# ---------------------------------------------------------------- logistic regression


def fit_logistic(x: np.ndarray, y: np.ndarray, classes: int, l2: float, steps: int = 200) -> np.ndarray:
    """Multinomial logistic regression: (features + 1, classes) float64 weights, the last row the bias.

    Minimises mean cross-entropy + l2/2 · |W|² (bias unpenalised) with L-BFGS; `x` should be standardised.
    """
    import torch

    xt = torch.from_numpy(np.asarray(x, np.float64))
    yt = torch.from_numpy(np.asarray(y, np.int64))
    w = torch.zeros(xt.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return torch.cat([w, b[None]]).detach().numpy()


def logits(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float64) @ weights[:-1] + weights[-1]


def cross_validated_l2(x: np.ndarray, y: np.ndarray, classes: int, folds: int = 5, seed: int = 0,
                       grid: Sequence[float] = L2_GRID, groups: np.ndarray | None = None
                       ) -> tuple[float, dict[float, float]]:
    """The L2 penalty of `grid` with the best mean held-out-fold accuracy (ties: the larger), and all of them.

    `groups` (n,): rows of one group (an image and its blurred copy) always fall in the same fold.
    """
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    unique, group_index = np.unique(groups, return_inverse=True)
    fold = (np.random.default_rng(seed).permutation(len(unique)) % folds)[group_index]
    scores = {}
    for l2 in grid:
        correct = 0
        for k in range(folds):
            train, test = fold != k, fold == k
            weights = fit_logistic(x[train], y[train], classes, l2)
            correct += int((logits(x[test], weights).argmax(axis=1) == y[test]).sum())
        scores[l2] = correct / len(y)
    best = max(grid, key=lambda l2: (scores[l2], l2))
    return best, scores


# ---------------------------------------------------------------- the probe


@dataclass
class AttributeProbe:
    """Standardisation plus one logistic regression per attribute."""

    mean: np.ndarray                 # (F,) training feature means
    scale: np.ndarray                # (F,) training feature stds (floored)
    weights: dict[str, np.ndarray]   # attribute → (F + 1, classes)
    l2: dict[str, float]             # the penalty cross-validation chose
    cv_accuracy: dict[str, float]    # its cross-validated accuracy on the training images

    @classmethod
    def fit(cls, features: np.ndarray, attrs: Sequence[dict], names: Sequence[str] = tuple(ATTRIBUTES),
            seed: int = 0, grid: Sequence[float] = L2_GRID, groups: np.ndarray | None = None) -> "AttributeProbe":
        """Standardise `features` (n, F), then per attribute pick the L2 penalty of `grid` by 5-fold
        cross-validation (folds by `groups`, see `cross_validated_l2`) and fit on all n rows."""
        features = np.asarray(features, np.float64)
        mean = features.mean(axis=0)
        scale = np.maximum(features.std(axis=0), 1e-6)
        x = (features - mean) / scale
        weights, l2s, cv = {}, {}, {}
        for name in names:
            y = encode(attrs, name)
            classes = len(ATTRIBUTES[name])
            l2s[name], scores = cross_validated_l2(x, y, classes, seed=seed, grid=grid, groups=groups)
            cv[name] = scores[l2s[name]]
            weights[name] = fit_logistic(x, y, classes, l2s[name])
        return cls(mean, scale, weights, l2s, cv)

    @property
    def names(self) -> list[str]:
        return list(self.weights)

    def predict_index(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """(n, F) or (F,) features → attribute → (n,) value indices (n = 1 for one vector)."""
        x = (np.atleast_2d(np.asarray(features, np.float64)) - self.mean) / self.scale
        return {name: logits(x, w).argmax(axis=1) for name, w in self.weights.items()}

    def predict(self, features: np.ndarray) -> dict | list[dict]:
        """Attribute values: one dict for a (F,) vector, a list of dicts for (n, F)."""
        index = self.predict_index(features)
        rows = [{name: ATTRIBUTES[name][int(index[name][i])] for name in self.names}
                for i in range(len(next(iter(index.values()))))]
        return rows[0] if np.asarray(features).ndim == 1 else rows

    def accuracy(self, features: np.ndarray, attrs: Sequence[dict]) -> dict[str, float]:
        """Share of images whose predicted value equals `attrs`' value, per attribute."""
        index = self.predict_index(features)
        return {name: float((index[name] == encode(attrs, name)).mean()) for name in self.names}

    def save(self, path: str | Path) -> None:
        """An .npz (arrays only, no pickle): standardisation, weights, and the chosen penalties as JSON."""
        meta = {"names": self.names, "l2": self.l2, "cv_accuracy": self.cv_accuracy}
        buffer = io.BytesIO()
        np.savez(buffer, mean=self.mean, scale=self.scale, meta=np.array(json.dumps(meta)),
                 **{f"w_{name}": w for name, w in self.weights.items()})
        Path(path).write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "AttributeProbe":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(data["mean"], data["scale"], {n: data[f"w_{n}"] for n in meta["names"]},
                       {n: float(v) for n, v in meta["l2"].items()}, meta["cv_accuracy"])


def chance(name: str) -> float:
    """Accuracy of guessing, for uniformly drawn attributes."""
    return 1.0 / len(ATTRIBUTES[name])
