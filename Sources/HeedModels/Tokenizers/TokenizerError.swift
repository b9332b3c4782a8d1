/// Everything that can be wrong with a tokenizer file or configuration, or
/// with a request to a tokenizer. Loading never crashes on a malformed file:
/// it throws one of these, naming the field (as a JSON path such as
/// `model.vocab["##s"]`) and the problem.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case unreadableFile(path: String, reason: String)
    /// The file is not valid JSON (RFC 8259); `byteOffset` counts from its start.
    case invalidJSON(reason: String, byteOffset: Int)
    /// A field is missing, has the wrong type or an impossible value.
    case invalidConfiguration(path: String, reason: String)
    /// A valid configuration that Heed does not implement (a normalizer,
    /// pre-tokenizer, model, decoder or option), named as the file names it.
    case unsupported(path: String, what: String)
    /// The same token string twice in a vocabulary.
    case duplicateToken(String, firstID: Int, secondID: Int)
    /// Two tokens with the same id.
    case duplicateID(Int, first: String, second: String)
    /// A token the configuration needs (unknown token, `[CLS]`, …) is not in the vocabulary.
    case missingToken(role: String, token: String)
    /// A BPE merge that is not two vocabulary tokens whose concatenation is one.
    case invalidMerge(index: Int, merge: String, reason: String)
    /// A token id above ``Tokenizer/maximumVocabularySize``.
    case idTooLarge(Int, limit: Int)
    /// The GGUF metadata that holds the tokenizer is missing or malformed.
    case gguf(GGUFError)
    /// A maximum length too short to hold the special tokens the template adds.
    case maxLengthTooShort(Int, specialTokens: Int)
    /// A token id that is not in the vocabulary, given to decode.
    case unknownID(Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            return "tokenizer: cannot read \(GGUFError.quote(path)): \(reason)"
        case let .invalidJSON(reason, byteOffset):
            return "tokenizer: not valid JSON at byte \(byteOffset): \(reason)"
        case let .invalidConfiguration(path, reason):
            return "tokenizer: \(path): \(reason)"
        case let .unsupported(path, what):
            return "tokenizer: \(path): \(what) is not supported by Heed"
        case let .duplicateToken(token, firstID, secondID):
            return "tokenizer: token \(GGUFError.quote(token)) appears twice in the vocabulary (ids \(firstID) and \(secondID))"
        case let .duplicateID(id, first, second):
            return "tokenizer: id \(id) is given to both \(GGUFError.quote(first)) and \(GGUFError.quote(second))"
        case let .missingToken(role, token):
            return "tokenizer: the \(role) \(GGUFError.quote(token)) is not in the vocabulary"
        case let .invalidMerge(index, merge, reason):
            return "tokenizer: merge \(index) \(GGUFError.quote(merge)): \(reason)"
        case let .idTooLarge(id, limit):
            return "tokenizer: token id \(id) exceeds the limit of \(limit)"
        case let .gguf(error):
            return "tokenizer: \(error)"
        case let .maxLengthTooShort(length, specialTokens):
            return "tokenizer: maximum length \(length) cannot hold the \(specialTokens) special tokens the template adds"
        case let .unknownID(id, vocabularySize):
            return "tokenizer: token id \(id) is not in the vocabulary of \(vocabularySize) tokens"
        }
    }
}
