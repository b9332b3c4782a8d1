import CHeedKernels

/// The broadcasting engine under every binary elementwise op: merges
/// dimensions that are contiguous for all operands, then hands the innermost
/// contiguous (or broadcast) runs to a C kernel, split over the cores.
extension Tensor {
    /// `a OP b` with NumPy broadcasting, not recorded. `shape` widens the
    /// result beyond the operands' own broadcast (used by `expand`).
    static func broadcastBinary(_ a: Tensor, _ b: Tensor, _ op: heed_binary_op, _ name: String,
                                shape: [Int]? = nil) -> Tensor {
        guard let common = Shape.broadcast(a.shape, b.shape),
              let outShape = Shape.broadcast(common, shape ?? common), outShape == (shape ?? common) else {
            preconditionFailure("\(name): shapes \(a.shape) and \(b.shape) do not broadcast\(shape.map { " to \($0)" } ?? "")")
        }
        let out = TensorStorage(uninitializedCount: Shape.count(outShape))
        let plan = BroadcastPlan(outShape, Shape.broadcastStrides(a.shape, to: outShape),
                                 Shape.broadcastStrides(b.shape, to: outShape))
        let pa = a.storage.base, pb = b.storage.base, po = out.base
        plan.run { offsetOut, offsetA, offsetB, n in
            heed_binary_f32(op, pa + offsetA, plan.innerStrideA, pb + offsetB, plan.innerStrideB, po + offsetOut, Int64(n))
        }
        return Tensor(shape: outShape, storage: out)
    }

    /// `f(x)` elementwise for a unary kernel, not recorded.
    static func mapUnary(_ x: Tensor, _ op: heed_unary_op) -> Tensor {
        let out = TensorStorage(uninitializedCount: x.count)
        let px = x.storage.base, po = out.base
        Parallel.forEachChunk(x.count, minimumChunk: 1 << 15) { range in
            heed_unary_f32(op, px + range.lowerBound, po + range.lowerBound, Int64(range.count))
        }
        return Tensor(shape: x.shape, storage: out)
    }

    /// The tensor materialised at a broadcast-compatible larger shape
    /// (`torch.expand` followed by a copy). Recorded: the gradient sums back.
    public func expand(to target: [Int]) -> Tensor {
        if target == shape { return self }
        guard Shape.broadcast(shape, target) == target else {
            preconditionFailure("expand: shape \(shape) cannot be broadcast to \(target)")
        }
        // x · 1 copies every value exactly (−0, ±inf and NaN included).
        let result = Tensor.broadcastBinary(self, Tensor(scalar: 1), HEED_MUL, "expand", shape: target)
        let sourceShape = shape
        return Tensor.record(result, "expand", [self]) { gradient in
            [gradient.sum(toShape: sourceShape)]
        }
    }

    /// Sums a (broadcast) gradient back down to `target`, the shape of the
    /// operand that was broadcast. Recorded.
    public func sum(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        precondition(lead >= 0, "sum(toShape:): cannot reduce \(shape) to larger rank \(target)")
        var axes = Array(0..<lead)
        for (i, size) in target.enumerated() where size == 1 && shape[lead + i] != 1 {
            axes.append(lead + i)
        }
        let reduced = axes.isEmpty ? self : sum(axes: axes, keepDims: true)
        return reduced.reshaped(target)
    }
}

/// How to walk a broadcast: coalesced outer dimensions and an inner run whose
/// strides are 0 (broadcast) or 1 (contiguous) for each input.
struct BroadcastPlan {
    /// Outer dimensions after merging, with each operand's stride.
    var outerSizes: [Int] = []
    var outerStridesA: [Int] = []
    var outerStridesB: [Int] = []
    var innerCount = 1
    var innerStrideA: Int64 = 0
    var innerStrideB: Int64 = 0

    init(_ shape: [Int], _ stridesA: [Int], _ stridesB: [Int]) {
        // Merge neighbouring dimensions that are contiguous for both operands.
        var dims: [(size: Int, a: Int, b: Int)] = []
        for axis in shape.indices where shape[axis] != 1 {
            let size = shape[axis], a = stridesA[axis], b = stridesB[axis]
            if let last = dims.last, last.a == a * size, last.b == b * size {
                dims[dims.count - 1] = (last.size * size, a, b)
            } else {
                dims.append((size, a, b))
            }
        }
        guard let inner = dims.popLast() else { return }   // a single element
        precondition((inner.a == 0 || inner.a == 1) && (inner.b == 0 || inner.b == 1),
                     "BroadcastPlan: inner strides must be 0 or 1")
        innerCount = inner.size
        innerStrideA = Int64(inner.a)
        innerStrideB = Int64(inner.b)
        outerSizes = dims.map(\.size)
        outerStridesA = dims.map(\.a)
        outerStridesB = dims.map(\.b)
    }

    /// Calls `kernel(outOffset, aOffset, bOffset, n)` for every inner run,
    /// over the cores when the work is large.
    func run(_ kernel: (Int, Int, Int, Int) -> Void) {
        let rows = Shape.count(outerSizes)
        let minimumElements = 1 << 15
        if rows == 1 {
            Parallel.forEachChunk(innerCount, minimumChunk: minimumElements) { range in
                kernel(range.lowerBound, range.lowerBound * Int(innerStrideA),
                       range.lowerBound * Int(innerStrideB), range.count)
            }
            return
        }
        Parallel.forEachChunk(rows, minimumChunk: Swift.max(1, minimumElements / innerCount)) { range in
            for row in range {
                var rest = row, offsetA = 0, offsetB = 0
                for axis in stride(from: outerSizes.count - 1, through: 0, by: -1) {
                    let i = rest % outerSizes[axis]
                    rest /= outerSizes[axis]
                    offsetA += i * outerStridesA[axis]
                    offsetB += i * outerStridesB[axis]
                }
                kernel(row * innerCount, offsetA, offsetB, innerCount)
            }
        }
    }
}
