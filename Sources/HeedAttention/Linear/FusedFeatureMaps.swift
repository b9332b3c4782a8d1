import CHeedKernels
import Foundation
import HeedTensor

/// The feature maps of the linear attentions as single recorded ops with
/// hand-written backwards (CHeedKernels/linear_features.c): the projection
/// and the vector exp or sin/cos run a block of rows at a time, so no [T, m]
/// intermediate exists, and the tape keeps only the input and the features —
/// where the composed reference (in Performer.swift,
/// RandomFeatureAttention.swift, LinearAttention.swift) makes and keeps four
/// or five [T, F] intermediates.
/// Tests hold each to its composed reference, outputs and gradients.
///
/// These back the public `features(of:)` of the engines. The engines' own
/// fused paths do not use them: the kernels map q and k chunk by chunk
/// (KernelizedAttention+Fused.swift); only Performer's key shifts
/// (``performerKeyShifts(_:transposed:featureEpsilon:)``) and the shift
/// gradient at tied maxima (``addShiftGradient(_:rowsPerGroup:d:w:inputScale:into:gradientOfShift:)``)
/// are shared with them.
enum FusedFeatureMaps {
    // MARK: Performer (FAVOR+)

    /// ``Performer/features(of:isQuery:)``, fused (`heed_performer_features_f32`).
    /// Forward, per row r of x [B, H, T, D]:
    ///
    /// ```
    /// (1) x̂ = x · D^(−1/4);  u = x̂ Wᵀ                               [T, m], a block of rows at a time
    /// (2) h_r = ½‖x̂_r‖²;  c = max_i u_ri (queries) or max_{r,i} u_ri per [B, H] (keys: a first pass over the rows)
    /// (3) φ_ri = (exp((u_ri − h_r) − c) + ε) / √m
    /// ```
    ///
    /// Backward, stages in reverse, with e = φ − ε/√m = exp(u − h − c)/√m:
    ///
    /// ```
    /// (3) ∂u = ∂φ ∘ e;   ∂h_r = −Σ_i ∂u_ri;   ∂c = −Σ ∂u over c's group
    /// (2) ∂x̂ = ∂u W + ∂h_r · x̂_r;   at the maxima u_ri = c: ∂x̂_r += ∂c / (number of tied maxima) · W_i
    /// (1) ∂x = ∂x̂ · D^(−1/4)
    /// ```
    static func performer(_ x: Tensor, projection: Tensor, isQuery: Bool, featureEpsilon: Float) -> Tensor {
        let (b, h, t, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let m = projection.shape[0], rows = b * h * t, rowsPerGroup = isQuery ? 1 : t
        let (inputScale, featureScale) = performerScales(d: d, m: m)
        let transposed = Tensor.withoutGrad { projection.transposed() }    // Wᵀ [D, m]
        var rowMax = [Float](repeating: 0, count: rows)
        var maxIndex = [Int64](repeating: 0, count: rows), maxCount = [Int64](repeating: 0, count: rows)
        var keyShifts: PerformerShifts?
        if !isQuery { keyShifts = performerKeyShifts(x, transposed: transposed, featureEpsilon: featureEpsilon) }
        let features = Tensor(shape: [b, h, t, m]) { out in                                  // [B, H, T, m]
            performerRows(x, transposed, rows: rows, m: m, inputScale, featureEpsilon, featureScale,
                          shift: keyShifts.map { shifts in (0..<rows).map { shifts.values[$0 / t] } },
                          &rowMax, &maxIndex, &maxCount, features: out.baseAddress!)
        }
        let maxima = keyShifts?.maxima
            ?? tiedMaxima(x, transposed, rowsPerGroup: 1, shifts: rowMax, rowMax: rowMax, maxIndex: maxIndex, maxCount: maxCount)
        let saved = features.detached()
        return Tensor.custom("performerFeatures", inputs: [x], output: features) { gradient in
            var rowSums = [Float](repeating: 0, count: rows)
            let dx = Tensor(shape: x.shape) { out in                                          // [B, H, T, D]
                Tensor.withUnsafeScalars([x, saved, gradient, projection]) { read in
                    let (input, phi, grad, w) = (LinearSendable(read[0]!), LinearSendable(read[1]!), LinearSendable(read[2]!),
                                                 LinearSendable(read[3]!))
                    rowSums.withUnsafeMutableBufferPointer { sums in
                        let (target, rowSum) = (LinearSendable(out.baseAddress!), LinearSendable(sums.baseAddress!))
                        LinearParallel.forEachRange(rows, elementsPerRow: m * d / 8) { range in
                            let status = heed_performer_features_backward_f32(
                                input.value + range.lowerBound * d, phi.value + range.lowerBound * m, grad.value + range.lowerBound * m,
                                Int64(range.count), Int64(d), w.value, Int64(m), inputScale, featureEpsilon, featureScale,
                                rowSum.value + range.lowerBound, target.value + range.lowerBound * d)
                            precondition(status == 0, "Performer.features: out of memory for the backward's scratch")
                        }
                    }
                    // (2) ∂c = −Σ ∂u over the group.
                    addShiftGradient(maxima, rowsPerGroup: rowsPerGroup, d: d, w: w.value, inputScale: inputScale, into: out.baseAddress!) { group in
                        -((group * rowsPerGroup)..<((group + 1) * rowsPerGroup)).reduce(Float(0)) { $0 + rowSums[$1] }
                    }
                }
            }
            return [dx]
        }
    }

    /// Performer's constants for head dimension `d` and `m` features:
    /// x̂ = x · D^(−1/4) (so that x̂·ŷ = x·y/√D), φ scaled by 1/√m.
    static func performerScales(d: Int, m: Int) -> (input: Float, feature: Float) {
        (Float(Foundation.pow(Double(d), -0.25)), Float(1 / Double(m).squareRoot()))
    }

    /// The keys' shifts of Performer: c of each [B, H] — the maximum of
    /// u = x̂ Wᵀ over its rows and features (a pass of
    /// heed_performer_features_f32 without features) — and where u equals it.
    struct PerformerShifts: Sendable {
        /// c per group [B · H].
        let values: [Float]
        /// The positions (row of [B · H · T], feature) where u equals its group's c, group after group.
        let maxima: [(row: Int, index: Int)]
    }

    static func performerKeyShifts(_ x: Tensor, transposed: Tensor, featureEpsilon: Float) -> PerformerShifts {
        let (groups, t, d, m) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3], transposed.shape[1])
        let rows = groups * t
        var rowMax = [Float](repeating: 0, count: rows)
        var maxIndex = [Int64](repeating: 0, count: rows), maxCount = [Int64](repeating: 0, count: rows)
        let (inputScale, featureScale) = performerScales(d: d, m: m)
        performerRows(x, transposed, rows: rows, m: m, inputScale, featureEpsilon, featureScale, shift: nil,
                      &rowMax, &maxIndex, &maxCount, features: nil)
        let values = (0..<groups).map { group in groupMaximum(rowMax, (group * t)..<((group + 1) * t)) }
        return PerformerShifts(values: values, maxima: tiedMaxima(x, transposed, rowsPerGroup: t, shifts: values, rowMax: rowMax,
                                                                  maxIndex: maxIndex, maxCount: maxCount))
    }

    /// The positions (r, i) where u_ri equals its group's shift, one group
    /// after another: from the row maxima, and heed_performer_maxima_f32 for
    /// rows where several entries tie.
    private static func tiedMaxima(_ x: Tensor, _ transposed: Tensor, rowsPerGroup: Int, shifts: [Float], rowMax: [Float],
                                   maxIndex: [Int64], maxCount: [Int64]) -> [(row: Int, index: Int)] {
        let (d, m) = (x.shape[3], transposed.shape[1])
        let inputScale = performerScales(d: d, m: m).input
        var maxima: [(row: Int, index: Int)] = []
        x.withUnsafeScalars { input in
            transposed.withUnsafeScalars { wt in
                var scratch = [Int64](repeating: 0, count: m)
                for (group, c) in shifts.enumerated() {
                    for r in (group * rowsPerGroup)..<((group + 1) * rowsPerGroup) where rowMax[r] == c {
                        guard maxCount[r] > 1 else {
                            maxima.append((r, Int(maxIndex[r])))
                            continue
                        }
                        let ties = Int(heed_performer_maxima_f32(input.baseAddress! + r * d, Int64(d), wt.baseAddress!, Int64(m),
                                                                 inputScale, c, &scratch, Int64(m)))
                        maxima += scratch.prefix(ties).map { (r, Int($0)) }
                    }
                }
            }
        }
        return maxima
    }

    /// The shifts' gradient ∂c of each group, shared by its tied maxima:
    /// ∂x_r += ∂c / (number of maxima) · W_i · inputScale for each maximum (r, i)
    /// (`maxima` group after group, as ``tiedMaxima`` lists them; x and `out` [rows, D]).
    static func addShiftGradient(_ maxima: [(row: Int, index: Int)], rowsPerGroup: Int, d: Int, w: UnsafePointer<Float>,
                                 inputScale: Float, into out: UnsafeMutablePointer<Float>, gradientOfShift: (Int) -> Float) {
        var start = 0
        while start < maxima.count {
            let group = maxima[start].row / rowsPerGroup
            var end = start
            while end < maxima.count && maxima[end].row / rowsPerGroup == group { end += 1 }
            let share = gradientOfShift(group) / Float(end - start) * inputScale
            for (row, index) in maxima[start..<end] {
                for j in 0..<d { out[row * d + j] += share * w[index * d + j] }
            }
            start = end
        }
    }

    /// Runs heed_performer_features_f32 over row ranges in parallel.
    private static func performerRows(_ x: Tensor, _ transposed: Tensor, rows: Int, m: Int, _ inputScale: Float,
                                      _ epsilon: Float, _ featureScale: Float, shift: [Float]?,
                                      _ rowMax: inout [Float], _ maxIndex: inout [Int64], _ maxCount: inout [Int64],
                                      features: UnsafeMutablePointer<Float>?) {
        let d = x.shape[3]
        let shiftTensor = shift.map { Tensor($0, shape: [rows]) }
        Tensor.withUnsafeScalars([x, transposed, shiftTensor]) { read in
            rowMax.withUnsafeMutableBufferPointer { maxima in
                maxIndex.withUnsafeMutableBufferPointer { indices in
                    maxCount.withUnsafeMutableBufferPointer { counts in
                        let input = LinearSendable((read[0]!, read[1]!, read[2], features))
                        let output = LinearSendable((maxima.baseAddress!, indices.baseAddress!, counts.baseAddress!))
                        LinearParallel.forEachRange(rows, elementsPerRow: m * d / 8) { range in
                            let (x, wt, shift, features) = input.value, (maxima, indices, counts) = output.value
                            let r = range.lowerBound
                            let status = heed_performer_features_f32(
                                x + r * d, Int64(range.count), Int64(d), wt, Int64(m), inputScale, epsilon, featureScale,
                                shift.map { $0 + r }, maxima + r, indices + r, counts + r, features.map { $0 + r * m })
                            precondition(status == 0, "Performer.features: out of memory for the scratch")
                        }
                    }
                }
            }
        }
    }

    /// The largest of `values[range]`, NaN if any is NaN (as `max` propagates it).
    private static func groupMaximum(_ values: [Float], _ range: Range<Int>) -> Float {
        var c = -Float.infinity
        for r in range {
            if values[r].isNaN { return .nan }
            c = Swift.max(c, values[r])
        }
        return c
    }

    // MARK: Random feature attention

    /// ``RandomFeatureAttention/features(of:)``, fused (`heed_random_fourier_features_f32`).
    /// Forward, per row of x [B, H, T, D], a block of rows at a time:
    ///
    /// ```
    /// (1) x̂ = x / max(‖x‖, 10⁻¹²)   (when normalising; else x̂ = x)
    /// (2) u = (x̂ W̃ᵀ) / σ                                              [T, m]
    /// (3) φ = [sin u, cos u] / √m                                     [T, 2m]  (vector sin/cos)
    /// ```
    ///
    /// Backward: (3) ∂u = φ_cos ∘ ∂φ_sin − φ_sin ∘ ∂φ_cos; (2) ∂x̂ = (∂u W̃) / σ;
    /// (1) ∂x = (∂x̂ − x̂ (x̂·∂x̂)) / ‖x‖ where ‖x‖ > 10⁻¹², else ∂x̂ / 10⁻¹².
    static func randomFourier(_ x: Tensor, projection: Tensor, sigma: Float, normalizesInputs: Bool) -> Tensor {
        let (b, h, t, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let m = projection.shape[0], rows = b * h * t
        let scale = Float(1 / Double(m).squareRoot())
        let transposed = Tensor.withoutGrad { projection.transposed() }    // W̃ᵀ [D, m]
        let features = Tensor(shape: [b, h, t, 2 * m]) { out in                             // [B, H, T, 2m]
            Tensor.withUnsafeScalars([x, transposed]) { read in
                let (input, target) = (LinearSendable((read[0]!, read[1]!)), LinearSendable(out.baseAddress!))
                LinearParallel.forEachRange(rows, elementsPerRow: m * d / 8) { range in
                    let (x, wt) = input.value, r = range.lowerBound
                    let status = heed_random_fourier_features_f32(x + r * d, Int64(range.count), Int64(d), wt, Int64(m),
                                                                  normalizesInputs ? 1 : 0, 1 / sigma, scale, target.value + r * 2 * m)
                    precondition(status == 0, "RandomFeatureAttention.features: out of memory for the scratch")
                }
            }
        }
        let saved = features.detached()
        return Tensor.custom("randomFourierFeatures", inputs: [x], output: features) { gradient in
            [Tensor(shape: x.shape) { out in                                                  // [B, H, T, D]
                Tensor.withUnsafeScalars([x, saved, gradient, projection]) { read in
                    let input = LinearSendable((read[0]!, read[1]!, read[2]!, read[3]!)), target = LinearSendable(out.baseAddress!)
                    LinearParallel.forEachRange(rows, elementsPerRow: m * d / 8) { range in
                        let (x, phi, grad, w) = input.value, r = range.lowerBound
                        let status = heed_random_fourier_features_backward_f32(
                            x + r * d, phi + r * 2 * m, grad + r * 2 * m, Int64(range.count), Int64(d), w, Int64(m),
                            normalizesInputs ? 1 : 0, 1 / sigma, target.value + r * d)
                        precondition(status == 0, "RandomFeatureAttention.features: out of memory for the backward's scratch")
                    }
                }
            }]
        }
    }

    // MARK: elu + 1

    /// ``LinearAttention/features(_:)``, fused: φ = x + 1 (x > 0), eˣ (x ≤ 0) in
    /// one pass; ∂x = ∂φ · (x > 0 ? 1 : φ).
    static func eluPlusOne(_ x: Tensor) -> Tensor {
        let count = x.count
        let features = Tensor(shape: x.shape) { out in
            x.withUnsafeScalars { input in
                let (source, target) = (LinearSendable(input.baseAddress!), LinearSendable(out.baseAddress!))
                LinearParallel.forEachRange(count, elementsPerRow: 1) { range in
                    heed_elu_plus_one_f32(source.value + range.lowerBound, target.value + range.lowerBound, Int64(range.count))
                }
            }
        }
        let saved = features.detached()
        return Tensor.custom("eluPlusOne", inputs: [x], output: features) { gradient in
            [Tensor(shape: x.shape) { out in
                Tensor.withUnsafeScalars([x, saved, gradient]) { read in
                    let target = LinearSendable(out.baseAddress!)
                    LinearParallel.forEachRange(count, elementsPerRow: 1) { range in
                        let offset = range.lowerBound
                        heed_elu_plus_one_backward_f32(read[0]! + offset, read[1]! + offset, read[2]! + offset,
                                                       target.value + offset, Int64(range.count))
                    }
                }
            }]
        }
    }
}
