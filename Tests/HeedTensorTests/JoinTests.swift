import XCTest
import HeedTestSupport
@testable import HeedTensor

final class JoinTests: XCTestCase {
    func testConcatenateMiddleAxisMatchesNestedLoops() {
        let a = randomTensor([2, 3, 4], seed: 31, requiresGrad: false)
        let b = randomTensor([2, 1, 4], seed: 32, requiresGrad: false)
        let c = randomTensor([2, 5, 4], seed: 33, requiresGrad: false)
        let y = Tensor.concatenate([a, b, c], axis: 1)
        XCTAssertEqual(y.shape, [2, 9, 4])
        let parts = [(a.scalars, 3), (b.scalars, 1), (c.scalars, 5)]
        var expected: [Float] = []
        for i in 0..<2 {
            for (values, size) in parts { for j in 0..<size { for k in 0..<4 { expected.append(values[(i * size + j) * 4 + k]) } } }
        }
        XCTAssertEqual(y.scalars, expected)
    }

    func testConcatenateLastAxisGivenAsNegative() {
        let a = Tensor.arange(6).reshaped(2, 3)
        let b = Tensor([10, 20], shape: [2, 1])
        let y = Tensor.concatenate([a, b], axis: -1)
        XCTAssertEqual(y.shape, [2, 4])
        XCTAssertEqual(y.scalars, [0, 1, 2, 10, 3, 4, 5, 20])
        XCTAssertEqual(Tensor.concatenate([b, a], axis: 1).scalars, [10, 0, 1, 2, 20, 3, 4, 5])
    }

    func testConcatenateFirstAxisAppendsBlocks() {
        let a = randomTensor([2, 59], seed: 34, requiresGrad: false)
        let b = randomTensor([1, 59], seed: 35, requiresGrad: false)
        let y = Tensor.concatenate([a, b], axis: 0)
        XCTAssertEqual(y.shape, [3, 59])
        XCTAssertEqual(y.scalars, a.scalars + b.scalars)
    }

    func testConcatenateWithZeroSizePart() {
        let empty = Tensor.zeros([2, 0, 3], requiresGrad: true)
        let b = randomTensor([2, 4, 3], seed: 36)
        let y = Tensor.concatenate([empty, b, empty], axis: 1)
        XCTAssertEqual(y.shape, [2, 4, 3])
        XCTAssertEqual(y.scalars, b.scalars)
        assertGradients([empty, b], "cat with empty") { Tensor.concatenate([$0[0], $0[1], $0[0]], axis: 1) }
        let z = Tensor.concatenate([empty, b], axis: 1)
        z.backward(Tensor.ones([2, 4, 3]))
        XCTAssertEqual(empty.grad?.shape, [2, 0, 3])
        XCTAssertEqual(b.grad?.scalars, [Float](repeating: 1, count: 24))
    }

    func testConcatenateGradientsOnAwkwardShapes() {
        let a = randomTensor([3, 1, 5], seed: 37), b = randomTensor([3, 2, 5], seed: 38)
        assertGradients([a, b], "axis 1") { Tensor.concatenate([$0[0], $0[1]], axis: 1) }
        let c = randomTensor([2, 59], seed: 39), d = randomTensor([2, 1], seed: 40)
        assertGradients([c, d], "axis -1") { Tensor.concatenate([$0[1], $0[0], $0[1]], axis: -1) }
    }

    func testConcatenatingATensorWithItselfAddsBothGradients() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let seed = Tensor([1, 10, 100, 1000, 10000, 100000])
        Tensor.concatenate([x, x], axis: 0).backward(seed)
        XCTAssertEqual(x.grad?.scalars, [1001, 10010, 100100])
    }

    func testConcatenateOnlyRecordsWhenAnInputNeedsGradients() {
        let a = randomTensor([2, 2], seed: 41, requiresGrad: false)
        let b = randomTensor([2, 2], seed: 42)
        XCTAssertFalse(Tensor.concatenate([a, a], axis: 0).requiresGrad)
        let y = Tensor.concatenate([a, b], axis: 0)
        y.backward(Tensor.arange(8).reshaped(4, 2))
        XCTAssertEqual(b.grad?.scalars, [4, 5, 6, 7])
        XCTAssertNil(a.grad)
    }

    /// 2 × 66 000 elements: each part's copy is split over the cores.
    func testLargeConcatenateMatchesLoops() {
        let a = randomTensor([60, 11, 100], seed: 43, requiresGrad: false)
        let b = randomTensor([60, 7, 100], seed: 44, requiresGrad: false)
        let y = Tensor.concatenate([a, b], axis: 1)
        let xa = a.scalars, xb = b.scalars
        var expected: [Float] = []
        for i in 0..<60 {
            expected += xa[(i * 1100)..<((i + 1) * 1100)]
            expected += xb[(i * 700)..<((i + 1) * 700)]
        }
        XCTAssertEqual(y.scalars, expected)
    }

    func testStackInsertsTheNewAxisWhereAsked() {
        let ts = (0..<3).map { k in Tensor((0..<6).map { Float(10 * k + $0) }, shape: [2, 3]) }
        let s0 = Tensor.stack(ts, axis: 0), s1 = Tensor.stack(ts, axis: 1), sLast = Tensor.stack(ts, axis: -1)
        XCTAssertEqual(s0.shape, [3, 2, 3])
        XCTAssertEqual(s1.shape, [2, 3, 3])
        XCTAssertEqual(sLast.shape, [2, 3, 3])
        var e0: [Float] = [], e1: [Float] = [], eLast: [Float] = []
        for k in 0..<3 { for i in 0..<2 { for j in 0..<3 { e0.append(Float(10 * k + i * 3 + j)) } } }
        for i in 0..<2 { for k in 0..<3 { for j in 0..<3 { e1.append(Float(10 * k + i * 3 + j)) } } }
        for i in 0..<2 { for j in 0..<3 { for k in 0..<3 { eLast.append(Float(10 * k + i * 3 + j)) } } }
        XCTAssertEqual(s0.scalars, e0)
        XCTAssertEqual(s1.scalars, e1)
        XCTAssertEqual(sLast.scalars, eLast)
    }

    func testStackOfScalarsAndOfOneTensor() {
        let s = Tensor.stack([Tensor(scalar: 1), Tensor(scalar: 2), Tensor(scalar: 3)])
        XCTAssertEqual(s.shape, [3])
        XCTAssertEqual(s.scalars, [1, 2, 3])
        let one = Tensor.stack([Tensor.arange(4)], axis: 1)
        XCTAssertEqual(one.shape, [4, 1])
    }

    func testStackGradient() {
        let a = randomTensor([3, 1, 5], seed: 45), b = randomTensor([3, 1, 5], seed: 46)
        assertGradients([a, b], "stack -1") { Tensor.stack([$0[0], $0[1], $0[0]], axis: -1) }
        assertGradients([a, b], "stack 1") { Tensor.stack([$0[1], $0[0]], axis: 1) }
    }

    func testSlicedRangeMatchesNestedLoops() {
        let x = randomTensor([4, 7, 3], seed: 47, requiresGrad: false)
        let xs = x.scalars
        let y = x.sliced(axis: 1, range: 2..<6)
        XCTAssertEqual(y.shape, [4, 4, 3])
        var expected: [Float] = []
        for i in 0..<4 { for j in 2..<6 { for k in 0..<3 { expected.append(xs[(i * 7 + j) * 3 + k]) } } }
        XCTAssertEqual(y.scalars, expected)
        XCTAssertEqual(x.sliced(axis: -3, start: 3).scalars, Array(xs[63...]))
    }

    func testSlicedWithStepMatchesNestedLoops() {
        let x = randomTensor([3, 59], seed: 48, requiresGrad: false)
        let xs = x.scalars
        let y = x.sliced(axis: -1, start: 1, end: 58, step: 4)       // 1, 5, …, 57: 15 positions
        XCTAssertEqual(y.shape, [3, 15])
        var expected: [Float] = []
        for i in 0..<3 { for j in stride(from: 1, to: 58, by: 4) { expected.append(xs[i * 59 + j]) } }
        XCTAssertEqual(y.scalars, expected)
        let z = x.sliced(axis: 0, start: 0, end: 3, step: 2)
        XCTAssertEqual(z.scalars, Array(xs[0..<59]) + Array(xs[118..<177]))
    }

    func testSliceBackwardPlacesGradientIntoZeros() {
        let x = randomTensor([2, 6], seed: 49)
        x.sliced(axis: 1, start: 1, end: 6, step: 2).backward(Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]))
        XCTAssertEqual(x.grad?.scalars, [0, 1, 0, 2, 0, 3,
                                         0, 4, 0, 5, 0, 6])
    }

    func testSliceGradientCheck() {
        let x = randomTensor([3, 1, 59], seed: 50)
        assertGradients([x], "step 4") { $0[0].sliced(axis: -1, start: 2, end: 59, step: 4) }
        assertGradients([x], "range") { $0[0].sliced(axis: 0, range: 1..<3) * $0[0].sliced(axis: 0, range: 0..<2) }
    }

    func testEmptySliceHasSizeZeroAndZeroGradient() {
        let x = randomTensor([3, 4], seed: 51)
        let y = x.sliced(axis: 1, start: 2, end: 2)
        XCTAssertEqual(y.shape, [3, 0])
        (Tensor.concatenate([y, x], axis: 1) * 3).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [Float](repeating: 3, count: 12))
        XCTAssertEqual(x.sliced(axis: 0, start: 3).shape, [0, 4])
    }

    func testSplitSizesGivesConsecutiveParts() {
        let x = Tensor.arange(20).reshaped(2, 10)
        let parts = x.split(sizes: [3, 0, 5, 2], axis: -1)
        XCTAssertEqual(parts.map(\.shape), [[2, 3], [2, 0], [2, 5], [2, 2]])
        XCTAssertEqual(parts[0].scalars, [0, 1, 2, 10, 11, 12])
        XCTAssertEqual(parts[2].scalars, [3, 4, 5, 6, 7, 13, 14, 15, 16, 17])
        XCTAssertEqual(parts[3].scalars, [8, 9, 18, 19])
        XCTAssertEqual(Tensor.concatenate(parts, axis: 1).scalars, x.scalars)
    }

    func testSplitCountEvenUnevenAndMoreThanSize() {
        let x = Tensor.arange(7)
        XCTAssertEqual(x.split(count: 3, axis: 0).map(\.scalars), [[0, 1, 2], [3, 4], [5, 6]])
        let y = Tensor.arange(12).reshaped(3, 4)
        XCTAssertEqual(y.split(count: 2, axis: 1).map(\.scalars), [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]])
        XCTAssertEqual(Tensor.arange(2).split(count: 4, axis: 0).map(\.shape), [[1], [1], [0], [0]])
    }

    /// One part used twice, one scaled, one unused: the input's gradient is the
    /// sum of what each used part sends back, and zero under the unused part.
    func testSplitPartsUsedUnequallyAccumulateIntoInput() {
        let x = randomTensor([2, 5], seed: 52)
        let parts = x.split(sizes: [2, 1, 2], axis: 1)
        let loss = (parts[0] * 3).sum() + (parts[0] * parts[0]).sum() + parts[2].sum()
        loss.backward()
        let xs = x.scalars
        var expected = [Float](repeating: 0, count: 10)
        for i in 0..<2 {
            for j in 0..<2 { expected[i * 5 + j] = 3 + 2 * xs[i * 5 + j] }
            for j in 3..<5 { expected[i * 5 + j] = 1 }
        }
        assertClose(x.grad!.scalars, expected)
        assertGradients([x], "split unequal use") { xs in
            let p = xs[0].split(sizes: [2, 1, 2], axis: 1)
            return p[0] * p[2] + p[0] * 0.5
        }
    }

    func testSplitGradientOnSizeOneAndOddAxes() {
        let x = randomTensor([3, 1, 59], seed: 53)
        assertGradients([x], "split count") { xs in
            let p = xs[0].split(count: 3, axis: -1)                  // 20, 20, 19
            return p[2] * p[1].sliced(axis: -1, range: 0..<19) + p[0].sliced(axis: 2, range: 1..<20)
        }
    }
}
