import CHeedKernels
import HeedAttention
import HeedTensor
import HeedTestSupport
import XCTest

/// The flash engine against the dense engine for every pattern, the biases
/// (ALiBi, T5 with its learned table, an additive mask), dropout with the same
/// seed, and rows with nothing to attend to; and the exact weights it
/// recomputes from its saved log-sum-exp. Tolerances: see FlashAttentionTests.
final class FlashAttentionPatternTests: XCTestCase {
    typealias Case = FlashAttentionTests.Case

    func testEveryPattern() {
        let patterns: [(String, Pattern)] = [
            ("causal top-left", .causal(.topLeft)),
            ("causal bottom-right", .causal(.bottomRight)),
            ("padding", .keyPadding(lengths: [130, 37])),
            ("window", .slidingWindow(left: 20, right: 5)),
            ("causal window", .slidingWindow(left: 100, right: 0)),
            ("dilated", .dilatedWindow(left: 10, right: 3, dilation: 3)),
            ("global ∪ window", .union([.global(tokens: [0, 50, 129]), .slidingWindow(left: 8, right: 8)])),
            ("bigBird", .bigBird(blockSize: 16, windowBlocks: 3, globalBlocks: 1, randomBlocks: 2, seed: 4)),
            ("strided", .strided(stride: 9)),
            ("strided ∩ causal", .intersection([.strided(stride: 9), .causal()])),
            ("fixed", .fixed(block: 32, summary: 4)),
            ("block-diagonal", .blockDiagonal(queryLengths: [40, 0, 60, 30], keyLengths: [50, 20, 30, 30])),
            ("mask tensor", .mask(Tensor.randomUniform([2, 1, 130, 130], seed: 8).greater(Tensor(scalar: 0.7)))),
        ]
        for (index, (name, pattern)) in patterns.enumerated() {
            FlashAttentionTests.checkAgainstDense(
                Case(batch: 2, heads: 2, keyHeads: 1, queryLength: 130, keyLength: 130, depth: 32,
                     attention: Attention(pattern: pattern), seed: UInt64(100 + index)), name)
        }
        // Tq ≠ Tk for the aligned patterns.
        for (name, pattern) in [("causal top-left", Pattern.causal(.topLeft)), ("causal bottom-right", .causal(.bottomRight)),
                                ("window", .slidingWindow(left: 30, right: 0))] {
            FlashAttentionTests.checkAgainstDense(Case(queryLength: 70, keyLength: 200, depth: 32,
                                                       attention: Attention(pattern: pattern), seed: 7), "\(name), Tq < Tk")
        }
    }

    func testBiases() {
        let t5 = RelativePositionBias(heads: 4, numBuckets: 16, maxDistance: 64, bidirectional: true, seed: 3)
        FlashAttentionTests.checkAgainstDense(Case(heads: 4, keyHeads: 2, queryLength: 100, keyLength: 150, depth: 32,
                                                   attention: Attention(biases: [t5], pattern: .slidingWindow(left: 60, right: 20))),
                                              learned: [t5.table], "T5 bidirectional")
        let causalT5 = RelativePositionBias(heads: 2, numBuckets: 8, maxDistance: 32, bidirectional: false, seed: 4)
        FlashAttentionTests.checkAgainstDense(Case(queryLength: 97, keyLength: 97, depth: 64,
                                                   attention: Attention(biases: [causalT5], pattern: .causal())),
                                              learned: [causalT5.table], "T5 causal")
        FlashAttentionTests.checkAgainstDense(Case(heads: 8, keyHeads: 8, queryLength: 120, keyLength: 120, depth: 16,
                                                   attention: Attention(biases: [ALiBi(heads: 8)], pattern: .causal())), "ALiBi")
        FlashAttentionTests.checkAgainstDense(Case(heads: 4, keyHeads: 1, queryLength: 50, keyLength: 90, depth: 16,
                                                   attention: Attention(biases: [ALiBi(heads: 4, symmetric: true)])), "ALiBi symmetric")
        // A learned dense bias broadcast over the batch, and an additive −inf mask that empties a row.
        let learned = Tensor.randomNormal([1, 2, 40, 60], seed: 5, requiresGrad: true)
        var additive = [Float](repeating: 0, count: 40 * 60)
        for j in 0 ..< 60 { additive[3 * 60 + j] = -.infinity }
        for i in 0 ..< 40 where i != 3 { additive[i * 60 + (i * 7) % 60] = -.infinity }
        FlashAttentionTests.checkAgainstDense(Case(batch: 2, queryLength: 40, keyLength: 60, depth: 16,
                                                   attention: Attention(biases: [AdditiveBias(learned),
                                                                                 AdditiveBias(Tensor(additive, shape: [40, 60]))])),
                                              learned: [learned], "learned and −inf biases")
    }

    func testDropoutWithTheSameSeed() {
        for (p, seed) in [(Float(0.1), UInt64(1)), (0.5, 77), (1, 3)] {
            FlashAttentionTests.checkAgainstDense(
                Case(batch: 2, heads: 2, keyHeads: 1, queryLength: 100, keyLength: 130, depth: 32,
                     attention: Attention(pattern: .causal(.bottomRight), dropout: p, dropoutSeed: seed)), "dropout \(p)")
        }
    }

    func testFullyMaskedRowsGiveZerosAndZeroGradients() {
        // Batch element 0 has no keys at all; in batch element 1, rows before the window's reach see nothing.
        let q = randomTensor([2, 2, 150, 16], seed: 1), k = randomTensor([2, 2, 150, 16], seed: 2)
        let v = randomTensor([2, 2, 150, 16], seed: 3)
        let pattern = Pattern.intersection([.keyPadding(lengths: [0, 150]), .slidingWindow(left: -1, right: 20)])
        let attention = Attention(pattern: pattern, engine: .flash)
        let result = attention(query: q, key: k, value: v)
        result.output.sum().backward()
        let out = result.output.scalars, lse = result.logSumExp!.scalars
        XCTAssertTrue(out.allSatisfy { $0.isFinite } && q.grad!.scalars.allSatisfy { $0.isFinite }, "no NaN")
        XCTAssertTrue(out[0 ..< 2 * 150 * 16].allSatisfy { $0 == 0 }, "batch 0 outputs are zero")
        XCTAssertTrue(lse[0 ..< 300].allSatisfy { $0 == -.infinity }, "batch 0 LSE = −inf")
        XCTAssertTrue(q.grad!.scalars[0 ..< 2 * 150 * 16].allSatisfy { $0 == 0 }, "no gradient for empty rows")
        XCTAssertTrue(k.grad!.scalars[0 ..< 2 * 150 * 16].allSatisfy { $0 == 0 })
        XCTAssertTrue(lse[300...].contains { $0.isFinite }, "batch 1 attends")
        FlashAttentionTests.checkAgainstDense(Case(batch: 2, queryLength: 150, keyLength: 150, depth: 16,
                                                   attention: Attention(pattern: pattern)), "empty rows")
    }

    func testExactWeightsEqualTheDenseWeights() {
        let t5 = RelativePositionBias(heads: 4, numBuckets: 16, maxDistance: 64, bidirectional: true, seed: 3)
        let q = randomTensor([2, 4, 110, 32], seed: 1), k = randomTensor([2, 2, 140, 32], seed: 2)
        let v = randomTensor([2, 2, 140, 24], seed: 3)
        for attention in [Attention(softcap: 4, biases: [t5], pattern: .causal(.bottomRight)),
                          Attention(pattern: .keyPadding(lengths: [0, 90]), dropout: 0.4, dropoutSeed: 2)] {
            var dense = attention, flash = attention
            dense.engine = .dense
            flash.engine = .flash
            let reference = dense(query: q, key: k, value: v)
            let result = flash(query: q, key: k, value: v)
            assertClose(result.weights, reference.weights, rtol: 1e-5, atol: 1e-6, "all weights")
            let some = result.weights(rows: 30 ..< 101, heads: [3, 0])
            XCTAssertEqual(some.shape, [2, 2, 71, 140])
            assertClose(some, reference.weights(rows: 30 ..< 101, heads: [3, 0]), rtol: 1e-5, atol: 1e-6, "rows and heads")
            let sums = result.weights.sum(axis: -1).scalars
            XCTAssertTrue(sums.allSatisfy { Swift.abs($0 - 1) < 1e-5 || $0 == 0 }, "rows sum to 1 or are empty")
        }
    }

    func testMultiHeadAttentionRunsFlash() {
        var layer = MultiHeadAttention(embedDimension: 32, heads: 4, keyValueHeads: 2, seed: 1)
        layer.attention = Attention(pattern: .causal(), engine: .flash)
        let x = randomTensor([2, 70, 32], seed: 9)
        let flash = layer(x)
        layer.attention.engine = .dense
        let dense = layer(x)
        XCTAssertEqual(flash.heads.engine, .flash)
        assertClose(flash.output, dense.output, rtol: 1e-5, atol: 1e-6)
        assertClose(flash.weights, dense.weights, rtol: 1e-5, atol: 1e-6)
    }

    func testDropoutMaskIsPhilox() {
        // Random123's known-answer test for Philox4x32-10: counter 0, key 0.
        var out = [UInt32](repeating: 0, count: 4)
        heed_philox4x32_10([0, 0, 0, 0], [0, 0], &out)
        XCTAssertEqual(out, [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
        // The mask is the documented function of (seed, b, h, i, j), computed here with HeedTensor's Philox.
        let seed: UInt64 = 0x1234_5678_9ABC_DEF0, p: Float = 0.3
        let tile = AttentionDropout.mask(seed: seed, probability: p, batch: 1, head: 2, rows: 5 ..< 9, columns: 3 ..< 14)
        for (r, i) in (5 ..< 9).enumerated() {
            for (c, j) in (3 ..< 14).enumerated() {
                let words = Philox.block(counter: (UInt32(j / 4), UInt32(i), 2, 1),
                                         key: (UInt32(truncatingIfNeeded: seed), UInt32(seed >> 32)))
                let word = [words.0, words.1, words.2, words.3][j % 4]
                let dropped = Float(word >> 8) * 0x1p-24 < p
                XCTAssertEqual(tile[r * 11 + c], dropped ? 0 : 1 / (1 - p), "(\(i), \(j))")
            }
        }
        let all = AttentionDropout.mask(seed: 5, probability: 0.25, batch: 2, heads: 3, queryLength: 100, keyLength: 100).scalars
        let kept = Float(all.filter { $0 != 0 }.count) / Float(all.count)
        XCTAssertEqual(kept, 0.75, accuracy: 0.01, "about 1 − p kept (60 000 draws: σ ≈ 0.002)")
    }
}
