import CBLAS
import CHeedKernels
import HeedAttention
import HeedNN
import HeedTensor

// The fast inference path of a Llama GGUF model: the same decoder as
// HeedNN's ``LlamaModel`` (the reference path, which dequantises every weight
// to f32 at load), computed on plain f32 buffers with the weights left in
// their GGUF blocks (``QuantizedMatrix``). Memory stays near the file size:
// the weights are the file's memory mapping; beyond it, only the KV cache and
// a few activation buffers.
//
// The arithmetic is the reference's up to rounding: the same dequantised
// weight values (the kernels unpack blocks exactly as the reference
// dequantisation does), activations in f32, RMSNorm, rotary tables and
// softmax as in HeedNN. Tests hold its logits to transformers' within 1e-3 and
// its greedy tokens to the reference's.
//
// One difference in form, none in result: llama.cpp's converter permutes the
// rows of `attn_q` and `attn_k` so that rotary pairs are adjacent (see
// ``LlamaModel/unpermuteRotaryRows(_:heads:)``). The reference path undoes the
// permutation; this one keeps the file's rows and rotates adjacent pairs
// (2i, 2i+1) by θ_i — the same rotation of the same numbers, stored in
// another order within each head, and q·k does not depend on that order.
//
// Shapes: n new tokens, E model width, H query heads, Hkv key/value heads,
// G = H / Hkv, D head size, F MLP width, V vocabulary, T cached positions.

/// A Llama model run straight from its GGUF weights (Q4_0, Q4_1 and Q8_0
/// blocks read in place, f32 activations).
///
/// ```swift
/// let file = try GGUFFile(url: URL(fileURLWithPath: "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
/// let model = try QuantizedLlama(gguf: file)
/// var cache = model.makeCache()
/// let logits = model.nextTokenLogits([6403, 1980, 253], cache: &cache)   // [V]
/// ```
public struct QuantizedLlama: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; the
    // matrices point into the GGUF mapping, which `QuantizedMatrix` keeps alive.

    struct Layer {
        let attentionNorm: [Float]            // [E]
        let query: QuantizedMatrix            // [H·D, E], rows in the file's (pair-adjacent) order
        let key: QuantizedMatrix              // [Hkv·D, E], likewise
        let value: QuantizedMatrix            // [Hkv·D, E]
        let output: QuantizedMatrix           // [E, H·D]
        let mlpNorm: [Float]                  // [E]
        let gate: QuantizedMatrix             // [F, E]
        let up: QuantizedMatrix               // [F, E]
        let down: QuantizedMatrix             // [E, F]
    }

    /// The shape (from the file's `llama.*` metadata).
    public let configuration: LlamaConfiguration
    let embedding: QuantizedMatrix            // [V, E]
    let layers: [Layer]
    let finalNorm: [Float]                    // [E]
    let head: QuantizedMatrix                 // [V, E]: `output.weight`, or the embedding when tied
    let rotary: Rotary

    /// How decoding steps (≤ 8 new tokens) multiply activations with the
    /// weight blocks. `.float32` (the default) keeps activations in f32 — the
    /// reference's arithmetic up to rounding; `.int8` quantises them to 8-bit
    /// blocks first, as llama.cpp does, for integer dot products: faster, and
    /// no longer exact (BENCHMARKS.md reports the drift). Prompts always run
    /// in f32 (panels dequantised for sgemm).
    public var activations: ActivationPrecision = .float32

    /// See ``activations``.
    public enum ActivationPrecision: Sendable {
        /// f32 activations (exact path).
        case float32
        /// 8-bit activation blocks, one f32 scale per 32 (opt-in fast path).
        case int8
    }

    /// Keys and values of every layer so far, token-major: layer l holds
    /// [T, Hkv, D] keys and values.
    public struct Cache: Sendable {
        var keys: [[Float]]
        var values: [[Float]]
        /// Positions processed so far: the position of the next token.
        public private(set) var position = 0

        init(layers: Int) {
            keys = Array(repeating: [], count: layers)
            values = keys
        }

        mutating func advance(by n: Int) { position += n }
    }

    /// An empty cache.
    public func makeCache() -> Cache { Cache(layers: layers.count) }

    /// The model of a GGUF file with `general.architecture` = llama.
    ///
    /// - Throws: ``ModelLoadError`` (the same checks as ``LlamaModel/init(gguf:)``).
    public init(gguf file: GGUFFile) throws(ModelLoadError) {
        let c = try LlamaConfiguration(gguf: file)
        let (e, f, d) = (c.hiddenSize, c.intermediateSize, c.headDimension)
        func vector(_ name: String) throws(ModelLoadError) -> [Float] { try file.modelTensor(name, shape: [e]).scalars }
        func matrix(_ name: String, _ rows: Int, _ columns: Int) throws(ModelLoadError) -> QuantizedMatrix {
            try QuantizedMatrix(file, name, rows: rows, columns: columns)
        }
        var layers: [Layer] = []
        for index in 0 ..< c.layers {
            let p = "blk.\(index)."
            layers.append(Layer(attentionNorm: try vector(p + "attn_norm.weight"),
                                query: try matrix(p + "attn_q.weight", c.heads * d, e),
                                key: try matrix(p + "attn_k.weight", c.keyValueHeads * d, e),
                                value: try matrix(p + "attn_v.weight", c.keyValueHeads * d, e),
                                output: try matrix(p + "attn_output.weight", e, c.heads * d),
                                mlpNorm: try vector(p + "ffn_norm.weight"),
                                gate: try matrix(p + "ffn_gate.weight", f, e),
                                up: try matrix(p + "ffn_up.weight", f, e),
                                down: try matrix(p + "ffn_down.weight", e, f)))
        }
        configuration = c
        self.layers = layers
        embedding = try matrix("token_embd.weight", c.vocabularySize, e)
        finalNorm = try vector("output_norm.weight")
        head = c.tiedEmbeddings ? embedding : try matrix("output.weight", c.vocabularySize, e)
        rotary = Rotary(headDimension: d, base: c.ropeBase)
    }

    /// Next-token logits [V] after `ids`, which take positions
    /// `cache.position ..< cache.position + ids.count` and are appended to the cache.
    /// Ids must lie in `0 ..< V` (``TextGenerator`` checks them).
    public func nextTokenLogits(_ ids: [Int], cache: inout Cache) -> [Float] {
        precondition(!ids.isEmpty && ids.allSatisfy { (0 ..< configuration.vocabularySize).contains($0) },
                     "QuantizedLlama: ids must be non-empty and in 0..<\(configuration.vocabularySize)")
        let c = configuration
        let (n, e, f) = (ids.count, c.hiddenSize, c.intermediateSize)
        let (h, hkv, d) = (c.heads, c.keyValueHeads, c.headDimension)
        var x = [Float](repeating: 0, count: n * e)               // [n, E] the residual stream
        var normed = x                                            // [n, E]
        var q = [Float](repeating: 0, count: n * h * d)           // [n, H·D]
        var k = [Float](repeating: 0, count: n * hkv * d)         // [n, Hkv·D]
        var v = k                                                 // [n, Hkv·D]
        var attended = q                                          // [n, H·D]
        var projected = x                                         // [n, E]
        var gate = [Float](repeating: 0, count: n * f)            // [n, F]
        var up = gate                                             // [n, F]
        let (cosines, sines) = rotary.tables(positions: Array(cache.position ..< cache.position + n))
        let (cos, sin) = (cosines.scalars, sines.scalars)         // [n, D/2] each
        let int8 = activations == .int8
        // Heed's pool shares out the cores, BLAS runs single-threaded inside it:
        // OpenBLAS's own workers, spin-yielding between calls, would compete with the pool.
        let blasThreads = heed_blas_get_threads()
        heed_blas_set_threads(1)
        defer { heed_blas_set_threads(blasThreads) }

        x.withUnsafeMutableBufferPointer { x in
            for (t, id) in ids.enumerated() { embedding.row(id, into: x.baseAddress! + t * e) }   // [n, E]
        }
        for (index, layer) in layers.enumerated() {
            // h = x + attention(rmsNorm(x))
            Self.rmsNorm(x, layer.attentionNorm, epsilon: c.rmsNormEpsilon, into: &normed)
            normed.withUnsafeBufferPointer { input in
                q.withUnsafeMutableBufferPointer { q in
                    k.withUnsafeMutableBufferPointer { k in
                        v.withUnsafeMutableBufferPointer { v in
                            QuantizedMatrix.multiply([(layer.query, input.baseAddress!, q.baseAddress!),
                                                      (layer.key, input.baseAddress!, k.baseAddress!),
                                                      (layer.value, input.baseAddress!, v.baseAddress!)], tokens: n, int8Activations: int8)
                        }
                    }
                }
            }
            Self.rotatePairs(&q, heads: h, headDimension: d, cos: cos, sin: sin)
            Self.rotatePairs(&k, heads: hkv, headDimension: d, cos: cos, sin: sin)
            cache.keys[index] += k                                // [T, Hkv, D]
            cache.values[index] += v
            attend(q, keys: cache.keys[index], values: cache.values[index], start: cache.position, into: &attended)
            Self.multiply(layer.output, attended, n, int8, into: &projected)           // [n, E]
            Self.add(projected, to: &x)                                                  // [n, E]
            // y = h + down(silu(gate(rmsNorm(h))) ⊙ up(rmsNorm(h)))
            Self.rmsNorm(x, layer.mlpNorm, epsilon: c.rmsNormEpsilon, into: &normed)
            normed.withUnsafeBufferPointer { input in
                gate.withUnsafeMutableBufferPointer { g in
                    up.withUnsafeMutableBufferPointer { u in
                        QuantizedMatrix.multiply([(layer.gate, input.baseAddress!, g.baseAddress!),
                                                  (layer.up, input.baseAddress!, u.baseAddress!)], tokens: n, int8Activations: int8)
                    }
                }
            }
            Self.siluMultiply(&gate, up)                                                 // [n, F]
            Self.multiply(layer.down, gate, n, int8, into: &projected)                  // [n, E]
            Self.add(projected, to: &x)
        }
        cache.advance(by: n)
        // logits = rmsNorm(x_last) W_headᵀ
        let last = Array(x[((n - 1) * e)...])                      // [1, E]
        var lastNormed = [Float](repeating: 0, count: e)
        Self.rmsNorm(last, finalNorm, epsilon: c.rmsNormEpsilon, into: &lastNormed)
        var logits = [Float](repeating: 0, count: c.vocabularySize)
        Self.multiply(head, lastNormed, 1, int8, into: &logits)    // [V]
        return logits
    }

    // MARK: Steps

    private static func multiply(_ matrix: QuantizedMatrix, _ x: [Float], _ n: Int, _ int8: Bool, into y: inout [Float]) {
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                matrix.multiply(x.baseAddress!, tokens: n, into: y.baseAddress!, int8Activations: int8)
            }
        }
    }

    /// x += y (the residual adds).
    private static func add(_ y: [Float], to x: inout [Float]) {
        x.withUnsafeMutableBufferPointer { x in heed_binary_f32(HEED_ADD, x.baseAddress!, 1, y, 1, x.baseAddress!, Int64(x.count)) }
    }

    /// gate ← silu(gate) ⊙ up (SwiGLU).
    private static func siluMultiply(_ gate: inout [Float], _ up: [Float]) {
        gate.withUnsafeMutableBufferPointer { g in
            heed_unary_f32(HEED_SILU, g.baseAddress!, g.baseAddress!, Int64(g.count))
            heed_binary_f32(HEED_MUL, g.baseAddress!, 1, up, 1, g.baseAddress!, Int64(g.count))
        }
    }

    /// RMSNorm of each row of x [n, E] (as HF's `LlamaRMSNorm`, in f32):
    /// `y = w ⊙ x / √(mean(x²) + ε)`.
    static func rmsNorm(_ x: [Float], _ weight: [Float], epsilon: Float, into y: inout [Float]) {
        let e = weight.count
        for row in 0 ..< x.count / e {
            let base = row * e
            var sum: Float = 0
            for i in 0 ..< e { sum += x[base + i] * x[base + i] }
            let scale = 1 / (sum / Float(e) + epsilon).squareRoot()
            for i in 0 ..< e { y[base + i] = weight[i] * (x[base + i] * scale) }
        }
    }

    /// Rotary embedding of x [n, heads·D] on adjacent pairs (the file's row
    /// order): `(a, b) ← (a·cos − b·sin, b·cos + a·sin)` for pair i of each head,
    /// with token t's cos/sin [n, D/2].
    static func rotatePairs(_ x: inout [Float], heads: Int, headDimension d: Int, cos: [Float], sin: [Float]) {
        let half = d / 2, n = cos.count / half
        x.withUnsafeMutableBufferPointer { x in
            for t in 0 ..< n {
                for head in 0 ..< heads {
                    let base = (t * heads + head) * d
                    for i in 0 ..< half {
                        let a = x[base + 2 * i], b = x[base + 2 * i + 1]
                        let (c, s) = (cos[t * half + i], sin[t * half + i])
                        x[base + 2 * i] = a * c - b * s
                        x[base + 2 * i + 1] = b * c + a * s
                    }
                }
            }
        }
    }

    /// Causal grouped-query attention of the n new queries [n, H·D] at
    /// positions start ..< start + n over the cached keys and values [T, Hkv, D]
    /// (T = start + n): query t sees keys j ≤ start + t.
    ///
    /// ```
    /// out_h = softmax(q_h K_gᵀ / √D + causal) V_g,   g = h / G
    /// ```
    ///
    /// Decoding (n = 1) runs heads in parallel (`heed_attention_decode_f32`); a prompt runs
    /// (head, 64-query chunk) items in parallel, each reading only the keys
    /// its queries can see (the causal upper triangle is skipped chunk by chunk).
    private func attend(_ q: [Float], keys: [Float], values: [Float], start: Int, into out: inout [Float]) {
        let c = configuration
        let (h, hkv, d) = (c.heads, c.keyValueHeads, c.headDimension)
        let group = h / hkv, n = q.count / (h * d), total = start + n
        let scale = 1 / Float(d).squareRoot()
        q.withUnsafeBufferPointer { q in
            keys.withUnsafeBufferPointer { keys in
                values.withUnsafeBufferPointer { values in
                    out.withUnsafeMutableBufferPointer { out in
                        let (q, keys, values, out) = (q.baseAddress!, keys.baseAddress!, values.baseAddress!, out.baseAddress!)
                        if n == 1 {
                            // One query per head, heads over the cores.
                            parallelRegion(chunks: h) { head, _ in
                                withUnsafeTemporaryAllocation(of: Float.self, capacity: total) { scores in
                                    heed_attention_decode_f32(q + head * d, keys + head / group * d, values + head / group * d,
                                                              Int64(total), Int64(d), Int64(hkv * d), scale, scores.baseAddress!,
                                                              out + head * d)
                                }
                            }
                            return
                        }
                        let chunk = 64
                        let chunks = (n + chunk - 1) / chunk, items = h * chunks
                        // One chunk per (head, 64-query block); later blocks see more keys.
                        parallelRegion(chunks: items) { item, _ in
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk * total) { scores in
                                let (head, first) = (item % h, item / h * chunk)
                                let rows = Swift.min(chunk, n - first)
                                Self.attentionRows(q + first * h * d + head * d, queryStride: h * d, rows: rows,
                                                   keys: keys + head / group * d, values: values + head / group * d,
                                                   keyStride: hkv * d, visible: start + first + rows, firstPosition: start + first,
                                                   scale: scale, scores: scores.baseAddress!,
                                                   out: out + first * h * d + head * d, outStride: h * d, depth: d)
                            }
                        }
                    }
                }
            }
        }
    }

    /// softmax(Q Kᵀ · scale + mask) V for `rows` queries against the first
    /// `visible` keys, query row r at position firstPosition + r (keys after it masked).
    private static func attentionRows(_ q: UnsafePointer<Float>, queryStride: Int, rows: Int, keys: UnsafePointer<Float>,
                                      values: UnsafePointer<Float>, keyStride: Int, visible: Int, firstPosition: Int,
                                      scale: Float, scores: UnsafeMutablePointer<Float>,
                                      out: UnsafeMutablePointer<Float>, outStride: Int, depth d: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(visible), Int32(d), scale,
                    q, Int32(queryStride), keys, Int32(keyStride), 0, scores, Int32(visible))   // [rows, visible]
        for r in 0 ..< rows {
            let last = firstPosition + r                            // the last key row r may see
            if last + 1 < visible { (scores + r * visible + last + 1).update(repeating: -.infinity, count: visible - last - 1) }
        }
        heed_softmax_rows_f32(scores, scores, Int64(rows), Int64(visible))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(visible), 1,
                    scores, Int32(visible), values, Int32(keyStride), 0, out, Int32(outStride))  // [rows, D]
    }
}
