import HeedTensor

/// The amplification stage: how strongly each query responds to each key.
///
/// Every case maps queries [.., Tq, Dq] and keys [.., Tk, Dk] (same leading
/// dimensions, or broadcastable) to raw scores [.., Tq, Tk]:
///
/// ```
/// scaledDot   s = q·k / √D         (Vaswani et al., 2017, eq. 1; scale overridable)
/// dot         s = q·k               (Luong et al., 2015, "dot")
/// bilinear    s = q W kᵀ            (Luong et al., 2015, "general"; W [Dq, Dk])
/// additive    s = vᵀ tanh(W_q q + W_k k)   (Bahdanau et al., 2015, eq. 6; "concat" in Luong)
/// cosine      s = scale · q·k / (‖q‖ ‖k‖)  (e.g. Swin v2's scaled cosine attention)
/// ```
///
/// A temperature τ (see ``Attention/temperature``) divides any of them.
public enum Score {
    /// q·k · scale; scale defaults to 1/√D.
    case scaledDot(scale: Float? = nil)
    /// q·k.
    case dot
    /// q W kᵀ with a learned W [Dq, Dk].
    case bilinear(weight: Tensor)
    /// vᵀ tanh(q W_q + k W_k): `queryWeight` [Dq, A], `keyWeight` [Dk, A], `vector` [A].
    case additive(queryWeight: Tensor, keyWeight: Tensor, vector: Tensor)
    /// scale · cos(q, k); ‖·‖ is clamped below by 1e-8 (a zero vector scores 0).
    case cosine(scale: Float = 1)

    /// The raw scores [.., Tq, Tk] for queries [.., Tq, Dq] and keys [.., Tk, Dk].
    public func callAsFunction(query: Tensor, key: Tensor) -> Tensor {
        switch self {
        case .scaledDot(let scale):
            let d = Float(query.shape.last!)
            return Tensor.matmul(query, key, transposeB: true) * (scale ?? 1 / d.squareRoot())
        case .dot:
            return Tensor.matmul(query, key, transposeB: true)
        case .bilinear(let weight):
            return Tensor.matmul(query.matmul(weight), key, transposeB: true)
        case .additive(let queryWeight, let keyWeight, let vector):
            let q = query.matmul(queryWeight).unsqueezed(axis: -2)                 // [.., Tq, 1, A]
            let k = key.matmul(keyWeight).unsqueezed(axis: -3)                     // [.., 1, Tk, A]
            return (q + k).tanh().matmul(vector)                                    // [.., Tq, Tk]
        case .cosine(let scale):
            let q = query / Tensor.maximum(query.square().sum(axis: -1, keepDims: true).sqrt(), Tensor(scalar: 1e-8))
            let k = key / Tensor.maximum(key.square().sum(axis: -1, keepDims: true).sqrt(), Tensor(scalar: 1e-8))
            return Tensor.matmul(q, k, transposeB: true) * scale
        }
    }
}
