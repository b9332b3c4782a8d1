import HeedAttention
import HeedTensor

// BERT (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional
// Transformers for Language Understanding"): a post-norm Transformer encoder.
// One file, top to bottom: embeddings → attention → MLP → layer → config → model.
//
// Shapes: B batch, T tokens, E hidden size, H heads, D = E/H head size, F the
// MLP's intermediate size, V the vocabulary.

// MARK: - Embeddings

/// The input of BERT: word, absolute position and token-type (segment)
/// embeddings summed, then layer-normalised (`BertEmbeddings`, no dropout at
/// inference):
///
/// ```
/// x = LayerNorm(word[ids] + position[0 ..< T] + tokenType[typeIds])     [B, T, E]
/// ```
public struct BERTEmbeddings {
    /// [V, E]
    public var word: Embedding
    /// [maxPositions, E]
    public var position: Embedding
    /// [typeVocabularySize, E]
    public var tokenType: Embedding
    /// Over E.
    public var norm: LayerNorm

    /// Given tables and norm (from a checkpoint).
    public init(word: Embedding, position: Embedding, tokenType: Embedding, norm: LayerNorm) {
        self.word = word
        self.position = position
        self.tokenType = tokenType
        self.norm = norm
    }

    /// ids and typeIds [B, T] (typeIds nil: all 0) → [B, T, E]. T must not
    /// exceed the position table.
    public func callAsFunction(_ ids: IndexTensor, typeIds: IndexTensor? = nil) -> Tensor {
        precondition(ids.rank == 2, "BERTEmbeddings: ids must be [B, T], got \(ids.shape)")
        let t = ids.shape[1]
        precondition(t <= position.table.shape[0], "BERTEmbeddings: \(t) tokens exceed the \(position.table.shape[0]) positions")
        precondition(typeIds.map { $0.shape == ids.shape } ?? true, "BERTEmbeddings: typeIds \(typeIds!.shape) differ from ids \(ids.shape)")
        let positions = position.table.sliced(axis: 0, range: 0..<t)                                // [T, E]
        let types = typeIds.map { tokenType($0) }                                                   // [B, T, E]
            ?? tokenType.table.sliced(axis: 0, range: 0..<1)                                        // [1, E]
        return norm(word(ids) + positions + types)                                                  // [B, T, E]
    }
}

// MARK: - Attention

// Self-attention is HeedAttention's `MultiHeadAttention` (PyTorch [Out, In]
// projections with biases, H heads of D = E/H, scaled dot product, softmax);
// padding is its attention's pattern (a key-padding mask), set per batch.
// BERT's additive mask of dtype-min equals excluding the padded keys: their
// weights are exactly 0 in both.

// MARK: - MLP

/// BERT's feed-forward block (`BertIntermediate` + the dense part of `BertOutput`):
///
/// ```
/// y = GELU(x W_upᵀ + b_up) W_downᵀ + b_down      [.., E] → [.., F] → [.., E]
/// ```
///
/// with the exact (erf) GELU that `hidden_act = "gelu"` names.
public struct BERTMLP {
    /// [F, E]
    public var up: Linear
    /// [E, F]
    public var down: Linear
    /// The activation between the two projections.
    public var activation: Tensor.GELUApproximation

    /// Given projections.
    public init(up: Linear, down: Linear, activation: Tensor.GELUApproximation = .none) {
        self.up = up
        self.down = down
        self.activation = activation
    }

    /// x [.., E] → [.., E].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        down(up(x).gelu(approximate: activation))
    }
}

// MARK: - Layer

/// One encoder layer (`BertLayer`), post-norm as in the original Transformer:
///
/// ```
/// h = LayerNorm(x + SelfAttention(x))        [B, T, E]
/// y = LayerNorm(h + MLP(h))                  [B, T, E]
/// ```
public struct BERTLayer {
    /// Self-attention with its four projections.
    public var attention: MultiHeadAttention
    /// After the attention residual.
    public var attentionNorm: LayerNorm
    /// The feed-forward block.
    public var mlp: BERTMLP
    /// After the MLP residual.
    public var mlpNorm: LayerNorm

    /// Given parts.
    public init(attention: MultiHeadAttention, attentionNorm: LayerNorm, mlp: BERTMLP, mlpNorm: LayerNorm) {
        self.attention = attention
        self.attentionNorm = attentionNorm
        self.mlp = mlp
        self.mlpNorm = mlpNorm
    }

    /// x [B, T, E] → [B, T, E]; `pattern` says which keys each token sees
    /// (`.full`, or `.keyPadding(lengths:)` for a padded batch).
    public func callAsFunction(_ x: Tensor, pattern: Pattern = .full) -> Tensor {
        var selfAttention = attention
        selfAttention.attention.pattern = pattern
        let h = attentionNorm(x + selfAttention(x).output)                                          // [B, T, E]
        return mlpNorm(h + mlp(h))                                                                  // [B, T, E]
    }
}

// MARK: - Configuration

/// The shape of a BERT encoder. Field names follow Hugging Face's `BertConfig`
/// (config.json) in Swift spelling; defaults are BERT-base's, as `BertConfig()`.
public struct BERTConfiguration: Sendable, Equatable {
    /// V, `vocab_size` (BERT-base uncased: 30522).
    public var vocabularySize: Int = 30522
    /// E, `hidden_size` (768).
    public var hiddenSize: Int = 768
    /// Encoder layers, `num_hidden_layers` (12).
    public var layers: Int = 12
    /// H, `num_attention_heads` (12); divides E.
    public var heads: Int = 12
    /// F, `intermediate_size` (3072 = 4E).
    public var intermediateSize: Int = 3072
    /// `hidden_act`: "gelu" is the erf form (the default); "gelu_new"/"gelu_pytorch_tanh" the tanh form.
    public var activation: Tensor.GELUApproximation = .none
    /// Rows of the position table, `max_position_embeddings` (512).
    public var maxPositions: Int = 512
    /// Rows of the token-type table, `type_vocab_size` (2: sentences A and B).
    public var typeVocabularySize: Int = 2
    /// ε of every LayerNorm, `layer_norm_eps` (1e-12).
    public var layerNormEpsilon: Float = 1e-12
    /// `pad_token_id` (0); padding positions are masked, so only the tokenizer uses it.
    public var padTokenID: Int = 0

    /// BERT-base, or any fields changed.
    public init(vocabularySize: Int = 30522, hiddenSize: Int = 768, layers: Int = 12, heads: Int = 12,
                intermediateSize: Int = 3072, activation: Tensor.GELUApproximation = .none, maxPositions: Int = 512,
                typeVocabularySize: Int = 2, layerNormEpsilon: Float = 1e-12, padTokenID: Int = 0) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.activation = activation
        self.maxPositions = maxPositions
        self.typeVocabularySize = typeVocabularySize
        self.layerNormEpsilon = layerNormEpsilon
        self.padTokenID = padTokenID
    }

    /// D = E / H.
    public var headDimension: Int { hiddenSize / heads }
}

// MARK: - Model

/// The BERT encoder (`BertModel` without its pooler): token ids to one hidden
/// state per token.
///
/// ```
/// x₀ = Embeddings(ids, typeIds)           [B, T, E]
/// xᵢ = Layerᵢ(xᵢ₋₁)   for i = 1 … L        [B, T, E]
/// ```
///
/// For a padded batch pass each sequence's real length: padded keys are
/// excluded from every attention, so a sequence's states do not depend on
/// what it is batched with (the states at padded positions are meaningless).
public struct BERTModel {
    /// The shape it was built with.
    public let configuration: BERTConfiguration
    /// Word, position and token-type embeddings with their LayerNorm.
    public var embeddings: BERTEmbeddings
    /// The L encoder layers, input first.
    public var layers: [BERTLayer]

    /// Given parts (a loader builds them from a checkpoint).
    public init(configuration: BERTConfiguration, embeddings: BERTEmbeddings, layers: [BERTLayer]) {
        precondition(layers.count == configuration.layers,
                     "BERTModel: \(layers.count) layers given, configuration says \(configuration.layers)")
        self.configuration = configuration
        self.embeddings = embeddings
        self.layers = layers
    }

    /// Fresh parameters drawn as `BertPreTrainedModel._init_weights` does in
    /// spirit: N(0, 0.02) tables and projections (Philox, `seed`), zero biases,
    /// LayerNorm 1/0. For tests and training from scratch.
    public init(configuration c: BERTConfiguration, seed: UInt64 = 0) {
        var next = seed
        func normal(_ shape: [Int]) -> Tensor {
            next &+= 1
            return Tensor.randomNormal(shape, std: 0.02, seed: next, requiresGrad: true)
        }
        func linear(_ output: Int, _ input: Int) -> Linear {
            Linear(weight: normal([output, input]), bias: Tensor.zeros([output], requiresGrad: true))
        }
        func norm() -> LayerNorm { LayerNorm(dimension: c.hiddenSize, epsilon: c.layerNormEpsilon) }
        let embeddings = BERTEmbeddings(word: Embedding(table: normal([c.vocabularySize, c.hiddenSize])),
                                        position: Embedding(table: normal([c.maxPositions, c.hiddenSize])),
                                        tokenType: Embedding(table: normal([c.typeVocabularySize, c.hiddenSize])),
                                        norm: norm())
        let layers = (0..<c.layers).map { _ in
            let (q, k, v, o) = (linear(c.hiddenSize, c.hiddenSize), linear(c.hiddenSize, c.hiddenSize),
                                linear(c.hiddenSize, c.hiddenSize), linear(c.hiddenSize, c.hiddenSize))
            let attention = MultiHeadAttention(queryWeight: q.weight, keyWeight: k.weight, valueWeight: v.weight, outputWeight: o.weight,
                                               queryBias: q.bias, keyBias: k.bias, valueBias: v.bias, outputBias: o.bias,
                                               heads: c.heads)
            let mlp = BERTMLP(up: linear(c.intermediateSize, c.hiddenSize), down: linear(c.hiddenSize, c.intermediateSize),
                              activation: c.activation)
            return BERTLayer(attention: attention, attentionNorm: norm(), mlp: mlp, mlpNorm: norm())
        }
        self.init(configuration: c, embeddings: embeddings, layers: layers)
    }

    /// ids [B, T] → hidden states [B, T, E].
    ///
    /// - Parameters:
    ///   - typeIds: [B, T] segment ids, nil for all 0.
    ///   - lengths: the real length of each of the B sequences (padding on
    ///     the right); nil when none is padded.
    public func callAsFunction(_ ids: IndexTensor, typeIds: IndexTensor? = nil, lengths: [Int]? = nil) -> Tensor {
        precondition(lengths.map { $0.count == ids.shape[0] } ?? true,
                     "BERTModel: \(lengths?.count ?? 0) lengths for a batch of \(ids.shape[0])")
        // Key padding as a [B, 1, 1, Tk] mask built once (it broadcasts over heads
        // and queries), rather than `.keyPadding(lengths:)`, which each layer
        // would expand to [B, 1, Tq, Tk] again; both mean the same.
        let (b, t) = (ids.shape[0], ids.shape[1])
        var pattern = Pattern.full
        if let lengths, lengths.contains(where: { $0 != t }) {
            precondition(lengths.allSatisfy { $0 >= 1 && $0 <= t }, "BERTModel: lengths \(lengths) outside 1...\(t)")
            let mask = lengths.flatMap { length in (0..<t).map { Float($0 < length ? 1 : 0) } }
            pattern = .mask(Tensor(mask, shape: [b, 1, 1, t]))                                      // [B, 1, 1, Tk]
        }
        var x = embeddings(ids, typeIds: typeIds)                                                   // [B, T, E]
        for layer in layers { x = layer(x, pattern: pattern) }                                      // [B, T, E]
        return x
    }

    /// Every parameter, for optimizers.
    public var parameters: [Tensor] {
        var result = [embeddings.word.table, embeddings.position.table, embeddings.tokenType.table, embeddings.norm.weight]
        result += embeddings.norm.bias.map { [$0] } ?? []
        for layer in layers {
            result += layer.attention.parameters + [layer.attentionNorm.weight] + (layer.attentionNorm.bias.map { [$0] } ?? [])
            result += layer.mlp.up.parameters + layer.mlp.down.parameters
            result += [layer.mlpNorm.weight] + (layer.mlpNorm.bias.map { [$0] } ?? [])
        }
        return result
    }
}
