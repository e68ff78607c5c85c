"""Multi-band blending of the input into its surroundings (infer/border_blend.py)."""
from __future__ import annotations

import numpy as np

from nuwa_inf.infer.border_blend import bands, blend_band, blend_width, in_any_band


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def test_the_band_goes_from_the_decoded_pixels_at_the_edge_to_the_input_inside():
    h, w, blend = 64, 600, 256
    decoded = scene(h, w)
    own = np.clip(decoded.astype(int) + 24, 0, 255).astype(np.uint8)     # a round trip's colour shift
    [band] = bands(0, 0, w, h, (False, True, False, False), blend)
    cy0, cx0, cy1, cx1 = band.context
    out = blend_band(band, own[cy0:cy1, cx0:cx1], decoded[cy0:cy1, cx0:cx1], (0, 0, h, w),
                     (False, True, False, False), blend).astype(int)
    assert out.shape == (h, blend, 3)
    assert np.abs(out[:, 0] - decoded[:, 0]).mean() < 1.5                 # the edge column is the decoded one
    inside = own[:, blend - 1].astype(int)
    assert np.abs(out[:, -1] - inside).mean() < 1.5                       # the far side is the input
    # the colour shift fades in over most of the band (a 32-px feather would be half-way at 16 px)
    shift = (out - decoded[:, :blend].astype(int)).mean(axis=(0, 2))
    assert np.abs(np.diff(shift)).max() <= 1
    assert shift[0] < 2 < 22 < shift[-1]
    assert int(np.argmax(shift >= 12)) > 64


def test_bands_only_along_open_sides_and_within_the_input():
    found = bands(100, 0, 1000, 512, (False, True, False, True), 128)
    assert [b.side for b in found] == ["left", "right"]
    assert found[0].rect == (0, 100, 512, 228) and found[1].rect == (0, 972, 512, 1100)
    for band in found:
        cy0, cx0, cy1, cx1 = band.context
        assert 100 <= cx0 and cx1 <= 1100 and 0 <= cy0 and cy1 <= 512
    mask = in_any_band(found, 0, 100, 512, 1000)
    assert mask[:, :128].all() and mask[:, -128:].all() and not mask[:, 128:-128].any()
    assert bands(0, 0, 1000, 512, (False, False, False, False), 128) == []


def test_the_blend_is_at_most_a_quarter_of_the_input():
    assert blend_width(256, 2048, 2048) == 256
    assert blend_width(256, 192, 128) == 32
    assert blend_width(0, 2048, 2048) == 0
