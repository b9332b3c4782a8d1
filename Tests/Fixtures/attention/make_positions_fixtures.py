"""Reference outputs and gradients for Heed's position encodings
(Sources/HeedAttention/Positions).

Run from the repository root with a Python that has torch and safetensors:

    python Tests/Fixtures/attention/make_positions_fixtures.py

PyTorch has no op for any of these, so each is a straightforward PyTorch
transcription of its definition, written here independently of Heed:

- sinusoidal: Vaswani et al. 2017, §3.5, PE(pos, 2i) = sin(pos / 10000^(2i/D)),
  PE(pos, 2i+1) = cos(pos / 10000^(2i/D)), in float64, in the usual
  `pe[:, 0::2] = sin, pe[:, 1::2] = cos` form (for odd D the cosine columns
  use the first ⌊D/2⌋ frequencies); the concatenated layout is
  `cat(pe[:, 0::2], pe[:, 1::2])` (Hugging Face `create_sinusoidal_embeddings`);
- learned: `torch.nn.functional.embedding` of a table (gradient to the table);
- rotary: Su et al. 2021 (RoFormer) eq. 34, x·cos + rotate(x)·sin, in two
  conventions: Hugging Face's `rotate_half` form (Llama, GPT-NeoX: feature i
  pairs with i + R/2, cos/sin tables `cat(freqs, freqs)`) and the GPT-J /
  paper form (`rotate_every_two`: pairs (2i, 2i+1), tables repeat-interleaved);
  partial rotation leaves features R..D untouched; tables in float64;
- ALiBi: Press et al. 2022 §3, slopes by the authors' reference `get_slopes`
  (ofirpress/attention_with_linear_biases, fairseq/models/transformer.py,
  transcribed below), bias = −m_h·(p_i − j), and the symmetric −m_h·|p_i − j|;
- T5 relative position buckets: Raffel et al. 2020 §2.1, transcription of
  `_relative_position_bucket` (Mesh TensorFlow / Hugging Face T5Attention),
  bias = table[bucket(j − p_i)] (gradient to the table);
- end-to-end: torch.nn.functional.scaled_dot_product_attention on
  rotary-rotated q/k with the ALiBi (or T5) bias plus a causal −inf mask as
  `attn_mask`.

Query positions are p_i = offset + i and keys sit at 0..Tk−1 (Heed's
AttentionBias convention). Each case `name` stores its inputs, the backward
seed (`name.seed`, used as grad_outputs), the output and the gradients;
integer data (positions, buckets) are stored as float32 (exact below 2^24).
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20261124)
HERE = os.path.dirname(os.path.abspath(__file__))


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def backward(out, inputs, name, store, grad_names):
    """Seeds out with a stored random tensor; stores d<input> for each input."""
    seed = rand(*out.shape)
    store[f"{name}.seed"] = seed
    grads = torch.autograd.grad(out, inputs, grad_outputs=seed.to(out.dtype))
    for g, gname in zip(grads, grad_names):
        store[f"{name}.{gname}"] = f32(g)


# ---------------------------------------------------------------- sinusoidal
def sinusoidal(positions, d, base=10000.0):
    """Vaswani §3.5, float64. positions: 1-D long tensor."""
    pos = positions.to(torch.float64)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(base) / d))  # base^(−2i/D)
    pe = torch.zeros(len(positions), d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d // 2])
    return pe


def make_sinusoidal():
    store = {}
    for name, d, t, offset, base in [("d59", 59, 7, 5, 10000.0), ("d64_t1", 64, 1, 0, 10000.0),
                                     ("d16_far", 16, 3, 1000, 10000.0), ("d5_base100", 5, 4, 2, 100.0)]:
        pe = sinusoidal(torch.arange(offset, offset + t), d, base)
        store[f"{name}.interleaved"] = f32(pe)
        store[f"{name}.concatenated"] = f32(torch.cat([pe[:, 0::2], pe[:, 1::2]], dim=1))
        store[f"{name}.config"] = torch.tensor([d, t, offset, base], dtype=torch.float32)
    return store


# ------------------------------------------------------------------- learned
def make_learned():
    store = {}
    table = rand(20, 59).requires_grad_(True)
    store["table"] = f32(table)
    # Positions offset..offset+T (offset 3, T 7).
    out = F.embedding(torch.arange(3, 10), table)
    store["range.out"] = f32(out)
    backward(out, [table], "range", store, ["dtable"])
    # Arbitrary positions with repeats and the last row: [2, 3].
    positions = torch.tensor([[0, 5, 5], [19, 0, 2]])
    store["gather.positions"] = positions.to(torch.float32)
    out = F.embedding(positions, table)
    store["gather.out"] = f32(out)
    backward(out, [table], "gather", store, ["dtable"])
    return store


# -------------------------------------------------------------------- rotary
def rope_tables(positions, r, base):
    inv_freq = 1.0 / (base ** (torch.arange(0, r, 2, dtype=torch.float64) / r))   # θ_i
    freqs = positions.to(torch.float64)[:, None] * inv_freq[None, :]              # [T, R/2]
    return torch.cos(freqs), torch.sin(freqs)


def rotate_half(x):
    """HF transformers: cat(−x2, x1)."""
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rotate_every_two(x):
    """GPT-J: pairs (2i, 2i+1) → (−x_{2i+1}, x_{2i})."""
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def rope(x, offset, r, base, convention):
    """RoFormer eq. 34 on the first r features of x [..., T, D] (float64 inside)."""
    t = x.shape[-2]
    cos, sin = rope_tables(torch.arange(offset, offset + t), r, base)
    x64 = x.to(torch.float64)
    xr, xpass = x64[..., :r], x64[..., r:]
    if convention == "half":
        cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
        rotated = xr * cos + rotate_half(xr) * sin
    else:
        cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
        rotated = xr * cos + rotate_every_two(xr) * sin
    return torch.cat((rotated, xpass), dim=-1)


ROPE_CASES = [
    # name, shape [B, H, T, D], rotary R, offset, base, convention
    ("half_d64", (2, 3, 5, 64), 64, 7, 10000.0, "half"),
    ("half_d59_r58_t1", (2, 2, 1, 59), 58, 11, 10000.0, "half"),
    ("half_d64_r16_base5e5", (1, 2, 4, 64), 16, 3, 500000.0, "half"),
    ("interleaved_d64", (2, 3, 5, 64), 64, 0, 10000.0, "interleaved"),
    ("interleaved_d59_r58", (1, 2, 4, 59), 58, 2, 10000.0, "interleaved"),
    ("interleaved_d8_t1_far", (1, 1, 1, 8), 8, 4096, 10000.0, "interleaved"),
]


def make_rotary():
    store = {}
    for name, shape, r, offset, base, convention in ROPE_CASES:
        x = rand(*shape).requires_grad_(True)
        store[f"{name}.x"] = f32(x)
        store[f"{name}.config"] = torch.tensor([r, offset, base], dtype=torch.float32)
        out = rope(x, offset, r, base, convention)
        store[f"{name}.out"] = f32(out)
        backward(out, [x], name, store, ["dx"])
    return store


# --------------------------------------------------------------------- ALiBi
def get_slopes(n):
    """The authors' reference rule (transcribed): geometric for a power of two,
    else the closest power of two plus every other slope of twice that."""
    def get_slopes_power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio ** i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    closest_power_of_2 = 2 ** math.floor(math.log2(n))
    return get_slopes_power_of_2(closest_power_of_2) + get_slopes(2 * closest_power_of_2)[0::2][: n - closest_power_of_2]


def alibi(heads, tq, tk, offset, symmetric=False):
    slopes = torch.tensor(get_slopes(heads), dtype=torch.float32)
    distance = (torch.arange(tq)[:, None] + offset - torch.arange(tk)[None, :]).to(torch.float32)  # p_i − j
    if symmetric:
        distance = distance.abs()
    return (-slopes[:, None, None] * distance[None]).unsqueeze(0)  # [1, H, Tq, Tk]


ALIBI_HEADS = [1, 2, 3, 5, 6, 8, 12, 16, 24, 32, 48]
ALIBI_CASES = [
    # name, heads, Tq, Tk, offset, symmetric
    ("h12_bottom_right", 12, 3, 7, 4, False),
    ("h8_square", 8, 5, 5, 0, False),
    ("h1_t1", 1, 1, 6, 5, False),
    ("h6_symmetric", 6, 4, 6, 1, True),
]


def make_alibi():
    store = {}
    for h in ALIBI_HEADS:
        store[f"slopes.h{h}"] = torch.tensor(get_slopes(h), dtype=torch.float32)
    for name, h, tq, tk, offset, symmetric in ALIBI_CASES:
        store[f"{name}.bias"] = alibi(h, tq, tk, offset, symmetric)
    return store


# ------------------------------------------------------------------------ T5
def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """Transcription of T5's `_relative_position_bucket` (int64 in, int64 out)."""
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    relative_position_if_large = torch.min(
        relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1))
    return relative_buckets + torch.where(is_small, relative_position, relative_position_if_large)


def t5_bias(table, tq, tk, offset, bidirectional, num_buckets, max_distance):
    context = torch.arange(tq)[:, None] + offset
    memory = torch.arange(tk)[None, :]
    buckets = relative_position_bucket(memory - context, bidirectional, num_buckets, max_distance)  # [Tq, Tk]
    return F.embedding(buckets, table).permute(2, 0, 1).unsqueeze(0)                             # [1, H, Tq, Tk]


BUCKET_CONFIGS = [
    # name, bidirectional, numBuckets, maxDistance
    ("bi_32_128", True, 32, 128),
    ("causal_32_128", False, 32, 128),
    ("bi_10_20", True, 10, 20),
    ("causal_7_50", False, 7, 50),
    ("bi_64_256", True, 64, 256),
]
T5_CASES = [
    # name, heads, Tq, Tk, offset, bidirectional, numBuckets, maxDistance
    ("bi_h3", 3, 4, 9, 5, True, 32, 128),
    ("causal_h2_t1_far", 2, 1, 200, 199, False, 32, 128),
    ("bi_h2_small", 2, 6, 40, 0, True, 10, 20),
]


def make_t5():
    store = {}
    relative = torch.arange(-300, 301)
    store["relative_positions"] = relative.to(torch.float32)
    for name, bidirectional, n, m in BUCKET_CONFIGS:
        store[f"buckets.{name}"] = relative_position_bucket(relative, bidirectional, n, m).to(torch.float32)
    for name, h, tq, tk, offset, bidirectional, n, m in T5_CASES:
        table = rand(n, h).requires_grad_(True)
        store[f"{name}.table"] = f32(table)
        store[f"{name}.config"] = torch.tensor([h, tq, tk, offset, n, m], dtype=torch.float32)
        out = t5_bias(table, tq, tk, offset, bidirectional, n, m)
        store[f"{name}.bias"] = f32(out)
        backward(out, [table], name, store, ["dtable"])
    return store


# ------------------------------------------------------------- end to end
def repeat_kv(x, group):
    return x.repeat_interleave(group, dim=1)


def make_end_to_end():
    store = {}
    # 1. Half-split RoPE on q/k (q at 3..5, k at 0..5), ALiBi with 6 heads
    #    (not a power of two), GQA 6/3, causal bottom-right (query i sees
    #    keys ≤ i + 3), batch 2.
    b, h, hkv, tq, tk, d, offset = 2, 6, 3, 3, 6, 16, 3
    q, k, v = rand(b, h, tq, d).requires_grad_(True), rand(b, hkv, tk, d).requires_grad_(True), rand(b, hkv, tk, d).requires_grad_(True)
    qr = rope(q, offset, d, 10000.0, "half").to(torch.float32)
    kr = rope(k, 0, d, 10000.0, "half").to(torch.float32)
    causal = torch.arange(tk)[None, :] <= torch.arange(tq)[:, None] + offset
    mask = torch.zeros(tq, tk).masked_fill(~causal, float("-inf"))
    bias = alibi(h, tq, tk, offset) + mask
    out = F.scaled_dot_product_attention(qr, repeat_kv(kr, h // hkv), repeat_kv(v, h // hkv), attn_mask=bias)
    for n, t in [("q", q), ("k", k), ("v", v)]:
        store[f"alibi_rope.{n}"] = f32(t)
    store["alibi_rope.out"] = f32(out)
    backward(out, [q, k, v], "alibi_rope", store, ["dq", "dk", "dv"])

    # 2. Interleaved partial RoPE (D 59, R 58), T5 bidirectional bias, no mask,
    #    Tq = Tk = 5, batch 1; gradients also to the T5 table.
    b, h, t, d = 1, 2, 5, 59
    q, k, v = rand(b, h, t, d).requires_grad_(True), rand(b, h, t, d).requires_grad_(True), rand(b, h, t, d).requires_grad_(True)
    table = rand(32, h).requires_grad_(True)
    qr = rope(q, 0, 58, 10000.0, "interleaved").to(torch.float32)
    kr = rope(k, 0, 58, 10000.0, "interleaved").to(torch.float32)
    bias = t5_bias(table, t, t, 0, True, 32, 128)
    out = F.scaled_dot_product_attention(qr, kr, v, attn_mask=bias)
    for n, tensor in [("q", q), ("k", k), ("v", v), ("table", table)]:
        store[f"t5_rope.{n}"] = f32(tensor)
    store["t5_rope.out"] = f32(out)
    backward(out, [q, k, v, table], "t5_rope", store, ["dq", "dk", "dv", "dtable"])
    return store


def main():
    files = {
        "positions_sinusoidal": make_sinusoidal(),
        "positions_learned": make_learned(),
        "positions_rotary": make_rotary(),
        "positions_alibi": make_alibi(),
        "positions_t5": make_t5(),
        "positions_attention": make_end_to_end(),
    }
    total = 0
    for stem, store in files.items():
        path = os.path.join(HERE, f"{stem}.safetensors")
        save_file({key: f32(value) for key, value in store.items()}, path)
        size = os.path.getsize(path)
        total += size
        print(f"{stem}.safetensors: {len(store)} tensors, {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
