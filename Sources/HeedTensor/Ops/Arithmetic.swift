import CHeedKernels

// Binary elementwise ops with broadcasting. Each forward sits beside its
// backward; gradients of broadcast operands are summed back to their shapes.

extension Tensor {
    /// a + b. ∂a = g, ∂b = g.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, HEED_ADD, "add")
        return record(out, "add", [a, b]) { g in [g.sum(toShape: a.shape), g.sum(toShape: b.shape)] }
    }

    /// a − b. ∂a = g, ∂b = −g.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, HEED_SUB, "sub")
        return record(out, "sub", [a, b]) { g in [g.sum(toShape: a.shape), (-g).sum(toShape: b.shape)] }
    }

    /// a · b. ∂a = g·b, ∂b = g·a.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, HEED_MUL, "mul")
        return record(out, "mul", [a, b]) { g in
            [a.requiresGrad ? (g * b).sum(toShape: a.shape) : nil,
             b.requiresGrad ? (g * a).sum(toShape: b.shape) : nil]
        }
    }

    /// a / b. ∂a = g/b, ∂b = −g·(a/b)/b.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, HEED_DIV, "div")
        return record(out, "div", [a, b]) { g in
            [a.requiresGrad ? (g / b).sum(toShape: a.shape) : nil,
             b.requiresGrad ? (-(g * out) / b).sum(toShape: b.shape) : nil]
        }
    }

    /// −x. ∂x = −g.
    public static prefix func - (x: Tensor) -> Tensor {
        let out = mapUnary(x, HEED_NEG)
        return record(out, "neg", [x]) { g in [-g] }
    }

    /// aᵇ elementwise with broadcasting.
    /// ∂a = g·b·aᵇ⁻¹; ∂b = g·aᵇ·ln a (taken as 0 where a = 0, as PyTorch does).
    public func pow(_ exponent: Tensor) -> Tensor {
        let base = self
        let out = Tensor.broadcastBinary(base, exponent, HEED_POW, "pow")
        return Tensor.record(out, "pow", [base, exponent]) { g in
            let dBase = base.requiresGrad
                ? (g * exponent * base.pow(exponent - Tensor(scalar: 1))).sum(toShape: base.shape) : nil
            var dExponent: Tensor?
            if exponent.requiresGrad {
                let logBase = Tensor.where(base.equal(Tensor(scalar: 0)), Tensor(scalar: 0), base.log())
                dExponent = (g * out * logBase).sum(toShape: exponent.shape)
            }
            return [dBase, dExponent]
        }
    }

    /// xᵖ for a constant exponent.
    public func pow(_ exponent: Float) -> Tensor { pow(Tensor(scalar: exponent)) }

    /// The larger of a and b elementwise; where equal, the gradient is split evenly.
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, HEED_MAXIMUM, "maximum")
        return record(out, "maximum", [a, b]) { g in selectionGradients(g, a, b, HEED_GREATER) }
    }

    /// The smaller of a and b elementwise; where equal, the gradient is split evenly.
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, HEED_MINIMUM, "minimum")
        return record(out, "minimum", [a, b]) { g in selectionGradients(g, a, b, HEED_LESS) }
    }

    /// Gradients of maximum/minimum: `wins` is 1 where a is chosen outright.
    private static func selectionGradients(_ g: Tensor, _ a: Tensor, _ b: Tensor, _ wins: heed_binary_op) -> [Tensor?] {
        let aWins = broadcastBinary(a, b, wins, "compare")
        let tie = broadcastBinary(a, b, HEED_EQUAL, "compare")
        let shareA = aWins + tie * Tensor(scalar: 0.5)           // 1, ½ or 0
        let shareB = Tensor(scalar: 1) - shareA
        return [(g * shareA).sum(toShape: a.shape), (g * shareB).sum(toShape: b.shape)]
    }

    // MARK: Comparisons (no gradient): 1 where true, 0 where false.

    /// 1 where self == other (broadcast), else 0.
    public func equal(_ other: Tensor) -> Tensor { Tensor.broadcastBinary(self, other, HEED_EQUAL, "equal") }
    /// 1 where self > other (broadcast), else 0.
    public func greater(_ other: Tensor) -> Tensor { Tensor.broadcastBinary(self, other, HEED_GREATER, "greater") }
    /// 1 where self < other (broadcast), else 0.
    public func less(_ other: Tensor) -> Tensor { Tensor.broadcastBinary(self, other, HEED_LESS, "less") }

    // MARK: Scalars on either side

    /// The same ops with a `Float` on either side (a rank-0 constant that broadcasts).

    public static func + (a: Tensor, b: Float) -> Tensor { a + Tensor(scalar: b) }
    public static func + (a: Float, b: Tensor) -> Tensor { Tensor(scalar: a) + b }
    public static func - (a: Tensor, b: Float) -> Tensor { a - Tensor(scalar: b) }
    public static func - (a: Float, b: Tensor) -> Tensor { Tensor(scalar: a) - b }
    public static func * (a: Tensor, b: Float) -> Tensor { a * Tensor(scalar: b) }
    public static func * (a: Float, b: Tensor) -> Tensor { Tensor(scalar: a) * b }
    public static func / (a: Tensor, b: Float) -> Tensor { a / Tensor(scalar: b) }
    public static func / (a: Float, b: Tensor) -> Tensor { Tensor(scalar: a) / b }
}
