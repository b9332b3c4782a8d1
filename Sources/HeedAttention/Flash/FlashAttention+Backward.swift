import CHeedKernels
import HeedTensor

extension FlashAttention {
    /// The `flashAttention` op's backward: ∂L/∂(q, k, v, differentiable biases) from ∂L/∂O.
    static func backwardGradients(_ problem: FlashProblem, _ tiles: FlashTiles, query: Tensor, key: Tensor, value: Tensor,
                                  output: Tensor, logSumExp: Tensor, dOutput: Tensor) -> [Tensor?] {
        let p = problem
        let dQuery = Tensor.zeros([p.batch, p.heads, p.queryLength, p.depth])          // [B, H, Tq, D]
        let dKey = Tensor.zeros([p.batch, p.keyHeads, p.keyLength, p.depth])           // [B, Hkv, Tk, D]
        let dValue = Tensor.zeros([p.batch, p.keyHeads, p.keyLength, p.valueDepth])    // [B, Hkv, Tk, Dv]
        let biasInputs = tiles.differentiableBiases
        let dBiases = biasInputs.map { $0.map { Tensor.zeros($0.shape) } }
        let inputs = [query, key, value, output, logSumExp, dOutput]
        let outputs = [dQuery, dKey, dValue] + dBiases.compactMap { $0 }
        withPointers(inputs) { read in
            withMutablePointers(outputs) { write in
                var biasOutputs: [UnsafeMutablePointer<Float>?] = []
                var next = 3
                for dBias in dBiases {
                    biasOutputs.append(dBias == nil ? nil : write[next])
                    if dBias != nil { next += 1 }
                }
                backward(p, tiles, query: read[0], key: read[1], value: read[2], output: read[3], logSumExp: read[4],
                         dOutput: read[5], dQuery: write[0], dKey: write[1], dValue: write[2], dBiases: biasOutputs)
            }
        }
        return [dQuery, dKey, dValue] + dBiases.compactMap { $0 }
    }

    /// Algorithm 2 over every (batch, key/value head, key tile). Accumulates into
    /// zeroed `dQuery` [B, H, Tq, D], `dKey` [B, Hkv, Tk, D], `dValue`
    /// [B, Hkv, Tk, Dv] and `dBiases` (laid out like each differentiable bias).
    ///
    /// A work item owns one key tile of one key/value head — its dK and dV rows
    /// are written by no other item — and walks the query tiles of every query
    /// head of the group. dQ rows are shared by all key tiles: worker 0 adds
    /// into dQuery itself, every other worker into a private copy, and the
    /// copies are summed into dQuery at the end of each group of heads.
    static func backward(_ p: FlashProblem, _ tiles: FlashTiles, query: UnsafePointer<Float>, key: UnsafePointer<Float>,
                         value: UnsafePointer<Float>, output: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>,
                         dOutput: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>,
                         dKey: UnsafeMutablePointer<Float>, dValue: UnsafeMutablePointer<Float>,
                         dBiases: [UnsafeMutablePointer<Float>?]) {
        let rowCount = p.batch * p.heads * p.queryLength
        guard rowCount > 0, p.keyLength > 0 else { return }
        let workers = FlashParallel.workers
        let keyPanelFloats = Int(heed_flash_panels_count(Int64(p.keyLength), Int64(p.depth)))
        let valuePanelFloats = Int(heed_flash_panels_count(Int64(p.keyLength), Int64(p.valueDepth)))
        let privateQueryFloats = p.group * p.queryLength * p.depth                      // one worker's dQ, one (b, hkv)
        let pairs = p.batch * p.keyHeads
        let perPair = keyPanelFloats + valuePanelFloats + (workers - 1) * privateQueryFloats
        let chunk = Swift.max(1, Swift.min(pairs, packingBudget / Swift.max(perPair, 1)))
        let counts = [rowCount, chunk * keyPanelFloats, chunk * valuePanelFloats, (workers - 1) * chunk * privateQueryFloats]
        withScratchBuffers(counts) { buffer in
            let (delta, keyPanels, valuePanels, privateQuery) = (buffer[0], buffer[1], buffer[2], buffer[3])
            let scratch = (0 ..< workers).map { _ in FlashScratch(p, tiles, backward: true) }
            let biasCounts = tiles.differentiableBiases.map { $0?.count }
            for worker in scratch { worker.prepareBiasGradients(biasCounts) }

            for first in stride(from: 0, to: pairs, by: chunk) {
                let count = Swift.min(chunk, pairs - first)
                /// Where `worker` accumulates dQ of pair `first + index`: dQuery itself for worker 0.
                func queryGradient(worker: Int, index: Int) -> UnsafeMutablePointer<Float> {
                    let pair = first + index
                    guard worker > 0 else {                         // the group's first query head in [B, H, Tq, D]
                        let (b, keyHead) = (pair / p.keyHeads, pair % p.keyHeads)
                        return dQuery + (b * p.heads + keyHead * p.group) * p.queryLength * p.depth
                    }
                    return privateQuery + ((worker - 1) * count + index) * privateQueryFloats
                }
                // Per pair (b, hkv): four preparation items — its Kᵀ panels, its Vᵀ panels,
                // Δ = rowsum(dO ∘ O) of its query heads' rows, its zeroed private dQ copies —
                // that run while the previous pair is computed, then its key tiles — head by
                // head, so that the cores share one head's queries and output gradients in
                // cache; within a head key tile 0 first: under a causal pattern the first key
                // tiles see the most queries.
                FlashParallel.runPrepared(groups: count, parts: 4, items: p.keyTiles) { index, part in
                    let pair = first + index
                    switch part {
                    case 0:
                        heed_flash_pack_panels(key + pair * p.keyLength * p.depth, Int64(p.keyLength), Int64(p.depth),
                                               Int64(p.depth), keyPanels + index * keyPanelFloats)
                    case 1:
                        heed_flash_pack_panels(value + pair * p.keyLength * p.valueDepth, Int64(p.keyLength),
                                               Int64(p.valueDepth), Int64(p.valueDepth),
                                               valuePanels + index * valuePanelFloats)
                    case 2:                                          // rows of heads pair·group ..< (pair + 1)·group
                        let row = pair * p.group * p.queryLength
                        heed_flash_row_dot(dOutput + row * p.valueDepth, output + row * p.valueDepth,
                                           Int64(p.group * p.queryLength), Int64(p.valueDepth), delta + row)
                    default:
                        for worker in 1 ..< workers {
                            queryGradient(worker: worker, index: index).update(repeating: 0, count: privateQueryFloats)
                        }
                    }
                } _: { worker, index, keyTile in
                    let pair = first + index
                    let pairDQuery = queryGradient(worker: worker, index: index)
                    for member in 0 ..< p.group {
                        backwardTile(p, tiles, batch: pair / p.keyHeads, keyHead: pair % p.keyHeads, member: member,
                                     keyTile: keyTile, query: query, key: key, keyPanels: keyPanels + index * keyPanelFloats,
                                     valuePanels: valuePanels + index * valuePanelFloats, dOutput: dOutput,
                                     logSumExp: logSumExp, delta: delta,
                                     dQuery: pairDQuery + member * p.queryLength * p.depth,
                                     dKey: dKey, dValue: dValue, scratch: scratch[worker])
                    }
                }
                // dQ += Σ over workers 1 … of their private sums, in slices of each (b, hkv)'s rows.
                guard workers > 1 else { continue }
                FlashParallel.run(count * workers) { _, item in
                    let (index, slice) = (item / workers, item % workers)
                    let part = privateQueryFloats * slice / workers ..< privateQueryFloats * (slice + 1) / workers
                    let target = queryGradient(worker: 0, index: index)
                    for worker in 1 ..< workers {
                        let source = queryGradient(worker: worker, index: index)
                        for i in part { target[i] += source[i] }
                    }
                }
            }
            for (index, dBias) in dBiases.enumerated() {
                guard let dBias, let total = biasCounts[index] else { continue }
                for worker in scratch {
                    let source = worker.biasGradients[index]!
                    for i in 0 ..< total { dBias[i] += source[i] }
                }
            }
        }
    }

    /// One key tile of key/value head `keyHead` against the query tiles of
    /// query head `keyHead · group + member`.
    private static func backwardTile(_ p: FlashProblem, _ tiles: FlashTiles, batch b: Int, keyHead: Int, member: Int,
                                     keyTile: Int, query: UnsafePointer<Float>, key: UnsafePointer<Float>,
                                     keyPanels: UnsafePointer<Float>, valuePanels: UnsafePointer<Float>,
                                     dOutput: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>,
                                     delta: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>,
                                     dKey: UnsafeMutablePointer<Float>, dValue: UnsafeMutablePointer<Float>,
                                     scratch: FlashScratch) {
        let h = keyHead * p.group + member
        let columns = p.columns(ofTile: keyTile)
        let keyRow = (b * p.keyHeads + keyHead) * p.keyLength + columns.lowerBound   // row index into [B, Hkv, Tk]
        let learnedBias = scratch.biasGradients.contains { $0 != nil }

        var args = heed_flash_backward_args()
        args.query_stride = Int64(p.depth)
        args.key = key + keyRow * p.depth
        args.key_stride = Int64(p.depth)
        args.key_panels = keyPanels + columns.lowerBound * p.depth
        args.value_panels = valuePanels + columns.lowerBound * p.valueDepth
        args.d_output_stride = Int64(p.valueDepth)
        args.keys = Int64(columns.count)
        args.depth = Int64(p.depth)
        args.value_depth = Int64(p.valueDepth)
        args.scale = p.scale
        args.softcap = p.softcap
        args.tile_stride = Int64(columns.count)
        args.scores = scratch.scores
        args.d_scores = scratch.dScores
        args.softcap_scratch = p.softcap > 0 ? scratch.softcap : nil
        args.bias_gradient = learnedBias ? scratch.biasGradient : nil
        args.d_query_stride = Int64(p.depth)
        args.d_key = dKey + keyRow * p.depth
        args.d_key_stride = Int64(p.depth)
        args.d_value = dValue + keyRow * p.valueDepth
        args.d_value_stride = Int64(p.valueDepth)
        /// One step over the query rows `rows` (mask, bias and keep already set in `args`).
        func step(_ rows: Range<Int>) {
            let first = (b * p.heads + h) * p.queryLength + rows.lowerBound        // row index into [B, H, Tq]
            args.query = query + first * p.depth
            args.d_output = dOutput + first * p.valueDepth
            args.log_sum_exp = logSumExp + first
            args.delta = delta + first
            args.rows = Int64(rows.count)
            args.d_query = dQuery + rows.lowerBound * p.depth
            heed_flash_backward_step(&args)
        }
        FlashProblem.forEachStep(tiles: p.queryTiles, range: p.rows(ofTile:),
                                 coverage: { tiles.coverage(batch: b, head: h, rows: $0, columns: columns) },
                                 merges: !tiles.hasBias && p.dropout == 0, limit: FlashProblem.queryRun) { rows in
            (args.mask, args.bias, args.keep) = (nil, nil, nil)
            step(rows)
        } tile: { rows, coverage in
            (args.mask, args.bias, args.keep) = scratch.fillTile(p, tiles, batch: b, head: h, rows: rows, columns: columns,
                                                                 coverage: coverage)
            step(rows)
            if learnedBias {
                for (index, bias) in tiles.biases.enumerated() {
                    guard let gradient = scratch.biasGradients[index] else { continue }
                    bias.accumulateGradient(scratch.biasGradient, tiles, batch: b, head: h, rows: rows, columns: columns,
                                            into: gradient)
                }
            }
        }
    }
}
