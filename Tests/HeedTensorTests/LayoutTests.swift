import XCTest
import HeedTestSupport
@testable import HeedTensor

/// Reference permute on a flat array: for every output position, rebuild the
/// input multi-index and read it. Independent of `StridedCopy`.
private func referencePermute(_ x: [Float], _ shape: [Int], _ axes: [Int]) -> [Float] {
    let outShape = axes.map { shape[$0] }
    var out: [Float] = []
    for flat in 0..<x.count {
        var rest = flat
        var outIndex = [Int](repeating: 0, count: shape.count)
        for k in stride(from: shape.count - 1, through: 0, by: -1) {
            outIndex[k] = rest % outShape[k]
            rest /= outShape[k]
        }
        var inIndex = [Int](repeating: 0, count: shape.count)
        for k in 0..<shape.count { inIndex[axes[k]] = outIndex[k] }
        var offset = 0
        for k in 0..<shape.count { offset = offset * shape[k] + inIndex[k] }
        out.append(x[offset])
    }
    return out
}

/// All orderings of `0..<n`.
private func permutations(_ n: Int) -> [[Int]] {
    if n == 0 { return [[]] }
    return permutations(n - 1).flatMap { p in (0...p.count).map { i in var q = p; q.insert(n - 1, at: i); return q } }
}

final class LayoutTests: XCTestCase {
    func testPermuteRank3MatchesNestedLoops() {
        let x = Tensor.arange(24).reshaped(2, 3, 4)
        let xs = x.scalars
        let y = x.permuted(2, 0, 1)                                  // [4, 2, 3]
        XCTAssertEqual(y.shape, [4, 2, 3])
        var expected: [Float] = []
        for k in 0..<4 { for i in 0..<2 { for j in 0..<3 { expected.append(xs[(i * 3 + j) * 4 + k]) } } }
        XCTAssertEqual(y.scalars, expected)
    }

    func testEveryPermutationOfRank4WithSizeOneAxisMatchesReference() {
        let shape = [2, 3, 1, 5]
        let x = randomTensor(shape, seed: 11, requiresGrad: false)
        for axes in permutations(4) {
            let y = x.permuted(axes)
            XCTAssertEqual(y.shape, axes.map { shape[$0] }, "\(axes)")
            XCTAssertEqual(y.scalars, referencePermute(x.scalars, shape, axes), "\(axes)")
        }
    }

    func testPermuteAcceptsNegativeAxes() {
        let x = randomTensor([3, 4, 5], seed: 12, requiresGrad: false)
        XCTAssertEqual(x.permuted(-1, 0, -2).scalars, referencePermute(x.scalars, [3, 4, 5], [2, 0, 1]))
        XCTAssertEqual(x.permuted(-1, 0, -2).shape, [5, 3, 4])
    }

    func testIdentityPermutationKeepsValuesAndRankZeroWorks() {
        let x = randomTensor([2, 3], seed: 13, requiresGrad: false)
        XCTAssertEqual(x.permuted(0, 1).scalars, x.scalars)
        XCTAssertEqual(x.permuted(0, 1).shape, [2, 3])
        let s = Tensor(scalar: 4)
        XCTAssertEqual(s.permuted([]).scalars, [4])
    }

    func testPermuteOfZeroSizeTensorHasPermutedShape() {
        let x = Tensor.zeros([2, 0, 3])
        let y = x.permuted(2, 0, 1)
        XCTAssertEqual(y.shape, [3, 2, 0])
        XCTAssertEqual(y.count, 0)
    }

    func testPermuteGradientOnAwkwardShape() {
        let x = randomTensor([3, 1, 59], seed: 14)
        assertGradients([x], "permute 2,0,1") { $0[0].permuted(2, 0, 1) }
        assertGradients([x], "permute -1,-2,0") { $0[0].permuted(-1, -2, 0) * $0[0].permuted(2, 1, 0) }
    }

    func testPermuteBackwardIsTheInversePermutation() {
        let x = randomTensor([2, 3, 4], seed: 15)
        let seed = Tensor.arange(24).reshaped(4, 2, 3)
        x.permuted(2, 0, 1).backward(seed)                       // y[k, i, j] = x[i, j, k]
        var expected = [Float](repeating: 0, count: 24)
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { expected[(i * 3 + j) * 4 + k] = Float((k * 2 + i) * 3 + j) } } }
        XCTAssertEqual(x.grad?.scalars, expected)
    }

    func testTransposeTwoAxesWithNegativeAxis() {
        let x = Tensor.arange(24).reshaped(2, 3, 4)
        let xs = x.scalars
        let y = x.transposed(0, -1)                                  // [4, 3, 2]
        XCTAssertEqual(y.shape, [4, 3, 2])
        var expected: [Float] = []
        for k in 0..<4 { for j in 0..<3 { for i in 0..<2 { expected.append(xs[(i * 3 + j) * 4 + k]) } } }
        XCTAssertEqual(y.scalars, expected)
        XCTAssertEqual(x.transposed(1, 1).scalars, xs)
    }

    func testTransposedSwapsLastTwoAxesLikeMT() {
        let x = randomTensor([2, 5, 7], seed: 16, requiresGrad: false)
        let xs = x.scalars
        let y = x.transposed()
        XCTAssertEqual(y.shape, [2, 7, 5])
        var expected: [Float] = []
        for b in 0..<2 { for n in 0..<7 { for m in 0..<5 { expected.append(xs[(b * 5 + m) * 7 + n]) } } }
        XCTAssertEqual(y.scalars, expected)
        XCTAssertEqual(y.transposed().scalars, xs)
    }

    func testTransposeGradient() {
        let x = randomTensor([2, 59], seed: 17)
        let w = randomTensor([59, 2], seed: 18, requiresGrad: false)
        assertGradients([x], "mT") { $0[0].transposed() * w }
        let y = randomTensor([3, 1, 5], seed: 19)
        assertGradients([y], "transpose 0,-1") { $0[0].transposed(0, -1) }
    }

    /// Sizes that are not multiples of the 32-wide tiles, and enough elements
    /// (63 050) for the copy to be split over the cores.
    func testLargeTransposeUsesTilesAndMatchesLoops() {
        let x = randomTensor([5, 130, 97], seed: 20, requiresGrad: false)
        let xs = x.scalars
        let y = x.transposed()
        var expected = [Float](repeating: 0, count: xs.count)
        for b in 0..<5 { for m in 0..<130 { for n in 0..<97 { expected[(b * 97 + n) * 130 + m] = xs[(b * 130 + m) * 97 + n] } } }
        XCTAssertEqual(y.shape, [5, 97, 130])
        XCTAssertEqual(y.scalars, expected)
        let z = x.permuted(2, 0, 1)
        XCTAssertEqual(z.scalars, referencePermute(xs, [5, 130, 97], [2, 0, 1]))
    }

    /// Innermost axis kept in place: the copy moves contiguous runs, split over the cores.
    func testLargePermuteKeepingLastAxisMatchesLoops() {
        let x = randomTensor([40, 33, 50], seed: 21, requiresGrad: false)
        let xs = x.scalars
        let y = x.permuted(1, 0, 2)
        var expected: [Float] = []
        for j in 0..<33 { for i in 0..<40 { for k in 0..<50 { expected.append(xs[(i * 33 + j) * 50 + k]) } } }
        XCTAssertEqual(y.scalars, expected)
        // Runs of length 1 after a size-1 last axis: many short rows.
        let w = randomTensor([200, 170, 1], seed: 22, requiresGrad: false)
        XCTAssertEqual(w.permuted(1, 0, 2).scalars, referencePermute(w.scalars, [200, 170, 1], [1, 0, 2]))
    }

    func testSqueezeAndUnsqueezeShapesAndValues() {
        let x = randomTensor([3, 1, 4, 1], seed: 23, requiresGrad: false)
        XCTAssertEqual(x.squeezed(axis: 1).shape, [3, 4, 1])
        XCTAssertEqual(x.squeezed(axis: -1).shape, [3, 1, 4])
        XCTAssertEqual(x.squeezed().shape, [3, 4])
        XCTAssertEqual(x.squeezed().scalars, x.scalars)
        XCTAssertEqual(x.unsqueezed(axis: 0).shape, [1, 3, 1, 4, 1])
        XCTAssertEqual(x.unsqueezed(axis: 4).shape, [3, 1, 4, 1, 1])
        XCTAssertEqual(x.unsqueezed(axis: -1).shape, [3, 1, 4, 1, 1])
        XCTAssertEqual(x.unsqueezed(axis: -2).shape, [3, 1, 4, 1, 1])
        XCTAssertEqual(x.unsqueezed(axis: 2).shape, [3, 1, 1, 4, 1])
        XCTAssertEqual(x.unsqueezed(axis: 2).scalars, x.scalars)
        XCTAssertEqual(Tensor([5], shape: [1, 1]).squeezed().shape, [])
        XCTAssertEqual(Tensor(scalar: 2).unsqueezed(axis: 0).shape, [1])
    }

    func testFlattenedMergesTheNamedAxes() {
        let x = randomTensor([2, 3, 4, 5], seed: 24, requiresGrad: false)
        XCTAssertEqual(x.flattened(from: 1, to: 2).shape, [2, 12, 5])
        XCTAssertEqual(x.flattened().shape, [120])
        XCTAssertEqual(x.flattened(from: -2).shape, [2, 3, 20])
        XCTAssertEqual(x.flattened(from: 1, to: 1).shape, [2, 3, 4, 5])
        XCTAssertEqual(x.flattened(from: 1, to: 2).scalars, x.scalars)
        XCTAssertEqual(Tensor(scalar: 7).flattened().shape, [1])
    }

    func testViewOpsPassGradientsThrough() {
        let x = randomTensor([3, 1, 59], seed: 25)
        let w = randomTensor([3, 59, 1], seed: 26, requiresGrad: false)
        assertGradients([x], "squeeze/unsqueeze") { $0[0].squeezed(axis: 1).unsqueezed(axis: -1) * w }
        assertGradients([x], "flatten") { ($0[0].flattened(from: 1) * $0[0].flattened(from: 1)).flattened() }
        // The gradient returns in the input's shape.
        x.grad = nil
        (x.squeezed() * 2).sum().backward()
        XCTAssertEqual(x.grad?.shape, [3, 1, 59])
        XCTAssertEqual(x.grad?.scalars, [Float](repeating: 2, count: 177))
    }

    func testStridedCopyCoalescesContiguousAxes() {
        // [2, 3, 4, 5] permuted (2, 3, 0, 1) is a 2-D transpose of [6, 20].
        let copy = StridedCopy(shape: [4, 5, 2, 3], sourceStrides: [5, 1, 60, 20], destinationStrides: [30, 6, 3, 1])
        XCTAssertEqual(copy.sizes, [20, 6])
        XCTAssertEqual(copy.sourceStrides, [1, 20])
        XCTAssertEqual(copy.destinationStrides, [6, 1])
        // Size-1 axes disappear; a plain copy becomes one run.
        let flat = StridedCopy(shape: [3, 1, 4], sourceStrides: [4, 4, 1], destinationStrides: [4, 4, 1])
        XCTAssertEqual(flat.sizes, [12])
    }
}
