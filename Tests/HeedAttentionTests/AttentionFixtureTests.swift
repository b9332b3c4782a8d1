import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// The dense engine against PyTorch (Tests/Fixtures/attention/make_attention_fixtures.py):
/// outputs, weights and gradients of q, k, v for every case.
final class AttentionFixtureTests: XCTestCase {
    private static let file = Result { try loadFixture("attention/attention_dense.safetensors") }

    private func fixture(_ name: String) throws -> (String) throws -> Tensor {
        let file = try Self.file.get()
        return { key in
            let t = try file.tensor("\(name).\(key)")
            t.requiresGrad = ["q", "k", "v"].contains(key) || key.hasPrefix("score.")
            return t
        }
    }

    /// Runs `attention` on the case's inputs and compares out, weights and gradients.
    private func check(_ name: String, rtol: Float = 1e-4, atol: Float = 1e-5,
                       file: StaticString = #filePath, line: UInt = #line,
                       _ make: ((String) throws -> Tensor) throws -> (Attention, [String: Tensor])) throws {
        let load = try fixture(name)
        let (q, k, v) = (try load("q"), try load("k"), try load("v"))
        let (attention, parameters) = try make(load)
        let result = attention(query: q, key: k, value: v)
        assertClose(result.output, try load("out"), rtol: rtol, atol: atol, "\(name) out", file: file, line: line)
        assertClose(result.weights, try load("weights"), rtol: rtol, atol: atol, "\(name) weights", file: file, line: line)
        result.output.backward(try load("grad_out"))
        for (key, tensor) in [("q", q), ("k", k), ("v", v)] + parameters.map({ ($0.key, $0.value) }) {
            guard let grad = tensor.grad else { XCTFail("\(name): no gradient for \(key)", file: file, line: line); continue }
            assertClose(grad, try load("d\(key)"), rtol: rtol, atol: atol, "\(name) d\(key)", file: file, line: line)
        }
    }

    func testFullAttentionHeadDimension59() throws { try check("sdpa_full") { _ in (Attention(), [:]) } }
    func testCausalTopLeft() throws { try check("sdpa_causal_top_left") { _ in (Attention(pattern: .causal(.topLeft)), [:]) } }
    func testCausalBottomRight() throws { try check("sdpa_causal_bottom_right") { _ in (Attention(pattern: .causal(.bottomRight)), [:]) } }
    func testSingleToken() throws { try check("sdpa_single_token") { _ in (Attention(), [:]) } }
    func testBooleanMaskWithEmptyRows() throws {
        try check("sdpa_bool_mask_empty_rows") { load in (Attention(pattern: .mask(try load("mask"))), [:]) }
    }
    func testFloatBias() throws {
        try check("sdpa_float_bias") { load in (Attention(biases: [AdditiveBias(try load("bias"))]), [:]) }
    }
    func testScaleOverrideAndTemperatureAgree() throws {
        try check("sdpa_scale") { _ in (Attention(score: .scaledDot(scale: 0.3)), [:]) }
        // τ divides the scores: scale s/τ equals scale s with temperature τ.
        try check("sdpa_scale") { _ in (Attention(score: .scaledDot(scale: 0.6), temperature: 2), [:]) }
    }
    func testGroupedQueryAttention() throws { try check("sdpa_gqa") { _ in (Attention(), [:]) } }
    func testMultiQueryCausal() throws { try check("sdpa_mqa_causal") { _ in (Attention(pattern: .causal()), [:]) } }

    func testDotScore() throws { try check("score_dot") { _ in (Attention(score: .dot), [:]) } }
    func testBilinearScore() throws {
        try check("score_bilinear") { load in
            let w = try load("score.weight")
            return (Attention(score: .bilinear(weight: w)), ["score.weight": w])
        }
    }
    func testAdditiveScore() throws {
        try check("score_additive") { load in
            let (wq, wk, va) = (try load("score.query_weight"), try load("score.key_weight"), try load("score.vector"))
            return (Attention(score: .additive(queryWeight: wq, keyWeight: wk, vector: va)),
                    ["score.query_weight": wq, "score.key_weight": wk, "score.vector": va])
        }
    }
    func testCosineScore() throws { try check("score_cosine") { _ in (Attention(score: .cosine(scale: 5)), [:]) } }

    /// Each pattern's mask equals the one PyTorch built from the definition,
    /// and attention under it matches.
    private func checkPattern(_ name: String, _ pattern: Pattern, file: StaticString = #filePath, line: UInt = #line) throws {
        let load = try fixture(name)
        let q = try load("q"), k = try load("k")
        let expected = try load("expected_mask")
        let mask = pattern.mask(batch: q.shape[0], heads: q.shape[1], queryLength: q.shape[2], keyLength: k.shape[2])
        let full = Shape.broadcast(mask.shape, expected.rank == 4 ? expected.shape : [1, 1] + expected.shape)!
        assertClose(mask.expand(to: full), expected.reshaped(expected.rank == 4 ? expected.shape : [1, 1] + expected.shape).expand(to: full),
                    "\(name) mask", file: file, line: line)
        try check(name, file: file, line: line) { _ in (Attention(pattern: pattern), [:]) }
    }

    func testSlidingWindowPattern() throws { try checkPattern("pattern_sliding_window", .slidingWindow(left: 2, right: 1)) }
    func testDilatedWindowPattern() throws { try checkPattern("pattern_dilated_window", .dilatedWindow(left: 2, right: 1, dilation: 2)) }
    func testGlobalPlusWindowPattern() throws {
        try checkPattern("pattern_global_window", .union([.slidingWindow(left: 1, right: 1), .global(tokens: [0, 5])]))
    }
    func testStridedCausalPattern() throws { try checkPattern("pattern_strided_causal", .intersection([.strided(stride: 3), .causal()])) }
    func testFixedCausalPattern() throws { try checkPattern("pattern_fixed_causal", .intersection([.fixed(block: 3, summary: 1), .causal()])) }
    func testBigBirdPatternsMatchTheDocumentedDraws() throws {
        try checkPattern("pattern_bigbird", .bigBird(blockSize: 2, windowBlocks: 1, globalBlocks: 1, randomBlocks: 2, seed: 7))
        try checkPattern("pattern_bigbird_window3", .bigBird(blockSize: 3, windowBlocks: 3, globalBlocks: 1, randomBlocks: 1, seed: 11))
    }

    /// Sampled hard attention: the same draws as the Python re-implementation of
    /// the documented Philox rule, and log p with its gradient from autograd.
    func testHardSampledMatchesDocumentedDrawsAndGradient() throws {
        let f = try Self.file.get()
        let scores = try f.tensor("hard_sampled.scores")
        scores.requiresGrad = true
        let mask = try f.tensor("hard_sampled.mask")
        let result = Normalizer.hardSampled(seed: 5)(scores, mask: mask)
        XCTAssertEqual(result.weights.scalars, try f.tensor("hard_sampled.weights").scalars)
        let logProbability = try XCTUnwrap(result.logProbability)
        assertClose(logProbability, try f.tensor("hard_sampled.log_probability"), rtol: 1e-5, atol: 1e-6)
        logProbability.backward(try f.tensor("hard_sampled.grad_out"))
        assertClose(scores.grad!, try f.tensor("hard_sampled.dscores"), rtol: 1e-4, atol: 1e-5)
    }

    func testBlockDiagonalPattern() throws { try checkPattern("pattern_block_diagonal", .blockDiagonal(lengths: [3, 1, 3])) }
    func testKeyPaddingWithAllPaddedSequence() throws { try checkPattern("pattern_key_padding", .keyPadding(lengths: [3, 0])) }
    func testCausalTimesPadding() throws {
        try checkPattern("pattern_causal_padding", .intersection([.causal(), .keyPadding(lengths: [4, 4])]))
    }
}
