import CHeedKernels

// Unary elementwise math. Each derivative is written with the op's own output
// where that is cheaper (exp, tanh, sigmoid, sqrt) and with a fused C kernel
// where the formula is long (gelu, silu).

extension Tensor {
    private func unary(_ op: heed_unary_op, _ name: String, _ derivative: @escaping (Tensor, Tensor) -> Tensor) -> Tensor {
        let input = self
        let out = Tensor.mapUnary(input, op)
        return Tensor.record(out, name, [input]) { g in [derivative(g, out)] }
    }

    /// eˣ. ∂x = g·eˣ.
    public func exp() -> Tensor { unary(HEED_EXP, "exp") { g, y in g * y } }
    /// ln x. ∂x = g/x.
    public func log() -> Tensor { unary(HEED_LOG, "log") { [self] g, _ in g / self } }
    /// √x. ∂x = g/(2√x).
    public func sqrt() -> Tensor { unary(HEED_SQRT, "sqrt") { g, y in g * 0.5 / y } }
    /// 1/√x. ∂x = −½·g·y³.
    public func rsqrt() -> Tensor { unary(HEED_RSQRT, "rsqrt") { g, y in g * (-0.5) * y * y * y } }
    /// tanh x. ∂x = g·(1 − y²).
    public func tanh() -> Tensor { unary(HEED_TANH, "tanh") { g, y in g * (1 - y * y) } }
    /// σ(x) = 1/(1 + e⁻ˣ), stable for large |x|. ∂x = g·y·(1 − y).
    public func sigmoid() -> Tensor { unary(HEED_SIGMOID, "sigmoid") { g, y in g * y * (1 - y) } }
    /// max(x, 0). ∂x = g where x > 0, else 0.
    public func relu() -> Tensor {
        unary(HEED_RELU, "relu") { [self] g, _ in g * Tensor.mapUnary(self, HEED_STEP) }
    }
    /// |x|. ∂x = g·sign(x) (0 at 0).
    public func abs() -> Tensor {
        unary(HEED_ABS, "abs") { [self] g, _ in g * Tensor.mapUnary(self, HEED_SIGN) }
    }
    /// x·σ(x) (SiLU, "swish"). ∂x = g·σ(x)·(1 + x(1 − σ(x))).
    public func silu() -> Tensor {
        unary(HEED_SILU, "silu") { [self] g, _ in g * Tensor.mapUnary(self, HEED_SILU_GRAD) }
    }

    /// The two GELU forms of Hendrycks & Gimpel (2016).
    public enum GELUApproximation: Sendable {
        /// x·Φ(x) = ½x(1 + erf(x/√2)), exact (PyTorch `approximate="none"`).
        case none
        /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (PyTorch `approximate="tanh"`).
        case tanh
    }

    /// GELU. ∂x = g·(Φ(x) + x·φ(x)) for the erf form, the derivative of the
    /// tanh formula for the tanh form.
    public func gelu(approximate: GELUApproximation = .none) -> Tensor {
        let (op, grad): (heed_unary_op, heed_unary_op) = approximate == .none
            ? (HEED_GELU_ERF, HEED_GELU_ERF_GRAD) : (HEED_GELU_TANH, HEED_GELU_TANH_GRAD)
        return unary(op, "gelu") { [self] g, _ in g * Tensor.mapUnary(self, grad) }
    }

    /// x². ∂x = 2gx.
    public func square() -> Tensor { unary(HEED_SQUARE, "square") { [self] g, _ in g * self * 2 } }

    /// Elementwise choice: `a` where `condition` ≠ 0, else `b`; all three broadcast.
    /// ∂a = g·c, ∂b = g·(1 − c); no gradient reaches the condition.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let chosen = broadcastBinary(condition, Tensor(scalar: 0), HEED_EQUAL, "where")   // 1 where false
        let keepA = broadcastBinary(Tensor(scalar: 1), chosen, HEED_SUB, "where")
        guard let shape = Shape.broadcast(condition.shape, a.shape).flatMap({ Shape.broadcast($0, b.shape) }) else {
            preconditionFailure("where: shapes \(condition.shape), \(a.shape), \(b.shape) do not broadcast")
        }
        // Select without arithmetic so that inf/NaN in the unchosen side do not leak.
        let ea = a.detached().expand(to: shape), eb = b.detached().expand(to: shape)
        let mask = keepA.expand(to: shape)
        let out = Tensor.build(shape) { out in
            let pa = ea.storage.base, pb = eb.storage.base, pm = mask.storage.base
            for i in out.indices { out[i] = pm[i] != 0 ? pa[i] : pb[i] }
        }
        return record(out, "where", [a, b]) { g in
            [a.requiresGrad ? (g * keepA).sum(toShape: a.shape) : nil,
             b.requiresGrad ? (g * chosen).sum(toShape: b.shape) : nil]
        }
    }

    /// `value` where `mask` ≠ 0, the tensor elsewhere (`masked_fill`). The mask broadcasts.
    public func maskedFill(_ mask: Tensor, _ value: Float) -> Tensor {
        Tensor.where(mask, Tensor(scalar: value), self)
    }
}
