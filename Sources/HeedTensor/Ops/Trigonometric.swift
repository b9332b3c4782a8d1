import Foundation

// Sine and cosine, for random Fourier features (Rahimi & Recht, 2007) and
// anything else that needs their gradients. Computed per element in Swift
// (libm); they are not hot enough yet for a CHeedKernels kernel.

extension Tensor {
    /// sin x elementwise. ∂x = g·cos x.
    public func sin() -> Tensor {
        let input = self
        let out = Tensor.build(shape) { out in
            input.withUnsafeScalars { x in for i in out.indices { out[i] = Foundation.sin(x[i]) } }
        }
        return Tensor.record(out, "sin", [input]) { g in [g * input.cos()] }
    }

    /// cos x elementwise. ∂x = −g·sin x.
    public func cos() -> Tensor {
        let input = self
        let out = Tensor.build(shape) { out in
            input.withUnsafeScalars { x in for i in out.indices { out[i] = Foundation.cos(x[i]) } }
        }
        return Tensor.record(out, "cos", [input]) { g in [-(g * input.sin())] }
    }
}
