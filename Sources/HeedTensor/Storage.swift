/// A contiguous, heap-allocated run of `Float`s shared by tensors that are
/// views of one another (reshape, squeeze, unsqueeze share storage).
///
/// Heed never mutates storage that a tensor already exposes, except through the
/// explicitly named `withUnsafeMutableScalars`; ops always write fresh storage.
final class TensorStorage {
    let base: UnsafeMutablePointer<Float>
    let count: Int

    /// Allocates `count` floats, uninitialised: the caller writes every element.
    init(uninitializedCount count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.count = count
        self.base = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
    }

    convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: value, count: count)
    }

    deinit { base.deallocate() }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }
}
