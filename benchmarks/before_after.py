"""Before / after picture of a change to the model or the engine, on one continuation case.

    python benchmarks/before_after.py --case 1 --before RUN_A/1_ink-sunset_nuwa-inf.png \
        --after RUN_B/1_ink-sunset_nuwa-inf.png [--labels "bundled before;bundled now"] \
        [--picture docs/before_after.webp]

BEFORE and AFTER are the nuwa-inf images `bench_continuation.py --keep-images --out RUN` kept for
that case (two runs, e.g. `--model OLD` and `--model NEW`); the truth is rendered again from the
case's seed. Stacked: truth / before / after, the input's edges ticked in red.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from bench_continuation import Scrolls, case_spec, save_small_webp, side_by_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", type=int, required=True)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--labels", default="before;after", help="two labels, separated by ;")
    parser.add_argument("--piece", type=int, default=2048)
    parser.add_argument("--picture", default="docs/before_after.webp")
    parser.add_argument("--strip-width", type=int, default=1024)
    args = parser.parse_args()
    before, after = (np.asarray(Image.open(p).convert("RGB")) for p in (args.before, args.after))
    height, width = before.shape[:2]
    case = case_spec(args.case)
    truth = Scrolls(width, height).get(case["seed"], case["fixed"])
    x0 = (width - args.piece) // 2
    labels = args.labels.split(";")
    picture = side_by_side([("truth", truth), (labels[0], before), (labels[1], after)], (x0, x0 + args.piece),
                           args.strip_width, title=f"{case['name']} (seed {case['seed']})")
    size = save_small_webp(picture, Path(args.picture))
    print(f"wrote {args.picture} ({size // 1024} KB)")


if __name__ == "__main__":
    main()
