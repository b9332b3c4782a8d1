import CHeedKernels
import HeedTensor

// The fast paths of kernelized attention: one call of a C kernel
// (CHeedKernels/linear_scan.c for the causal scan, linear_bidirectional.c for
// the bidirectional form) per key/value head and group of query heads, the
// heads split over the cores, recorded on the tape as one op whose backward is
// the kernel's hand-written backward. Tests hold them to the composed
// reference (KernelizedAttention+Reference.swift, and the composed
// bidirectional form in KernelizedAttention.swift).

extension KernelizedAttention {
    /// Causal or bidirectional attention by the fused kernels (see
    /// ``causal(queryFeatures:keyFeatures:value:chunkSize:denominatorEpsilon:decay:implementation:)``
    /// and ``bidirectional(queryFeatures:keyFeatures:value:denominatorEpsilon:implementation:)``).
    ///
    /// `featureMap`: what `queryFeatures` and `keyFeatures` hold (``FeatureMap``).
    static func fused(queryFeatures: Tensor, keyFeatures: Tensor, value: Tensor, causal: Bool, chunkSize: Int,
                      denominatorEpsilon: Float, decay: Decay?, featureMap: FeatureMap = .given) -> Tensor {
        let plan = ScanPlan(queryFeatures, keyFeatures, value, causal: causal, chunkSize: chunkSize, epsilon: denominatorEpsilon,
                            decay: decay, featureMap: featureMap)
        let inputs = [queryFeatures, keyFeatures, value] + (decay.map { [$0.logDecay, $0.inputScale] } ?? [])
        let recording = Tensor.isGradEnabled && inputs.contains { $0.requiresGrad }
        let saved = ScanSaved(plan: plan, keepsCheckpoints: recording)
        let output = Tensor(shape: [plan.batch, plan.heads, plan.queryLength, plan.valueDimension]) { out in   // [B, H, Tq, Dv]
            Tensor.withUnsafeScalars(inputs) { pointers in
                plan.withMapParameters { parameters in
                    LinearParallel.forEach(plan.items) { item in
                        let status = plan.run(item, parameters) { offsets, shape in
                            let (queries, keys, values) = (pointers[0]! + offsets.queries, pointers[1]! + offsets.keys, pointers[2]! + offsets.values)
                            return plan.isCausal
                                ? heed_linear_scan_forward(shape, queries, keys, values,
                                                           pointers.count > 3 ? pointers[3]! + offsets.decay : nil,
                                                           pointers.count > 4 ? pointers[4]! + offsets.decay : nil,
                                                           out.baseAddress! + offsets.out, saved.denominator + offsets.rows, saved.checkpoints(item))
                                : heed_linear_bidirectional_forward(shape, queries, keys, values, out.baseAddress! + offsets.out,
                                                                    saved.denominator + offsets.rows, saved.checkpoints(item))
                        }
                        precondition(status == 0, "KernelizedAttention: out of memory for the kernel's scratch")
                    }
                }
            }
        }
        guard recording else { return output }
        let savedOutput = output.detached()   // not `output`: the closure must not hold the op's own result (a cycle)
        return Tensor.custom("linearScan", inputs: inputs, output: output) { gradient in
            plan.backward(inputs: inputs, output: savedOutput, saved: saved, gradient: gradient)
        }
    }

    /// How an attention is cut into kernel calls: one work item per (batch,
    /// key/value head, part of its query-head group). Without decay a group
    /// shares one state; it is split into parts only when there are fewer
    /// key/value heads than cores (each part then recomputes the shared state).
    struct ScanPlan: Sendable {
        let isCausal: Bool
        let batch: Int, heads: Int, keyHeads: Int, group: Int, queryLength: Int, keyLength: Int
        let features: Int, valueDimension: Int, chunkSize: Int, epsilon: Float, hasDecay: Bool
        let featureMap: FeatureMap
        /// The row width of the query and key tensors: F, or D for random Fourier features.
        let inputWidth: Int
        /// Query heads of a group per item: the group is split into `parts`.
        let parts: Int
        var items: Int { batch * keyHeads * parts }

        init(_ queryFeatures: Tensor, _ keyFeatures: Tensor, _ value: Tensor, causal: Bool, chunkSize: Int, epsilon: Float,
             decay: Decay?, featureMap: FeatureMap) {
            let name = causal ? "KernelizedAttention.causal" : "KernelizedAttention.bidirectional"
            precondition(queryFeatures.rank == 4 && keyFeatures.rank == 4 && value.rank == 4,
                         "\(name): features and values must be [B, H, T, F], got \(queryFeatures.shape), \(keyFeatures.shape), \(value.shape)")
            let (b, h, tq, width) = (queryFeatures.shape[0], queryFeatures.shape[1], queryFeatures.shape[2], queryFeatures.shape[3])
            let f = featureMap.projection?.features ?? width
            let (hkv, tk) = (keyFeatures.shape[1], keyFeatures.shape[2])
            precondition(keyFeatures.shape[0] == b && keyFeatures.shape[3] == width && (featureMap.projection.map { $0.w.shape[1] == width } ?? true),
                         "\(name): query features \(queryFeatures.shape) and key features \(keyFeatures.shape) disagree")
            precondition(hkv >= 1 && h % hkv == 0, "\(name): \(hkv) key/value heads do not divide \(h) query heads")
            precondition(value.shape[0] == b && value.shape[1] == hkv && value.shape[2] == tk,
                         "\(name): key features \(keyFeatures.shape) and value \(value.shape) disagree")
            precondition(chunkSize >= 1, "\(name): chunkSize \(chunkSize) < 1")
            precondition(tk >= 1, "\(name): no keys to attend to")
            precondition(!causal || (tq >= 1 && tk >= tq), "\(name): \(tq) queries and \(tk) keys (bottom-right alignment needs Tk ≥ Tq ≥ 1)")
            precondition(causal || decay == nil, "\(name): a decay is defined for the causal form only")
            precondition(f >= 1 && value.shape[3] >= 1, "\(name): empty features \(f) or value dimension \(value.shape[3])")
            if let decay {
                for (label, tensor) in [("logDecay", decay.logDecay), ("inputScale", decay.inputScale)] {
                    precondition(tensor.shape == [b, h, tk], "\(name): decay \(label) \(tensor.shape), expected [\(b), \(h), \(tk)]")
                }
            }
            isCausal = causal
            (batch, heads, keyHeads, group, queryLength, keyLength) = (b, h, hkv, h / hkv, tq, tk)
            (features, valueDimension, self.chunkSize, self.epsilon, hasDecay) = (f, value.shape[3], chunkSize, epsilon, decay != nil)
            (self.featureMap, self.inputWidth) = (featureMap, width)
            let groupsOfHeads = b * hkv
            parts = groupsOfHeads >= LinearParallel.cores ? 1
                : Swift.min(group, (LinearParallel.cores + groupsOfHeads - 1) / groupsOfHeads)
        }

        /// Element offsets of one item into the flat tensors.
        struct Offsets {
            /// into φ(Q) [B, H, Tq, F], φ(K) [B, Hkv, Tk, F], V [B, Hkv, Tk, Dv], decay [B, H, Tk], out [B, H, Tq, Dv]
            let queries: Int, keys: Int, values: Int, decay: Int, out: Int
            /// into the per-query-row arrays [B, H, Tq] (the denominators)
            let rows: Int
            /// into per-part copies of ∂φ(K), ∂V: [parts, B, Hkv, Tk, F | Dv]
            let keyGradients: Int, valueGradients: Int
        }

        /// The map parameters of the kernels (heed_linear_scan_shape's
        /// `random_fourier`, `performer`), valid during ``withMapParameters(_:)``'s body.
        struct MapParameters {
            let randomFourier: UnsafePointer<heed_linear_random_fourier>?
            /// Performer's, less the per-item fields (`key_shift`, `key_row_sum`) that ``run(_:_:keyRowSums:_:)`` sets.
            let performer: heed_linear_performer?
        }

        /// Runs `body` with the kernels' map parameters (none without a map that has them).
        func withMapParameters(_ body: (MapParameters) -> Void) {
            switch featureMap {
            case .given, .eluPlusOne:
                body(MapParameters(randomFourier: nil, performer: nil))
            case .randomFourier(let map):
                Tensor.withUnsafeScalars([map.transposed, map.projection]) { w in
                    var parameters = heed_linear_random_fourier(w_transposed: w[0], w: w[1], input_width: Int64(inputWidth),
                                                                normalize: map.normalizesInputs ? 1 : 0, angle_scale: map.angleScale,
                                                                scale: map.scale)
                    withUnsafePointer(to: &parameters) { body(MapParameters(randomFourier: $0, performer: nil)) }
                }
            case .performer(let map):
                Tensor.withUnsafeScalars([map.transposed, map.projection]) { w in
                    let parameters = heed_linear_performer(w_transposed: w[0], w: w[1], input_width: Int64(inputWidth),
                                                           input_scale: map.inputScale, epsilon: map.featureEpsilon,
                                                           feature_scale: map.featureScale, key_shift: 0, key_row_sum: nil)
                    body(MapParameters(randomFourier: nil, performer: parameters))
                }
            }
        }

        /// Calls `kernel` with item `item`'s offsets and kernel shape, its map
        /// parameters set (for Performer: the item's key shift, and `keyRowSums[item]`
        /// as the backward's `key_row_sum`); returns the kernel's status.
        func run(_ item: Int, _ parameters: MapParameters, keyRowSums: UnsafeMutablePointer<Double>? = nil,
                 _ kernel: (Offsets, UnsafePointer<heed_linear_scan_shape>) -> Int32) -> Int32 {
            var (offsets, shape) = self.item(item)
            shape.random_fourier = parameters.randomFourier
            guard var performer = parameters.performer, case .performer(let map) = featureMap else { return kernel(offsets, &shape) }
            performer.key_shift = map.keyShifts.values[item / parts]
            performer.key_row_sum = keyRowSums.map { $0 + item }
            return withUnsafePointer(to: &performer) { pointer in
                shape.performer = pointer
                return kernel(offsets, &shape)
            }
        }

        /// The query heads of item `item`'s part of its group.
        func headRange(_ item: Int) -> Range<Int> {
            let part = item % parts
            return (group * part / parts)..<(group * (part + 1) / parts)
        }

        func item(_ item: Int) -> (Offsets, heed_linear_scan_shape) {
            let groupIndex = item / parts, part = item % parts       // groupIndex = b · Hkv + kv head
            let firstHead = groupIndex * group + headRange(item).lowerBound   // b · H + h (query heads of a group are consecutive)
            let offsets = Offsets(queries: firstHead * queryLength * inputWidth, keys: groupIndex * keyLength * inputWidth,
                                  values: groupIndex * keyLength * valueDimension, decay: firstHead * keyLength,
                                  out: firstHead * queryLength * valueDimension, rows: firstHead * queryLength,
                                  keyGradients: (part * batch * keyHeads + groupIndex) * keyLength * inputWidth,
                                  valueGradients: (part * batch * keyHeads + groupIndex) * keyLength * valueDimension)
            let shape = heed_linear_scan_shape(heads: Int64(headRange(item).count), query_length: Int64(queryLength),
                                               key_length: Int64(keyLength), features: Int64(features),
                                               value_dim: Int64(valueDimension), chunk: Int64(chunkSize),
                                               epsilon: epsilon, has_decay: hasDecay ? 1 : 0,
                                               feature_map: Int32(bitPattern: featureMap.kind.rawValue), random_fourier: nil, performer: nil)
            return (offsets, shape)
        }

        /// The kernel's backward for every item: gradients of φ(Q), φ(K), V and
        /// (with decay) logDecay and inputScale, nil for inputs without `requiresGrad`.
        func backward(inputs: [Tensor], output: Tensor, saved: ScanSaved, gradient: Tensor) -> [Tensor?] {
            let keyCount = batch * keyHeads * keyLength
            let shapes = [inputs[0].shape, [parts, keyCount * inputWidth], [parts, keyCount * valueDimension]]   // ∂Q; ∂K, ∂V per part
                + (hasDecay ? [inputs[3].shape, inputs[4].shape] : [])                                          // ∂logDecay, ∂inputScale [B, H, Tk]
            let made = Tensor.filling(shapes) { write in
                Tensor.withUnsafeScalars(inputs + [output, gradient]) { read in
                    var keyRowSums = [Double](repeating: 0, count: items)     // Performer's backward: Σ row_sum of each item's keys
                    keyRowSums.withUnsafeMutableBufferPointer { sums in
                        let rowSums = LinearSendable(sums.baseAddress!)
                        withMapParameters { parameters in
                            LinearParallel.forEach(items) { item in
                                let status = run(item, parameters, keyRowSums: rowSums.value) { offsets, shape in
                                    let (queries, keys, values) = (read[0]! + offsets.queries, read[1]! + offsets.keys, read[2]! + offsets.values)
                                    let (out, gradOut) = (read[read.count - 2]! + offsets.out, read[read.count - 1]! + offsets.out)
                                    let (dQueries, dKeys, dValues) = (write[0] + offsets.queries, write[1] + offsets.keyGradients,
                                                                      write[2] + offsets.valueGradients)
                                    return isCausal
                                        ? heed_linear_scan_backward(shape, queries, keys, values,
                                                                    hasDecay ? read[3]! + offsets.decay : nil, hasDecay ? read[4]! + offsets.decay : nil,
                                                                    out, saved.denominator + offsets.rows, saved.checkpoints(item), gradOut,
                                                                    dQueries, dKeys, dValues,
                                                                    hasDecay ? write[3] + offsets.decay : nil, hasDecay ? write[4] + offsets.decay : nil)
                                        : heed_linear_bidirectional_backward(shape, queries, keys, values, out, saved.denominator + offsets.rows,
                                                                             saved.checkpoints(item), gradOut, dQueries, dKeys, dValues)
                                }
                                precondition(status == 0, "KernelizedAttention: out of memory for the backward's scratch")
                            }
                        }
                    }
                    if case .performer(let map) = featureMap {
                        // The keys' shift c of each key/value head: ∂c = −Σ row_sum over its keys (all parts),
                        // shared by its maxima (part 0's rows of ∂K, which the parts' sum carries).
                        map.projection.withUnsafeScalars { w in
                            FusedFeatureMaps.addShiftGradient(map.keyShifts.maxima, rowsPerGroup: keyLength, d: inputWidth, w: w.baseAddress!,
                                                              inputScale: map.inputScale, into: write[1]) { group in
                                -Float((0..<parts).reduce(0.0) { $0 + keyRowSums[group * parts + $1] })
                            }
                        }
                    }
                }
            }
            let (gradQuery, gradKeyParts, gradValueParts) = (made[0], made[1], made[2])
            let (gradLogDecay, gradInputScale) = hasDecay ? (made[3], made[4]) : (nil, nil)
            let gradKey = (parts == 1 ? gradKeyParts : gradKeyParts.sum(axis: 0)).reshaped(inputs[1].shape)       // [B, Hkv, Tk, F or D]
            let gradValue = (parts == 1 ? gradValueParts : gradValueParts.sum(axis: 0)).reshaped(inputs[2].shape) // [B, Hkv, Tk, Dv]
            let gradients: [Tensor?] = [gradQuery, gradKey, gradValue] + (hasDecay ? [gradLogDecay, gradInputScale] : [])
            return zip(inputs, gradients).map { input, gradient in input.requiresGrad ? gradient : nil }
        }
    }

    /// What the fused kernels' query and key inputs hold: the features
    /// themselves, or q and k for the kernels to map chunk by chunk as they
    /// read them (no [B, H, T, F] feature tensors; the gradients are then
    /// those of q and k).
    enum FeatureMap: Sendable {
        /// φ(Q), φ(K) [.., F].
        case given
        /// q, k [.., D]; φ = elu + 1 (F = D).
        case eluPlusOne
        /// q, k [.., D]; RFA's random Fourier features (F = 2m).
        case randomFourier(RandomFourierMap)
        /// q, k [.., D]; Performer's positive features (F = m).
        case performer(PerformerMap)

        /// The kernels' name for it.
        var kind: heed_linear_feature_map {
            switch self {
            case .given: HEED_LINEAR_FEATURES_GIVEN
            case .eluPlusOne: HEED_LINEAR_FEATURES_ELU_PLUS_ONE
            case .randomFourier: HEED_LINEAR_FEATURES_RANDOM_FOURIER
            case .performer: HEED_LINEAR_FEATURES_PERFORMER
            }
        }

        /// W [m, D] of the maps with a projection, and F for it.
        var projection: (w: Tensor, features: Int)? {
            switch self {
            case .given, .eluPlusOne: nil
            case .randomFourier(let map): (map.projection, 2 * map.projection.shape[0])
            case .performer(let map): (map.projection, map.projection.shape[0])
            }
        }
    }

    /// RFA's random Fourier features for the kernels to apply chunk by chunk
    /// (`HEED_LINEAR_FEATURES_RANDOM_FOURIER`): φ(x) = [sin a, cos a] · scale,
    /// a = (x̂ Wᵀ) · angleScale, x̂ = x / ‖x‖ when `normalizesInputs`.
    struct RandomFourierMap: @unchecked Sendable {
        // @unchecked: the tensors are constants that the kernels only read.
        /// W [m, D] and Wᵀ [D, m].
        let projection: Tensor, transposed: Tensor
        let normalizesInputs: Bool
        let angleScale: Float, scale: Float

        init(projection: Tensor, sigma: Float, normalizesInputs: Bool) {
            self.projection = projection.detached()
            transposed = Tensor.withoutGrad { projection.transposed() }
            self.normalizesInputs = normalizesInputs
            (angleScale, scale) = (1 / sigma, Float(1 / Double(projection.shape[0]).squareRoot()))
        }
    }

    /// Performer's positive features for the kernels to apply chunk by chunk
    /// (`HEED_LINEAR_FEATURES_PERFORMER`, ``Performer``): φ(x) = (exp(x̂Wᵀ − ½‖x̂‖² − c) + ε) · featureScale,
    /// x̂ = x · inputScale, c = each query row's maximum of x̂Wᵀ, or for keys the
    /// maximum over the key/value head (found here, by a first pass over the keys).
    struct PerformerMap: @unchecked Sendable {
        // @unchecked: the tensors are constants that the kernels only read.
        /// W [m, D] and Wᵀ [D, m].
        let projection: Tensor, transposed: Tensor
        let inputScale: Float, featureEpsilon: Float, featureScale: Float
        /// The keys' shifts, one per [B, Hkv], and where they are attained.
        let keyShifts: FusedFeatureMaps.PerformerShifts

        init(projection: Tensor, featureEpsilon: Float, key: Tensor) {
            self.projection = projection.detached()
            transposed = Tensor.withoutGrad { projection.transposed() }
            (inputScale, featureScale) = FusedFeatureMaps.performerScales(d: projection.shape[1], m: projection.shape[0])
            self.featureEpsilon = featureEpsilon
            keyShifts = FusedFeatureMaps.performerKeyShifts(key, transposed: transposed, featureEpsilon: featureEpsilon)
        }
    }

    /// What the forward keeps for the backward: the denominators φ(q)·z + ε
    /// [B, H, Tq] and, when recording, each item's checkpointed states (the
    /// causal scan) or its summary φ(K)ᵀ[V | 1] (the bidirectional form).
    final class ScanSaved: @unchecked Sendable {
        // @unchecked: the buffers are written only by the forward's items, each
        // in its own disjoint range, before the object is shared; afterwards
        // they are only read.
        let denominator: UnsafeMutablePointer<Float>
        private let checkpointBuffer: UnsafeMutablePointer<Float>?
        private let checkpointStride: Int

        init(plan: ScanPlan, keepsCheckpoints: Bool) {
            let rows = plan.batch * plan.heads * plan.queryLength
            denominator = .allocate(capacity: Swift.max(rows, 1))
            guard keepsCheckpoints else { (checkpointBuffer, checkpointStride) = (nil, 0); return }
            // The largest item (its part of the group has the most heads) sets the stride.
            let states = plan.hasDecay ? (plan.group + plan.parts - 1) / plan.parts : 1
            var count = 1
            if plan.isCausal {
                plan.withMapParameters { parameters in
                    count = Int(plan.run(0, parameters) { _, shape in Int32(heed_linear_scan_checkpoint_count(shape)) })
                }
            }
            checkpointStride = count * states * plan.features * (plan.valueDimension + 1)
            checkpointBuffer = .allocate(capacity: Swift.max(checkpointStride * plan.items, 1))
        }

        func checkpoints(_ item: Int) -> UnsafeMutablePointer<Float>? { checkpointBuffer.map { $0 + item * checkpointStride } }

        deinit {
            denominator.deallocate()
            checkpointBuffer?.deallocate()
        }
    }
}
