"""Global autoregressive orders over the patch grid, and the context relation they induce.

A patch position is (t, r, c): frame, patch row, patch column. An order lists the
patches to generate; patches marked known (the input) are not generated and count as
earlier than everything. From an order and an extent e = (e_t, e_h, e_w):

  context(p)  = patches q ≠ p with |Δrow| ≤ e_h, |Δcol| ≤ e_w, 0 ≤ -Δt ≤ e_t that are known or
                come earlier in the order (each with its offset (Δt, Δrow, Δcol))
  wave(p)     = 1 + max wave of its generated context (0 when it has none): patches of one
                wave are independent and are sampled as one batch
  last_use(q) = the last wave that reads q; after it q leaves the Nearby Context Pool

Orders: the 8 sweep directions (row- or column-major × down/up × right/left), "raster"
(= row-right-down), "column" (= col-down-right), "outward" (rings around a region,
clipped to the canvas), "strips" (row by row along a wide canvas, both sides of the
region at once), and video frame by frame (each frame in a spatial order).
Known patches are always listed first, in raster order, in training and in inference.
"""
from __future__ import annotations

from dataclasses import dataclass

Pos = tuple[int, int, int]  # (frame, row, col)

DIRECTIONS = [f"{major}-{v}-{h}" if major == "row" else f"{major}-{h}-{v}"
              for major in ("row", "col") for v in ("down", "up") for h in ("right", "left")]
ALIASES = {"raster": "row-right-down", "column": "col-down-right"}


def sweep_order(rows: int, cols: int, name: str, frames: int = 1) -> list[Pos]:
    """One of the 8 sweep directions, e.g. 'row-right-down' (= raster), 'col-up-left'."""
    name = ALIASES.get(name, name)
    parts = name.split("-")
    if len(parts) != 3 or parts[0] not in ("row", "col"):
        raise ValueError(f"unknown sweep order {name!r}; choose from {', '.join(DIRECTIONS)}")
    major = parts[0]
    right = "right" in parts[1:]
    down = "down" in parts[1:]
    if not ({"right", "left"} & set(parts[1:]) and {"down", "up"} & set(parts[1:])):
        raise ValueError(f"unknown sweep order {name!r}")
    row_seq = range(rows) if down else range(rows - 1, -1, -1)
    col_seq = range(cols) if right else range(cols - 1, -1, -1)
    order = []
    for t in range(frames):
        if major == "row":
            order += [(t, r, c) for r in row_seq for c in col_seq]
        else:
            order += [(t, r, c) for c in col_seq for r in row_seq]
    return order


def outward_order(rows: int, cols: int, region: tuple[int, int, int, int], frames: int = 1) -> list[Pos]:
    """Rings around region (r0, c0, r1, c1) (exclusive ends), clipped to the canvas.

    Each ring is walked clockwise from its top-left corner; patches inside the region
    are skipped (they are known).
    """
    r0, c0, r1, c1 = region
    order: list[Pos] = []
    ring = 1
    max_ring = max(r0, c0, rows - r1, cols - c1)
    while ring <= max_ring:
        top, bottom, left, right = r0 - ring, r1 - 1 + ring, c0 - ring, c1 - 1 + ring
        walk = [(top, c) for c in range(left, right + 1)]
        walk += [(r, right) for r in range(top + 1, bottom + 1)]
        walk += [(bottom, c) for c in range(right - 1, left - 1, -1)]
        walk += [(r, left) for r in range(bottom - 1, top, -1)]
        order += [(r, c) for r, c in walk if 0 <= r < rows and 0 <= c < cols]
        ring += 1
    return [(t, r, c) for t in range(frames) for r, c in order]


def strips_order(rows: int, cols: int, region: tuple[int, int, int, int], frames: int = 1) -> list[Pos]:
    """Row by row along a wide canvas, nearest-to-the-region first, both sides together.

    For a region spanning the full height this makes each patch row a sweep away from
    the input, the row below running one patch behind: waves as wide as 2 × the number
    of rows (SPEC, "the order decides the wave width"). A region spanning the full width
    of a tall canvas gets the transposed order.
    """
    r0, c0, r1, c1 = region
    if r0 == 0 and r1 == rows or not (c0 == 0 and c1 == cols):
        keyed = [((r, _gap(c, c0, c1), c), (r, c)) for r in range(rows) for c in range(cols)
                 if not (r0 <= r < r1 and c0 <= c < c1)]
    else:
        keyed = [((c, _gap(r, r0, r1), r), (r, c)) for r in range(rows) for c in range(cols)
                 if not (r0 <= r < r1 and c0 <= c < c1)]
    return [(t, r, c) for t in range(frames) for _, (r, c) in sorted(keyed)]


def _gap(x: int, lo: int, hi: int) -> int:
    return lo - x if x < lo else x - hi + 1 if x >= hi else 0


def make_order(name: str, rows: int, cols: int, region: tuple[int, int, int, int] | None = None,
               frames: int = 1) -> list[Pos]:
    """Generation order of the patches outside `region` (None: generate everything)."""
    if region is None:
        region = (0, 0, 0, 0)
    if name == "auto":
        spans_height = region[0] == 0 and region[2] == rows
        spans_width = region[1] == 0 and region[3] == cols
        name = "strips" if (spans_height or spans_width) and region[2] > region[0] else (
            "outward" if region[2] > region[0] else "raster")
    if name == "outward":
        return outward_order(rows, cols, region, frames)
    if name == "strips":
        return strips_order(rows, cols, region, frames)
    r0, c0, r1, c1 = region
    return [p for p in sweep_order(rows, cols, name, frames) if not (r0 <= p[1] < r1 and c0 <= p[2] < c1)]


@dataclass
class Schedule:
    """Contexts, waves and evictions of one order on one grid (see module doc)."""

    order: list[Pos]                    # patches to generate, in order
    known: list[Pos]                    # given patches, raster order
    context: dict[Pos, list[tuple[Pos, tuple[int, int, int]]]]  # patch → [(context patch, offset)]
    wave: dict[Pos, int]                # generated patch → wave number
    last_use: dict[Pos, int]            # any patch → last wave reading it (-1: never read)

    @property
    def waves(self) -> list[list[Pos]]:
        count = max(self.wave.values(), default=-1) + 1
        groups: list[list[Pos]] = [[] for _ in range(count)]
        for p in self.order:
            groups[self.wave[p]].append(p)
        return groups


def build_schedule(order: list[Pos], known: list[Pos], extent: tuple[int, int, int],
                   shape: tuple[int, int, int]) -> Schedule:
    """Derive contexts, waves and pool evictions. `shape` = (frames, rows, cols)."""
    e_t, e_h, e_w = extent
    frames, rows, cols = shape
    rank = {p: -1 for p in known}
    rank.update({p: i for i, p in enumerate(order)})
    context: dict[Pos, list[tuple[Pos, tuple[int, int, int]]]] = {}
    for p in list(known) + list(order):
        t, r, c = p
        entries = []
        for dt in range(-e_t, 1):
            for dr in range(-e_h, e_h + 1):
                for dc in range(-e_w, e_w + 1):
                    q = (t + dt, r + dr, c + dc)
                    if q == p or q not in rank:
                        continue
                    if (rank[q] < rank[p]) if rank[p] >= 0 else (rank[q] == -1 and known_before(q, p)):
                        entries.append((q, (dt, dr, dc)))
        context[p] = entries
    wave: dict[Pos, int] = {}
    for p in order:
        wave[p] = 1 + max((wave[q] for q, _ in context[p] if q in wave), default=-1)
    last_use = {p: -1 for p in rank}
    for p in order:
        for q, _ in context[p]:
            last_use[q] = max(last_use[q], wave[p])
    return Schedule(order, list(known), context, wave, last_use)


def known_before(q: Pos, p: Pos) -> bool:
    """Among known patches (raster order, frame-major) q comes before p."""
    return q < p


def known_raster(region: tuple[int, int, int, int], frames: int = 1) -> list[Pos]:
    r0, c0, r1, c1 = region
    return [(t, r, c) for t in range(frames) for r in range(r0, r1) for c in range(c0, c1)]


def wave_stats(schedule: Schedule) -> tuple[int, float]:
    """(number of waves, mean patches per wave)."""
    waves = schedule.waves
    return len(waves), (len(schedule.order) / len(waves) if waves else 0.0)
