import CHeedKernels
import HeedTensor

extension FlashAttention {
    /// Floats of packed keys (and values) kept at once: whole key/value heads
    /// are packed in groups under this budget (at least one head).
    static let packingBudget = 4 << 20

    /// Algorithm 1 over every (batch, head, query tile): fills `output`
    /// [B, H, Tq, Dv] and `logSumExp` [B, H, Tq].
    static func forward(_ problem: FlashProblem, _ tiles: FlashTiles, query: UnsafePointer<Float>,
                        key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                        output: UnsafeMutablePointer<Float>?, logSumExp: UnsafeMutablePointer<Float>?) {
        let p = problem
        guard p.batch * p.heads * p.queryLength > 0, let logSumExp else { return }
        let output = output ?? emptyTensorAddress                          // nil only when Dv = 0
        guard p.keyLength > 0 else {
            output.update(repeating: 0, count: p.batch * p.heads * p.queryLength * p.valueDepth)
            logSumExp.update(repeating: -.infinity, count: p.batch * p.heads * p.queryLength)
            return
        }
        let panelFloats = Int(heed_flash_panels_count(Int64(p.keyLength), Int64(p.depth)))
        // V in 16-column slabs, or read in place where that is as fast (heed_flash.h).
        let packsValues = heed_flash_value_slabs_help(Int64(p.valueDepth)) != 0
        let slabFloats = packsValues ? Int(heed_flash_panels_count(Int64(p.valueDepth), Int64(p.keyLength))) : 0
        let pairFloats = panelFloats + slabFloats
        let pairs = p.batch * p.keyHeads
        let chunk = Swift.max(1, Swift.min(pairs, packingBudget / Swift.max(pairFloats, 1)))
        let scratch = (0 ..< FlashParallel.workers).map { _ in                  // one per worker
            FlashScratch(p, tiles, backward: false)
        }
        withScratchBuffers([chunk * pairFloats]) { buffer in
            let panels = buffer[0], slabs = buffer[0] + chunk * panelFloats
            for first in stride(from: 0, to: pairs, by: chunk) {
                // Per pair (b, hkv): its Kᵀ panels (and V slabs where they help) packed by
                // preparation items that run while the previous pair is computed, then its query tiles —
                // head by head, so that the cores share one head's keys and values in cache;
                // within a head the last query tiles first: under a causal pattern they cost
                // the most.
                FlashParallel.runPrepared(groups: Swift.min(chunk, pairs - first), parts: packsValues ? 2 : 1,
                                          items: p.group * p.queryTiles) { index, part in
                    let pair = first + index
                    if part == 0 {
                        heed_flash_pack_panels(key + pair * p.keyLength * p.depth, Int64(p.keyLength), Int64(p.depth),
                                               Int64(p.depth), panels + index * panelFloats)
                    } else {
                        heed_flash_pack_slabs(value + pair * p.keyLength * p.valueDepth, Int64(p.keyLength),
                                              Int64(p.valueDepth), Int64(p.valueDepth), slabs + index * slabFloats)
                    }
                } _: { worker, index, item in
                    let queryTile = p.queryTiles - 1 - item % p.queryTiles
                    let pair = first + index
                    let (b, keyHead) = (pair / p.keyHeads, pair % p.keyHeads)
                    let h = keyHead * p.group + item / p.queryTiles
                    let values = packsValues ? FlashValues(slabs: slabs + index * slabFloats, keyLength: p.keyLength)
                                             : FlashValues(rows: value + pair * p.keyLength * p.valueDepth,
                                                           valueDepth: p.valueDepth)
                    forwardTile(p, tiles, batch: b, head: h, queryTile: queryTile, query: query,
                                keyPanels: panels + index * panelFloats, values: values, output: output,
                                logSumExp: logSumExp, scratch: scratch[worker])
                }
            }
        }
    }

    /// One query tile of one head against every key tile it may see.
    private static func forwardTile(_ p: FlashProblem, _ tiles: FlashTiles, batch b: Int, head h: Int, queryTile: Int,
                                    query: UnsafePointer<Float>, keyPanels: UnsafePointer<Float>,
                                    values: FlashValues, output: UnsafeMutablePointer<Float>,
                                    logSumExp: UnsafeMutablePointer<Float>, scratch: FlashScratch) {
        let rows = p.rows(ofTile: queryTile)
        let first = (b * p.heads + h) * p.queryLength + rows.lowerBound            // row index into [B, H, Tq]
        let out = output + first * p.valueDepth                                  // written by the first step
        scratch.rowMax.update(repeating: -.infinity, count: rows.count)
        scratch.rowSum.update(repeating: 0, count: rows.count)

        var args = heed_flash_forward_args()
        args.query = query + first * p.depth
        args.query_stride = Int64(p.depth)
        args.value_stride = Int64(values.rowStride)
        args.value_panel_stride = Int64(values.panelStride)
        args.rows = Int64(rows.count)
        args.depth = Int64(p.depth)
        args.value_depth = Int64(p.valueDepth)
        args.scale = p.scale
        args.softcap = p.softcap
        args.scores = scratch.scores
        args.row_max = scratch.rowMax
        args.row_sum = scratch.rowSum
        args.row_scale = scratch.rowScale
        args.output = out
        args.output_stride = Int64(p.valueDepth)
        args.output_fresh = 1
        args.scaled_query = scratch.scaledQuery
        heed_flash_forward_begin(&args)
        FlashProblem.forEachStep(tiles: p.keyTiles, range: p.columns(ofTile:),
                                 coverage: { tiles.coverage(batch: b, head: h, rows: rows, columns: $0) },
                                 merges: !tiles.hasBias && p.dropout == 0, limit: FlashProblem.keyRun) { columns in
            (args.mask, args.bias, args.keep) = (nil, nil, nil)
            step(&args, columns: columns, keyPanels: keyPanels, values: values)
        } tile: { columns, coverage in
            (args.mask, args.bias, args.keep) = scratch.fillTile(p, tiles, batch: b, head: h, rows: rows, columns: columns,
                                                                 coverage: coverage)
            step(&args, columns: columns, keyPanels: keyPanels, values: values)
        }
        heed_flash_forward_finish(Int64(rows.count), Int64(p.valueDepth), scratch.rowMax, scratch.rowSum, out,
                                  Int64(p.valueDepth), logSumExp + first)
    }
}

/// One forward step of a query tile over the keys `columns` (mask, bias and
/// keep already set in `args`); the output is written, not zeroed, from then on.
private func step(_ args: inout heed_flash_forward_args, columns: Range<Int>, keyPanels: UnsafePointer<Float>,
                  values: FlashValues) {
    args.key_panels = keyPanels + columns.lowerBound * Int(args.depth)             // panels start every 16 keys
    args.value = values.base + columns.lowerBound * values.rowStride
    args.keys = Int64(columns.count)
    args.tile_stride = Int64(columns.count)
    heed_flash_forward_step(&args)
    args.output_fresh = 0
}

/// Where one key/value head's V lies for the forward's P V (heed_flash_forward_args):
/// V(k, c) = base[(c/16)·panelStride + k·rowStride + c mod 16].
struct FlashValues {
    let base: UnsafePointer<Float>
    let rowStride: Int
    let panelStride: Int

    /// heed_flash_pack_slabs output for `keyLength` keys.
    init(slabs: UnsafePointer<Float>, keyLength: Int) {
        (base, rowStride, panelStride) = (slabs, FlashProblem.panel, keyLength * FlashProblem.panel)
    }

    /// Row-major [Tk, Dv], in place.
    init(rows: UnsafePointer<Float>, valueDepth: Int) {
        (base, rowStride, panelStride) = (rows, valueDepth, FlashProblem.panel)
    }
}
