"""Fits the sine and cosine polynomials of Sources/CHeedKernels/linear_avx2.c.

After the reduction r = x − j·π/2, |r| ≤ π/4, the kernel evaluates

    sin r = r + r³ · S(r²)            S(w) ≈ (sin √w − √w) / w^{3/2}
    cos r = 1 − r²/2 + r⁴ · C(r²)     C(w) ≈ (cos √w − 1 + w/2) / w²

with S and C of degree 3 in w = r² ≤ (π/4)². Each is a discrete minimax fit
of the relative error (Lawson's reweighted least squares, as in
fit_kernels.py) against 50-digit mpmath values, rounded to float, re-checked.

Run: python3 Benchmarks/scripts/fit_sincos.py   (needs numpy and mpmath)
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 50


def lawson(xs, ys, degree, iterations=400):
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    basis = np.vander(xs, degree + 1, increasing=True) / ys[:, None]
    target = np.ones_like(ys)
    weights = np.full(len(xs), 1.0 / len(xs))
    coeffs = None
    for _ in range(iterations):
        sw = np.sqrt(weights)
        coeffs, *_ = np.linalg.lstsq(basis * sw[:, None], target * sw, rcond=None)
        err = np.abs(basis @ coeffs - target)
        weights = weights * err
        weights /= weights.sum()
    return coeffs


def fit(name, hi, f, degree, n=2000):
    k = np.arange(n)
    xs = hi / 2 + hi / 2 * np.cos(np.pi * (k + 0.5) / n)
    ys = [float(f(mp.mpf(x))) for x in xs]
    coeffs = lawson(xs, ys, degree)
    c32 = [np.float32(c) for c in coeffs]
    worst = max(abs(float((sum(mp.mpf(float(c)) * mp.mpf(x) ** i for i, c in enumerate(c32)) - f(mp.mpf(x))) / f(mp.mpf(x))))
                for x in xs[::7])
    print(f"// {name}: degree {degree}, max relative error with float coefficients {worst:.3e}")
    for i, c in enumerate(c32):
        print(f"//   c{i} = {float(c)!r:>24}   ({float.hex(float(c))})")


w_max = float((mp.pi / 4) ** 2)


def sin_s(w):
    if w < mp.mpf("1e-30"):
        return mp.mpf(-1) / 6
    r = mp.sqrt(w)
    return (mp.sin(r) - r) / (w * r)


def cos_c(w):
    if w < mp.mpf("1e-30"):
        return mp.mpf(1) / 24
    return (mp.cos(mp.sqrt(w)) - 1 + w / 2) / w ** 2


fit("sin S(w) = (sin r - r)/r^3, w = r^2 <= (pi/4)^2", w_max, sin_s, 3)
fit("cos C(w) = (cos r - 1 + r^2/2)/r^4, w = r^2 <= (pi/4)^2", w_max, cos_c, 3)

# pi/2 in three float parts for the reduction r = ((x − j·P1) − j·P2) − j·P3.
half_pi = mp.pi / 2
p1 = np.float32(float(half_pi))
p2 = np.float32(float(half_pi - mp.mpf(float(p1))))
p3 = np.float32(float(half_pi - mp.mpf(float(p1)) - mp.mpf(float(p2))))
print(f"// pi/2 = {float.hex(float(p1))} + {float.hex(float(p2))} + {float.hex(float(p3))}")
