import Foundation
import HeedNN
import HeedTensor

/// Text generation with a Llama model and its byte-level BPE tokenizer: the
/// prompt is processed in one batch, then one token per step with a KV cache.
///
/// By default the model is a ``QuantizedLlama`` (weights read in place from
/// their GGUF blocks, f32 activations); `weights: .float32` loads HeedNN's
/// ``LlamaModel`` instead, every weight dequantised to f32 (the reference path).
///
/// ```swift
/// let generator = try TextGenerator(url: URL(fileURLWithPath: "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
/// let result = try generator.generate(prompt: "Once upon a time, there was a little", maxTokens: 24) { piece in
///     print(piece.text, terminator: "")        // streamed as tokens arrive
///     return true                              // false stops early
/// }
/// ```
public final class TextGenerator {
    /// The model.
    public let model: any CausalLanguageModel
    /// The tokenizer from the same file.
    public let tokenizer: BPETokenizer
    /// The id that ends generation (`tokenizer.ggml.eos_token_id`).
    public let endOfSequenceID: Int?
    /// The system message the chat template inserts when none is given (SmolLM2's template does).
    public var defaultSystemMessage: String? = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    /// Wraps a loaded model and tokenizer.
    public init(model: any CausalLanguageModel, tokenizer: BPETokenizer) {
        self.model = model
        self.tokenizer = tokenizer
        self.endOfSequenceID = tokenizer.eosTokenID
    }

    /// How the weights of a GGUF model are held.
    public enum Weights: Sendable {
        /// As stored: Q4_0/Q4_1/Q8_0 blocks read in place by the block kernels
        /// (``QuantizedLlama``); memory near the file size.
        case quantized
        /// As `.quantized`, with decoding steps quantising activations to
        /// 8-bit blocks too (``QuantizedLlama/ActivationPrecision/int8``, as
        /// llama.cpp does): faster, not exact.
        case quantizedInt8Activations
        /// Dequantised to f32 at load (HeedNN's ``LlamaModel``, the reference path).
        case float32
    }

    /// Loads model and tokenizer from one GGUF file.
    ///
    /// - Throws: ``ModelLoadError`` (``ModelLoadError/gguf(_:)`` when the file
    ///   cannot be read; tokenizer problems as
    ///   ``ModelLoadError/invalidConfiguration(_:)``).
    public convenience init(url: URL, weights: Weights = .quantized) throws(ModelLoadError) {
        let file: GGUFFile
        do { file = try GGUFFile(url: url) } catch { throw .gguf(error) }
        let model: any CausalLanguageModel
        switch weights {
        case .quantized: model = try QuantizedLlama(gguf: file)
        case .quantizedInt8Activations:
            var quantized = try QuantizedLlama(gguf: file)
            quantized.activations = .int8
            model = quantized
        case .float32: model = try LlamaModel(gguf: file)
        }
        let tokenizer: BPETokenizer
        do { tokenizer = try BPETokenizer(gguf: file) } catch { throw .invalidConfiguration("tokenizer: \(error)") }
        guard tokenizer.vocabularySize <= model.configuration.vocabularySize else {
            throw .invalidConfiguration("tokenizer has \(tokenizer.vocabularySize) tokens, the model \(model.configuration.vocabularySize)")
        }
        self.init(model: model, tokenizer: tokenizer)
    }

    /// The ChatML text of a single user turn, as SmolLM2's `tokenizer.chat_template`
    /// renders it with `add_generation_prompt`:
    ///
    /// ```
    /// <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{message}<|im_end|>\n<|im_start|>assistant\n
    /// ```
    public func chatPrompt(_ message: String, system: String? = nil) -> String {
        var text = ""
        if let system = system ?? defaultSystemMessage { text += "<|im_start|>system\n\(system)<|im_end|>\n" }
        return text + "<|im_start|>user\n\(message)<|im_end|>\n<|im_start|>assistant\n"
    }

    /// One generated token, streamed.
    public struct Piece: Sendable {
        /// The token id.
        public var id: Int
        /// The text that became complete with this token (may be empty while a
        /// multi-byte character is split across tokens).
        public var text: String
    }

    /// What one call produced.
    public struct Result: Sendable {
        /// The prompt's token ids.
        public var promptIDs: [Int]
        /// The generated ids (the end-of-sequence id included when it was produced).
        public var ids: [Int]
        /// The generated text (special tokens skipped).
        public var text: String
        /// Seconds spent on the prompt (one batched forward pass).
        public var promptSeconds: Double
        /// Seconds spent generating, after the prompt.
        public var generationSeconds: Double
        /// Generated tokens per second of decoding (the first token comes with the prompt pass).
        public var tokensPerSecond: Double {
            ids.count > 1 && generationSeconds > 0 ? Double(ids.count - 1) / generationSeconds : 0
        }
    }

    /// Generates up to `maxTokens` tokens after `prompt` (tokenized without
    /// special tokens, as SmolLM2 asks), stopping at end-of-sequence.
    ///
    /// - Parameters:
    ///   - chat: wrap `prompt` in the chat template first.
    ///   - onToken: called with each token as it is generated; return false to stop.
    /// - Throws: ``GenerationError``.
    @discardableResult
    public func generate(prompt: String, maxTokens: Int, sampling: Sampling = .greedy, chat: Bool = false,
                         onToken: (Piece) -> Bool = { _ in true }) throws(GenerationError) -> Result {
        let text = chat ? chatPrompt(prompt) : prompt
        return try generate(promptIDs: tokenizer.encode(text, addSpecialTokens: true), maxTokens: maxTokens,
                            sampling: sampling, onToken: onToken)
    }

    /// Generates after given prompt ids.
    ///
    /// - Throws: ``GenerationError`` for an empty prompt, a prompt plus
    ///   `maxTokens` longer than the context, ids outside the vocabulary, or
    ///   invalid sampling parameters.
    @discardableResult
    public func generate(promptIDs: [Int], maxTokens: Int, sampling: Sampling = .greedy,
                         onToken: (Piece) -> Bool = { _ in true }) throws(GenerationError) -> Result {
        try generate(model, promptIDs: promptIDs, maxTokens: maxTokens, sampling: sampling, onToken: onToken)
    }

    private func generate<Model: CausalLanguageModel>(_ model: Model, promptIDs: [Int], maxTokens: Int, sampling: Sampling,
                                                     onToken: (Piece) -> Bool) throws(GenerationError) -> Result {
        let c = model.configuration
        guard !promptIDs.isEmpty else { throw .emptyPrompt }
        guard maxTokens >= 0 else { throw .invalidParameter("maxTokens must be ≥ 0, got \(maxTokens)") }
        if let problem = sampling.problem { throw .invalidParameter(problem) }
        if let bad = promptIDs.first(where: { $0 < 0 || $0 >= c.vocabularySize }) {
            throw .invalidParameter("token id \(bad) is outside the vocabulary of \(c.vocabularySize)")
        }
        guard promptIDs.count + maxTokens <= c.contextLength else {
            throw .contextTooLong(prompt: promptIDs.count, maxTokens: maxTokens, context: c.contextLength)
        }
        var random = RandomGenerator(seed: sampling.seed)
        var cache = model.makeCache()
        var history = promptIDs, generated: [Int] = [], pendingBytes: [UInt8] = []
        let start = DispatchTime.now().uptimeNanoseconds
        var promptEnd = start
        var input = promptIDs
        while generated.count < maxTokens {
            let logits = model.nextTokenLogits(input, cache: &cache)
            if generated.isEmpty { promptEnd = DispatchTime.now().uptimeNanoseconds }
            let id = sampling.next(logits: logits, history: history, generator: &random)
            generated.append(id)
            history.append(id)
            if id == endOfSequenceID { break }
            pendingBytes += (try? tokenizer.decodeBytes([id], skipSpecialTokens: true)) ?? []
            let text = Self.takeCompleteUTF8(&pendingBytes)
            if !onToken(Piece(id: id, text: text)) { break }
            input = [id]
        }
        let end = DispatchTime.now().uptimeNanoseconds
        let text = (try? tokenizer.decode(generated, skipSpecialTokens: true)) ?? ""
        return Result(promptIDs: promptIDs, ids: generated, text: text,
                      promptSeconds: Double(promptEnd - start) / 1e9, generationSeconds: Double(end - promptEnd) / 1e9)
    }

    /// Removes and returns the longest prefix of `bytes` that ends on a whole
    /// UTF-8 character; an invalid sequence becomes U+FFFD.
    static func takeCompleteUTF8(_ bytes: inout [UInt8]) -> String {
        var end = bytes.count
        // Back up over a trailing incomplete sequence (at most 3 bytes).
        var back = 0
        while back < min(3, bytes.count) {
            let byte = bytes[bytes.count - 1 - back]
            if byte & 0xC0 != 0x80 {           // a lead byte (or ASCII)
                let need = byte >= 0xF8 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                if need > back + 1 { end = bytes.count - 1 - back }
                break
            }
            back += 1
        }
        let text = String(decoding: bytes[..<end], as: UTF8.self)
        bytes.removeFirst(end)
        return text
    }
}

/// A request to ``TextGenerator`` that cannot be carried out.
public enum GenerationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The prompt has no tokens.
    case emptyPrompt
    /// The prompt and the tokens to generate do not fit the model's context.
    case contextTooLong(prompt: Int, maxTokens: Int, context: Int)
    /// A sampling parameter, token count or id out of range.
    case invalidParameter(String)

    public var description: String {
        switch self {
        case .emptyPrompt: return "the prompt is empty"
        case .contextTooLong(let prompt, let maxTokens, let context):
            return "prompt (\(prompt) tokens) + max tokens (\(maxTokens)) exceed the context of \(context)"
        case .invalidParameter(let reason): return reason
        }
    }
}
