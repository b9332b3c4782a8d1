import CHeedKernels

/// The instruction set Heed's own hot loops (elementwise kernels, softmax,
/// the flash and linear attention engines, packed linear layers) run on,
/// chosen once at run time from the CPU: AVX-512 where the CPU has it (the
/// paths that have an AVX-512 version), else AVX2+FMA, else portable C.
///
/// ``limit(to:)`` caps that choice for the whole process — for benchmarks that
/// compare with a reference restricted the same way (PyTorch's
/// `ATEN_CPU_CAPABILITY=avx2`), and to see how a CPU without AVX-512 would
/// fare. Results agree across levels to rounding; only speed changes. The
/// tensor matrix products go through BLAS, which dispatches on its own.
public enum CPUKernels {
    /// A cap on the instruction set.
    public enum Level: String, CaseIterable, Sendable {
        /// The best this CPU has.
        case automatic
        /// AVX2+FMA at most (no AVX-512).
        case avx2
        /// Portable C only.
        case portable
    }

    /// What runs now: `avx512`, `avx2+fma` or `portable`.
    public static var active: String {
        heed_kernels_avx512_active() != 0 ? "avx512" : String(cString: heed_kernels_isa())
    }

    /// Whether this CPU can run `level` (AVX2 needs AVX2 and FMA).
    public static func supports(_ level: Level) -> Bool {
        switch level {
        case .automatic, .portable: return true
        case .avx2: return heed_kernels_cpu_has_avx2() != 0
        }
    }

    /// Caps the kernels at `level` from now on, process-wide. Call it before
    /// the work starts, not while other threads run kernels. A level the CPU
    /// lacks (``supports(_:)``) leaves the best one it has.
    public static func limit(to level: Level) {
        heed_kernels_force_portable(level == .portable ? 1 : 0)
        heed_kernels_allow_avx512(level == .automatic ? 1 : 0)
    }
}
