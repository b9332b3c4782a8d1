import Foundation

/// A byte-level BPE tokenizer (GPT-2, Llama 3, SmolLM2 …), read from the
/// metadata of a GGUF file or from a Hugging Face `tokenizer.json`, giving
/// the same ids as the reference `tokenizers` library.
///
/// The pipeline:
///
/// 1. added tokens (`<|im_start|>`, …) are found in the raw text and kept whole;
/// 2. the text between them is split into pieces (``ByteLevelPreTokenizer``:
///    digits, then GPT-2's regex);
/// 3. each piece's UTF-8 bytes are spelled in the byte alphabet
///    (``ByteLevel``) and merged by BPE: repeatedly the adjacent pair with
///    the lowest merge rank (leftmost among equals) becomes one symbol;
/// 4. `bos`/`eos` are added when the file asks for them.
///
/// Decoding maps tokens back to bytes and reads them as UTF-8 (invalid
/// sequences become U+FFFD, as in the reference), so
/// `decode(encode(s)) == s` for every string whose bytes all have a symbol
/// in the vocabulary (see ``missingBytes``).
///
/// ```swift
/// let tokenizer = try BPETokenizer(gguf: GGUFFile(url: smolLM2))
/// tokenizer.encode("Once upon a time, there was a little")
/// // [6403, 1980, 253, 655, 28, 665, 436, 253, 1838]
/// ```
public final class BPETokenizer: Sendable {
    /// How text is split before BPE.
    public let preTokenizer: ByteLevelPreTokenizer
    /// Tokens matched in the raw input.
    public var addedTokens: [AddedToken] { added.tokens }
    /// Beginning-of-sequence token id, if the vocabulary declares one.
    public let bosTokenID: Int?
    /// End-of-sequence token id, if declared.
    public let eosTokenID: Int?
    /// Whether `encode(_:addSpecialTokens: true)` starts with `bosTokenID`.
    public let addsBOS: Bool
    /// Whether `encode(_:addSpecialTokens: true)` ends with `eosTokenID`.
    public let addsEOS: Bool
    /// Bytes with no single-character token in the vocabulary: text
    /// containing them loses them in `encode` (the reference drops them too,
    /// having no unknown token). SmolLM2 lacks 21: the control bytes 0x04,
    /// 0x06, 0x13, 0x14, 0x16, 0x1D, and 0xC0, 0xC1, 0xF1, 0xF2, 0xF5–0xFF
    /// (of which only 0xF1 and 0xF2 occur in UTF-8) — so the characters
    /// U+0004, U+0006, U+0013, U+0014, U+0016, U+001D and the code points
    /// U+40000…U+BFFFF (planes 4–11, unassigned) are lost.
    public let missingBytes: [UInt8]

    private let idToToken: [String?]
    /// Each id's bytes, as the decoder produces them.
    private let idToBytes: [[UInt8]]
    private let tokenToID: [[UInt8]: Int]
    /// The id of each byte's single-character token, or -1.
    private let byteSymbol: [Int32]
    /// (left id << 32 | right id) → (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    private let unknownID: Int?
    private let fuseUnknown: Bool
    private let ignoreMerges: Bool
    private let added: AddedVocabulary

    // MARK: Loading

    /// Reads the tokenizer from GGUF metadata (`tokenizer.ggml.*`):
    /// `model` must be `gpt2` (byte-level BPE), `pre` one of the names
    /// ``ByteLevelPreTokenizer/init(ggufName:)`` knows; `tokens`, `merges`,
    /// `token_type` (CONTROL and USER_DEFINED tokens are matched in the raw
    /// text, CONTROL ones are special), `bos_token_id`, `eos_token_id`,
    /// `add_bos_token`, `add_eos_token`.
    ///
    /// - Throws: ``TokenizerError/gguf(_:)`` for missing or mistyped keys;
    ///   ``TokenizerError/unsupported(path:what:)`` for another model or
    ///   pre-tokenizer; other ``TokenizerError``s for a malformed vocabulary.
    public convenience init(gguf file: GGUFFile) throws(TokenizerError) {
        func read<T>(_ body: () throws(GGUFError) -> T) throws(TokenizerError) -> T {
            do { return try body() } catch { throw .gguf(error) }
        }
        func optional<T>(_ key: String, _ body: () throws(GGUFError) -> T) throws(TokenizerError) -> T? {
            file.metadata[key] == nil ? nil : try read(body)
        }
        let model = try read { () throws(GGUFError) in try file.string("tokenizer.ggml.model") }
        guard model == "gpt2" else {
            throw .unsupported(path: "tokenizer.ggml.model", what: "tokenizer model \(GGUFError.quote(model)) (only \"gpt2\", byte-level BPE)")
        }
        let preName = try optional("tokenizer.ggml.pre") { () throws(GGUFError) in try file.string("tokenizer.ggml.pre") } ?? "default"
        guard let preTokenizer = ByteLevelPreTokenizer(ggufName: preName) else {
            throw .unsupported(path: "tokenizer.ggml.pre", what: "pre-tokenizer \(GGUFError.quote(preName))")
        }
        let tokens = try read { () throws(GGUFError) in try file.strings("tokenizer.ggml.tokens") }
        let merges = try read { () throws(GGUFError) in try file.strings("tokenizer.ggml.merges") }
        let types = try optional("tokenizer.ggml.token_type") { () throws(GGUFError) in try file.integers("tokenizer.ggml.token_type") }
        if let types, types.count != tokens.count {
            throw .invalidConfiguration(path: "tokenizer.ggml.token_type", reason: "\(types.count) types for \(tokens.count) tokens")
        }
        // llama_token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
        var added: [AddedToken] = []
        for (id, type) in (types ?? []).enumerated() where type == 3 || type == 4 {
            added.append(AddedToken(id: id, content: tokens[id], special: type == 3))
        }
        func tokenID(_ key: String) throws(TokenizerError) -> Int? {
            guard let id = try optional(key, { () throws(GGUFError) in try file.integer(key) }) else { return nil }
            guard tokens.indices.contains(id) else { throw .invalidConfiguration(path: key, reason: "id \(id) is not a token") }
            return id
        }
        try self.init(vocabulary: tokens.enumerated().map { ($1, $0) },
                      merges: merges.enumerated().map { index, merge throws(TokenizerError) in try splitMerge(merge, index: index) },
                      addedTokens: added, preTokenizer: preTokenizer,
                      bosTokenID: try tokenID("tokenizer.ggml.bos_token_id"), eosTokenID: try tokenID("tokenizer.ggml.eos_token_id"),
                      addsBOS: try optional("tokenizer.ggml.add_bos_token") { () throws(GGUFError) in try file.bool("tokenizer.ggml.add_bos_token") } ?? false,
                      addsEOS: try optional("tokenizer.ggml.add_eos_token") { () throws(GGUFError) in try file.bool("tokenizer.ggml.add_eos_token") } ?? false,
                      unknownToken: nil, fuseUnknown: false, ignoreMerges: false)
    }

    /// Reads a Hugging Face `tokenizer.json` with a byte-level BPE model:
    /// normalizer absent; pre-tokenizer `ByteLevel`, optionally after
    /// `Digits`; decoder `ByteLevel`; post-processor absent, `ByteLevel` or a
    /// `TemplateProcessing` that adds bos/eos.
    ///
    /// - Throws: ``TokenizerError`` naming the field, for a malformed file or
    ///   a component Heed does not implement.
    public convenience init(url: URL) throws(TokenizerError) {
        try self.init(data: readFile(url))
    }

    /// Reads the contents of a Hugging Face `tokenizer.json` (see ``init(url:)``).
    public convenience init(data: Data) throws(TokenizerError) {
        let root = JSONField(value: try TokenizerJSON.parse(data), path: "")
        let model = try root.member("model")
        guard try model.typeName() == "BPE" else {
            throw TokenizerError.unsupported(path: "model.type", what: "model \(GGUFError.quote(try model.typeName())) in a BPE tokenizer")
        }
        if let dropout = try model.optionalMember("dropout"), try dropout.number() != 0 {
            throw TokenizerError.unsupported(path: dropout.path, what: "BPE dropout")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let field = try model.optionalMember(key), try !field.string().isEmpty {
                throw TokenizerError.unsupported(path: field.path, what: "a non-empty \(key) in a byte-level BPE")
            }
        }
        if let fallback = try model.optionalMember("byte_fallback"), try fallback.bool() {
            throw TokenizerError.unsupported(path: fallback.path, what: "byte_fallback (SentencePiece-style BPE)")
        }
        if let normalizer = try root.optionalMember("normalizer") {
            throw TokenizerError.unsupported(path: normalizer.path, what: "normalizer \(GGUFError.quote(try normalizer.typeName())) in a byte-level BPE")
        }
        let preTokenizer = try BPETokenizer.preTokenizer(try root.member("pre_tokenizer"))
        let decoder = try root.member("decoder")
        guard try decoder.typeName() == "ByteLevel" else {
            throw TokenizerError.unsupported(path: decoder.path, what: "decoder \(GGUFError.quote(try decoder.typeName()))")
        }
        var vocabulary: [(String, Int)] = []
        for (token, id) in try model.member("vocab").members() { vocabulary.append((token, try id.integer())) }
        var merges: [(String, String)] = []
        for (index, merge) in try model.member("merges").array().enumerated() {
            if case .string(let text) = merge.value {
                merges.append(try splitMerge(text, index: index))
            } else {
                let pair = try merge.array()
                guard pair.count == 2 else { throw merge.fail("expected \"a b\" or [\"a\", \"b\"]") }
                merges.append((try pair[0].string(), try pair[1].string()))
            }
        }
        let template = try SequenceTemplate(json: root.optionalMember("post_processor"))
        guard template.prefix.count <= 1, template.suffix.count <= 1 else {
            throw TokenizerError.unsupported(path: "post_processor", what: "a template adding more than one token on a side")
        }
        try self.init(vocabulary: vocabulary, merges: merges,
                      addedTokens: try readAddedTokens(root.optionalMember("added_tokens")),
                      preTokenizer: preTokenizer,
                      bosTokenID: template.prefix.first?.id, eosTokenID: template.suffix.first?.id,
                      addsBOS: !template.prefix.isEmpty, addsEOS: !template.suffix.isEmpty,
                      unknownToken: try model.optionalMember("unk_token")?.string(),
                      fuseUnknown: try model.optionalMember("fuse_unk")?.bool() ?? false,
                      ignoreMerges: try model.optionalMember("ignore_merges")?.bool() ?? false)
    }

    static func preTokenizer(_ field: JSONField) throws(TokenizerError) -> ByteLevelPreTokenizer {
        func byteLevel(_ field: JSONField, digits: ByteLevelPreTokenizer.Digits) throws(TokenizerError) -> ByteLevelPreTokenizer {
            guard try field.typeName() == "ByteLevel" else {
                throw TokenizerError.unsupported(path: field.path, what: "pre-tokenizer \(GGUFError.quote(try field.typeName()))")
            }
            return ByteLevelPreTokenizer(digits: digits,
                                         addPrefixSpace: try field.optionalMember("add_prefix_space")?.bool() ?? true,
                                         useRegex: try field.optionalMember("use_regex")?.bool() ?? true)
        }
        guard try field.typeName() == "Sequence" else { return try byteLevel(field, digits: .none) }
        let steps = try field.member("pretokenizers").array()
        guard steps.count == 2, try steps[0].typeName() == "Digits" else {
            throw TokenizerError.unsupported(path: field.path, what: "a pre-tokenizer sequence other than [Digits, ByteLevel]")
        }
        let individual = try steps[0].optionalMember("individual_digits")?.bool() ?? false
        return try byteLevel(steps[1], digits: individual ? .individual : .contiguous)
    }

    init(vocabulary: [(String, Int)], merges mergeList: [(String, String)], addedTokens: [AddedToken],
         preTokenizer: ByteLevelPreTokenizer, bosTokenID: Int?, eosTokenID: Int?, addsBOS: Bool, addsEOS: Bool,
         unknownToken: String?, fuseUnknown: Bool, ignoreMerges: Bool) throws(TokenizerError) {
        let modelVocabulary = vocabulary
        (idToToken, tokenToID) = try buildVocabulary(vocabulary + addedTokens.map { ($0.content, $0.id) }, modelCount: vocabulary.count)
        // The model's own lookups (single characters, merge results) see only its vocabulary.
        var modelIDs: [[UInt8]: Int] = [:]
        for (token, id) in modelVocabulary { modelIDs[Array(token.utf8)] = id }
        var byteSymbol = [Int32](repeating: -1, count: 256)
        var missing: [UInt8] = []
        for byte in 0..<256 {
            if let id = modelIDs[Array(String(ByteLevel.byteToCharacter[byte]).utf8)] { byteSymbol[byte] = Int32(id) } else { missing.append(UInt8(byte)) }
        }
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, (left, right)) in mergeList.enumerated() {
            let text = "\(left) \(right)"
            guard let a = modelIDs[Array(left.utf8)] else { throw .invalidMerge(index: rank, merge: text, reason: "\(GGUFError.quote(left)) is not in the vocabulary") }
            guard let b = modelIDs[Array(right.utf8)] else { throw .invalidMerge(index: rank, merge: text, reason: "\(GGUFError.quote(right)) is not in the vocabulary") }
            guard let merged = modelIDs[Array(left.utf8) + Array(right.utf8)] else {
                throw .invalidMerge(index: rank, merge: text, reason: "\(GGUFError.quote(left + right)) is not in the vocabulary")
            }
            let key = UInt64(a) << 32 | UInt64(b)
            merges[key] = (Int32(rank), Int32(merged))   // a repeated merge takes its last rank, as the reference's map does
        }
        var unknownID: Int?
        if let unknownToken {
            guard let id = modelIDs[Array(unknownToken.utf8)] else { throw .missingToken(role: "unknown token", token: unknownToken) }
            unknownID = id
        }
        for (role, id, adds) in [("bos token", bosTokenID, addsBOS), ("eos token", eosTokenID, addsEOS)] {
            if adds && id == nil { throw .invalidConfiguration(path: role, reason: "asked to add the \(role), but none is declared") }
            if let id, !(idToToken.indices.contains(id) && idToToken[id] != nil) {
                throw .invalidConfiguration(path: role, reason: "id \(id) is not a token")
            }
        }
        self.idToBytes = idToToken.map { $0.map(ByteLevel.bytes(ofToken:)) ?? [] }
        self.byteSymbol = byteSymbol
        self.missingBytes = missing
        self.merges = merges
        self.unknownID = unknownID
        self.fuseUnknown = fuseUnknown
        self.ignoreMerges = ignoreMerges
        self.added = AddedVocabulary(addedTokens, normalize: { $0 })
        self.preTokenizer = preTokenizer
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
        self.modelTokenToID = modelIDs
    }

    private let modelTokenToID: [[UInt8]: Int]

    // MARK: Vocabulary

    /// Number of ids: one more than the largest id.
    public var vocabularySize: Int { idToToken.count }

    /// Number of merges.
    public var mergeCount: Int { merges.count }

    /// The id of a token (spelled in the byte alphabet, compared byte for byte), or nil.
    public func id(of token: String) -> Int? { tokenToID[Array(token.utf8)] }

    /// The token of an id (spelled in the byte alphabet, e.g. `Ġthe`), or nil.
    public func token(of id: Int) -> String? { idToToken.indices.contains(id) ? idToToken[id] : nil }

    // MARK: Encoding

    /// The token ids of `text`; with `addSpecialTokens`, bos/eos as the file
    /// asks (SmolLM2 asks for neither).
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        if addSpecialTokens, addsBOS, let bos = bosTokenID { ids.append(bos) }
        for piece in added.split(text, normalize: { $0 }) {
            switch piece {
            case .token(let id): ids.append(id)
            case .text(let segment):
                var bytes: [UInt8] = []
                preTokenizer.forEachPiece(Array(segment.unicodeScalars)) { piece in
                    bytes.removeAll(keepingCapacity: true)
                    ByteLevelPreTokenizer.appendUTF8(piece, to: &bytes)
                    ids += bpe(bytes)
                }
            }
        }
        if addSpecialTokens, addsEOS, let eos = eosTokenID { ids.append(eos) }
        return ids
    }

    /// BPE of one piece, given as its UTF-8 bytes (the reference's `merge_word` + `merge_all`).
    func bpe(_ bytes: [UInt8]) -> [Int] {
        if bytes.isEmpty { return [] }
        if ignoreMerges, let id = modelTokenToID[Array(ByteLevel.spell(bytes).utf8)] { return [id] }
        // Initial symbols: one per byte; bytes without a symbol become the
        // unknown token (fused when asked) or are dropped.
        var symbols: [Int32] = []
        symbols.reserveCapacity(bytes.count)
        var pendingUnknown = false
        for byte in bytes {
            let id = byteSymbol[Int(byte)]
            if id >= 0 {
                if pendingUnknown, let unknownID { symbols.append(Int32(unknownID)); pendingUnknown = false }
                symbols.append(id)
            } else if let unknownID {
                if pendingUnknown && !fuseUnknown { symbols.append(Int32(unknownID)) }
                pendingUnknown = true
            }
        }
        if pendingUnknown, let unknownID { symbols.append(Int32(unknownID)) }
        if symbols.count < 2 { return symbols.map(Int.init) }
        return merge(symbols).map(Int.init)
    }

    /// Merges adjacent symbols by rank: a min-heap of (rank, position),
    /// entries checked for staleness when popped, as the reference does.
    private func merge(_ initial: [Int32]) -> [Int32] {
        var ids = initial
        var next = Array(1...ids.count).map { $0 == ids.count ? -1 : $0 }
        var previous = Array(-1..<(ids.count - 1))
        var alive = [Bool](repeating: true, count: ids.count)
        var heap = MergeHeap()
        for position in 0..<(ids.count - 1) {
            if let merge = merges[UInt64(UInt32(ids[position])) << 32 | UInt64(UInt32(ids[position + 1]))] {
                heap.push(.init(rank: merge.rank, position: Int32(position), id: merge.id))
            }
        }
        while let top = heap.pop() {
            let position = Int(top.position)
            guard alive[position], next[position] >= 0 else { continue }
            let right = next[position]
            guard let current = merges[UInt64(UInt32(ids[position])) << 32 | UInt64(UInt32(ids[right]))], current.id == top.id else { continue }
            ids[position] = top.id
            alive[right] = false
            next[position] = next[right]
            if next[right] >= 0 { previous[next[right]] = position }
            if previous[position] >= 0 {
                let left = previous[position]
                if let merge = merges[UInt64(UInt32(ids[left])) << 32 | UInt64(UInt32(ids[position]))] {
                    heap.push(.init(rank: merge.rank, position: Int32(left), id: merge.id))
                }
            }
            if next[position] >= 0 {
                if let merge = merges[UInt64(UInt32(ids[position])) << 32 | UInt64(UInt32(ids[next[position]]))] {
                    heap.push(.init(rank: merge.rank, position: Int32(position), id: merge.id))
                }
            }
        }
        return zip(ids, alive).compactMap { $1 ? $0 : nil }
    }

    // MARK: Decoding

    /// The bytes of `ids` (what the byte-level decoder produces before UTF-8
    /// decoding): for streaming, emit text once the bytes form whole characters.
    ///
    /// - Throws: ``TokenizerError/unknownID(_:vocabularySize:)``.
    public func decodeBytes(_ ids: [Int], skipSpecialTokens: Bool = false) throws(TokenizerError) -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids {
            guard idToToken.indices.contains(id), idToToken[id] != nil else { throw .unknownID(id, vocabularySize: vocabularySize) }
            if skipSpecialTokens, added.token(id: id)?.special == true { continue }
            bytes += idToBytes[id]
        }
        return bytes
    }

    /// The text of `ids`: their bytes read as UTF-8, each invalid sequence
    /// replaced by U+FFFD (as Rust's `String::from_utf8_lossy` does).
    ///
    /// - Throws: ``TokenizerError/unknownID(_:vocabularySize:)``.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws(TokenizerError) -> String {
        String(decoding: try decodeBytes(ids, skipSpecialTokens: skipSpecialTokens), as: UTF8.self)
    }
}

/// "a b" → ("a", "b"): a merge line has exactly one space (byte-level tokens
/// spell a space as `Ġ`, so none contains one).
func splitMerge(_ merge: String, index: Int) throws(TokenizerError) -> (String, String) {
    let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw .invalidMerge(index: index, merge: merge, reason: "expected two tokens separated by one space")
    }
    return (String(parts[0]), String(parts[1]))
}

/// A binary min-heap of merge candidates ordered by (rank, position).
struct MergeHeap {
    struct Entry {
        var rank: Int32
        var position: Int32
        var id: Int32
        func precedes(_ other: Entry) -> Bool { rank != other.rank ? rank < other.rank : position < other.position }
    }

    private var entries: [Entry] = []

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let first = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < entries.count, entries[left].precedes(entries[best]) { best = left }
                if right < entries.count, entries[right].precedes(entries[best]) { best = right }
                if best == parent { break }
                entries.swapAt(parent, best)
                parent = best
            }
        }
        return first
    }
}
