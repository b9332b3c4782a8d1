/// Integer indices with a shape: class labels, token ids, gather positions,
/// argmax results. Row-major, like ``Tensor``.
public struct IndexTensor: Sendable, Equatable, CustomStringConvertible {
    /// The dimensions, outermost first.
    public let shape: [Int]
    /// The indices in row-major order.
    public let values: [Int]

    /// Indices with a shape; `values.count` must equal the shape's element count.
    public init(_ values: [Int], shape: [Int]) {
        precondition(Shape.count(shape) == values.count,
                     "IndexTensor: \(values.count) values do not fill shape \(shape)")
        self.shape = shape
        self.values = values
    }

    /// A one-dimensional index list.
    public init(_ values: [Int]) { self.init(values, shape: [values.count]) }

    /// Number of indices.
    public var count: Int { values.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }
    public var description: String { "IndexTensor(shape: \(shape), \(values))" }
}
