"""Reference weights and gradients for Heed's attention normalizers.

Run from the repository root with a Python that has torch, safetensors and
the `entmax` package (`pip install entmax`, by the authors of the entmax paper):

    python Tests/Fixtures/attention/make_normalizers_fixtures.py

References, one per normalizer, each independent of Heed:
- sparsemax: `entmax.sparsemax` (Martins & Astudillo 2016), with its own
  autograd Function for the gradient;
- entmax-1.5: `entmax.entmax15` (Peters, Niculae & Martins 2019, exact
  sort-based algorithm), with its own autograd Function;
- divisive normalisation: a float64 PyTorch transcription of Carandini &
  Heeger (2012) eq. 1, w_ij = d_ij^n / (sigma^n + sum_k d_ik^n), with the
  drive d = exp(s) ("exponential") or d = relu(s) ("rectified"); autograd;
- local pools: a float64 PyTorch transcription of the same formula with the
  sum restricted to the keys k with |k - j| <= radius (the normalisation pool
  of Reynolds & Heeger 2009, a box suppressive field over key positions);
  autograd;
- hard argmax: torch.argmax (first index on ties) + one_hot.

Masks: the entmax package has no mask argument, so each row is normalised
over its allowed entries only (selected, normalised, scattered back into a
row of zeros) -- the definition Heed implements. A row with no allowed entry
is all zeros with zero gradient (Heed's rule).

Each case `name` stores `name.scores`, optionally `name.mask` (0/1 float,
broadcastable to the scores), `name.grad_out` (the seed of the backward
pass), `name.weights` and `name.dscores`; parametrised normalizers also store
`name.params` = [semiSaturation, exponent(, radius)].

Cases: `main` [2, 3, 4, 59] with a [2, 1, 4, 59] mask (broadcast over heads)
holding an all-masked row, ties in the scores (equal maxima, equal entries
inside the support); `unmasked` [3, 2, 1, 59] (Tq = 1, no mask); `single`
[2, 1, 1, 1] (T = 1, the second row masked).
"""
import os

import torch
import torch.nn.functional as F
from entmax import entmax15, sparsemax
from safetensors.torch import save_file

torch.manual_seed(20260311)
HERE = os.path.dirname(os.path.abspath(__file__))


def make_cases():
    """Scores (f32) and masks shared by every normalizer."""
    cases = {}

    scores = torch.randn(2, 3, 4, 59) * 1.5
    # Ties: two equal maxima in one row, and equal entries inside the support.
    row = scores[0, 0, 1]
    row[5] = row.max() + 0.5
    row[17] = row[5]
    scores[1, 2, 3, 10] = scores[1, 2, 3, 11] = scores[1, 2, 3].max() - 0.05
    scores[1, 1, 0, 3] = scores[1, 1, 0, 4]
    mask = (torch.rand(2, 1, 4, 59) > 0.3).float()
    mask[0, 0, 1, 5] = mask[0, 0, 1, 17] = 1          # keep the tied maxima allowed
    mask[1, 0, 3, 10] = mask[1, 0, 3, 11] = 1
    mask[1, 0, 2, :] = 0                               # an all-masked row (every head)
    cases["main"] = (scores, mask)

    cases["unmasked"] = (torch.randn(3, 2, 1, 59) * 2.0, None)

    single = torch.randn(2, 1, 1, 1)
    cases["single"] = (single, torch.tensor([1.0, 0.0]).reshape(2, 1, 1, 1))
    return cases


def rowwise(function, scores, mask):
    """`function` over the allowed entries of every row; zeros elsewhere."""
    if mask is None:
        return function(scores)
    full_mask = mask.expand_as(scores).reshape(-1, scores.shape[-1]) > 0
    flat = scores.reshape(-1, scores.shape[-1])
    rows = []
    for r in range(flat.shape[0]):
        allowed = full_mask[r].nonzero().flatten()
        out = torch.zeros(flat.shape[1], dtype=scores.dtype)
        if allowed.numel() > 0:
            out = out.index_put((allowed,), function(flat[r, allowed]))
        rows.append(out)
    return torch.stack(rows).reshape(scores.shape)


def divisive(scores, mask, semi_saturation, exponent, drive):
    """Carandini & Heeger (2012) eq. 1 in float64, straight from the formula."""
    s = scores.double()
    d = s.exp() if drive == "exponential" else F.relu(s)
    dn = d ** exponent
    if mask is not None:
        dn = dn * mask.double()
    return dn / (semi_saturation ** exponent + dn.sum(-1, keepdim=True))


def local_pools(scores, mask, semi_saturation, exponent, radius, drive):
    """Each key j divided by its own pool {k : |k - j| <= radius}, float64."""
    s = scores.double()
    d = s.exp() if drive == "exponential" else F.relu(s)
    dn = d ** exponent
    if mask is not None:
        dn = dn * mask.double()
    tk = s.shape[-1]
    positions = torch.arange(tk)
    pool = ((positions[:, None] - positions[None, :]).abs() <= radius).double()   # [k, j]
    return dn / (semi_saturation ** exponent + dn @ pool)


def record(tensors, name, scores, mask, function, params=None):
    x = scores.clone().requires_grad_(True)
    weights = function(x, mask)
    grad_out = torch.randn(weights.shape, dtype=torch.float32)
    (dscores,) = torch.autograd.grad(weights, [x], grad_out.to(weights.dtype))
    assert torch.isfinite(weights).all() and torch.isfinite(dscores).all(), name
    tensors[f"{name}.scores"] = scores.clone()
    if mask is not None:
        tensors[f"{name}.mask"] = mask.clone()
        empty = mask.expand_as(scores).sum(-1) == 0
        assert (weights.detach()[empty] == 0).all() and (dscores[empty] == 0).all(), name
    tensors[f"{name}.grad_out"] = grad_out.contiguous()
    tensors[f"{name}.weights"] = weights.detach().float().contiguous()
    tensors[f"{name}.dscores"] = dscores.float().contiguous()
    if params is not None:
        tensors[f"{name}.params"] = torch.tensor(params, dtype=torch.float32)


def main():
    cases = make_cases()

    files = {
        "sparsemax": lambda s, m: rowwise(lambda z: sparsemax(z, dim=-1), s, m),
        "entmax15": lambda s, m: rowwise(lambda z: entmax15(z, dim=-1), s, m),
    }
    for family, function in files.items():
        tensors = {}
        for case, (scores, mask) in cases.items():
            record(tensors, case, scores, mask, function)
            # Sanity: every row with an allowed key sums to 1, the others to 0.
            sums = tensors[f"{case}.weights"].sum(-1)
            allowed = torch.ones_like(sums) if mask is None else (mask.expand_as(scores).sum(-1) > 0).float()
            assert torch.allclose(sums, allowed, atol=1e-5), (family, case)
        save_file(tensors, os.path.join(HERE, f"normalizers_{family}.safetensors"))

    tensors = {}
    for drive, (sigma, n) in {"exponential": (8.0, 1.5), "rectified": (3.0, 2.0)}.items():
        for case, (scores, mask) in cases.items():
            record(tensors, f"{drive}.{case}", scores, mask,
                   lambda s, m: divisive(s, m, sigma, n, drive), params=[sigma, n])
    save_file(tensors, os.path.join(HERE, "normalizers_divisive.safetensors"))

    tensors = {}
    for drive, (sigma, n, radius) in {"exponential": (2.0, 1.0, 3), "rectified": (0.5, 2.0, 2)}.items():
        for case, (scores, mask) in cases.items():
            record(tensors, f"{drive}.{case}", scores, mask,
                   lambda s, m: local_pools(s, m, sigma, n, radius, drive), params=[sigma, n, radius])
    save_file(tensors, os.path.join(HERE, "normalizers_localpools.safetensors"))

    tensors = {}
    for case, (scores, mask) in cases.items():
        masked = scores if mask is None else scores.masked_fill(mask.expand_as(scores) == 0, float("-inf"))
        index = masked.argmax(dim=-1)                   # first maximum on ties
        weights = F.one_hot(index, scores.shape[-1]).float()
        if mask is not None:
            weights = weights * (mask.expand_as(scores).sum(-1, keepdim=True) > 0)
        tensors[f"{case}.scores"] = scores.contiguous()
        if mask is not None:
            tensors[f"{case}.mask"] = mask.contiguous()
        tensors[f"{case}.weights"] = weights.contiguous()
    # The tie case must pick the first of the two equal maxima (index 5, not 17).
    assert tensors["main.weights"][0, 0, 1, 5] == 1
    save_file(tensors, os.path.join(HERE, "normalizers_hard.safetensors"))


if __name__ == "__main__":
    main()
