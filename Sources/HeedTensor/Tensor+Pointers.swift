/// A valid address for the elements of an empty tensor, never read or
/// written (loops over an empty tensor run zero times).
package nonisolated(unsafe) let emptyTensorAddress = UnsafeMutablePointer<Float>.allocate(capacity: 1)

/// Calls `body` with the base addresses of every tensor's scalars (contiguous
/// row-major), for kernels that take several tensors at once.
package func withPointers<R>(_ tensors: [Tensor], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    func nest(_ index: Int, _ collected: [UnsafePointer<Float>]) -> R {
        if index == tensors.count { return body(collected) }
        return tensors[index].withUnsafeScalars { nest(index + 1, collected + [$0.baseAddress ?? UnsafePointer(emptyTensorAddress)]) }
    }
    return nest(0, [])
}

/// Calls `body` with mutable base addresses of every tensor's scalars.
package func withMutablePointers<R>(_ tensors: [Tensor], _ body: ([UnsafeMutablePointer<Float>]) -> R) -> R {
    func nest(_ index: Int, _ collected: [UnsafeMutablePointer<Float>]) -> R {
        if index == tensors.count { return body(collected) }
        return tensors[index].withUnsafeMutableScalars {
            nest(index + 1, collected + [$0.baseAddress ?? emptyTensorAddress])
        }
    }
    return nest(0, [])
}
