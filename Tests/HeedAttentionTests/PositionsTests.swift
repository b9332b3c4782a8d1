import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// Position encodings against the PyTorch transcriptions in
/// Tests/Fixtures/attention/make_positions_fixtures.py (outputs and gradients).
/// Properties and finite-difference checks are in PositionsPropertyTests.swift.
final class PositionsTests: XCTestCase {
    private let rtol: Float = 1e-4, atol: Float = 1e-5

    private func fixture(_ stem: String) throws -> SafeTensorsFile {
        try loadFixture("attention/positions_\(stem).safetensors")
    }

    /// A stored tensor as a leaf that requires gradients.
    private func leaf(_ file: SafeTensorsFile, _ name: String) throws -> Tensor {
        let t = try file.tensor(name)
        t.requiresGrad = true
        return t
    }

    private func integers(_ t: Tensor) -> [Int] { t.scalars.map { Int($0) } }

    // MARK: absolute positions

    func testSinusoidalMatchesVaswani() throws {
        let file = try fixture("sinusoidal")
        for name in ["d59", "d64_t1", "d16_far", "d5_base100"] {
            let config = try file.tensor("\(name).config").scalars
            let (d, t, offset, base) = (Int(config[0]), Int(config[1]), Int(config[2]), Double(config[3]))
            let interleaved = SinusoidalPositions(dimension: d, base: base)
            let concatenated = SinusoidalPositions(dimension: d, base: base, layout: .concatenated)
            assertClose(interleaved(length: t, offset: offset), try file.tensor("\(name).interleaved"),
                        rtol: rtol, atol: atol, name)
            assertClose(concatenated(length: t, offset: offset), try file.tensor("\(name).concatenated"),
                        rtol: rtol, atol: atol, name)
        }
    }

    func testLearnedPositionsMatchEmbedding() throws {
        let file = try fixture("learned")
        let table = try leaf(file, "table")
        let positions = LearnedPositions(maxPositions: 20, dimension: 59, table: table)

        let range = positions(length: 7, offset: 3)
        assertClose(range, try file.tensor("range.out"), rtol: rtol, atol: atol)
        range.backward(try file.tensor("range.seed"))
        assertClose(table.grad!, try file.tensor("range.dtable"), rtol: rtol, atol: atol)

        table.grad = nil
        let ids = try file.tensor("gather.positions")
        let gathered = positions(positions: IndexTensor(integers(ids), shape: ids.shape))
        assertClose(gathered, try file.tensor("gather.out"), rtol: rtol, atol: atol)
        gathered.backward(try file.tensor("gather.seed"))
        assertClose(table.grad!, try file.tensor("gather.dtable"), rtol: rtol, atol: atol)   // row 5 twice, row 0 twice
    }

    // MARK: rotary

    func testRotaryMatchesReferenceForBothConventions() throws {
        let file = try fixture("rotary")
        let cases = ["half_d64", "half_d59_r58_t1", "half_d64_r16_base5e5",
                     "interleaved_d64", "interleaved_d59_r58", "interleaved_d8_t1_far"]
        for name in cases {
            let x = try leaf(file, "\(name).x")
            let config = try file.tensor("\(name).config").scalars
            let rotary = Rotary(headDimension: x.shape[3], base: Double(config[2]),
                                convention: name.hasPrefix("half") ? .halfSplit : .interleaved,
                                rotaryDimension: Int(config[0]))
            let out = rotary.apply(x, offset: Int(config[1]))
            assertClose(out, try file.tensor("\(name).out"), rtol: rtol, atol: atol, name)
            out.backward(try file.tensor("\(name).seed"))
            assertClose(x.grad!, try file.tensor("\(name).dx"), rtol: rtol, atol: atol, name)
        }
    }

    // MARK: ALiBi

    func testALiBiSlopesMatchAuthorsReference() throws {
        let file = try fixture("alibi")
        for heads in [1, 2, 3, 5, 6, 8, 12, 16, 24, 32, 48] {
            assertClose(ALiBi(heads: heads).slopes, try file.tensor("slopes.h\(heads)").scalars,
                        rtol: 1e-6, atol: 0, "heads \(heads)")
        }
    }

    func testALiBiBiasMatchesReference() throws {
        let file = try fixture("alibi")
        let cases: [(String, Int, Int, Int, Int, Bool)] = [
            ("h12_bottom_right", 12, 3, 7, 4, false), ("h8_square", 8, 5, 5, 0, false),
            ("h1_t1", 1, 1, 6, 5, false), ("h6_symmetric", 6, 4, 6, 1, true),
        ]
        for (name, heads, tq, tk, offset, symmetric) in cases {
            let bias = ALiBi(heads: heads, symmetric: symmetric)
                .bias(heads: heads, queryLength: tq, keyLength: tk, queryOffset: offset)
            assertClose(bias, try file.tensor("\(name).bias"), rtol: 1e-6, atol: 0, name)
        }
    }

    // MARK: T5 relative positions

    func testT5BucketsEqualReferenceEverywhere() throws {
        let file = try fixture("t5")
        let relative = integers(try file.tensor("relative_positions"))
        let configs: [(String, Bool, Int, Int)] = [
            ("bi_32_128", true, 32, 128), ("causal_32_128", false, 32, 128), ("bi_10_20", true, 10, 20),
            ("causal_7_50", false, 7, 50), ("bi_64_256", true, 64, 256),
        ]
        for (name, bidirectional, buckets, maxDistance) in configs {
            let expected = integers(try file.tensor("buckets.\(name)"))
            let actual = relative.map {
                RelativePositionBias.bucket(relativePosition: $0, bidirectional: bidirectional,
                                            numBuckets: buckets, maxDistance: maxDistance)
            }
            for (r, (a, e)) in zip(relative, zip(actual, expected)) where a != e {
                XCTFail("\(name): relative position \(r) gives bucket \(a), T5 gives \(e)")
            }
        }
    }

    func testT5BiasAndTableGradientMatchReference() throws {
        let file = try fixture("t5")
        for (name, bidirectional) in [("bi_h3", true), ("causal_h2_t1_far", false), ("bi_h2_small", true)] {
            let config = integers(try file.tensor("\(name).config"))
            let (heads, tq, tk, offset, buckets, maxDistance) = (config[0], config[1], config[2], config[3], config[4], config[5])
            let table = try leaf(file, "\(name).table")
            let relative = RelativePositionBias(heads: heads, numBuckets: buckets, maxDistance: maxDistance,
                                                bidirectional: bidirectional, table: table)
            let bias = relative.bias(heads: heads, queryLength: tq, keyLength: tk, queryOffset: offset)
            assertClose(bias, try file.tensor("\(name).bias"), rtol: rtol, atol: atol, name)
            bias.backward(try file.tensor("\(name).seed"))
            assertClose(table.grad!, try file.tensor("\(name).dtable"), rtol: rtol, atol: atol, name)
        }
    }

    // MARK: end to end through Attention

    /// Half-split RoPE on q (positions 3..5) and k (0..5), ALiBi with 6 heads
    /// (not a power of two), grouped-query 6/3, causal bottom-right, batch 2 —
    /// against SDPA with the ALiBi bias plus a −inf causal mask as attn_mask.
    func testAttentionWithALiBiAndRotaryMatchesSDPA() throws {
        let file = try fixture("attention")
        let (q, k, v) = (try leaf(file, "alibi_rope.q"), try leaf(file, "alibi_rope.k"), try leaf(file, "alibi_rope.v"))
        let rotary = Rotary(headDimension: 16)
        let attention = Attention(biases: [ALiBi(heads: 6)], pattern: .causal(.bottomRight))
        let offset = k.shape[2] - q.shape[2]
        let out = attention(query: rotary.apply(q, offset: offset), key: rotary.apply(k, offset: 0), value: v,
                            queryOffset: offset).output
        assertClose(out, try file.tensor("alibi_rope.out"), rtol: rtol, atol: atol)
        out.backward(try file.tensor("alibi_rope.seed"))
        assertClose(q.grad!, try file.tensor("alibi_rope.dq"), rtol: rtol, atol: atol, "dq")
        assertClose(k.grad!, try file.tensor("alibi_rope.dk"), rtol: rtol, atol: atol, "dk")
        assertClose(v.grad!, try file.tensor("alibi_rope.dv"), rtol: rtol, atol: atol, "dv")
    }

    /// Interleaved partial RoPE (D 59, R 58) and a bidirectional T5 bias,
    /// against SDPA with the T5 bias as attn_mask; gradients also to the table.
    func testAttentionWithT5BiasAndRotaryMatchesSDPA() throws {
        let file = try fixture("attention")
        let (q, k, v) = (try leaf(file, "t5_rope.q"), try leaf(file, "t5_rope.k"), try leaf(file, "t5_rope.v"))
        let table = try leaf(file, "t5_rope.table")
        let rotary = Rotary(headDimension: 59, convention: .interleaved, rotaryDimension: 58)
        let attention = Attention(biases: [RelativePositionBias(heads: 2, bidirectional: true, table: table)])
        let out = attention(query: rotary.apply(q), key: rotary.apply(k), value: v).output
        assertClose(out, try file.tensor("t5_rope.out"), rtol: rtol, atol: atol)
        out.backward(try file.tensor("t5_rope.seed"))
        assertClose(q.grad!, try file.tensor("t5_rope.dq"), rtol: rtol, atol: atol, "dq")
        assertClose(k.grad!, try file.tensor("t5_rope.dk"), rtol: rtol, atol: atol, "dk")
        assertClose(v.grad!, try file.tensor("t5_rope.dv"), rtol: rtol, atol: atol, "dv")
        assertClose(table.grad!, try file.tensor("t5_rope.dtable"), rtol: rtol, atol: atol, "dtable")
    }
}
