/// GPT-2's byte-level alphabet and pre-tokenisation.
///
/// Byte-level BPE works on bytes, not characters: every UTF-8 byte of the
/// text is spelled by one printable character (GPT-2 `bytes_to_unicode`):
/// the printable Latin-1 bytes `!`…`~`, `¡`…`¬`, `®`…`ÿ` stand for
/// themselves, and the other 68 bytes (controls, space, `\u{7F}`…`\u{A0}`,
/// soft hyphen) for U+0100… in order, so a space is `Ġ` (U+0120) and a
/// newline `Ċ` (U+010A). Vocabulary tokens are strings in this alphabet.
public enum ByteLevel {
    /// The character that spells each byte.
    public static let byteToCharacter: [Unicode.Scalar] = {
        var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var characters = printable.map { UInt32($0) }
        var next: UInt32 = 256
        for byte in 0..<256 where !printable.contains(byte) {
            printable.append(byte)
            characters.append(next)
            next += 1
        }
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        for (byte, character) in zip(printable, characters) { table[byte] = Unicode.Scalar(character)! }
        return table
    }()

    /// The byte each alphabet character spells (indexed by scalar value, up to U+0143).
    static let characterToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, character) in byteToCharacter.enumerated() { table[Int(character.value)] = Int16(byte) }
        return table
    }()

    /// The byte a character spells, or nil when it is not in the alphabet.
    @inline(__always)
    static func byte(of scalar: Unicode.Scalar) -> UInt8? {
        guard scalar.value < 0x144 else { return nil }
        let byte = characterToByte[Int(scalar.value)]
        return byte < 0 ? nil : UInt8(byte)
    }

    /// `bytes` spelled in the alphabet.
    static func spell(_ bytes: some Sequence<UInt8>) -> String {
        var view = String.UnicodeScalarView()
        for byte in bytes { view.append(byteToCharacter[Int(byte)]) }
        return String(view)
    }

    /// The bytes a token spells, as the reference's ByteLevel decoder reads it:
    /// every character mapped back to its byte, or — when any character is
    /// outside the alphabet — the token's own UTF-8.
    static func bytes(ofToken token: String) -> [UInt8] {
        var out: [UInt8] = []
        for scalar in token.unicodeScalars {
            guard let byte = byte(of: scalar) else { return Array(token.utf8) }
            out.append(byte)
        }
        return out
    }
}

/// How a byte-level tokenizer splits text into pieces before BPE: which
/// regex and digit splitting it declares.
///
/// | GGUF `tokenizer.ggml.pre` | tokenizer.json `pre_tokenizer` | ``ByteLevelPreTokenizer`` |
/// |---|---|---|
/// | `gpt2`, `mpt`, `olmo`, `jais` | `ByteLevel` | `.init(digits: .none)` |
/// | `smollm`, `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`, `minerva` | `Sequence[Digits(individual_digits: true), ByteLevel]` | `.init(digits: .individual)` |
///
/// The regex is GPT-2's, as the reference's `ByteLevel` pre-tokenizer runs it:
///
/// ```
/// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// ```
///
/// matched by a hand-written scanner with the reference's own character
/// classes (`UnicodeTables`). llama.cpp's `smollm` entry lists `\p{N}` and
/// the same regex less the final `\s+`; its splitter keeps unmatched text as
/// pieces, which gives the same pieces.
public struct ByteLevelPreTokenizer: Sendable, Equatable {
    /// Digit splitting before the regex (the `Digits` pre-tokenizer, with
    /// Rust's `char::is_numeric`).
    public enum Digits: Sendable, Equatable {
        /// No digit splitting.
        case none
        /// Every numeric character is a piece of its own.
        case individual
        /// Runs of numeric characters are pieces.
        case contiguous
    }

    /// Digit splitting, first.
    public var digits: Digits
    /// Prepend a space to every piece that does not start with one (GPT-2's
    /// `add_prefix_space`; false for SmolLM2).
    public var addPrefixSpace: Bool
    /// Split with the GPT-2 regex (false: each piece is one word).
    public var useRegex: Bool

    /// A pre-tokenizer; the defaults are GPT-2's regex alone, with no prefix space.
    public init(digits: Digits = .none, addPrefixSpace: Bool = false, useRegex: Bool = true) {
        self.digits = digits
        self.addPrefixSpace = addPrefixSpace
        self.useRegex = useRegex
    }

    /// The pre-tokenizer llama.cpp associates with a `tokenizer.ggml.pre`
    /// name, or nil for a name Heed does not implement.
    public init?(ggufName name: String) {
        switch name {
        case "gpt2", "mpt", "olmo", "jais", "default": self.init(digits: .none)
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva": self.init(digits: .individual)
        default: return nil
        }
    }

    /// The pieces of `text`, each as its scalars.
    func pieces(_ text: String) -> [[Unicode.Scalar]] {
        var pieces: [[Unicode.Scalar]] = []
        forEachPiece(Array(text.unicodeScalars)) { pieces.append(Array($0)) }
        return pieces
    }

    /// Calls `body` with each piece of `scalars`, in order (slices of
    /// `scalars`, or of a copy that starts with the prefix space).
    func forEachPiece(_ scalars: [Unicode.Scalar], _ body: (ArraySlice<Unicode.Scalar>) -> Void) {
        var classes: [CharacterClass] = []
        func split(_ part: ArraySlice<Unicode.Scalar>) {
            guard useRegex else { body(part); return }
            ByteLevelPreTokenizer.gpt2Matches(part, classes: &classes) { body(part[$0]) }
        }
        func emit(_ part: ArraySlice<Unicode.Scalar>) {
            if addPrefixSpace && part.first != " " {
                split(([" "] + part)[...])
            } else {
                split(part)
            }
        }
        guard digits != .none else {
            if !scalars.isEmpty { emit(scalars[...]) }
            return
        }
        var start = 0
        var i = 0
        while i < scalars.count {
            guard UnicodeTables.numeric.contains(scalars[i]) else { i += 1; continue }
            var end = i + 1
            if digits == .contiguous { while end < scalars.count, UnicodeTables.numeric.contains(scalars[end]) { end += 1 } }
            if start < i { emit(scalars[start..<i]) }
            emit(scalars[i..<end])
            start = end
            i = end
        }
        if start < scalars.count { emit(scalars[start...]) }
    }

    enum CharacterClass: UInt8 { case other, letter, number, whitespace }

    /// The class of every BMP code point, one lookup instead of three (64 KiB).
    private static let planeZeroClasses: [CharacterClass] = (0..<0x10000).map { slowCharacterClass(UInt32($0)) }

    private static func slowCharacterClass(_ value: UInt32) -> CharacterClass {
        if UnicodeTables.byteLevelLetter.contains(value) { return .letter }
        if UnicodeTables.byteLevelNumber.contains(value) { return .number }
        if UnicodeTables.byteLevelWhitespace.contains(value) { return .whitespace }
        return .other
    }

    @inline(__always)
    private static func characterClass(_ scalar: Unicode.Scalar) -> CharacterClass {
        scalar.value < 0x10000 ? planeZeroClasses[Int(scalar.value)] : slowCharacterClass(scalar.value)
    }

    /// The ranges of consecutive matches of the GPT-2 regex in `scalars`,
    /// which together cover it (every character matches some alternative).
    static func gpt2Matches(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var classes: [CharacterClass] = []
        var matches: [Range<Int>] = []
        gpt2Matches(scalars[...], classes: &classes) { matches.append($0) }
        return matches
    }

    /// Calls `body` with the range (in `scalars`' indices) of each match.
    /// `classes` is scratch space, reused between calls.
    static func gpt2Matches(_ scalars: ArraySlice<Unicode.Scalar>, classes: inout [CharacterClass], _ body: (Range<Int>) -> Void) {
        let base = scalars.startIndex, n = scalars.endIndex
        classes.removeAll(keepingCapacity: true)
        for scalar in scalars { classes.append(characterClass(scalar)) }
        @inline(__always) func kind(_ i: Int) -> CharacterClass { classes[i - base] }
        /// The end of the run of `wanted` characters starting at `from`.
        func run(_ wanted: CharacterClass, from: Int) -> Int {
            var end = from
            while end < n, kind(end) == wanted { end += 1 }
            return end
        }
        var i = base
        while i < n {
            let end: Int
            let scalar = scalars[i]
            if scalar == "'", i + 1 < n, let contraction = contractionEnd(scalars, at: i) {
                end = contraction                                         // 's 't 're 've 'm 'll 'd
            } else if scalar == " ", i + 1 < n, kind(i + 1) != .whitespace {
                end = run(kind(i + 1), from: i + 1)                       // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+"
            } else if kind(i) != .whitespace {
                end = run(kind(i), from: i)                               // the same, without the space
            } else {
                let spaces = run(.whitespace, from: i)
                // \s+(?!\S): all of the run at the end of the text; before a
                // non-space, all but its last character (which then starts the
                // next match); a single space before a non-space is \s+.
                end = spaces == n || spaces - i == 1 ? spaces : spaces - 1
            }
            body(i..<end)
            i = end
        }
    }

    private static func contractionEnd(_ s: ArraySlice<Unicode.Scalar>, at i: Int) -> Int? {
        switch s[i + 1] {
        case "s", "t", "m", "d": return i + 2
        case "r", "v": return i + 2 < s.endIndex && s[i + 2] == "e" ? i + 3 : nil
        case "l": return i + 2 < s.endIndex && s[i + 2] == "l" ? i + 3 : nil
        default: return nil
        }
    }

    /// Appends the UTF-8 encoding of `scalars` to `bytes`.
    static func appendUTF8(_ scalars: ArraySlice<Unicode.Scalar>, to bytes: inout [UInt8]) {
        for scalar in scalars {
            let v = scalar.value
            if v < 0x80 {
                bytes.append(UInt8(v))
            } else if v < 0x800 {
                bytes.append(UInt8(0xC0 | v >> 6))
                bytes.append(UInt8(0x80 | v & 0x3F))
            } else if v < 0x10000 {
                bytes.append(UInt8(0xE0 | v >> 12))
                bytes.append(UInt8(0x80 | v >> 6 & 0x3F))
                bytes.append(UInt8(0x80 | v & 0x3F))
            } else {
                bytes.append(UInt8(0xF0 | v >> 18))
                bytes.append(UInt8(0x80 | v >> 12 & 0x3F))
                bytes.append(UInt8(0x80 | v >> 6 & 0x3F))
                bytes.append(UInt8(0x80 | v & 0x3F))
            }
        }
    }
}
