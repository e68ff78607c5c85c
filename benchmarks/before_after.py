"""Before / after picture of a change to the model or the engine, on one or more continuation cases.

    python benchmarks/before_after.py --case 1 --before RUN_A/1_ink-sunset_nuwa-inf.png \
        --after RUN_B/1_ink-sunset_nuwa-inf.png [--labels "bundled before;bundled now"] \
        [--picture docs/before_after.webp]
    python benchmarks/before_after.py --case 0,1,2,3 --before RUN_A --after RUN_B ...

BEFORE and AFTER are the nuwa-inf images `bench_continuation.py --keep-images --out RUN` kept for
that case (two runs, e.g. `--model OLD` and `--model NEW`), or, for several cases, the two RUN
directories (each case's `<key>_nuwa-inf.png` is read from them); the truth is rendered again
from the case's seed. Per case, stacked: truth / before / after, the input's edges ticked in red;
the cases one below the other.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from bench_continuation import Scrolls, case_spec, save_small_webp, side_by_side


def kept_image(source: str, case: dict, several: bool) -> np.ndarray:
    """The nuwa-inf image of `case`: `source` itself, or for several cases the one kept in that run directory."""
    path = Path(source) / f"{case['key']}_nuwa-inf.png" if several else Path(source)
    return np.asarray(Image.open(path).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", required=True, help="a case index, or several separated by commas")
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--labels", default="before;after", help="two labels, separated by ;")
    parser.add_argument("--piece", type=int, default=2048)
    parser.add_argument("--picture", default="docs/before_after.webp")
    parser.add_argument("--strip-width", type=int, default=1024)
    args = parser.parse_args()
    indices = [int(k) for k in args.case.split(",")]
    labels = args.labels.split(";")
    blocks = []
    for index in indices:
        case = case_spec(index)
        before, after = (kept_image(p, case, len(indices) > 1) for p in (args.before, args.after))
        height, width = before.shape[:2]
        truth = Scrolls(width, height).get(case["seed"], case["fixed"])
        x0 = (width - args.piece) // 2
        blocks.append(side_by_side([("truth", truth), (labels[0], before), (labels[1], after)],
                                   (x0, x0 + args.piece), args.strip_width,
                                   title=f"{case['name']} (seed {case['seed']})"))
    picture = Image.new("RGB", (args.strip_width, sum(b.height for b in blocks)))
    y = 0
    for block in blocks:
        picture.paste(block, (0, y))
        y += block.height
    size = save_small_webp(picture, Path(args.picture))
    print(f"wrote {args.picture} ({size // 1024} KB)")


if __name__ == "__main__":
    main()
