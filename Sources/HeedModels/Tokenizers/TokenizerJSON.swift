import Foundation

// A small, strict JSON reader for tokenizer.json files, and path-aware access
// to what it reads.
//
// Why not Foundation's JSONSerialization or JSONDecoder: vocabularies are
// objects keyed by token strings, and Swift's String == (and so a
// [String: Int]) equates canonically equivalent spellings ("é" and "e\u{301}"),
// which are distinct tokens; numbers must stay exact integers; and hostile
// input must not exhaust the stack. Objects keep their members in order, as
// written. The grammar is RFC 8259, as serde_json (the reference's parser)
// reads it: lone surrogates in `\u` escapes, raw control characters in
// strings, trailing characters and nesting deeper than 128 levels are errors.

/// A parsed JSON value; objects keep their members in document order.
indirect enum TokenizerJSON: Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([TokenizerJSON])
    case object([(key: String, value: TokenizerJSON)])

    /// "an object", "the string \"BPE\"", … for error messages.
    var summary: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .integer(let i): return "the integer \(i)"
        case .number(let d): return "the number \(d)"
        case .string(let s): return "the string \(GGUFError.quote(s))"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    static let maximumDepth = 128

    /// Parses a whole document.
    static func parse(_ data: Data) throws(TokenizerError) -> TokenizerJSON {
        let bytes = [UInt8](data)
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("trailing characters after the document") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func error(_ reason: String) -> TokenizerError { .invalidJSON(reason: reason, byteOffset: position) }

        mutating func skipWhitespace() {
            while position < bytes.count {
                let byte = bytes[position]
                guard byte == 0x20 || byte == 0x0A || byte == 0x09 || byte == 0x0D else { return }
                position += 1
            }
        }

        mutating func value(depth: Int) throws(TokenizerError) -> TokenizerJSON {
            guard depth < TokenizerJSON.maximumDepth else { throw error("nesting deeper than \(TokenizerJSON.maximumDepth) levels") }
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw error("unexpected character \(String(format: "0x%02X", bytes[position]))")
            }
        }

        mutating func literal(_ word: String) throws(TokenizerError) {
            let expected = Array(word.utf8)
            guard position + expected.count <= bytes.count, Array(bytes[position..<(position + expected.count)]) == expected else {
                throw error("expected \(word)")
            }
            position += expected.count
        }

        mutating func object(depth: Int) throws(TokenizerError) -> TokenizerJSON {
            position += 1
            var members: [(key: String, value: TokenizerJSON)] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                let key = try string()
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
                position += 1
                skipWhitespace()
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                guard position < bytes.count else { throw error("unterminated object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                guard bytes[position] == UInt8(ascii: "}") else { throw error("expected ',' or '}'") }
                position += 1
                return .object(members)
            }
        }

        mutating func array(depth: Int) throws(TokenizerError) -> TokenizerJSON {
            position += 1
            var elements: [TokenizerJSON] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw error("unterminated array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                guard bytes[position] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
                position += 1
                return .array(elements)
            }
        }

        mutating func number() throws(TokenizerError) -> TokenizerJSON {
            let start = position
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            func digits() -> Int {
                let from = position
                while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
                return position - from
            }
            let integerStart = position
            let integerDigits = digits()
            guard integerDigits > 0 else { throw error("expected digits") }
            guard !(integerDigits > 1 && bytes[integerStart] == UInt8(ascii: "0")) else { throw error("leading zero") }
            var isInteger = true
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                isInteger = false
                guard digits() > 0 else { throw error("expected digits after '.'") }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                isInteger = false
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw error("expected exponent digits") }
            }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            if isInteger, let integer = Int(text) { return .integer(integer) }
            guard let double = Double(text) else { throw error("unreadable number \(text)") }
            return .number(double)
        }

        mutating func string() throws(TokenizerError) -> String {
            position += 1   // opening quote
            var out: [UInt8] = []
            while true {
                guard position < bytes.count else { throw error("unterminated string") }
                let byte = bytes[position]
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    guard let text = String(validating: out, as: UTF8.self) else { throw error("string is not valid UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    position += 1
                    guard position < bytes.count else { throw error("unterminated escape") }
                    let escape = bytes[position]
                    position += 1
                    switch escape {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "/"): out.append(0x2F)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var value = try hex4()
                        if (0xD800...0xDBFF).contains(value) {
                            guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                                throw error("lone high surrogate")
                            }
                            position += 2
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw error("high surrogate without a low one") }
                            value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(value) {
                            throw error("lone low surrogate")
                        }
                        out.append(contentsOf: Array(String(Character(Unicode.Scalar(value)!)).utf8))
                    default:
                        position -= 1
                        throw error("invalid escape")
                    }
                case 0x00..<0x20:
                    throw error("raw control character in a string")
                default:
                    out.append(byte)
                    position += 1
                }
            }
        }

        mutating func hex4() throws(TokenizerError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw error("invalid hex digit in \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }
    }
}

/// A JSON value with the path that led to it, so every error names its field.
struct JSONField {
    let value: TokenizerJSON
    let path: String

    func fail(_ reason: String) -> TokenizerError { .invalidConfiguration(path: path, reason: reason) }

    /// The member `key` of this object; missing is an error.
    func member(_ key: String) throws(TokenizerError) -> JSONField {
        guard let found = try optionalMember(key) else { throw JSONField(value: .null, path: childPath(key)).fail("missing") }
        return found
    }

    /// The member `key` of this object, or nil when absent or null.
    func optionalMember(_ key: String) throws(TokenizerError) -> JSONField? {
        guard case .object(let members) = value else { throw fail("expected an object, found \(value.summary)") }
        guard let found = members.last(where: { $0.key.utf8.elementsEqual(key.utf8) }) else { return nil }   // serde keeps the last
        if case .null = found.value { return nil }
        return JSONField(value: found.value, path: childPath(key))
    }

    private func childPath(_ key: String) -> String {
        let simple = !key.isEmpty && key.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) }
        return simple ? (path.isEmpty ? key : "\(path).\(key)") : "\(path)[\(GGUFError.quote(key))]"
    }

    func string() throws(TokenizerError) -> String {
        guard case .string(let s) = value else { throw fail("expected a string, found \(value.summary)") }
        return s
    }

    func bool() throws(TokenizerError) -> Bool {
        guard case .bool(let b) = value else { throw fail("expected true or false, found \(value.summary)") }
        return b
    }

    func integer() throws(TokenizerError) -> Int {
        guard case .integer(let i) = value else { throw fail("expected an integer, found \(value.summary)") }
        return i
    }

    func number() throws(TokenizerError) -> Double {
        switch value {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: throw fail("expected a number, found \(value.summary)")
        }
    }

    func array() throws(TokenizerError) -> [JSONField] {
        guard case .array(let elements) = value else { throw fail("expected an array, found \(value.summary)") }
        return elements.enumerated().map { JSONField(value: $1, path: "\(path)[\($0)]") }
    }

    func members() throws(TokenizerError) -> [(key: String, value: JSONField)] {
        guard case .object(let members) = value else { throw fail("expected an object, found \(value.summary)") }
        return members.map { ($0.key, JSONField(value: $0.value, path: childPath($0.key))) }
    }

    /// The `type` member of a component object (normalizer, model, …).
    func typeName() throws(TokenizerError) -> String { try member("type").string() }
}
