"""Patch orders and their contexts, waves and pool evictions."""
from __future__ import annotations

import pytest

from nuwa_inf.model.context_pool import ContextPool
from nuwa_inf.model.orders import DIRECTIONS, build_schedule, known_raster, make_order, outward_order, wave_stats


def schedule(name, rows, cols, region, extent=1):
    order = make_order(name, rows, cols, region)
    return build_schedule(order, known_raster(region), (0, extent, extent), (1, rows, cols))


@pytest.mark.parametrize("region", [(2, 3, 4, 5), (0, 0, 1, 1), (0, 4, 6, 6), (5, 9, 6, 10)])
def test_outward_spiral_covers_every_unknown_patch_once(region):
    rows, cols = 6, 10
    order = outward_order(rows, cols, region)
    r0, c0, r1, c1 = region
    expected = {(0, r, c) for r in range(rows) for c in range(cols) if not (r0 <= r < r1 and c0 <= c < c1)}
    assert len(order) == len(expected) and set(order) == expected


@pytest.mark.parametrize("name", DIRECTIONS + ["strips", "outward", "raster", "column"])
def test_contexts_only_hold_known_or_earlier_patches_within_extent(name):
    region = (1, 2, 3, 4) if name in ("strips", "outward") else (0, 0, 0, 0)
    s = schedule(name, 4, 7, region)
    rank = {p: i for i, p in enumerate(s.order)}
    for p in s.order:
        for q, (_dt, dr, dc) in s.context[p]:
            assert q in s.known or rank[q] < rank[p]
            assert abs(dr) <= 1 and abs(dc) <= 1 and (q[1] - p[1], q[2] - p[2]) == (dr, dc)
            if q in s.wave:
                assert s.wave[q] < s.wave[p]


def test_strips_order_on_the_main_job_canvas_matches_the_spec_table():
    s = schedule("strips", 8, 152, (0, 72, 8, 80))
    waves, mean = wave_stats(s)
    assert waves == 86 and mean == pytest.approx(13.4, abs=0.05)


def test_pool_stays_bounded_as_the_canvas_grows():
    peaks = []
    for cols in (24, 96):
        s = schedule("strips", 4, cols, (0, cols // 2 - 1, 4, cols // 2 + 1))
        pool = ContextPool(1, 1, 1, 1, capacity=4)
        live = set()
        for p in s.known:
            live.add(p)
        for w, group in enumerate(s.waves):
            live.update(group)
            live -= {q for q in list(live) if s.last_use[q] <= w}
            pool.peak = max(pool.peak, len(live))
        peaks.append(pool.peak)
    assert peaks[0] == peaks[1]


def test_every_known_and_generated_patch_is_evicted_by_the_end():
    s = schedule("outward", 5, 9, (1, 3, 3, 6))
    last_wave = len(s.waves) - 1
    assert all(last <= last_wave for last in s.last_use.values())
