import XCTest
import HeedTestSupport
@testable import HeedTensor

final class IndexingTests: XCTestCase {
    func testGatherMiddleAxisFollowsTorchSemantics() {
        let x = randomTensor([2, 3, 4], seed: 61, requiresGrad: false)
        let xs = x.scalars
        let idxValues = [2, 0, 1, 1,  0, 0, 2, 1,
                         1, 2, 2, 0,  2, 1, 0, 0]
        let idx = IndexTensor(idxValues, shape: [2, 2, 4])
        let y = x.gather(axis: 1, indices: idx)                      // out[i,j,k] = x[i, idx[i,j,k], k]
        XCTAssertEqual(y.shape, [2, 2, 4])
        var expected: [Float] = []
        for i in 0..<2 { for j in 0..<2 { for k in 0..<4 { expected.append(xs[(i * 3 + idxValues[(i * 2 + j) * 4 + k]) * 4 + k]) } } }
        XCTAssertEqual(y.scalars, expected)
    }

    func testGatherFirstAndNegativeAxis() {
        let x = Tensor.arange(12).reshaped(3, 4)                     // x[i, j] = 4i + j
        let rows = x.gather(axis: 0, indices: IndexTensor([2, 0, 1, 2], shape: [1, 4]))
        XCTAssertEqual(rows.scalars, [8, 1, 6, 11])
        let columns = x.gather(axis: -1, indices: IndexTensor([3, 3, 0, 1, 2, 0], shape: [3, 2]))
        XCTAssertEqual(columns.shape, [3, 2])
        XCTAssertEqual(columns.scalars, [3, 3, 4, 5, 10, 8])
    }

    /// The index tensor may be smaller than the input outside the axis, and
    /// longer than the input along it.
    func testGatherWithIndicesSmallerOutsideAndLongerAlongAxis() {
        let x = randomTensor([3, 5, 2], seed: 62, requiresGrad: false)
        let xs = x.scalars
        let idxValues = (0..<14).map { ($0 * 3) % 5 }
        let y = x.gather(axis: 1, indices: IndexTensor(idxValues, shape: [1, 7, 2]))
        var expected: [Float] = []
        for j in 0..<7 { for k in 0..<2 { expected.append(xs[idxValues[j * 2 + k] * 2 + k]) } }
        XCTAssertEqual(y.shape, [1, 7, 2])
        XCTAssertEqual(y.scalars, expected)
        XCTAssertEqual(x.gather(axis: 1, indices: IndexTensor([], shape: [3, 0, 2])).shape, [3, 0, 2])
    }

    func testGatherGradientAccumulatesDuplicates() {
        let x = Tensor.zeros([2, 3], requiresGrad: true)
        let idx = IndexTensor([1, 1, 1, 0,
                               2, 0, 2, 2], shape: [2, 4])
        x.gather(axis: 1, indices: idx).backward(Tensor([1, 2, 3, 4, 5, 6, 7, 8], shape: [2, 4]))
        XCTAssertEqual(x.grad?.scalars, [4, 6, 0,
                                         6, 0, 20])
    }

    func testGatherGradientCheckOnOddAxis() {
        let x = randomTensor([3, 1, 59], seed: 63)
        let idx = IndexTensor((0..<21).map { $0 % 4 == 0 ? 5 : ($0 * 17) % 59 }, shape: [3, 1, 7])   // 5 repeats
        assertGradients([x], "gather axis -1") { $0[0].gather(axis: -1, indices: idx) }
        let idx0 = IndexTensor((0..<118).map { ($0 / 3) % 3 }, shape: [2, 1, 59])
        assertGradients([x], "gather axis 0") { $0[0].gather(axis: 0, indices: idx0) }
    }

    func testScatterAddMatchesLoopsWithDuplicates() {
        let base = randomTensor([3, 4], seed: 64, requiresGrad: false)
        let source = randomTensor([3, 5], seed: 65, requiresGrad: false)
        let idxValues = [0, 0, 3, 0, 2,  1, 1, 1, 1, 1,  3, 2, 0, 3, 3]
        let y = base.scatterAdd(axis: 1, indices: IndexTensor(idxValues, shape: [3, 5]), source: source)
        var expected = base.scalars
        let ss = source.scalars
        for i in 0..<3 { for j in 0..<5 { expected[i * 4 + idxValues[i * 5 + j]] += ss[i * 5 + j] } }
        assertClose(y.scalars, expected)
        // Along axis 0, with an index tensor narrower than the input.
        let z = base.scatterAdd(axis: 0, indices: IndexTensor([2, 2, 0, 2], shape: [2, 2]), source: Tensor([1, 2, 3, 4], shape: [2, 2]))
        var expectedZ = base.scalars
        expectedZ[8] += 1; expectedZ[9] += 2; expectedZ[0] += 3; expectedZ[9] += 4
        assertClose(z.scalars, expectedZ)
    }

    func testScatterAddGradients() {
        let base = randomTensor([3, 1, 59], seed: 66)
        let source = randomTensor([3, 1, 11], seed: 67)
        let idx = IndexTensor((0..<33).map { $0 % 4 == 0 ? 7 : ($0 * 13) % 59 }, shape: [3, 1, 11])
        assertGradients([base, source], "scatterAdd") { $0[0].scatterAdd(axis: -1, indices: idx, source: $0[1]) }
        // ∂source[i] = g at the position it was added to.
        let s = Tensor([1, 2, 3], requiresGrad: true)
        Tensor.zeros([2]).scatterAdd(axis: 0, indices: IndexTensor([1, 0, 1]), source: s).backward(Tensor([10, 20]))
        XCTAssertEqual(s.grad?.scalars, [20, 10, 20])
    }

    /// Large enough for both parallel layouts: many rows (axis 1) and one wide row (axis 0).
    func testLargeGatherAndScatterAddMatchLoops() {
        let x = randomTensor([40, 30, 60], seed: 68, requiresGrad: false)
        let xs = x.scalars
        let idxValues = (0..<(40 * 30 * 60)).map { ($0 * 7919) % 30 }
        let idx = IndexTensor(idxValues, shape: [40, 30, 60])
        var gathered = [Float](repeating: 0, count: xs.count)
        var scattered = xs
        for i in 0..<40 { for j in 0..<30 { for k in 0..<60 {
            let p = (i * 30 + j) * 60 + k
            gathered[p] = xs[(i * 30 + idxValues[p]) * 60 + k]
            scattered[(i * 30 + idxValues[p]) * 60 + k] += xs[p]
        } } }
        XCTAssertEqual(x.gather(axis: 1, indices: idx).scalars, gathered)
        assertClose(x.scatterAdd(axis: 1, indices: idx, source: x).scalars, scattered)

        let wide = randomTensor([3, 40000], seed: 69, requiresGrad: false)
        let ws = wide.scalars
        let rowIdx = (0..<80000).map { $0 % 3 == 1 ? 2 : 0 }
        var expected = ws
        for p in 0..<80000 { expected[rowIdx[p] * 40000 + p % 40000] += ws[p] }
        let source = wide.sliced(axis: 0, range: 0..<2)
        assertClose(wide.scatterAdd(axis: 0, indices: IndexTensor(rowIdx, shape: [2, 40000]), source: source).scalars, expected)
    }

    func testIndexSelectPicksWholeSlicesInAnyOrder() {
        let x = randomTensor([2, 4, 3], seed: 70, requiresGrad: false)
        let xs = x.scalars
        let ids = [3, 0, 3, 1, 3]
        let y = x.indexSelect(axis: 1, indices: IndexTensor(ids))
        XCTAssertEqual(y.shape, [2, 5, 3])
        var expected: [Float] = []
        for i in 0..<2 { for j in ids { for k in 0..<3 { expected.append(xs[(i * 4 + j) * 3 + k]) } } }
        XCTAssertEqual(y.scalars, expected)
        let last = x.indexSelect(axis: -1, indices: IndexTensor([2, 2]))
        XCTAssertEqual(last.shape, [2, 4, 2])
        var expectedLast: [Float] = []
        for row in 0..<8 { expectedLast += [xs[row * 3 + 2], xs[row * 3 + 2]] }
        XCTAssertEqual(last.scalars, expectedLast)
        XCTAssertEqual(x.indexSelect(axis: 0, indices: IndexTensor([])).shape, [0, 4, 3])
    }

    func testIndexSelectGradientAccumulatesDuplicates() {
        let x = Tensor.zeros([3, 2], requiresGrad: true)
        x.indexSelect(axis: 0, indices: IndexTensor([2, 0, 2, 2])).backward(Tensor.arange(8).reshaped(4, 2))
        XCTAssertEqual(x.grad?.scalars, [2, 3, 0, 0, 0 + 4 + 6, 1 + 5 + 7])
        let w = randomTensor([3, 1, 59], seed: 71)
        assertGradients([w], "indexSelect axis -1") { $0[0].indexSelect(axis: -1, indices: IndexTensor([58, 0, 58, 7, 7, 7])) }
        assertGradients([w], "indexSelect axis 0") { $0[0].indexSelect(axis: 0, indices: IndexTensor([1, 1, 2])) }
    }

    func testIndexAddMatchesLoopsAndGradients() {
        let base = randomTensor([2, 3, 4], seed: 72, requiresGrad: false)
        let source = randomTensor([2, 5, 4], seed: 73, requiresGrad: false)
        let ids = [2, 0, 2, 2, 1]
        let y = base.indexAdd(axis: 1, indices: IndexTensor(ids), source: source)
        var expected = base.scalars
        let ss = source.scalars
        for i in 0..<2 { for (j, r) in ids.enumerated() { for k in 0..<4 { expected[(i * 3 + r) * 4 + k] += ss[(i * 5 + j) * 4 + k] } } }
        assertClose(y.scalars, expected)
        let b = randomTensor([3, 1, 59], seed: 74), s = randomTensor([3, 1, 4], seed: 75)
        assertGradients([b, s], "indexAdd") { $0[0].indexAdd(axis: 2, indices: IndexTensor([5, 58, 5, 0]), source: $0[1]) }
    }

    func testEmbeddingLooksUpRowsForIdsOfAnyShape() {
        let table = randomTensor([5, 3], seed: 76, requiresGrad: false)
        let ts = table.scalars
        let ids = IndexTensor([4, 0, 4, 2, 1, 1], shape: [2, 3])
        let y = table.embedding(ids)
        XCTAssertEqual(y.shape, [2, 3, 3])
        XCTAssertEqual(y.scalars, ids.values.flatMap { Array(ts[($0 * 3)..<($0 * 3 + 3)]) })
        let single = table.embedding(IndexTensor([3], shape: []))
        XCTAssertEqual(single.shape, [3])
        XCTAssertEqual(single.scalars, Array(ts[9..<12]))
    }

    func testEmbeddingGradientSumsRepeatedIds() {
        let table = randomTensor([4, 2], seed: 77)
        let ids = IndexTensor([1, 3, 1, 1], shape: [2, 2])
        table.embedding(ids).backward(Tensor.arange(8).reshaped(2, 2, 2))
        XCTAssertEqual(table.grad?.scalars, [0, 0, 0 + 4 + 6, 1 + 5 + 7, 0, 0, 2, 3])
        let t = randomTensor([7, 59], seed: 78)
        assertGradients([t], "embedding") { $0[0].embedding(IndexTensor([6, 0, 6], shape: [3, 1])) }
    }

    func testOneHotMatchesLoops() {
        let labels = IndexTensor([2, 0, 3, 3, 1, 0], shape: [2, 3])
        let y = labels.oneHot(numClasses: 4)
        XCTAssertEqual(y.shape, [2, 3, 4])
        var expected = [Float](repeating: 0, count: 24)
        for p in 0..<6 { for c in 0..<4 where c == labels.values[p] { expected[p * 4 + c] = 1 } }
        XCTAssertEqual(y.scalars, expected)
        XCTAssertFalse(y.requiresGrad)
        XCTAssertEqual(IndexTensor([1], shape: []).oneHot(numClasses: 3).scalars, [0, 1, 0])
        XCTAssertEqual(IndexTensor([], shape: [0]).oneHot(numClasses: 5).shape, [0, 5])
    }

    /// A one-hot matrix product and a gather pick the same values; their
    /// gradients must agree too.
    func testGatherAgreesWithOneHotContraction() {
        let logits = randomTensor([4, 6], seed: 79)
        let targets = [5, 0, 5, 2]
        let picked = logits.gather(axis: 1, indices: IndexTensor(targets, shape: [4, 1])).squeezed(axis: 1)
        let viaOneHot = (logits * IndexTensor(targets).oneHot(numClasses: 6)).sum(axis: 1)
        XCTAssertEqual(picked.scalars, viaOneHot.scalars)
        picked.sum().backward()
        let gatherGrad = logits.grad!.scalars
        logits.grad = nil
        viaOneHot.sum().backward()
        XCTAssertEqual(gatherGrad, logits.grad!.scalars)
    }
}
