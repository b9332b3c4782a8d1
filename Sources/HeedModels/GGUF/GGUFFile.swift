import Foundation
import HeedTensor

/// The description of one tensor in a validated GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable, CustomStringConvertible {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// ggml's `ne`: the dimensions, **innermost first** (`[576, 49152]` for a
    /// 49,152 × 576 embedding whose rows are 576 long). See ``shape``.
    public let dimensions: [Int]
    /// The element type.
    public let type: GGMLType
    /// Byte offset of the data from the start of the data section (a
    /// multiple of the file's alignment).
    public let offset: UInt64
    /// Bytes of data: `elementCount / type.blockSize · type.blockByteCount`.
    public let byteCount: Int

    /// The dimensions outermost first, as ``Tensor`` and PyTorch order them:
    /// `dimensions.reversed()` (`[49152, 576]` for the embedding above).
    public var shape: [Int] { dimensions.reversed() }

    /// Number of elements (1 with no dimensions; 0 when a dimension is 0).
    public var elementCount: Int { dimensions.reduce(1, *) }   // validated not to overflow

    /// Length of a row: the innermost dimension (1 with no dimensions).
    public var rowLength: Int { dimensions.first ?? 1 }

    /// Number of rows: the product of the outer dimensions.
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }

    /// Bytes of one row (a whole number of blocks).
    public var rowByteCount: Int { rowLength / type.blockSize * type.blockByteCount }

    public var description: String { "\(name): \(type) \(shape) @ \(offset) (\(byteCount) bytes)" }
}

/// A GGUF file (versions 2 and 3), opened for reading: the header, every
/// metadata value and every tensor description are parsed and validated when
/// the file is opened; tensor data is read and dequantised on request.
///
/// The format is ggml's (llama.cpp `docs/gguf.md`): a fixed header, typed
/// metadata (`general.architecture = "llama"`, `tokenizer.ggml.tokens =
/// [...]`), tensor descriptions, then the tensor data, aligned to
/// `general.alignment` (32 by default). ``GGUFError`` lists every rule checked;
/// a file that opens is safe to read in full.
///
/// ```swift
/// let file = try GGUFFile(url: URL(fileURLWithPath: "SmolLM2-135M-Instruct.Q4_1.gguf"))
/// let layers = try file.integer("llama.block_count")            // 30
/// let embedding = try file.tensor("token_embd.weight")           // Q8_0 → f32 [49152, 576]
/// let firstRows = try file.rows("token_embd.weight", 0..<4)      // dequantises 4 rows only
/// ```
///
/// `init(url:)` memory-maps the file, so opening a large model costs its
/// header; tensor pages are read as tensors are dequantised. As with any
/// mapping, another process truncating the file while it is open makes later
/// reads fault.
///
/// Instances are immutable and can be shared across threads.
public final class GGUFFile: Sendable {
    /// The alignment of the data section when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// The metadata key that sets the alignment.
    public static let alignmentKey = "general.alignment"
    /// How deeply metadata arrays may nest (arrays of arrays of …).
    public static let maximumNestingDepth = 16

    /// The format version: 2 or 3.
    public let version: UInt32
    /// Every metadata value, by key.
    public let metadata: [String: GGUFValue]
    /// The metadata keys in file order.
    public let metadataKeys: [String]
    /// Every tensor, in file order.
    public let tensorInfos: [GGUFTensorInfo]
    /// The data section's alignment (from `general.alignment`, or 32).
    public let alignment: Int
    /// Offset of the data section from the start of the file.
    public let dataOffset: Int
    /// Bytes from the start of the data section to the end of the file.
    public let dataSize: Int
    private let tensorIndex: [String: Int]
    private let region: ByteRegion

    /// Memory-maps and validates the file at `url`.
    ///
    /// - Throws: ``GGUFError/io(operation:path:errno:)`` when the file cannot
    ///   be opened or mapped; any other ``GGUFError`` when it is malformed.
    public convenience init(url: URL) throws(GGUFError) {
        let region: ByteRegion
        do { region = try ByteRegion(mapping: url.path) } catch { throw .io(operation: error.operation, path: error.path, errno: error.errno) }
        try self.init(region: region)
    }

    /// Validates an in-memory copy of a whole GGUF file (copied once).
    ///
    /// - Throws: a ``GGUFError`` describing the first problem found.
    public convenience init(data: Data) throws(GGUFError) {
        try self.init(region: ByteRegion(copying: data))
    }

    private init(region: ByteRegion) throws(GGUFError) {
        let header = try GGUFHeader(file: region.bytes)
        self.region = region
        self.version = header.version
        self.metadata = header.metadata
        self.metadataKeys = header.metadataKeys
        self.tensorInfos = header.tensors
        self.tensorIndex = header.tensorIndex
        self.alignment = header.alignment
        self.dataOffset = header.dataStart
        self.dataSize = header.dataSize
    }

    // MARK: Tensors

    /// The tensor names, in file order.
    public var tensorNames: [String] { tensorInfos.map(\.name) }

    /// Whether the file holds a tensor of that name.
    public func contains(tensor name: String) -> Bool { tensorIndex[name] != nil }

    /// The type, dimensions and offset of a tensor, without reading its data.
    ///
    /// - Throws: ``GGUFError/tensorNotFound(_:)``.
    public func info(_ name: String) throws(GGUFError) -> GGUFTensorInfo {
        guard let position = tensorIndex[name] else { throw .tensorNotFound(name) }
        return tensorInfos[position]
    }

    /// Passes the tensor's bytes, as stored (blocks, little-endian), to `body`.
    /// The buffer is valid only during the call.
    ///
    /// - Throws: ``GGUFError/tensorNotFound(_:)``, or what `body` throws.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try body(bytes(of: try info(name)))
    }

    /// A copy of the tensor's bytes as stored.
    ///
    /// - Throws: ``GGUFError/tensorNotFound(_:)``.
    public func rawBytes(_ name: String) throws(GGUFError) -> [UInt8] {
        [UInt8](bytes(of: try info(name)))
    }

    /// The whole tensor dequantised to f32, shaped ``GGUFTensorInfo/shape``
    /// (outermost first). Values equal the `gguf` Python package's
    /// `gguf.quants.dequantize` bit for bit (see ``GGMLType/dequantize(_:into:)``).
    ///
    /// - Throws: ``GGUFError/tensorNotFound(_:)``;
    ///   ``GGUFError/cannotDequantize(tensor:type:)`` for a type other than
    ///   F32, F16, BF16, Q8_0, Q4_0, Q4_1.
    public func tensor(_ name: String) throws(GGUFError) -> Tensor {
        let info = try info(name)
        guard info.type.canDequantize else { throw .cannotDequantize(tensor: name, type: info.type) }
        let source = bytes(of: info)
        return Tensor(shape: info.shape, unsafeUninitializedFill: { out in info.type.dequantize(source, into: out) })
    }

    /// Rows `rows` of the tensor dequantised to f32, shaped `[rows.count,
    /// rowLength]`: an embedding lookup touches only the pages it needs.
    ///
    /// - Throws: ``GGUFError/tensorNotFound(_:)``,
    ///   ``GGUFError/cannotDequantize(tensor:type:)``,
    ///   ``GGUFError/rowsOutOfRange(tensor:rows:rowCount:)``.
    public func rows(_ name: String, _ rows: Range<Int>) throws(GGUFError) -> Tensor {
        let info = try info(name)
        guard info.type.canDequantize else { throw .cannotDequantize(tensor: name, type: info.type) }
        guard rows.lowerBound >= 0, rows.upperBound <= info.rowCount else {
            throw .rowsOutOfRange(tensor: name, rows: rows, rowCount: info.rowCount)
        }
        let all = bytes(of: info)
        let source = UnsafeRawBufferPointer(rebasing: all[(rows.lowerBound * info.rowByteCount)..<(rows.upperBound * info.rowByteCount)])
        return Tensor(shape: [rows.count, info.rowLength], unsafeUninitializedFill: { out in info.type.dequantize(source, into: out) })
    }

    /// The stored bytes of tensor `name`, valid for as long as this file
    /// object lives (the mapping is released in its deinit): for kernels that
    /// read quantised blocks in place (``QuantizedLlama``).
    func storedBytes(_ name: String) throws(GGUFError) -> UnsafeRawBufferPointer { bytes(of: try info(name)) }

    private func bytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        // Validated when the file was opened: dataOffset + offset + byteCount ≤ file size.
        let start = dataOffset + Int(info.offset)
        return UnsafeRawBufferPointer(rebasing: region.bytes[start..<(start + info.byteCount)])
    }
}
