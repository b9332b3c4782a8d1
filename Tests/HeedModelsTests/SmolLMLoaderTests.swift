import Foundation
import XCTest
import HeedNN
import HeedTestSupport
import HeedTensor
@testable import HeedModels

/// The GGUF → Llama loader on small synthetic files: metadata errors, tensor
/// errors, the Q/K row permutation; and the sampler.
final class SmolLMLoaderTests: XCTestCase {
    /// A tiny valid Llama GGUF: E 8, 2 heads, 1 KV head, F 12, 1 layer, V 16, F32 tensors.
    func tinyFile(dropping: String? = nil, metadata overrides: [String: GGUFValue] = [:]) throws -> GGUFFile {
        var writer = GGUFTestWriter()
        var values: [String: GGUFValue] = [
            "general.architecture": .string("llama"),
            "llama.block_count": .uint32(1), "llama.embedding_length": .uint32(8), "llama.feed_forward_length": .uint32(12),
            "llama.attention.head_count": .uint32(2), "llama.attention.head_count_kv": .uint32(1),
            "llama.attention.layer_norm_rms_epsilon": .float32(1e-5), "llama.rope.freq_base": .float32(10_000),
            "llama.context_length": .uint32(64),
        ]
        for (key, value) in overrides { values[key] = value }
        for key in values.keys.sorted() { writer.add(key, values[key]!) }
        let tensors: [(String, [Int])] = [
            ("token_embd.weight", [8, 16]), ("blk.0.attn_norm.weight", [8]), ("blk.0.attn_q.weight", [8, 8]),
            ("blk.0.attn_k.weight", [8, 4]), ("blk.0.attn_v.weight", [8, 4]), ("blk.0.attn_output.weight", [8, 8]),
            ("blk.0.ffn_norm.weight", [8]), ("blk.0.ffn_gate.weight", [8, 12]), ("blk.0.ffn_up.weight", [8, 12]),
            ("blk.0.ffn_down.weight", [12, 8]), ("output_norm.weight", [8]),
        ]
        for (index, (name, dimensions)) in tensors.enumerated() where name != dropping {
            let count = dimensions.reduce(1, *)
            let values = randomTensor([count], seed: UInt64(index), std: 0.3, requiresGrad: false).scalars
            writer.addTensor(name, dimensions: dimensions.map(UInt64.init), type: .f32,
                             data: values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        }
        return try GGUFFile(data: Data(writer.bytes()))
    }

    /// QuantizedLlama on F32 weights (the sgemm path for every product, split
    /// over the cores) and the file's Q/K row order with adjacent-pair rotary:
    /// the same logits as LlamaModel, which unpermutes the rows, for a
    /// 12-token prompt (past the 8-token direct limit) and cached steps.
    func testQuantizedLlamaOnFloatWeightsMatchesReference() throws {
        let file = try tinyFile()
        let reference = try LlamaModel(gguf: file), fast = try QuantizedLlama(gguf: file)
        let ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7]
        var referenceCache = reference.makeCache(), fastCache = fast.makeCache()
        assertClose(fast.nextTokenLogits(Array(ids.prefix(12)), cache: &fastCache),
                    reference.nextTokenLogits(Array(ids.prefix(12)), cache: &referenceCache), rtol: 1e-5, atol: 1e-5)
        for id in ids.dropFirst(12) {
            assertClose(fast.nextTokenLogits([id], cache: &fastCache), reference.nextTokenLogits([id], cache: &referenceCache),
                        rtol: 1e-5, atol: 1e-5)
        }
        XCTAssertEqual(fastCache.position, ids.count)
    }

    func testTinyModelLoadsAndDecodesWithCache() throws {
        let model = try LlamaModel(gguf: tinyFile())
        XCTAssertEqual(model.configuration.vocabularySize, 16)
        XCTAssertTrue(model.configuration.tiedEmbeddings)
        XCTAssertEqual(model.configuration.headDimension, 4)
        let ids = [3, 1, 4, 1, 5]
        let full = Tensor.withoutGrad { model(IndexTensor(ids, shape: [1, 5])) }
        var cache = LlamaModel.Cache(layers: 1)
        _ = Tensor.withoutGrad { model(IndexTensor(Array(ids.prefix(2)), shape: [1, 2]), cache: &cache) }
        for (step, id) in ids.dropFirst(2).enumerated() {
            let row = Tensor.withoutGrad { model.lastLogits(IndexTensor([id], shape: [1, 1]), cache: &cache) }
            assertClose(row.scalars, full.sliced(axis: 1, start: 2 + step, end: 3 + step).scalars, rtol: 1e-5, atol: 1e-6)
        }
    }

    func testMetadataAndTensorErrors() throws {
        XCTAssertThrowsError(try LlamaModel(gguf: tinyFile(metadata: ["general.architecture": .string("gpt2")]))) {
            XCTAssertEqual($0 as? ModelLoadError, .unsupportedArchitecture("gpt2", expected: "llama"))
        }
        XCTAssertThrowsError(try LlamaModel(gguf: tinyFile(metadata: ["llama.block_count": .string("one")]))) {
            guard case .metadata(key: "llama.block_count", _)? = $0 as? ModelLoadError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try LlamaModel(gguf: tinyFile(metadata: ["llama.attention.head_count_kv": .uint32(3)]))) {
            guard case .invalidConfiguration? = $0 as? ModelLoadError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try LlamaModel(gguf: tinyFile(metadata: ["llama.rope.dimension_count": .uint32(2)]))) {
            guard case .invalidConfiguration? = $0 as? ModelLoadError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try LlamaModel(gguf: tinyFile(dropping: "blk.0.ffn_up.weight"))) {
            XCTAssertEqual($0 as? ModelLoadError, .missingTensor("blk.0.ffn_up.weight"))
        }
        XCTAssertThrowsError(try LlamaModel(gguf: tinyFile(metadata: ["llama.feed_forward_length": .uint32(10)]))) {
            XCTAssertEqual($0 as? ModelLoadError, .tensorShape(name: "blk.0.ffn_gate.weight", found: [12, 8], expected: [10, 8]))
        }
        XCTAssertThrowsError(try TextGenerator(url: URL(fileURLWithPath: "/nonexistent.gguf"))) {
            guard case .gguf(.io)? = $0 as? ModelLoadError else { return XCTFail("\($0)") }
        }
        // The quantised path checks the same things with the same errors.
        XCTAssertThrowsError(try QuantizedLlama(gguf: tinyFile(metadata: ["general.architecture": .string("gpt2")]))) {
            XCTAssertEqual($0 as? ModelLoadError, .unsupportedArchitecture("gpt2", expected: "llama"))
        }
        XCTAssertThrowsError(try QuantizedLlama(gguf: tinyFile(dropping: "blk.0.ffn_up.weight"))) {
            XCTAssertEqual($0 as? ModelLoadError, .missingTensor("blk.0.ffn_up.weight"))
        }
        XCTAssertThrowsError(try QuantizedLlama(gguf: tinyFile(dropping: "output_norm.weight"))) {
            XCTAssertEqual($0 as? ModelLoadError, .missingTensor("output_norm.weight"))
        }
        XCTAssertThrowsError(try QuantizedLlama(gguf: tinyFile(metadata: ["llama.feed_forward_length": .uint32(10)]))) {
            XCTAssertEqual($0 as? ModelLoadError, .tensorShape(name: "blk.0.ffn_gate.weight", found: [12, 8], expected: [10, 8]))
        }
    }

    /// llama.cpp's `permute` (convert_hf_to_gguf.py), written out, then undone.
    func testUnpermuteInvertsLlamaCppPermute() {
        let (heads, d, columns) = (3, 8, 2)
        let hf = (0 ..< heads * d * columns).map(Float.init)
        var gguf = [Float](repeating: 0, count: hf.count)
        // permute: w.reshape(heads, 2, d/2, cols).swapaxes(1, 2): gguf row h·d + 2i + j ← hf row h·d + j·d/2 + i
        for h in 0 ..< heads { for i in 0 ..< d / 2 { for j in 0 ..< 2 { for c in 0 ..< columns {
            gguf[(h * d + 2 * i + j) * columns + c] = hf[(h * d + j * d / 2 + i) * columns + c]
        } } } }
        let restored = LlamaModel.unpermuteRotaryRows(Tensor(gguf, shape: [heads * d, columns]), heads: heads)
        XCTAssertEqual(restored.scalars, hf)
    }

    func testSamplingGreedyTopKTopPAndPenalty() {
        var random = RandomGenerator(seed: 1)
        let logits: [Float] = [1, 3, 2, 3, -1]
        XCTAssertEqual(Sampling.greedy.next(logits: logits, history: [], generator: &random), 1)  // first of the tied maxima
        XCTAssertEqual(Sampling(repetitionPenalty: 2).next(logits: logits, history: [1], generator: &random), 3)
        XCTAssertEqual(Sampling(repetitionPenalty: 4).next(logits: logits, history: [1, 3], generator: &random), 2)
        // top-k 1 and tiny top-p are greedy whatever the draw.
        for seed in 0 ..< 20 as Range<UInt64> {
            var g = RandomGenerator(seed: seed)
            XCTAssertEqual(Sampling(temperature: 1, topK: 1).next(logits: [0, 5, 1], history: [], generator: &g), 1)
            XCTAssertEqual(Sampling(temperature: 1, topP: 0.01).next(logits: [0, 5, 1], history: [], generator: &g), 1)
            // top-k 2 never draws the third.
            XCTAssertNotEqual(Sampling(temperature: 5, topK: 2).next(logits: [1, 1.1, 1.2], history: [], generator: &g), 0)
        }
        // Temperature sampling follows softmax: frequencies of [log 1, log 3] ≈ 1/4, 3/4.
        var g = RandomGenerator(seed: 7)
        let draws = (0 ..< 4000).map { _ in Sampling(temperature: 1, seed: 7).next(logits: [0, log(3)], history: [], generator: &g) }
        XCTAssertEqual(Double(draws.filter { $0 == 1 }.count) / 4000, 0.75, accuracy: 0.03)
        // Seeded: the same seed gives the same draws.
        var a = RandomGenerator(seed: 3), b = RandomGenerator(seed: 3)
        let s = Sampling(temperature: 0.8, topK: 3, topP: 0.9)
        XCTAssertEqual((0 ..< 50).map { _ in s.next(logits: logits, history: [], generator: &a) },
                       (0 ..< 50).map { _ in s.next(logits: logits, history: [], generator: &b) })
        XCTAssertNotNil(Sampling(temperature: -1).problem)
        XCTAssertNotNil(Sampling(topP: 0).problem)
        XCTAssertNil(Sampling(temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1).problem)
    }

    func testStreamingKeepsSplitCharactersWhole() {
        var bytes: [UInt8] = Array("é🙂".utf8)        // 2 + 4 bytes
        var pending = Array(bytes.prefix(3))          // é + first byte of 🙂
        XCTAssertEqual(TextGenerator.takeCompleteUTF8(&pending), "é")
        XCTAssertEqual(pending.count, 1)
        pending += bytes[3...]
        XCTAssertEqual(TextGenerator.takeCompleteUTF8(&pending), "🙂")
        XCTAssertTrue(pending.isEmpty)
        bytes = [0x61, 0xFF]                          // invalid byte: replaced, not held
        XCTAssertEqual(TextGenerator.takeCompleteUTF8(&bytes), "a\u{FFFD}")
    }
}
