/// A token matched in the input text before the model runs (`[CLS]`,
/// `<|im_start|>`, …): the `added_tokens` of a tokenizer.json, or the
/// control and user-defined tokens of a GGUF vocabulary.
public struct AddedToken: Sendable, Equatable {
    /// The token's id.
    public var id: Int
    /// The text it matches, e.g. `[MASK]`.
    public var content: String
    /// Special tokens are skipped by `decode(_:skipSpecialTokens: true)`.
    public var special: Bool
    /// Matched after normalisation (against the normalised content) instead
    /// of in the raw input.
    public var normalized: Bool
    /// Absorbs the whitespace before it.
    public var leftStrip: Bool
    /// Absorbs the whitespace after it.
    public var rightStrip: Bool
    /// Matches only when not preceded or followed by a word character.
    public var singleWord: Bool

    /// An added token; by default special and matched in the raw input, as
    /// the special tokens of BERT and SmolLM2 are.
    public init(id: Int, content: String, special: Bool = true, normalized: Bool = false,
                leftStrip: Bool = false, rightStrip: Bool = false, singleWord: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.normalized = normalized
        self.leftStrip = leftStrip
        self.rightStrip = rightStrip
        self.singleWord = singleWord
    }
}

/// Splits text on added tokens the way Hugging Face tokenizers'
/// `AddedVocabulary` does: non-normalised tokens are found in the raw text,
/// leftmost-longest, without overlaps (an Aho–Corasick `LeftmostLongest`
/// search over bytes); `single_word` drops a match touching a word character
/// (`\w`); `lstrip`/`rstrip` widen a match over the whitespace (`\s`) beside
/// it. What lies between matches is normalised, then searched again for the
/// normalised tokens (whose content was normalised once, at load).
struct AddedVocabulary: Sendable {
    /// One piece of the input: text for the model, or an added token.
    enum Piece: Equatable {
        case text(String)
        case token(Int)
    }

    let tokens: [AddedToken]
    /// Non-normalised tokens: (UTF-8 content, id), grouped by first byte, longest first.
    private let raw: [UInt8: [([UInt8], Int)]]
    /// Normalised tokens, by their normalised content.
    private let normalized: [UInt8: [([UInt8], Int)]]
    private let byID: [Int: AddedToken]

    /// `normalize` maps a normalised token's content to what it matches.
    init(_ tokens: [AddedToken], normalize: (String) -> String) {
        self.tokens = tokens
        var raw: [UInt8: [([UInt8], Int)]] = [:], normalized: [UInt8: [([UInt8], Int)]] = [:]
        var byID: [Int: AddedToken] = [:]
        for token in tokens {
            byID[token.id] = token
            let pattern = Array((token.normalized ? normalize(token.content) : token.content).utf8)
            guard let first = pattern.first else { continue }   // empty tokens never match (as in the reference)
            if token.normalized { normalized[first, default: []].append((pattern, token.id)) } else { raw[first, default: []].append((pattern, token.id)) }
        }
        // Longest first; among equal lengths the first declared wins.
        self.raw = raw.mapValues { $0.enumerated().sorted { ($0.element.0.count, -$0.offset) > ($1.element.0.count, -$1.offset) }.map(\.element) }
        self.normalized = normalized.mapValues { $0.enumerated().sorted { ($0.element.0.count, -$0.offset) > ($1.element.0.count, -$1.offset) }.map(\.element) }
        self.byID = byID
    }

    var isEmpty: Bool { tokens.isEmpty }

    func token(id: Int) -> AddedToken? { byID[id] }

    /// The pieces of `text`: added tokens, and normalised text between them.
    func split(_ text: String, normalize: (String) -> String) -> [Piece] {
        var pieces: [Piece] = []
        for piece in find(Array(text.utf8), in: raw) {
            guard case .text(let segment) = piece else { pieces.append(piece); continue }
            let normalizedSegment = normalize(segment)
            pieces += normalized.isEmpty ? [.text(normalizedSegment)] : find(Array(normalizedSegment.utf8), in: normalized)
        }
        return pieces
    }

    /// Leftmost-longest, non-overlapping matches of `patterns` in `bytes`.
    private func find(_ bytes: [UInt8], in patterns: [UInt8: [([UInt8], Int)]]) -> [Piece] {
        if patterns.isEmpty { return [.text(String(decoding: bytes, as: UTF8.self))] }
        var pieces: [Piece] = []
        var emitted = 0          // bytes before this were emitted
        var position = 0
        while position < bytes.count {
            guard let candidates = patterns[bytes[position]],
                  let (pattern, id) = candidates.first(where: { position + $0.0.count <= bytes.count
                                                                && bytes[position..<(position + $0.0.count)].elementsEqual($0.0) }) else {
                position += 1
                continue
            }
            var start = position, stop = position + pattern.count
            let token = byID[id]!
            if token.singleWord {
                let before = start == 0 || !AddedVocabulary.endsWithWordCharacter(bytes[..<start])
                let after = stop == bytes.count || !AddedVocabulary.startsWithWordCharacter(bytes[stop...])
                // A rejected match is still consumed: the reference's match iterator resumes after it.
                guard before && after else { position = stop; continue }
            }
            if token.leftStrip { start = Swift.max(AddedVocabulary.whitespaceRunStart(bytes[..<start]), emitted) }
            if token.rightStrip { stop = AddedVocabulary.whitespaceRunEnd(bytes[stop...]) }
            if emitted < start { pieces.append(.text(String(decoding: bytes[emitted..<start], as: UTF8.self))) }
            pieces.append(.token(id))
            emitted = stop
            position = stop
        }
        if emitted < bytes.count { pieces.append(.text(String(decoding: bytes[emitted...], as: UTF8.self))) }
        return pieces
    }

    // `\w` and `\s` of Rust's regex crate (Unicode): word = Alphabetic, M*, Nd, Pc, Join_Control.
    private static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    private static func endsWithWordCharacter(_ bytes: ArraySlice<UInt8>) -> Bool {
        String(decoding: bytes, as: UTF8.self).unicodeScalars.last.map(isWordCharacter) ?? false
    }

    private static func startsWithWordCharacter(_ bytes: ArraySlice<UInt8>) -> Bool {
        String(decoding: bytes, as: UTF8.self).unicodeScalars.first.map(isWordCharacter) ?? false
    }

    /// The byte offset where the trailing run of whitespace of `bytes` begins.
    private static func whitespaceRunStart(_ bytes: ArraySlice<UInt8>) -> Int {
        var start = bytes.endIndex
        let scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        for scalar in scalars.reversed() {
            guard scalar.properties.isWhitespace else { break }
            start -= String(scalar).utf8.count
        }
        return start
    }

    /// The byte offset where the leading run of whitespace of `bytes` ends.
    private static func whitespaceRunEnd(_ bytes: ArraySlice<UInt8>) -> Int {
        var end = bytes.startIndex
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            guard scalar.properties.isWhitespace else { break }
            end += String(scalar).utf8.count
        }
        return end
    }
}
