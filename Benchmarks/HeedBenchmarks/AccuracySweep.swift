import CHeedKernels
import Foundation

/// exp against Foundation's double-precision exp on every one of the 2^32
/// float inputs, split over the cores. Error in ulps of the reference value
/// (2^−149 for subnormal references); a correctly rounded result counts 0.
func runExpAccuracySweep() {
    print("\n## exp accuracy, all 2^32 inputs (\(String(cString: heed_kernels_isa())))")
    let parts = 64
    let results = UnsafeMutableBufferPointer<(worst: Double, input: UInt32, incorrect: Int)>.allocate(capacity: parts)
    defer { results.deallocate() }
    let box = UncheckedBox(results)
    let start = DispatchTime.now().uptimeNanoseconds
    concurrentChunks(parts, parts: parts) { range in
        let part = range.lowerBound
        let first = UInt64(part) << 26, end = first + (1 << 26)
        var inputs = [Float](repeating: 0, count: 4096), outputs = inputs
        var worst = 0.0, worstInput: UInt32 = 0, incorrect = 0
        var bits = first
        while bits < end {
            for i in 0..<4096 { inputs[i] = Float(bitPattern: UInt32(bits + UInt64(i))) }
            inputs.withUnsafeBufferPointer { px in outputs.withUnsafeMutableBufferPointer { po in
                heed_unary_f32(HEED_EXP, px.baseAddress, po.baseAddress, 4096) } }
            for i in 0..<4096 {
                let reference = Foundation.exp(Double(inputs[i]))
                let error = expUlpError(outputs[i], reference)
                if error > 0 { incorrect += 1 }
                if error > worst { worst = error; worstInput = inputs[i].bitPattern }
            }
            bits += 4096
        }
        box.value[part] = (worst, worstInput, incorrect)
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    let worst = results.max { $0.worst < $1.worst }!
    let incorrect = results.reduce(0) { $0 + $1.incorrect }
    let x = Float(bitPattern: worst.input)
    print("max error \(format(worst.worst, 3)) ulp at x = \(x) (0x\(String(worst.input, radix: 16))); "
          + "\(incorrect) of 2^32 results not correctly rounded (\(format(100 * Double(incorrect) / 4294967296, 2)) %); \(format(seconds)) s")
}

private func expUlpError(_ got: Float, _ reference: Double) -> Double {
    if reference.isNaN { return got.isNaN ? 0 : .infinity }
    if Float(reference) == got { return 0 }
    if !got.isFinite { return .infinity }
    let magnitude = Swift.abs(reference)
    let unit = magnitude < Double(Float.leastNormalMagnitude) ? Double(Float.leastNonzeroMagnitude)
        : Double(sign: .plus, exponent: Swift.min(magnitude.exponent, 127) - 23, significand: 1)
    return Swift.abs(Double(got) - reference) / unit
}
