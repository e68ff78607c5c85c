"""Patch-attention benchmark: `python benchmarks/bench_kernels.py [--device cpu|cuda] [--quick] [--json FILE]`.

The same as `nuwa-inf bench kernels`; see nuwa_inf/kernels/bench.py for the shapes and the
FLOP formula (4*D per attended (query, key) pair forward, x3.5 forward+backward, the own
block counted by its causal pairs).
"""
import sys

from nuwa_inf.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "kernels", *sys.argv[1:]]))
