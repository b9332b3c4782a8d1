import CHeedKernels

extension Tensor {
    /// Softmax along `axis`: yᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m), m = maxⱼ xⱼ
    /// (stable for any input range).
    ///
    /// A slice whose entries are all −inf (nothing to attend to) gives zeros,
    /// never NaN, and passes zero gradient. ∂x = y ⊙ (g − Σ(g ⊙ y)).
    /// The last axis runs through a fused C kernel.
    public func softmax(axis: Int = -1) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "softmax")
        let input = self
        let out: Tensor
        if a == rank - 1 {
            let cols = shape.last ?? 1
            out = Tensor.rowKernel(input, cols) { heed_softmax_rows_f32($0, $1, $2, $3) }
        } else {
            let shifted = Tensor.withoutGrad { input - Tensor.safeMaximum(input, axis: a) }
            let e = Tensor.mapUnary(shifted, HEED_EXP)
            let total = Tensor.reduce(e, axes: [a], keepDims: true, HEED_REDUCE_SUM, "softmax")
            // An all −inf slice has total 0 and e = 0 there: divide by 1 instead.
            out = Tensor.withoutGrad { e / Tensor.where(total.equal(Tensor(scalar: 0)), Tensor(scalar: 1), total) }
        }
        return Tensor.record(out, "softmax", [input]) { g in
            [out * (g - (g * out).sum(axis: a, keepDims: true))]
        }
    }

    /// Log-softmax along `axis`: yᵢ = xᵢ − log Σⱼ exp(xⱼ), computed stably.
    /// An all −inf slice gives all −inf. ∂x = g − exp(y) ⊙ Σg.
    public func logSoftmax(axis: Int = -1) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "logSoftmax")
        let input = self
        let out: Tensor
        if a == rank - 1 {
            let cols = shape.last ?? 1
            out = Tensor.rowKernel(input, cols) { heed_log_softmax_rows_f32($0, $1, $2, $3) }
        } else {
            out = Tensor.withoutGrad { input - input.logsumexp(axis: a, keepDims: true) }
        }
        return Tensor.record(out, "logSoftmax", [input]) { g in
            [g - out.exp() * g.sum(axis: a, keepDims: true)]
        }
    }

    /// The maximum along `axis` (kept), with −inf replaced by 0 so that
    /// subtracting it never makes NaN.
    static func safeMaximum(_ x: Tensor, axis: Int) -> Tensor {
        let m = reduce(x, axes: [axis], keepDims: true, HEED_REDUCE_MAX, "max")
        return `where`(m.equal(Tensor(scalar: -.infinity)), Tensor(scalar: 0), m)
    }

    /// Runs a row kernel over [rows, cols], splitting rows over the cores.
    static func rowKernel(_ x: Tensor, _ cols: Int,
                          _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int64, Int64) -> Void) -> Tensor {
        let rows = cols == 0 ? 0 : x.count / cols
        let px = x.storage.base
        return build(x.shape) { out in
            let po = out.baseAddress!
            Parallel.forEachChunk(rows, minimumChunk: Swift.max(1, (1 << 14) / Swift.max(cols, 1))) { range in
                kernel(px + range.lowerBound * cols, po + range.lowerBound * cols, Int64(range.count), Int64(cols))
            }
        }
    }
}
