/// Checks hand-written gradients against central finite differences.
///
/// For inputs x₁…xₙ and a function f, the check draws a fixed random
/// projection w (seeded) of f's output and compares, for every element j of
/// every input that requires gradients,
///
/// ```
/// analytic_j = ∂(w · f(x))/∂x_j          (one backward pass with seed w)
/// numeric_j  = (w·f(x + h e_j) − w·f(x − h e_j)) / ((x_j + h) − (x_j − h))
/// ```
///
/// Heed computes in f32, so f itself is evaluated in f32; the projection,
/// the differences and the comparison are carried in f64, and the divisor is
/// the step actually taken after rounding the perturbed inputs to f32. With
/// the default relative step (h = 10⁻² · max(1, |x_j|)) the rounding error of
/// f32 evaluation is ≈ 10⁻⁵ of the output's scale, which the default
/// tolerances leave room for. Non-smooth ops (relu, abs, max) need inputs away
/// from their kinks.
public struct GradientCheck {
    /// One compared element.
    public struct Mismatch: CustomStringConvertible, Sendable {
        public let input: Int
        public let element: Int
        public let analytic: Double
        public let numeric: Double
        public var description: String {
            "input \(input) element \(element): analytic \(analytic), numeric \(numeric)"
        }
    }

    /// Largest |analytic − numeric| over all checked elements.
    public internal(set) var maxAbsoluteError: Double = 0
    /// Elements outside `atol + rtol·|numeric|`.
    public internal(set) var mismatches: [Mismatch] = []
    /// Elements compared.
    public internal(set) var checkedCount = 0
    /// Whether every element is within tolerance.
    public var passed: Bool { mismatches.isEmpty && checkedCount > 0 }

    /// Runs the check. `inputs` are leaves; those with `requiresGrad` are
    /// checked. `f` must be deterministic (seed any randomness inside it).
    public init(_ inputs: [Tensor], relativeStep: Float = 1e-2, atol: Double = 1e-3, rtol: Double = 2e-3,
                seed: UInt64 = 0x5EED, _ f: ([Tensor]) -> Tensor) {
        // Analytic: one backward with a random seed w.
        for input in inputs { input.grad = nil }
        let output = f(inputs)
        precondition(output.requiresGrad, "GradientCheck: the output does not depend on any input that requires gradients")
        let weights = Tensor.randomUniform(output.shape, low: -1, high: 1, seed: seed)
        output.backward(weights)
        let w = weights.scalars.map(Double.init)

        func projected() -> Double {
            let values = Tensor.withoutGrad { f(inputs) }
            precondition(values.shape == output.shape, "GradientCheck: output shape changed")
            return values.withUnsafeScalars { zip($0, w).reduce(0) { $0 + Double($1.0) * $1.1 } }
        }

        for (index, input) in inputs.enumerated() where input.requiresGrad {
            let analytic = input.grad?.scalars ?? [Float](repeating: 0, count: input.count)
            for j in 0..<input.count {
                let original = input.withUnsafeScalars { $0[j] }
                let h = relativeStep * Swift.max(1, Swift.abs(original))
                let up = original + h, down = original - h
                input.withUnsafeMutableScalars { $0[j] = up }
                let fUp = projected()
                input.withUnsafeMutableScalars { $0[j] = down }
                let fDown = projected()
                input.withUnsafeMutableScalars { $0[j] = original }
                let numeric = (fUp - fDown) / (Double(up) - Double(down))
                let error = Swift.abs(Double(analytic[j]) - numeric)
                checkedCount += 1
                maxAbsoluteError = Swift.max(maxAbsoluteError, error.isNaN ? .infinity : error)
                if !(error <= atol + rtol * Swift.abs(numeric)) {
                    mismatches.append(Mismatch(input: index, element: j, analytic: Double(analytic[j]), numeric: numeric))
                }
            }
        }
        for input in inputs { input.grad = nil }
    }
}
