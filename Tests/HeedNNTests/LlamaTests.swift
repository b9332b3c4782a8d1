import XCTest
import HeedAttention
import HeedTestSupport
import HeedTensor
@testable import HeedNN

/// The Llama decoder on a tiny random configuration: composition against a
/// hand-written block, KV-cache decoding against recomputation, causality.
final class LlamaTests: XCTestCase {
    var tiny: LlamaConfiguration {
        var c = LlamaConfiguration()
        c.vocabularySize = 20; c.hiddenSize = 12; c.intermediateSize = 20; c.layers = 2
        c.heads = 3; c.keyValueHeads = 1; c.ropeBase = 100; c.contextLength = 32
        return c
    }

    func testDefaultsAreSmolLM2() {
        let c = LlamaConfiguration()
        XCTAssertEqual([c.vocabularySize, c.hiddenSize, c.intermediateSize, c.layers, c.heads, c.keyValueHeads, c.headDimension],
                       [49_152, 576, 1_536, 30, 9, 3, 64])
        XCTAssertNil(c.problem)
        var bad = c
        bad.keyValueHeads = 4
        XCTAssertNotNil(bad.problem)
    }

    /// One block equals x + o(attn(norm x)) + mlp(norm h) written out with plain ops.
    func testBlockMatchesManualComposition() {
        let model = LlamaModel(configuration: tiny, seed: 1)
        let block = model.blocks[0]
        let x = randomTensor([1, 5, 12], seed: 2, requiresGrad: false)
        var cache = KVCache()
        let y = Tensor.withoutGrad { block(x, cache: &cache) }
        let expected: Tensor = Tensor.withoutGrad {
            let a = block.attention
            let n = x.rmsNorm(weight: block.attentionNorm.weight, epsilon: 1e-5)
            let rope = Rotary(headDimension: 4, base: 100)
            let q = rope.apply(n.linear(weight: a.queryWeight).reshaped([1, 5, 3, 4]).transposed(1, 2))  // [B, H, T, D]
            let k = rope.apply(n.linear(weight: a.keyWeight).reshaped([1, 5, 1, 4]).transposed(1, 2))    // [B, Hkv, T, D]
            let v = n.linear(weight: a.valueWeight).reshaped([1, 5, 1, 4]).transposed(1, 2)             // [B, Hkv, T, D]
            var scores = Tensor.matmul(q, k, transposeB: true) * 0.5                                       // [B, H, T, T]
            var mask = [Float](repeating: 0, count: 25)
            for i in 0 ..< 5 { for j in 0 ..< 5 where j > i { mask[i * 5 + j] = -1e30 } }
            scores = scores + Tensor(mask, shape: [5, 5])
            let o = scores.softmax(axis: -1).matmul(v).transposed(1, 2).reshaped([1, 5, 12])             // [B, T, H·D]
            let h = x + o.linear(weight: a.outputWeight)
            let m = h.rmsNorm(weight: block.mlpNorm.weight, epsilon: 1e-5)
            let mlp = block.mlp
            return h + (m.linear(weight: mlp.gate.weight).silu() * m.linear(weight: mlp.up.weight)).linear(weight: mlp.down.weight)
        }
        assertClose(y, expected, rtol: 1e-5, atol: 1e-6)
    }

    func testCachedDecodingEqualsRecomputeAndIsCausal() {
        let model = LlamaModel(configuration: tiny, seed: 3)
        let ids = [1, 7, 3, 19, 0, 4, 4]
        let full = Tensor.withoutGrad { model(IndexTensor(ids, shape: [1, 7])) }    // [1, 7, V]
        var cache = LlamaModel.Cache(layers: 2)
        let prompt = Tensor.withoutGrad { model(IndexTensor(Array(ids.prefix(4)), shape: [1, 4]), cache: &cache) }
        assertClose(prompt, full.sliced(axis: 1, start: 0, end: 4), rtol: 1e-5, atol: 1e-6)
        for (step, id) in ids.dropFirst(4).enumerated() {
            let row = Tensor.withoutGrad { model.lastLogits(IndexTensor([id], shape: [1, 1]), cache: &cache) }  // [1, V]
            assertClose(row.scalars, full.sliced(axis: 1, start: 4 + step, end: 5 + step).scalars, rtol: 1e-5, atol: 1e-6)
        }
        XCTAssertEqual(cache.position, 7)
        // Changing a later token leaves earlier logits alone.
        let changed = Tensor.withoutGrad { model(IndexTensor([1, 7, 3, 2, 0, 4, 4], shape: [1, 7])) }
        assertClose(changed.sliced(axis: 1, start: 0, end: 3), full.sliced(axis: 1, start: 0, end: 3), rtol: 0, atol: 0)
        XCTAssertGreaterThan((changed.sliced(axis: 1, start: 3, end: 4) - full.sliced(axis: 1, start: 3, end: 4)).abs().max().scalars[0], 1e-4)
    }
}
