import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A safetensors file, opened for reading: the header is parsed and validated
/// when the file is opened, and each tensor's data is converted on request.
///
/// The format (huggingface/safetensors): an 8-byte little-endian u64 `N`, `N`
/// bytes of UTF-8 JSON, then the data buffer.
///
/// ```
/// {"__metadata__": {"format": "pt"},
///  "wte": {"dtype": "BF16", "shape": [50257, 768], "data_offsets": [0, 77194752]}, …}
/// ```
///
/// `data_offsets` are byte offsets into the data buffer, which the tensors
/// must tile without holes or overlaps (see ``SafeTensorsError`` for every
/// rule checked). A file that opens is safe to read in full: every tensor's
/// bytes lie inside the file and match its dtype and shape.
///
/// ```swift
/// let file = try SafeTensorsFile(url: URL(fileURLWithPath: "model.safetensors"))
/// let embedding = try file.tensor("wte")        // BF16 on disk → f32 Tensor [50257, 768]
/// let ids = try file.indices("position_ids")    // I64 on disk → IndexTensor
/// ```
///
/// `init(url:)` memory-maps the file, so opening a large checkpoint costs the
/// header only; pages are read as tensors are converted. As with any mapping,
/// another process *truncating* the file while it is open makes later reads
/// fault; Heed's own writer never does that (it writes a new file and renames
/// it over the old one, and the mapping keeps the old contents).
///
/// Instances are immutable and can be shared across threads.
public final class SafeTensorsFile: Sendable {
    /// The `__metadata__` strings of the header (empty when there are none).
    public let metadata: [String: String]
    /// Every tensor, in the order the header lists them.
    public let tensorInfos: [SafeTensorInfo]
    private let index: [JSONString: Int]
    private let region: ByteRegion
    private let dataStart: Int

    /// Memory-maps and validates the file at `url`.
    ///
    /// - Throws: ``SafeTensorsError/io(operation:path:errno:)`` when the file
    ///   cannot be opened or mapped; any other ``SafeTensorsError`` case when
    ///   its contents are malformed.
    public convenience init(url: URL) throws(SafeTensorsError) {
        let region: ByteRegion
        do { region = try ByteRegion(mapping: url.path) } catch { throw .io(operation: error.operation, path: error.path, errno: error.errno) }
        try self.init(region: region)
    }

    /// Validates an in-memory copy of a whole safetensors file (copied once).
    ///
    /// - Throws: a ``SafeTensorsError`` describing the first problem found.
    public convenience init(data: Data) throws(SafeTensorsError) {
        try self.init(region: ByteRegion(copying: data))
    }

    private init(region: ByteRegion) throws(SafeTensorsError) {
        let header = try SafeTensorsHeader(file: region.bytes)
        self.region = region
        self.metadata = header.metadata
        self.tensorInfos = header.tensors
        self.index = header.index
        self.dataStart = header.dataStart
    }

    // MARK: Facts

    /// The tensor names, in the order the header lists them.
    public var names: [String] { tensorInfos.map(\.name) }

    /// Whether the file holds a tensor of that name (compared byte for byte).
    public func contains(_ name: String) -> Bool { index[JSONString(bytes: Array(name.utf8))] != nil }

    /// The dtype, shape and data offsets of a tensor, without reading its data.
    ///
    /// - Throws: ``SafeTensorsError/tensorNotFound(_:)``.
    public func info(_ name: String) throws(SafeTensorsError) -> SafeTensorInfo {
        guard let position = index[JSONString(bytes: Array(name.utf8))] else { throw .tensorNotFound(name) }
        return tensorInfos[position]
    }

    // MARK: Data

    /// Passes the tensor's bytes, as stored (little-endian, row-major), to `body`.
    /// The buffer is valid only during the call.
    ///
    /// - Throws: ``SafeTensorsError/tensorNotFound(_:)``, or what `body` throws.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let info = try info(name)
        return try body(bytes(of: info))
    }

    /// A copy of the tensor's bytes as stored (little-endian, row-major).
    ///
    /// - Throws: ``SafeTensorsError/tensorNotFound(_:)``.
    public func rawBytes(_ name: String) throws(SafeTensorsError) -> [UInt8] {
        [UInt8](bytes(of: try info(name)))
    }

    /// The tensor converted to f32: exactly for F32, F16, BF16 and the F8 types;
    /// rounded to nearest for F64 and integers wider than 24 bits; `BOOL` as 0
    /// or 1. Every call reads the file again and returns a new tensor.
    ///
    /// - Throws: ``SafeTensorsError/tensorNotFound(_:)``;
    ///   ``SafeTensorsError/cannotConvert(tensor:dtype:to:)`` for `F4`,
    ///   `F6_E2M3`, `F6_E3M2` and `C64`.
    public func tensor(_ name: String) throws(SafeTensorsError) -> Tensor {
        let info = try info(name)
        guard info.dtype.canDecodeToFloat else { throw .cannotConvert(tensor: name, dtype: info.dtype, to: "Float") }
        let source = bytes(of: info)
        return Tensor.build(info.shape) { out in
            ElementDecoding.decodeFloats(info.dtype, from: source, into: out)
        }
    }

    /// An integer (or `BOOL`) tensor as indices, exactly.
    ///
    /// - Throws: ``SafeTensorsError/tensorNotFound(_:)``;
    ///   ``SafeTensorsError/cannotConvert(tensor:dtype:to:)`` for a
    ///   floating-point dtype; ``SafeTensorsError/valueOutOfRange(tensor:value:dtype:)``
    ///   for a `U64` above `Int.max`.
    public func indices(_ name: String) throws(SafeTensorsError) -> IndexTensor {
        let info = try info(name)
        guard info.dtype.isInteger else { throw .cannotConvert(tensor: name, dtype: info.dtype, to: "Int") }
        let values = try ElementDecoding.decodeIntegers(info.dtype, from: bytes(of: info), tensor: name)
        return IndexTensor(values, shape: info.shape)
    }

    /// Every tensor whose dtype converts to `Float`, by name.
    ///
    /// - Throws: ``SafeTensorsError/cannotConvert(tensor:dtype:to:)`` if any
    ///   tensor's dtype does not (read those with ``rawBytes(_:)``).
    public func tensors() throws(SafeTensorsError) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for info in tensorInfos { result[info.name] = try tensor(info.name) }
        return result
    }

    private func bytes(of info: SafeTensorInfo) -> UnsafeRawBufferPointer {
        // Validated when the file was opened: dataStart + upperBound ≤ region.count.
        UnsafeRawBufferPointer(rebasing: region.bytes[(dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)])
    }
}
