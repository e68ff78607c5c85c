"""The transformer's optimizer: AdamW, weight decay on matrices only (not on embeddings, norms, biases)."""
from __future__ import annotations

import torch


def transformer_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over `model`'s trainable parameters, β = (0.9, 0.95), as every stage of the recipe trained."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.dim() >= 2 and "emb" not in n]
    rest = [p for n, p in trainable if not (p.dim() >= 2 and "emb" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))
