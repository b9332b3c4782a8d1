"""Reference outputs and gradients for Heed's dense attention engine,
scores, patterns and multi-head attention.

Run from the repository root with a Python that has torch and safetensors:

    python Tests/Fixtures/attention/make_attention_fixtures.py

References:
- torch.nn.functional.scaled_dot_product_attention (SDPA) for plain, causal,
  masked, biased, scaled and grouped-query attention;
- torch.nn.MultiheadAttention for the multi-head layer;
- PyTorch transcriptions where PyTorch has no op: the dot, bilinear ("general"),
  additive ("concat") and cosine scores (Luong et al. 2015 eq. 8; Bahdanau
  et al. 2015 eq. 6) and the sparsity patterns (Longformer §3.1; Sparse
  Transformer §4.2; packed block-diagonal), each mask built here from its
  definition, independently of Heed.

Rows with nothing to attend to: SDPA returns NaN there; Heed's rule is zeros
and zero gradients. `safe_attention` below transcribes that rule (softmax over
a row with no allowed key is replaced by zeros) and the script asserts that it
equals SDPA on every row that has an allowed key.

Each case `name` stores its inputs (`name.q`, `name.k`, `name.v`, optional
parameters), the seed of the backward pass (`name.grad_out`), the output
(`name.out`), the weights (`name.weights`) and the gradients (`name.dq`,
`name.dk`, `name.dv`, `name.d<param>`).
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20261123)
HERE = os.path.dirname(os.path.abspath(__file__))
tensors = {}


def rand(*shape, scale=1.0):
    return (torch.randn(*shape, dtype=torch.float32) * scale).requires_grad_(True)


def safe_attention(q, k, v, mask=None, bias=None, scale=None):
    """softmax(q kᵀ·scale + bias, masked) v with empty rows giving zeros. GQA by repeat."""
    h, hkv = q.shape[1], k.shape[1]
    if h != hkv:
        k = k.repeat_interleave(h // hkv, dim=1)
        v = v.repeat_interleave(h // hkv, dim=1)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    if bias is not None:
        s = s + bias
    if mask is not None:
        mask = mask.expand_as(s)
        any_allowed = mask.any(dim=-1, keepdim=True)
        s = s.masked_fill(~mask, float("-inf"))
        s = torch.where(any_allowed, s, torch.zeros_like(s))
        w = torch.softmax(s, dim=-1) * any_allowed
    else:
        w = torch.softmax(s, dim=-1)
    return w @ v, w


def record(name, inputs, out, weights):
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, list(inputs.values()), grad_out, allow_unused=True)
    for key, value in inputs.items():
        tensors[f"{name}.{key}"] = value.detach().contiguous()
    tensors[f"{name}.grad_out"] = grad_out.contiguous()
    tensors[f"{name}.out"] = out.detach().contiguous()
    if weights is not None:
        tensors[f"{name}.weights"] = weights.detach().contiguous()
    for (key, _), grad in zip(inputs.items(), grads):
        if grad is not None:
            tensors[f"{name}.d{key}"] = grad.contiguous()


def check_against_sdpa(out, q, k, v, mask=None, bias=None, scale=None, is_causal=False, gqa=False):
    attn_mask = bias if mask is None else mask
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale, enable_gqa=gqa)
    rows = torch.isfinite(reference).all(dim=-1)
    assert torch.allclose(out[rows], reference[rows], atol=1e-5), "transcription disagrees with SDPA"
    return reference


# --- SDPA cases ----------------------------------------------------------------
def sdpa_case(name, b, h, hkv, tq, tk, d, mask=None, bias=None, scale=None, is_causal=False):
    q, k, v = rand(b, h, tq, d), rand(b, hkv, tk, d), rand(b, hkv, tk, d)
    if is_causal:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, enable_gqa=h != hkv)
        causal = torch.ones(tq, tk, dtype=torch.bool).tril()
        _, weights = safe_attention(q, k, v, mask=causal, scale=scale)
    else:
        out, weights = safe_attention(q, k, v, mask=mask, bias=bias, scale=scale)
        check_against_sdpa(out, q, k, v, mask=mask, bias=bias, scale=scale, gqa=h != hkv)
    inputs = {"q": q, "k": k, "v": v}
    record(name, inputs, out, weights)
    if mask is not None:
        tensors[f"{name}.mask"] = mask.float().contiguous()
    if bias is not None:
        tensors[f"{name}.bias"] = bias.contiguous()


sdpa_case("sdpa_full", 2, 3, 3, 5, 7, 59)
sdpa_case("sdpa_causal_top_left", 2, 3, 3, 5, 7, 16, is_causal=True)
sdpa_case("sdpa_causal_bottom_right", 1, 2, 2, 5, 7, 16, mask=torch.ones(5, 7, dtype=torch.bool).tril(diagonal=2))
sdpa_case("sdpa_single_token", 1, 1, 1, 1, 1, 8)
masked = torch.rand(2, 1, 4, 6) > 0.4
masked[0, 0, 1, :] = False          # a row with nothing to attend to
masked[1, 0, 3, :] = False
sdpa_case("sdpa_bool_mask_empty_rows", 2, 2, 2, 4, 6, 59, mask=masked)
sdpa_case("sdpa_float_bias", 2, 3, 3, 4, 6, 8, bias=torch.randn(1, 3, 4, 6))
sdpa_case("sdpa_scale", 1, 2, 2, 3, 5, 8, scale=0.3)
sdpa_case("sdpa_gqa", 2, 6, 2, 5, 7, 16)
sdpa_case("sdpa_mqa_causal", 1, 4, 1, 6, 6, 8, mask=torch.ones(6, 6, dtype=torch.bool).tril())


# --- scores (transcriptions) ------------------------------------------------------
def score_case(name, kind):
    b, h, tq, tk, dq, dk, a = 2, 2, 3, 5, 6, 4, 7
    q, k, v = rand(b, h, tq, dq), rand(b, h, tk, dk), rand(b, h, tk, 3)
    inputs = {"q": q, "k": k, "v": v}
    if kind == "dot":
        q, k = rand(b, h, tq, dk), k
        inputs["q"] = q
        s = q @ k.transpose(-1, -2)                                        # Luong eq. 8 "dot"
    elif kind == "bilinear":
        w = rand(dq, dk, scale=0.5)
        inputs["score.weight"] = w
        s = q @ w @ k.transpose(-1, -2)                                    # Luong eq. 8 "general"
    elif kind == "additive":
        wq, wk, va = rand(dq, a, scale=0.5), rand(dk, a, scale=0.5), rand(a)
        inputs.update({"score.query_weight": wq, "score.key_weight": wk, "score.vector": va})
        s = torch.tanh((q @ wq).unsqueeze(-2) + (k @ wk).unsqueeze(-3)) @ va   # Bahdanau eq. 6
    elif kind == "cosine":
        q, k = rand(b, h, tq, dk), k
        inputs["q"] = q
        s = 5.0 * F.normalize(q, dim=-1, eps=1e-8) @ F.normalize(k, dim=-1, eps=1e-8).transpose(-1, -2)
    w = torch.softmax(s, dim=-1)
    record(name, inputs, w @ v, w)


for kind in ["dot", "bilinear", "additive", "cosine"]:
    score_case(f"score_{kind}", kind)


# --- patterns (masks built here from their definitions) ---------------------------
def pairs(tq, tk, allowed):
    return torch.tensor([[allowed(i, j) for j in range(tk)] for i in range(tq)], dtype=torch.bool)


def pattern_case(name, tq, tk, mask, b=2, h=2, d=8):
    q, k, v = rand(b, h, tq, d), rand(b, h, tk, d), rand(b, h, tk, d)
    out, weights = safe_attention(q, k, v, mask=mask)
    check_against_sdpa(out, q, k, v, mask=mask)
    record(name, {"q": q, "k": k, "v": v}, out, weights)
    # Stored as expected_mask (not mask): `heed attend` must build it from the --pattern flag.
    tensors[f"{name}.expected_mask"] = mask.float().expand(b, 1, tq, tk).contiguous() if mask.dim() == 4 else mask.float().contiguous()


shift = 9 - 6   # bottom-right alignment: query i sits at i + Tk − Tq
pattern_case("pattern_sliding_window", 6, 9, pairs(6, 9, lambda i, j: i + shift - 2 <= j <= i + shift + 1))
pattern_case("pattern_dilated_window", 8, 8, pairs(8, 8, lambda i, j: (i - j) % 2 == 0 and -2 <= i - j <= 4))
pattern_case("pattern_global_window", 7, 7, pairs(7, 7, lambda i, j: abs(i - j) <= 1 or i in (0, 5) or j in (0, 5)))
pattern_case("pattern_strided_causal", 9, 9, pairs(9, 9, lambda i, j: j <= i and (i - j < 3 or (i - j) % 3 == 0)))
pattern_case("pattern_fixed_causal", 9, 9, pairs(9, 9, lambda i, j: j <= i and (i // 3 == j // 3 or j % 3 >= 2)))
segments = [0, 0, 0, 1, 2, 2, 2]
pattern_case("pattern_block_diagonal", 7, 7, pairs(7, 7, lambda i, j: segments[i] == segments[j]))
lengths = torch.tensor([3, 0])     # the second sequence is all padding: every row empty
padding = (torch.arange(5)[None, :] < lengths[:, None]).view(2, 1, 1, 5)
pattern_case("pattern_key_padding", 4, 5, padding)
pattern_case("pattern_causal_padding", 5, 5,
             torch.ones(5, 5, dtype=torch.bool).tril().view(1, 1, 5, 5) & (torch.arange(5) < 4).view(1, 1, 1, 5))


# --- seeded variants: BigBird's random blocks and sampled hard attention ----------
# Heed draws these from Philox4x32-10 (Salmon et al. 2011) with documented
# rules; the functions below re-implement those rules from their description
# (stream word i = word i % 4 of block(counter = i / 4, key = seed); uniform =
# (word >> 8)·2⁻²⁴; integers below b by Lemire's multiply-shift with rejection),
# so the fixtures check Heed's use of the generator, not a copy of its code.
M32 = 0xFFFFFFFF


def philox_block(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c3 ^ k1) & M32, p0 & M32
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


assert philox_block((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)   # Random123 KAT


class PhiloxStream:
    def __init__(self, seed):
        self.key, self.position = (seed & M32, seed >> 32), 0

    def word(self):
        block = self.position >> 2
        lane = self.position & 3
        self.position += 1
        return philox_block((block & M32, block >> 32, 0, 0), self.key)[lane]

    def uniform(self):
        return (self.word() >> 8) * 2.0 ** -24

    def below(self, bound):
        threshold = (1 << 32) % bound
        while True:
            product = self.word() * bound
            if product & M32 >= threshold:
                return product >> 32


def bigbird_mask(tq, tk, block, window, global_blocks, random_blocks, seed):
    """BigBird (Zaheer et al. 2020 §2) at block level, bottom-right aligned."""
    stream = PhiloxStream(seed)
    query_blocks, key_blocks = -(-tq // block), -(-tk // block)
    shift, half = (tk - tq) // block, window // 2
    rows = []
    for qb in range(query_blocks):
        position = qb + shift
        if position < global_blocks:
            rows.append(set(range(key_blocks)))
            continue
        allowed = set(range(max(0, position - half), max(0, min(key_blocks - 1, position + half)) + 1))
        allowed |= set(range(min(global_blocks, key_blocks)))
        candidates = [b for b in range(key_blocks) if b not in allowed]
        for _ in range(min(random_blocks, len(candidates))):
            allowed.add(candidates.pop(stream.below(len(candidates))))
        rows.append(allowed)
    return pairs(tq, tk, lambda i, j: (j // block) in rows[i // block])


pattern_case("pattern_bigbird", 12, 12, bigbird_mask(12, 12, 2, 1, 1, 2, seed=7))
pattern_case("pattern_bigbird_window3", 11, 14, bigbird_mask(11, 14, 3, 3, 1, 1, seed=11))


def hard_sampled_case(name, scores, mask, seed):
    """Sampled hard attention: one uniform per row (row-major), inverse CDF over
    softmax(allowed scores); log p of the draw and its gradient by autograd."""
    scores = scores.clone().requires_grad_(True)
    allowed = scores.masked_fill(~mask.expand_as(scores), float("-inf"))
    any_allowed = mask.expand_as(scores).any(dim=-1)
    logp_all = torch.log_softmax(torch.where(any_allowed[..., None], allowed, torch.zeros_like(allowed)), dim=-1)
    probabilities = logp_all.detach().exp() * any_allowed[..., None]
    stream = PhiloxStream(seed)
    flat_p = probabilities.reshape(-1, scores.shape[-1])
    choices, weights = [], torch.zeros_like(flat_p)
    for row in range(flat_p.shape[0]):
        u = stream.uniform()
        p = flat_p[row].double()
        if p.sum() == 0:
            choices.append(0)
            continue
        cdf = torch.cumsum(p, 0) / p.sum()
        choice = int(torch.searchsorted(cdf, torch.tensor([u], dtype=torch.float64), right=True).clamp(max=len(p) - 1))
        while p[choice] == 0:      # never land on a masked key
            choice -= 1
        margin = min(abs(u - float(cdf[choice])), abs(u - float(cdf[choice - 1])) if choice > 0 else 1.0)
        assert margin > 1e-4, "draw too close to a CDF boundary for an f32 comparison"
        choices.append(choice)
        weights[row, choice] = 1
    index = torch.tensor(choices).reshape(*scores.shape[:-1], 1)
    logp = logp_all.gather(-1, index).squeeze(-1) * any_allowed
    grad_out = torch.randn_like(logp)
    (dscores,) = torch.autograd.grad(logp, [scores], grad_out)
    tensors.update({f"{name}.scores": scores.detach(), f"{name}.mask": mask.float().contiguous(),
                    f"{name}.weights": weights.reshape(scores.shape), f"{name}.log_probability": logp.detach().contiguous(),
                    f"{name}.grad_out": grad_out, f"{name}.dscores": dscores.contiguous()})


hard_mask = torch.rand(2, 1, 3, 9) > 0.3
hard_mask[1, 0, 2, :] = False
hard_sampled_case("hard_sampled", torch.randn(2, 2, 3, 9) * 2, hard_mask, seed=5)


# --- nn.MultiheadAttention ------------------------------------------------------------
def mha_case(name, e, heads, kdim=None, vdim=None, bias=True, b=2, tq=4, tk=6, lengths=None):
    layer = torch.nn.MultiheadAttention(e, heads, bias=bias, batch_first=True, kdim=kdim, vdim=vdim)
    x, key, value = rand(b, tq, e), rand(b, tk, kdim or e), rand(b, tk, vdim or e)
    padding = None
    if lengths is not None:
        padding = torch.arange(tk)[None, :] >= torch.tensor(lengths)[:, None]   # True = ignore (PyTorch)
    out, weights = layer(x, key, value, key_padding_mask=padding, need_weights=True, average_attn_weights=False)
    params = dict(layer.named_parameters())
    inputs = {"x": x, "key": key, "value": value}
    grad_out = torch.randn_like(out)
    names = list(params)
    grads = torch.autograd.grad(out, list(inputs.values()) + [params[n] for n in names], grad_out)
    for key_name, tensor in inputs.items():
        tensors[f"{name}.{key_name}"] = tensor.detach().contiguous()
    for param_name, grad in zip(names, grads[len(inputs):]):
        tensors[f"{name}.{param_name}"] = params[param_name].detach().contiguous()
        tensors[f"{name}.d{param_name}"] = grad.contiguous()
    for key_name, grad in zip(inputs, grads[:len(inputs)]):
        tensors[f"{name}.d{key_name}"] = grad.contiguous()
    tensors[f"{name}.grad_out"] = grad_out.contiguous()
    tensors[f"{name}.out"] = out.detach().contiguous()
    tensors[f"{name}.weights"] = weights.detach().contiguous()


mha_case("mha_self_padding", 16, 4, lengths=[6, 3])
mha_case("mha_cross_kdim_vdim_nobias", 12, 3, kdim=7, vdim=5, bias=False, b=1, tq=1, tk=59)

save_file(tensors, os.path.join(HERE, "attention_dense.safetensors"), metadata={"generator": "make_attention_fixtures.py", "torch": torch.__version__})
print(f"wrote {len(tensors)} tensors")
