import Foundation
import XCTest
import HeedNN
import HeedTensor
import HeedTestSupport
@testable import HeedModels

/// all-MiniLM-L6-v2 (fetched by scripts/fetch-models.sh) against
/// sentence-transformers: minilm_expected.json, made by make_minilm_fixtures.py.
final class MiniLMTests: XCTestCase {
    struct Expected: Decodable {
        var max_seq_length: Int
        var batch_size: Int
        var inputs: [String]
        var ids: [[Int]]
        var embeddings: [[Float]]
    }

    /// Loaded once: the 90 MB checkpoint takes a moment in a debug build.
    nonisolated(unsafe) static var cached: SentenceEmbedder?

    func embedder() throws -> SentenceEmbedder {
        let folder = try requireModel("all-MiniLM-L6-v2")
        if let cached = Self.cached { return cached }
        let embedder = try SentenceEmbedder(folder: folder)
        Self.cached = embedder
        return embedder
    }

    func testReadsTheDeclaredPipeline() throws {
        let embedder = try embedder()
        let c = embedder.model.configuration
        XCTAssertEqual(c, BERTConfiguration(vocabularySize: 30522, hiddenSize: 384, layers: 6, heads: 12, intermediateSize: 1536,
                                            activation: .none, maxPositions: 512, typeVocabularySize: 2, layerNormEpsilon: 1e-12))
        XCTAssertEqual(embedder.maxSequenceLength, 256)   // sentence_bert_config.json, not tokenizer.json's 128
        XCTAssertEqual(embedder.pooling, .mean)
        XCTAssertTrue(embedder.normalizes)
    }

    func testKnownAnswer() throws {
        let embedder = try embedder()
        let text = "The quick brown fox jumps over the lazy dog."
        XCTAssertEqual(try embedder.tokenize([text])[0].ids, [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
        let embedding = try embedder.embed([text])[0]
        XCTAssertEqual(embedding.count, 384)
        assertClose(Array(embedding.prefix(5)), [0.04393357, 0.05893442, 0.04817836, 0.07754813, 0.02674444], rtol: 0, atol: 1e-5)
    }

    func testMatchesSentenceTransformers() throws {
        let embedder = try embedder()
        let expected = try loadJSONFixture("minilm_expected.json", as: Expected.self)
        XCTAssertEqual(expected.max_seq_length, embedder.maxSequenceLength)
        let encodings = try embedder.tokenize(expected.inputs)
        for (index, encoding) in encodings.enumerated() {
            XCTAssertEqual(encoding.ids, expected.ids[index], "ids of \(expected.inputs[index].debugDescription.prefix(60))")
        }
        XCTAssertEqual(encodings.map(\.count).max(), 256)   // the long input is cut to max_seq_length
        let embeddings = embedder.embed(encodings: encodings, batchSize: expected.batch_size)
        for (index, (actual, reference)) in zip(embeddings, expected.embeddings).enumerated() {
            let label = expected.inputs[index].debugDescription.prefix(60)
            XCTAssertEqual(actual.count, 384)
            XCTAssertGreaterThanOrEqual(cosine(actual, reference), 0.99999, "cosine of \(label)")
            let worst = zip(actual, reference).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-4, "max abs diff of \(label)")
            let norm = actual.reduce(0) { $0 + $1 * $1 }.squareRoot()
            XCTAssertEqual(norm, 1, accuracy: 1e-5, "norm of \(label)")
        }
    }

    /// Padding is masked out of attention and pooling: a text's embedding is
    /// the same whether it is embedded alone or in any batch.
    func testBatchingEqualsOneByOne() throws {
        let embedder = try embedder()
        let expected = try loadJSONFixture("minilm_expected.json", as: Expected.self)
        let texts = Array(expected.inputs.prefix(10))   // the two long inputs are left out to keep the debug build quick
        let alone = try texts.map { try embedder.embed([$0])[0] }
        for batchSize in [3, 10] {
            let batched = try embedder.embed(texts, batchSize: batchSize)
            for (index, (a, b)) in zip(alone, batched).enumerated() {
                assertClose(b, a, rtol: 0, atol: 1e-6, "batch size \(batchSize), text \(index)")
            }
        }
        XCTAssertEqual(try embedder.embed([], batchSize: 4), [])
    }

    /// The fast engine (the default, BERTInference over the cores) and the
    /// reference (BERTModel, batch by batch) agree on the real model.
    func testFastEngineEqualsReference() throws {
        var embedder = try embedder()
        let expected = try loadJSONFixture("minilm_expected.json", as: Expected.self)
        let texts = Array(expected.inputs.prefix(10))
        XCTAssertEqual(embedder.engine, .fast)
        let fast = try embedder.embed(texts, batchSize: 4)
        embedder.engine = .reference
        let reference = try embedder.embed(texts, batchSize: 4)
        for (index, (a, b)) in zip(fast, reference).enumerated() {
            assertClose(a, b, rtol: 0, atol: 2e-6, "text \(index)")
        }
    }

    func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var (dot, na, nb) = (Float(0), Float(0), Float(0))
        for (x, y) in zip(a, b) { dot += x * y; na += x * x; nb += y * y }
        return dot / (na.squareRoot() * nb.squareRoot())
    }
}
