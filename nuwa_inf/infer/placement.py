"""Where the input sits on the canvas, and what that makes known.

The canvas is padded up to whole patches for generation and cropped back at the end.
The input is placed at a token-aligned (16 px) position; tokens it covers completely
are known, patches whose tokens are all known are given (not generated), and patches it
covers in part are generated with their known tokens forced.

Except at its edges: the encoder sees past the input's border (its receptive field spans a
few tokens), so the outer token columns of an input encoded on its own are not what the same
scene encodes to inside a wider image (2–5 % of the outermost three columns agree on a
held-out scroll). The transformer, trained on whole images, would continue those border
artefacts. So the input is encoded mirror-padded (`ENCODE_PAD` px on the sides that face
generated content), and its outermost `edge` token columns/rows there are generated like the
rest (still under the input's own pixels in the output): the known tokens are the ones the
input's interior decides.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError

MAX_SIDE = 1 << 20
ENCODE_PAD = 64                # px of mirror padding around the input when encoding it


@dataclass
class Placement:
    width: int                 # requested canvas, px
    height: int
    x0: int                    # input's top-left on the canvas, px (token aligned)
    y0: int
    in_w: int                  # input size, px (0 for unconditional generation)
    in_h: int
    f: int                     # tokenizer downsampling
    ph: int                    # patch size in tokens
    pw: int
    edge: int = 0              # token columns/rows of the input's open sides left to generate

    def open_sides(self) -> tuple[bool, bool, bool, bool]:
        """(top, left, bottom, right): which sides of the input face generated content."""
        return (self.y0 > 0, self.x0 > 0, self.y0 + self.in_h < self.height, self.x0 + self.in_w < self.width)

    @property
    def tok_h(self) -> int:
        return -(-self.height // (self.f * self.ph)) * self.ph

    @property
    def tok_w(self) -> int:
        return -(-self.width // (self.f * self.pw)) * self.pw

    @property
    def rows(self) -> int:
        return self.tok_h // self.ph

    @property
    def cols(self) -> int:
        return self.tok_w // self.pw

    def known_tokens(self) -> tuple[int, int, int, int]:
        """(ty0, tx0, ty1, tx1): token rectangle covered completely by the input."""
        if not self.in_w:
            return (0, 0, 0, 0)
        f = self.f
        ty0, tx0 = -(-self.y0 // f), -(-self.x0 // f)
        ty1, tx1 = (self.y0 + self.in_h) // f, (self.x0 + self.in_w) // f
        top, left, bottom, right = self.open_sides()
        if ty1 - ty0 > 4 * self.edge:  # an input too thin to spare its edges keeps them
            ty0, ty1 = ty0 + self.edge * top, ty1 - self.edge * bottom
        if tx1 - tx0 > 4 * self.edge:
            tx0, tx1 = tx0 + self.edge * left, tx1 - self.edge * right
        return (ty0, tx0, max(ty0, ty1), max(tx0, tx1))

    def known_patches(self) -> tuple[int, int, int, int]:
        """(r0, c0, r1, c1): patches whose tokens are all known."""
        ty0, tx0, ty1, tx1 = self.known_tokens()
        r0, c0 = -(-ty0 // self.ph), -(-tx0 // self.pw)
        r1, c1 = ty1 // self.ph, tx1 // self.pw
        if r1 <= r0 or c1 <= c0:
            return (0, 0, 0, 0)
        return (r0, c0, r1, c1)


def place(width: int, height: int, in_w: int, in_h: int, anchor: str, f: int, ph: int, pw: int) -> Placement:
    """Validate sizes and place an input of in_w×in_h px by `anchor`:
    left | center | right | top | bottom | X,Y (pixels, rounded down to 16)."""
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value > MAX_SIDE:
            raise UserError(f"--{name} must be between 1 and {MAX_SIDE} px, got {value}")
    if in_w > width or in_h > height:
        raise UserError(f"the canvas {width}x{height} is smaller than the input {in_w}x{in_h}")
    patch_px_w, patch_px_h = f * pw, f * ph

    def centred(free: int, patch_px: int) -> int:
        """Half the free space, snapped down to the patch grid (so given patches are whole)."""
        return free // 2 // patch_px * patch_px

    if anchor in ("center", "centre"):
        x0, y0 = centred(width - in_w, patch_px_w), centred(height - in_h, patch_px_h)
    elif anchor == "left":
        x0, y0 = 0, centred(height - in_h, patch_px_h)
    elif anchor == "right":
        x0, y0 = (width - in_w) // f * f, centred(height - in_h, patch_px_h)
    elif anchor == "top":
        x0, y0 = centred(width - in_w, patch_px_w), 0
    elif anchor == "bottom":
        x0, y0 = centred(width - in_w, patch_px_w), (height - in_h) // f * f
    else:
        try:
            x0, y0 = (int(v) for v in anchor.split(","))
        except ValueError:
            raise UserError(f"--anchor {anchor!r} is not left, center, right, top, bottom or X,Y") from None
        if x0 < 0 or y0 < 0 or x0 + in_w > width or y0 + in_h > height:
            raise UserError(f"--anchor {anchor} puts the {in_w}x{in_h} input outside the {width}x{height} canvas")
        x0, y0 = x0 // f * f, y0 // f * f
    return Placement(width, height, x0, y0, in_w, in_h, f, ph, pw)


def feather_alpha(h: int, w: int, feather: int, open_sides: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """(h, w) weight of the input's own pixels: 1 inside, ramping to 0 at borders that face
    generated content (top, left, bottom, right flags say which sides do)."""
    top, left, bottom, right = open_sides
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    alpha = np.ones((h, w), dtype=np.float32)
    if feather > 0:
        for is_open, dist in ((top, ys), (left, xs), (bottom, h - 1 - ys), (right, w - 1 - xs)):
            if is_open:
                alpha = np.minimum(alpha, np.clip((dist + 0.5) / feather, 0, 1))
    return alpha
