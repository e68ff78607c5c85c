"""The transformer's optimizer: AdamW, weight decay on matrices only (not on embeddings, norms, biases)."""
from __future__ import annotations

import torch

# The scale embedding (model/vertical.py) is a handful of vectors that start at zero and must
# grow to the size of the token embeddings before a fine-tune's other weights drift to mix the
# scales: at the base rate (2e-4, 400 steps) it reached a norm of 0.03 against the tokens' 0.46;
# at 30x, 0.14-0.20 (README, "Training at the scale it draws": neither run kept the scales apart).
SCALE_EMB_LR = 30.0


def transformer_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over `model`'s trainable parameters, β = (0.9, 0.95), as every stage of the recipe
    trained; a group's `lr_scale` multiplies the schedule's rate (the scale embedding's group)."""
    decay, rest, scale = [], [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            matrix = parameter.dim() >= 2 and "emb" not in name
            (scale if name == "scale_emb" else decay if matrix else rest).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if scale:
        groups.append({"params": scale, "weight_decay": 0.0, "lr_scale": SCALE_EMB_LR})
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def set_rate(opt: torch.optim.Optimizer, lr: float) -> None:
    """The schedule's rate `lr` into every group of `opt`, times the group's `lr_scale`."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
