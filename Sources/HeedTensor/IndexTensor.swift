/// Integer indices with a shape: class labels, token ids, gather positions,
/// argmax results. Row-major, like ``Tensor``.
public struct IndexTensor: Sendable, Equatable, CustomStringConvertible {
    public let shape: [Int]
    public let values: [Int]

    public init(_ values: [Int], shape: [Int]) {
        precondition(Shape.count(shape) == values.count,
                     "IndexTensor: \(values.count) values do not fill shape \(shape)")
        self.shape = shape
        self.values = values
    }

    /// A one-dimensional index list.
    public init(_ values: [Int]) { self.init(values, shape: [values.count]) }

    public var count: Int { values.count }
    public var rank: Int { shape.count }
    public var description: String { "IndexTensor(shape: \(shape), \(values))" }
}
