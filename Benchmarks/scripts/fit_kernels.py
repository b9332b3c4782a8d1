"""Fits the polynomial coefficients used by Sources/CHeedKernels/avx2_math.h.

Each polynomial minimises the maximum *relative* error of the approximated
function on a dense grid (Lawson's iteratively reweighted least squares, which
converges to the discrete minimax / Remez solution), with targets evaluated in
50-digit arithmetic by mpmath. Coefficients are then rounded to float and the
error is re-measured with the rounded coefficients.

Run: python3 Benchmarks/scripts/fit_kernels.py   (needs numpy and mpmath)
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 50


def lawson(xs, ys, degree, iterations=400):
    """Coefficients c[0..degree] minimising max |p(x) - y| / |y| over the grid."""
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    basis = np.vander(xs, degree + 1, increasing=True) / ys[:, None]   # relative error
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


def report(name, xs, f, coeffs):
    c32 = np.array([np.float32(c) for c in coeffs], dtype=np.float64)
    worst = 0.0
    for x in xs:
        y = f(mp.mpf(x))
        p = sum(mp.mpf(c) * mp.mpf(x) ** i for i, c in enumerate(c32))
        worst = max(worst, abs(float((p - y) / y)))
    print(f"// {name}: degree {len(coeffs) - 1}, max relative error with float coefficients {worst:.3e}")
    for i, c in enumerate(c32):
        print(f"//   c{i} = {np.float32(c).item()!r:>18}f   ({float.hex(float(np.float32(c)))})")


def fit(name, lo, hi, f, degree, n=2000):
    # Chebyshev-clustered grid, denser at the ends where minimax error peaks.
    k = np.arange(n)
    xs = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)
    ys = [float(f(mp.mpf(x))) for x in xs]
    coeffs = lawson(xs, ys, degree)
    report(name, xs[::7], f, coeffs)
    return coeffs


ln2 = mp.log(2)

# exp(r) = 1 + r + r^2 q(r) on the Cody-Waite reduced range |r| <= ln2/2.
def exp_q(r):
    if abs(r) < mp.mpf("1e-30"):
        return mp.mpf(1) / 2
    return (mp.exp(r) - 1 - r) / r ** 2
fit("exp q(r) = (e^r - 1 - r)/r^2, |r| <= ln2/2", float(-ln2 / 2), float(ln2 / 2), exp_q, 4)

# tanh(a) = a + a^3 P(w), w = a^2, for 0 <= a <= 0.625 (the kernel's small branch).
def tanh_p(w):
    if w < mp.mpf("1e-30"):
        return mp.mpf(-1) / 3
    a = mp.sqrt(w)
    return (mp.tanh(a) - a) / (w * a)
fit("tanh P(w) = (tanh(a) - a)/a^3, w = a^2 <= 0.625^2", 0.0, 0.625 ** 2, tanh_p, 6)

# log(1 + f) = f - f^2/2 + f^3 q(f) for 1 + f in [sqrt(2)/2, sqrt(2)).
def log_q(f):
    if abs(f) < mp.mpf("1e-30"):
        return mp.mpf(1) / 3
    return (mp.log1p(f) - f + f ** 2 / 2) / f ** 3
fit("log q(f) = (log1p(f) - f + f^2/2)/f^3", float(mp.sqrt(2) / 2 - 1), float(mp.sqrt(2) - 1), log_q, 8)

# erf(z) = z (2/sqrt(pi) + w P1(w)), w = z^2, for 0 <= z <= 1. The constant
# term is fixed at 2/sqrt(pi) (applied in two float parts by the kernel), so
# the polynomial only carries the correction.
two_over_sqrt_pi = 2 / mp.sqrt(mp.pi)
def erf_p1(w):
    if w < mp.mpf("1e-30"):
        return -two_over_sqrt_pi / 3
    z = mp.sqrt(w)
    return (mp.erf(z) / z - two_over_sqrt_pi) / w
fit("erf P1(w) = (erf(sqrt w)/sqrt w - 2/sqrt(pi))/w, 0 <= w <= 1", 0.0, 1.0, erf_p1, 5)
hi = np.float32(float(two_over_sqrt_pi))
print(f"//   2/sqrt(pi) = {float.hex(float(hi))} + {float.hex(float(np.float32(float(two_over_sqrt_pi - mp.mpf(float(hi))))))}")

# erfc(z) = exp(-z^2) g(u), u = 1/(1 + z), for 0.5 <= z <= 10.5 (u in [1/11.5, 2/3]).
def erfc_g(u):
    z = 1 / u - 1
    return mp.exp(z ** 2) * mp.erfc(z)
fit("erfc g(u) = e^(z^2) erfc(z), u = 1/(1+z), 0.5 <= z <= 10.5", 1 / 11.5, 2 / 3, erfc_g, 12)
