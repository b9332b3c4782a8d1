#!/usr/bin/env python3
"""Reference outputs and gradients for Heed's linear / low-rank attentions.

Writes Tests/Fixtures/attention/linear_{performer,rfa,elu,linformer}.safetensors.
Run from anywhere with a Python that has torch and safetensors:

    /work/venv-torch/bin/python Tests/Fixtures/attention/make_linear_fixtures.py

Each file holds several cases; tensor names are "<case>.<name>":
  inputs   q [B,H,Tq,D], k [B,H,Tk,D], v [B,H,Tk,Dv] (+ method parameters)
  out      the reference output [B,H,Tq,Dv]
  seed     the upstream gradient used for backward (grad_outputs)
  grad_<x> d(sum(seed * out))/dx for every input x that has a gradient
  scalars  (sigma, causal, chunk) as one-element tensors

PyTorch has no op for any of these methods, so each is a straightforward
transcription of the paper's formula (cited per function), computed in
float64 and stored in float32. The causal forms are transcribed as the
recurrence / cumulative sums of the papers — a different algorithm from
Heed's chunked prefix sums. The random projections are drawn here
(torch.manual_seed) and stored, so Heed uses the very same matrices; the
orthogonal ones use torch.linalg.qr (Heed's own draw uses Gram-Schmidt).
Linformer's softmax stage runs through torch.nn.functional.scaled_dot_product_attention.
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
DT = torch.float64


def normal(*shape):
    """Gaussian draws that are exact in float32 (the stored inputs), held in float64."""
    return torch.randn(*shape, dtype=torch.float32).to(DT)


def f32(x):
    """x rounded to float32 (what the fixture stores), held in float64, as a leaf."""
    return x.detach().to(torch.float32).to(DT)


# ---------------------------------------------------------------- Performer
def orthogonal_gaussian(m, d):
    """Choromanski et al. 2021, orthogonal random features: blocks of d rows
    from QR of Gaussian matrices, rows rescaled by chi-distributed norms."""
    blocks = []
    while sum(b.shape[0] for b in blocks) < m:
        q, _ = torch.linalg.qr(normal(d, d))
        blocks.append(q.T[: m - sum(b.shape[0] for b in blocks)])
    norms = torch.linalg.norm(normal(m, d), dim=1)
    return norms[:, None] * torch.cat(blocks, 0)


def performer_features(x, w, is_query, eps=1e-6):
    """Positive random features, eq. 5 with h(x)=exp(-|x|^2/2), f=exp, data
    scaled by D^(-1/4); stabilised as the authors' softmax_kernel_transformation:
    subtract the max of w^T x (per row for queries, per (batch, head) over all
    keys), add eps."""
    d, m = x.shape[-1], w.shape[0]
    xs = x * d ** -0.25
    u = xs @ w.T
    half = (xs ** 2).sum(-1, keepdim=True) / 2
    c = u.amax(dim=-1, keepdim=True) if is_query else u.amax(dim=(-2, -1), keepdim=True)
    return (torch.exp(u - half - c) + eps) / math.sqrt(m)


# ---------------------------------------------------------------- RFA
def rfa_features(x, w, sigma):
    """Peng et al. 2021 eq. 2 on unit-normalised x, frequencies w / sigma."""
    x = F.normalize(x, dim=-1, eps=1e-12)
    a = x @ (w / sigma).T
    return torch.cat([torch.sin(a), torch.cos(a)], -1) / math.sqrt(w.shape[0])


def rfa_gate(gate_input, weight, bias):
    """Peng et al. 2021 eq. 7: g_t = sigmoid(w_g . x_t + b_g), per head."""
    logits = torch.einsum("bhtx,hx->bht", gate_input, weight) + bias[None, :, None]
    return torch.sigmoid(logits)


# ---------------------------------------------------------------- shared forms
def bidirectional(fq, fk, v, eps=0.0):
    """Katharopoulos et al. 2020 eq. 6: phi(Q)(phi(K)^T V) / (phi(Q) sum_j phi(k_j) + eps)."""
    num = fq @ (fk.transpose(-1, -2) @ v)
    den = fq @ fk.sum(-2).unsqueeze(-1)
    return num / (den + eps)


def causal_recurrent(fq, fk, v, eps=0.0, gate=None):
    """The RNN form, one step at a time (Katharopoulos et al. 2020 eq. 9-10;
    with a gate, Peng et al. 2021 eq. 7). Query i sits at position i + Tk - Tq."""
    b, h, tq, f = fq.shape
    tk, dv = fk.shape[2], v.shape[3]
    s = torch.zeros(b, h, f, dv, dtype=DT)
    z = torch.zeros(b, h, f, dtype=DT)
    outs = []
    for t in range(tk):
        kv = fk[:, :, t, :, None] * v[:, :, t, None, :]
        if gate is None:
            s, z = s + kv, z + fk[:, :, t]
        else:
            g = gate[:, :, t, None]
            s = g[..., None] * s + (1 - g)[..., None] * kv
            z = g * z + (1 - g) * fk[:, :, t]
        i = t - (tk - tq)
        if i >= 0:
            q = fq[:, :, i]
            num = torch.einsum("bhf,bhfd->bhd", q, s)
            den = (q * z).sum(-1, keepdim=True)
            outs.append(num / (den + eps))
    return torch.stack(outs, 2)


def causal_cumsum(fq, fk, v, eps=0.0):
    """Prefix sums written with torch.cumsum (Choromanski et al. 2021's
    unidirectional FAVOR+): S_i = sum_{j<=i} phi(k_j) v_j^T."""
    tq, tk = fq.shape[2], fk.shape[2]
    s = torch.cumsum(fk[..., :, None] * v[..., None, :], dim=2)[:, :, tk - tq:]
    z = torch.cumsum(fk, dim=2)[:, :, tk - tq:]
    num = torch.einsum("bhtf,bhtfd->bhtd", fq, s)
    den = (fq * z).sum(-1, keepdim=True)
    return num / (den + eps)


def causal_dense_weights(fq, fk, gate=None):
    """The causal attention matrix written out (for checks only): phi(q_i).phi(k_j)
    for j <= i + Tk - Tq, times prod_{j<l<=t} g_l (1 - g_j) when gated."""
    tq, tk = fq.shape[2], fk.shape[2]
    a = fq @ fk.transpose(-1, -2)
    pos = torch.arange(tq)[:, None] + (tk - tq)
    mask = (torch.arange(tk)[None, :] <= pos).to(DT)
    if gate is not None:
        logg = torch.log(gate)
        cum = torch.cumsum(logg, -1)                                  # [B,H,Tk]
        at = cum[:, :, tk - tq:]                                      # positions of the queries
        decay = torch.exp((at[..., :, None] - cum[..., None, :]).clamp(max=0.0)) * (1 - gate)[..., None, :]
        a = a * decay
    return a * mask


def check_causal(fq, fk, v, out, eps=0.0, gate=None, name="", min_den=0.0):
    """Cross-checks the recurrence against the dense masked formula, and that
    no denominator is near 0 (RFA's sin/cos estimate could be)."""
    a = causal_dense_weights(fq, fk, gate)
    den = a.sum(-1, keepdim=True)
    dense = (a @ v) / (den + eps)
    assert torch.allclose(dense, out, rtol=1e-9, atol=1e-9), f"{name}: recurrence and dense formula disagree"
    print(f"{name}: min |den| {den.abs().min().item():.4f}")
    assert den.abs().min() > min_den, f"{name}: denominator too close to 0"


# ---------------------------------------------------------------- writing
def finish(tensors, name, inputs, out):
    """Adds out, the backward seed and the gradients of every input."""
    seed = normal(*out.shape)
    grads = torch.autograd.grad(out, list(inputs.values()), grad_outputs=seed)
    tensors[f"{name}.out"] = out
    tensors[f"{name}.seed"] = seed
    for (key, _), g in zip(inputs.items(), grads):
        tensors[f"{name}.grad_{key}"] = g


def qkv(b, h, tq, tk, d, dv, scale=1.0):
    q = f32(normal(b, h, tq, d) * scale).requires_grad_()
    k = f32(normal(b, h, tk, d) * scale).requires_grad_()
    v = normal(b, h, tk, dv).requires_grad_()
    return q, k, v


def scalar(x):
    return torch.tensor([float(x)], dtype=DT)


def make_performer():
    t = {}
    # name, (B, H, Tq, Tk, D, Dv), m, causal, chunk (Swift side), orthogonal
    cases = [
        ("basic", (2, 2, 5, 7, 8, 6), 16, False, 64, True),
        ("iid", (1, 2, 4, 6, 8, 3), 12, False, 64, False),
        ("headdim59", (1, 1, 3, 4, 59, 5), 64, False, 64, True),
        ("single", (1, 2, 1, 1, 4, 3), 8, False, 64, True),
        ("causal", (2, 2, 9, 9, 8, 4), 16, True, 4, True),
        ("causalprefix", (1, 2, 3, 7, 6, 4), 10, True, 2, True),
        ("causalsingle", (2, 1, 1, 1, 59, 2), 8, True, 64, True),
    ]
    for name, (b, h, tq, tk, d, dv), m, causal, chunk, orth in cases:
        q, k, v = qkv(b, h, tq, tk, d, dv, scale=0.75)
        w = f32(orthogonal_gaussian(m, d)) if orth else normal(m, d)
        fq, fk = performer_features(q, w, True), performer_features(k, w, False)
        out = causal_cumsum(fq, fk, v) if causal else bidirectional(fq, fk, v)
        if causal:
            check_causal(fq, fk, v, out, name=f"performer {name}")
            assert torch.allclose(out, causal_recurrent(fq, fk, v), rtol=1e-9, atol=1e-9)
        t.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v, f"{name}.projection": w,
                  f"{name}.causal": scalar(causal), f"{name}.chunk": scalar(chunk)})
        finish(t, name, {"q": q, "k": k, "v": v}, out)
    return t


def make_rfa():
    t = {}
    # name, (B, H, Tq, Tk, D, Dv), m, sigma, causal, gated, chunk
    cases = [
        ("basic", (2, 2, 5, 6, 8, 4), 32, 1.0, False, False, 64),
        ("headdim59", (1, 1, 3, 4, 59, 5), 48, 1.5, False, False, 64),
        ("single", (1, 2, 1, 1, 4, 3), 8, 1.0, False, False, 64),
        ("causal", (2, 2, 8, 8, 8, 4), 32, 1.0, True, False, 3),
        ("gated", (2, 2, 8, 8, 8, 4), 32, 1.0, True, True, 3),
        ("gatedprefix", (1, 2, 3, 6, 6, 3), 24, 1.0, True, True, 2),
    ]
    gate_dim = 5
    for name, (b, h, tq, tk, d, dv), m, sigma, causal, gated, chunk in cases:
        q, k, v = qkv(b, h, tq, tk, d, dv)
        w = normal(m, d)
        fq, fk = rfa_features(q, w, sigma), rfa_features(k, w, sigma)
        inputs = {"q": q, "k": k, "v": v}
        gate = None
        if gated:
            x = normal(b, 1, tk, gate_dim).requires_grad_()
            wg = f32(normal(h, gate_dim) * 0.5).requires_grad_()
            bg = f32(normal(h) * 0.5 + 1.0).requires_grad_()
            gate = rfa_gate(x, wg, bg)
            inputs.update({"gate_input": x, "gate_weight": wg, "gate_bias": bg})
        out = causal_recurrent(fq, fk, v, gate=gate) if causal else bidirectional(fq, fk, v)
        # The sin/cos estimate of the denominator must stay clear of 0 for a
        # meaningful fixture (see RandomFeatureAttention's edge cases).
        if causal:
            check_causal(fq, fk, v, out, gate=gate, name=f"rfa {name}", min_den=0.02)
        else:
            den = fq @ fk.sum(-2).unsqueeze(-1)
            assert den.abs().min() > 0.05, f"rfa {name}: denominator too close to 0"
        for key, value in inputs.items():
            t[f"{name}.{key}"] = value
        t.update({f"{name}.projection": w, f"{name}.sigma": scalar(sigma),
                  f"{name}.causal": scalar(causal), f"{name}.chunk": scalar(chunk)})
        finish(t, name, inputs, out)
    return t


def make_elu():
    t = {}
    cases = [
        ("basic", (2, 2, 5, 7, 8, 6), False, 64),
        ("headdim59", (1, 1, 3, 4, 59, 5), False, 64),
        ("single", (1, 2, 1, 1, 4, 3), False, 64),
        ("causal", (2, 2, 9, 9, 8, 4), True, 4),
        ("causalprefix", (1, 2, 3, 7, 6, 4), True, 2),
        ("causalrnn", (1, 1, 5, 5, 59, 3), True, 1),
    ]
    eps = 1e-6
    for name, (b, h, tq, tk, d, dv), causal, chunk in cases:
        q, k, v = qkv(b, h, tq, tk, d, dv)
        fq, fk = F.elu(q) + 1, F.elu(k) + 1          # eq. 7
        out = causal_recurrent(fq, fk, v, eps) if causal else bidirectional(fq, fk, v, eps)
        if causal:
            check_causal(fq, fk, v, out, eps, name=f"elu {name}")
        t.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v,
                  f"{name}.causal": scalar(causal), f"{name}.chunk": scalar(chunk)})
        finish(t, name, {"q": q, "k": k, "v": v}, out)
    return t


def make_linformer():
    t = {}
    # name, (B, H, Tq, n, D, Dv), k, mode
    cases = [
        ("separate", (2, 2, 5, 7, 8, 6), 3, "separate"),
        ("shared", (1, 2, 4, 6, 8, 3), 2, "shared"),
        ("perhead", (2, 2, 3, 5, 6, 4), 3, "perhead"),
        ("headdim59", (1, 1, 3, 4, 59, 5), 2, "separate"),
        ("single", (1, 2, 1, 1, 4, 3), 1, "separate"),
    ]
    for name, (b, h, tq, n, d, dv), kk, mode in cases:
        q, k, v = qkv(b, h, tq, n, d, dv)
        shape = (h, kk, n) if mode == "perhead" else (kk, n)
        e = f32(normal(*shape) / math.sqrt(n)).requires_grad_()
        f = e if mode == "shared" else f32(normal(*shape) / math.sqrt(n)).requires_grad_()
        pe = e if e.dim() == 2 else e[None]
        pf = f if f.dim() == 2 else f[None]
        # Wang et al. 2020 eq. 7: softmax(Q (E K)^T / sqrt(d)) (F V)
        out = F.scaled_dot_product_attention(q, pe @ k, pf @ v)
        inputs = {"q": q, "k": k, "v": v, "e": e}
        if mode != "shared":
            inputs["f"] = f
        for key, value in inputs.items():
            t[f"{name}.{key}"] = value
        finish(t, name, inputs, out)
    return t


def main():
    torch.manual_seed(20240917)
    for family, make in [("performer", make_performer), ("rfa", make_rfa), ("elu", make_elu),
                         ("linformer", make_linformer)]:
        tensors = {key: value.detach().to(torch.float32).contiguous() for key, value in make().items()}
        path = os.path.join(HERE, f"linear_{family}.safetensors")
        save_file(tensors, path, metadata={"script": "make_linear_fixtures.py"})
        print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
