import HeedNN
import HeedTensor

/// A decoder that predicts the next token from the ones so far, with a cache
/// of what it has seen: what ``TextGenerator`` drives.
///
/// Two conform: ``LlamaModel`` (HeedNN's reference path, f32 weights, tensors
/// and autodiff available) and ``QuantizedLlama`` (the fast path, weights kept
/// in their GGUF blocks).
public protocol CausalLanguageModel {
    /// Keys and values of the positions processed so far.
    associatedtype Cache
    /// The model's shape (vocabulary, context length).
    var configuration: LlamaConfiguration { get }
    /// An empty cache.
    func makeCache() -> Cache
    /// Logits [V] of the token after `ids`, which are appended to `cache`
    /// (at positions `position ..< position + ids.count`).
    func nextTokenLogits(_ ids: [Int], cache: inout Cache) -> [Float]
}

extension LlamaModel: CausalLanguageModel {
    /// An empty cache, one ``KVCache`` per block.
    public func makeCache() -> Cache { Cache(layers: blocks.count) }

    /// ``lastLogits(_:cache:)`` of one sequence, without gradients.
    public func nextTokenLogits(_ ids: [Int], cache: inout Cache) -> [Float] {
        Tensor.withoutGrad { lastLogits(IndexTensor(ids, shape: [1, ids.count]), cache: &cache) }.scalars
    }
}

extension QuantizedLlama: CausalLanguageModel {}
