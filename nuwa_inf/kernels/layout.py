"""`PatchLayout`: which context patches each query patch attends to, shared by every backend.

A layout is the structure of one patch-attention call, described by two small integer
tables instead of a dense mask (the xformers `AttentionBias` / NATTEN idea):

    ctx_index  (Nq, M) int64   row n lists the context blocks of query patch n:
                               an index into k_ctx/v_ctx's first dim, or -1 = empty slot
    ctx_offset (Nq, M) int64   the relative-offset id of each slot, in [0, n_offsets);
                               it picks the column of ctx_bias added to that block's keys

Backends need derived forms of these tables (non-empty slots packed and grouped by count,
the inverse "which query patches read context block c" CSR map, ...). They are computed on
first use, once per device, and cached on the layout: build one layout per training step
or per sampling wave and reuse it for every layer and every decode step. Treat a layout as
immutable once it has been used.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class SlotBucket:
    """Query patches that have exactly `count` non-empty context slots (packed to the front)."""

    count: int
    rows: Tensor  # (Nb,) int64  which query patches
    index: Tensor  # (Nb, count) int64  their context blocks, all >= 0
    offset: Tensor  # (Nb, count) int64  their offset ids


@dataclass(frozen=True)
class ContextCSR:
    """Inverse of ctx_index: for context block c, the slots (n * M + m) that read it.

    Users of block c are `slot[ptr[c]:ptr[c + 1]]`; the Triton backward iterates them to
    accumulate dk/dv of a context block without atomics.
    """

    ptr: Tensor  # (Nc + 1,) int32
    slot: Tensor  # (n_used,) int32, flat slot ids n * M + m, grouped by block


@dataclass(eq=False)
class PatchLayout:
    """Context lists of the query patches of one patch-attention call (see module doc)."""

    ctx_index: Tensor
    ctx_offset: Tensor | None = None
    n_offsets: int | None = None
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        index = torch.as_tensor(self.ctx_index)
        if index.dim() != 2:
            raise ValueError(f"ctx_index must be (Nq, M), got shape {tuple(index.shape)}")
        if index.dtype.is_floating_point or index.dtype == torch.bool:
            raise ValueError(f"ctx_index must be an integer tensor, got {index.dtype}")
        self.ctx_index = index.to(torch.int64)
        if self.ctx_offset is None:
            offset = torch.zeros_like(self.ctx_index)
        else:
            offset = torch.as_tensor(self.ctx_offset)
            if offset.shape != self.ctx_index.shape:
                raise ValueError(f"ctx_offset shape {tuple(offset.shape)} != ctx_index shape "
                                 f"{tuple(self.ctx_index.shape)}")
            if offset.dtype.is_floating_point or offset.dtype == torch.bool:
                raise ValueError(f"ctx_offset must be an integer tensor, got {offset.dtype}")
        self.ctx_offset = offset.to(device=self.ctx_index.device, dtype=torch.int64)
        if self.n_offsets is None:
            self.n_offsets = int(self.ctx_offset.max()) + 1 if self.ctx_offset.numel() else 1
        self.n_offsets = int(self.n_offsets)
        if self.n_offsets < 1:
            raise ValueError(f"n_offsets must be >= 1, got {self.n_offsets}")

    # ------------------------------------------------------------------ basic facts
    @property
    def n_query(self) -> int:
        return self.ctx_index.shape[0]

    @property
    def max_slots(self) -> int:
        return self.ctx_index.shape[1]

    def _host(self) -> dict:
        """Host-side facts, computed once (one device sync): validation, counts, duplicates."""
        if "host" not in self._cache:
            index = self.ctx_index.cpu()
            offset = self.ctx_offset.cpu()
            if index.numel():
                if int(index.min()) < -1:
                    raise ValueError("ctx_index entries must be >= -1 (-1 marks an empty slot)")
                if int(offset.min()) < 0 or int(offset.max()) >= self.n_offsets:
                    raise ValueError(f"ctx_offset entries must lie in [0, {self.n_offsets})")
            valid = index >= 0
            counts = valid.sum(1)
            # A block listed twice in one row counts twice (its keys enter the softmax twice).
            sorted_index = torch.sort(torch.where(valid, index, -1 - torch.arange(index.shape[1])), dim=1).values
            row_dups = bool((sorted_index[:, 1:] == sorted_index[:, :-1]).any()) if index.shape[1] > 1 else False
            self._cache["host"] = {
                "index": index,
                "offset": offset,
                "valid": valid,
                "counts": counts,
                "max_index": int(index.max()) if index.numel() else -1,
                "row_duplicates": row_dups,
            }
        return self._cache["host"]

    @property
    def max_count(self) -> int:
        """The largest number of non-empty slots of any query patch."""
        counts = self._host()["counts"]
        return int(counts.max()) if counts.numel() else 0

    @property
    def has_row_duplicates(self) -> bool:
        """Whether some query patch lists the same context block in two slots."""
        return self._host()["row_duplicates"]

    def check_n_ctx(self, n_ctx: int) -> None:
        if self._host()["max_index"] >= n_ctx:
            raise ValueError(f"ctx_index refers to context block {self._host()['max_index']} "
                             f"but only {n_ctx} context blocks were given")

    # ------------------------------------------------------------------ derived forms
    def index_on(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """(ctx_index, ctx_offset) on `device`, cached."""
        key = ("tables", str(device))
        if key not in self._cache:
            self._cache[key] = (self.ctx_index.to(device), self.ctx_offset.to(device))
        return self._cache[key]

    def buckets(self, device: torch.device) -> list[SlotBucket]:
        """Query patches grouped by their number of non-empty slots, slots packed to the front.

        Gathering backends run one attention call per group, so empty slots cost nothing
        (a crop's edge patches have fewer neighbours than its interior ones).
        """
        key = ("buckets", str(device))
        if key not in self._cache:
            host = self._host()
            index, offset, valid, counts = host["index"], host["offset"], host["valid"], host["counts"]
            # Stable packing: non-empty slots first, in their original order.
            order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices
            packed_index = torch.gather(index, 1, order)
            packed_offset = torch.gather(offset, 1, order)
            buckets = []
            for count in torch.unique(counts).tolist():
                rows = torch.nonzero(counts == count).flatten()
                buckets.append(SlotBucket(
                    count=int(count),
                    rows=rows.to(device),
                    index=packed_index[rows, :count].contiguous().to(device),
                    offset=packed_offset[rows, :count].contiguous().to(device),
                ))
            self._cache[key] = buckets
        return self._cache[key]

    def csr(self, n_ctx: int, device: torch.device) -> ContextCSR:
        """The inverse map block -> slots reading it (see `ContextCSR`)."""
        key = ("csr", n_ctx, str(device))
        if key not in self._cache:
            host = self._host()
            flat = host["index"].flatten()
            slot_ids = torch.nonzero(flat >= 0).flatten()
            blocks = flat[slot_ids]
            order = torch.sort(blocks, stable=True).indices
            counts = torch.bincount(blocks, minlength=n_ctx)[:n_ctx]
            ptr = torch.zeros(n_ctx + 1, dtype=torch.int64)
            ptr[1:] = torch.cumsum(counts, 0)
            self._cache[key] = ContextCSR(ptr=ptr.to(device=device, dtype=torch.int32),
                                          slot=slot_ids[order].to(device=device, dtype=torch.int32))
        return self._cache[key]

    def __repr__(self) -> str:
        return (f"PatchLayout(n_query={self.n_query}, max_slots={self.max_slots}, "
                f"n_offsets={self.n_offsets})")
