import CBLAS
import CHeedKernels
import Foundation
import HeedAttention
import HeedNN
import HeedTensor

/// Sentence embeddings from a sentence-transformers model folder
/// (all-MiniLM-L6-v2 and its BERT kin), computed as sentence-transformers does:
///
/// ```
/// ids      = WordPiece(text), truncated to max_seq_length        [T]
/// h        = BERT(ids)                                            [T, E]
/// pooled   = Σₜ h[t] / T          (mean over the real tokens)      [E]
/// embedding = pooled / max(‖pooled‖₂, 1e-12)   (when the model declares Normalize)
/// ```
///
/// The folder holds `config.json`, `model.safetensors`, `tokenizer.json` and,
/// as sentence-transformers writes them, `modules.json` (Transformer → Pooling
/// → optional Normalize), `sentence_bert_config.json` (`max_seq_length`) and
/// the pooling module's `config.json`. Without `modules.json` the folder is read
/// as a plain Hugging Face model: mean pooling, no normalisation.
///
/// Texts are embedded in batches padded to their longest member; padded keys
/// are masked out of attention and padded positions out of the mean, so an
/// embedding does not depend on the batch it was computed in.
public struct SentenceEmbedder {
    /// How token states become one vector.
    public enum Pooling: Sendable, Equatable {
        /// The mean over the real (unpadded) tokens.
        case mean
        /// The state of the first token (`[CLS]`).
        case cls
    }

    /// Which implementation of the encoder computes embeddings.
    public enum Engine: Sendable, Equatable {
        /// ``BERTInference``: packed unpadded sequences, fused products, batches
        /// spread over the cores (the default).
        case fast
        /// ``BERTModel``: the composed, differentiable reference, batch by batch.
        case reference
    }

    /// The encoder.
    public let model: BERTModel
    /// The encoder's fast path, on the same weights; nil for a model it does
    /// not cover (see ``BERTInference/init(model:)``), which then always runs
    /// on the reference.
    public let inference: BERTInference?
    /// Which of the two ``embed(_:batchSize:)`` runs; both give the same
    /// embeddings up to rounding.
    public var engine: Engine = .fast
    /// The fast engine's buffers, one per core, kept from call to call up to
    /// ``WorkspacePool/retainedLimit`` bytes (fresh buffers cost page faults).
    let workspaces: WorkspacePool
    /// The tokenizer of `tokenizer.json`.
    public let tokenizer: WordPieceTokenizer
    /// Texts are cut to this many tokens, `[CLS]` and `[SEP]` included.
    public let maxSequenceLength: Int
    /// How the token states are pooled.
    public let pooling: Pooling
    /// Whether embeddings are scaled to unit L2 norm (a `Normalize` module).
    public let normalizes: Bool

    /// Assembles a pipeline from its parts.
    public init(model: BERTModel, tokenizer: WordPieceTokenizer, maxSequenceLength: Int, pooling: Pooling = .mean,
                normalizes: Bool = true) {
        precondition(maxSequenceLength >= 2 && maxSequenceLength <= model.configuration.maxPositions,
                     "SentenceEmbedder: maxSequenceLength \(maxSequenceLength) outside 2...\(model.configuration.maxPositions)")
        self.model = model
        self.inference = BERTInference(model: model)
        self.workspaces = WorkspacePool(configuration: model.configuration)
        self.tokenizer = tokenizer
        self.maxSequenceLength = maxSequenceLength
        self.pooling = pooling
        self.normalizes = normalizes
    }

    /// Loads a sentence-transformers folder (see the type's description).
    ///
    /// - Throws: ``ModelError`` for a missing or malformed file, a module
    ///   Heed does not implement (a `Dense` layer, max pooling), or a
    ///   checkpoint that disagrees with `config.json`.
    public init(folder: URL) throws(ModelError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) else {
            throw .missingFile(path: folder.path)
        }
        guard isDirectory.boolValue else {
            throw .unreadableFile(path: folder.path, reason: "not a folder (give the model's folder, which holds config.json)")
        }
        let model = try BERTCheckpoint.load(folder: folder)
        let tokenizerURL = folder.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerURL.path) else { throw .missingFile(path: tokenizerURL.path) }
        let tokenizer: WordPieceTokenizer
        do { tokenizer = try WordPieceTokenizer(url: tokenizerURL) } catch { throw .tokenizer(error) }
        guard tokenizer.vocabularySize <= model.configuration.vocabularySize else {
            throw .invalidConfiguration(file: "tokenizer.json", field: "model.vocab",
                                        reason: "\(tokenizer.vocabularySize) tokens, but the model embeds only \(model.configuration.vocabularySize)")
        }
        var maxLength = tokenizer.configuredMaxLength ?? model.configuration.maxPositions
        var pooling = Pooling.mean, normalizes = false
        let modulesURL = folder.appendingPathComponent("modules.json")
        if FileManager.default.fileExists(atPath: modulesURL.path) {
            let modules = try ConfigurationFile(folder: folder, name: "modules.json")
            let entries = try modules.read { root throws(TokenizerError) in
                try root.array().map { entry throws(TokenizerError) in (type: try entry.member("type").string(), path: try entry.optionalMember("path")?.string() ?? "") }
            }
            for (index, entry) in entries.enumerated() {
                let type = entry.type.split(separator: ".").last.map(String.init) ?? entry.type
                switch (index, type) {
                case (0, "Transformer"):
                    maxLength = try Self.maxSequenceLength(folder: folder, default: maxLength)
                case (1, "Pooling"):
                    pooling = try Self.pooling(folder: folder, module: entry.path)
                case (2, "Normalize") where index == entries.count - 1:
                    normalizes = true
                default:
                    throw .unsupported(file: "modules.json", what: "module \(index) \(GGUFError.quote(entry.type)) (Heed reads Transformer, Pooling, Normalize)")
                }
            }
        }
        guard maxLength >= 2, maxLength <= model.configuration.maxPositions else {
            throw .invalidConfiguration(file: "sentence_bert_config.json", field: "max_seq_length",
                                        reason: "\(maxLength) is outside 2...\(model.configuration.maxPositions) (the model's positions)")
        }
        self.init(model: model, tokenizer: tokenizer, maxSequenceLength: maxLength, pooling: pooling, normalizes: normalizes)
    }

    /// `max_seq_length` of `sentence_bert_config.json`, or `value` when the file or field is absent.
    static func maxSequenceLength(folder: URL, default value: Int) throws(ModelError) -> Int {
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("sentence_bert_config.json").path) else { return value }
        let file = try ConfigurationFile(folder: folder, name: "sentence_bert_config.json")
        return try file.read { root throws(TokenizerError) in try root.optionalMember("max_seq_length")?.integer() ?? value }
    }

    /// The pooling mode of a sentence-transformers `Pooling` module's config.json.
    static func pooling(folder: URL, module: String) throws(ModelError) -> Pooling {
        let name = module.isEmpty ? "config.json" : module + "/config.json"
        let file = try ConfigurationFile(folder: folder, name: name)
        let modes = try file.read { root throws(TokenizerError) -> [String: Bool] in
            var modes: [String: Bool] = [:]
            if let mode = try root.optionalMember("pooling_mode") { modes["pooling_mode_\(try mode.string())_tokens"] = true }
            for key in ["pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
                        "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] {
                if let flag = try root.optionalMember(key), try flag.bool() { modes[key] = true }
            }
            return modes
        }
        switch Set(modes.keys) {
        case ["pooling_mode_mean_tokens"]: return .mean
        case ["pooling_mode_cls_token"], ["pooling_mode_cls_tokens"]: return .cls
        case []: throw .invalidConfiguration(file: name, field: "pooling_mode_mean_tokens", reason: "no pooling mode is set")
        default: throw .unsupported(file: name, what: "pooling \(modes.keys.sorted().joined(separator: " + "))")
        }
    }

    // MARK: Embedding

    /// The token ids of each text, truncated to ``maxSequenceLength``.
    public func tokenize(_ texts: [String]) throws(ModelError) -> [Encoding] {
        do {
            var encodings: [Encoding] = []
            encodings.reserveCapacity(texts.count)
            for text in texts { encodings.append(try tokenizer.encode(text, maxLength: maxSequenceLength)) }
            return encodings
        } catch { throw .tokenizer(error) }
    }

    /// One embedding [E] per text, in order.
    ///
    /// - Parameter batchSize: texts per forward pass (≥ 1). Texts are grouped
    ///   by length so that little is padded; the result does not depend on it.
    public func embed(_ texts: [String], batchSize: Int = 32) throws(ModelError) -> [[Float]] {
        embed(encodings: try tokenize(texts), batchSize: batchSize)
    }

    /// One embedding per (unpadded) encoding, in order.
    ///
    /// The fast engine gives each core whole batches (BLAS single-threaded
    /// inside), splitting the batches further when there are fewer than cores;
    /// the reference runs the batches one after another.
    public func embed(encodings: [Encoding], batchSize: Int = 32) -> [[Float]] {
        precondition(batchSize >= 1, "SentenceEmbedder.embed: batchSize \(batchSize) < 1")
        precondition(encodings.allSatisfy { $0.attentionMask.allSatisfy { $0 == 1 } },
                     "SentenceEmbedder.embed: encodings must be unpadded")
        // Longest first, as sentence-transformers orders its batches.
        let order = encodings.indices.sorted { encodings[$0].count > encodings[$1].count }
        var batches = stride(from: 0, to: order.count, by: batchSize).map { Array(order[$0 ..< min($0 + batchSize, order.count)]) }
        var result = [[Float]](repeating: [], count: encodings.count)
        guard engine == .fast, let inference else {
            for batch in batches {
                let vectors = embedBatch(batch.map { encodings[$0] })
                for (i, index) in batch.enumerated() { result[index] = vectors[i] }
            }
            return result
        }
        let cores = Int(heed_parallel_max_workers())
        if batches.count < cores && order.count > batches.count {
            let units = min(cores, order.count)                     // near-equal shares, still longest first
            batches = (0 ..< units).map { u in Array(order[u * order.count / units ..< (u + 1) * order.count / units]) }
        }
        let vectors = UnsafeMutableBufferPointer<[[Float]]>.allocate(capacity: batches.count)
        vectors.initialize(repeating: [])
        defer { vectors.deinitialize().deallocate() }
        let size = (tokens: batches.map { $0.reduce(0) { $0 + encodings[$1].count } }.max() ?? 0,
                    longest: encodings.map(\.count).max() ?? 0)
        if batches.count == 1 {
            vectors[0] = embedPacked(batches[0].map { encodings[$0] }, inference, size)   // BLAS keeps its threads
        } else {
            let blasThreads = heed_blas_get_threads()
            heed_blas_set_threads(1)
            defer { heed_blas_set_threads(blasThreads) }
            parallelRegion(chunks: batches.count) { chunk, _ in
                vectors[chunk] = embedPacked(batches[chunk].map { encodings[$0] }, inference, size)
            }
        }
        for (batch, batchVectors) in zip(batches, vectors) {
            for (i, index) in batch.enumerated() { result[index] = batchVectors[i] }
        }
        return result
    }

    /// One pass of the fast engine over encodings packed without padding.
    func embedPacked(_ encodings: [Encoding], _ inference: BERTInference, _ size: (tokens: Int, longest: Int)) -> [[Float]] {
        let e = model.configuration.hiddenSize
        let workspace = workspaces.take(tokens: size.tokens, longest: size.longest)
        defer { workspaces.give(workspace) }
        return inference.withHiddenStates(ids: encodings.map(\.ids), typeIds: encodings.map(\.typeIds),
                                          workspace: workspace) { states, offsets in
            encodings.indices.map { s in pool(states + offsets[s] * e, tokens: offsets[s + 1] - offsets[s]) }
        }
    }

    /// One forward pass of the reference over encodings padded to the longest.
    func embedBatch(_ encodings: [Encoding]) -> [[Float]] {
        let (b, t, e) = (encodings.count, encodings.map(\.count).max() ?? 0, model.configuration.hiddenSize)
        var ids = [Int](repeating: model.configuration.padTokenID, count: b * t)
        var typeIds = [Int](repeating: 0, count: b * t)
        for (row, encoding) in encodings.enumerated() {
            ids.replaceSubrange(row * t ..< row * t + encoding.count, with: encoding.ids)
            typeIds.replaceSubrange(row * t ..< row * t + encoding.count, with: encoding.typeIds)
        }
        let lengths = encodings.map(\.count)
        let hidden = Tensor.withoutGrad {
            model(IndexTensor(ids, shape: [b, t]), typeIds: IndexTensor(typeIds, shape: [b, t]), lengths: lengths)   // [B, T, E]
        }
        return hidden.withUnsafeScalars { h in
            (0..<b).map { row in pool(h.baseAddress! + row * t * e, tokens: lengths[row]) }
        }
    }

    /// The embedding of one text from its token states [T, E] (real tokens only).
    func pool(_ states: UnsafePointer<Float>, tokens: Int) -> [Float] {
        let e = model.configuration.hiddenSize
        var pooled = [Float](repeating: 0, count: e)
        switch pooling {
        case .mean:
            for token in 0..<tokens {
                for d in 0..<e { pooled[d] += states[token * e + d] }
            }
            let count = Float(tokens)
            for d in 0..<e { pooled[d] /= count }
        case .cls:
            for d in 0..<e { pooled[d] = states[d] }
        }
        if normalizes {
            let norm = max(pooled.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            for d in 0..<e { pooled[d] /= norm }
        }
        return pooled
    }
}

/// The fast engine's workspaces: each used by one batch at a time, handed on
/// to the next batch and kept for the next call while they are small.
final class WorkspacePool: Sendable {
    private let pool = ReusePool<BERTInference.Workspace>(retainedBytes: retainedLimit)
    private let configuration: BERTConfiguration

    /// Idle workspaces are kept while their buffers add up to at most this
    /// many bytes (64 MiB: two cores' workspaces for batches of 32 texts of
    /// up to ≈ 64 tokens in all-MiniLM-L6-v2); larger ones are freed.
    static let retainedLimit = 64 << 20

    init(configuration: BERTConfiguration) { self.configuration = configuration }

    /// An idle workspace for batches of up to `tokens` tokens and sequences of
    /// up to `longest`, or a new one.
    func take(tokens: Int, longest: Int) -> BERTInference.Workspace {
        pool.take(where: { $0.tokens >= tokens && $0.longest >= longest }) {
            BERTInference.Workspace(tokens: tokens, longest: longest, configuration: configuration)
        }
    }

    /// Hands a workspace back for the next batch or call.
    func give(_ workspace: BERTInference.Workspace) { pool.give(workspace, bytes: workspace.bytes) }
}
