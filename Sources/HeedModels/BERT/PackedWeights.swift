import CHeedKernels
import HeedTensor

/// A weight matrix W [outputs, inputs] packed once for heed_packed_linear_f32
/// (heed_packed.h): panels of 16 output rows, the order its micro-kernels
/// read them, where a BLAS call packs the weights again on every call.
final class PackedWeights: @unchecked Sendable {
    // @unchecked: the panels are written once, in init, and only read after.

    let outputs: Int
    let inputs: Int
    private let panels: UnsafeMutablePointer<Float>

    /// Packs `weight` [outputs, inputs].
    init(_ weight: Tensor) {
        precondition(weight.shape.count == 2, "PackedWeights: a weight matrix needs 2 dimensions, not \(weight.shape)")
        (outputs, inputs) = (weight.shape[0], weight.shape[1])
        let count = Int(heed_packed_count(Int64(outputs), Int64(inputs)))
        panels = UnsafeMutableRawPointer.allocate(byteCount: 4 * Swift.max(count, 1), alignment: 64)
            .bindMemory(to: Float.self, capacity: Swift.max(count, 1))
        withPointers([weight]) { heed_pack_weights_f32($0[0], Int64(outputs), Int64(inputs), panels) }
    }

    deinit { panels.deallocate() }

    /// out = input Wᵀ + bias (+ residual) for `rows` rows of input [rows, inputs]
    /// (contiguous); out and residual are [rows, outputs] and may be the same buffer.
    func apply(_ input: UnsafePointer<Float>, rows: Int, bias: UnsafePointer<Float>?,
               residual: UnsafePointer<Float>? = nil, into out: UnsafeMutablePointer<Float>) {
        heed_packed_linear_f32(Int64(rows), Int64(outputs), Int64(inputs), input, Int64(inputs), panels, bias, residual,
                               Int64(outputs), out, Int64(outputs))
    }
}
