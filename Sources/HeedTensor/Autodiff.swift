/// A recorded op on the tape: its inputs and the rule that maps the gradient
/// of its output to the gradients of its inputs.
struct GradFunction {
    /// The op's name, for error messages and debugging.
    let name: String
    let inputs: [Tensor]
    /// Output gradient → one gradient per input (nil where none flows).
    /// Runs with recording switched off.
    let backward: (Tensor) -> [Tensor?]
}

/// Whether ops record themselves on the tape. See ``Tensor/withoutGrad(_:)``.
enum GradMode {
    @TaskLocal static var isEnabled = true
}

extension Tensor {
    /// Whether ops currently record gradients (false inside ``withoutGrad(_:)``).
    public static var isGradEnabled: Bool { GradMode.isEnabled }

    /// Runs `body` without recording any op: for inference and for updates of
    /// parameters. Results of ops inside have `requiresGrad == false`.
    public static func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
        try GradMode.$isEnabled.withValue(false, operation: body)
    }

    /// Wraps the result of an op: records it on the tape when gradients are on
    /// and any input requires them.
    static func record(_ result: Tensor, _ name: String, _ inputs: [Tensor],
                       backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return result }
        result.gradFunction = GradFunction(name: name, inputs: inputs, backward: backward)
        result.requiresGrad = true
        return result
    }

    /// Reverse-mode differentiation from this tensor.
    ///
    /// Accumulates ∂(seed · self)/∂leaf into `grad` of every leaf that requires
    /// gradients. `seed` defaults to 1 for a one-element tensor and must be
    /// given (same shape as `self`) otherwise. The tape below this tensor is
    /// freed afterwards: a second `backward()` through the same ops needs a new
    /// forward pass.
    public func backward(_ seed: Tensor? = nil) {
        precondition(requiresGrad, "backward(): tensor does not require gradients")
        let start: Tensor
        if let seed {
            precondition(seed.shape == shape, "backward(): seed shape \(seed.shape) differs from \(shape)")
            start = seed.detached()
        } else {
            precondition(count == 1, "backward(): a seed is needed for a non-scalar output of shape \(shape)")
            start = Tensor.full(shape, 1)
        }

        // Reverse topological order by an iterative depth-first search.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Int)] = [(self, 0)]
        visited.insert(ObjectIdentifier(self))
        while let (tensor, next) = stack.popLast() {
            let inputs = tensor.gradFunction?.inputs ?? []
            if next < inputs.count {
                stack.append((tensor, next + 1))
                let input = inputs[next]
                if input.requiresGrad, visited.insert(ObjectIdentifier(input)).inserted {
                    stack.append((input, 0))
                }
            } else {
                order.append(tensor)
            }
        }

        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): start]
        Tensor.withoutGrad {
            for tensor in order.reversed() {
                guard let gradient = grads.removeValue(forKey: ObjectIdentifier(tensor)) else { continue }
                guard let function = tensor.gradFunction else {
                    tensor.grad = tensor.grad.map { $0 + gradient } ?? gradient
                    continue
                }
                let inputGrads = function.backward(gradient)
                precondition(inputGrads.count == function.inputs.count,
                             "backward(): \(function.name) returned \(inputGrads.count) gradients for \(function.inputs.count) inputs")
                for (input, inputGrad) in zip(function.inputs, inputGrads) {
                    guard input.requiresGrad, let inputGrad else { continue }
                    precondition(inputGrad.shape == input.shape,
                                 "backward(): \(function.name) gave gradient \(inputGrad.shape) for input \(input.shape)")
                    let key = ObjectIdentifier(input)
                    grads[key] = grads[key].map { $0 + inputGrad } ?? inputGrad
                }
            }
        }
        // Free the tape: intermediate results forget how they were made.
        for tensor in order where tensor.gradFunction != nil {
            tensor.gradFunction = nil
        }
    }
}

extension Tensor {
    /// Makes `output` a differentiable op of `inputs` with a hand-written
    /// backward, like `torch.autograd.Function`: for fused kernels built
    /// outside HeedTensor (the flash attention engine).
    ///
    /// `output` must be a fresh tensor (not an input, not a view of one).
    /// `backward` receives ∂L/∂output and returns one gradient per input (nil
    /// where none flows, e.g. for an input that does not require gradients);
    /// it runs with recording off. Recorded only when gradients are on and an
    /// input requires them; otherwise `output` is returned as it is.
    public static func custom(_ name: String, inputs: [Tensor], output: Tensor,
                              backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        precondition(output.gradFunction == nil && !inputs.contains(where: { $0 === output }),
                     "Tensor.custom(\(name)): output must be a fresh tensor")
        return record(output, name, inputs, backward: backward)
    }

    /// A new tensor whose elements `fill` writes, in row-major order. Every
    /// element must be written: the storage starts uninitialised.
    public convenience init(shape: [Int], unsafeUninitializedFill fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let storage = TensorStorage(uninitializedCount: Shape.count(shape))
        try fill(storage.buffer)
        self.init(shape: shape, storage: storage)
    }
}
