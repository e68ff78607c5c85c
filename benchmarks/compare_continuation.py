"""Compare settings of the continuation benchmark over several sampling seeds.

One draw of one case moves carry by 0.003–0.03 and layout by 0.01–0.02 between sampling seeds, as
much as most levers move them, so an A/B is read over seeds. Run `bench_continuation.py` once per
setting and seed (each with its own `--json`, any subset of cases via `--only`), then

    python benchmarks/compare_continuation.py base='runs/base_s*.json' tilt='runs/tilt_s*.json'

prints, per case and setting, carry and layout as the mean over the seeds ± half their range,
layout ÷ its floor (the "other seed" row: a real scroll of the case's style), border ÷ truth, and
for every setting after the first its difference from the first, paired by seed (the same seed
draws from the same random stream, so paired differences are less noisy than the means'), with how
many of the shared seeds moved each way. A lever is worth keeping when its difference is larger
than the seed spread and most seeds agree on its sign; `--markdown` prints the table for the README.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np

from common import print_table  # beside this script

FIGURES = ("carry", "layout", "border_vs_truth")


class BadRuns(ValueError):
    """The files given cannot be compared (none found, not the benchmark's JSON, a seed twice)."""


def load_runs(pattern: str) -> dict[str, dict[int, dict]]:
    """Files matching `pattern` → {case key: {sampling seed: nuwa-inf figures + the case's floor}}."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise BadRuns(f"no benchmark JSON matches {pattern!r}")
    runs: dict[str, dict[int, dict]] = {}
    for name in files:
        try:
            payload = json.loads(Path(name).read_text())
            seed, cases = payload["settings"]["seed"], payload["cases"]
        except (OSError, ValueError, KeyError, TypeError):
            raise BadRuns(f"{name} is not a JSON file written by bench_continuation.py --json") from None
        for case in cases:
            ours = case["figures"].get("nuwa-inf")
            if ours is None:
                continue
            key = case["case"]["key"]
            if seed in runs.get(key, {}):
                raise BadRuns(f"{pattern!r}: case {key} at seed {seed} is in two files; keep one")
            floor = case["figures"]["other seed"]
            runs.setdefault(key, {})[seed] = {**{f: ours[f] for f in FIGURES},
                                              "floor_carry": floor["carry"], "floor_layout": floor["layout"],
                                              "name": case["case"]["name"]}
    return runs


def spread(values: list[float]) -> tuple[float, float]:
    """(mean, half the range) of one figure over the seeds."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float((array.max() - array.min()) / 2)


def paired_difference(base: dict[int, dict], other: dict[int, dict], figure: str) -> dict | None:
    """other − base on the seeds both have: mean, and how many seeds went down / up."""
    seeds = sorted(set(base) & set(other))
    if not seeds:
        return None
    deltas = [other[s][figure] - base[s][figure] for s in seeds]
    return {"mean": float(np.mean(deltas)), "lower": sum(d < 0 for d in deltas),
            "higher": sum(d > 0 for d in deltas), "seeds": seeds}


def summarise(settings: dict[str, dict[str, dict[int, dict]]]) -> list[dict]:
    """One row per (case, setting): the spread over seeds and, after the first setting, the paired Δ."""
    first = next(iter(settings))
    keys = sorted({key for runs in settings.values() for key in runs})
    rows = []
    for key in keys:
        for label, runs in settings.items():
            per_seed = runs.get(key)
            if not per_seed:
                continue
            seeds = sorted(per_seed)
            any_seed = per_seed[seeds[0]]
            row = {"case": key, "name": any_seed["name"], "setting": label, "seeds": seeds,
                   "floor_carry": any_seed["floor_carry"], "floor_layout": any_seed["floor_layout"]}
            for figure in FIGURES:
                row[figure] = spread([per_seed[s][figure] for s in seeds])
            if label != first and key in settings[first]:
                row["delta"] = {f: paired_difference(settings[first][key], per_seed, f) for f in ("carry", "layout")}
            rows.append(row)
    return rows


def mean_over_cases(rows: list[dict], setting: str, keys: list[str]) -> dict | None:
    """A setting's carry and layout averaged over `keys` (None unless it has them all)."""
    mine = {r["case"]: r for r in rows if r["setting"] == setting}
    if not keys or any(k not in mine for k in keys):
        return None
    return {f: float(np.mean([mine[k][f][0] for k in keys])) for f in ("carry", "layout")}


def describe_delta(delta: dict | None) -> str:
    if delta is None:
        return ""
    return f"{delta['mean']:+.3f} ({delta['lower']}↓ {delta['higher']}↑ of {len(delta['seeds'])})"


HEADER = ["case", "setting", "seeds", "carry", "floor", "layout", "÷ floor", "border ÷ truth",
          "Δ carry", "Δ layout"]


def table_cells(rows: list[dict]) -> list[list[str]]:
    """One list of HEADER's cells per summary row."""
    lines = []
    for row in rows:
        carry, layout, border = row["carry"], row["layout"], row["border_vs_truth"]
        delta = row.get("delta", {})
        lines.append([row["name"], row["setting"], ",".join(map(str, row["seeds"])),
                      f"{carry[0]:.3f} ± {carry[1]:.3f}", f"{row['floor_carry']:.3f}",
                      f"{layout[0]:.3f} ± {layout[1]:.3f}", f"{layout[0] / row['floor_layout']:.2f}×",
                      f"{border[0]:.2f}", describe_delta(delta.get("carry")), describe_delta(delta.get("layout"))])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="+", metavar="NAME=GLOB",
                        help="a setting's name and the bench_continuation.py --json files of its seeds")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    settings = {}
    for item in args.settings:
        name, sep, pattern = item.partition("=")
        if not sep or not name or not pattern:
            parser.error(f"expected NAME=GLOB, got {item!r}")
        if name in settings:
            parser.error(f"setting {name!r} given twice")
        try:
            settings[name] = load_runs(pattern)
        except BadRuns as error:
            print(f"compare_continuation: {error}", file=sys.stderr)
            return 2
    rows = summarise(settings)
    cells = table_cells(rows)
    if args.markdown:
        print("\n".join(["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
                        + ["| " + " | ".join(line) + " |" for line in cells]))
    else:
        print_table(HEADER, cells)
    keys = sorted(set.intersection(*(set(runs) for runs in settings.values())))
    print(f"\nmean over the {len(keys)} cases every setting has:")
    for name in settings:
        means = mean_over_cases(rows, name, keys)
        if means:
            print(f"  {name}: carry {means['carry']:.3f}, layout {means['layout']:.3f}")
    first = next(iter(settings))
    for name in list(settings)[1:]:
        deltas = [r["delta"] for r in rows if r["setting"] == name and r["case"] in keys and "delta" in r]
        if deltas and all(d["carry"] for d in deltas):
            carry = np.mean([d["carry"]["mean"] for d in deltas])
            layout = np.mean([d["layout"]["mean"] for d in deltas])
            print(f"  {name} − {first}, paired by seed: carry {carry:+.3f}, layout {layout:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
