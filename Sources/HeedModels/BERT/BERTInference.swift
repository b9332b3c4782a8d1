import CBLAS
import CHeedKernels
import HeedAttention
import HeedNN
import HeedTensor

// The fast inference path of a BERT encoder: the same encoder as HeedNN's
// ``BERTModel`` (the reference path, composed of differentiable tensor ops),
// computed on plain f32 buffers for inference only — as ``QuantizedLlama`` is
// for ``LlamaModel``.
//
// The arithmetic is the reference's up to rounding; what changes is the work
// around it:
// - Sequences are packed back to back, without padding ("varlen"): the
//   products run over the real tokens only, and each sequence attends over
//   its own rows, so nothing needs a padding mask.
// - Q, K and V come from one product with the three weights stacked ([3E, E]).
// - The weight matrices are packed once (``PackedWeights``), and the linear
//   layers run on Heed's own micro-kernels (heed_packed.h), which start each
//   output at its bias and residual instead of a separate pass; a BLAS call
//   would pack the weights again on every call.
// - LayerNorm and GELU run in place as single kernels (heed_kernels.h).
// - Nothing is recorded for autodiff and no tensor is allocated per op.
//
// Shapes: N packed tokens, E hidden size, H heads, D = E/H, F the MLP width,
// L one sequence's length.

/// A BERT encoder's forward pass on packed, unpadded sequences — the fast
/// path of ``SentenceEmbedder``.
///
/// ```
/// x₀ = LayerNorm(word[ids] + position[0 ..< L] + tokenType[typeIds])     [N, E]
/// qkv = x W_qkvᵀ + b_qkv                                                 [N, 3E]
/// ctxₛ,ₕ = softmax(Qₛ,ₕ Kₛ,ₕᵀ / √D) Vₛ,ₕ      per sequence s and head h   [L, D]
/// h  = LayerNorm(x + ctx W_oᵀ + b_o)                                      [N, E]
/// x′ = LayerNorm(h + GELU(h W_upᵀ + b_up) W_downᵀ + b_down)               [N, E]
/// ```
///
/// Equal to ``BERTModel`` on the same weights up to rounding (tests hold it to
/// 1e-5). One call computes on the calling thread (the linear layers on
/// one core; the attention's small products through BLAS with its threads as
/// they are set); ``SentenceEmbedder`` gives each core whole batches and BLAS
/// one thread.
public struct BERTInference: @unchecked Sendable {
    // @unchecked: the stored tensors and packed weights are only read — a
    // Tensor's values never change after creation (HeedTensor's contract), and
    // PackedWeights writes its panels only in init — so sharing them across
    // threads is safe.

    struct Layer {
        let queryKeyValue: PackedWeights      // [3E, E]: W_q, W_k, W_v stacked
        let queryKeyValueBias: Tensor         // [3E]
        let output: PackedWeights             // [E, E]
        let outputBias: Tensor                // [E]
        let attentionNorm: LayerNorm          // over E
        let up: PackedWeights                 // [F, E]
        let upBias: Tensor                    // [F]
        let down: PackedWeights               // [E, F]
        let downBias: Tensor                  // [E]
        let mlpNorm: LayerNorm                // over E
    }

    /// The shape of the encoder.
    public let configuration: BERTConfiguration
    let embeddings: BERTEmbeddings
    let layers: [Layer]

    /// The weights of `model`: the embeddings, norms and biases shared (not
    /// copied), the weight matrices packed (Q, K and V stacked into one per layer).
    ///
    /// Nil unless the model is a plain BERT encoder — every attention with H
    /// query and key/value heads of D = E/H, a scaled dot-product score with
    /// the default scale and temperature, softmax, no softcap, bias, dropout or
    /// position transform, every MLP with the configuration's activation —
    /// which is what ``BERTCheckpoint`` builds. Missing biases count as zeros.
    public init?(model: BERTModel) {
        let c = model.configuration
        let (e, f) = (c.hiddenSize, c.intermediateSize)
        func checked(_ tensor: Tensor?, _ shape: [Int]) -> Tensor {
            guard let tensor else { return Tensor.zeros(shape) }
            precondition(tensor.shape == shape, "BERTInference: a parameter of shape \(tensor.shape) where \(shape) belongs")
            return tensor.detached()
        }
        func norm(_ norm: LayerNorm) -> LayerNorm {
            LayerNorm(weight: checked(norm.weight, [e]), bias: checked(norm.bias, [e]), epsilon: norm.epsilon)
        }
        configuration = c
        embeddings = BERTEmbeddings(word: Embedding(table: checked(model.embeddings.word.table, [c.vocabularySize, e])),
                                    position: Embedding(table: checked(model.embeddings.position.table, [c.maxPositions, e])),
                                    tokenType: Embedding(table: checked(model.embeddings.tokenType.table, [c.typeVocabularySize, e])),
                                    norm: norm(model.embeddings.norm))
        for layer in model.layers {
            let (a, attention) = (layer.attention, layer.attention.attention)
            guard a.heads == c.heads, a.keyValueHeads == c.heads, a.headDimension * c.heads == e,
                  a.valueHeadDimension == a.headDimension, a.positionTransform == nil,
                  case .scaledDot(nil) = attention.score, attention.temperature == 1, attention.softcap == nil,
                  attention.biases.isEmpty, attention.normalizer == .softmax, attention.dropout == 0,
                  layer.mlp.activation == c.activation else { return nil }
        }
        layers = model.layers.map { layer in
            let a = layer.attention
            let stacked = Tensor.withoutGrad {
                (Tensor.concatenate([checked(a.queryWeight, [e, e]), checked(a.keyWeight, [e, e]), checked(a.valueWeight, [e, e])], axis: 0),
                 Tensor.concatenate([checked(a.queryBias, [e]), checked(a.keyBias, [e]), checked(a.valueBias, [e])], axis: 0))
            }
            return Layer(queryKeyValue: PackedWeights(stacked.0), queryKeyValueBias: stacked.1,
                         output: PackedWeights(checked(a.outputWeight, [e, e])), outputBias: checked(a.outputBias, [e]),
                         attentionNorm: norm(layer.attentionNorm),
                         up: PackedWeights(checked(layer.mlp.up.weight, [f, e])), upBias: checked(layer.mlp.up.bias, [f]),
                         down: PackedWeights(checked(layer.mlp.down.weight, [e, f])), downBias: checked(layer.mlp.down.bias, [e]),
                         mlpNorm: norm(layer.mlpNorm))
        }
    }

    /// The hidden states of each sequence, packed: the rows of sequence i are
    /// `offsets[i] ..< offsets[i + 1]` of the [N, E] result, N = Σ lengths.
    ///
    /// - Parameters:
    ///   - ids: token ids of each sequence (1 ... maxPositions tokens, each in 0 ..< V).
    ///   - typeIds: segment ids of each sequence, the same lengths; nil for all 0.
    public func hiddenStates(ids: [[Int]], typeIds: [[Int]]? = nil) -> (states: [Float], offsets: [Int]) {
        let workspace = Workspace(tokens: ids.reduce(0) { $0 + $1.count }, longest: ids.map(\.count).max() ?? 0,
                                  configuration: configuration)
        return withHiddenStates(ids: ids, typeIds: typeIds, workspace: workspace) { states, offsets in
            (Array(UnsafeBufferPointer(start: states, count: offsets.last! * configuration.hiddenSize)), offsets)
        }
    }

    /// body(states, offsets) with the packed states [N, E] in `workspace`
    /// (valid during the call only); see ``hiddenStates(ids:typeIds:)``.
    func withHiddenStates<R>(ids: [[Int]], typeIds: [[Int]]?, workspace: Workspace,
                             _ body: (UnsafePointer<Float>, [Int]) -> R) -> R {
        let c = configuration
        precondition(typeIds.map { $0.map(\.count) == ids.map(\.count) } ?? true,
                     "BERTInference: typeIds must have the lengths of ids")
        precondition(ids.allSatisfy { (1 ... c.maxPositions).contains($0.count) },
                     "BERTInference: every sequence needs 1...\(c.maxPositions) tokens")
        precondition(ids.allSatisfy { $0.allSatisfy { (0 ..< c.vocabularySize).contains($0) } },
                     "BERTInference: token ids must be in 0..<\(c.vocabularySize)")
        precondition(typeIds.map { $0.allSatisfy { $0.allSatisfy { (0 ..< c.typeVocabularySize).contains($0) } } } ?? true,
                     "BERTInference: type ids must be in 0..<\(c.typeVocabularySize)")
        var offsets = [0]
        for sequence in ids { offsets.append(offsets.last! + sequence.count) }
        precondition(offsets.last! <= workspace.tokens && (ids.map(\.count).max() ?? 0) <= workspace.longest,
                     "BERTInference: \(offsets.last!) tokens exceed the workspace's \(workspace.tokens)")
        forward(ids: ids, typeIds: typeIds, offsets: offsets, workspace: workspace, into: workspace.states)
        return body(workspace.states, offsets)
    }

    /// Buffers for forward passes over up to `tokens` packed tokens, sequences
    /// of up to `longest`; reusable from one pass to the next (one at a time).
    final class Workspace {
        let tokens: Int
        let longest: Int
        let states: UnsafeMutablePointer<Float>   // [N, E]: the residual stream, then the result
        let qkv: UnsafeMutablePointer<Float>      // [N, 3E]
        let context: UnsafeMutablePointer<Float>  // [N, E]
        let hidden: UnsafeMutablePointer<Float>   // [N, E]
        let up: UnsafeMutablePointer<Float>       // [N, F]
        let scores: UnsafeMutablePointer<Float>   // [L, L]

        /// The bytes its buffers hold.
        let bytes: Int

        init(tokens: Int, longest: Int, configuration c: BERTConfiguration) {
            (self.tokens, self.longest) = (tokens, longest)
            let (n, e) = (Swift.max(tokens, 1), c.hiddenSize)
            let counts = [n * e, n * 3 * e, n * e, n * e, n * c.intermediateSize, Swift.max(longest * longest, 1)]
            (states, qkv, context, hidden) = (.allocate(capacity: counts[0]), .allocate(capacity: counts[1]),
                                              .allocate(capacity: counts[2]), .allocate(capacity: counts[3]))
            (up, scores) = (.allocate(capacity: counts[4]), .allocate(capacity: counts[5]))
            bytes = 4 * counts.reduce(0, +)
        }

        deinit {
            for buffer in [states, qkv, context, hidden, up, scores] { buffer.deallocate() }
        }
    }

    /// The encoder over packed sequences (rows `offsets[i] ..< offsets[i + 1]`),
    /// writing the last layer's states into `x` [N, E], which also carries the
    /// residual stream between layers.
    func forward(ids: [[Int]], typeIds: [[Int]]?, offsets: [Int], workspace w: Workspace,
                 into x: UnsafeMutablePointer<Float>) {
        let c = configuration
        let (n, e, f, heads) = (offsets.last!, c.hiddenSize, c.intermediateSize, c.heads)
        let d = e / heads
        guard n > 0 else { return }
        // x = LayerNorm(word[ids] + position[t] + tokenType[typeIds])       [N, E]
        withPointers([embeddings.word.table, embeddings.position.table, embeddings.tokenType.table]) { tables in
            let (word, position, tokenType) = (tables[0], tables[1], tables[2])
            for (s, sequence) in ids.enumerated() {
                for (t, id) in sequence.enumerated() {
                    let row = x + (offsets[s] + t) * e
                    heed_binary_f32(HEED_ADD, word + id * e, 1, position + t * e, 1, row, Int64(e))
                    heed_binary_f32(HEED_ADD, row, 1, tokenType + (typeIds?[s][t] ?? 0) * e, 1, row, Int64(e))
                }
            }
        }
        Self.layerNorm(x, n, embeddings.norm)

        let gelu = c.activation == .none ? HEED_GELU_ERF : HEED_GELU_TANH
        let scale = 1 / Float(d).squareRoot()
        for layer in layers {
            // qkv = x W_qkvᵀ + b_qkv                                          [N, 3E]
            Self.linear(x, n, layer.queryKeyValue, layer.queryKeyValueBias, into: w.qkv)
            // ctx: each sequence's heads attend over its own rows             [N, E]
            for s in 0 ..< ids.count {
                let (first, length) = (offsets[s], offsets[s + 1] - offsets[s])
                for head in 0 ..< heads {
                    let q = w.qkv + first * 3 * e + head * d                  // [L, D], row stride 3E
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(length), Int32(length), Int32(d), scale,
                                q, Int32(3 * e), q + e, Int32(3 * e), 0, w.scores, Int32(length))          // [L, L]
                    heed_softmax_rows_f32(w.scores, w.scores, Int64(length), Int64(length))
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(length), Int32(d), Int32(length), 1,
                                w.scores, Int32(length), q + 2 * e, Int32(3 * e), 0,
                                w.context + first * e + head * d, Int32(e))                               // [L, D]
                }
            }
            // h = LayerNorm(x + ctx W_oᵀ + b_o)                               [N, E]
            Self.linear(w.context, n, layer.output, layer.outputBias, residual: x, into: w.hidden)
            Self.layerNorm(w.hidden, n, layer.attentionNorm)
            // up = GELU(h W_upᵀ + b_up)                                        [N, F]
            Self.linear(w.hidden, n, layer.up, layer.upBias, into: w.up)
            heed_unary_f32(gelu, w.up, w.up, Int64(n * f))
            // x = LayerNorm(h + up W_downᵀ + b_down)                          [N, E]
            Self.linear(w.up, n, layer.down, layer.downBias, residual: w.hidden, into: x)
            Self.layerNorm(x, n, layer.mlpNorm)
        }
    }

    /// out = input Wᵀ + bias (+ residual) for input [n, inputs], W [outputs, inputs].
    static func linear(_ input: UnsafePointer<Float>, _ n: Int, _ weight: PackedWeights, _ bias: Tensor,
                       residual: UnsafePointer<Float>? = nil, into out: UnsafeMutablePointer<Float>) {
        withPointers([bias]) { weight.apply(input, rows: n, bias: $0[0], residual: residual, into: out) }
    }

    /// x = LayerNorm(x) in place, row by row of x [n, E].
    static func layerNorm(_ x: UnsafeMutablePointer<Float>, _ n: Int, _ norm: LayerNorm) {
        withPointers([norm.weight, norm.bias!]) { pointers in
            heed_layer_norm_rows_f32(x, x, Int64(n), Int64(norm.weight.count), pointers[0], pointers[1], norm.epsilon)
        }
    }
}
