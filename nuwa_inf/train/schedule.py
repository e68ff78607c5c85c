"""Learning-rate schedule: linear warm-up, then cosine decay to `floor`·peak."""
import math


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.1) -> float:
    """Multiplier of the peak learning rate at `step` (0-based)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
