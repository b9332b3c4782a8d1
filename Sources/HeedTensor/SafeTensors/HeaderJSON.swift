// A small, strict JSON reader and writer for safetensors headers.
//
// Why not Foundation's JSONSerialization: the header needs exact 64-bit
// integers (not doubles), object members in order *with* duplicates (to report
// them), and a hard bound on nesting so hostile input cannot exhaust the
// stack. The grammar is RFC 8259; what serde_json (the reference
// implementation's parser) accepts, this accepts: surrounding whitespace,
// `\u` escapes with surrogate pairs. It rejects what serde_json rejects:
// trailing characters, raw control characters in strings, lone surrogates,
// leading zeros, nesting deeper than 127 levels; and for sizes and offsets,
// anything but a plain non-negative integer (`-0`, `1.0`, `1e3` included).

/// A parsed JSON string: its UTF-8 bytes, after escapes are decoded.
///
/// Names are compared byte for byte, as the reference implementation (Rust
/// `String`) does; Swift's `String ==` would also equate canonically
/// equivalent spellings ("é" and "e\u{301}"), which are distinct tensor names.
struct JSONString: Hashable, Sendable {
    let bytes: [UInt8]
    var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// A JSON number, kept as text with its integer value when it has one.
struct JSONNumber: Sendable {
    /// The number as written.
    let text: String
    /// No fraction and no exponent.
    let isInteger: Bool
    /// Written with a leading minus sign.
    let isNegative: Bool
    /// |value| for an integer that fits `Int`; nil for a larger integer or a non-integer.
    let magnitude: Int?

    /// Why this number is not a valid size or offset, or nil when it is one.
    var problemAsCount: String? {
        if !isInteger { return "\(text) is not an integer" }
        guard magnitude != nil else { return "\(text) is too large" }
        if isNegative { return "\(text) is negative" }   // serde_json reads -0 as a float: rejected too
        return nil
    }
}

/// One `"key": value` member of an object, in document order.
struct JSONMember: Sendable {
    let key: JSONString
    let value: JSONValue
}

/// A JSON value; objects keep members in order, duplicates included.
indirect enum JSONValue: Sendable {
    case object([JSONMember])
    case array([JSONValue])
    case string(JSONString)
    case number(JSONNumber)
    case bool(Bool)
    case null

    /// "an object", "the string \"F32\"", … for error messages.
    var summary: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string(let s):
            let text = s.string
            return text.count <= 32 ? "the string \(SafeTensorsError.quote(text))" : "a string"
        case .number(let n): return "the number \(n.text.count <= 32 ? n.text : "…")"
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }
}

// MARK: - Reading

/// Recursive-descent parser over a byte buffer that the caller keeps alive.
struct JSONParser {
    /// The deepest nesting serde_json (recursion limit 128) accepts in a header:
    /// 127 levels, top-level object included (measured with safetensors 0.8.0).
    static let maximumDepth = 127

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var depth = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Parses one JSON value surrounded by optional whitespace.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(SafeTensorsError) -> JSONValue {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.position < bytes.count { throw parser.failure("trailing characters after the top-level value") }
        return value
    }

    private func failure(_ reason: String) -> SafeTensorsError {
        .invalidJSON(reason: reason, byteOffset: position)
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(SafeTensorsError) {
        guard current == byte else { throw unexpected(expecting: what) }
        position += 1
    }

    private func unexpected(expecting what: String) -> SafeTensorsError {
        guard let byte = current else { return failure("unexpected end of header, expected \(what)") }
        let shown = byte >= 0x21 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        return failure("unexpected \(shown), expected \(what)")
    }

    private mutating func parseValue() throws(SafeTensorsError) -> JSONValue {
        guard let byte = current else { throw unexpected(expecting: "a value") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw unexpected(expecting: "a value")
        }
    }

    private mutating func enterContainer() throws(SafeTensorsError) {
        depth += 1
        if depth > JSONParser.maximumDepth { throw failure("nesting deeper than \(JSONParser.maximumDepth) levels") }
    }

    private mutating func parseObject() throws(SafeTensorsError) -> JSONValue {
        try enterContainer()
        position += 1                                   // '{'
        var members: [JSONMember] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; depth -= 1; return .object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw unexpected(expecting: "a string key") }
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after an object key")
            skipWhitespace()
            let value = try parseValue()
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}' in an object")
            depth -= 1
            return .object(members)
        }
    }

    private mutating func parseArray() throws(SafeTensorsError) -> JSONValue {
        try enterContainer()
        position += 1                                   // '['
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; depth -= 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "]"), "',' or ']' in an array")
            depth -= 1
            return .array(elements)
        }
    }

    private mutating func parseLiteral(_ word: StaticString) throws(SafeTensorsError) {
        for expected in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard current == expected else { throw unexpected(expecting: "the literal \(word)") }
            position += 1
        }
    }

    /// Parses a string starting at its opening quote. The buffer is known to
    /// be valid UTF-8, so multi-byte sequences are copied through unchanged.
    private mutating func parseString() throws(SafeTensorsError) -> JSONString {
        position += 1                                   // '"'
        var result: [UInt8] = []
        var runStart = position
        while true {
            guard let byte = current else { throw failure("unterminated string") }
            if byte == UInt8(ascii: "\"") {
                result.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                position += 1
                return JSONString(bytes: result)
            }
            if byte < 0x20 { throw failure("raw control character 0x\(String(byte, radix: 16)) in a string") }
            if byte != UInt8(ascii: "\\") { position += 1; continue }
            result.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
            position += 1                               // '\'
            guard let escape = current else { throw failure("unterminated escape") }
            position += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): result.append(escape)
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                        throw failure("lone leading surrogate in a \\u escape")
                    }
                    position += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw failure("lone leading surrogate in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw failure("lone trailing surrogate in a \\u escape")
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw failure("invalid \\u escape") }
                result.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                position -= 1
                throw failure("invalid escape character")
            }
            runStart = position
        }
    }

    private mutating func parseHex4() throws(SafeTensorsError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current else { throw failure("unterminated \\u escape") }
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw failure("invalid hex digit in a \\u escape")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private static func isDigit(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    private mutating func parseNumber() throws(SafeTensorsError) -> JSONNumber {
        let start = position
        let isNegative = current == UInt8(ascii: "-")
        if isNegative { position += 1 }
        var magnitude: Int? = 0
        if current == UInt8(ascii: "0") {
            position += 1
            if JSONParser.isDigit(current) { throw failure("leading zero in a number") }
        } else if JSONParser.isDigit(current) {
            while let byte = current, JSONParser.isDigit(byte) {
                if let m = magnitude {
                    let (times10, o1) = m.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                    magnitude = o1 || o2 ? nil : sum
                }
                position += 1
            }
        } else {
            throw unexpected(expecting: "a digit")
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard JSONParser.isDigit(current) else { throw unexpected(expecting: "a digit after '.'") }
            while JSONParser.isDigit(current) { position += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard JSONParser.isDigit(current) else { throw unexpected(expecting: "a digit in an exponent") }
            while JSONParser.isDigit(current) { position += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        return JSONNumber(text: text, isInteger: isInteger, isNegative: isNegative, magnitude: isInteger ? magnitude : nil)
    }
}

/// The offset of the first byte that makes `bytes` invalid UTF-8, or nil when
/// it is valid. Strict: no overlong forms, no surrogates, nothing past
/// U+10FFFF (Unicode 15, table 3-7).
func firstInvalidUTF8Offset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    var i = 0
    let n = bytes.count
    func continuation(_ j: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
        j < n && range.contains(bytes[j])
    }
    while i < n {
        let lead = bytes[i]
        switch lead {
        case 0x00...0x7F:
            i += 1
        case 0xC2...0xDF:
            guard continuation(i + 1) else { return i }
            i += 2
        case 0xE0...0xEF:
            let second: ClosedRange<UInt8> = lead == 0xE0 ? 0xA0...0xBF : lead == 0xED ? 0x80...0x9F : 0x80...0xBF
            guard continuation(i + 1, second), continuation(i + 2) else { return i }
            i += 3
        case 0xF0...0xF4:
            let second: ClosedRange<UInt8> = lead == 0xF0 ? 0x90...0xBF : lead == 0xF4 ? 0x80...0x8F : 0x80...0xBF
            guard continuation(i + 1, second), continuation(i + 2), continuation(i + 3) else { return i }
            i += 4
        default:
            return i
        }
    }
    return nil
}

// MARK: - Writing

/// Compact JSON output in serde_json's style (no spaces; escapes only `"`,
/// `\` and control characters, as `\b \t \n \f \r` or lowercase `\u00xx`), so
/// Heed's headers are byte-identical to the reference writer's.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x08: raw("\\b")
            case 0x09: raw("\\t")
            case 0x0A: raw("\\n")
            case 0x0C: raw("\\f")
            case 0x0D: raw("\\r")
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                raw("\\u00")
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func integers(_ values: [Int]) {
        raw("[" + values.map(String.init).joined(separator: ",") + "]")
    }
}
