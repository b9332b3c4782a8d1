import CHeedKernels
import Foundation

/// Accuracy of the unary kernels against Foundation's double-precision
/// functions, for the dispatched and the portable kernels:
/// - exp on every one of the 2^32 float inputs;
/// - log, tanh, sigmoid, silu, erf and GELU on every 97th bit pattern (44M inputs).
/// Error in ulps of the reference value (2^−149 for subnormal references); a
/// correctly rounded result counts 0. Results whose reference is below 2^−100
/// are left out for the compositions (sigmoid, silu, GELU): there the
/// exponential inside is subnormal and has lost its low bits in both kernels.
func runAccuracySweep() {
    func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
    let cases: [(String, heed_unary_op, UInt64, Bool, (Double) -> Double)] = [
        ("exp", HEED_EXP, 1, false, { Foundation.exp($0) }),
        ("log", HEED_LOG, 97, false, { Foundation.log($0) }),
        ("tanh", HEED_TANH, 97, false, { Foundation.tanh($0) }),
        ("sigmoid", HEED_SIGMOID, 97, true, sigmoid),
        ("silu", HEED_SILU, 97, true, { $0 * sigmoid($0) }),
        ("erf", HEED_ERF, 97, false, { Foundation.erf($0) }),
        ("gelu (erf)", HEED_GELU_ERF, 97, true, { 0.5 * $0 * Foundation.erfc(-$0 / 2.0.squareRoot()) }),
    ]
    print("\n## Accuracy against Foundation (double), max ulp error")
    print("| function | inputs | \(String(cString: heed_kernels_isa())) max ulp (at x) | not correctly rounded | portable max ulp (at x) | not correctly rounded |")
    print("|---|---|---|---|---|---|")
    for (name, op, step, skipTiny, reference) in cases {
        var cells: [String] = []
        for portable in [false, true] {
            heed_kernels_force_portable(portable ? 1 : 0)
            let start = DispatchTime.now().uptimeNanoseconds
            let result = sweep(op, step: step, skipTiny: skipTiny, reference)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            cells.append("\(format(result.worst, 3)) (\(Float(bitPattern: result.input)))")
            cells.append("\(format(100 * Double(result.incorrect) / Double(result.checked), 2)) %")
            FileHandle.standardError.write("\(name) \(portable ? "portable" : "dispatched"): \(format(seconds)) s\n".data(using: .utf8)!)
        }
        heed_kernels_force_portable(0)
        let inputs = step == 1 ? "all 2^32" : "every \(step)th"
        print("| \(name) | \(inputs) | \(cells.joined(separator: " | ")) |")
    }
}

/// The worst ulp error of `op` over bit patterns 0, step, 2·step, … < 2^32.
private func sweep(_ op: heed_unary_op, step: UInt64, skipTiny: Bool, _ reference: (Double) -> Double)
    -> (worst: Double, input: UInt32, incorrect: Int, checked: Int) {
    let parts = 64
    let results = UnsafeMutableBufferPointer<(worst: Double, input: UInt32, incorrect: Int, checked: Int)>.allocate(capacity: parts)
    defer { results.deallocate() }
    let box = UncheckedBox(results)
    concurrentChunks(parts, parts: parts) { range in
        let part = range.lowerBound
        let end = UInt64(part + 1) << 26
        var bits = (UInt64(part) << 26 + step - 1) / step * step    // first multiple of step in this part
        var inputs = [Float](repeating: 0, count: 4096), outputs = inputs
        var worst = 0.0, worstInput: UInt32 = 0, incorrect = 0, checked = 0
        while bits < end {
            var count = 0
            while count < 4096 && bits < end { inputs[count] = Float(bitPattern: UInt32(bits)); count += 1; bits += step }
            inputs.withUnsafeBufferPointer { px in outputs.withUnsafeMutableBufferPointer { po in
                heed_unary_f32(op, px.baseAddress, po.baseAddress, Int64(count)) } }
            for i in 0..<count {
                let expected = reference(Double(inputs[i]))
                if skipTiny && Swift.abs(expected) < 0x1p-100 { continue }
                let error = ulpError(outputs[i], expected)
                checked += 1
                if error > 0 { incorrect += 1 }
                if error > worst { worst = error; worstInput = inputs[i].bitPattern }
            }
        }
        box.value[part] = (worst, worstInput, incorrect, checked)
    }
    let worst = results.max { $0.worst < $1.worst }!
    return (worst.worst, worst.input, results.reduce(0) { $0 + $1.incorrect }, results.reduce(0) { $0 + $1.checked })
}

private func ulpError(_ got: Float, _ reference: Double) -> Double {
    if reference.isNaN { return got.isNaN ? 0 : .infinity }
    if Float(reference) == got { return 0 }
    if !got.isFinite { return .infinity }
    let magnitude = Swift.abs(reference)
    let unit = magnitude < Double(Float.leastNormalMagnitude) ? Double(Float.leastNonzeroMagnitude)
        : Double(sign: .plus, exponent: Swift.min(magnitude.exponent, 127) - 23, significand: 1)
    return Swift.abs(Double(got) - reference) / unit
}
