"""Token picking: inverse-CDF sampling and its truncations (temperature, top-k, top-p, min-p)."""
import torch

from nuwa_inf.model.sampler import pick_tokens


def _picks(logits: torch.Tensor, **kwargs) -> torch.Tensor:
    """The code picked for each of 4001 evenly spaced uniforms, from one row of logits."""
    uniforms = torch.linspace(0, 1 - 1e-9, 4001, dtype=torch.float64)
    rows = logits.expand(len(uniforms), -1)
    return pick_tokens(rows, uniforms, kwargs.pop("temperature", 1.0), kwargs.pop("top_k", 0),
                       kwargs.pop("top_p", 1.0), **kwargs)


def test_untruncated_sampling_follows_the_probabilities():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    picks = _picks(probs.log())
    share = torch.bincount(picks, minlength=4).double() / len(picks)
    assert torch.allclose(share, probs.double(), atol=1e-3)


def test_min_p_drops_codes_below_its_share_of_the_likeliest_and_renormalises():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.01])
    picks = _picks(probs.log(), min_p=0.1)            # keeps p >= 0.05: the first three
    share = torch.bincount(picks, minlength=5).double() / len(picks)
    assert share[3] == 0 and share[4] == 0
    assert torch.allclose(share[:3], (probs[:3] / probs[:3].sum()).double(), atol=1e-3)
    assert torch.equal(_picks(probs.log(), min_p=0.0), _picks(probs.log()))


def test_min_p_follows_the_models_confidence():
    """The same min-p keeps a flat distribution whole and cuts a peaked one to its peak."""
    flat = torch.tensor([0.26, 0.25, 0.25, 0.24])
    peaked = torch.tensor([0.94, 0.02, 0.02, 0.02])
    assert set(_picks(flat.log(), min_p=0.1).tolist()) == {0, 1, 2, 3}
    assert set(_picks(peaked.log(), min_p=0.1).tolist()) == {0}


def test_min_p_acts_after_the_temperature():
    probs = torch.tensor([0.6, 0.3, 0.1])
    # at T = 1 the third code (1/6 of the likeliest) survives min-p 0.15; cooled to T = 0.5 it is
    # 1/36 of the likeliest and goes
    assert 2 in _picks(probs.log(), min_p=0.15).tolist()
    assert 2 not in _picks(probs.log(), min_p=0.15, temperature=0.5).tolist()
