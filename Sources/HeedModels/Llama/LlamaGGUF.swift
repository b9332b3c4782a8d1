import HeedNN
import HeedTensor

// Llama models from GGUF files (llama.cpp's format): `llama.*` metadata → a
// ``LlamaConfiguration``, ggml tensor names → the model's parts, every weight
// dequantised to f32.

extension LlamaConfiguration {
    /// The configuration a GGUF file's `llama.*` metadata describe.
    ///
    /// | key | field |
    /// |---|---|
    /// | `llama.block_count` | ``layers`` |
    /// | `llama.embedding_length` | ``hiddenSize`` |
    /// | `llama.feed_forward_length` | ``intermediateSize`` |
    /// | `llama.attention.head_count` | ``heads`` |
    /// | `llama.attention.head_count_kv` | ``keyValueHeads`` (default: heads) |
    /// | `llama.attention.layer_norm_rms_epsilon` | ``rmsNormEpsilon`` |
    /// | `llama.rope.freq_base` | ``ropeBase`` (default 10000) |
    /// | `llama.context_length` | ``contextLength`` |
    /// | `llama.vocab_size` | ``vocabularySize`` (default: the embedding's rows) |
    ///
    /// ``tiedEmbeddings`` is true when the file has no `output.weight`.
    ///
    /// - Throws: ``ModelLoadError`` for another architecture, a missing or
    ///   mistyped key, or values that describe no model (e.g. a rotary
    ///   dimension other than the head size, which Heed's Llama does not use).
    public init(gguf file: GGUFFile) throws(ModelLoadError) {
        let architecture = try Self.read("general.architecture") { () throws(GGUFError) in try file.string("general.architecture") }
        guard architecture == "llama" else { throw .unsupportedArchitecture(architecture, expected: "llama") }
        func integer(_ key: String, default value: Int? = nil) throws(ModelLoadError) -> Int {
            if value != nil, file.metadata[key] == nil { return value! }
            return try Self.read(key) { () throws(GGUFError) in try file.integer(key) }
        }
        func number(_ key: String, default value: Double? = nil) throws(ModelLoadError) -> Double {
            if value != nil, file.metadata[key] == nil { return value! }
            return try Self.read(key) { () throws(GGUFError) in try file.number(key) }
        }
        self.init()
        layers = try integer("llama.block_count")
        hiddenSize = try integer("llama.embedding_length")
        intermediateSize = try integer("llama.feed_forward_length")
        heads = try integer("llama.attention.head_count")
        keyValueHeads = try integer("llama.attention.head_count_kv", default: heads)
        rmsNormEpsilon = Float(try number("llama.attention.layer_norm_rms_epsilon"))
        ropeBase = try number("llama.rope.freq_base", default: 10_000)
        contextLength = try integer("llama.context_length")
        let embeddingRows = (try? file.info("token_embd.weight"))?.shape.first
        vocabularySize = try integer("llama.vocab_size", default: embeddingRows ?? 0)
        tiedEmbeddings = !file.contains(tensor: "output.weight")
        if let problem { throw .invalidConfiguration(problem) }
        if heads > 0, hiddenSize % heads == 0 {
            let rotary = try integer("llama.rope.dimension_count", default: headDimension)
            guard rotary == headDimension else {
                throw .invalidConfiguration("rotary dimension \(rotary) differs from the head size \(headDimension)")
            }
        }
        if file.metadata["llama.rope.scaling.type"] != nil || file.metadata["llama.rope.scale_linear"] != nil {
            throw .invalidConfiguration("RoPE scaling is not supported")
        }
    }

    private static func read<T>(_ key: String, _ body: () throws(GGUFError) -> T) throws(ModelLoadError) -> T {
        do { return try body() } catch {
            switch error {
            case .keyNotFound: throw .metadata(key: key, reason: "missing")
            case .typeMismatch(_, let expected, let found): throw .metadata(key: key, reason: "expected \(expected), found \(found)")
            default: throw .gguf(error)
            }
        }
    }
}

extension LlamaModel {
    /// A Llama model from a GGUF file, every weight dequantised to f32
    /// (SmolLM2-135M: about 540 MB).
    ///
    /// Tensor names (ggml → Hugging Face): `token_embd` → `embed_tokens`,
    /// `blk.N.attn_norm` → `input_layernorm`, `attn_q/k/v/output` →
    /// `q/k/v/o_proj`, `ffn_norm` → `post_attention_layernorm`,
    /// `ffn_gate/up/down` → `gate/up/down_proj`, `output_norm` → `norm`,
    /// `output` → `lm_head` (absent when tied).
    ///
    /// llama.cpp's converter permutes the rows of `attn_q` and `attn_k` so that
    /// its interleaved RoPE reproduces Hugging Face's half-split one; the
    /// loader undoes it (see ``unpermuteRotaryRows(_:heads:)``), so the model
    /// runs half-split rotary embeddings exactly as `transformers` does.
    ///
    /// - Throws: ``ModelLoadError``.
    public init(gguf file: GGUFFile) throws(ModelLoadError) {
        let c = try LlamaConfiguration(gguf: file)
        let (e, f, d) = (c.hiddenSize, c.intermediateSize, c.headDimension)
        func load(_ name: String, _ shape: [Int]) throws(ModelLoadError) -> Tensor { try file.modelTensor(name, shape: shape) }
        var blocks: [LlamaBlock] = []
        for layer in 0 ..< c.layers {
            let p = "blk.\(layer)."
            blocks.append(LlamaModel.block(
                configuration: c,
                attentionNorm: try load(p + "attn_norm.weight", [e]),
                queryWeight: Self.unpermuteRotaryRows(try load(p + "attn_q.weight", [c.heads * d, e]), heads: c.heads),
                keyWeight: Self.unpermuteRotaryRows(try load(p + "attn_k.weight", [c.keyValueHeads * d, e]), heads: c.keyValueHeads),
                valueWeight: try load(p + "attn_v.weight", [c.keyValueHeads * d, e]),
                outputWeight: try load(p + "attn_output.weight", [e, c.heads * d]),
                mlpNorm: try load(p + "ffn_norm.weight", [e]),
                gateWeight: try load(p + "ffn_gate.weight", [f, e]),
                upWeight: try load(p + "ffn_up.weight", [f, e]),
                downWeight: try load(p + "ffn_down.weight", [e, f])))
        }
        let embedding = try load("token_embd.weight", [c.vocabularySize, e])
        let finalNorm = try load("output_norm.weight", [e])
        let output = c.tiedEmbeddings ? nil : try load("output.weight", [c.vocabularySize, e])
        self.init(configuration: c, embedding: Embedding(table: embedding), blocks: blocks,
                  finalNorm: RMSNorm(weight: finalNorm, epsilon: c.rmsNormEpsilon), outputWeight: output)
    }

    /// Undoes llama.cpp's Q/K row permutation (`convert_hf_to_gguf.py`'s
    /// `permute`; Hugging Face's GGUF loader calls the inverse `reverse_permute`).
    ///
    /// Within each head of D rows, the converter stores Hugging Face's row
    /// `j·D/2 + i` (half j ∈ {0, 1}, pair i < D/2) at row `2i + j`, so that
    /// adjacent rows form RoPE pairs. This moves every row back:
    ///
    /// ```
    /// hf[h·D + j·D/2 + i] = gguf[h·D + 2i + j]
    /// ```
    ///
    /// - Parameters:
    ///   - weight: [heads·D, In] as stored in the GGUF file.
    ///   - heads: H for `attn_q`, Hkv for `attn_k`.
    /// - Returns: [heads·D, In] in Hugging Face's order.
    public static func unpermuteRotaryRows(_ weight: Tensor, heads: Int) -> Tensor {
        precondition(weight.rank == 2 && weight.shape[0] % (2 * heads) == 0,
                     "unpermuteRotaryRows: \(weight.shape) rows are not heads (\(heads)) × an even head size")
        let (rows, columns) = (weight.shape[0], weight.shape[1])
        let d = rows / heads, half = d / 2
        let source = weight.scalars
        return Tensor(shape: weight.shape, unsafeUninitializedFill: { out in
            source.withUnsafeBufferPointer { source in
                for h in 0 ..< heads {
                    for j in 0 ..< 2 {
                        for i in 0 ..< half {
                            let to = (h * d + j * half + i) * columns, from = (h * d + 2 * i + j) * columns
                            (out.baseAddress! + to).update(from: source.baseAddress! + from, count: columns)
                        }
                    }
                }
            }
        })
    }
}

extension GGUFFile {
    /// The info of tensor `name`, checked for a model loader: present, of
    /// `shape`, and of a type Heed can read.
    ///
    /// - Throws: ``ModelLoadError/missingTensor(_:)``, ``ModelLoadError/tensorShape(name:found:expected:)``
    ///   or ``ModelLoadError/unsupportedTensorType(name:type:)``.
    func modelTensorInfo(_ name: String, shape: [Int]) throws(ModelLoadError) -> GGUFTensorInfo {
        guard let info = try? info(name) else { throw .missingTensor(name) }
        guard info.shape == shape else { throw .tensorShape(name: name, found: info.shape, expected: shape) }
        guard info.type.canDequantize else { throw .unsupportedTensorType(name: name, type: "\(info.type)") }
        return info
    }

    /// Tensor `name` dequantised to f32, after ``modelTensorInfo(_:shape:)``'s checks.
    func modelTensor(_ name: String, shape: [Int]) throws(ModelLoadError) -> Tensor {
        _ = try modelTensorInfo(name, shape: shape)
        do { return try tensor(name) } catch { throw .gguf(error) }
    }
}
