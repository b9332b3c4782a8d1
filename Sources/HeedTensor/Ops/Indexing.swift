import CHeedKernels

// Reading and writing at integer positions: gather / scatterAdd (elementwise
// indices, PyTorch's `gather` and `scatter_add`), indexSelect / indexAdd (whole
// slices, `index_select` and `index_add`), embedding lookup and one-hot. Each
// reading op's backward is the matching adding op, so duplicate indices
// accumulate their gradients. Out-of-range indices stop with a message naming
// the op, the index and the bound, as Swift's array bounds do.

extension Tensor {
    // MARK: gather and scatterAdd

    /// Values picked along `axis` at per-element positions (`torch.gather`).
    /// For a rank-3 input and `axis == 1`:
    ///
    /// ```
    /// out[i, j, k] = x[i, indices[i, j, k], k]
    /// ∂x = zeros(x.shape).scatterAdd(axis: 1, indices: indices, source: g)   (duplicates add up)
    /// ```
    ///
    /// - Parameters:
    ///   - axis: negative counts from the end.
    ///   - indices: the same rank as `self`, with `indices.shape[d] ≤ shape[d]`
    ///     for every `d ≠ axis` (any size along `axis`, 0 included); every value
    ///     in `0..<shape[axis]`.
    /// - Returns: shape `indices.shape`.
    public func gather(axis: Int, indices: IndexTensor) -> Tensor {
        let plan = AxisIndexPlan(shape, indices.shape, axis: axis, op: "gather")
        let input = self
        let out = Tensor.build(indices.shape) { buffer in
            let source = input.storage.base, po = buffer.baseAddress!
            indices.values.withUnsafeBufferPointer { idx in
                plan.innerOffsets.withUnsafeBufferPointer { innerOffsets in
                    plan.forEachRow(minimumChunk: Swift.max(1, (1 << 15) / Swift.max(plan.inner, 1))) { row, tensorOffset in
                        for i in 0..<plan.inner {
                            let position = row * plan.inner + i
                            let k = plan.checked(idx[position], at: position, op: "gather")
                            po[position] = source[tensorOffset + k * plan.axisStride + innerOffsets[i]]
                        }
                    }
                }
            }
        }
        let a = plan.axis
        return Tensor.record(out, "gather", [input]) { gradient in
            [Tensor.scatterAdd(into: nil, shape: input.shape, axis: a, indices: indices, source: gradient)]
        }
    }

    /// A copy of `self` with `source` added at per-element positions along `axis`
    /// (out-of-place `torch.scatter_add`). For a rank-3 input and `axis == 1`:
    ///
    /// ```
    /// out = x;  out[i, indices[i, j, k], k] += source[i, j, k]   for every (i, j, k)
    /// ∂x = g,   ∂source = g.gather(axis: 1, indices: indices)
    /// ```
    ///
    /// Duplicate indices accumulate, in index order (deterministic).
    /// - Parameters:
    ///   - indices: as for ``gather(axis:indices:)``.
    ///   - source: exactly the shape of `indices` (PyTorch also allows a larger
    ///     source and ignores the excess; Heed asks for the parts that are used).
    /// - Returns: shape `self.shape`.
    public func scatterAdd(axis: Int, indices: IndexTensor, source: Tensor) -> Tensor {
        Tensor.scatterAdd(into: self, shape: shape, axis: axis, indices: indices, source: source)
    }

    /// `scatterAdd` onto `base`, or onto zeros of `shape` when `base` is nil (the
    /// backward of `gather`, which then skips making and copying a zero tensor).
    private static func scatterAdd(into base: Tensor?, shape: [Int], axis: Int, indices: IndexTensor, source: Tensor) -> Tensor {
        precondition(source.shape == indices.shape,
                     "scatterAdd: source shape \(source.shape) differs from indices shape \(indices.shape)")
        let plan = AxisIndexPlan(shape, indices.shape, axis: axis, op: "scatterAdd")
        let out = Tensor.build(shape) { buffer in
            let po = buffer.baseAddress!, ps = source.storage.base
            copyOrZero(base, to: buffer)
            // Rows with different outer positions, and columns with different inner
            // positions, write disjoint elements: parallel over whichever is large.
            indices.values.withUnsafeBufferPointer { idx in
                plan.innerOffsets.withUnsafeBufferPointer { innerOffsets in
                    plan.forEachDisjointBlock { outerRange, innerRange in
                        for o in outerRange {
                            let tensorOffset = plan.outerOffsets[o]
                            for j in 0..<plan.count {
                                let row = o * plan.count + j
                                for i in innerRange {
                                    let position = row * plan.inner + i
                                    let k = plan.checked(idx[position], at: position, op: "scatterAdd")
                                    po[tensorOffset + k * plan.axisStride + innerOffsets[i]] += ps[position]
                                }
                            }
                        }
                    }
                }
            }
        }
        let a = plan.axis
        let dSource: (Tensor) -> Tensor? = { source.requiresGrad ? $0.gather(axis: a, indices: indices) : nil }
        guard let base else { return record(out, "scatterAdd", [source]) { gradient in [dSource(gradient)] } }
        return record(out, "scatterAdd", [base, source]) { gradient in [gradient, dSource(gradient)] }
    }

    // MARK: indexSelect and indexAdd

    /// Whole slices along `axis` picked by a list of positions (`torch.index_select`);
    /// positions may repeat and come in any order.
    ///
    /// ```
    /// out[…, j, …] = x[…, indices[j], …]
    /// ∂x = zeros(x.shape).indexAdd(axis: axis, indices: indices, source: g)   (duplicates add up)
    /// ```
    ///
    /// - Parameters:
    ///   - indices: rank 1, values in `0..<shape[axis]`; may be empty.
    ///   - axis: negative counts from the end.
    /// - Returns: `shape` with `shape[axis]` replaced by `indices.count`.
    public func indexSelect(axis: Int, indices: IndexTensor) -> Tensor {
        indexSelect(axis: axis, indices: indices, op: "indexSelect")
    }

    private func indexSelect(axis: Int, indices: IndexTensor, op: String) -> Tensor {
        let plan = SlicePlan(shape, indices, axis: axis, op: op)
        let input = self
        var outShape = shape
        outShape[plan.axis] = plan.count
        let out = Tensor.build(outShape) { buffer in
            let source = input.storage.base, po = buffer.baseAddress!
            let (count, size, inner) = (plan.count, plan.size, plan.inner)
            indices.values.withUnsafeBufferPointer { idx in
                Parallel.forEachChunk(plan.outer * count, minimumChunk: Swift.max(1, (1 << 15) / Swift.max(inner, 1))) { rows in
                    for row in rows {
                        let (o, j) = row.quotientAndRemainder(dividingBy: count)
                        (po + row * inner).update(from: source + (o * size + idx[j]) * inner, count: inner)
                    }
                }
            }
        }
        let a = plan.axis
        return Tensor.record(out, op, [input]) { gradient in
            [Tensor.indexAdd(into: nil, shape: input.shape, axis: a, indices: indices, source: gradient)]
        }
    }

    /// A copy of `self` with the slices of `source` added at the positions
    /// `indices` along `axis` (out-of-place `torch.index_add`).
    ///
    /// ```
    /// out = x;  out[…, indices[j], …] += source[…, j, …]
    /// ∂x = g,   ∂source = g.indexSelect(axis: axis, indices: indices)
    /// ```
    ///
    /// Duplicate positions accumulate in index order (deterministic).
    /// - Parameters:
    ///   - indices: rank 1, values in `0..<shape[axis]`.
    ///   - source: `shape` with `shape[axis]` replaced by `indices.count`.
    public func indexAdd(axis: Int, indices: IndexTensor, source: Tensor) -> Tensor {
        Tensor.indexAdd(into: self, shape: shape, axis: axis, indices: indices, source: source)
    }

    /// `indexAdd` onto `base`, or onto zeros of `shape` when `base` is nil (the
    /// backward of `indexSelect` and `embedding`).
    private static func indexAdd(into base: Tensor?, shape: [Int], axis: Int, indices: IndexTensor, source: Tensor) -> Tensor {
        let plan = SlicePlan(shape, indices, axis: axis, op: "indexAdd")
        var expected = shape
        expected[plan.axis] = plan.count
        precondition(source.shape == expected,
                     "indexAdd: source shape \(source.shape) should be \(expected) for input \(shape) and \(plan.count) indices")
        let out = Tensor.build(shape) { buffer in
            let po = buffer.baseAddress!, ps = source.storage.base
            copyOrZero(base, to: buffer)
            let (outer, count, size, inner) = (plan.outer, plan.count, plan.size, plan.inner)
            indices.values.withUnsafeBufferPointer { idx in
                func add(_ o: Int, _ columns: Range<Int>) {
                    let c = columns.lowerBound
                    for j in 0..<count {
                        heed_accumulate_f32(HEED_REDUCE_SUM, po + (o * size + idx[j]) * inner + c,
                                            ps + (o * count + j) * inner + c, Int64(columns.count))
                    }
                }
                // Different outer positions, and different columns, never collide.
                if outer >= Parallel.cores {
                    Parallel.forEachChunk(outer, minimumChunk: Swift.max(1, (1 << 15) / Swift.max(count * inner, 1))) { range in
                        for o in range { add(o, 0..<inner) }
                    }
                } else {
                    for o in 0..<outer {
                        Parallel.forEachChunk(inner, minimumChunk: Swift.max(1, (1 << 15) / Swift.max(count, 1))) { add(o, $0) }
                    }
                }
            }
        }
        let a = plan.axis
        let dSource: (Tensor) -> Tensor? = { source.requiresGrad ? $0.indexSelect(axis: a, indices: indices) : nil }
        guard let base else { return record(out, "indexAdd", [source]) { gradient in [dSource(gradient)] } }
        return record(out, "indexAdd", [base, source]) { gradient in [gradient, dSource(gradient)] }
    }

    /// Fills `buffer` with the values of `base`, or with zeros when `base` is nil; over the cores.
    static func copyOrZero(_ base: Tensor?, to buffer: UnsafeMutableBufferPointer<Float>) {
        let po = buffer.baseAddress!
        Parallel.forEachChunk(buffer.count, minimumChunk: 1 << 16) { range in
            if let base {
                (po + range.lowerBound).initialize(from: base.storage.base + range.lowerBound, count: range.count)
            } else {
                heed_fill_f32(po + range.lowerBound, 0, Int64(range.count))
            }
        }
    }

    /// Rows of an embedding table looked up by id (`torch.nn.functional.embedding`).
    ///
    /// ```
    /// out[p…, d] = table[ids[p…], d]
    /// ∂table = zeros([V, D]) with g[p…, :] added to row ids[p…]   (repeated ids add up)
    /// ```
    ///
    /// - Parameter ids: any shape (rank 0 included), values in `0..<V`.
    /// - Returns: shape `ids.shape + [D]` for a table (`self`) of shape `[V, D]`.
    public func embedding(_ ids: IndexTensor) -> Tensor {
        precondition(rank == 2, "embedding: the table must have shape [V, D], got \(shape)")
        let rows = indexSelect(axis: 0, indices: IndexTensor(ids.values), op: "embedding")   // [N, D]
        return rows.reshaped(ids.shape + [shape[1]])                                          // [ids…, D]
    }
}

extension IndexTensor {
    /// One-hot encoding as floats (`torch.nn.functional.one_hot`, then `.float()`):
    /// 1 at `[p…, self[p…]]`, 0 elsewhere. No gradient.
    /// - Parameter numClasses: ≥ 0; every value must lie in `0..<numClasses`.
    /// - Returns: shape `shape + [numClasses]`.
    public func oneHot(numClasses: Int) -> Tensor {
        precondition(numClasses >= 0, "oneHot: numClasses \(numClasses) is negative")
        return Tensor.build(shape + [numClasses]) { buffer in
            buffer.initialize(repeating: 0)
            for (position, value) in values.enumerated() {
                precondition(value >= 0 && value < numClasses,
                             "oneHot: index \(value) out of range for \(numClasses) classes (at position \(position))")
                buffer[position * numClasses + value] = 1
            }
        }
    }
}

/// How `gather` and `scatterAdd` walk a tensor with an index tensor of the same
/// rank: the index shape splits as `[outer…, count, inner…]` around the axis;
/// `outerOffsets` and `innerOffsets` are the tensor offsets of those positions
/// (the index tensor may be smaller than the tensor outside the axis).
private struct AxisIndexPlan {
    let axis: Int
    let axisSize: Int, axisStride: Int
    let count: Int, inner: Int
    let outerOffsets: [Int], innerOffsets: [Int]

    init(_ shape: [Int], _ indexShape: [Int], axis: Int, op: String) {
        precondition(!shape.isEmpty, "\(op): needs a tensor of rank ≥ 1")
        let a = Shape.axis(axis, rank: shape.count, op: op)
        precondition(indexShape.count == shape.count,
                     "\(op): indices of shape \(indexShape) need the rank of the tensor's shape \(shape)")
        for d in shape.indices where d != a {
            precondition(indexShape[d] <= shape[d],
                         "\(op): indices shape \(indexShape) exceeds tensor shape \(shape) at axis \(d)")
        }
        let strides = Shape.strides(shape)
        self.axis = a
        axisSize = shape[a]
        axisStride = strides[a]
        count = indexShape[a]
        inner = Shape.count(Array(indexShape[(a + 1)...]))
        outerOffsets = Self.offsets(Array(indexShape[..<a]), Array(strides[..<a]))
        innerOffsets = Self.offsets(Array(indexShape[(a + 1)...]), Array(strides[(a + 1)...]))
    }

    /// Offsets of every position of `sizes` in row-major order.
    private static func offsets(_ sizes: [Int], _ strides: [Int]) -> [Int] {
        zip(sizes, strides).reduce([0]) { bases, axis in
            bases.flatMap { base in (0..<axis.0).map { base + $0 * axis.1 } }
        }
    }

    /// The index value, stopped with a message when out of range.
    @inline(__always) func checked(_ k: Int, at position: Int, op: String) -> Int {
        precondition(k >= 0 && k < axisSize,
                     "\(op): index \(k) out of range for axis \(axis) of size \(axisSize) (at position \(position) of the indices)")
        return k
    }

    /// `body(row, tensorOffset)` for every row `(outer, j)` of the index tensor, in parallel chunks.
    func forEachRow(minimumChunk: Int, _ body: (Int, Int) -> Void) {
        Parallel.forEachChunk(outerOffsets.count * count, minimumChunk: minimumChunk) { rows in
            for row in rows { body(row, outerOffsets[row / count]) }
        }
    }

    /// `body(outerRange, innerRange)` over blocks that write disjoint tensor elements.
    func forEachDisjointBlock(_ body: (Range<Int>, Range<Int>) -> Void) {
        let outer = outerOffsets.count, work = Swift.max(count * inner, 1)
        if outer >= Parallel.cores {
            Parallel.forEachChunk(outer, minimumChunk: Swift.max(1, (1 << 15) / work)) { body($0, 0..<inner) }
        } else {
            for o in 0..<outer {
                Parallel.forEachChunk(inner, minimumChunk: Swift.max(1, (1 << 15) / Swift.max(count, 1))) { body(o..<(o + 1), $0) }
            }
        }
    }
}

/// How `indexSelect` and `indexAdd` see a tensor: `[outer, size, inner]` around
/// the axis, with `count` validated positions.
private struct SlicePlan {
    let axis: Int
    let outer: Int, size: Int, inner: Int, count: Int

    init(_ shape: [Int], _ indices: IndexTensor, axis: Int, op: String) {
        precondition(!shape.isEmpty, "\(op): needs a tensor of rank ≥ 1")
        precondition(indices.rank == 1, "\(op): indices must have rank 1, got shape \(indices.shape)")
        let a = Shape.axis(axis, rank: shape.count, op: op)
        self.axis = a
        outer = Shape.count(Array(shape[..<a]))
        size = shape[a]
        inner = Shape.count(Array(shape[(a + 1)...]))
        count = indices.count
        for (position, k) in indices.values.enumerated() {
            precondition(k >= 0 && k < size,
                         "\(op): index \(k) out of range for axis \(a) of size \(size) (at position \(position) of the indices)")
        }
    }
}
