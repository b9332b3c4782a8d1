/// A tokenised text: ids with the parallel arrays a model and a pipeline need.
///
/// All arrays have ``count`` entries. Padding (from
/// ``WordPieceTokenizer/encode(batch:addSpecialTokens:maxLength:padding:)``)
/// appends the pad token with attention mask 0.
public struct Encoding: Sendable, Equatable {
    /// Token ids.
    public var ids: [Int]
    /// Token strings, as the vocabulary spells them (`##ing`, `Ġthe`).
    public var tokens: [String]
    /// Segment ids (`token_type_ids`): 0 for a single sequence.
    public var typeIds: [Int]
    /// 1 for a real token, 0 for padding.
    public var attentionMask: [Int]

    /// Number of tokens, padding included.
    public var count: Int { ids.count }

    /// An encoding of `ids`/`tokens`, all real tokens of type 0.
    init(ids: [Int], tokens: [String]) {
        self.ids = ids
        self.tokens = tokens
        typeIds = Array(repeating: 0, count: ids.count)
        attentionMask = Array(repeating: 1, count: ids.count)
    }

    mutating func append(id: Int, token: String, typeId: Int) {
        ids.append(id)
        tokens.append(token)
        typeIds.append(typeId)
        attentionMask.append(1)
    }

    /// Appends `count` pad tokens (right padding).
    mutating func pad(to length: Int, id: Int, token: String, typeId: Int) {
        let extra = length - count
        guard extra > 0 else { return }
        ids += Array(repeating: id, count: extra)
        tokens += Array(repeating: token, count: extra)
        typeIds += Array(repeating: typeId, count: extra)
        attentionMask += Array(repeating: 0, count: extra)
    }
}

/// How a batch is padded.
public enum Padding: Sendable, Equatable {
    /// No padding: each encoding keeps its length.
    case none
    /// Pad every encoding to the longest one in the batch.
    case longest
    /// Pad every encoding to this length (longer ones are left as they are;
    /// truncate with `maxLength` to bound them).
    case fixed(Int)
}

/// The special tokens a post-processor puts around a single sequence, as
/// `TemplateProcessing` (`[CLS] $A [SEP]`) or `BertProcessing` declares them.
struct SequenceTemplate: Sendable, Equatable {
    struct Special: Sendable, Equatable {
        var id: Int
        var token: String
        var typeId: Int
    }
    var prefix: [Special] = []
    var suffix: [Special] = []
    var sequenceTypeId = 0

    var specialCount: Int { prefix.count + suffix.count }

    /// Parses a tokenizer.json `post_processor` (nil or absent: no template).
    init(json field: JSONField?) throws(TokenizerError) {
        guard let field else { return }
        switch try field.typeName() {
        case "TemplateProcessing":
            let special = try field.member("special_tokens")
            var table: [String: [Special]] = [:]
            for (name, entry) in try special.members() {
                let ids = try entry.member("ids").array().map { field throws(TokenizerError) in try field.integer() }
                let tokens = try entry.member("tokens").array().map { field throws(TokenizerError) in try field.string() }
                guard ids.count == tokens.count else { throw entry.fail("ids and tokens differ in length") }
                table[name] = zip(ids, tokens).map { Special(id: $0, token: $1, typeId: 0) }
            }
            var seenSequence = false
            for item in try field.member("single").array() {
                if let sequence = try item.optionalMember("Sequence") {
                    guard try sequence.member("id").string() == "A", !seenSequence else {
                        throw TokenizerError.unsupported(path: sequence.path, what: "a single template with other than one $A")
                    }
                    seenSequence = true
                    sequenceTypeId = try sequence.member("type_id").integer()
                } else if let token = try item.optionalMember("SpecialToken") {
                    let name = try token.member("id").string()
                    let typeId = try token.member("type_id").integer()
                    guard let entries = table[name] else { throw token.fail("special token \(GGUFError.quote(name)) is not in special_tokens") }
                    let placed = entries.map { Special(id: $0.id, token: $0.token, typeId: typeId) }
                    if seenSequence { suffix += placed } else { prefix += placed }
                } else {
                    throw item.fail("expected a Sequence or a SpecialToken")
                }
            }
            guard seenSequence else { throw field.fail("the single template has no $A") }
        case "BertProcessing":
            func pair(_ key: String) throws(TokenizerError) -> Special {
                let entry = try field.member(key).array()
                guard entry.count == 2 else { throw field.fail("\(key) must be [token, id]") }
                return Special(id: try entry[1].integer(), token: try entry[0].string(), typeId: 0)
            }
            prefix = [try pair("cls")]
            suffix = [try pair("sep")]
        case "ByteLevel":
            break   // offsets only: no tokens added
        case let other:
            throw TokenizerError.unsupported(path: field.path, what: "post-processor \(GGUFError.quote(other))")
        }
    }

    init(prefix: [Special] = [], suffix: [Special] = []) {
        self.prefix = prefix
        self.suffix = suffix
    }

    /// `content` truncated to `maxLength` (counting the template's tokens) and wrapped.
    func apply(to content: Encoding, addSpecialTokens: Bool, maxLength: Int?) throws(TokenizerError) -> Encoding {
        let added = addSpecialTokens ? specialCount : 0
        var limit = Int.max
        if let maxLength {
            guard maxLength >= added else { throw .maxLengthTooShort(maxLength, specialTokens: added) }
            limit = maxLength - added
        }
        var result = Encoding(ids: [], tokens: [])
        if addSpecialTokens { for s in prefix { result.append(id: s.id, token: s.token, typeId: s.typeId) } }
        for i in 0..<Swift.min(limit, content.count) {
            result.append(id: content.ids[i], token: content.tokens[i], typeId: addSpecialTokens ? sequenceTypeId : 0)
        }
        if addSpecialTokens { for s in suffix { result.append(id: s.id, token: s.token, typeId: s.typeId) } }
        return result
    }
}
