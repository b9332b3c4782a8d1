// Joining and cutting along one axis: concatenate, stack, slice, split.
// Every result is a fresh copy made by `StridedCopy` (Layout.swift). Slicing is
// the primitive of the cutting side; its backward places the gradient into
// zeros of the input's shape, so the parts of a split each add their share
// into the input's gradient and an unused part adds nothing.

extension Tensor {
    /// The tensors joined end to end along `axis` (`torch.cat`).
    ///
    /// ```
    /// out[…, o_k + j, …] = tensors[k][…, j, …]    o_k = Σ_{m<k} tensors[m].shape[axis]
    /// ∂tensors[k] = g.sliced(axis: axis, start: o_k, end: o_k + tensors[k].shape[axis])
    /// ```
    ///
    /// - Parameters:
    ///   - tensors: at least one tensor; all of one rank ≥ 1 and equal in every
    ///     axis but `axis`. Parts of size 0 along `axis` are allowed and add nothing.
    ///     (Unlike PyTorch, a 1-D empty tensor is not accepted beside tensors of
    ///     another rank.)
    ///   - axis: negative counts from the end.
    /// - Returns: the common shape with `shape[axis]` = the sum of the parts'.
    ///   A single tensor is returned as is.
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors to join")
        let first = tensors[0]
        precondition(first.rank >= 1, "concatenate: cannot join rank-0 tensors")
        let a = Shape.axis(axis, rank: first.rank, op: "concatenate")
        for tensor in tensors.dropFirst() {
            var expected = first.shape, actual = tensor.shape
            if actual.count == expected.count { expected[a] = 0; actual[a] = 0 }
            precondition(actual == expected,
                         "concatenate: shape \(tensor.shape) does not match \(first.shape) outside axis \(axis)")
        }
        if tensors.count == 1 { return first }

        var outShape = first.shape
        outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        let outStrides = Shape.strides(outShape)
        let starts = tensors.reduce(into: [0]) { $0.append($0.last! + $1.shape[a]) }
        let out = Tensor.build(outShape) { buffer in
            for (k, part) in tensors.enumerated() {
                let copy = StridedCopy(shape: part.shape, sourceStrides: Shape.strides(part.shape),
                                       destinationStrides: outStrides)
                copy.run(from: part.storage.base, to: buffer.baseAddress! + starts[k] * outStrides[a])
            }
        }
        return record(out, "concatenate", tensors) { gradient in
            tensors.indices.map { k in
                tensors[k].requiresGrad ? gradient.sliced(axis: a, start: starts[k], end: starts[k + 1]) : nil
            }
        }
    }

    /// The tensors stacked along a new axis (`torch.stack`): `n` tensors of shape
    /// `S` give shape `S` with `n` inserted at `axis`. ∂tensors[k] = the k-th
    /// slice of g along `axis`.
    /// - Parameters:
    ///   - tensors: at least one tensor, all of the same shape (rank 0 allowed).
    ///   - axis: in `-(rank + 1)...rank`; `-1` makes the new axis the last.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack: no tensors to stack")
        let shape = tensors[0].shape
        for tensor in tensors {
            precondition(tensor.shape == shape, "stack: shape \(tensor.shape) differs from \(shape)")
        }
        let a = Shape.axis(axis, rank: shape.count + 1, op: "stack")
        let expanded = tensors.map { $0.unsqueezed(axis: a) }
        if expanded.count == 1 { return expanded[0] }
        return concatenate(expanded, axis: a)
    }

    /// Every `step`-th position of `start..<end` along `axis`, as a copy
    /// (`x[..., start:end:step]` in Python, without clamping or negative bounds).
    ///
    /// ```
    /// out[…, j, …] = x[…, start + j·step, …]    j < ⌈(end − start) / step⌉
    /// ∂x = zeros(x.shape) with g placed at those positions
    /// ```
    ///
    /// - Parameters:
    ///   - axis: negative counts from the end.
    ///   - start, end: `0 ≤ start ≤ end ≤ shape[axis]`; `end` defaults to
    ///     `shape[axis]`. `start == end` gives a size-0 axis.
    ///   - step: ≥ 1.
    /// - Returns: the input shape with `shape[axis]` replaced by the number of
    ///   positions taken. Taking the whole axis with step 1 returns `self`.
    public func sliced(axis: Int, start: Int = 0, end: Int? = nil, step: Int = 1) -> Tensor {
        precondition(rank >= 1, "sliced: cannot slice a rank-0 tensor")
        let a = Shape.axis(axis, rank: rank, op: "sliced")
        let size = shape[a], end = end ?? size
        precondition(step >= 1, "sliced: step \(step) must be at least 1")
        precondition(0 <= start && start <= end && end <= size,
                     "sliced: range \(start)..<\(end) out of bounds for axis \(axis) of size \(size) in shape \(shape)")
        if start == 0 && end == size && step == 1 { return self }

        let input = self
        var outShape = shape
        outShape[a] = (end - start + step - 1) / step
        var sourceStrides = Shape.strides(shape)
        let offset = start * sourceStrides[a]
        sourceStrides[a] *= step
        let copy = StridedCopy(shape: outShape, sourceStrides: sourceStrides, destinationStrides: Shape.strides(outShape))
        let out = Tensor.build(outShape) { buffer in copy.run(from: input.storage.base + offset, to: buffer.baseAddress!) }
        return Tensor.record(out, "slice", [input]) { gradient in
            [gradient.placedInZeros(shape: input.shape, axis: a, start: start, step: step)]
        }
    }

    /// The positions `range` along `axis` (step 1): `x.sliced(axis: 1, range: 2..<5)`.
    public func sliced(axis: Int, range: Range<Int>) -> Tensor {
        sliced(axis: axis, start: range.lowerBound, end: range.upperBound)
    }

    /// The backward of `sliced`: a tensor of `shape` that is zero everywhere
    /// except at positions `start, start + step, …` along `axis`, which hold `self`.
    /// Recorded, with `sliced` as its own backward.
    func placedInZeros(shape target: [Int], axis a: Int, start: Int, step: Int) -> Tensor {
        let input = self
        var destinationStrides = Shape.strides(target)
        let offset = start * destinationStrides[a]
        destinationStrides[a] *= step
        let copy = StridedCopy(shape: shape, sourceStrides: Shape.strides(shape), destinationStrides: destinationStrides)
        let out = Tensor.build(target) { buffer in
            Tensor.copyOrZero(nil, to: buffer)
            copy.run(from: input.storage.base, to: buffer.baseAddress! + offset)
        }
        let end = start + (input.shape[a] - 1) * step + 1
        return Tensor.record(out, "placeInZeros", [input]) { gradient in
            [gradient.sliced(axis: a, start: start, end: Swift.max(start, end), step: step)]
        }
    }

    /// Consecutive parts along `axis` with the given sizes (`torch.split` with a
    /// list). Each part is its own recorded slice: gradients of the parts that are
    /// used add up in the input's gradient, and unused parts contribute nothing.
    ///
    /// - Parameters:
    ///   - sizes: non-negative, summing to `shape[axis]`; a size 0 gives an empty part.
    ///   - axis: negative counts from the end.
    /// - Returns: `sizes.count` tensors; part k has `shape[axis] = sizes[k]`.
    public func split(sizes: [Int], axis: Int) -> [Tensor] {
        precondition(rank >= 1, "split: cannot split a rank-0 tensor")
        let a = Shape.axis(axis, rank: rank, op: "split")
        precondition(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[a],
                     "split: sizes \(sizes) do not add up to \(shape[a]), axis \(axis) of shape \(shape)")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return sliced(axis: a, start: start, end: start + size)
        }
    }

    /// `count` consecutive parts along `axis` whose sizes differ by at most one,
    /// the larger ones first (`torch.tensor_split` / `numpy.array_split`).
    ///
    /// When `count` divides `shape[axis]` this is `torch.chunk`. Otherwise it
    /// differs from `torch.chunk`, which makes parts of ⌈size/count⌉ and may
    /// return fewer than `count` of them; here there are always exactly `count`
    /// parts, and some have size 0 when `count > shape[axis]`.
    /// - Precondition: `count ≥ 1`.
    public func split(count: Int, axis: Int) -> [Tensor] {
        precondition(count >= 1, "split: count \(count) must be at least 1")
        precondition(rank >= 1, "split: cannot split a rank-0 tensor")
        let size = shape[Shape.axis(axis, rank: rank, op: "split")]
        let (base, extra) = size.quotientAndRemainder(dividingBy: count)
        return split(sizes: (0..<count).map { base + ($0 < extra ? 1 : 0) }, axis: axis)
    }
}
