import Foundation
import HeedTensor

/// Everything that can be wrong with a pretrained model folder: a missing or
/// unreadable file, a configuration field that is absent, of the wrong type
/// or impossible, a checkpoint tensor that is missing or misshapen, or a
/// component that Heed does not implement. Loading never crashes on a bad
/// folder; it throws one of these, naming the file and the field.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file the model needs is not in its folder.
    case missingFile(path: String)
    /// A file exists but cannot be read.
    case unreadableFile(path: String, reason: String)
    /// A JSON file is not valid JSON; `byteOffset` counts from its start.
    case invalidJSON(file: String, reason: String, byteOffset: Int)
    /// A configuration field is missing, has the wrong type or an impossible
    /// value; `field` is a JSON path such as `hidden_size` or `[2].type`.
    case invalidConfiguration(file: String, field: String, reason: String)
    /// A valid configuration that Heed does not implement (an activation, a
    /// pooling mode, a module), named as the file names it.
    case unsupported(file: String, what: String)
    /// A tensor the configuration needs is not in the checkpoint.
    case missingTensor(file: String, name: String)
    /// A checkpoint tensor whose shape disagrees with the configuration.
    case tensorShape(file: String, name: String, expected: [Int], actual: [Int])
    /// The checkpoint file itself is malformed.
    case checkpoint(file: String, SafeTensorsError)
    /// The tokenizer file is malformed, or a text cannot be tokenised.
    case tokenizer(TokenizerError)

    public var description: String {
        switch self {
        case let .missingFile(path):
            return "model: \(GGUFError.quote(path)) does not exist"
        case let .unreadableFile(path, reason):
            return "model: cannot read \(GGUFError.quote(path)): \(reason)"
        case let .invalidJSON(file, reason, byteOffset):
            return "model: \(file) is not valid JSON at byte \(byteOffset): \(reason)"
        case let .invalidConfiguration(file, field, reason):
            return "model: \(file): \(field.isEmpty ? "the document" : field): \(reason)"
        case let .unsupported(file, what):
            return "model: \(file): \(what) is not supported by Heed"
        case let .missingTensor(file, name):
            return "model: \(file) has no tensor \(GGUFError.quote(name))"
        case let .tensorShape(file, name, expected, actual):
            return "model: \(file): tensor \(GGUFError.quote(name)) has shape \(actual), the configuration needs \(expected)"
        case let .checkpoint(file, error):
            return "model: \(file): \(error)"
        case let .tokenizer(error):
            return "model: \(error)"
        }
    }
}

/// A model folder's JSON configuration file, read with the tokenizer's strict
/// JSON reader, so that every error names its file and field.
struct ConfigurationFile {
    /// The file's name inside the model folder, for messages (`config.json`).
    let name: String
    /// The document.
    let root: JSONField

    /// Reads `folder/name`; a missing file is ``ModelError/missingFile(path:)``.
    init(folder: URL, name: String) throws(ModelError) {
        let url = folder.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw .missingFile(path: url.path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .unreadableFile(path: url.path, reason: error.localizedDescription) }
        self.name = name
        do { root = JSONField(value: try TokenizerJSON.parse(data), path: "") } catch { throw Self.converted(error, file: name) }
    }

    /// Runs `body` on the document, turning its field errors into ``ModelError``s of this file.
    func read<R>(_ body: (JSONField) throws(TokenizerError) -> R) throws(ModelError) -> R {
        do { return try body(root) } catch { throw Self.converted(error, file: name) }
    }

    /// A configuration error of this file at `field`.
    func fail(_ field: JSONField, _ reason: String) -> ModelError {
        .invalidConfiguration(file: name, field: field.path, reason: reason)
    }

    static func converted(_ error: TokenizerError, file: String) -> ModelError {
        switch error {
        case let .invalidJSON(reason, byteOffset): return .invalidJSON(file: file, reason: reason, byteOffset: byteOffset)
        case let .invalidConfiguration(path, reason): return .invalidConfiguration(file: file, field: path, reason: reason)
        case let .unsupported(path, what): return .unsupported(file: file, what: "\(path): \(what)")
        default: return .tokenizer(error)
        }
    }
}
