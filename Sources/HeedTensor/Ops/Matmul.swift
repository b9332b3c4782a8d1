import CBLAS

extension Tensor {
    /// Matrix product with `torch.matmul` semantics: [.., M, K] @ [.., K, N] →
    /// [.., M, N] with the batch dimensions broadcast; a 1-D left operand is a
    /// row vector and a 1-D right operand a column vector (that dimension is
    /// dropped from the result). Runs through `cblas_sgemm`.
    ///
    /// ∂A = g·Bᵀ and ∂B = Aᵀ·g (summed over broadcast batch dimensions),
    /// both through sgemm's transpose flags, without copies.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(rank >= 1 && other.rank >= 1, "matmul: scalar operand (shapes \(shape), \(other.shape))")
        let a = rank == 1 ? reshaped([1, shape[0]]) : self
        let b = other.rank == 1 ? other.reshaped([other.shape[0], 1]) : other
        var result = Tensor.batchedMatmul(a, b)
        if rank == 1 { result = result.reshaped(Array(result.shape.dropLast(2)) + [result.shape.last!]) }
        if other.rank == 1 { result = result.reshaped(Array(result.shape.dropLast())) }
        return result
    }

    /// The recorded ≥2-D batched product.
    static func batchedMatmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        matmul(a, b, transposeA: false, transposeB: false)
    }

    /// op(A) @ op(B) for ≥2-D operands with broadcast batch dimensions, where
    /// op transposes the last two axes when asked — without copying: with
    /// `transposeA`, `a` holds [.., K, M]; with `transposeB`, `b` holds [.., N, K].
    /// `Tensor.matmul(q, k, transposeB: true)` is Q·Kᵀ for K stored [.., Tk, D].
    ///
    /// Backward (g = ∂C), each again one sgemm with flags:
    /// ```
    /// C = A B     dA = g Bᵀ      dB = Aᵀ g
    /// C = A Bᵀ    dA = g B       dB = gᵀ A
    /// C = Aᵀ B    dA = B gᵀ      dB = A g
    /// C = Aᵀ Bᵀ   dA = Bᵀ gᵀ     dB = gᵀ Aᵀ
    /// ```
    /// summed over broadcast batch dimensions.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        let out = gemm(a, transposeA: transposeA, b, transposeB: transposeB)
        return record(out, "matmul", [a, b]) { g in
            var dA: Tensor?, dB: Tensor?
            if a.requiresGrad {
                dA = transposeA ? gemm(b, transposeA: transposeB, g, transposeB: true)
                                : gemm(g, transposeA: false, b, transposeB: !transposeB)
            }
            if b.requiresGrad {
                dB = transposeB ? gemm(g, transposeA: true, a, transposeB: transposeA)
                                : gemm(a, transposeA: !transposeA, g, transposeB: false)
            }
            return [dA?.sum(toShape: a.shape), dB?.sum(toShape: b.shape)]
        }
    }

    /// op(A) @ op(B) over broadcast batch dimensions, not recorded. With
    /// `transposeA`, `a` holds [.., K, M]; with `transposeB`, `b` holds [.., N, K].
    static func gemm(_ a: Tensor, transposeA: Bool, _ b: Tensor, transposeB: Bool) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands need rank ≥ 2, got \(a.shape) and \(b.shape)")
        let (ra, ca) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (rb, cb) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ca, ra) : (ra, ca)
        let (kb, n) = transposeB ? (cb, rb) : (rb, cb)
        precondition(k == kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") @ \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        guard let batch = Shape.broadcast(batchA, batchB) else {
            preconditionFailure("matmul: batch dimensions \(batchA) and \(batchB) do not broadcast")
        }
        let batchCount = Shape.count(batch)
        let stridesA = Shape.broadcastStrides(batchA, to: batch), stridesB = Shape.broadcastStrides(batchB, to: batch)
        let out = TensorStorage(uninitializedCount: batchCount * m * n)
        let pa = a.storage.base, pb = b.storage.base, po = out.base
        for index in 0..<batchCount {
            var rest = index, offsetA = 0, offsetB = 0
            for axis in stride(from: batch.count - 1, through: 0, by: -1) {
                let i = rest % batch[axis]
                rest /= batch[axis]
                offsetA += i * stridesA[axis]
                offsetB += i * stridesB[axis]
            }
            let c = po + index * m * n
            if k == 0 {
                c.update(repeating: 0, count: m * n)
                continue
            }
            if m == 1 {
                // A single row (a decoding step): sgemv streams B once; sgemm would first pack all of it.
                // x = op(A) is contiguous either way ([1, K] or [K, 1]).
                let (rows, columns) = transposeB ? (n, k) : (k, n)
                cblas_sgemv(CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(rows), Int32(columns), 1,
                            pb + offsetB * rb * cb, Int32(cb), pa + offsetA * ra * ca, 1, 0, c, 1)
                continue
            }
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), 1,
                        pa + offsetA * ra * ca, Int32(ca), pb + offsetB * rb * cb, Int32(cb), 0, c, Int32(n))
        }
        return Tensor(shape: batch + [m, n], storage: out)
    }
}

extension Tensor {
    /// An affine map with PyTorch's weight layout (`torch.nn.functional.linear`):
    ///
    /// ```
    /// y = x Wᵀ + b        x [.., In], W [Out, In], b [Out] → y [.., Out]
    /// ```
    ///
    /// W is read transposed by sgemm, never copied.
    public func linear(weight: Tensor, bias: Tensor? = nil) -> Tensor {
        precondition(weight.rank == 2 && shape.last == weight.shape[1],
                     "linear: input \(shape) does not match weight \(weight.shape) [Out, In]")
        let flat = reshaped([-1, weight.shape[1]])                                   // [N, In]
        var y = Tensor.matmul(flat, weight, transposeB: true)                        // [N, Out]
        if let bias { y = y + bias }
        return y.reshaped(Array(shape.dropLast()) + [weight.shape[0]])               // [.., Out]
    }
}
