import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only bytes that stay valid for the object's lifetime: a private
/// read-only mapping of a file, or a private heap copy.
///
/// Shared by the safetensors and GGUF readers; each turns a
/// ``ByteRegion/MappingError`` into its own typed error.
///
/// `@unchecked Sendable` is sound: `bytes` is set once in `init`, the memory is
/// never written after that (a `PROT_READ` mapping, or a copy no one else can
/// reach), and it is released only in `deinit`, when no reference remains.
public final class ByteRegion: @unchecked Sendable {
    /// The bytes, valid while this object lives.
    public let bytes: UnsafeRawBufferPointer
    /// What to release in `deinit`: the mapping (address, length) or the copy.
    private let mapping: (address: UnsafeMutableRawPointer, length: Int)?
    private let allocation: UnsafeMutableRawPointer?

    /// A failed system call while mapping a file.
    public struct MappingError: Error, Sendable {
        public let operation: String
        public let path: String
        public let errno: Int32
    }

    /// Maps the whole file at `path` read-only (`MAP_PRIVATE`).
    public init(mapping path: String) throws(MappingError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw MappingError(operation: "open", path: path, errno: errno) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw MappingError(operation: "stat", path: path, errno: errno) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw MappingError(operation: "open", path: path, errno: EISDIR) }
        let size = Int(status.st_size)
        if size == 0 {                                    // mmap rejects length 0
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapping = nil
            allocation = nil
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0),
              address != UnsafeMutableRawPointer(bitPattern: -1) else {   // MAP_FAILED
            throw MappingError(operation: "mmap", path: path, errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
        mapping = (address, size)
        allocation = nil
    }

    /// A private copy of `data` (64-byte aligned).
    public init(copying data: Data) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(data.count, 1), alignment: 64)
        _ = data.copyBytes(to: memory.bindMemory(to: UInt8.self))
        bytes = UnsafeRawBufferPointer(start: memory.baseAddress, count: data.count)
        mapping = nil
        allocation = memory.baseAddress
    }

    deinit {
        if let mapping { munmap(mapping.address, mapping.length) }
        allocation?.deallocate()
    }
}
