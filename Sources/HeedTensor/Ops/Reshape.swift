extension Tensor {
    /// The same elements with a new shape of equal count; shares storage (free).
    /// One dimension may be -1 and is inferred. ∂x = g reshaped back.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for \(count) elements")
            target[inferred] = count / known
        }
        precondition(Shape.count(target) == count && target.allSatisfy { $0 >= 0 },
                     "reshape: shape \(shape) (\(count) elements) cannot become \(newShape)")
        if target == shape { return self }
        let input = self
        let out = Tensor(shape: target, storage: storage)
        return Tensor.record(out, "reshape", [input]) { g in [g.reshaped(input.shape)] }
    }

    /// Reshape with the dimensions listed inline: `x.reshaped(2, -1)`.
    public func reshaped(_ dims: Int...) -> Tensor { reshaped(dims) }
}
