import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// Properties of the position encodings that follow from their definitions,
/// and finite-difference gradient checks. Fixture comparisons: PositionsTests.swift.
final class PositionsPropertyTests: XCTestCase {
    // MARK: rotary

    /// ⟨rope(q, m), rope(k, n)⟩ depends on m − n only (RoFormer §3.4.1).
    func testRotaryScoreDependsOnlyOnRelativePosition() {
        let conventions: [(Rotary.Convention, Int, Int?)] = [(.halfSplit, 16, nil), (.interleaved, 16, nil),
                                                              (.halfSplit, 11, 8), (.interleaved, 11, 6)]
        for (convention, d, r) in conventions {
            let rotary = Rotary(headDimension: d, convention: convention, rotaryDimension: r)
            let q = randomTensor([1, 1, 1, d], seed: 1, requiresGrad: false)
            let k = randomTensor([1, 1, 1, d], seed: 2, requiresGrad: false)
            func score(_ m: Int, _ n: Int) -> Float {
                (rotary.apply(q, offset: m) * rotary.apply(k, offset: n)).sum(axes: [0, 1, 2, 3], keepDims: false).item()
            }
            let reference = score(5, 2)
            for (m, n) in [(3, 0), (10, 7), (103, 100), (1000, 997), (0, -3)] {
                XCTAssertEqual(score(m, n), reference, accuracy: 1e-4, "\(convention) d \(d): (\(m), \(n))")
            }
            // A different offset gives a different score (the test can fail).
            XCTAssertGreaterThan(Swift.abs(score(5, 1) - reference), 1e-3, "\(convention) d \(d)")
        }
    }

    /// Rotations keep norms, position 0 is the identity, and features past R pass through.
    func testRotaryIsARotationThatLeavesTheRestAlone() {
        let x = randomTensor([2, 3, 4, 10], seed: 3, requiresGrad: false)
        for convention in [Rotary.Convention.halfSplit, .interleaved] {
            let rotary = Rotary(headDimension: 10, convention: convention, rotaryDimension: 6)
            let y = rotary.apply(x, offset: 9)
            assertClose(y.square().sum(axes: [3], keepDims: false), x.square().sum(axes: [3], keepDims: false),
                        rtol: 1e-5, atol: 1e-5)
            assertClose(y.sliced(axis: 3, start: 6), x.sliced(axis: 3, start: 6))
            assertClose(rotary.apply(x.sliced(axis: 2, start: 0, end: 1), offset: 0), x.sliced(axis: 2, start: 0, end: 1))
            XCTAssertGreaterThan((y - x).abs().max(axes: [0, 1, 2, 3], keepDims: false).item(), 0.1)
        }
    }

    /// Rotating a slice with its offset equals slicing the rotated whole (what a KV cache relies on).
    func testRotaryOffsetMatchesSliceOfFullSequence() {
        let x = randomTensor([1, 2, 7, 8], seed: 4, requiresGrad: false)
        for convention in [Rotary.Convention.halfSplit, .interleaved] {
            let rotary = Rotary(headDimension: 8, convention: convention)
            let whole = rotary.apply(x)
            assertClose(rotary.apply(x.sliced(axis: 2, start: 4, end: 7), offset: 4), whole.sliced(axis: 2, start: 4, end: 7),
                        rtol: 1e-6, atol: 1e-6)
            assertClose(rotary.apply(x, positions: Array(0 ..< 7)), whole)
        }
    }

    /// Interleaved RoPE is half-split RoPE on features permuted evens-then-odds.
    func testRotaryConventionsDifferByAFeaturePermutation() {
        let d = 12
        let x = randomTensor([2, 1, 5, d], seed: 5, requiresGrad: false)
        let evensThenOdds = IndexTensor(Array(stride(from: 0, to: d, by: 2)) + Array(stride(from: 1, to: d, by: 2)))
        let inverse = IndexTensor((0 ..< d).map { $0 % 2 == 0 ? $0 / 2 : d / 2 + $0 / 2 })
        let interleaved = Rotary(headDimension: d, convention: .interleaved).apply(x, offset: 2)
        let viaHalfSplit = Rotary(headDimension: d, convention: .halfSplit)
            .apply(x.indexSelect(axis: 3, indices: evensThenOdds), offset: 2)
            .indexSelect(axis: 3, indices: inverse)
        assertClose(interleaved, viaHalfSplit, rtol: 1e-6, atol: 1e-6)
    }

    func testRotaryGradientsByFiniteDifferences() {
        for (convention, d, r) in [(Rotary.Convention.halfSplit, 6, 4), (.interleaved, 7, 6), (.halfSplit, 4, nil)] {
            let rotary = Rotary(headDimension: d, convention: convention, rotaryDimension: r)
            let x = randomTensor([2, 1, 3, d], seed: 6)
            assertGradients([x], "\(convention)") { xs in rotary.apply(xs[0], offset: 5) }
        }
    }

    // MARK: absolute positions

    func testSinusoidalLayoutsAreColumnPermutationsAndOddWidthEndsInASine() {
        let d = 7
        let interleaved = SinusoidalPositions(dimension: d)(length: 4, offset: 3)
        let concatenated = SinusoidalPositions(dimension: d, layout: .concatenated)(length: 4, offset: 3)
        let evensThenOdds = IndexTensor([0, 2, 4, 6, 1, 3, 5])
        assertClose(concatenated, interleaved.indexSelect(axis: 1, indices: evensThenOdds))
        // Column 6 = sin(p · 10000^(−6/7)), row 0 at position 3.
        XCTAssertEqual(interleaved[0, 6], Float(Foundation.sin(3 * Foundation.pow(10000, -6.0 / 7))), accuracy: 1e-7)
        XCTAssertEqual(interleaved[2, 1], Float(Foundation.cos(5.0)), accuracy: 1e-7)
        XCTAssertEqual(SinusoidalPositions(dimension: d)(length: 0).shape, [0, d])
    }

    func testLearnedPositionsOffsetAndGradients() {
        let positions = LearnedPositions(maxPositions: 6, dimension: 3, seed: 7)
        XCTAssertTrue(positions.table.requiresGrad)
        assertClose(positions(length: 2, offset: 4), positions.table.sliced(axis: 0, start: 4, end: 6))
        assertGradients([positions.table]) { xs in
            LearnedPositions(maxPositions: 6, dimension: 3, table: xs[0])(positions: IndexTensor([1, 4, 4, 0], shape: [2, 2]))
        }
    }

    // MARK: ALiBi

    func testALiBiSlopesFollowThePaper() {
        // Powers of two: 2^(−8/H), 2^(−16/H), …, 2^(−8).
        XCTAssertEqual(ALiBi.slopes(heads: 8), (1 ... 8).map { Foundation.pow(2, -Double($0)) })
        XCTAssertEqual(ALiBi.slopes(heads: 16).last!, 1.0 / 256, accuracy: 1e-15)
        XCTAssertEqual(ALiBi.slopes(heads: 16)[0], Foundation.pow(2, -0.5), accuracy: 1e-15)
        // 12 heads: the 8 above, then 2^(−0.5), 2^(−1.5), 2^(−2.5), 2^(−3.5).
        let twelve = ALiBi.slopes(heads: 12)
        XCTAssertEqual(Array(twelve.prefix(8)), ALiBi.slopes(heads: 8))
        for (k, slope) in twelve.dropFirst(8).enumerated() {
            XCTAssertEqual(slope, Foundation.pow(2, -0.5 - Double(k)), accuracy: 1e-15)
        }
        XCTAssertEqual(ALiBi.slopes(heads: 1), [1.0 / 256])
    }

    /// Causal ALiBi changes by a constant per row when the offset moves (softmax
    /// ignores it); the symmetric form does not, and both agree on the past.
    func testALiBiOffsetShiftsRowsByConstantsAndSymmetricAgreesOnThePast() {
        let alibi = ALiBi(heads: 4), symmetric = ALiBi(heads: 4, symmetric: true)
        let near = alibi.bias(heads: 4, queryLength: 3, keyLength: 5, queryOffset: 0)
        let far = alibi.bias(heads: 4, queryLength: 3, keyLength: 5, queryOffset: 2)
        let difference = (far - near).scalars
        for row in 0 ..< 12 {
            let values = difference[(row * 5) ..< (row * 5 + 5)]
            XCTAssertEqual(values.max()! - values.min()!, 0, "row \(row)")
            XCTAssertEqual(values.first!, -2 * alibi.slopes[row / 3])
        }
        let s = symmetric.bias(heads: 4, queryLength: 3, keyLength: 5, queryOffset: 2)
        for h in 0 ..< 4 { for i in 0 ..< 3 { for j in 0 ..< 5 {
            if j <= i + 2 { XCTAssertEqual(s[0, h, i, j], far[0, h, i, j]) } else { XCTAssertEqual(s[0, h, i, j], -far[0, h, i, j]) }
        } } }
        XCTAssertEqual(far[0, 3, 0, 4], 2 * alibi.slopes[3])   // a future key: +m·(j − p_i)
    }

    // MARK: T5

    func testT5BucketsAreExactThenLogarithmicThenClamped() {
        func bucket(_ r: Int, _ bidirectional: Bool) -> Int {
            RelativePositionBias.bucket(relativePosition: r, bidirectional: bidirectional, numBuckets: 32, maxDistance: 128)
        }
        for n in 0 ..< 16 { XCTAssertEqual(bucket(-n, false), n) }              // 16 exact buckets (causal)
        for n in 0 ..< 8 { XCTAssertEqual(bucket(-n, true), n); XCTAssertEqual(bucket(n + 1, true), 16 + n + 1) }
        for r in 1 ..< 50 { XCTAssertEqual(bucket(r, false), 0) }               // the future shares bucket 0
        let causal = (0 ..< 400).map { bucket(-$0, false) }
        XCTAssertEqual(causal, causal.sorted())                                  // monotone in distance
        XCTAssertEqual(causal.max(), 31)
        XCTAssertTrue(causal[128...].allSatisfy { $0 == 31 })                    // beyond maxDistance: last bucket
        XCTAssertEqual(bucket(-32, false), 21)                                   // 16 + ⌊ln(2)/ln(8)·16⌋
        XCTAssertTrue((1 ..< 400).allSatisfy { bucket($0, true) >= 16 && bucket(-$0, true) < 16 })
    }

    func testT5BiasGradientByFiniteDifferences() {
        let table = randomTensor([8, 2], seed: 8)
        assertGradients([table]) { xs in
            RelativePositionBias(heads: 2, numBuckets: 8, maxDistance: 12, bidirectional: true, table: xs[0])
                .bias(heads: 2, queryLength: 3, keyLength: 7, queryOffset: 2)
        }
    }

    // MARK: through Attention

    func testAttentionWithPositionsGradientsByFiniteDifferences() {
        let q = randomTensor([1, 2, 2, 6], seed: 9), k = randomTensor([1, 1, 4, 6], seed: 10)
        let v = randomTensor([1, 1, 4, 3], seed: 11), table = randomTensor([8, 2], seed: 12)
        let rotary = Rotary(headDimension: 6, convention: .interleaved, rotaryDimension: 4)
        assertGradients([q, k, v, table]) { xs in
            let attention = Attention(biases: [ALiBi(heads: 2),
                                               RelativePositionBias(heads: 2, numBuckets: 8, maxDistance: 10,
                                                                    bidirectional: false, table: xs[3])],
                                      pattern: .causal(.bottomRight))
            return attention(query: rotary.apply(xs[0], offset: 2), key: rotary.apply(xs[1]), value: xs[2],
                             queryOffset: 2).output
        }
    }

    /// A batch element whose keys are all padding: zero output, and no share
    /// (and no NaN) in the gradients of q, k, v or the T5 table.
    func testFullyMaskedRowsGiveZerosAndNoGradient() {
        let q = randomTensor([2, 2, 3, 4], seed: 16), k = randomTensor([2, 2, 5, 4], seed: 17)
        let v = randomTensor([2, 2, 5, 4], seed: 18), table = randomTensor([8, 2], seed: 19)
        let rotary = Rotary(headDimension: 4)
        let attention = Attention(biases: [ALiBi(heads: 2), RelativePositionBias(heads: 2, numBuckets: 8, maxDistance: 10,
                                                                                    bidirectional: true, table: table)],
                                  pattern: .keyPadding(lengths: [5, 0]))
        func gradients(seed: Tensor) -> (out: Tensor, grads: [[Float]]) {
            for t in [q, k, v, table] { t.grad = nil }
            let out = attention(query: rotary.apply(q, offset: 2), key: rotary.apply(k), value: v, queryOffset: 2).output
            out.backward(seed)
            return (out, [q, k, v, table].map { $0.grad!.scalars })
        }
        let seed = Tensor.randomUniform([2, 2, 3, 4], low: -1, high: 1, seed: 20)
        let firstOnly = seed * Tensor([1, 0], shape: [2, 1, 1, 1])
        let (out, withMaskedSeed) = gradients(seed: seed)
        let (_, withoutMaskedSeed) = gradients(seed: firstOnly)
        XCTAssertEqual(out.sliced(axis: 0, start: 1).scalars, [Float](repeating: 0, count: 24))
        for (a, b) in zip(withMaskedSeed, withoutMaskedSeed) {
            XCTAssertFalse(a.contains { !$0.isFinite })
            assertClose(a, b, rtol: 1e-6, atol: 1e-7)
        }
        XCTAssertGreaterThan(withMaskedSeed[3].map(Swift.abs).max()!, 1e-4)   // the table does get gradient from batch 0
    }

    /// Token-by-token decoding with a KV cache (rotary at the cache position,
    /// biases at queryOffset = position − first cached key) equals recomputing
    /// the whole sequence, with a full cache and with a rotating window.
    func testMultiHeadDecodingWithCacheMatchesFullSequence() {
        let x = randomTensor([2, 6, 8], seed: 13, requiresGrad: false)
        let window = 3
        let setups: [(Pattern, Int?, [any AttentionBias])] = [
            (.causal(.bottomRight), nil, [ALiBi(heads: 4, symmetric: true)]),
            (.intersection([.causal(.bottomRight), .slidingWindow(left: window - 1, right: 0)]), window,
             [RelativePositionBias(heads: 4, numBuckets: 8, maxDistance: 16, bidirectional: true, seed: 14), ALiBi(heads: 4)]),
        ]
        for (pattern, cacheWindow, biases) in setups {
            var layer = MultiHeadAttention(embedDimension: 8, heads: 4, keyValueHeads: 2,
                                           attention: Attention(biases: biases, pattern: pattern), seed: 15)
            layer.positionTransform = Rotary(headDimension: 2)
            let full = Tensor.withoutGrad { layer(x).output }                       // [2, 6, 8]
            var cache = KVCache(window: cacheWindow)
            for t in 0 ..< 6 {
                let step = Tensor.withoutGrad { layer(x.sliced(axis: 1, start: t, end: t + 1), cache: &cache).output }
                assertClose(step, full.sliced(axis: 1, start: t, end: t + 1), rtol: 1e-5, atol: 1e-5, "step \(t)")
            }
        }
    }
}
