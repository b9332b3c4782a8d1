/// Everything that can be wrong when a pretrained model is loaded from a
/// checkpoint: a malformed file, missing or inconsistent metadata, a tensor
/// that is missing or has the wrong shape.
public enum ModelLoadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file itself could not be read or is malformed.
    case gguf(GGUFError)
    /// The file holds another architecture (`general.architecture`).
    case unsupportedArchitecture(String, expected: String)
    /// A required metadata key is absent or has the wrong type.
    case metadata(key: String, reason: String)
    /// The metadata describe no valid model.
    case invalidConfiguration(String)
    /// A required tensor is missing.
    case missingTensor(String)
    /// A tensor whose shape disagrees with the configuration.
    case tensorShape(name: String, found: [Int], expected: [Int])
    /// The tensor's storage type cannot be read.
    case unsupportedTensorType(name: String, type: String)

    public var description: String {
        switch self {
        case .gguf(let error): return "GGUF: \(error)"
        case .unsupportedArchitecture(let found, let expected):
            return "architecture '\(found)' is not supported (expected '\(expected)')"
        case .metadata(let key, let reason): return "metadata '\(key)': \(reason)"
        case .invalidConfiguration(let reason): return "invalid model configuration: \(reason)"
        case .missingTensor(let name): return "tensor '\(name)' is missing"
        case .tensorShape(let name, let found, let expected):
            return "tensor '\(name)' has shape \(found), expected \(expected)"
        case .unsupportedTensorType(let name, let type): return "tensor '\(name)' has type \(type), which cannot be read"
        }
    }
}
