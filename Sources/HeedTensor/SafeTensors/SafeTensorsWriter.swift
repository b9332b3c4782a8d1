import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing safetensors files, and the format's constants.
///
/// Files come out the way the reference writer (huggingface/safetensors,
/// `prepare` in `safetensors/src/tensor.rs`) makes them, byte for byte:
/// tensors ordered by dtype — in the reference `Dtype` enum's order, largest
/// first, so every tensor's data is aligned to its element size — then by name
/// (byte-wise); compact JSON with `__metadata__` first (omitted when empty;
/// its keys sorted byte-wise); the header padded with spaces to a multiple
/// of 8 bytes.
///
/// ```swift
/// try SafeTensors.write(["wte": embedding, "ln_f.weight": gamma], as: .bfloat16,
///                       metadata: ["format": "pt"], to: url)
/// try SafeTensors.write([.init("logits", logits, as: .float16),
///                        .init("ids", tokenIds, as: .int32)], to: url)
/// ```
///
/// Writing is atomic: the bytes go to a temporary file in the destination's
/// directory, which is flushed (`fsync`) and then renamed over the
/// destination. A failure at any point leaves the destination as it was and
/// removes the temporary file; a reader that has the old file mapped keeps
/// seeing the old contents.
public enum SafeTensors {
    /// The largest header, in bytes, that Heed reads or writes: the reference
    /// implementation's `MAX_HEADER_SIZE` (100 MB).
    public static let maximumHeaderSize = SafeTensorsHeader.maximumHeaderSize

    /// One tensor to write: a name, the values, and the dtype to store them in.
    public struct Entry {
        /// The tensor's name in the header; any string except `__metadata__`.
        public let name: String
        /// The stored element type.
        public let dtype: DType
        enum Payload {
            case floats(Tensor)
            case indices(IndexTensor)
        }
        let payload: Payload

        /// A ``Tensor`` stored as `dtype`: `.float32` (exact), `.float64`
        /// (exact), `.float16` or `.bfloat16` (rounded to nearest, ties to even;
        /// see ``Tensor/float16Bits()``).
        public init(_ name: String, _ tensor: Tensor, as dtype: DType = .float32) {
            self.name = name
            self.dtype = dtype
            self.payload = .floats(tensor)
        }

        /// An ``IndexTensor`` stored as the integer type `dtype` (`.int64`,
        /// `.int32`, …, or `.bool` for 0/1 values); every value must fit.
        public init(_ name: String, _ indices: IndexTensor, as dtype: DType = .int64) {
            self.name = name
            self.dtype = dtype
            self.payload = .indices(indices)
        }

        /// The dimensions of the values.
        public var shape: [Int] {
            switch payload {
            case .floats(let tensor): return tensor.shape
            case .indices(let indices): return indices.shape
            }
        }

        var elementCount: Int {
            switch payload {
            case .floats(let tensor): return tensor.count
            case .indices(let indices): return indices.count
            }
        }
    }

    // MARK: Writing files

    /// Writes float tensors, all stored as `dtype`, atomically to `url`.
    ///
    /// A `[String: Tensor]` cannot hold two names that Swift's `String ==`
    /// equates ("é" and "e\u{301}"); pass ``Entry`` values to write such names.
    ///
    /// - Throws: ``SafeTensorsError/cannotConvert(tensor:dtype:to:)`` when
    ///   `dtype` is not F32, F64, F16 or BF16; ``SafeTensorsError/reservedName(_:)``;
    ///   ``SafeTensorsError/headerTooLarge(declared:limit:)``;
    ///   ``SafeTensorsError/io(operation:path:errno:)``.
    public static func write(_ tensors: [String: Tensor], as dtype: DType = .float32,
                             metadata: [String: String] = [:], to url: URL) throws(SafeTensorsError) {
        try write(tensors.map { Entry($0.key, $0.value, as: dtype) }, metadata: metadata, to: url)
    }

    /// Writes `(name, tensor, dtype)` triples atomically to `url`.
    ///
    /// The order of the list does not matter: files always come out in the
    /// reference writer's order (dtype, then name), so the same tensors give
    /// the same bytes however they were listed.
    public static func write(_ tensors: [(name: String, tensor: Tensor, dtype: DType)],
                             metadata: [String: String] = [:], to url: URL) throws(SafeTensorsError) {
        try write(tensors.map { Entry($0.name, $0.tensor, as: $0.dtype) }, metadata: metadata, to: url)
    }

    /// Writes entries (float tensors and index tensors) atomically to `url`.
    ///
    /// - Throws: ``SafeTensorsError/duplicateName(_:)``,
    ///   ``SafeTensorsError/reservedName(_:)``,
    ///   ``SafeTensorsError/cannotConvert(tensor:dtype:to:)``,
    ///   ``SafeTensorsError/valueOutOfRange(tensor:value:dtype:)``,
    ///   ``SafeTensorsError/headerTooLarge(declared:limit:)`` — all before
    ///   anything is written — or ``SafeTensorsError/io(operation:path:errno:)``.
    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to url: URL) throws(SafeTensorsError) {
        let layout = try Layout(entries, metadata: metadata)
        try writeAtomically(to: url) { (sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void in
            try layout.emit(sink)
        }
    }

    // MARK: Serializing in memory

    /// The bytes of a safetensors file holding `tensors`, all stored as `dtype`.
    public static func serialize(_ tensors: [String: Tensor], as dtype: DType = .float32,
                                 metadata: [String: String] = [:]) throws(SafeTensorsError) -> Data {
        try serialize(tensors.map { Entry($0.key, $0.value, as: dtype) }, metadata: metadata)
    }

    /// The bytes of a safetensors file holding `entries`: the same bytes the
    /// `write` functions put in a file.
    public static func serialize(_ entries: [Entry], metadata: [String: String] = [:]) throws(SafeTensorsError) -> Data {
        let layout = try Layout(entries, metadata: metadata)
        var data = Data(capacity: layout.fileSize)
        layout.emit { data.append(contentsOf: $0) }
        return data
    }

    // MARK: Layout

    /// Validated entries in file order, with the padded header.
    struct Layout {
        let entries: [Entry]
        let header: [UInt8]
        let dataSize: Int
        var fileSize: Int { 8 + header.count + dataSize }

        init(_ unordered: [Entry], metadata: [String: String]) throws(SafeTensorsError) {
            var seen = Set<[UInt8]>()
            for entry in unordered {
                if entry.name == "__metadata__" { throw .reservedName(entry.name) }
                if !seen.insert(Array(entry.name.utf8)).inserted { throw .duplicateName(entry.name) }
                switch entry.payload {
                case .floats:
                    guard entry.dtype.canEncodeFloats else { throw .cannotConvert(tensor: entry.name, dtype: entry.dtype, to: "Float") }
                case .indices(let indices):
                    guard let range = entry.dtype.integerRange else { throw .cannotConvert(tensor: entry.name, dtype: entry.dtype, to: "Int") }
                    if let bad = indices.values.first(where: { !range.contains($0) }) {
                        throw .valueOutOfRange(tensor: entry.name, value: String(bad), dtype: entry.dtype)
                    }
                }
            }
            // The reference order: larger dtype (in its enum order) first, then name byte-wise.
            entries = unordered.sorted { a, b in
                if a.dtype.referenceRank != b.dtype.referenceRank { return a.dtype.referenceRank > b.dtype.referenceRank }
                return Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
            }

            var json = JSONWriter()
            json.raw("{")
            var first = true
            if !metadata.isEmpty {
                json.string("__metadata__")
                json.raw(":{")
                let keys = metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                for (i, key) in keys.enumerated() {
                    if i > 0 { json.raw(",") }
                    json.string(key)
                    json.raw(":")
                    json.string(metadata[key] ?? "")
                }
                json.raw("}")
                first = false
            }
            var offset = 0
            for entry in entries {
                let byteCount = entry.elementCount * (entry.dtype.byteSize ?? 0)   // encodable types are whole bytes
                if !first { json.raw(",") }
                first = false
                json.string(entry.name)
                json.raw(":{\"dtype\":")
                json.string(entry.dtype.rawValue)
                json.raw(",\"shape\":")
                json.integers(entry.shape)
                json.raw(",\"data_offsets\":")
                json.integers([offset, offset + byteCount])
                json.raw("}")
                offset += byteCount
            }
            json.raw("}")
            var header = json.bytes
            header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
            guard header.count <= SafeTensors.maximumHeaderSize else {
                throw .headerTooLarge(declared: UInt64(header.count), limit: SafeTensors.maximumHeaderSize)
            }
            self.header = header
            self.dataSize = offset
        }

        /// Passes the whole file, in order, to `sink`.
        func emit(_ sink: (UnsafeRawBufferPointer) throws -> Void) rethrows {
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try sink($0) }
            try header.withUnsafeBytes { try sink($0) }
            for entry in entries {
                switch entry.payload {
                case .floats(let tensor): try ElementEncoding.encodeFloats(tensor, as: entry.dtype, emit: sink)
                case .indices(let indices): try ElementEncoding.encodeIntegers(indices.values, as: entry.dtype, emit: sink)
                }
            }
        }
    }

    // MARK: Atomic files

    /// Writes what `produce` passes to its sink into a temporary file beside
    /// `url`, flushes it, and renames it to `url`; on any failure removes the
    /// temporary file and leaves `url` untouched.
    static func writeAtomically(to url: URL,
                                _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws(SafeTensorsError) {
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        let temporaryPath = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(String(UInt32.random(in: .min ... .max), radix: 16))"
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .io(operation: "create", path: temporaryPath, errno: errno) }
        var renamed = false
        defer { if !renamed { unlink(temporaryPath) } }

        func fail(_ operation: String, _ code: Int32) -> SafeTensorsError {
            .io(operation: operation, path: temporaryPath, errno: code)
        }
        do {
            try produce { chunk in
                var remaining = chunk
                while !remaining.isEmpty, let base = remaining.baseAddress {
                    let written = posixWrite(descriptor, base, remaining.count)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw fail("write", errno)
                    }
                    if written == 0 { throw fail("write", EIO) }
                    remaining = UnsafeRawBufferPointer(rebasing: remaining[written...])
                }
            }
            guard fsync(descriptor) == 0 else { throw fail("fsync", errno) }
        } catch {
            close(descriptor)
            throw (error as? SafeTensorsError) ?? fail("write", EIO)
        }
        guard close(descriptor) == 0 else { throw fail("close", errno) }
        guard rename(temporaryPath, path) == 0 else { throw .io(operation: "rename to", path: path, errno: errno) }
        renamed = true
    }
}

/// POSIX `write(2)`, named apart from `SafeTensors.write`.
private func posixWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(descriptor, buffer, count)
    #else
    return Darwin.write(descriptor, buffer, count)
    #endif
}
