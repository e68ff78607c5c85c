"""Quality figures without downloaded networks: seam ratio, block statistics distance, drift.

    from nuwa_inf.eval import seam_ratio, block_features, compare_blocks, drift, evaluate
"""
from .block_stats import (
    BlockSet,
    FeatureScale,
    block_distance,
    block_features,
    compare_blocks,
    drift,
    frechet_distance,
    noise_floor,
)
from .metrics import evaluate
from .seams import SeamStats, seam_ratio, seam_stats

__all__ = ["BlockSet", "FeatureScale", "SeamStats", "block_distance", "block_features", "compare_blocks",
           "drift", "evaluate", "frechet_distance", "noise_floor", "seam_ratio", "seam_stats"]
