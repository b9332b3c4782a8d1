#!/usr/bin/env python3
"""Reference fixtures for Heed's recurrent-era attention layers.

Writes Tests/Fixtures/attention/recurrent_*.safetensors. Run from anywhere:

    /work/venv-torch/bin/python Tests/Fixtures/attention/make_recurrent_fixtures.py

PyTorch has no op for these layers, so each is a straightforward PyTorch
transcription of the paper's equations, written per batch row and per target
step (a loop over the source positions a row may see, not Heed's dense masked
layout), computed in float64 and stored as float32:

- Bahdanau, Cho & Bengio (ICLR 2015): context eq. 5, weights eq. 6, alignment
  model of appendix A.1.2, e_j = v_a^T tanh(W_a s + U_a h_j).
- Luong, Pham & Manning (EMNLP 2015): scores eq. 8 (dot, general, concat with
  one matrix over [h_t; h̄_s]), global weights eq. 7, attentional state eq. 5
  h̃_t = tanh(W_c [c_t; h_t]), local-p position eq. 9
  p_t = S sigmoid(v_p^T tanh(W_p h_t)), local weights eq. 10
  a_t(s) = align(h_t, h̄_s) exp(-(s - p_t)^2 / (2 sigma^2)), sigma = D/2, with
  align the softmax over the window positions only.

Heed conventions the transcription follows (documented in the Swift layers):
source positions are 0-based; the local window is centred on floor(p_t + 1/2)
and holds the positions within D of it that the row may attend; S is the
row's source length (its padding length); padded positions get weight 0 and a
row with nothing to attend to gets zero context and weights.

Heed stores every projection for right-multiplication (x @ W, W [in, out]);
the fixture holds them in that layout and the transcription uses their
transposes, the paper's W [out, in]. General's W_a is a bilinear form
h_t^T W_a h̄_s and is stored as the paper writes it, [Dd, De].

Each fixture holds the inputs, the parameters, the outputs, a random seed per
output ("seed_<output>", used as grad_outputs) and the gradients
("grad_<input>") of sum(seed * output) w.r.t. the decoder state, the encoder
outputs and every parameter. Metadata records the configuration.
"""

import math
import os

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPE = torch.float64


def uniform(shape, fan_in, generator):
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1) * bound


def normal(shape, generator):
    return torch.randn(shape, generator=generator, dtype=torch.float32)


def softmax(x):
    return torch.softmax(x, dim=0)


# ---------------------------------------------------------------- Bahdanau


def bahdanau(state, encoder, lengths, p):
    """Appendix A.1.2 + eq. 6 + eq. 5, one decoder state s per batch row."""
    W_a = p["state_weight"].T      # paper W_a [A, Dd]
    U_a = p["encoder_weight"].T    # paper U_a [A, De]
    v_a = p["vector"]              # [A]
    B, T, De = encoder.shape
    contexts, weights = [], []
    for b in range(B):
        L = lengths[b]
        if L == 0:
            contexts.append(torch.zeros(De, dtype=DTYPE))
            weights.append(torch.zeros(T, dtype=DTYPE))
            continue
        s = state[b]
        e = torch.stack([v_a @ torch.tanh(W_a @ s + U_a @ encoder[b, j]) for j in range(L)])  # e_j
        alpha = softmax(e)                                                                    # eq. 6
        contexts.append(sum(alpha[j] * encoder[b, j] for j in range(L)))                      # eq. 5
        weights.append(torch.cat([alpha, torch.zeros(T - L, dtype=DTYPE)]))
    return {"context": torch.stack(contexts), "weights": torch.stack(weights)}


# ---------------------------------------------------------------- Luong


def luong_score(kind, h_t, h_bar, p):
    """eq. 8 for one target state h_t [Dd] and one source state h̄_s [De]."""
    if kind == "dot":
        return h_t @ h_bar
    if kind == "general":
        W_a = p["score_weight"]              # paper W_a [Dd, De], stored as is (a bilinear form)
        return h_t @ (W_a @ h_bar)
    if kind == "concat":
        W_a = p["score_weight"].T            # paper W_a [A, Dd + De] over the concatenation
        return p["score_vector"] @ torch.tanh(W_a @ torch.cat([h_t, h_bar]))
    raise ValueError(kind)


def luong(states, encoder, lengths, p, cfg):
    """Global (eq. 7) or local (eq. 9-10) Luong attention, states [B, Tq, Dd]."""
    B, Tq, Dd = states.shape
    T, De = encoder.shape[1], encoder.shape[2]
    window, D = cfg["window"], cfg.get("half_width", 0)
    contexts, weights, positions, attentional = [], [], [], []
    for b in range(B):
        S = lengths[b]
        row_c, row_w, row_p, row_h = [], [], [], []
        for i in range(Tq):
            h_t = states[b, i]
            if window == "global":
                visible = list(range(S))
                p_t = None
            else:
                if window == "monotonic":
                    p_t = torch.tensor(float(cfg["step_offset"] + i), dtype=DTYPE)
                else:  # eq. 9
                    W_p = p["position_weight"].T
                    p_t = S * torch.sigmoid(p["position_vector"] @ torch.tanh(W_p @ h_t))
                centre = int(math.floor(p_t.item() + 0.5))
                visible = [s for s in range(centre - D, centre + D + 1) if 0 <= s < S]
            if visible:
                scores = torch.stack([luong_score(cfg["score"], h_t, encoder[b, s], p) for s in visible])
                a = softmax(scores)                                   # eq. 7 (over the window for local)
                if p_t is not None:                                   # eq. 10
                    sigma = D / 2
                    a = a * torch.stack([torch.exp(-(s - p_t) ** 2 / (2 * sigma ** 2)) for s in visible])
                c_t = sum(a[k] * encoder[b, s] for k, s in enumerate(visible))
                full = torch.zeros(T, dtype=DTYPE)
                full = full.index_put((torch.tensor(visible),), a)
            else:
                c_t = torch.zeros(De, dtype=DTYPE)
                full = torch.zeros(T, dtype=DTYPE)
            row_c.append(c_t)
            row_w.append(full)
            if p_t is not None:
                row_p.append(p_t)
            if "output_weight" in p:                                  # eq. 5
                W_c = p["output_weight"].T                            # paper W_c [Dc, De + Dd]
                row_h.append(torch.tanh(W_c @ torch.cat([c_t, h_t])))
        contexts.append(torch.stack(row_c))
        weights.append(torch.stack(row_w))
        if row_p:
            positions.append(torch.stack(row_p))
        if row_h:
            attentional.append(torch.stack(row_h))
    out = {"context": torch.stack(contexts), "weights": torch.stack(weights)}
    if positions:
        out["aligned_position"] = torch.stack(positions)
    if attentional:
        out["attentional_state"] = torch.stack(attentional)
    return out


# ---------------------------------------------------------------- driver


def make(name, layer, cfg, batch, source_length, decoder_size, encoder_size, lengths, seed, steps=None):
    generator = torch.Generator().manual_seed(seed)
    state_shape = [batch, decoder_size] if steps is None else [batch, steps, decoder_size]
    inputs = {"state": normal(state_shape, generator), "encoder_outputs": normal([batch, source_length, encoder_size], generator)}
    params = {}
    A = cfg.get("attention_size", 4)
    if layer == "bahdanau":
        params["state_weight"] = uniform([decoder_size, A], decoder_size, generator)
        params["encoder_weight"] = uniform([encoder_size, A], encoder_size, generator)
        params["vector"] = uniform([A], A, generator)
    else:
        # Larger weights than the default init so the scores are not all near 0.
        if cfg["score"] == "general":
            params["score_weight"] = normal([decoder_size, encoder_size], generator) * 0.5
        elif cfg["score"] == "concat":
            params["score_weight"] = normal([decoder_size + encoder_size, A], generator) * 0.5
            params["score_vector"] = normal([A], generator)
        if cfg["window"] == "predictive":
            params["position_weight"] = normal([decoder_size, A], generator) * 0.5
            params["position_vector"] = normal([A], generator)
        if cfg.get("output_size"):
            params["output_weight"] = uniform([encoder_size + decoder_size, cfg["output_size"]], encoder_size + decoder_size, generator)

    leaves = {k: v.to(DTYPE).requires_grad_(True) for k, v in {**inputs, **params}.items()}
    if layer == "bahdanau":
        outputs = bahdanau(leaves["state"], leaves["encoder_outputs"], lengths, leaves)
    else:
        states = leaves["state"] if steps is not None else leaves["state"].unsqueeze(1)
        outputs = luong(states, leaves["encoder_outputs"], lengths, leaves, cfg)
        if steps is None:
            outputs = {k: v.squeeze(1) for k, v in outputs.items()}

    if "aligned_position" in outputs:
        # Heed rounds p_t in float32: keep every centre clear of a rounding tie.
        frac = (outputs["aligned_position"].detach() + 0.5) % 1.0
        assert torch.all((frac > 1e-3) & (frac < 1 - 1e-3)), f"{name}: a window centre is within 1e-3 of a tie; change the seed"

    seeds = {f"seed_{k}": normal(list(v.shape), generator) for k, v in outputs.items()}
    total = sum((outputs[k] * seeds[f"seed_{k}"].to(DTYPE)).sum() for k in outputs)
    grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
    tensors = {}
    tensors.update(inputs)
    tensors.update(params)
    tensors["lengths"] = torch.tensor(lengths, dtype=torch.float32)
    tensors.update({k: v.detach().to(torch.float32) for k, v in outputs.items()})
    tensors.update(seeds)
    for key, grad in zip(leaves, grads):
        tensors[f"grad_{key}"] = (torch.zeros_like(leaves[key]) if grad is None else grad).to(torch.float32)
    metadata = {"layer": layer, **{k: str(v) for k, v in cfg.items()}}
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(HERE, f"recurrent_{name}.safetensors"), metadata=metadata)
    print(f"recurrent_{name}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in tensors.items() if not k.startswith(("seed_", "grad_"))))


def main():
    # Bahdanau: padding with an all-padded row; T = 1 with De = 59; T = 59.
    make("bahdanau_padded", "bahdanau", {"attention_size": 4}, 3, 7, 5, 6, [7, 3, 0], seed=1)
    make("bahdanau_t1", "bahdanau", {"attention_size": 5}, 2, 1, 3, 59, [1, 1], seed=2)
    make("bahdanau_t59", "bahdanau", {"attention_size": 6}, 2, 59, 4, 6, [59, 31], seed=3)
    # Luong global: the three scores, with the attentional state.
    make("luong_dot", "luong", {"score": "dot", "window": "global", "output_size": 5}, 3, 7, 6, 6, [7, 4, 0], seed=4)
    make("luong_general_t59", "luong", {"score": "general", "window": "global", "output_size": 4}, 2, 59, 5, 7, [59, 20], seed=5, steps=3)
    make("luong_concat", "luong", {"score": "concat", "window": "global", "attention_size": 4, "output_size": 3},
         3, 7, 5, 6, [7, 2, 0], seed=6)
    make("luong_concat_t1", "luong", {"score": "concat", "window": "global", "attention_size": 3}, 2, 1, 4, 59, [1, 1], seed=7)
    # Luong local-p (eq. 9-10) and local-m.
    make("luong_local_p", "luong", {"score": "general", "window": "predictive", "half_width": 3, "attention_size": 4, "output_size": 5},
         3, 59, 5, 6, [59, 17, 0], seed=11, steps=2)
    make("luong_local_p_t1", "luong", {"score": "dot", "window": "predictive", "half_width": 1, "attention_size": 3},
         2, 1, 4, 4, [1, 1], seed=9)
    make("luong_local_m", "luong", {"score": "dot", "window": "monotonic", "half_width": 2, "step_offset": 2},
         2, 7, 6, 6, [7, 3], seed=10, steps=4)


if __name__ == "__main__":
    main()
