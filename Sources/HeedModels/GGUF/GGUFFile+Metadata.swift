/// Typed reads of metadata values, each throwing a clear error when the key
/// is missing or holds another type.
extension GGUFFile {
    /// The value for `key`.
    ///
    /// - Throws: ``GGUFError/keyNotFound(_:)``.
    public func value(_ key: String) throws(GGUFError) -> GGUFValue {
        guard let value = metadata[key] else { throw .keyNotFound(key) }
        return value
    }

    /// A `STRING` value.
    ///
    /// - Throws: ``GGUFError/keyNotFound(_:)``, ``GGUFError/typeMismatch(key:expected:found:)``.
    public func string(_ key: String) throws(GGUFError) -> String {
        let value = try value(key)
        guard case .string(let text) = value else { throw .typeMismatch(key: key, expected: "STRING", found: value.description) }
        return text
    }

    /// An integer value of any width (`UINT8` … `INT64`) that fits in `Int`.
    ///
    /// - Throws: ``GGUFError/keyNotFound(_:)``, ``GGUFError/typeMismatch(key:expected:found:)``.
    public func integer(_ key: String) throws(GGUFError) -> Int {
        let value = try value(key)
        guard let integer = value.integer else { throw .typeMismatch(key: key, expected: "an integer", found: value.description) }
        return integer
    }

    /// A `FLOAT32` or `FLOAT64` value (integers are accepted too).
    ///
    /// - Throws: ``GGUFError/keyNotFound(_:)``, ``GGUFError/typeMismatch(key:expected:found:)``.
    public func number(_ key: String) throws(GGUFError) -> Double {
        let value = try value(key)
        guard let number = value.number else { throw .typeMismatch(key: key, expected: "a number", found: value.description) }
        return number
    }

    /// A `BOOL` value.
    ///
    /// - Throws: ``GGUFError/keyNotFound(_:)``, ``GGUFError/typeMismatch(key:expected:found:)``.
    public func bool(_ key: String) throws(GGUFError) -> Bool {
        let value = try value(key)
        guard case .bool(let flag) = value else { throw .typeMismatch(key: key, expected: "BOOL", found: value.description) }
        return flag
    }

    /// An `ARRAY` value.
    ///
    /// - Throws: ``GGUFError/keyNotFound(_:)``, ``GGUFError/typeMismatch(key:expected:found:)``.
    public func array(_ key: String) throws(GGUFError) -> GGUFArray {
        let value = try value(key)
        guard case .array(let array) = value else { throw .typeMismatch(key: key, expected: "ARRAY", found: value.description) }
        return array
    }

    /// An `ARRAY[STRING]` value.
    ///
    /// - Throws: ``GGUFError/keyNotFound(_:)``, ``GGUFError/typeMismatch(key:expected:found:)``.
    public func strings(_ key: String) throws(GGUFError) -> [String] {
        let array = try array(key)
        guard case .string(let strings) = array else { throw .typeMismatch(key: key, expected: "ARRAY[STRING]", found: array.description) }
        return strings
    }

    /// An array of integers of any width that all fit in `Int`.
    ///
    /// - Throws: ``GGUFError/keyNotFound(_:)``, ``GGUFError/typeMismatch(key:expected:found:)``.
    public func integers(_ key: String) throws(GGUFError) -> [Int] {
        let array = try array(key)
        guard let integers = array.integers else { throw .typeMismatch(key: key, expected: "an integer array", found: array.description) }
        return integers
    }
}
