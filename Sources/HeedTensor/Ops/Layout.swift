// Axis layout: permute, transpose, squeeze, unsqueeze, flatten. Permute is the
// one op here that copies; the rest are reshapes and share storage. The copy
// kernel, `StridedCopy`, is shared with slicing and concatenation (Join.swift).

extension Tensor {
    /// The tensor with its axes reordered: result axis `i` is input axis `axes[i]`
    /// (`torch.permute`). Always a copy into fresh row-major storage, except that
    /// the identity permutation returns `self`.
    ///
    /// ```
    /// out[i₀, …, iₙ₋₁] = x[j]   where j[axes[k]] = i[k]
    /// ∂x = g.permuted(inverse(axes))
    /// ```
    ///
    /// - Parameter axes: a permutation of `0..<rank`; negative entries count
    ///   from the end (`-1` is the last axis).
    /// - Returns: shape `axes.map { shape[$0] }`.
    /// - Precondition: `axes` names every axis exactly once.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.count == rank, "permuted: \(axes.count) axes \(axes) for a tensor of shape \(shape)")
        let order = axes.map { Shape.axis($0, rank: rank, op: "permuted") }
        precondition(Set(order).count == rank, "permuted: \(axes) is not a permutation of the axes of \(shape)")
        if order == Array(0..<rank) { return self }

        let input = self
        let inputStrides = Shape.strides(shape)
        let outShape = order.map { shape[$0] }
        let copy = StridedCopy(shape: outShape, sourceStrides: order.map { inputStrides[$0] },
                               destinationStrides: Shape.strides(outShape))
        let out = Tensor.build(outShape) { buffer in copy.run(from: input.storage.base, to: buffer.baseAddress!) }

        var inverse = [Int](repeating: 0, count: rank)
        for (i, axis) in order.enumerated() { inverse[axis] = i }
        return Tensor.record(out, "permute", [input]) { gradient in [gradient.permuted(inverse)] }
    }

    /// Axes reordered with the permutation listed inline: `x.permuted(0, 2, 1, 3)`.
    public func permuted(_ axes: Int...) -> Tensor { permuted(axes) }

    /// The tensor with axes `a` and `b` swapped (`torch.transpose`); a copy.
    /// Negative axes count from the end. Swapping an axis with itself returns `self`.
    /// ∂x = g.transposed(a, b).
    public func transposed(_ a: Int, _ b: Int) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(Shape.axis(a, rank: rank, op: "transposed"), Shape.axis(b, rank: rank, op: "transposed"))
        return permuted(order)
    }

    /// The last two axes swapped (`x.mT`): `[…, M, N]` → `[…, N, M]`; a copy.
    /// - Precondition: rank ≥ 2.
    public func transposed() -> Tensor {
        precondition(rank >= 2, "transposed(): needs rank ≥ 2, got shape \(shape)")
        return transposed(-2, -1)
    }

    /// The tensor without the size-1 axis `axis` (a view; shares storage).
    /// Unlike `torch.squeeze(dim)`, naming an axis whose size is not 1 is an error
    /// rather than a silent no-op. ∂x = g reshaped back.
    public func squeezed(axis: Int) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "squeezed")
        precondition(rank > 0 && shape[a] == 1, "squeezed: axis \(axis) of shape \(shape) does not have size 1")
        var newShape = shape
        newShape.remove(at: a)
        return reshaped(newShape)
    }

    /// The tensor without any of its size-1 axes (a view). A tensor of shape
    /// `[1, 1]` becomes rank 0; a tensor without size-1 axes is returned as is.
    public func squeezed() -> Tensor { reshaped(shape.filter { $0 != 1 }) }

    /// The tensor with a new size-1 axis inserted so that it becomes axis `axis`
    /// of the result (a view; `torch.unsqueeze`).
    /// - Parameter axis: in `-(rank + 1)...rank`; `-1` appends a last axis.
    public func unsqueezed(axis: Int) -> Tensor {
        let a = Shape.axis(axis, rank: rank + 1, op: "unsqueezed")
        var newShape = shape
        newShape.insert(1, at: a)
        return reshaped(newShape)
    }

    /// Axes `from...to` merged into one (a view; `torch.flatten`). The defaults
    /// flatten everything to one dimension; a rank-0 tensor becomes shape `[1]`.
    /// Negative axes count from the end.
    ///
    /// Shapes: `[2, 3, 4, 5].flattened(from: 1, to: 2)` → `[2, 12, 5]`.
    /// - Precondition: `from ≤ to` after normalisation.
    public func flattened(from start: Int = 0, to end: Int = -1) -> Tensor {
        if rank == 0 { return reshaped([1]) }
        let first = Shape.axis(start, rank: rank, op: "flattened"), last = Shape.axis(end, rank: rank, op: "flattened")
        precondition(first <= last, "flattened: from axis \(start) comes after to axis \(end) in shape \(shape)")
        let merged = shape[first...last].reduce(1, *)
        return reshaped(Array(shape[..<first]) + [merged] + Array(shape[(last + 1)...]))
    }
}

/// Copies an n-dimensional block between two strided layouts:
///
/// ```
/// destination[Σ i_k·destinationStrides_k] = source[Σ i_k·sourceStrides_k]   for every i < shape
/// ```
///
/// Size-1 axes are dropped and neighbouring axes that are contiguous for both
/// sides are merged, so a permutation that keeps trailing axes together copies
/// long runs with `memmove`. When the innermost destination axis is contiguous
/// but the source is contiguous along another axis (a transpose), the copy
/// walks 32 × 32 tiles so that both sides stay in cache. Work is split over the
/// cores for large blocks; the destination positions must not overlap.
struct StridedCopy {
    /// Coalesced axes, outermost first, with both strides.
    private(set) var sizes: [Int] = []
    private(set) var sourceStrides: [Int] = []
    private(set) var destinationStrides: [Int] = []
    let count: Int

    /// Elements handled by one parallel chunk, at least.
    private static let minimumChunkElements = 1 << 15
    /// Side of the square tiles of the transposing copy.
    private static let tile = 32

    init(shape: [Int], sourceStrides source: [Int], destinationStrides destination: [Int]) {
        count = Shape.count(shape)
        for axis in shape.indices where shape[axis] != 1 {
            let n = shape[axis], s = source[axis], d = destination[axis]
            if let last = sizes.indices.last, sourceStrides[last] == s * n, destinationStrides[last] == d * n {
                sizes[last] *= n
                sourceStrides[last] = s
                destinationStrides[last] = d
            } else {
                sizes.append(n)
                sourceStrides.append(s)
                destinationStrides.append(d)
            }
        }
    }

    /// Performs the copy; `source` and `destination` point at element (0, …, 0).
    func run(from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        guard let inner = sizes.indices.last else {            // a single element
            destination[0] = source[0]
            return
        }
        let n = sizes[inner], s = sourceStrides[inner], d = destinationStrides[inner]
        let outer = Array(0..<inner)
        if s == 1 && d == 1 {
            if inner == 0 {                                     // one long run: split it
                Parallel.forEachChunk(n, minimumChunk: Self.minimumChunkElements) { range in
                    (destination + range.lowerBound).update(from: source + range.lowerBound, count: range.count)
                }
                return
            }
            forEachRow(outer, rowLength: n) { sourceOffset, destinationOffset in
                (destination + destinationOffset).update(from: source + sourceOffset, count: n)
            }
        } else if d == 1, let across = sourceStrides.firstIndex(of: 1) {
            copyTiles(from: source, to: destination, across: across)
        } else {
            forEachRow(outer, rowLength: n) { sourceOffset, destinationOffset in
                let from = source + sourceOffset, to = destination + destinationOffset
                for i in 0..<n { to[i * d] = from[i * s] }
            }
        }
    }

    /// Calls `body(sourceOffset, destinationOffset)` for every position of the
    /// axes `axes` in row-major order, in parallel chunks; each row stands for
    /// `rowLength` elements of work.
    private func forEachRow(_ axes: [Int], rowLength: Int, _ body: (Int, Int) -> Void) {
        let rowSizes = axes.map { sizes[$0] }
        let rowSource = axes.map { sourceStrides[$0] }, rowDestination = axes.map { destinationStrides[$0] }
        let rows = Shape.count(rowSizes)
        Parallel.forEachChunk(rows, minimumChunk: Swift.max(1, Self.minimumChunkElements / Swift.max(rowLength, 1))) { range in
            // Odometer: the multi-index of the current row and its two offsets.
            var index = [Int](repeating: 0, count: rowSizes.count)
            var sourceOffset = 0, destinationOffset = 0
            var rest = range.lowerBound
            for k in stride(from: rowSizes.count - 1, through: 0, by: -1) {
                index[k] = rest % rowSizes[k]
                rest /= rowSizes[k]
                sourceOffset += index[k] * rowSource[k]
                destinationOffset += index[k] * rowDestination[k]
            }
            for _ in range {
                body(sourceOffset, destinationOffset)
                var k = rowSizes.count - 1
                while k >= 0 {
                    index[k] += 1
                    sourceOffset += rowSource[k]
                    destinationOffset += rowDestination[k]
                    if index[k] < rowSizes[k] { break }
                    sourceOffset -= rowSizes[k] * rowSource[k]
                    destinationOffset -= rowSizes[k] * rowDestination[k]
                    index[k] = 0
                    k -= 1
                }
            }
        }
    }

    /// The transposing copy: axis `across` is contiguous in the source, the
    /// innermost axis is contiguous in the destination. Each work item is one
    /// band of `tile` positions along `across` for one position of the other axes.
    private func copyTiles(from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, across: Int) {
        let inner = sizes.count - 1
        let n = sizes[inner], sourceStride = sourceStrides[inner]        // destination stride 1
        let m = sizes[across], destinationStride = destinationStrides[across]   // source stride 1
        let others = (0..<inner).filter { $0 != across }
        let otherSizes = others.map { sizes[$0] }
        let otherSource = others.map { sourceStrides[$0] }, otherDestination = others.map { destinationStrides[$0] }
        let tile = Self.tile
        let bands = (m + tile - 1) / tile
        let items = Shape.count(otherSizes) * bands
        Parallel.forEachChunk(items, minimumChunk: Swift.max(1, Self.minimumChunkElements / (tile * n))) { range in
            for item in range {
                var (rest, band) = item.quotientAndRemainder(dividingBy: bands)
                var sourceOffset = 0, destinationOffset = 0
                for k in stride(from: otherSizes.count - 1, through: 0, by: -1) {
                    let i = rest % otherSizes[k]
                    rest /= otherSizes[k]
                    sourceOffset += i * otherSource[k]
                    destinationOffset += i * otherDestination[k]
                }
                let rowStart = band * tile, rowEnd = Swift.min(rowStart + tile, m)
                var columnStart = 0
                while columnStart < n {
                    let columnEnd = Swift.min(columnStart + tile, n)
                    for row in rowStart..<rowEnd {
                        let from = source + sourceOffset + row
                        let to = destination + destinationOffset + row * destinationStride
                        for column in columnStart..<columnEnd { to[column] = from[column * sourceStride] }
                    }
                    columnStart = columnEnd
                }
            }
        }
    }
}
