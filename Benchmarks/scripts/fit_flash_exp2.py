"""Fits the polynomial of the flash attention kernels' 2^x (flash_kernels.c,
exp2_nonpositive): 2^f ≈ 1 + f·q(f) on f ∈ [−½, ½], minimising the maximum
relative error (Lawson's iteratively reweighted least squares on a dense grid,
the discrete counterpart of a Remez exchange), coefficients rounded to f32,
then re-checked in f32 Horner evaluation with fused multiply-adds.

    /work/venv-torch/bin/python Benchmarks/scripts/fit_flash_exp2.py   (needs numpy)

Prints, per degree, the fit's relative error, the f32 evaluation's error in
ulp and the hexadecimal coefficients (constant term first after 1).
"""
import numpy as np

grid = np.linspace(-0.5, 0.5, 20001)
target = np.exp2(grid)

for degree in (5, 6):
    weights = np.ones_like(grid)
    powers = np.stack([grid ** k for k in range(1, degree + 1)], axis=1)
    for _ in range(60):
        coefficients, *_ = np.linalg.lstsq(powers / target[:, None] * weights[:, None],
                                           (target - 1) / target * weights, rcond=None)
        error = (1 + powers @ coefficients - target) / target
        weights = weights * (np.abs(error) / np.abs(error).max()) ** 0.3 + 1e-12
        weights /= weights.max()
    rounded = coefficients.astype(np.float32)
    f = grid.astype(np.float32)
    p = np.float32(rounded[-1])
    for c in rounded[-2::-1]:
        p = np.float32(np.float64(p) * f + np.float64(c))      # an FMA rounds once
    p = np.float32(np.float64(p) * f + 1.0)
    exact = np.exp2(f.astype(np.float64))
    ulps = np.abs((p.astype(np.float64) - exact) / exact).max() / 2.0 ** -24
    print(f"degree {degree}: fit {np.abs(error).max():.2e}, f32 Horner {ulps:.2f} ulp")
    print("   ", [float.hex(float(c)) for c in rounded])
