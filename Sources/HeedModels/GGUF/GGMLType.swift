/// A tensor element type of ggml, as stored in a GGUF tensor description.
///
/// Raw values are ggml's `enum ggml_type` codes (codes 4, 5 and 31–33, 36–38
/// were removed from ggml and are rejected as unknown). Quantised types store
/// elements in blocks of ``blockSize`` consecutive elements along the
/// innermost dimension, each block ``blockByteCount`` bytes; the table is
/// checked against the `gguf` Python package's `GGML_QUANT_SIZES` by
/// `GGUFDequantizeTests`.
///
/// Every type is *parsed* (its byte size is known, so any file's layout can
/// be validated); ``canDequantize`` says which ones Heed converts to f32.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE binary32.
    case f32 = 0
    /// IEEE binary16.
    case f16 = 1
    /// 32-element blocks: f16 scale `d`, 16 bytes of 4-bit codes; `x = (q − 8)·d`.
    case q4_0 = 2
    /// 32-element blocks: f16 scale `d`, f16 minimum `m`, 16 bytes of 4-bit codes; `x = q·d + m`.
    case q4_1 = 3
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q5_0 = 6
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q5_1 = 7
    /// 32-element blocks: f16 scale `d`, 32 signed bytes; `x = q·d`.
    case q8_0 = 8
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q8_1 = 9
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q2_K = 10
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q3_K = 11
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q4_K = 12
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q5_K = 13
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q6_K = 14
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q8_K = 15
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq2_XXS = 16
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq2_XS = 17
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq3_XXS = 18
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq1_S = 19
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq4_NL = 20
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq3_S = 21
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq2_S = 22
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq4_XS = 23
    /// signed 8-bit integers (parsed; not dequantised).
    case i8 = 24
    /// signed 16-bit integers (parsed; not dequantised).
    case i16 = 25
    /// signed 32-bit integers (parsed; not dequantised).
    case i32 = 26
    /// signed 64-bit integers (parsed; not dequantised).
    case i64 = 27
    /// IEEE binary64 (parsed; not dequantised).
    case f64 = 28
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case iq1_M = 29
    /// bfloat16: the top half of an f32.
    case bf16 = 30
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case tq1_0 = 34
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case tq2_0 = 35
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case mxfp4 = 39
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case nvfp4 = 40
    /// ggml's quantisation of that name (parsed and sized; not dequantised).
    case q1_0 = 41

    /// Elements per block (1 for the plain types).
    public var blockSize: Int { layout.elements }

    /// Bytes per block.
    public var blockByteCount: Int { layout.bytes }

    /// ggml's name, e.g. `Q4_1`.
    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        case .iq2_XXS: return "IQ2_XXS"
        case .iq2_XS: return "IQ2_XS"
        case .iq3_XXS: return "IQ3_XXS"
        case .iq1_S: return "IQ1_S"
        case .iq4_NL: return "IQ4_NL"
        case .iq3_S: return "IQ3_S"
        case .iq2_S: return "IQ2_S"
        case .iq4_XS: return "IQ4_XS"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .f64: return "F64"
        case .iq1_M: return "IQ1_M"
        case .bf16: return "BF16"
        case .tq1_0: return "TQ1_0"
        case .tq2_0: return "TQ2_0"
        case .mxfp4: return "MXFP4"
        case .nvfp4: return "NVFP4"
        case .q1_0: return "Q1_0"
        }
    }

    /// Whether ``GGUFFile/tensor(_:)`` converts this type to f32:
    /// F32, F16, BF16, Q8_0, Q4_0 and Q4_1.
    public var canDequantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1: return true
        default: return false
        }
    }

    /// (elements, bytes) per block, as in ggml's `type_traits` table.
    private var layout: (elements: Int, bytes: Int) {
        let qkK = 256   // QK_K, the super-block of the K and IQ quantisations
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q4_0: return (32, 2 + 16)
        case .q4_1: return (32, 2 + 2 + 16)
        case .q5_0: return (32, 2 + 4 + 16)
        case .q5_1: return (32, 2 + 2 + 4 + 16)
        case .q8_0: return (32, 2 + 32)
        case .q8_1: return (32, 4 + 4 + 32)
        case .q2_K: return (qkK, 2 + 2 + qkK / 16 + qkK / 4)
        case .q3_K: return (qkK, 2 + qkK / 4 + qkK / 8 + 12)
        case .q4_K: return (qkK, 2 + 2 + qkK / 2 + 12)
        case .q5_K: return (qkK, 2 + 2 + qkK / 2 + qkK / 8 + 12)
        case .q6_K: return (qkK, 2 + qkK / 2 + qkK / 4 + qkK / 16)
        case .q8_K: return (qkK, 4 + qkK + qkK / 8)
        case .iq2_XXS: return (qkK, 2 + qkK / 4)
        case .iq2_XS: return (qkK, 2 + qkK / 4 + qkK / 32)
        case .iq3_XXS: return (qkK, 2 + qkK / 4 + qkK / 8)
        case .iq1_S: return (qkK, 2 + qkK / 8 + qkK / 16)
        case .iq4_NL: return (32, 2 + 16)
        case .iq3_S: return (qkK, 2 + qkK / 4 + qkK / 8 + qkK / 32 + 4)
        case .iq2_S: return (qkK, 2 + qkK / 4 + qkK / 16)
        case .iq4_XS: return (qkK, 2 + 2 + qkK / 2 + qkK / 64)
        case .i8: return (1, 1)
        case .i16: return (1, 2)
        case .i32: return (1, 4)
        case .i64, .f64: return (1, 8)
        case .iq1_M: return (qkK, qkK / 8 + qkK / 16 + qkK / 32)
        case .tq1_0: return (qkK, 2 + 4 * 13)
        case .tq2_0: return (qkK, 2 + 64)
        case .mxfp4: return (32, 1 + 16)
        case .nvfp4: return (64, 4 + 32)
        case .q1_0: return (128, 2 + 16)
        }
    }
}
