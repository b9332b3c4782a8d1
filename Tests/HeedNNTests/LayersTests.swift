import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedNN

final class LayersTests: XCTestCase {
    func testLinearMatchesLoopsInitBoundsAndGradients() {
        let layer = Linear(inputSize: 5, outputSize: 3, seed: 1)
        XCTAssertTrue(layer.weight.scalars.allSatisfy { Swift.abs($0) <= 1 / Float(5).squareRoot() })
        let x = randomTensor([2, 5], seed: 2)
        let y = layer(x)
        for n in 0..<2 { for o in 0..<3 {
            let expected = (0..<5).reduce(Double(layer.bias!.scalars[o])) { $0 + Double(x[n, $1]) * Double(layer.weight[o, $1]) }
            XCTAssertEqual(Double(y[n, o]), expected, accuracy: 1e-5)
        } }
        assertGradients([x, layer.weight, layer.bias!]) { Linear(weight: $0[1], bias: $0[2])($0[0]) }
    }

    func testEmbeddingNormsAndLookups() {
        let embedding = Embedding(count: 10, dimension: 4, seed: 3)
        let out = embedding(IndexTensor([3, 3, 9], shape: [1, 3]))
        XCTAssertEqual(out.shape, [1, 3, 4])
        XCTAssertEqual(Array(out.scalars[0..<4]), Array(embedding.table.scalars[12..<16]))
        XCTAssertEqual(Array(out.scalars[8..<12]), Array(embedding.table.scalars[36..<40]))
    }

    func testNormLayersStartAsPlainNormalisation() {
        let x = randomTensor([3, 7], seed: 4)
        assertClose(LayerNorm(dimension: 7)(x), x.layerNorm(epsilon: 1e-5))
        assertClose(RMSNorm(dimension: 7, epsilon: 1e-6)(x), x.rmsNorm(epsilon: 1e-6))
        let layer = LayerNorm(dimension: 7)
        assertGradients([x, layer.weight, layer.bias!]) { LayerNorm(weight: $0[1], bias: $0[2], epsilon: 1e-5)($0[0]) }
    }
}
