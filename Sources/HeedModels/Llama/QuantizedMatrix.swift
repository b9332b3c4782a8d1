import CBLAS
import CHeedKernels
import Foundation
import HeedTensor

/// A weight matrix W [rows, columns] used as `y = x Wᵀ`, kept as the GGUF file
/// stores it: Q4_0, Q4_1 and Q8_0 blocks are read in place (the file's memory
/// mapping) and unpacked inside the kernel; other types (F32, F16, BF16) are
/// dequantised to f32 once, at load.
///
/// Two ways to multiply, chosen by the number of tokens n:
/// - n ≤ ``directTokenLimit`` (decoding): `heed_quant_matmul_f32`, the block
///   kernel, rows split over the cores;
/// - longer (prompts): panels of ``panelRows`` rows dequantised into a scratch
///   buffer and multiplied with `cblas_sgemm` — the dequantisation is paid
///   once per panel for all n tokens, and sgemm's speed does the rest.
///
/// BLAS runs single-threaded (``QuantizedLlama`` sets it for its forward
/// pass); the cores are shared out by Heed's pool (heed_parallel.h).
struct QuantizedMatrix: @unchecked Sendable {
    // @unchecked: the storage is read-only after init (mapped file bytes or a
    // dequantised copy), and `owner` keeps it alive; every multiply writes
    // only to its caller's output.
    enum Storage {
        /// Blocks read in place.
        case blocks(heed_quant_type, UnsafeRawPointer)
        /// f32 values, row-major.
        case floats(UnsafePointer<Float>)
    }

    let rows: Int
    let columns: Int
    let storage: Storage
    /// What keeps `storage` valid: the ``GGUFFile`` (its mapping) or the dequantised copy.
    private let owner: AnyObject

    /// Up to this many tokens use the block kernel directly.
    static let directTokenLimit = 8
    /// Rows dequantised per sgemm call on the prompt path (≤ 3 MB of scratch at 1536 columns).
    static let panelRows = 512

    /// Tensor `name` of `file`, shape [rows, columns].
    init(_ file: GGUFFile, _ name: String, rows: Int, columns: Int) throws(ModelLoadError) {
        let info = try file.modelTensorInfo(name, shape: [rows, columns])
        self.rows = rows
        self.columns = columns
        let bytes: UnsafeRawBufferPointer
        do { bytes = try file.storedBytes(name) } catch { throw .gguf(error) }
        switch info.type {
        case .q4_0, .q4_1, .q8_0:
            storage = .blocks(heed_quant_type(rawValue: UInt32(info.type.rawValue)), bytes.baseAddress!)
            owner = file
        default:
            let copy = FloatBox(count: rows * columns)
            info.type.dequantize(bytes, into: copy.buffer)
            storage = .floats(UnsafePointer(copy.buffer.baseAddress!))
            owner = copy
        }
    }

    /// Chunk `chunk` of `chunks` equal shares of W's rows.
    func rowShare(_ chunk: Int, of chunks: Int) -> Range<Int> { (rows * chunk / chunks) ..< (rows * (chunk + 1) / chunks) }

    /// Row r of W in f32 into `out[0 ..< columns]` (an embedding lookup).
    func row(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        switch storage {
        case .blocks(let type, let base): heed_quant_dequantize_f32(type, base, Int64(columns), Int64(r), Int64(r + 1), out)
        case .floats(let base): out.update(from: base + r * columns, count: columns)
        }
    }

    /// y [n, rows] = x [n, columns] · Wᵀ.
    func multiply(_ x: UnsafePointer<Float>, tokens n: Int, into y: UnsafeMutablePointer<Float>, int8Activations: Bool = false) {
        Self.multiply([(self, x, y)], tokens: n, int8Activations: int8Activations)
    }

    /// Several products of the same n tokens, e.g. the query, key and value
    /// projections: on the decoding path one parallel region runs them all
    /// (each core takes its share of every matrix's rows).
    ///
    /// With `int8Activations`, decoding-path products quantise x to 8-bit
    /// blocks first (`heed_quant_activations_q8`, once per distinct x) and use
    /// integer dot products — llama.cpp's method, faster, not exact.
    static func multiply(_ products: [(matrix: QuantizedMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>)],
                         tokens n: Int, int8Activations: Bool = false) {
        guard n > 0 else { return }
        var direct: [(QuantizedMatrix, UnsafePointer<Float>, UnsafeMutablePointer<Float>)] = []
        for (matrix, x, y) in products {
            switch matrix.storage {
            case .floats(let w):
                // Each core a share of W's rows (BLAS itself runs single-threaded).
                let (rows, columns) = (matrix.rows, matrix.columns)
                parallelRegion(chunks: Int(heed_parallel_max_workers())) { chunk, chunks in
                    let share = matrix.rowShare(chunk, of: chunks)
                    guard !share.isEmpty else { return }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(share.count), Int32(columns),
                                1, x, Int32(columns), w + share.lowerBound * columns, Int32(columns), 0, y + share.lowerBound, Int32(rows))
                }
            case .blocks(let type, let w):
                if n <= directTokenLimit { direct.append((matrix, x, y)) } else { matrix.panels(type, w, x, n, y) }
            }
        }
        guard !direct.isEmpty else { return }
        // With int8 activations: each distinct input quantised once.
        var inputs: [UnsafePointer<Float>] = [], quantized: [[heed_q8_block]] = []
        if int8Activations {
            for (matrix, x, _) in direct where !inputs.contains(x) {
                var blocks = [heed_q8_block](repeating: heed_q8_block(), count: n * matrix.columns / 32)
                heed_quant_activations_q8(x, Int64(n), Int64(matrix.columns), &blocks)
                inputs.append(x)
                quantized.append(blocks)
            }
        }
        parallelRegion { chunk, chunks in
            for (matrix, x, y) in direct {
                guard case .blocks(let type, let w) = matrix.storage else { continue }
                let share = matrix.rowShare(chunk, of: chunks)
                let (columns, start, end) = (Int64(matrix.columns), Int64(share.lowerBound), Int64(share.upperBound))
                if let input = inputs.firstIndex(of: x) {
                    quantized[input].withUnsafeBufferPointer { blocks in
                        heed_quant_matmul_q8(type, w, columns, start, end, blocks.baseAddress!, Int64(n), y, Int64(matrix.rows))
                    }
                } else {
                    heed_quant_matmul_f32(type, w, columns, start, end, x, Int64(n), y, Int64(matrix.rows))
                }
            }
        }
    }

    /// The prompt path: each core takes an equal share of the rows and, panel
    /// by panel (``panelRows`` rows), dequantises them and multiplies them with
    /// all n tokens in a single-threaded sgemm.
    private func panels(_ type: heed_quant_type, _ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int,
                        _ y: UnsafeMutablePointer<Float>) {
        let (rows, columns) = (self.rows, self.columns)
        parallelRegion(chunks: Int(heed_parallel_max_workers())) { chunk, chunks in
            let share = rowShare(chunk, of: chunks)
            guard !share.isEmpty else { return }
            let (first, last) = (share.lowerBound, share.upperBound)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.min(Self.panelRows, last - first) * columns) { scratch in
                let s = scratch.baseAddress!
                var start = first
                while start < last {
                    let count = Swift.min(Self.panelRows, last - start)
                    heed_quant_dequantize_f32(type, w, Int64(columns), Int64(start), Int64(start + count), s)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(count), Int32(columns),
                                1, x, Int32(columns), s, Int32(columns), 0, y + start, Int32(rows))
                    start += count
                }
            }
        }
    }
}

/// An f32 buffer owned by a class, for dequantised copies.
final class FloatBox {
    let buffer: UnsafeMutableBufferPointer<Float>
    init(count: Int) {
        buffer = .allocate(capacity: Swift.max(count, 1))
        buffer.initialize(repeating: 0)
    }
    deinit { buffer.deallocate() }
}

/// Runs body(chunk, chunks) for every chunk in 0 ..< chunks on heed_parallel.h's
/// pool (this thread included) and returns when all are done; each chunk must
/// write only its own share of the outputs. The default, four chunks per core,
/// lets a core whose partner is descheduled take over its share.
func parallelRegion(chunks: Int = 4 * Int(heed_parallel_max_workers()), _ body: (_ chunk: Int, _ chunks: Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        var closure = body
        withUnsafeMutablePointer(to: &closure) { pointer in
            heed_parallel_run({ context, chunk, chunks in
                context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(chunk), Int(chunks))
            }, pointer, Int64(chunks))
        }
    }
}
