"""Post-hoc calibration: temperature scaling (Guo et al. 2017), pure NumPy in float64.

Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017,
section 4.2: divide every logit by one scalar T > 0, chosen to minimise the NLL on the
validation split (never the test split: docs/architecture.md, "Conventions"). Dividing by T does not
change the argmax, so accuracy is unchanged; only the confidences move.

Reference code: gpleiss/temperature_scaling fits T with L-BFGS on the validation logits.
Here T is fitted by SciPy's bounded one-dimensional search in log T instead, which cannot
return NaN for finite input and needs no torch: see ``fit_temperature``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar, newton

from lsexp.analysis.metrics import FloatArray, _as_2d_float, _as_labels

__all__ = ["T_MAX", "T_MIN", "apply_temperature", "fit_temperature"]

T_MIN = 1e-2
"""Smallest temperature ``fit_temperature`` returns: confidences sharpened 100-fold at most."""
T_MAX = 1e2
"""Largest temperature ``fit_temperature`` returns: confidences flattened 100-fold at most."""

_XATOL = 1e-10  # absolute tolerance in log T handed to the bounded Brent search
_NEWTON_TOL = 1e-13  # Newton's step size at which the polish in log T stops
_NEWTON_STEPS = 8  # from Brent's ~1e-8, quadratic convergence needs ~2
_EPS = float(np.finfo(np.float64).eps)
# Shifted logits z_k - max_j z_j are floored here so that (z/T)^2 stays finite for
# T >= T_MIN. A class that far below the top has probability exp(-1e98) = 0 at every T in
# range, so only the (astronomical) NLL of a sample whose true class sits there changes.
_SHIFTED_FLOOR = -1e100


def apply_temperature(logits: ArrayLike, temperature: float) -> FloatArray:
    """Temperature-scaled logits z / T in float64 (Guo et al. 2017, eq. 9 before the softmax).

    >>> apply_temperature([[2.0, -1.0]], 2.0).tolist()
    [[1.0, -0.5]]
    """
    z = _as_2d_float(logits, "logits")
    return z / _check_temperature(temperature)


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(
        temperature, int | float | np.integer | np.floating
    ):
        raise ValueError(f"expected a real temperature, got {temperature!r}")
    t = float(temperature)
    if not (math.isfinite(t) and t > 0.0):
        raise ValueError(f"expected a finite temperature T > 0, got {temperature!r}")
    return t


class _TemperatureNLL:
    """NLL(s) = (1/N) sum_i -log softmax(z_i / e^s)_{y_i} and its first two derivatives in s.

    With d_i = z_i - max_k z_ik (so max_k d_ik = 0), beta = e^{-s} = 1/T and a = beta * d:

        NLL  = mean_i [ log(1 + sum_{k != argmax} e^{a_ik}) - a_iy ]
        dNLL/ds   = mean_i [ a_iy - E_q a_i ]                     (q = softmax(a_i))
        d2NLL/ds2 = -dNLL/ds + mean_i Var_q a_i

    ``log1p`` over the non-top classes keeps NLL exact where it is below 1e-16 (large margins),
    so the NLL of an all-correct set keeps decreasing towards T_MIN instead of flattening at 0.
    """

    def __init__(self, logits: FloatArray, labels: np.ndarray) -> None:
        with np.errstate(over="ignore"):  # a row spanning more than 1.8e308 overflows to -inf
            shifted = logits - logits.max(axis=1, keepdims=True)
        self.d = np.maximum(shifted, _SHIFTED_FLOOR)
        rows = np.arange(logits.shape[0])
        self.top = (rows, logits.argmax(axis=1))
        self.d_true = self.d[rows, labels]

    def _terms(self, s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        beta = math.exp(-s)
        a = beta * self.d
        e = np.exp(a)  # all in [0, 1]: a <= 0
        e[self.top] = 0.0
        lse = np.log1p(e.sum(axis=1))  # log sum_k e^{a_k}, since e^{a_top} = 1
        return a, lse, beta * self.d_true

    def value(self, s: float) -> float:
        _, lse, a_true = self._terms(s)
        return float(np.mean(lse - a_true))

    def gradient(self, s: float) -> float:
        return self.derivatives(s)[0]

    def curvature(self, s: float) -> float:
        return self.derivatives(s)[1]

    def derivatives(self, s: float) -> tuple[float, float]:
        a, lse, a_true = self._terms(s)
        q = np.exp(a - lse[:, None])
        mean_a = np.sum(q * a, axis=1)
        var_a = np.maximum(np.sum(q * a * a, axis=1) - mean_a * mean_a, 0.0)
        grad = float(np.mean(a_true - mean_a))
        return grad, float(-grad + np.mean(var_a))


def fit_temperature(logits: ArrayLike, labels: ArrayLike) -> float:
    """The T in [T_MIN, T_MAX] that minimises the NLL of softmax(logits / T) (Guo et al. 2017).

    T* = argmin_T -(1/N) sum_i log softmax(z_i / T)_{y_i}, T clamped to [1e-2, 1e2].
    Fit it on the validation split, then apply it to test logits with ``apply_temperature``.

    Method, in s = log T over [log T_MIN, log T_MAX], float64 throughout with a stable
    log-softmax:

    1. ``scipy.optimize.minimize_scalar(method="bounded")`` (Brent's bounded search, golden
       section with parabolic steps). The NLL is convex in 1/T (a log-sum-exp of linear
       functions of 1/T minus a linear one), hence unimodal in log T, so the bounded search
       finds its minimum, to about sqrt(machine eps)·|s| ~ 1.5e-8: the NLL itself is too
       flat there to resolve s any better.
    2. ``scipy.optimize.newton`` on dNLL/ds (analytic first and second derivatives), which
       resolves the minimiser to ~1e-13 in s, so that T does not depend on the order of the
       samples beyond ~1e-12. Its result is kept only if it converged inside the bounds with
       a positive curvature and no higher NLL (beyond rounding).
    3. The two bounds are evaluated too, and the lowest NLL of the three wins, ties going to
       the smaller T.

    Edge cases. If the NLL is the same float at both bounds and at the minimum the search
    found (all logits equal in every row, one class, or logits too small to matter), it is
    flat, T is not identifiable and 1.0 is returned. If the minimiser lies beyond a bound, the
    bound is returned: T_MIN when every prediction is right with a large margin (the NLL keeps
    falling as T -> 0), T_MAX when the logits are far too confident for their accuracy (e.g.
    magnitude 1e4 with errors).

    Raises ValueError for non-finite logits, mismatched or out-of-range labels.

    >>> fit_temperature([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0]], [0, 0, 1])  # all right
    0.01
    >>> round(fit_temperature([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [2.0, 0.0]], [0, 0, 0, 1]), 4)
    1.8205
    """
    z = _as_2d_float(logits, "logits")
    y = _as_labels(labels, *z.shape)
    nll = _TemperatureNLL(z, y)

    s_lo, s_hi = math.log(T_MIN), math.log(T_MAX)
    f_lo, f_hi = nll.value(s_lo), nll.value(s_hi)
    found = minimize_scalar(
        nll.value, bounds=(s_lo, s_hi), method="bounded", options={"xatol": _XATOL}
    )
    s_min, f_min = float(found.x), float(found.fun)
    if f_lo == f_hi == f_min:
        return 1.0
    s_min, f_min = _polish(nll, s_min, f_min, s_lo, s_hi)
    # min() prefers the lower NLL and, on a tie, the smaller s (T).
    _, s_best = min((f_lo, s_lo), (f_min, s_min), (f_hi, s_hi))
    if s_best == s_lo:  # exp(log(0.01)) is 0.010000000000000004: return the bound exactly
        return T_MIN
    if s_best == s_hi:
        return T_MAX
    return float(min(max(math.exp(s_best), T_MIN), T_MAX))


def _polish(
    nll: _TemperatureNLL, s: float, f: float, s_lo: float, s_hi: float
) -> tuple[float, float]:
    """Newton's method on dNLL/ds from the bounded search's s; (s, NLL) kept if no worse."""
    s_new, info = newton(
        nll.gradient,
        s,
        fprime=nll.curvature,
        tol=_NEWTON_TOL,
        maxiter=_NEWTON_STEPS,
        full_output=True,
        disp=False,
    )
    s_new = float(s_new)
    if not (info.converged and s_lo <= s_new <= s_hi and nll.curvature(s_new) > 0.0):
        return s, f
    f_new = nll.value(s_new)
    if f_new > f + 4.0 * _EPS * abs(f):  # rounding alone must not veto the polish
        return s, f
    return s_new, f_new
