/// An n-dimensional array of `Float`s in row-major contiguous storage, with
/// reverse-mode automatic differentiation.
///
/// Shapes use the legend `B, H, Hkv, Tq, Tk, D` in comments throughout Heed.
/// A rank-0 tensor (shape `[]`) holds one scalar.
///
/// ```swift
/// let x = Tensor([1, 2, 3, 4], shape: [2, 2], requiresGrad: true)
/// let loss = (x * x).sum()
/// loss.backward()
/// x.grad!.scalars   // [2, 4, 6, 8]
/// ```
///
/// `Tensor` is a reference type: `grad` accumulates on the tensor itself, the
/// way PyTorch does it. Values never change after creation (ops write new
/// storage), so sharing a tensor is safe; only `grad` and `requiresGrad` mutate.
public final class Tensor {
    /// The dimensions, outermost first.
    public let shape: [Int]
    let storage: TensorStorage

    /// Whether gradients flow to this tensor. Set it on leaves (parameters,
    /// inputs); op results get it from their inputs.
    public var requiresGrad: Bool {
        didSet {
            precondition(gradFunction == nil || requiresGrad,
                         "requiresGrad: cannot turn off gradients of a non-leaf tensor; use detached()")
        }
    }

    /// The accumulated gradient of the last `backward()` calls (nil until one
    /// reaches this tensor). Set it to nil to zero it.
    public var grad: Tensor?

    /// The recorded op that produced this tensor, while the tape holds it.
    var gradFunction: GradFunction?

    init(shape: [Int], storage: TensorStorage, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(Shape.count(shape) == storage.count,
                     "Tensor: shape \(shape) needs \(Shape.count(shape)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// A tensor holding `scalars` in row-major order.
    public convenience init(_ scalars: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(Shape.count(shape) == scalars.count,
                     "Tensor: \(scalars.count) scalars do not fill shape \(shape)")
        let storage = TensorStorage(uninitializedCount: scalars.count)
        _ = storage.buffer.initialize(from: scalars)
        self.init(shape: shape, storage: storage, requiresGrad: requiresGrad)
    }

    /// A one-dimensional tensor.
    public convenience init(_ scalars: [Float], requiresGrad: Bool = false) {
        self.init(scalars, shape: [scalars.count], requiresGrad: requiresGrad)
    }

    /// A rank-0 tensor.
    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init([scalar], shape: [], requiresGrad: requiresGrad)
    }

    /// A tensor whose storage the closure fills; every element must be written.
    static func build(_ shape: [Int], _ fill: (UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
        let storage = TensorStorage(uninitializedCount: Shape.count(shape))
        fill(storage.buffer)
        return Tensor(shape: shape, storage: storage)
    }

    // MARK: Facts

    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// Number of elements.
    public var count: Int { storage.count }
    /// The elements in row-major order.
    public var scalars: [Float] { Array(storage.buffer) }

    /// The single element of a one-element tensor.
    public func item() -> Float {
        precondition(count == 1, "item(): tensor of shape \(shape) has \(count) elements")
        return storage.base[0]
    }

    /// The element at a full index.
    public subscript(indices: Int...) -> Float {
        precondition(indices.count == rank, "subscript: \(indices.count) indices for rank \(rank)")
        var offset = 0
        for (axis, i) in indices.enumerated() {
            precondition(i >= 0 && i < shape[axis], "subscript: index \(i) out of range for axis \(axis) of \(shape)")
            offset = offset * shape[axis] + i
        }
        return storage.base[offset]
    }

    /// Reads the elements without copying.
    public func withUnsafeScalars<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(storage.buffer))
    }

    /// Writes the elements in place. Every tensor sharing this storage (views
    /// made by reshape) sees the change, and no gradient is recorded: for
    /// optimizers and loaders, not for computations.
    public func withUnsafeMutableScalars<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(storage.buffer)
    }

    /// The same values with no history and `requiresGrad == false`.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = count <= 64 ? scalars.map { "\($0)" }.joined(separator: ", ") : "\(count) elements"
        return "Tensor(shape: \(shape), [\(shown)]\(requiresGrad ? ", requiresGrad" : ""))"
    }
}
