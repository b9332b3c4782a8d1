import CHeedKernels
import HeedTensor

extension FlashAttention {
    /// exp(S − LSE) for `rows` × all keys of each batch element and each of
    /// `heads`: [B, heads.count, rows.count, Tk]. Tiles the pattern masks
    /// entirely stay zero; the others run heed_flash_weights_step.
    static func exactWeights(_ p: FlashProblem, _ tiles: FlashTiles, query: Tensor, key: Tensor, logSumExp: Tensor,
                             rows: Range<Int>, heads: [Int]) -> Tensor {
        let result = Tensor.zeros([p.batch, heads.count, rows.count, p.keyLength])     // [B, H′, R, Tk]
        guard p.batch * heads.count * rows.count * p.keyLength > 0 else { return result }
        let panelFloats = Int(heed_flash_panels_count(Int64(p.keyLength), Int64(p.depth)))
        let panels = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(panelFloats, 1))
        defer { panels.deallocate() }
        let scratch = FlashScratch(p, tiles, backward: false)
        withPointers([query, key, logSumExp]) { read in
            withMutablePointers([result]) { write in
                for b in 0 ..< p.batch {
                    var packedHead = -1
                    for (slot, h) in heads.enumerated() {
                        let keyHead = h / p.group
                        if keyHead != packedHead {                                  // Kᵀ panels of (b, hkv)
                            heed_flash_pack_panels(read[1] + (b * p.keyHeads + keyHead) * p.keyLength * p.depth,
                                                   Int64(p.keyLength), Int64(p.depth), Int64(p.depth), panels)
                            packedHead = keyHead
                        }
                        for start in stride(from: rows.lowerBound, to: rows.upperBound, by: FlashProblem.queryTile) {
                            let tileRows = start ..< Swift.min(rows.upperBound, start + FlashProblem.queryTile)
                            let first = (b * p.heads + h) * p.queryLength + tileRows.lowerBound
                            let out = write[0] + ((b * heads.count + slot) * rows.count + start - rows.lowerBound) * p.keyLength
                            for keyTile in 0 ..< p.keyTiles {
                                let columns = p.columns(ofTile: keyTile)
                                let coverage = tiles.coverage(batch: b, head: h, rows: tileRows, columns: columns)
                                if coverage == .none { continue }
                                var args = heed_flash_forward_args()
                                args.query = read[0] + first * p.depth
                                args.query_stride = Int64(p.depth)
                                args.key_panels = UnsafePointer(panels + columns.lowerBound * p.depth)
                                args.rows = Int64(tileRows.count)
                                args.keys = Int64(columns.count)
                                args.depth = Int64(p.depth)
                                args.scale = p.scale
                                args.softcap = p.softcap
                                args.tile_stride = Int64(columns.count)
                                args.scores = scratch.scores
                                if coverage == .some {
                                    tiles.fillMask(batch: b, head: h, rows: tileRows, columns: columns, into: scratch.mask)
                                    args.mask = UnsafePointer(scratch.mask)
                                }
                                if tiles.hasBias {
                                    tiles.fillBias(batch: b, head: h, rows: tileRows, columns: columns, into: scratch.bias)
                                    args.bias = UnsafePointer(scratch.bias)
                                }
                                heed_flash_weights_step(&args, read[2] + first, out + columns.lowerBound, Int64(p.keyLength))
                            }
                        }
                    }
                }
            }
        }
        return result
    }
}
