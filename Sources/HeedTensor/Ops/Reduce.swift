import CHeedKernels

// Reductions over any set of axes, with keepDims. One kernel walks a single
// axis as [outer, r, inner]; several axes are reduced one after another.

extension Tensor {
    /// Reduces one axis with a C kernel; the result keeps the axis with size 1.
    static func reduceAxis(_ x: Tensor, axis: Int, _ op: heed_reduce_op) -> Tensor {
        let outer = Shape.count(Array(x.shape[..<axis]))
        let r = x.shape[axis]
        let inner = Shape.count(Array(x.shape[(axis + 1)...]))
        var outShape = x.shape
        outShape[axis] = 1
        let px = x.storage.base
        return build(outShape) { out in
            let po = out.baseAddress!
            if r == 0 {
                let empty: Float = op == HEED_REDUCE_SUM ? 0 : (op == HEED_REDUCE_MAX ? -.infinity : .infinity)
                heed_fill_f32(po, empty, Int64(out.count))
            } else if inner == 1 {
                Parallel.forEachChunk(outer, minimumChunk: Swift.max(1, (1 << 15) / r)) { range in
                    for o in range { po[o] = heed_reduce_f32(op, px + o * r, Int64(r)) }
                }
            } else if outer >= Parallel.cores {
                Parallel.forEachChunk(outer, minimumChunk: Swift.max(1, (1 << 15) / (r * inner))) { range in
                    for o in range { accumulateRows(op, px + o * r * inner, po + o * inner, r, inner, 0..<inner) }
                }
            } else {
                for o in 0..<outer {
                    Parallel.forEachChunk(inner, minimumChunk: Swift.max(1, (1 << 15) / r)) { range in
                        accumulateRows(op, px + o * r * inner, po + o * inner, r, inner, range)
                    }
                }
            }
        }
    }

    /// out[c] = reduce over j of x[j, c] for the columns c in `columns`.
    private static func accumulateRows(_ op: heed_reduce_op, _ x: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                                       _ r: Int, _ inner: Int, _ columns: Range<Int>) {
        let c = columns.lowerBound, n = Int64(columns.count)
        (out + c).update(from: x + c, count: columns.count)
        for j in 1..<r { heed_accumulate_f32(op, out + c, x + j * inner + c, n) }
    }

    /// Reduces the given axes (all axes when nil) with an op, not recorded.
    static func reduce(_ x: Tensor, axes: [Int]?, keepDims: Bool, _ op: heed_reduce_op, _ name: String) -> Tensor {
        let axes = normalizedAxes(axes, rank: x.rank, name)
        var result = x
        for axis in axes.sorted(by: >) { result = reduceAxis(result, axis: axis, op) }
        if result === x { result = x.detached() }
        return keepDims ? result : result.reshapedUnrecorded(droppingAxes: axes)
    }

    static func normalizedAxes(_ axes: [Int]?, rank: Int, _ name: String) -> [Int] {
        let list = (axes ?? Array(0..<rank)).map { Shape.axis($0, rank: rank, op: name) }
        precondition(Set(list).count == list.count, "\(name): repeated axis in \(axes ?? [])")
        return list
    }

    private func reshapedUnrecorded(droppingAxes axes: [Int]) -> Tensor {
        let kept = shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        return Tensor(shape: kept, storage: storage)
    }

    /// The shape with the reduced axes kept as size 1 (to broadcast a gradient back).
    private func keptShape(_ axes: [Int]) -> [Int] {
        var kept = shape
        for axis in axes { kept[axis] = 1 }
        return kept
    }

    // MARK: Sum and mean

    /// Σ over `axes` (all when nil). ∂x = g broadcast back over the reduced axes.
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let input = self
        let axesList = Tensor.normalizedAxes(axes, rank: rank, "sum")
        let out = Tensor.reduce(input, axes: axesList, keepDims: keepDims, HEED_REDUCE_SUM, "sum")
        return Tensor.record(out, "sum", [input]) { g in
            [g.reshaped(input.keptShape(axesList)).expand(to: input.shape)]
        }
    }

    /// Σ over one axis.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Mean over `axes` (all when nil): the sum divided by the number of reduced elements.
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let axesList = Tensor.normalizedAxes(axes, rank: rank, "mean")
        let n = axesList.reduce(1) { $0 * shape[$1] }
        return sum(axes: axesList, keepDims: keepDims) * (1 / Float(n))
    }

    /// Mean over one axis.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    // MARK: Max and min

    /// Largest value over `axes` (all when nil). The gradient is shared evenly
    /// among tied maxima (like `torch.amax`). NaN propagates.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { extreme(axes, keepDims, HEED_REDUCE_MAX, "max") }
    /// Largest value over one axis.
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }
    /// Smallest value over `axes` (all when nil); ties share the gradient evenly.
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { extreme(axes, keepDims, HEED_REDUCE_MIN, "min") }
    /// Smallest value over one axis.
    public func min(axis: Int, keepDims: Bool = false) -> Tensor { min(axes: [axis], keepDims: keepDims) }

    private func extreme(_ axes: [Int]?, _ keepDims: Bool, _ op: heed_reduce_op, _ name: String) -> Tensor {
        let input = self
        let axesList = Tensor.normalizedAxes(axes, rank: rank, name)
        let out = Tensor.reduce(input, axes: axesList, keepDims: keepDims, op, name)
        return Tensor.record(out, name, [input]) { g in
            let kept = input.keptShape(axesList)
            let hits = input.equal(out.reshaped(kept))                          // 1 at every extreme
            let share = hits / Tensor.reduce(hits, axes: axesList, keepDims: true, HEED_REDUCE_SUM, name)
            return [g.reshaped(kept) * share]
        }
    }

    /// Index of the largest value along `axis` (the first one on ties), as in
    /// `torch.argmax`. The axis is removed unless `keepDims`.
    public func argmax(axis: Int, keepDims: Bool = false) -> IndexTensor { argExtreme(axis, keepDims, >, "argmax") }
    /// Index of the smallest value along `axis` (the first one on ties).
    public func argmin(axis: Int, keepDims: Bool = false) -> IndexTensor { argExtreme(axis, keepDims, <, "argmin") }

    private func argExtreme(_ axis: Int, _ keepDims: Bool, _ better: (Float, Float) -> Bool, _ name: String) -> IndexTensor {
        let a = Shape.axis(axis, rank: rank, op: name)
        precondition(shape[a] > 0, "\(name): axis \(axis) of \(shape) is empty")
        let outer = Shape.count(Array(shape[..<a])), r = shape[a], inner = Shape.count(Array(shape[(a + 1)...]))
        var values = [Int](repeating: 0, count: outer * inner)
        let p = storage.base
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0, bestValue = p[o * r * inner + i]
                for j in 1..<Swift.max(r, 1) {
                    let v = p[(o * r + j) * inner + i]
                    if bestValue.isNaN { break }
                    if v.isNaN || better(v, bestValue) { best = j; bestValue = v }
                }
                values[o * inner + i] = best
            }
        }
        var outShape = shape
        if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        return IndexTensor(values, shape: outShape)
    }

    // MARK: Log-sum-exp

    /// log Σ exp(x) over `axes`, computed stably as m + log Σ exp(x − m) with m
    /// the (detached) maximum. ∂x = g·softmax(x). A slice of all −inf gives −inf.
    public func logsumexp(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let axesList = Tensor.normalizedAxes(axes, rank: rank, "logsumexp")
        let m = Tensor.reduce(self, axes: axesList, keepDims: true, HEED_REDUCE_MAX, "logsumexp")
        let safeMax = Tensor.where(m.equal(Tensor(scalar: -.infinity)), Tensor(scalar: 0), m)
        let result = (self - safeMax).exp().sum(axes: axesList, keepDims: true).log() + safeMax
        return keepDims ? result : result.reshaped(result.shape.enumerated().filter { !axesList.contains($0.offset) }.map(\.element))
    }

    /// log Σ exp(x) over one axis.
    public func logsumexp(axis: Int, keepDims: Bool = false) -> Tensor { logsumexp(axes: [axis], keepDims: keepDims) }
}
