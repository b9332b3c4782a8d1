import CHeedKernels

extension Tensor {
    /// A tensor of `shape` filled with `value`.
    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        let result = Tensor.build(shape) { heed_fill_f32($0.baseAddress!, value, Int64($0.count)) }
        result.requiresGrad = requiresGrad
        return result
    }

    /// Zeros of `shape`.
    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, requiresGrad: requiresGrad)
    }

    /// Ones of `shape`.
    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    /// Zeros with the shape of `other`.
    public static func zeros(like other: Tensor) -> Tensor { zeros(other.shape) }

    /// `start, start + step, …` up to but excluding `end`, like `torch.arange`.
    /// Element i is computed as `start + i·step` (no accumulated rounding).
    public static func arange(_ start: Float = 0, _ end: Float, step: Float = 1) -> Tensor {
        precondition(step != 0, "arange: step must not be zero")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        return build([n]) { out in
            for i in 0..<n { out[i] = start + Float(i) * step }
        }
    }

    /// Integers `0..<count` as floats.
    public static func arange(_ count: Int) -> Tensor { arange(0, Float(count)) }

    /// Normal samples, `mean + std · z`, drawn in row-major order from `generator`.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                    generator: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let result = build(shape) { out in
            for i in out.indices { out[i] = mean + std * generator.nextNormal() }
        }
        result.requiresGrad = requiresGrad
        return result
    }

    /// Normal samples from a fresh generator seeded with `seed`.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                    seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        var generator = RandomGenerator(seed: seed)
        return randomNormal(shape, mean: mean, std: std, generator: &generator, requiresGrad: requiresGrad)
    }

    /// Uniform samples in [low, high), drawn in row-major order from `generator`.
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                                     generator: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let result = build(shape) { out in
            for i in out.indices { out[i] = low + (high - low) * generator.nextUniform() }
        }
        result.requiresGrad = requiresGrad
        return result
    }

    /// Uniform samples from a fresh generator seeded with `seed`.
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                                     seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        var generator = RandomGenerator(seed: seed)
        return randomUniform(shape, low: low, high: high, generator: &generator, requiresGrad: requiresGrad)
    }
}
