import HeedTensor

// The reference path of the causal scan: the chunked prefix sums of
// KernelizedAttention.causal composed of Tensor ops and differentiated by the
// tape. The fused kernel (KernelizedAttention+Fused.swift) is tested against it.

extension KernelizedAttention {
    /// The causal scan composed of Tensor ops, chunk by chunk (see ``causal(queryFeatures:keyFeatures:value:chunkSize:denominatorEpsilon:decay:implementation:)``).
    static func referenceCausal(queryFeatures: Tensor, keyFeatures: Tensor, value: Tensor, chunkSize: Int,
                                denominatorEpsilon: Float, decay: Decay?) -> Tensor {
        let layout = Layout(queryFeatures, keyFeatures, value, "KernelizedAttention.causal")
        let (b, hkv, g, tq, tk) = (layout.batch, layout.keyHeads, layout.group, layout.queryLength, layout.keyLength)
        precondition(chunkSize >= 1, "KernelizedAttention.causal: chunkSize \(chunkSize) < 1")
        precondition(tq >= 1 && tk >= tq, "KernelizedAttention.causal: \(tq) queries and \(tk) keys (bottom-right alignment needs Tk ≥ Tq ≥ 1)")
        let shift = tk - tq
        var logDecay: Tensor?, inputScale: Tensor?
        if let decay {
            for (name, tensor) in [("logDecay", decay.logDecay), ("inputScale", decay.inputScale)] {
                precondition(tensor.shape == [b, hkv * g, tk],
                             "KernelizedAttention.causal: decay \(name) \(tensor.shape), expected [\(b), \(hkv * g), \(tk)]")
            }
            logDecay = decay.logDecay.reshaped([b, hkv, g, tk])                   // [B, Hkv, G, Tk]
            inputScale = decay.inputScale.reshaped([b, hkv, g, tk])               // [B, Hkv, G, Tk]
        }

        var state: Tensor?                                                       // [B, Hkv, G|1, F, Dv+1]
        var outputs: [Tensor] = []
        // Keys before the first query (Tk > Tq) only feed the state; then chunks
        // hold aligned queries and keys.
        let prefix = stride(from: 0, to: shift, by: chunkSize).map { $0..<Swift.min($0 + chunkSize, shift) }
        let aligned = stride(from: shift, to: tk, by: chunkSize).map { $0..<Swift.min($0 + chunkSize, tk) }
        for (index, range) in (prefix + aligned).enumerated() {
            let chunk = Chunk(layout: layout, range: range,
                              logDecay: logDecay?.sliced(axis: 3, range: range), inputScale: inputScale?.sliced(axis: 3, range: range))
            let isQueryChunk = index >= prefix.count
            if isQueryChunk {
                let queries = layout.queries.sliced(axis: 3, range: (range.lowerBound - shift)..<(range.upperBound - shift))
                outputs.append(chunk.output(queries: queries, state: state))   // [B, Hkv, G, C, Dv+1]
            }
            if index < prefix.count + aligned.count - 1 { state = chunk.advance(state) }
        }
        let result = outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs, axis: 3)   // [B, Hkv, G, Tq, Dv+1]
        return layout.normalized(result, epsilon: denominatorEpsilon)
    }
}

extension KernelizedAttention {
    /// The inputs viewed per key/value group, values extended by a ones column.
    struct Layout {
        let batch: Int, heads: Int, keyHeads: Int, group: Int, queryLength: Int, keyLength: Int, valueDimension: Int
        /// [B, Hkv, G, Tq, F]
        let queries: Tensor
        /// [B, Hkv, 1, Tk, F]
        let keys: Tensor
        /// [B, Hkv, 1, Tk, Dv+1]: the values and a column of ones (for the denominator).
        let values: Tensor

        init(_ queryFeatures: Tensor, _ keyFeatures: Tensor, _ value: Tensor, _ name: String) {
            precondition(queryFeatures.rank == 4 && keyFeatures.rank == 4 && value.rank == 4,
                         "\(name): features and values must be [B, H, T, F], got \(queryFeatures.shape), \(keyFeatures.shape), \(value.shape)")
            let (b, h, tq, f) = (queryFeatures.shape[0], queryFeatures.shape[1], queryFeatures.shape[2], queryFeatures.shape[3])
            let (hkv, tk) = (keyFeatures.shape[1], keyFeatures.shape[2])
            precondition(keyFeatures.shape[0] == b && keyFeatures.shape[3] == f,
                         "\(name): query features \(queryFeatures.shape) and key features \(keyFeatures.shape) disagree")
            precondition(hkv >= 1 && h % hkv == 0, "\(name): \(hkv) key/value heads do not divide \(h) query heads")
            precondition(value.shape[0] == b && value.shape[1] == hkv && value.shape[2] == tk,
                         "\(name): key features \(keyFeatures.shape) and value \(value.shape) disagree")
            precondition(tk >= 1, "\(name): no keys to attend to")
            (batch, heads, keyHeads, group, queryLength, keyLength, valueDimension) = (b, h, hkv, h / hkv, tq, tk, value.shape[3])
            queries = queryFeatures.reshaped([b, hkv, h / hkv, tq, f])                                   // [B, Hkv, G, Tq, F]
            keys = keyFeatures.unsqueezed(axis: 2)                                                       // [B, Hkv, 1, Tk, F]
            let ones = Tensor.ones([b, hkv, tk, 1])
            values = Tensor.concatenate([value, ones], axis: 3).unsqueezed(axis: 2)                     // [B, Hkv, 1, Tk, Dv+1]
        }

        /// Splits [.., Dv+1] into numerator and denominator and divides: [B, H, Tq, Dv].
        func normalized(_ result: Tensor, epsilon: Float) -> Tensor {
            let flat = result.reshaped([batch, heads, queryLength, valueDimension + 1])     // [B, H, Tq, Dv+1]
            let numerator = flat.sliced(axis: 3, range: 0..<valueDimension)                  // [B, H, Tq, Dv]
            var denominator = flat.sliced(axis: 3, range: valueDimension..<(valueDimension + 1))   // [B, H, Tq, 1]
            if epsilon != 0 { denominator = denominator + epsilon }
            return numerator / denominator
        }
    }

    /// One chunk of positions [s, e) of the causal scan.
    struct Chunk {
        /// [B, Hkv, 1, C, F]
        let keys: Tensor
        /// [B, Hkv, 1, C, Dv+1]
        let values: Tensor
        let length: Int
        /// a_t: running sum of log decay inside the chunk, [B, Hkv, G, C] (nil: no decay).
        let cumulativeLogDecay: Tensor?
        /// [B, Hkv, G, C]
        let inputScale: Tensor?

        init(layout: Layout, range: Range<Int>, logDecay: Tensor?, inputScale: Tensor?) {
            keys = layout.keys.sliced(axis: 3, range: range)
            values = layout.values.sliced(axis: 3, range: range)
            let c = range.count
            length = c
            // a_t = Σ_{l ≤ t} logDecay_l, as a product with an upper-triangular [C, C] of ones.
            cumulativeLogDecay = logDecay.map {
                $0.unsqueezed(axis: 3).matmul(Chunk.triangle(c, upper: true)).squeezed(axis: 3)   // [B, Hkv, G, C]
            }
            self.inputScale = inputScale
        }

        /// [C, C] of ones on and below (or, `upper`, on and above) the diagonal.
        static func triangle(_ c: Int, upper: Bool) -> Tensor {
            var values = [Float](repeating: 0, count: c * c)
            for i in 0..<c { for j in 0..<c where upper ? j >= i : j <= i { values[i * c + j] = 1 } }
            return Tensor(values, shape: [c, c])
        }

        /// The chunk's rows of the unnormalised result for `queries` [B, Hkv, G, C, F]:
        /// [B, Hkv, G, C, Dv+1].
        func output(queries: Tensor, state: Tensor?) -> Tensor {
            let scores = Tensor.matmul(queries, keys, transposeB: true)                  // [B, Hkv, G, C, C]
            if let a = cumulativeLogDecay, let scale = inputScale {
                // e^{a_t − a_j} · inputScale_j for j ≤ t, 0 above the diagonal (−∞ before exp).
                let future = 1 - Chunk.triangle(length, upper: false)
                let pairDecay = (a.unsqueezed(axis: 4) - a.unsqueezed(axis: 3)).maskedFill(future, -.infinity).exp()
                    * scale.unsqueezed(axis: 3)                                             // [B, Hkv, G, C, C]
                let within = (scores * pairDecay).matmul(values)                            // [B, Hkv, G, C, Dv+1]
                guard let state else { return within }
                return within + queries.matmul(state) * a.exp().unsqueezed(axis: 4)
            }
            let within = (scores * Chunk.triangle(length, upper: false)).matmul(values)     // [B, Hkv, G, C, Dv+1]
            guard let state else { return within }
            return within + queries.matmul(state)
        }

        /// The state after this chunk: [B, Hkv, G|1, F, Dv+1].
        func advance(_ state: Tensor?) -> Tensor {
            if let a = cumulativeLogDecay, let scale = inputScale {
                let last = a.sliced(axis: 3, range: (length - 1)..<length)                 // [B, Hkv, G, 1]
                let toEnd = ((last - a).exp() * scale).unsqueezed(axis: 4)                  // [B, Hkv, G, C, 1]
                let added = Tensor.matmul(keys, values * toEnd, transposeA: true)           // [B, Hkv, G, F, Dv+1]
                guard let state else { return added }
                return state * last.exp().unsqueezed(axis: 4) + added
            }
            let added = Tensor.matmul(keys, values, transposeA: true)                       // [B, Hkv, 1, F, Dv+1]
            guard let state else { return added }
            return state + added
        }
    }
}
