import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

final class MultiHeadAttentionTests: XCTestCase {
    private let file = Result { try loadFixture("attention/attention_dense.safetensors") }

    /// nn.MultiheadAttention(16, 4) with a packed in_proj, biases, key padding.
    func testMatchesTorchSelfAttentionWithPadding() throws {
        let f = try file.get()
        let p = "mha_self_padding"
        var mha = MultiHeadAttention(embedDimension: 16, heads: 4, attention: Attention(pattern: .keyPadding(lengths: [6, 3])))
        let inProj = try f.tensor("\(p).in_proj_weight"), inBias = try f.tensor("\(p).in_proj_bias")
        let weights = inProj.split(count: 3, axis: 0).map { $0.detached() }
        let biases = inBias.split(count: 3, axis: 0).map { $0.detached() }
        for t in weights + biases { t.requiresGrad = true }
        (mha.queryWeight, mha.keyWeight, mha.valueWeight) = (weights[0], weights[1], weights[2])
        (mha.queryBias, mha.keyBias, mha.valueBias) = (biases[0], biases[1], biases[2])
        mha.outputWeight = try f.tensor("\(p).out_proj.weight"); mha.outputWeight.requiresGrad = true
        mha.outputBias = try f.tensor("\(p).out_proj.bias"); mha.outputBias!.requiresGrad = true
        let x = try f.tensor("\(p).x"), key = try f.tensor("\(p).key"), value = try f.tensor("\(p).value")
        for t in [x, key, value] { t.requiresGrad = true }

        let result = mha(x, key: key, value: value)
        assertClose(result.output, try f.tensor("\(p).out"), rtol: 1e-4, atol: 1e-5, "out")
        assertClose(result.weights, try f.tensor("\(p).weights"), rtol: 1e-4, atol: 1e-5, "weights")
        result.output.backward(try f.tensor("\(p).grad_out"))
        assertClose(x.grad!, try f.tensor("\(p).dx"), rtol: 1e-4, atol: 1e-5, "dx")
        assertClose(key.grad!, try f.tensor("\(p).dkey"), rtol: 1e-4, atol: 1e-5, "dkey")
        assertClose(value.grad!, try f.tensor("\(p).dvalue"), rtol: 1e-4, atol: 1e-5, "dvalue")
        let dIn = Tensor.concatenate(weights.map { $0.grad! }, axis: 0)
        assertClose(dIn, try f.tensor("\(p).din_proj_weight"), rtol: 1e-4, atol: 1e-5, "din_proj_weight")
        assertClose(Tensor.concatenate(biases.map { $0.grad! }, axis: 0), try f.tensor("\(p).din_proj_bias"), rtol: 1e-4, atol: 1e-5)
        assertClose(mha.outputWeight.grad!, try f.tensor("\(p).dout_proj.weight"), rtol: 1e-4, atol: 1e-5)
        assertClose(mha.outputBias!.grad!, try f.tensor("\(p).dout_proj.bias"), rtol: 1e-4, atol: 1e-5)
    }

    /// Separate key/value input sizes (kdim 7, vdim 5), no bias, Tq = 1, Tk = 59.
    func testMatchesTorchCrossAttentionWithOtherKeyValueSizes() throws {
        let f = try file.get()
        let p = "mha_cross_kdim_vdim_nobias"
        var mha = MultiHeadAttention(embedDimension: 12, heads: 3, keyDimension: 7, valueDimension: 5, bias: false)
        XCTAssertNil(mha.queryBias)
        mha.queryWeight = try f.tensor("\(p).q_proj_weight")
        mha.keyWeight = try f.tensor("\(p).k_proj_weight")
        mha.valueWeight = try f.tensor("\(p).v_proj_weight")
        mha.outputWeight = try f.tensor("\(p).out_proj.weight")
        for t in mha.parameters { t.requiresGrad = true }
        let x = try f.tensor("\(p).x"), key = try f.tensor("\(p).key"), value = try f.tensor("\(p).value")
        for t in [x, key, value] { t.requiresGrad = true }
        let result = mha(x, key: key, value: value)
        assertClose(result.output, try f.tensor("\(p).out"), rtol: 1e-4, atol: 1e-5)
        assertClose(result.weights, try f.tensor("\(p).weights"), rtol: 1e-4, atol: 1e-5)
        result.output.backward(try f.tensor("\(p).grad_out"))
        for (name, t) in [("dx", x), ("dkey", key), ("dvalue", value), ("dq_proj_weight", mha.queryWeight),
                          ("dk_proj_weight", mha.keyWeight), ("dv_proj_weight", mha.valueWeight), ("dout_proj.weight", mha.outputWeight)] {
            assertClose(t.grad!, try f.tensor("\(p).\(name)"), rtol: 1e-4, atol: 1e-5, name)
        }
    }

    /// Grouped-query MHA equals the same layer with each K/V head repeated for its group.
    func testGroupedQueryEqualsRepeatedKeyValueHeads() {
        let gqa = MultiHeadAttention(embedDimension: 12, heads: 6, keyValueHeads: 2, headDimension: 4, seed: 3)
        var repeated = MultiHeadAttention(embedDimension: 12, heads: 6, headDimension: 4, seed: 3)
        repeated.queryWeight = gqa.queryWeight; repeated.outputWeight = gqa.outputWeight
        repeated.queryBias = gqa.queryBias; repeated.outputBias = gqa.outputBias
        func repeatHeads(_ w: Tensor, _ d: Int) -> Tensor {   // [2·d, E] → [6·d, E], each head 3 times
            let heads = w.split(count: 2, axis: 0)
            return Tensor.concatenate(heads.flatMap { Array(repeating: $0, count: 3) }, axis: 0)
        }
        repeated.keyWeight = repeatHeads(gqa.keyWeight, 4); repeated.valueWeight = repeatHeads(gqa.valueWeight, 4)
        repeated.keyBias = repeatHeads(gqa.keyBias!.reshaped(8, 1), 4).reshaped(24)
        repeated.valueBias = repeatHeads(gqa.valueBias!.reshaped(8, 1), 4).reshaped(24)
        let x = randomTensor([2, 5, 12], seed: 4)
        assertClose(gqa(x).output, repeated(x).output, rtol: 1e-5, atol: 1e-6)
        assertGradients([x]) { gqa($0[0]).output }
    }

    /// Decoding token by token (and in chunks) with a KV cache gives the same
    /// outputs and the same parameter gradients as one causal pass.
    func testKVCacheMatchesFullRecomputeWithGradients() {
        let mha = MultiHeadAttention(embedDimension: 8, heads: 4, keyValueHeads: 2,
                                     attention: Attention(pattern: .causal(.bottomRight)), seed: 5)
        let mha2 = mha
        let x = randomTensor([2, 7, 8], seed: 6)
        let full = mha(x).output                                                 // [2, 7, 8]
        (full * Tensor.randomNormal(full.shape, seed: 7)).sum().backward()
        let fullGrads = mha.parameters.map { $0.grad! }
        for p in mha.parameters { p.grad = nil }

        var cache = KVCache()
        var pieces: [Tensor] = []
        for (start, end) in [(0, 1), (1, 4), (4, 5), (5, 7)] {
            pieces.append(mha2(x.sliced(axis: 1, start: start, end: end), cache: &cache).output)
        }
        XCTAssertEqual(cache.position, 7)
        let incremental = Tensor.concatenate(pieces, axis: 1)
        assertClose(incremental, full, rtol: 1e-5, atol: 1e-6)
        (incremental * Tensor.randomNormal(full.shape, seed: 7)).sum().backward()
        for (grad, expected) in zip(mha2.parameters.map { $0.grad! }, fullGrads) { assertClose(grad, expected, rtol: 1e-4, atol: 1e-6) }
    }

    /// A rotating window cache keeps W − 1 positions and matches sliding-window recompute.
    func testSlidingWindowCacheMatchesRecompute() {
        let window = 3
        let mha = MultiHeadAttention(embedDimension: 8, heads: 2,
                                     attention: Attention(pattern: .slidingWindow(left: window - 1, right: 0)), seed: 8)
        let x = randomTensor([1, 9, 8], seed: 9, requiresGrad: false)
        let full = mha(x).output
        var cache = KVCache(window: window)
        var pieces: [Tensor] = []
        for (start, end) in [(0, 2), (2, 3), (3, 7), (7, 8), (8, 9)] {
            pieces.append(mha(x.sliced(axis: 1, start: start, end: end), cache: &cache).output)
            XCTAssertLessThanOrEqual(cache.keys!.shape[2], window - 1)
            XCTAssertEqual(cache.start, end - cache.keys!.shape[2])
        }
        assertClose(Tensor.concatenate(pieces, axis: 1), full, rtol: 1e-5, atol: 1e-6)
    }
}

/// Finite-difference checks of the dense engine's own pieces.
final class AttentionGradientTests: XCTestCase {
    func testEveryScoreAndPatternPassesFiniteDifferences() {
        let q = randomTensor([1, 2, 3, 5], seed: 10), k = randomTensor([1, 2, 4, 5], seed: 11), v = randomTensor([1, 2, 4, 3], seed: 12)
        let w = randomTensor([5, 5], seed: 13), wq = randomTensor([5, 6], seed: 14), wk = randomTensor([5, 6], seed: 15), va = randomTensor([6], seed: 16)
        assertGradients([q, k, v, w]) { Attention(score: .bilinear(weight: $0[3]))(query: $0[0], key: $0[1], value: $0[2]).output }
        assertGradients([q, k, v, wq, wk, va]) {
            Attention(score: .additive(queryWeight: $0[3], keyWeight: $0[4], vector: $0[5]))(query: $0[0], key: $0[1], value: $0[2]).output
        }
        assertGradients([q, k, v]) { Attention(score: .cosine(scale: 3), temperature: 0.7)(query: $0[0], key: $0[1], value: $0[2]).output }
        for pattern in [Pattern.causal(.bottomRight), .slidingWindow(left: 1, right: 0), .keyPadding(lengths: [0])] {
            assertGradients([q, k, v]) { Attention(pattern: pattern)(query: $0[0], key: $0[1], value: $0[2]).output }
        }
    }

    func testEmptyRowsGiveZerosAndNoNaNGradients() {
        let q = randomTensor([1, 1, 2, 4], seed: 17), k = randomTensor([1, 1, 3, 4], seed: 18), v = randomTensor([1, 1, 3, 4], seed: 19)
        let result = Attention(pattern: .keyPadding(lengths: [0]))(query: q, key: k, value: v)
        XCTAssertEqual(result.output.scalars, [Float](repeating: 0, count: 8))
        result.output.sum().backward()
        for t in [q, k, v] { XCTAssertEqual(t.grad!.scalars, [Float](repeating: 0, count: t.count)) }
    }

    func testDropoutOnWeightsIsSeededAndUnbiased() {
        let q = randomTensor([1, 1, 4, 4], seed: 20, requiresGrad: false), k = randomTensor([1, 1, 6, 4], seed: 21, requiresGrad: false)
        let v = Tensor.ones([1, 1, 6, 1])
        let a = Attention(dropout: 0.5, dropoutSeed: 3)(query: q, key: k, value: v).output
        XCTAssertEqual(a.scalars, Attention(dropout: 0.5, dropoutSeed: 3)(query: q, key: k, value: v).output.scalars)
        XCTAssertNotEqual(a.scalars, Attention(dropout: 0.5, dropoutSeed: 4)(query: q, key: k, value: v).output.scalars)
        // With v = 1 every undropped output is 1; averaged over seeds it approaches 1.
        var total: Float = 0
        for seed in 0..<400 { total += Attention(dropout: 0.5, dropoutSeed: UInt64(seed))(query: q, key: k, value: v).output.mean().item() }
        XCTAssertEqual(total / 400, 1, accuracy: 0.05)
    }
}
