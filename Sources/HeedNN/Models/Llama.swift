import HeedAttention
import HeedTensor

// The Llama decoder (Touvron et al., 2023, "LLaMA: Open and Efficient
// Foundation Language Models"), as Hugging Face's `LlamaForCausalLM` computes
// it: pre-norm blocks with RMSNorm, rotary embeddings (half-split pairing),
// grouped-query attention and a SwiGLU MLP. SmolLM2 is this architecture.
//
// Read top to bottom: norm (``RMSNorm``, Layers.swift) → attention → MLP →
// block → configuration → model. Shapes: B batch, T new positions, E model
// width, H query heads, Hkv key/value heads, D head size, F MLP width,
// V vocabulary.

// MARK: - Attention

/// The attention of one Llama block: ``MultiHeadAttention`` without biases,
/// causal (bottom-right, so a KV cache gives the same result as recomputing),
/// rotary embeddings on queries and keys at their absolute positions.
///
/// ```
/// q, k, v = x W_qᵀ, x W_kᵀ, x W_vᵀ       // [B, H|Hkv, T, D]
/// q, k    = rope(q), rope(k)              // half-split, base θ
/// y       = softmax(q kᵀ / √D + causal) v W_oᵀ
/// ```
func llamaAttention(queryWeight: Tensor, keyWeight: Tensor, valueWeight: Tensor, outputWeight: Tensor,
                    configuration c: LlamaConfiguration) -> MultiHeadAttention {
    MultiHeadAttention(queryWeight: queryWeight, keyWeight: keyWeight, valueWeight: valueWeight, outputWeight: outputWeight,
                       heads: c.heads, keyValueHeads: c.keyValueHeads,
                       attention: Attention(pattern: .causal(.bottomRight)),
                       positionTransform: Rotary(headDimension: c.headDimension, base: c.ropeBase, convention: .halfSplit))
}

// MARK: - MLP

/// The SwiGLU feed-forward network (Shazeer, 2020, "GLU Variants Improve
/// Transformer"):
///
/// ```
/// y = W_down (silu(W_gate x) ⊙ W_up x)       // E → F → E
/// ```
public struct LlamaMLP {
    /// W_gate [F, E]
    public var gate: Linear
    /// W_up [F, E]
    public var up: Linear
    /// W_down [E, F]
    public var down: Linear

    /// Given projections (no biases in Llama).
    public init(gate: Linear, up: Linear, down: Linear) {
        precondition(gate.weight.shape == up.weight.shape && down.weight.shape == [gate.weight.shape[1], gate.weight.shape[0]],
                     "LlamaMLP: gate \(gate.weight.shape), up \(up.weight.shape), down \(down.weight.shape) must be [F, E], [F, E], [E, F]")
        self.gate = gate
        self.up = up
        self.down = down
    }

    /// x [B, T, E] → [B, T, E].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        down(gate(x).silu() * up(x))        // [B, T, F] → [B, T, E]
    }
}

// MARK: - Block

/// One pre-norm decoder block:
///
/// ```
/// h = x + attention(rmsNorm(x))
/// y = h + mlp(rmsNorm(h))
/// ```
public struct LlamaBlock {
    /// The norm before attention (`input_layernorm`).
    public var attentionNorm: RMSNorm
    /// Grouped-query causal self-attention with RoPE.
    public var attention: MultiHeadAttention
    /// The norm before the MLP (`post_attention_layernorm`).
    public var mlpNorm: RMSNorm
    /// The SwiGLU MLP.
    public var mlp: LlamaMLP

    /// Assembles a block from its parts.
    public init(attentionNorm: RMSNorm, attention: MultiHeadAttention, mlpNorm: RMSNorm, mlp: LlamaMLP) {
        self.attentionNorm = attentionNorm
        self.attention = attention
        self.mlpNorm = mlpNorm
        self.mlp = mlp
    }

    /// x [B, T, E] at positions `cache.position ..< cache.position + T` → [B, T, E];
    /// the block's keys and values are appended to `cache`.
    public func callAsFunction(_ x: Tensor, cache: inout KVCache) -> Tensor {
        let h = x + attention(attentionNorm(x), cache: &cache).output   // [B, T, E]
        return h + mlp(mlpNorm(h))                                       // [B, T, E]
    }
}

// MARK: - Configuration

/// The shape of a Llama model. Defaults are SmolLM2-135M's (its GGUF
/// `llama.*` metadata and HF `config.json`).
public struct LlamaConfiguration: Sendable, Equatable {
    /// V: token vocabulary (`llama.vocab_size`).
    public var vocabularySize = 49_152
    /// E: model width (`llama.embedding_length`).
    public var hiddenSize = 576
    /// F: SwiGLU width (`llama.feed_forward_length`).
    public var intermediateSize = 1_536
    /// Number of decoder blocks (`llama.block_count`).
    public var layers = 30
    /// H: query heads (`llama.attention.head_count`).
    public var heads = 9
    /// Hkv: key/value heads, dividing H (`llama.attention.head_count_kv`).
    public var keyValueHeads = 3
    /// ε of every RMSNorm (`llama.attention.layer_norm_rms_epsilon`).
    public var rmsNormEpsilon: Float = 1e-5
    /// RoPE wavelength base θ (`llama.rope.freq_base`).
    public var ropeBase: Double = 100_000
    /// Longest sequence the model was trained for (`llama.context_length`).
    public var contextLength = 8_192
    /// Whether the LM head reuses the token embedding (no `output.weight`).
    public var tiedEmbeddings = true

    /// D = E / H: the per-head size (64 for SmolLM2-135M).
    public var headDimension: Int { hiddenSize / heads }

    /// SmolLM2-135M's shape; change fields as needed.
    public init() {}

    /// Every field given.
    public init(vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, keyValueHeads: Int,
                rmsNormEpsilon: Float, ropeBase: Double, contextLength: Int, tiedEmbeddings: Bool) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layers = layers
        self.heads = heads
        self.keyValueHeads = keyValueHeads
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeBase = ropeBase
        self.contextLength = contextLength
        self.tiedEmbeddings = tiedEmbeddings
    }

    /// Why the configuration cannot describe a model, or nil when it can.
    public var problem: String? {
        if [vocabularySize, hiddenSize, intermediateSize, layers, heads, keyValueHeads, contextLength].contains(where: { $0 < 1 }) {
            return "sizes must be positive"
        }
        if hiddenSize % heads != 0 { return "hidden size \(hiddenSize) is not a multiple of \(heads) heads" }
        if heads % keyValueHeads != 0 { return "\(keyValueHeads) key/value heads do not divide \(heads) heads" }
        if headDimension % 2 != 0 { return "head size \(headDimension) must be even for rotary embeddings" }
        if !(rmsNormEpsilon > 0) || !(ropeBase > 0) { return "RMSNorm ε and RoPE base must be positive" }
        return nil
    }
}

// MARK: - Model

/// The Llama decoder-only language model:
///
/// ```
/// x      = embed(ids)                    // [B, T, E]
/// x      = block_l(x)  for l in 0 ..< L
/// logits = rmsNorm(x) W_headᵀ            // [B, T, V]; W_head = embedding table when tied
/// ```
///
/// Incremental decoding keeps one ``KVCache`` per block in a
/// ``LlamaModel/Cache``: feed the prompt once, then one token per step; the
/// logits equal those of recomputing the whole sequence.
public struct LlamaModel {
    /// The shape.
    public let configuration: LlamaConfiguration
    /// Token embedding [V, E].
    public var embedding: Embedding
    /// The decoder blocks.
    public var blocks: [LlamaBlock]
    /// The final norm (`model.norm`).
    public var finalNorm: RMSNorm
    /// The LM head [V, E]; nil when tied to ``embedding``.
    public var outputWeight: Tensor?

    /// Keys and values of every block, for incremental decoding.
    public struct Cache {
        /// One cache per block.
        public var layers: [KVCache]
        /// Positions processed so far: the position of the next token.
        public var position: Int { layers.first?.position ?? 0 }
        /// An empty cache for `layers` blocks.
        public init(layers: Int) { self.layers = Array(repeating: KVCache(), count: layers) }
    }

    /// Assembles a model from its parts (see HeedModels' GGUF loader).
    public init(configuration: LlamaConfiguration, embedding: Embedding, blocks: [LlamaBlock], finalNorm: RMSNorm,
                outputWeight: Tensor? = nil) {
        precondition(blocks.count == configuration.layers, "LlamaModel: \(blocks.count) blocks for \(configuration.layers) layers")
        precondition(embedding.table.shape == [configuration.vocabularySize, configuration.hiddenSize],
                     "LlamaModel: embedding \(embedding.table.shape) is not [V, E]")
        self.configuration = configuration
        self.embedding = embedding
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.outputWeight = outputWeight
    }

    /// Fresh parameters drawn from Philox with `seed` (normal 0.02 as HF's
    /// `initializer_range`; norms 1): for tests and training from scratch.
    public init(configuration c: LlamaConfiguration, seed: UInt64) {
        precondition(c.problem == nil, "LlamaModel: \(c.problem!)")
        let d = c.headDimension
        var next = seed
        func weight(_ shape: [Int]) -> Tensor {
            next &+= 1
            return Tensor.randomNormal(shape, std: 0.02, seed: next, requiresGrad: true)
        }
        func norm() -> RMSNorm { RMSNorm(dimension: c.hiddenSize, epsilon: c.rmsNormEpsilon) }
        let blocks = (0 ..< c.layers).map { _ in
            LlamaBlock(attentionNorm: norm(),
                       attention: llamaAttention(queryWeight: weight([c.heads * d, c.hiddenSize]),
                                                 keyWeight: weight([c.keyValueHeads * d, c.hiddenSize]),
                                                 valueWeight: weight([c.keyValueHeads * d, c.hiddenSize]),
                                                 outputWeight: weight([c.hiddenSize, c.heads * d]), configuration: c),
                       mlpNorm: norm(),
                       mlp: LlamaMLP(gate: Linear(weight: weight([c.intermediateSize, c.hiddenSize])),
                                     up: Linear(weight: weight([c.intermediateSize, c.hiddenSize])),
                                     down: Linear(weight: weight([c.hiddenSize, c.intermediateSize]))))
        }
        self.init(configuration: c, embedding: Embedding(table: weight([c.vocabularySize, c.hiddenSize])), blocks: blocks,
                  finalNorm: norm(), outputWeight: c.tiedEmbeddings ? nil : weight([c.vocabularySize, c.hiddenSize]))
    }

    /// A block assembled from checkpoint tensors in PyTorch layouts
    /// (`q_proj` [H·D, E], `k_proj`/`v_proj` [Hkv·D, E], `o_proj` [E, H·D],
    /// `gate_proj`/`up_proj` [F, E], `down_proj` [E, F], norms [E]).
    public static func block(configuration c: LlamaConfiguration, attentionNorm: Tensor, queryWeight: Tensor, keyWeight: Tensor,
                             valueWeight: Tensor, outputWeight: Tensor, mlpNorm: Tensor, gateWeight: Tensor, upWeight: Tensor,
                             downWeight: Tensor) -> LlamaBlock {
        LlamaBlock(attentionNorm: RMSNorm(weight: attentionNorm, epsilon: c.rmsNormEpsilon),
                   attention: llamaAttention(queryWeight: queryWeight, keyWeight: keyWeight, valueWeight: valueWeight,
                                             outputWeight: outputWeight, configuration: c),
                   mlpNorm: RMSNorm(weight: mlpNorm, epsilon: c.rmsNormEpsilon),
                   mlp: LlamaMLP(gate: Linear(weight: gateWeight), up: Linear(weight: upWeight), down: Linear(weight: downWeight)))
    }

    /// The final hidden states, after the last norm: ids [B, T] at positions
    /// `cache.position ..< cache.position + T` → [B, T, E]. Appends to `cache`.
    public func hiddenStates(_ ids: IndexTensor, cache: inout Cache) -> Tensor {
        precondition(ids.rank == 2, "LlamaModel: ids must be [B, T], got \(ids.shape)")
        precondition(cache.layers.count == blocks.count, "LlamaModel: cache for \(cache.layers.count) blocks, model has \(blocks.count)")
        var x = embedding(ids)                                   // [B, T, E]
        for (index, block) in blocks.enumerated() {
            x = block(x, cache: &cache.layers[index])            // [B, T, E]
        }
        return finalNorm(x)                                      // [B, T, E]
    }

    /// Logits of hidden states [.., E] → [.., V].
    public func logits(hiddenStates h: Tensor) -> Tensor {
        h.linear(weight: outputWeight ?? embedding.table)
    }

    /// Next-token logits for every position: ids [B, T] → [B, T, V].
    public func callAsFunction(_ ids: IndexTensor, cache: inout Cache) -> Tensor {
        logits(hiddenStates: hiddenStates(ids, cache: &cache))
    }

    /// Next-token logits for every position, without a cache: ids [B, T] → [B, T, V].
    public func callAsFunction(_ ids: IndexTensor) -> Tensor {
        var cache = Cache(layers: blocks.count)
        return self(ids, cache: &cache)
    }

    /// Next-token logits of the **last** position only, [B, V]: what
    /// generation needs (the LM head is the largest matmul; this skips it for
    /// the other positions).
    public func lastLogits(_ ids: IndexTensor, cache: inout Cache) -> Tensor {
        let h = hiddenStates(ids, cache: &cache)                 // [B, T, E]
        let t = h.shape[1]
        let last = h.sliced(axis: 1, start: t - 1, end: t)        // [B, 1, E]
            .reshaped([h.shape[0], h.shape[2]])                   // [B, E]
        return logits(hiddenStates: last)                        // [B, V]
    }
}
