"""Procedural Chinese scroll landscapes (shan shui): the project's offline domain dataset.

One infinite landscape is defined by (seed, attributes, height). `render_scroll` paints
any column range of it: every pixel is a pure function of its absolute (x, y), so
rendering [0, 38912) at once or in chunks gives identical pixels, and memory stays
bounded (work is done in fixed 256-column blocks aligned to absolute x).

Scene, back to front: sky gradient with drifting clouds and a sun or moon; 4-6 layers of
mountain ridges (far ones paler and hazier: atmospheric perspective; near ones darker,
with brush-like texture strokes and a dark ink edge, fading into mist at their feet);
mist bands between layers; a river or lake with rippled reflections and a path of glints
under the sun; a foreground bank; pines, leafy trees and moss dots on the near ridges;
shaded faces away from the light; snow on the lit faces; paper grain and stains.

    >>> img = render_scroll(2048, 2048, seed=3)          # (2048, 2048, 3) uint8
    >>> caption(sample_attributes(3))
    'ink-wash scroll landscape by day, snowy peaks, a lake, drifting mist, pine trees'
    >>> night = render_scroll(1024, 256, seed=3, x0=-512, attrs={"time": "night"})

`attrs` overrides some or all of `sample_attributes(seed)`; the geometry (layers, peaks,
sun position) comes from the seed alone, so the same seed by day and by night is the same
place. A render costs about 0.9 s of one core per 2048x2048 (numpy, float32).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import UserError
from .landscape_layers import F32, Ridge, TreeRow, fbm1, fbm2, noise2, smoothstep, tree_alpha

BLOCK = 256          # columns rendered together; blocks are aligned to multiples of BLOCK in absolute x
MAX_SIZE = 1_000_000  # refuse absurd widths / heights

PALETTES = ("ink", "blue-green")
TIMES = ("day", "sunset", "night")
WATERS = (None, "river", "lake")
TREES = (None, "pines", "mixed")

PAPER = (0.925, 0.895, 0.815)

# Motion of `render_clip`, in heights per frame (clips play at 8 fps). Every moving field is
# sampled at x − frame·speed·H, so frame 0 is the still whatever the speeds. At 512×256 and 16
# frames the clouds drift 61 px and the mist, nearer, 115 px; the water shimmers. Slower
# (0.004, 0.006) the clouds and mist barely moved (0.06-0.2 levels a frame in the sky, 0.04 in
# the mist bands) and only the water did; faster water (0.01, 0.02) changed almost
# independently from frame to frame, its streaks jumping further than their own width.
CLOUD_DRIFT = 0.016
MIST_DRIFT = 0.03
WOBBLE_DRIFT = 0.005    # the reflection's ripples
STREAK_DRIFT = 0.01     # light and dark streaks and glints on the water
SUN_DRIFT = 0.001


def sample_attributes(seed: int) -> dict:
    """Draw the scene attributes for `seed` (JSON-serialisable dict)."""
    rng = np.random.default_rng([_seed64(seed), 0xA77])
    return {
        "palette": PALETTES[int(rng.random() < 0.5)],
        "time": TIMES[int(rng.choice(3, p=[0.5, 0.25, 0.25]))],
        "snow": bool(rng.random() < 0.25),
        "water": WATERS[int(rng.choice(3, p=[0.3, 0.35, 0.35]))],
        "mist": bool(rng.random() < 0.7),
        "trees": TREES[int(rng.choice(3, p=[0.2, 0.5, 0.3]))],
    }


def caption(attrs: dict) -> str:
    """Natural-language caption naming the attributes."""
    style = {"ink": "ink-wash", "blue-green": "blue-green shan-shui"}[attrs["palette"]]
    when = {"day": "by day", "sunset": "at sunset", "night": "at night under the moon"}[attrs["time"]]
    parts = [f"{style} scroll landscape {when}"]
    if attrs["snow"]:
        parts.append("snowy peaks")
    if attrs["water"]:
        parts.append(f"a {attrs['water']}")
    if attrs["mist"]:
        parts.append("drifting mist")
    if attrs["trees"] == "pines":
        parts.append("pine trees")
    elif attrs["trees"] == "mixed":
        parts.append("pines and leafy trees")
    return ", ".join(parts)


def render_scroll(width: int, height: int, seed: int, x0: int = 0, attrs: dict | None = None,
                  frame: float = 0.0, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Columns [x0, x0+width) of the landscape (seed, attrs, height): (height, width, 3) uint8.

    `frame` is the time used by `render_clip` (clouds, mist and ripples drift with it);
    `progress(n)` is called after each block with the number of columns done.
    """
    _check_size(width, height)
    scene = build_scene(seed, height, attrs)
    out = np.empty((height, width, 3), np.uint8)
    first, last = (x0 // BLOCK), (x0 + width - 1) // BLOCK
    for block in range(first, last + 1):
        start = block * BLOCK
        lo, hi = max(start, x0), min(start + BLOCK, x0 + width)
        pixels = _render_block(scene, start, frame)
        out[:, lo - x0:hi - x0] = pixels[:, lo - start:hi - start]
        if progress is not None:
            progress(hi - lo)
    return out


def render_clip(width: int, height: int, frames: int, seed: int, attrs: dict | None = None) -> np.ndarray:
    """A short clip (frames, height, width, 3) uint8: clouds and mist drift, ripples move, the sun moves."""
    if frames <= 0 or frames > 100_000:
        raise UserError(f"frames must be in 1..100000, got {frames}")
    return np.stack([render_scroll(width, height, seed, 0, attrs, frame=float(t)) for t in range(frames)])


# ----------------------------------------------------------------------------- scene description

@dataclass
class Layer:
    ridge: Ridge
    depth: float             # 1 = farthest layer, 0 = the foreground bank
    ridge_rgb: np.ndarray    # colour at the ridge (3,)
    foot_rgb: np.ndarray     # colour the layer fades to at its foot (mist or ochre)
    fade: float              # fade length below the ridge (heights)
    texture: float           # strength of the brush texture
    edge: float              # darkness of the ink edge along the ridge
    snow: float              # 0..1 snow cover
    snow_rgb: np.ndarray | None = None
    trees: list[TreeRow] = field(default_factory=list)
    tree_rgb: np.ndarray | None = None
    mist_below: float = 0.0  # mist band strength at this layer's foot
    salt: int = 0


@dataclass
class Scene:
    height: int
    attrs: dict
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    horizon_v: float
    cloud_rgb: np.ndarray
    cloud_amount: float
    mist_rgb: np.ndarray
    sun_rgb: np.ndarray
    sun_glow_rgb: np.ndarray
    sun_u: float
    sun_v: float
    sun_radius: float
    glow: float
    glint: float             # strength of the sun's / moon's path of glints on water
    layers: list[Layer]      # back to front; the last one is the foreground bank
    water_v: float | None
    water_rgb: np.ndarray
    salt: int


def _seed64(seed: int) -> int:
    return int(seed) % (1 << 63)


def _rgb(*values: float) -> np.ndarray:
    return np.asarray(values, np.float32)


def _lerp(a, b, t):
    return a + (b - a) * t


def _check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or value <= 0 or value > MAX_SIZE:
            raise UserError(f"{name} must be an integer in 1..{MAX_SIZE}, got {value!r}")


def full_attributes(seed: int, attrs: dict | None) -> dict:
    """`sample_attributes(seed)` with `attrs` put over it, checked (UserError names a bad key or value)."""
    full = sample_attributes(seed)
    if attrs:
        unknown = set(attrs) - set(full)
        if unknown:
            raise UserError(f"unknown scene attribute(s): {', '.join(sorted(unknown))}")
        full.update(attrs)
    allowed = {"palette": PALETTES, "time": TIMES, "water": WATERS, "trees": TREES,
               "snow": (True, False), "mist": (True, False)}
    for key, values in allowed.items():
        if full[key] not in values:
            raise UserError(f"scene attribute {key}={full[key]!r} is not one of {values}")
    return full


def build_scene(seed: int, height: int, attrs: dict | None = None) -> Scene:
    """Everything about the landscape that is not a per-pixel field: layers, colours, sun."""
    attrs = full_attributes(seed, attrs)
    rng = np.random.default_rng([_seed64(seed), 0x5CE])
    salt = int(rng.integers(1 << 30))
    ink = attrs["palette"] == "ink"
    time = attrs["time"]
    snow = attrs["snow"]
    paper = _rgb(*PAPER)

    # --- sky and light, per time of day
    if time == "day":
        sky_top = _rgb(0.80, 0.80, 0.78) if ink else _rgb(0.66, 0.76, 0.82)
        sky_horizon = paper * 1.02
        haze = _rgb(0.86, 0.86, 0.84) if ink else _rgb(0.80, 0.85, 0.86)
        light = _rgb(1.0, 1.0, 1.0)
        sun_rgb, sun_glow = _rgb(1.0, 0.97, 0.88), _rgb(1.0, 0.96, 0.85)
        sun_v, sun_radius, glow = rng.uniform(0.08, 0.18), 0.028, 0.10
        cloud_rgb = _rgb(0.97, 0.96, 0.93)
    elif time == "sunset":
        sky_top = _rgb(0.50, 0.47, 0.56) if ink else _rgb(0.42, 0.46, 0.62)
        sky_horizon = _rgb(0.97, 0.74, 0.50) if not ink else _rgb(0.93, 0.76, 0.60)
        haze = _rgb(0.86, 0.66, 0.56) if not ink else _rgb(0.80, 0.68, 0.60)
        light = _rgb(0.92, 0.74, 0.62)
        sun_rgb, sun_glow = _rgb(0.93, 0.30, 0.16), _rgb(1.0, 0.62, 0.35)
        sun_v, sun_radius, glow = rng.uniform(0.2, 0.3), 0.045, 0.35
        cloud_rgb = _rgb(0.98, 0.66, 0.52)
    else:  # night
        sky_top = _rgb(0.05, 0.06, 0.11)
        sky_horizon = _rgb(0.20, 0.23, 0.31) if not ink else _rgb(0.22, 0.23, 0.26)
        haze = _rgb(0.20, 0.23, 0.30) if not ink else _rgb(0.22, 0.23, 0.25)
        light = _rgb(0.30, 0.34, 0.44)
        sun_rgb, sun_glow = _rgb(0.96, 0.94, 0.84), _rgb(0.75, 0.78, 0.85)
        sun_v, sun_radius, glow = rng.uniform(0.08, 0.2), 0.03, 0.25
        cloud_rgb = _rgb(0.34, 0.37, 0.45)
    if snow:  # overcast, colder sky
        sky_top = _lerp(sky_top, _rgb(0.55, 0.57, 0.60) * light, 0.5)
        haze = _lerp(haze, _rgb(0.85, 0.87, 0.90) * light, 0.4)
    mist_rgb = _lerp(haze, sky_horizon, 0.5) * 1.04

    # --- water
    water = attrs["water"]
    level = rng.random()                                  # drawn whatever the attributes: same geometry
    water_v = None if water is None else (0.64 + 0.08 * level if water == "lake" else 0.76 + 0.08 * level)
    water_rgb = _lerp(haze, sky_top, 0.4) * (0.85 if ink else _rgb(0.78, 0.9, 0.95))

    # --- mountain layers, back to front
    n_back = int(rng.integers(4, 7))
    foot_near = (water_v + 0.02) if water_v is not None else 0.9
    layers: list[Layer] = []
    giant_layer = int(rng.integers(1, max(2, n_back - 1)))   # the layer that holds the towering massifs
    tree_kind = attrs["trees"]
    for k in range(n_back + 1):
        bank = k == n_back
        z = 1.0 - k / n_back                         # 1 far .. 0 bank
        if bank:
            ridge = Ridge(base=1.06 if water else 1.01, amp=rng.uniform(0.16, 0.26), spacing=rng.uniform(0.45, 0.7),
                          width=0.45, rough=0.35, salt=salt + 100 * k, sharp=2.2)
        else:
            base = _lerp(foot_near, 0.5, z ** 1.3)
            tallness = np.exp(-((z - 0.55) / 0.35) ** 2)   # the middle distance holds the tall peaks
            amp = rng.uniform(0.8, 1.15) * (0.14 + 0.32 * tallness) * (1.0 if water != "lake" else 0.8)
            ridge = Ridge(base=base, amp=amp, spacing=_lerp(0.42, 0.26, z) * rng.uniform(0.8, 1.25),
                          width=rng.uniform(0.3, 0.45), rough=_lerp(0.45, 0.3, z), salt=salt + 100 * k,
                          sharp=rng.uniform(1.3, 1.9), macro=0.5 + 0.5 * tallness, macro_salt=salt + 1,
                          giant=(base - 0.1) * rng.uniform(0.75, 0.95) if k == giant_layer else 0.0)
        haze_mix = 0.85 * z ** 1.1
        if ink:
            ridge_rgb = _lerp(_rgb(0.11, 0.11, 0.12), _rgb(0.45, 0.47, 0.50), z)
            foot_rgb = _lerp(mist_rgb, paper, 0.3) if not bank else _rgb(0.55, 0.53, 0.48)
        else:
            ridge_rgb = _lerp(_lerp(_rgb(0.13, 0.36, 0.30), _rgb(0.16, 0.33, 0.45), min(1.0, 2 * z)),
                              _rgb(0.42, 0.55, 0.64), max(0.0, 2 * z - 1))
            foot_rgb = _lerp(_rgb(0.66, 0.52, 0.32), mist_rgb, min(1.0, 1.5 * z)) if not bank \
                else _rgb(0.55, 0.44, 0.28)
        ridge_rgb = _lerp(ridge_rgb * light, haze, haze_mix)
        foot_rgb = _lerp(foot_rgb * light, haze, 0.5 * haze_mix) if not ink else foot_rgb * light
        layer = Layer(ridge=ridge, depth=z, ridge_rgb=ridge_rgb.astype(F32), foot_rgb=foot_rgb.astype(F32),
                      fade=_lerp(0.18, 0.09, z) if not bank else 0.3, texture=_lerp(0.55, 0.25, z),
                      edge=_lerp(0.5, 0.15, z), snow=(0.55 + 0.45 * z) if snow else 0.0,
                      mist_below=(0.55 if attrs["mist"] else 0.2) * (0.4 + 0.6 * z) if 0 < k < n_back else 0.0,
                      salt=salt + 100 * k + 7)
        layer.snow_rgb = np.minimum(1.0, _lerp(mist_rgb, _rgb(1, 1, 1) * light, 0.5)).astype(F32)
        dark = _rgb(0.07, 0.07, 0.08) if ink else _rgb(0.08, 0.20, 0.15)
        layer.tree_rgb = _lerp(dark * light, haze, 0.6 * haze_mix).astype(F32)
        if tree_kind is not None and (bank or z < 0.55):
            size = 0.075 if bank else _lerp(0.035, 0.015, z / 0.55)
            pine_share = 1.0 if tree_kind == "pines" else 0.5
            layer.trees = [TreeRow(spacing=size * 0.9, size=size, density=0.8, pine_share=pine_share,
                                   salt=salt + 100 * k + 31),
                           TreeRow(spacing=size * 1.37, size=size * 0.8, density=0.6, pine_share=pine_share,
                                   salt=salt + 100 * k + 37)]
        if not bank and z < 0.85:  # moss dots (dian) along the ridge, as in ink landscapes
            dot = _lerp(0.007, 0.004, z)
            layer.trees.append(TreeRow(spacing=dot * 2.2, size=dot, density=0.45, pine_share=0.0,
                                       salt=salt + 100 * k + 41, dots=True))
        layers.append(layer)

    return Scene(height=height, attrs=attrs, sky_top=sky_top, sky_horizon=sky_horizon, horizon_v=0.55,
                 cloud_rgb=cloud_rgb, cloud_amount=0.8 if time != "day" or not ink else 0.6,
                 mist_rgb=mist_rgb.astype(F32), sun_rgb=sun_rgb, sun_glow_rgb=sun_glow,
                 sun_u=float(rng.uniform(0.15, 0.85)), sun_v=float(sun_v), sun_radius=sun_radius, glow=glow,
                 glint={"day": 0.3, "sunset": 0.7, "night": 0.6}[time],
                 layers=layers, water_v=water_v, water_rgb=water_rgb.astype(F32), salt=salt)


# ----------------------------------------------------------------------------- painting one block
# The block is painted channel-first, img (3, H, BLOCK) float32, so that each colour plane
# is contiguous and per-pixel fields (rows, BLOCK) broadcast over the planes cheaply.

def _col(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, F32)[:, None, None]


def _blend(img: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """img (3, rows, B) <- img + (rgb - img) * alpha (rows, B), in place; rgb is (3,) or (3, rows, B)."""
    if rgb.ndim == 1:
        rgb = _col(rgb)
    img += (rgb - img) * alpha


def _render_block(scene: Scene, x_start: int, frame: float) -> np.ndarray:
    """Columns [x_start, x_start + BLOCK) as (H, BLOCK, 3) uint8."""
    H = scene.height
    xs = x_start + np.arange(BLOCK, dtype=np.float64) + 0.5       # pixel centres
    ys = np.arange(H, dtype=np.float64) + 0.5
    u = xs / H
    aa = max(1.0, H / 900.0)                                      # edge softness (pixels)
    img = _paint_sky(scene, xs, ys, frame)
    water_row = None if scene.water_v is None else int(round(scene.water_v * H))
    for index, layer in enumerate(scene.layers):
        if index == len(scene.layers) - 1 and water_row is not None:
            _paint_water(scene, img, xs, ys, water_row, frame)
        _paint_layer(scene, layer, img, xs, ys, u, aa)
        for trees in layer.trees:
            _paint_trees(img, xs, u, layer, trees, H, aa)
        if layer.mist_below > 0:
            _paint_mist(scene, layer, img, xs, ys, frame)
    _paper(scene, img, xs, ys)
    img *= F32(255.0)
    img += F32(0.5)
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8).transpose(1, 2, 0)


def _paint_sky(scene: Scene, xs: np.ndarray, ys: np.ndarray, frame: float) -> np.ndarray:
    H = scene.height
    v = (ys / H).astype(F32)
    g = smoothstep(0.0, scene.horizon_v, v) ** F32(0.8)
    column = _lerp(scene.sky_top[:, None], scene.sky_horizon[:, None], g[None, :]).astype(F32)  # (3, H)
    img = np.empty((3, H, len(xs)), F32)
    img[:] = column[:, :, None]
    # clouds: horizontally stretched fbm, thresholded into soft banks, drifting with the frame
    rows = int(0.6 * H)
    cx = xs - frame * CLOUD_DRIFT * H
    c = fbm2(cx, ys[:rows], 0.45 * H, 0.07 * H, 5, scene.salt + 1, min_cell=2.0)
    band = smoothstep(0.0, 0.08, v[:rows]) * (F32(1.0) - smoothstep(0.3, 0.55, v[:rows]))
    density = smoothstep(0.5, 0.72, c) * band[:, None] * F32(scene.cloud_amount)
    _blend(img[:, :rows], scene.cloud_rgb, density)
    # sun or moon with a glow of compact support
    sx, sy = _sun_position(scene, frame)
    reach = 0.6 * H
    c0, c1 = np.searchsorted(xs, [sx - reach, sx + reach])
    r0, r1 = np.searchsorted(ys, [sy - reach, sy + reach])
    if c1 > c0 and r1 > r0:
        dx = (xs[c0:c1] - sx).astype(F32)
        dy = (ys[r0:r1] - sy).astype(F32)
        dist = np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2)
        halo = np.maximum(F32(0.0), F32(1.0) - dist * F32(1.0 / reach)) ** 3 * F32(scene.glow)
        region = img[:, r0:r1, c0:c1]
        _blend(region, scene.sun_glow_rgb, halo)
        disk = np.clip((F32(scene.sun_radius * H) - dist) * F32(1.0 / max(1.0, H / 900)) + F32(0.5), 0, 1)
        _blend(region, scene.sun_rgb, disk)
    return img


def _sun_position(scene: Scene, frame: float) -> tuple[float, float]:
    """Sun / moon centre in pixels; it drifts a little from frame to frame (it sets at sunset)."""
    H = scene.height
    rise = 0.0012 if scene.attrs["time"] == "sunset" else -0.0004
    return scene.sun_u * H + frame * SUN_DRIFT * H, (scene.sun_v + frame * rise) * H


def _paint_layer(scene: Scene, layer: Layer, img: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                 u: np.ndarray, aa: float) -> None:
    """One mountain layer: dark ink edge at the ridge, brush texture, fading to mist at its foot."""
    H = scene.height
    ridge_rows = layer.ridge.rows(u, H)
    top = max(0, int(np.floor(ridge_rows.min() - 2 * aa)))
    if top >= H:
        return
    rows = ys[top:]
    d = (rows[:, None] - ridge_rows[None, :]).astype(F32)          # pixels below the ridge (rows, B)
    alpha = np.clip(d * F32(1.0 / aa) + F32(0.5), F32(0.0), F32(1.0))
    dn = d * F32(1.0 / H)
    # brush texture: soft blotches and short vertical strokes
    blotch = fbm2(xs, rows, 0.07 * H, 0.05 * H, 3, layer.salt + 2, min_cell=2.0)
    strokes = noise2(xs, rows, 0.008 * H, 0.03 * H, layer.salt + 1)
    tex = F32(0.6) * blotch + F32(0.4) * strokes - F32(0.5)
    fade = np.clip(dn * F32(1.0 / layer.fade) + tex * F32(layer.texture * 1.6), F32(0.0), F32(1.0))
    body = F32(1.0) - fade
    # strata: wavy strokes parallel to the (smoothed) ridge, broken up by the stroke noise
    smooth_rows = (layer.ridge.base - layer.ridge.smooth_height_at(u)) * H
    phase = fbm1(u / 0.08, layer.salt + 4, 3) * F32(6 * np.pi)
    ds = (d + (ridge_rows - smooth_rows).astype(F32)[None, :]) * F32(2 * np.pi / (0.016 * H))
    # two incommensurate waves: strokes at irregular spacings
    strata = F32(0.6) * np.sin(ds + phase[None, :]) + F32(0.4) * np.sin(ds * F32(1.618) - F32(2.0) * phase[None, :])
    lines = smoothstep(0.5, 0.9, strata) * smoothstep(0.45, 0.7, strokes)
    # the faces that turn away from the light (from the left) are shaded
    shadow = np.clip(-layer.ridge.slope_at(u) * 0.6, 0.0, 0.6).astype(F32)
    edge = np.exp(np.minimum(-d, F32(0.0)) * F32(1.0 / (0.004 * H))) * F32(layer.edge)
    dark = (lines * F32(0.35 * layer.texture) + shadow[None, :] * F32(0.5)) * body
    if layer.snow > 0:
        # snow everywhere on the upper slopes except in stroke crevices and on shaded faces
        rock = (F32(0.35) * strokes + F32(0.25) * blotch + shadow[None, :] * F32(1.2)
                + dn * F32(0.45 / layer.fade))
        cover = (F32(1.0) - smoothstep(0.55, 0.8, rock)) * F32(layer.snow)
        dark *= F32(1.0) - F32(0.7) * cover      # the ink outline stays: snow peaks are drawn by their edges
        colour = _col(layer.ridge_rgb) + _col(layer.foot_rgb - layer.ridge_rgb) * fade
        colour += (_col(layer.snow_rgb) - colour) * cover
    else:
        colour = _col(layer.ridge_rgb) + _col(layer.foot_rgb - layer.ridge_rgb) * fade
    dark += edge
    colour *= F32(1.0) - dark
    _blend(img[:, top:], colour, alpha)


def _paint_trees(img: np.ndarray, xs: np.ndarray, u: np.ndarray, layer: Layer, trees: TreeRow,
                 H: int, aa: float) -> None:
    """Paint one row of trees, each column only in the short window of rows its tree spans."""
    centre, foot, h, half, present, pine = trees.per_column(u, layer.ridge, H)
    if not present.any():
        return
    cols = np.flatnonzero(present)
    top = np.floor(foot[cols] - h[cols]).astype(np.int64) - 1       # first row of each column's window
    span = int(np.ceil(h[cols].max())) + 3
    rows = top[None, :] + np.arange(span)[:, None]                   # (span, n) absolute rows
    cover = tree_alpha(xs[cols], rows.astype(F32) + F32(0.5), centre[cols], foot[cols], h[cols],
                       half[cols], pine[cols], aa, trees.dots)
    keep = (rows >= 0) & (rows < H) & (cover > 0)
    r, c = rows[keep], np.broadcast_to(cols, rows.shape)[keep]
    a = cover[keep]
    patch = img[:, r, c]                                             # (3, n) gathered pixels
    img[:, r, c] = patch + (layer.tree_rgb[:, None] - patch) * a


def _paint_mist(scene: Scene, layer: Layer, img: np.ndarray, xs: np.ndarray, ys: np.ndarray, frame: float) -> None:
    H = scene.height
    centre = (layer.ridge.base - 0.03) * H
    half = 0.06 * H
    r0, r1 = max(0, int(centre - half)), min(H, int(np.ceil(centre + half)))
    if r1 <= r0:
        return
    band = np.maximum(F32(0.0), F32(1.0) - ((ys[r0:r1] - centre) / half).astype(F32) ** 2) ** 2
    mx = xs - frame * MIST_DRIFT * H
    wisps = fbm2(mx, ys[r0:r1], 0.5 * H, 0.03 * H, 3, layer.salt + 9, min_cell=2.0)
    density = (F32(0.25) + F32(0.75) * smoothstep(0.35, 0.7, wisps)) * band[:, None] * F32(layer.mist_below)
    _blend(img[:, r0:r1], scene.mist_rgb, density)


def _paint_water(scene: Scene, img: np.ndarray, xs: np.ndarray, ys: np.ndarray, water_row: int, frame: float) -> None:
    """Everything below the water line becomes water: a rippled, tinted reflection of what is above."""
    H = scene.height
    if water_row >= H:
        return
    wy = ys[water_row:]
    depth = ((wy - water_row) / max(1, H - water_row)).astype(F32)[:, None]   # 0 at the line .. 1 at the bottom
    wobble = noise2(xs - frame * WOBBLE_DRIFT * H, wy, 0.05 * H, 0.005 * H, scene.salt + 21) - F32(0.5)
    src = F32(2 * water_row) - wy.astype(F32)[:, None] + wobble * (F32(0.004 * H) + F32(0.05 * H) * depth)
    src = np.clip(src, 0, water_row - 1).astype(np.intp)
    flat = img.reshape(3, -1)                                       # gather rows per column
    index = src * img.shape[2] + np.arange(img.shape[2])[None, :]
    water = np.take(flat, index, axis=1)                            # (3, rows, B)
    water += (_col(scene.water_rgb) - water) * (F32(0.35) + F32(0.35) * depth)
    streaks = noise2(xs - frame * STREAK_DRIFT * H, wy, 0.09 * H, 0.004 * H, scene.salt + 22)
    light = smoothstep(0.7, 0.9, streaks) * (F32(0.25) + F32(0.5) * depth)
    _blend(water, np.minimum(F32(1.0), scene.mist_rgb * F32(1.15)), light)
    # a path of glints under the sun or moon
    sx, _ = _sun_position(scene, frame)
    path = np.exp(-(((xs - sx) / (0.07 * H)) ** 2)).astype(F32) * F32(scene.glint)
    glints = smoothstep(0.6, 0.85, streaks) * path[None, :] * (F32(0.5) + F32(0.5) * depth)
    _blend(water, scene.sun_glow_rgb, glints)
    shore = np.exp(-(wy - water_row).astype(F32) * F32(1.0 / (0.003 * H))) * F32(0.3)
    dark = smoothstep(0.3, 0.12, streaks) * (F32(0.1) + F32(0.25) * depth) + shore[:, None]
    water *= F32(0.92) * (F32(1.0) - dark)
    img[:, water_row:] = water


def _paper(scene: Scene, img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """Paper grain, fibres and faint stains (multiplicative, small amplitude)."""
    H = scene.height
    grain = noise2(xs, ys, 1.5, 1.5, scene.salt + 31)
    fibres = noise2(xs, ys, 10.0, 1.3, scene.salt + 32)
    stains = fbm2(xs, ys, 0.35 * H, 0.3 * H, 3, scene.salt + 33, min_cell=4.0)
    shade = F32(0.965) + F32(0.05) * grain + F32(0.03) * fibres + F32(0.06) * (stains - F32(0.5))
    img *= shade
