"""Nearby Context Pool: per-layer keys/values of finished (or given) patches.

Storage is a fixed set of slots per layer, (layers, slots, H, P, Dh) for K and for V, so
the attention op reads a patch's context straight from the pool through slot indices
(no concatenation). A patch is evicted once the last wave that reads it is done, so the
number of live slots is bounded by the extent and the order, never by the canvas.
"""
from __future__ import annotations

import torch

Pos = tuple[int, int, int]


class ContextPool:
    def __init__(self, layers: int, heads: int, patch_tokens: int, head_dim: int,
                 capacity: int = 16, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        shape = (layers, capacity, heads, patch_tokens, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.slot_of: dict[Pos, int] = {}
        self.free = list(range(capacity - 1, -1, -1))
        self.peak = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[1]

    def __len__(self) -> int:
        return len(self.slot_of)

    def __contains__(self, pos: Pos) -> bool:
        return pos in self.slot_of

    def _grow(self, needed: int) -> None:
        old = self.capacity
        new = max(needed, 2 * old)
        pad = (self.k.shape[0], new - old) + tuple(self.k.shape[2:])
        self.k = torch.cat([self.k, self.k.new_zeros(pad)], dim=1)
        self.v = torch.cat([self.v, self.v.new_zeros(pad)], dim=1)
        self.free = list(range(new - 1, old - 1, -1)) + self.free

    def add(self, positions: list[Pos], k: torch.Tensor, v: torch.Tensor) -> None:
        """Store patches' K/V: k, v (layers, n, H, P, Dh)."""
        if len(self.free) < len(positions):
            self._grow(len(self.slot_of) + len(positions))
        slots = [self.free.pop() for _ in positions]
        index = torch.tensor(slots, device=self.k.device)
        self.k[:, index] = k.to(self.k.dtype)
        self.v[:, index] = v.to(self.v.dtype)
        self.slot_of.update(zip(positions, slots, strict=True))
        self.peak = max(self.peak, len(self.slot_of))

    def evict(self, positions: list[Pos]) -> None:
        for pos in positions:
            slot = self.slot_of.pop(pos, None)
            if slot is not None:
                self.free.append(slot)

    def slots(self, contexts: list[list[Pos]]) -> torch.Tensor:
        """Slot index table (n, M) for n patches' context lists, -1 padded."""
        width = max(1, max((len(c) for c in contexts), default=0))
        table = torch.full((len(contexts), width), -1, dtype=torch.int64)
        for i, ctx in enumerate(contexts):
            for m, pos in enumerate(ctx):
                table[i, m] = self.slot_of[pos]
        return table

    # -- persistence (resume): only the live slots are saved --------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
        positions = sorted(self.slot_of)
        index = torch.tensor([self.slot_of[p] for p in positions], dtype=torch.int64)
        return {"k": self.k[:, index].contiguous(), "v": self.v[:, index].contiguous()}, [list(p) for p in positions]

    def restore(self, tensors: dict[str, torch.Tensor], positions: list[list[int]]) -> None:
        self.slot_of.clear()
        self.free = list(range(self.capacity - 1, -1, -1))
        if positions:
            self.add([tuple(p) for p in positions], tensors["k"], tensors["v"])
