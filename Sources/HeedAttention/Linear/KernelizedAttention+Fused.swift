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
    /// `featureMap`: what `queryFeatures` and `keyFeatures` hold — the
    /// features (`HEED_LINEAR_FEATURES_GIVEN`), or q and k for the kernels to
    /// map chunk by chunk (`HEED_LINEAR_FEATURES_ELU_PLUS_ONE`: no [T, F]
    /// feature tensor, and the gradients are those of q and k).
    ///
    /// `itemFeatures`: instead, `queryFeatures` and `keyFeatures` are q and k
    /// and each work item maps its own heads' rows into scratch memory before
    /// the kernel runs (and again in the backward): only the items in flight
    /// hold features, not a [B, H, T, F] tensor per call.
    static func fused(queryFeatures: Tensor, keyFeatures: Tensor, value: Tensor, causal: Bool, chunkSize: Int,
                      denominatorEpsilon: Float, decay: Decay?,
                      featureMap: heed_linear_feature_map = HEED_LINEAR_FEATURES_GIVEN, itemFeatures: ItemFeatureMap? = nil) -> Tensor {
        let plan = ScanPlan(queryFeatures, keyFeatures, value, causal: causal, chunkSize: chunkSize, epsilon: denominatorEpsilon,
                            decay: decay, featureMap: featureMap, itemFeatures: itemFeatures)
        let inputs = [queryFeatures, keyFeatures, value] + (decay.map { [$0.logDecay, $0.inputScale] } ?? [])
        let recording = Tensor.isGradEnabled && inputs.contains { $0.requiresGrad }
        let saved = ScanSaved(plan: plan, keepsCheckpoints: recording)
        let output = Tensor(shape: [plan.batch, plan.heads, plan.queryLength, plan.valueDimension]) { out in   // [B, H, Tq, Dv]
            Tensor.withUnsafeScalars(inputs) { pointers in
                LinearParallel.forEach(plan.items) { item in
                    let (offsets, shape) = plan.item(item)
                    var scanShape = shape
                    plan.withItemFeatures(item, pointers[0]! + offsets.queries, pointers[1]! + offsets.keys) { queries, keys, _ in
                    let values = pointers[2]! + offsets.values
                    let status = plan.isCausal
                        ? heed_linear_scan_forward(&scanShape, queries, keys, values,
                                                   pointers.count > 3 ? pointers[3]! + offsets.decay : nil,
                                                   pointers.count > 4 ? pointers[4]! + offsets.decay : nil,
                                                   out.baseAddress! + offsets.out, saved.denominator + offsets.rows, saved.checkpoints(item))
                        : heed_linear_bidirectional_forward(&scanShape, queries, keys, values, out.baseAddress! + offsets.out,
                                                            saved.denominator + offsets.rows, saved.checkpoints(item))
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
        let featureMap: heed_linear_feature_map
        /// The row width of the query and key tensors: F, or D when they are mapped per item.
        let inputWidth: Int
        let itemFeatures: ItemFeatureMap?
        /// Query heads of a group per item: the group is split into `parts`.
        let parts: Int
        var items: Int { batch * keyHeads * parts }

        init(_ queryFeatures: Tensor, _ keyFeatures: Tensor, _ value: Tensor, causal: Bool, chunkSize: Int, epsilon: Float,
             decay: Decay?, featureMap: heed_linear_feature_map, itemFeatures: ItemFeatureMap?) {
            let name = causal ? "KernelizedAttention.causal" : "KernelizedAttention.bidirectional"
            precondition(queryFeatures.rank == 4 && keyFeatures.rank == 4 && value.rank == 4,
                         "\(name): features and values must be [B, H, T, F], got \(queryFeatures.shape), \(keyFeatures.shape), \(value.shape)")
            let (b, h, tq, width) = (queryFeatures.shape[0], queryFeatures.shape[1], queryFeatures.shape[2], queryFeatures.shape[3])
            let f = itemFeatures?.width ?? width
            let (hkv, tk) = (keyFeatures.shape[1], keyFeatures.shape[2])
            precondition(keyFeatures.shape[0] == b && keyFeatures.shape[3] == width && (itemFeatures.map { $0.inputWidth == width } ?? true),
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
            (self.featureMap, self.inputWidth, self.itemFeatures) = (featureMap, width, itemFeatures)
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

        /// Runs `body` with the item's query and key features — the inputs
        /// themselves, or (``itemFeatures``) its rows mapped into scratch — and,
        /// when `gradients` (∂Q, ∂K of the item) are given, where the kernel's
        /// backward writes ∂φ(Q), ∂φ(K): those, or scratch whose ∂φ the map then
        /// turns into ∂Q, ∂K after `body`.
        func withItemFeatures(_ item: Int, _ queries: UnsafePointer<Float>, _ keys: UnsafePointer<Float>,
                              gradients: (queries: UnsafeMutablePointer<Float>, keys: UnsafeMutablePointer<Float>)? = nil,
                              _ body: (UnsafePointer<Float>, UnsafePointer<Float>,
                                       (queries: UnsafeMutablePointer<Float>, keys: UnsafeMutablePointer<Float>)?) -> Void) {
            guard let map = itemFeatures else { return body(queries, keys, gradients) }
            let (queryRows, f) = (headRange(item).count * queryLength, features)
            let counts = [queryRows * f, keyLength * f] + (gradients == nil ? [] : [queryRows * f, keyLength * f])
            withScratchBuffers(counts) { scratch in
                map.apply(queries, queryRows, scratch[0])
                map.apply(keys, keyLength, scratch[1])
                body(scratch[0], scratch[1], gradients == nil ? nil : (scratch[2], scratch[3]))
                guard let gradients else { return }
                map.backward(queries, scratch[0], scratch[2], queryRows, gradients.queries)
                map.backward(keys, scratch[1], scratch[3], keyLength, gradients.keys)
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
                                               feature_map: Int32(bitPattern: featureMap.rawValue))
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
                    LinearParallel.forEach(items) { item in
                        let (offsets, shape) = self.item(item)
                        var scanShape = shape
                        let (rawQueries, rawKeys) = (read[0]! + offsets.queries, read[1]! + offsets.keys)
                        let (gradQueries, gradKeys) = (write[0] + offsets.queries, write[1] + offsets.keyGradients)
                        withItemFeatures(item, rawQueries, rawKeys, gradients: (gradQueries, gradKeys)) { queries, keys, gradients in
                        let values = read[2]! + offsets.values
                        let (out, gradOut) = (read[read.count - 2]! + offsets.out, read[read.count - 1]! + offsets.out)
                        let (dQueries, dKeys, dValues) = (gradients!.queries, gradients!.keys, write[2] + offsets.valueGradients)
                        let status = isCausal
                            ? heed_linear_scan_backward(&scanShape, queries, keys, values,
                                                        hasDecay ? read[3]! + offsets.decay : nil, hasDecay ? read[4]! + offsets.decay : nil,
                                                        out, saved.denominator + offsets.rows, saved.checkpoints(item), gradOut,
                                                        dQueries, dKeys, dValues,
                                                        hasDecay ? write[3] + offsets.decay : nil, hasDecay ? write[4] + offsets.decay : nil)
                            : heed_linear_bidirectional_backward(&scanShape, queries, keys, values, out, saved.denominator + offsets.rows,
                                                                 saved.checkpoints(item), gradOut, dQueries, dKeys, dValues)
                        precondition(status == 0, "KernelizedAttention: out of memory for the backward's scratch")
                        }
                    }
                }
            }
            let (gradQuery, gradKeyParts, gradValueParts) = (made[0], made[1], made[2])
            let (gradLogDecay, gradInputScale) = hasDecay ? (made[3], made[4]) : (nil, nil)
            let gradKey = (parts == 1 ? gradKeyParts : gradKeyParts.sum(axis: 0)).reshaped(inputs[1].shape)       // [B, Hkv, Tk, F]
            let gradValue = (parts == 1 ? gradValueParts : gradValueParts.sum(axis: 0)).reshaped(inputs[2].shape) // [B, Hkv, Tk, Dv]
            let gradients: [Tensor?] = [gradQuery, gradKey, gradValue] + (hasDecay ? [gradLogDecay, gradInputScale] : [])
            return zip(inputs, gradients).map { input, gradient in input.requiresGrad ? gradient : nil }
        }
    }

    /// A feature map that the fused path applies per work item (see
    /// ``fused(queryFeatures:keyFeatures:value:causal:chunkSize:denominatorEpsilon:decay:featureMap:itemFeatures:)``):
    /// row-wise, so any rows can be mapped on their own.
    struct ItemFeatureMap: @unchecked Sendable {
        // @unchecked: the closures only read what they captured (the map's
        // constant projection), so concurrent items may call them.
        /// F, the features of a row.
        let width: Int
        /// D, the width of a row of q or k.
        let inputWidth: Int
        /// φ of `rows` rows: (x [rows, D], rows, out [rows, F]).
        let apply: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void
        /// ∂x from ∂φ: (x [rows, D], φ(x) [rows, F], ∂φ [rows, F], rows, ∂x [rows, D]).
        let backward: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void
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
            var (_, shape) = plan.item(0)
            let states = plan.hasDecay ? (plan.group + plan.parts - 1) / plan.parts : 1
            let count = plan.isCausal ? Int(heed_linear_scan_checkpoint_count(&shape)) : 1
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
