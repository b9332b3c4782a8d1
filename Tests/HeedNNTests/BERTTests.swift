import Foundation
import XCTest
import HeedAttention
import HeedTestSupport
import HeedTensor
@testable import HeedNN

/// The BERT encoder on small random weights: against a plain composition of
/// tensor ops, and padding invariance. (all-MiniLM-L6-v2 against
/// sentence-transformers is in HeedModelsTests/MiniLMTests.swift.)
final class BERTTests: XCTestCase {
    let configuration = BERTConfiguration(vocabularySize: 50, hiddenSize: 12, layers: 2, heads: 3, intermediateSize: 20,
                                          maxPositions: 16, typeVocabularySize: 2, layerNormEpsilon: 1e-12)

    /// One layer written out with matmul, softmax, layerNorm and the erf GELU.
    func referenceLayer(_ layer: BERTLayer, _ x: Tensor, heads: Int, epsilon: Float) -> Tensor {
        let (b, t, e) = (x.shape[0], x.shape[1], x.shape[2])
        let d = e / heads
        let a = layer.attention
        func split(_ y: Tensor) -> Tensor { y.reshaped([b, t, heads, d]).transposed(1, 2) }   // [B, H, T, D]
        let q = split(x.matmul(a.queryWeight.transposed(0, 1)) + a.queryBias!)
        let k = split(x.matmul(a.keyWeight.transposed(0, 1)) + a.keyBias!)
        let v = split(x.matmul(a.valueWeight.transposed(0, 1)) + a.valueBias!)
        let weights = (q.matmul(k.transposed(2, 3)) * (1 / Float(d).squareRoot())).softmax(axis: -1)   // [B, H, T, T]
        let context = weights.matmul(v).transposed(1, 2).reshaped([b, t, e])                             // [B, T, E]
        let attended = context.matmul(a.outputWeight.transposed(0, 1)) + a.outputBias!
        let h = (x + attended).layerNorm(weight: layer.attentionNorm.weight, bias: layer.attentionNorm.bias, epsilon: epsilon)
        let up = (h.matmul(layer.mlp.up.weight.transposed(0, 1)) + layer.mlp.up.bias!)
        let gelu = Tensor(up.scalars.map { 0.5 * $0 * (1 + Foundation.erf($0 / Float(2).squareRoot())) }, shape: up.shape)   // x·Φ(x)
        let down = gelu.matmul(layer.mlp.down.weight.transposed(0, 1)) + layer.mlp.down.bias!
        return (h + down).layerNorm(weight: layer.mlpNorm.weight, bias: layer.mlpNorm.bias, epsilon: epsilon)
    }

    func testModelEqualsPlainComposition() {
        let model = BERTModel(configuration: configuration, seed: 7)
        let ids = IndexTensor([1, 5, 9, 2, 40, 3, 7, 7, 0, 49], shape: [2, 5])
        let typeIds = IndexTensor([0, 0, 0, 1, 1, 0, 0, 1, 1, 1], shape: [2, 5])
        let out = Tensor.withoutGrad { model(ids, typeIds: typeIds) }
        XCTAssertEqual(out.shape, [2, 5, 12])
        let e = model.embeddings
        var x = (e.word.table.embedding(ids) + e.position.table.sliced(axis: 0, range: 0..<5) + e.tokenType.table.embedding(typeIds))
            .layerNorm(weight: e.norm.weight, bias: e.norm.bias, epsilon: 1e-12)
        for layer in model.layers { x = referenceLayer(layer, x, heads: 3, epsilon: 1e-12) }
        assertClose(out, x.detached(), rtol: 1e-4, atol: 1e-5)
    }

    /// A padded sequence's states at its real positions equal those of the
    /// sequence alone, whatever the padding ids are.
    func testPaddingIsMaskedOut() {
        let model = BERTModel(configuration: configuration, seed: 3)
        let short = [4, 8, 15], long = [16, 23, 42, 4, 8, 1]
        let alone = Tensor.withoutGrad { model(IndexTensor(short, shape: [1, 3])) }
        for padding in [0, 17] {
            let ids = IndexTensor(short + Array(repeating: padding, count: 3) + long, shape: [2, 6])
            let batch = Tensor.withoutGrad { model(ids, lengths: [3, 6]) }
            assertClose(batch.sliced(axis: 0, range: 0..<1).sliced(axis: 1, range: 0..<3), alone, rtol: 1e-5, atol: 1e-5,
                        "padding id \(padding)")
            let longAlone = Tensor.withoutGrad { model(IndexTensor(long, shape: [1, 6])) }
            assertClose(batch.sliced(axis: 0, range: 1..<2), longAlone, rtol: 1e-5, atol: 1e-5)
        }
        // Without lengths the padding is attended to, and the states change.
        let unmasked = Tensor.withoutGrad { model(IndexTensor(short + [0, 0, 0], shape: [1, 6])) }
        let difference = zip(unmasked.sliced(axis: 1, range: 0..<3).scalars, alone.scalars).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(difference, 1e-3)
    }

    func testConfigurationDefaultsAreBERTBaseAndGradientsReachEveryParameter() {
        let base = BERTConfiguration()
        XCTAssertEqual([base.vocabularySize, base.hiddenSize, base.layers, base.heads, base.intermediateSize, base.maxPositions],
                       [30522, 768, 12, 12, 3072, 512])
        XCTAssertEqual(base.headDimension, 64)
        let model = BERTModel(configuration: configuration, seed: 1)
        XCTAssertEqual(model.parameters.count, 5 + 2 * 16)
        model(IndexTensor([1, 2, 3, 4], shape: [1, 4])).square().sum().backward()
        for (i, parameter) in model.parameters.enumerated() {
            XCTAssertNotNil(parameter.grad, "parameter \(i) \(parameter.shape)")
        }
    }
}
