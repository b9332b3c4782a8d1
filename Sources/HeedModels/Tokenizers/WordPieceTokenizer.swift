import Foundation

/// BERT's WordPiece tokenizer, read from a Hugging Face `tokenizer.json` (or
/// a `vocab.txt` with BERT's defaults), giving the same ids as the
/// reference `tokenizers` library.
///
/// The pipeline, in the reference's order:
///
/// 1. added tokens (`[CLS]`, `[MASK]`, …) are found in the raw text and kept whole;
/// 2. the text between them is normalised (``BertNormalizer``: cleaning, CJK
///    spacing, accent stripping, lowercasing);
/// 3. pre-tokenised (split on whitespace, punctuation isolated);
/// 4. each word becomes the longest vocabulary prefix, then `##`-prefixed
///    continuations, greedily; a word with no complete cover (or longer than
///    `maxInputCharactersPerWord` characters) becomes `[UNK]`;
/// 5. truncated to `maxLength` (counting the special tokens), then wrapped by
///    the template: `[CLS] … [SEP]`.
///
/// ```swift
/// let tokenizer = try WordPieceTokenizer(url: modelDirectory.appendingPathComponent("tokenizer.json"))
/// let encoding = try tokenizer.encode("The quick brown fox jumps over the lazy dog.")
/// // encoding.ids == [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]
/// let batch = try tokenizer.encode(batch: ["a", "a longer text"], maxLength: 128, padding: .longest)
/// // batch[0].attentionMask == [1, 1, 1, 0, 0]  ("a longer text" is 5 tokens)
/// ```
///
/// The file's own `truncation` and `padding` settings are reported in
/// ``configuredMaxLength`` but not applied: callers pass `maxLength` (as
/// sentence-transformers does with its own limit of 256 for MiniLM).
public final class WordPieceTokenizer: Sendable {
    /// The normaliser.
    public let normalizer: BertNormalizer
    /// Tokens matched in the raw input before normalisation.
    public var addedTokens: [AddedToken] { added.tokens }
    /// The unknown token, e.g. `[UNK]`.
    public let unknownToken: String
    /// The prefix of word continuations, e.g. `##`.
    public let continuingSubwordPrefix: String
    /// Longer words (in characters) become the unknown token.
    public let maxInputCharactersPerWord: Int
    /// The file's `truncation.max_length`, if it has one (128 for all-MiniLM-L6-v2).
    public let configuredMaxLength: Int?
    /// The pad token and its id (`[PAD]`, 0).
    public let padToken: (token: String, id: Int)?

    /// Token by id (nil for an id no token has).
    private let idToToken: [String?]
    /// Id by token, keyed by the token's UTF-8 bytes.
    private let tokenToID: [[UInt8]: Int]
    private let unknownID: Int
    private let added: AddedVocabulary
    private let template: SequenceTemplate
    private let cleanUpDecoding: Bool

    // MARK: Loading

    /// Reads a Hugging Face `tokenizer.json` with a WordPiece model.
    ///
    /// - Throws: ``TokenizerError`` naming the field, for a malformed file or
    ///   a component Heed does not implement.
    public convenience init(url: URL) throws(TokenizerError) {
        try self.init(data: readFile(url))
    }

    /// Reads the contents of a Hugging Face `tokenizer.json`.
    public convenience init(data: Data) throws(TokenizerError) {
        let root = JSONField(value: try TokenizerJSON.parse(data), path: "")
        let model = try root.member("model")
        guard try model.typeName() == "WordPiece" else {
            throw TokenizerError.unsupported(path: "model.type", what: "model \(GGUFError.quote(try model.typeName())) in a WordPiece tokenizer")
        }
        var vocabulary: [(String, Int)] = []
        for (token, id) in try model.member("vocab").members() { vocabulary.append((token, try id.integer())) }
        let normalizer = try WordPieceTokenizer.normalizer(try root.optionalMember("normalizer"))
        if let pre = try root.optionalMember("pre_tokenizer"), try pre.typeName() != "BertPreTokenizer" {
            throw TokenizerError.unsupported(path: pre.path, what: "pre-tokenizer \(GGUFError.quote(try pre.typeName()))")
        }
        var cleanUp = true
        if let decoder = try root.optionalMember("decoder") {
            guard try decoder.typeName() == "WordPiece" else {
                throw TokenizerError.unsupported(path: decoder.path, what: "decoder \(GGUFError.quote(try decoder.typeName()))")
            }
            cleanUp = try decoder.optionalMember("cleanup")?.bool() ?? true
        }
        let maxLength = try root.optionalMember("truncation")?.member("max_length").integer()
        var padToken: (String, Int)?
        if let padding = try root.optionalMember("padding") {
            padToken = (try padding.member("pad_token").string(), try padding.member("pad_id").integer())
        }
        try self.init(vocabulary: vocabulary,
                      normalizer: normalizer,
                      addedTokens: try readAddedTokens(root.optionalMember("added_tokens")),
                      template: try SequenceTemplate(json: root.optionalMember("post_processor")),
                      unknownToken: try model.member("unk_token").string(),
                      continuingSubwordPrefix: try model.optionalMember("continuing_subword_prefix")?.string() ?? "##",
                      maxInputCharactersPerWord: try model.optionalMember("max_input_chars_per_word")?.integer() ?? 100,
                      configuredMaxLength: maxLength, padToken: padToken, cleanUpDecoding: cleanUp)
    }

    /// Reads a BERT `vocab.txt` (one token a line, id = line number) with
    /// BERT's defaults: `[PAD] [UNK] [CLS] [SEP] [MASK]` as special tokens
    /// matched in the raw text, `[CLS] $A [SEP]`, `##` continuations,
    /// 100-character words, and `normalizer`.
    ///
    /// - Throws: ``TokenizerError`` for an unreadable file, a token listed
    ///   twice, or a missing special token.
    public convenience init(vocabularyFile url: URL, normalizer: BertNormalizer = BertNormalizer()) throws(TokenizerError) {
        let data = [UInt8](try readFile(url))
        // Lines split on bytes: a String would keep "\r\n" together as one Character.
        var lines: [String] = []
        for (number, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            guard let text = String(validating: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self) else {
                throw TokenizerError.unreadableFile(path: url.path, reason: "line \(number + 1) is not valid UTF-8")
            }
            lines.append(text)
        }
        if lines.last == "" { lines.removeLast() }   // the final newline
        let vocabulary = lines.enumerated().map { ($1, $0) }
        let ids = Dictionary(vocabulary, uniquingKeysWith: { first, _ in first })
        var special: [AddedToken] = []
        for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
            guard let id = ids[token] else { throw TokenizerError.missingToken(role: "BERT special token", token: token) }
            special.append(AddedToken(id: id, content: token))
        }
        let template = SequenceTemplate(prefix: [.init(id: ids["[CLS]"]!, token: "[CLS]", typeId: 0)],
                                        suffix: [.init(id: ids["[SEP]"]!, token: "[SEP]", typeId: 0)])
        try self.init(vocabulary: vocabulary, normalizer: normalizer, addedTokens: special, template: template,
                      unknownToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharactersPerWord: 100,
                      configuredMaxLength: nil, padToken: ("[PAD]", ids["[PAD]"]!), cleanUpDecoding: true)
    }

    init(vocabulary: [(String, Int)], normalizer: BertNormalizer, addedTokens: [AddedToken], template: SequenceTemplate,
         unknownToken: String, continuingSubwordPrefix: String, maxInputCharactersPerWord: Int,
         configuredMaxLength: Int?, padToken: (String, Int)?, cleanUpDecoding: Bool) throws(TokenizerError) {
        (idToToken, tokenToID) = try buildVocabulary(vocabulary + addedTokens.map { ($0.content, $0.id) }, modelCount: vocabulary.count)
        guard let unknownID = tokenToID[Array(unknownToken.utf8)] else { throw .missingToken(role: "unknown token", token: unknownToken) }
        for special in template.prefix + template.suffix where tokenToID[Array(special.token.utf8)] != special.id {
            throw .missingToken(role: "template token (id \(special.id))", token: special.token)
        }
        guard maxInputCharactersPerWord >= 0 else {
            throw .invalidConfiguration(path: "model.max_input_chars_per_word", reason: "negative")
        }
        self.normalizer = normalizer
        self.added = AddedVocabulary(addedTokens, normalize: normalizer.normalize)
        self.template = template
        self.unknownToken = unknownToken
        self.unknownID = unknownID
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.maxInputCharactersPerWord = maxInputCharactersPerWord
        self.configuredMaxLength = configuredMaxLength
        self.padToken = padToken
        self.cleanUpDecoding = cleanUpDecoding
    }

    static func normalizer(_ field: JSONField?) throws(TokenizerError) -> BertNormalizer {
        guard let field else { return BertNormalizer(cleanText: false, handleChineseCharacters: false, stripAccents: false, lowercase: false) }
        guard try field.typeName() == "BertNormalizer" else {
            throw TokenizerError.unsupported(path: field.path, what: "normalizer \(GGUFError.quote(try field.typeName()))")
        }
        return BertNormalizer(cleanText: try field.optionalMember("clean_text")?.bool() ?? true,
                              handleChineseCharacters: try field.optionalMember("handle_chinese_chars")?.bool() ?? true,
                              stripAccents: try field.optionalMember("strip_accents")?.bool(),
                              lowercase: try field.optionalMember("lowercase")?.bool() ?? true)
    }

    // MARK: Vocabulary

    /// Number of ids (model vocabulary and added tokens): one more than the largest id.
    public var vocabularySize: Int { idToToken.count }

    /// The id of a token (compared byte for byte), or nil.
    public func id(of token: String) -> Int? { tokenToID[Array(token.utf8)] }

    /// The token of an id, or nil.
    public func token(of id: Int) -> String? { idToToken.indices.contains(id) ? idToToken[id] : nil }

    // MARK: Encoding

    /// Tokenises one text.
    ///
    /// - Parameters:
    ///   - addSpecialTokens: wrap in the template (`[CLS] … [SEP]`).
    ///   - maxLength: keep at most this many tokens, special ones included
    ///     (the end of the text is cut, as the reference's `LongestFirst` does
    ///     for one sequence).
    /// - Throws: ``TokenizerError/maxLengthTooShort(_:specialTokens:)`` when
    ///   `maxLength` cannot hold the special tokens.
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) throws(TokenizerError) -> Encoding {
        try template.apply(to: encodeContent(text), addSpecialTokens: addSpecialTokens, maxLength: maxLength)
    }

    /// Tokenises a batch: each text as ``encode(_:addSpecialTokens:maxLength:)``,
    /// then padded on the right with the pad token (attention mask 0).
    ///
    /// - Throws: ``TokenizerError/maxLengthTooShort(_:specialTokens:)``;
    ///   ``TokenizerError/missingToken(role:token:)`` when padding is asked
    ///   for and the file declares no pad token and has no `[PAD]`.
    public func encode(batch texts: [String], addSpecialTokens: Bool = true, maxLength: Int? = nil,
                       padding: Padding = .longest) throws(TokenizerError) -> [Encoding] {
        var encodings: [Encoding] = []
        for text in texts { encodings.append(try encode(text, addSpecialTokens: addSpecialTokens, maxLength: maxLength)) }
        let length: Int
        switch padding {
        case .none: return encodings
        case .longest: length = encodings.map(\.count).max() ?? 0
        case .fixed(let fixed): length = fixed
        }
        guard encodings.contains(where: { $0.count < length }) else { return encodings }
        guard let pad = padToken ?? id(of: "[PAD]").map({ ("[PAD]", $0) }) else {
            throw .missingToken(role: "pad token", token: "[PAD]")
        }
        for i in encodings.indices { encodings[i].pad(to: length, id: pad.id, token: pad.token, typeId: 0) }
        return encodings
    }

    /// The tokens of `text` before truncation and the template.
    func encodeContent(_ text: String) -> Encoding {
        var result = Encoding(ids: [], tokens: [])
        for piece in added.split(text, normalize: normalizer.normalize) {
            switch piece {
            case .token(let id):
                result.append(id: id, token: idToToken[id]!, typeId: 0)
            case .text(let segment):
                for word in BertPreTokenizer.words(segment) {
                    for id in wordPiece(word) { result.append(id: id, token: idToToken[id]!, typeId: 0) }
                }
            }
        }
        return result
    }

    /// Greedy longest-match-first WordPiece of one word.
    func wordPiece(_ word: [Unicode.Scalar]) -> [Int] {
        guard word.count <= maxInputCharactersPerWord else { return [unknownID] }
        // UTF-8 of the word and the byte offset of each scalar boundary.
        var bytes: [UInt8] = []
        var boundaries = [0]
        for scalar in word {
            bytes += String(scalar).utf8
            boundaries.append(bytes.count)
        }
        let prefix = Array(continuingSubwordPrefix.utf8)
        var pieces: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int?
            while start < end {
                let key = (start > 0 ? prefix : []) + bytes[boundaries[start]..<boundaries[end]]
                if let id = tokenToID[key] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unknownID] }
            pieces.append(id)
            start = end
        }
        return pieces
    }

    // MARK: Decoding

    /// The text of `ids` as the reference's WordPiece decoder writes it:
    /// continuations (`##…`) joined to the previous token, other tokens
    /// separated by a space, then (by default) the cleanup of spaces before
    /// punctuation and in contractions (`" ."` → `"."`, `" n't"` → `"n't"`).
    ///
    /// - Throws: ``TokenizerError/unknownID(_:vocabularySize:)``.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) throws(TokenizerError) -> String {
        var out = ""
        var first = true
        for id in ids {
            guard let token = token(of: id) else { throw .unknownID(id, vocabularySize: vocabularySize) }
            if skipSpecialTokens, added.token(id: id)?.special == true { continue }
            var piece = token
            if !first {
                if piece.utf8.starts(with: continuingSubwordPrefix.utf8) {
                    piece = String(decoding: Array(piece.utf8.dropFirst(continuingSubwordPrefix.utf8.count)), as: UTF8.self)
                } else {
                    piece = " " + piece
                }
            }
            first = false
            out += cleanUpDecoding ? WordPieceTokenizer.cleanUp(piece) : piece
        }
        return out
    }

    /// The reference decoder's `cleanup`, replacement by replacement.
    static func cleanUp(_ text: String) -> String {
        var text = text
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                           (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            text = replacingBytes(text, from, to)
        }
        return text
    }
}

// MARK: - Shared loading helpers

/// The whole file, or `.unreadableFile`.
func readFile(_ url: URL) throws(TokenizerError) -> Data {
    do {
        return try Data(contentsOf: url)
    } catch {
        throw .unreadableFile(path: url.path, reason: (error as NSError).localizedDescription)
    }
}

/// The `added_tokens` array of a tokenizer.json.
func readAddedTokens(_ field: JSONField?) throws(TokenizerError) -> [AddedToken] {
    guard let field else { return [] }
    var tokens: [AddedToken] = []
    for entry in try field.array() {
        tokens.append(AddedToken(id: try entry.member("id").integer(),
                                 content: try entry.member("content").string(),
                                 special: try entry.optionalMember("special")?.bool() ?? false,
                                 normalized: try entry.optionalMember("normalized")?.bool() ?? true,
                                 leftStrip: try entry.optionalMember("lstrip")?.bool() ?? false,
                                 rightStrip: try entry.optionalMember("rstrip")?.bool() ?? false,
                                 singleWord: try entry.optionalMember("single_word")?.bool() ?? false))
    }
    return tokens
}

/// The largest id a vocabulary may use: bounds the id table a hostile file can make Heed allocate.
let maximumVocabularyID = 16_777_215

/// Id ↔ token tables from (token, id) pairs: the model's `modelCount` pairs
/// first, then the added tokens, which may repeat a model token with its id.
func buildVocabulary(_ pairs: [(String, Int)], modelCount: Int) throws(TokenizerError) -> ([String?], [[UInt8]: Int]) {
    var tokenToID: [[UInt8]: Int] = [:]
    var maxID = -1
    for (token, id) in pairs {
        guard id >= 0 else { throw .invalidConfiguration(path: "vocab[\(GGUFError.quote(token))]", reason: "negative id \(id)") }
        guard id <= maximumVocabularyID else { throw .idTooLarge(id, limit: maximumVocabularyID) }
        maxID = Swift.max(maxID, id)
    }
    var idToToken = [String?](repeating: nil, count: maxID + 1)
    for (index, (token, id)) in pairs.enumerated() {
        let key = Array(token.utf8)
        if let existing = tokenToID[key] {
            if index >= modelCount && existing == id { continue }   // an added token that is also a model token
            throw .duplicateToken(token, firstID: existing, secondID: id)
        }
        if let other = idToToken[id] { throw .duplicateID(id, first: other, second: token) }
        tokenToID[key] = id
        idToToken[id] = token
    }
    return (idToToken, tokenToID)
}

/// `text` with every occurrence of `from` replaced by `to`, comparing bytes
/// (Swift's String search would match canonically equivalent spellings).
func replacingBytes(_ text: String, _ from: String, _ to: String) -> String {
    let source = Array(text.utf8), pattern = Array(from.utf8), replacement = Array(to.utf8)
    guard !pattern.isEmpty, source.count >= pattern.count else { return text }
    var out: [UInt8] = []
    out.reserveCapacity(source.count)
    var i = 0
    while i < source.count {
        if i + pattern.count <= source.count, source[i..<(i + pattern.count)].elementsEqual(pattern) {
            out += replacement
            i += pattern.count
        } else {
            out.append(source[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
