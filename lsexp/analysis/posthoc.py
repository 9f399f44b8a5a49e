"""Post-hoc calibrators fitted on validation logits and applied to test logits (float64 NumPy).

Five calibrators, one interface. Each is fitted on the validation split (never the test
split) and maps a model's logits to calibrated probabilities:

====  ==========================  =========================================================
name  method                      reference
====  ==========================  =========================================================
ts    temperature scaling         Guo et al. 2017, "On Calibration of Modern Neural
                                  Networks", ICML, sec. 4.2 (``lsexp.analysis.calibration``)
vs    vector scaling              Guo et al. 2017, sec. 4.2 ("vector scaling")
ms    matrix scaling, ODIR        Kull et al. 2019, "Beyond temperature scaling: Obtaining
                                  well-calibrated multiclass probabilities with Dirichlet
                                  calibration", NeurIPS, sec. 3 (ODIR)
hist  histogram binning           Zadrozny & Elkan 2001, "Obtaining calibrated probability
      (top-label)                 estimates from decision trees and naive Bayesian
                                  classifiers", ICML
iso   isotonic regression         Zadrozny & Elkan 2002, "Transforming classifier scores
      (top-label)                 into accurate multiclass probability estimates", KDD
====  ==========================  =========================================================

Interface: ``CALIBRATORS[name].fit(val_logits, val_labels)`` returns a ``Fitted`` with
``.params`` (a JSON-serialisable dict) and ``.probs(logits)`` -> (n, K) float64
probabilities; ``parse_calibrators("ts,vs")`` turns a comma-separated list into calibrators
and rejects unknown names; ``calibrated_metrics`` computes the metric panel after a
calibrator.

Accuracy. ts, hist and iso never change the predicted class (argmax). vs and ms can: a
per-class bias or a full linear map moves the decision boundaries, which is why the
accuracy after each calibrator is worth reporting.

Top-label methods (hist, iso) calibrate one number per example, the top-label confidence
c = max_k p_k, against the event "the predicted class is right" (Kumar, Liang & Ma 2019,
"Verified Uncertainty Calibration", NeurIPS, top-label calibration). To give NLL and Brier
a meaning, the full probability vector is formed from the calibrated confidence c' (see
``top_label_probs``): the predicted class gets c', and the remaining mass 1 - c' is shared
among the other classes in proportion to their original probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression
from threadpoolctl import threadpool_limits

from lsexp.analysis import metrics
from lsexp.analysis.calibration import apply_temperature, fit_temperature
from lsexp.analysis.metrics import FloatArray, IntArray, _as_2d_float, _as_labels
from lsexp.errors import CalibrationError, ConfigError
from lsexp.registry import by_name

__all__ = [
    "CALIBRATORS",
    "DEFAULT_CALIBRATORS",
    "HIST_BINS",
    "MS_MIN_PER_CLASS",
    "ODIR_GRID",
    "Calibrator",
    "Fitted",
    "calibrated_metrics",
    "fit_histogram_binning",
    "fit_isotonic",
    "fit_matrix_scaling",
    "fit_temperature_scaling",
    "fit_vector_scaling",
    "ms_min_examples",
    "parse_calibrators",
    "top_label_probs",
]

DEFAULT_CALIBRATORS = ("ts",)
"""What a report fits when no calibrators are named."""

HIST_BINS = 15
"""Equal-mass bins of histogram binning (Zadrozny & Elkan 2001 used 10; 15 matches the
default ECE bin count of the report, so each calibrated bin is about as wide as an ECE bin)."""

ODIR_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
"""Candidate strengths for matrix scaling's ODIR penalty, lambda = mu tied (see
``fit_matrix_scaling``)."""

MS_HOLDOUT = 0.2
"""Fraction of the validation split held out to choose the ODIR strength."""

MS_SEED = 0
"""Seed of the validation split's fit / held-out permutation for matrix scaling."""

MS_MIN_PER_CLASS = 10
"""Matrix scaling needs at least this many validation examples per class (10 K in all)."""

_MAXITER = 500  # L-BFGS iterations per fit: bounds the time of a fit that does not converge
_GTOL = 1e-7  # projected-gradient tolerance of L-BFGS-B (gradient of the mean NLL)
# L-BFGS-B stops when the objective falls by less than this fraction in an iteration. For
# K = 10, 5000 examples, 1e-11 leaves the probabilities within ~5e-6 of the optimum (scipy's
# default 2.2e-9: ~6e-5). Fits that only choose matrix scaling's penalty use the default.
_FTOL = 1e-11
_FTOL_SEARCH = 2.2e-9
_FLOOR_MARGIN = 1e-12  # top-label confidences are floored at 1/K + this (see top_label_probs)


# ---------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Fitted:
    """A calibrator fitted on validation logits: ``probs(logits)`` applies it to new logits.

    ``params`` holds the fitted parameters and the settings used, as plain JSON types
    (str, int, float, bool, lists), so it can be written next to a report with ``json.dump``.
    """

    name: str
    """Registry name of the calibrator (ts, vs, ms, hist, iso)."""
    num_classes: int
    """K, the number of classes it was fitted for; ``probs`` rejects any other K."""
    params: dict[str, Any]
    """Fitted parameters and settings, JSON-serialisable."""
    _scaled_logits: Callable[[FloatArray], FloatArray] | None = field(default=None, repr=False)
    """Scaling methods: logits -> calibrated logits (probabilities are their softmax)."""
    _top_label: Callable[[FloatArray], FloatArray] | None = field(default=None, repr=False)
    """Top-label methods: top-label confidence -> calibrated top-label confidence."""

    def _logits(self, logits: ArrayLike) -> FloatArray:
        z = _as_2d_float(logits, "logits")
        if z.shape[1] != self.num_classes:
            raise ValueError(
                f"expected logits with {self.num_classes} classes (as fitted), got shape {z.shape}"
            )
        return z

    def probs(self, logits: ArrayLike) -> FloatArray:
        """(n, K) float64 calibrated probabilities; each row sums to 1."""
        z = self._logits(logits)
        if self._scaled_logits is not None:
            return metrics.softmax(self._scaled_logits(z))
        assert self._top_label is not None
        return top_label_probs(z, self._top_label(_confidence(z)))

    def log_probs(self, logits: ArrayLike) -> FloatArray:
        """(n, K) float64 log-probabilities after calibration.

        Exact log-softmax for the scaling methods (ts, vs, ms). For top-label methods a zero
        probability is floored at the smallest normal float64, as ``metrics.nll`` does.
        """
        z = self._logits(logits)
        if self._scaled_logits is not None:
            return metrics.log_softmax(self._scaled_logits(z))
        return np.log(np.maximum(self.probs(z), np.finfo(np.float64).tiny))


@dataclass(frozen=True)
class Calibrator:
    """One entry of ``CALIBRATORS``: a name, a label for tables, a citation and ``fit``."""

    name: str
    label: str
    citation: str
    fit: Callable[[ArrayLike, ArrayLike], Fitted] = field(repr=False)
    keeps_prediction: bool
    """True if the predicted class (argmax) never changes, so accuracy is unchanged."""
    top_label: bool
    """True if only the top-label confidence is calibrated (see ``top_label_probs``)."""


def _fit_inputs(logits: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, IntArray]:
    z = _as_2d_float(logits, "validation logits")
    if z.shape[1] < 2:
        raise ValueError(f"expected at least 2 classes to calibrate, got shape {z.shape}")
    return z, _as_labels(labels, *z.shape)


# ---------------------------------------------------------------------------------------
# Temperature scaling (wraps lsexp.analysis.calibration)
# ---------------------------------------------------------------------------------------


def fit_temperature_scaling(logits: ArrayLike, labels: ArrayLike) -> Fitted:
    """Temperature scaling: softmax(z / T), T fitted by ``calibration.fit_temperature``.

    Guo et al. 2017, sec. 4.2: one scalar T > 0 minimising the validation NLL (bounded to
    [1e-2, 1e2]; see ``lsexp.analysis.calibration``). params: {"temperature": T}.
    """
    z, y = _fit_inputs(logits, labels)
    t = fit_temperature(z, y)
    return Fitted(
        name="ts",
        num_classes=z.shape[1],
        params={"temperature": float(t)},
        _scaled_logits=lambda x: apply_temperature(x, t),
    )


# ---------------------------------------------------------------------------------------
# Vector and matrix scaling: z' = w * z + b, z' = W z + b, fitted by L-BFGS on the NLL
# ---------------------------------------------------------------------------------------


# The objectives work class-major, on (K, n) arrays: NumPy reduces a (K, n) array over its
# first axis about ten times faster than an (n, K) array over its second when K is small
# (measured for K = 10, n = 5000), and an L-BFGS fit evaluates them tens of times.


def _true_index(y: IntArray) -> IntArray:
    """Flat indices of (y_i, i) in a C-ordered (K, n) array: one gather per evaluation."""
    return y * y.shape[0] + np.arange(y.shape[0])


def _softmax_grad(s_t: FloatArray, true: IntArray) -> tuple[float, FloatArray]:
    """Mean NLL of softmax over classes of s_t (K, n), and its gradient in s_t.

    ``true`` = ``_true_index(y)``. NLL = (1/n) sum_i [log sum_k exp(s_ki) - s_{y_i, i}];
    dNLL/ds_ki = (softmax(s_i)_k - 1[k = y_i]) / n. Overwrites nothing in s_t.
    """
    n = s_t.shape[1]
    m = s_t.max(axis=0)
    s_true = s_t.ravel()[true]
    g = s_t - m
    np.exp(g, out=g)
    total = g.sum(axis=0)
    nll = float((np.log(total).sum() + m.sum() - s_true.sum()) / n)
    g *= 1.0 / (total * n)
    g.ravel()[true] -= 1.0 / n
    return nll, g


def _vector_objective(
    theta: FloatArray, z_t: FloatArray, true: IntArray
) -> tuple[float, FloatArray]:
    """NLL(w * z + b) and its gradient in theta = (w, b); z_t is (K, n)."""
    k = z_t.shape[0]
    w, b = theta[:k], theta[k:]
    nll, g = _softmax_grad(z_t * w[:, None] + b[:, None], true)
    return nll, np.concatenate([(g * z_t).sum(axis=1), g.sum(axis=1)])


def _matrix_objective(
    theta: FloatArray, z_t: FloatArray, true: IntArray, lam: float, mu: float
) -> tuple[float, FloatArray]:
    """NLL(W z + b) + lam * sum_{i!=j} W_ij^2 / (K(K-1)) + mu * sum_j b_j^2 / K, and gradient.

    theta = (W row-major, b); z_t is (K, n). dNLL/dW = G z^T and dNLL/db = G 1 with G the
    (K, n) gradient in the scaled logits; the penalty adds 2 lam W_offdiag / (K(K-1)) and
    2 mu b / K.
    """
    k = z_t.shape[0]
    w = theta[: k * k].reshape(k, k)
    b = theta[k * k :]
    nll, g = _softmax_grad(w @ z_t + b[:, None], true)
    off = w - np.diag(np.diag(w))
    c_off, c_b = lam / (k * (k - 1)), mu / k
    value = nll + c_off * float(np.sum(off * off)) + c_b * float(b @ b)
    grad_w = g @ z_t.T + 2.0 * c_off * off
    grad_b = g.sum(axis=1) + 2.0 * c_b * b
    return value, np.concatenate([grad_w.ravel(), grad_b])


def _lbfgs(
    fun: Callable[..., tuple[float, FloatArray]],
    theta0: FloatArray,
    args: tuple,
    ftol: float = _FTOL,
) -> Any:
    """scipy's L-BFGS-B with the analytic gradient, at most _MAXITER iterations.

    BLAS is held to one thread: the vectors are tiny, so a multi-threaded OpenBLAS can spend
    more on waking and syncing its threads than on the arithmetic (on a busy 2-core machine
    it made a fit several times slower).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return minimize(
            fun,
            theta0,
            args=args,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": _MAXITER, "gtol": _GTOL, "ftol": ftol},
        )


def fit_vector_scaling(logits: ArrayLike, labels: ArrayLike) -> Fitted:
    """Vector scaling: softmax(w * z + b), one scale w_k and one bias b_k per class.

    Guo et al. 2017, sec. 4.2 (the diagonal case of matrix scaling): w_k = 1 / T_k is a
    per-class inverse temperature. (w, b) minimise the mean validation NLL, unregularised as
    in Guo et al., by L-BFGS-B (scipy) with the analytic gradient, starting from w = 1, b = 0,
    at most 500 iterations. Adding a constant to every b_k does not change the softmax, so b
    is reported centred (mean 0). If the validation set is separable the NLL keeps falling
    as w grows; the iteration cap then bounds w.

    params: {"weights": [w_1..w_K], "temperatures": [1/w_k] (None where w_k = 0),
    "biases": [b_k], "n_iter": int, "converged": bool}.
    """
    z, y = _fit_inputs(logits, labels)
    k = z.shape[1]
    theta0 = np.concatenate([np.ones(k), np.zeros(k)])
    res = _lbfgs(_vector_objective, theta0, (np.ascontiguousarray(z.T), _true_index(y)))
    w, b = res.x[:k].copy(), res.x[k:] - res.x[k:].mean()
    temps = [float(1.0 / v) if v != 0.0 else None for v in w.tolist()]
    return Fitted(
        name="vs",
        num_classes=k,
        params={
            "weights": w.tolist(),
            "temperatures": temps,
            "biases": b.tolist(),
            "n_iter": int(res.nit),
            "converged": bool(res.success),
        },
        _scaled_logits=lambda x: x * w + b,
    )


def ms_min_examples(num_classes: int) -> int:
    """Fewest validation examples ``fit_matrix_scaling`` accepts: 10 per class, 10 K."""
    return MS_MIN_PER_CLASS * int(num_classes)


def _fit_matrix(
    z_t: FloatArray, y: IntArray, lam: float, mu: float, theta0: FloatArray, ftol: float = _FTOL
) -> tuple[FloatArray, Any]:
    res = _lbfgs(_matrix_objective, theta0, (z_t, _true_index(y), lam, mu), ftol)
    return res.x, res


def _heldout_nll(theta: FloatArray, z_t: FloatArray, y: IntArray) -> float:
    k = z_t.shape[0]
    nll, _ = _softmax_grad(
        theta[: k * k].reshape(k, k) @ z_t + theta[k * k :, None], _true_index(y)
    )
    return nll


def _select_ms_strength(
    z: FloatArray,
    y: IntArray,
    grid: Sequence[float],
    holdout: float,
    seed: int,
    theta_id: FloatArray,
) -> tuple[float, FloatArray, dict[str, Any]]:
    """The tied strength lam = mu of the grid with the lowest held-out NLL (see
    ``fit_matrix_scaling``), the parameters fitted at it, and how it was chosen."""
    n = z.shape[0]
    strengths = sorted((float(v) for v in grid), reverse=True)
    if not strengths or any(not (math.isfinite(v) and v >= 0.0) for v in strengths):
        raise ValueError(f"expected a non-empty grid of finite strengths >= 0, got {grid!r}")
    perm = np.random.default_rng(seed).permutation(n)
    n_out = math.ceil(holdout * n)
    if not 0 < n_out < n:
        raise ValueError(f"expected holdout in (0, 1) leaving both parts non-empty, got {holdout}")
    out_idx, fit_idx = perm[:n_out], perm[n_out:]
    fit_t, out_t = np.ascontiguousarray(z[fit_idx].T), np.ascontiguousarray(z[out_idx].T)
    theta = theta_id
    scores: list[float] = []
    thetas: list[FloatArray] = []
    for s in strengths:
        theta, _ = _fit_matrix(fit_t, y[fit_idx], s, s, theta, _FTOL_SEARCH)
        scores.append(_heldout_nll(theta, out_t, y[out_idx]))
        thetas.append(theta)
    best = int(np.argmin(scores))  # first minimum = the strongest penalty among ties
    chosen = {
        "selected_by": "holdout",
        "grid": strengths,
        "holdout_nll": [float(v) for v in scores],
        "holdout_fraction": float(holdout),
        "seed": int(seed),
    }
    return strengths[best], thetas[best], chosen


def fit_matrix_scaling(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    lam: float | None = None,
    mu: float | None = None,
    grid: Sequence[float] = ODIR_GRID,
    holdout: float = MS_HOLDOUT,
    seed: int = MS_SEED,
) -> Fitted:
    """Matrix scaling with ODIR: softmax(W z + b), W (K x K) and b fitted on the NLL.

    Kull et al. 2019, sec. 3 ("ODIR"): minimise over W, b

        (1/n) sum_i -log softmax(W z_i + b)_{y_i}
            + lam * sum_{i != j} W_ij^2 / (K (K - 1)) + mu * sum_j b_j^2 / K.

    The diagonal of W is not penalised: lam pulls W towards a diagonal (vector scaling),
    mu pulls b towards 0. Fitted by L-BFGS-B (scipy) with the analytic gradient, starting
    from W = I, b = 0, at most 500 iterations per fit.

    Choosing lam and mu. When both are None (the default, and what ``CALIBRATORS["ms"]``
    does), lam = mu is tied and chosen from ``grid`` = (1e-4, 1e-3, 1e-2, 0.1, 1, 10): the
    validation split is permuted with ``np.random.default_rng(seed)`` (seed 0), the first
    ceil(holdout * n) = 20 % are held out, W and b are fitted on the other 80 % for each
    strength (largest first, each fit starting from the previous solution), and the strength
    with the lowest held-out NLL wins (ties: the larger, i.e. stronger, penalty). W and b are
    then refitted on the whole validation split at that strength. Kull et al. chose lam and mu
    separately by 5-fold cross-validation over a wider grid; one tied 1-D grid and one split
    cost len(grid) + 1 fits, where a 5-fold search over a 2-D grid of G values a side costs
    5 G^2 + 1. Pass lam and mu to fix them instead.

    Needs at least ``ms_min_examples(K)`` = 10 K validation examples (``CalibrationError``
    otherwise): the penalty keeps W well-posed even with fewer examples than its K^2 + K
    parameters, but choosing its strength needs a held-out part with a few examples per class.

    params: {"W": K x K nested list, "b": [K], "lambda", "mu", "selected_by":
    "holdout" | "fixed", "grid", "holdout_nll": [per grid point] (holdout only), "n_iter",
    "converged"}. W and b are as fitted (not centred): with a penalty they are identifiable.
    """
    z, y = _fit_inputs(logits, labels)
    n, k = z.shape
    need = ms_min_examples(k)
    if n < need:
        raise CalibrationError(
            f"matrix scaling (ms) needs at least {need} validation examples for {k} classes "
            f"({MS_MIN_PER_CLASS} per class), got {n}; train with a larger data.val_size "
            f"(e.g. data.val_size={max(need, 1000)}) or leave ms out of the calibrators"
        )
    if (lam is None) != (mu is None):
        raise ValueError("expected lam and mu both given or both None (chosen on a held-out part)")
    theta_id = np.concatenate([np.eye(k).ravel(), np.zeros(k)])
    params: dict[str, Any] = {}
    if lam is None or mu is None:
        lam, theta0, chosen = _select_ms_strength(z, y, grid, holdout, seed, theta_id)
        mu = lam
        params.update(chosen)
    else:
        if not all(math.isfinite(v) and v >= 0.0 for v in (lam, mu)):
            raise ValueError(f"expected finite lam, mu >= 0, got lam={lam!r}, mu={mu!r}")
        theta0 = theta_id
        params.update(selected_by="fixed")
    theta, res = _fit_matrix(np.ascontiguousarray(z.T), y, float(lam), float(mu), theta0)
    w, b = theta[: k * k].reshape(k, k).copy(), theta[k * k :].copy()
    params.update(
        W=w.tolist(),
        b=b.tolist(),
        **{"lambda": float(lam), "mu": float(mu)},
        n_iter=int(res.nit),
        converged=bool(res.success),
    )
    return Fitted(
        name="ms",
        num_classes=k,
        params=params,
        _scaled_logits=lambda x: x @ w.T + b,
    )


# ---------------------------------------------------------------------------------------
# Top-label methods: histogram binning and isotonic regression
# ---------------------------------------------------------------------------------------


def _confidence(z: FloatArray) -> FloatArray:
    """Top-label confidence max_k softmax(z)_k in float64."""
    return metrics.softmax(z).max(axis=1)


def _correct(z: FloatArray, y: IntArray) -> FloatArray:
    return (z.argmax(axis=1) == y).astype(np.float64)


def top_label_probs(logits: ArrayLike, confidence: ArrayLike) -> FloatArray:
    """Full (n, K) probability vectors from calibrated top-label confidences c'.

    With k* = argmax_k z_k (the predicted class; ties go to the lowest index):

    1. c = clip(c', 1/K + 1e-12, 1). A top-label probability below 1/K would make another
       class more likely than the predicted one; the floor (just above 1/K, so the predicted
       class stays the strict maximum) keeps the prediction, and a clip is non-decreasing,
       so it never reverses the order of two confidences (it can tie them).
    2. p_k* = c, and the other classes share 1 - c in proportion to their original
       probabilities: p_j = (1 - c) softmax_{j != k*}(z)_j, computed from the logits so that it
       stays exact where the original p_j underflow. Where that would lift another class to
       c or above (possible only when c < 1/2), the rest is shared equally instead,
       p_j = (1 - c)/(K - 1) < c. Either way the row sums to 1, argmax is k* and max is c.

    Where c = 1 the other classes get exactly 0: a wrong prediction there has probability 0
    for its true class, and its NLL is the 708-nat floor of ``metrics.nll``.
    """
    z = _as_2d_float(logits, "logits")
    n, k = z.shape
    if k < 2:
        raise ValueError(f"expected at least 2 classes, got shape {z.shape}")
    c = np.asarray(confidence, dtype=np.float64)
    if c.shape != (n,):
        raise ValueError(f"expected {n} confidences (one per row of logits), got shape {c.shape}")
    c = np.clip(c, 1.0 / k + _FLOOR_MARGIN, 1.0)
    rows = np.arange(n)
    top = z.argmax(axis=1)
    rest = z.copy()
    rest[rows, top] = -np.inf
    share = metrics.softmax(rest)  # softmax over the other classes; 0 at the top class
    p = share * (1.0 - c)[:, None]
    uneven = p.max(axis=1) >= c
    p[uneven] = ((1.0 - c[uneven]) / (k - 1))[:, None]
    p[rows, top] = c
    return p


def _top_label_fitted(
    name: str, k: int, params: dict[str, Any], calibrate: Callable[[FloatArray], FloatArray]
) -> Fitted:
    return Fitted(name=name, num_classes=k, params=params, _top_label=calibrate)


def _pool_adjacent_violators(
    values: FloatArray, weights: FloatArray
) -> tuple[IntArray, FloatArray]:
    """(block index of each input, block means): weighted PAV for a non-decreasing fit.

    Barlow et al. 1972; used here on at most a few dozen bins, so a plain loop.
    """
    means: list[float] = []
    wsum: list[float] = []
    sizes: list[int] = []
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        means.append(v)
        wsum.append(w)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            w_new = wsum[-2] + wsum[-1]
            means[-2] = (means[-2] * wsum[-2] + means[-1] * wsum[-1]) / w_new
            wsum[-2] = w_new
            sizes[-2] += sizes[-1]
            del means[-1], wsum[-1], sizes[-1]
    return np.repeat(np.arange(len(sizes)), sizes), np.array(means)


def fit_histogram_binning(logits: ArrayLike, labels: ArrayLike, n_bins: int = HIST_BINS) -> Fitted:
    """Top-label histogram binning with equal-mass bins (Zadrozny & Elkan 2001).

    The validation top-label confidences c_i = max_k p_ik are sorted and cut into
    B = min(n_bins, n) groups of (almost) equal size (``np.array_split``), as Zadrozny & Elkan
    do ("sort the training examples by score, divide them into b subsets of equal size").
    Bin upper edges are the midpoints between neighbouring groups, deduplicated, and +inf for
    the last; a value on an edge goes to the lower bin, so equal confidences always share a
    bin (the convention of ``metrics.debiased_ece``). The calibrated confidence of a bin is
    the accuracy of the predicted class over the validation examples in it.

    One change from the paper: bin accuracies are not always non-decreasing in confidence
    (a noisy bin can beat its right neighbour), which would reverse the order of some
    confidences. Violating neighbours are merged by pool-adjacent-violators (their pooled
    accuracy is the accuracy over the merged bin), so the map is a non-decreasing step
    function: ranking is never reversed, but every example of a bin gets the same value
    (ties). Bins left empty by tied confidences are dropped.

    A test confidence is mapped by its bin; the full vector is then ``top_label_probs``.

    params: {"scheme": "equal-mass", "n_bins": requested, "inner_edges": [e_1..e_{B-1}]
    (bin b is (e_{b-1}, e_b], with e_0 = -inf and e_B = +inf), "accuracy": [per bin, after
    merging], "counts": [validation examples per bin]}.
    """
    z, y = _fit_inputs(logits, labels)
    n_bins = metrics._check_n_bins(n_bins)
    conf, correct = _confidence(z), _correct(z, y)
    n = conf.shape[0]
    ordered = np.sort(conf)
    sizes = np.array([len(g) for g in np.array_split(np.arange(n), min(n_bins, n))])
    starts = np.cumsum(sizes)[:-1]
    inner = np.unique((ordered[starts - 1] + ordered[starts]) / 2.0)
    idx = np.searchsorted(inner, conf, side="left")
    counts = np.bincount(idx, minlength=inner.size + 1)
    hits = np.bincount(idx, weights=correct, minlength=inner.size + 1)
    filled = counts > 0
    upper = np.append(inner, np.inf)[filled]
    counts, hits = counts[filled], hits[filled]
    block, acc = _pool_adjacent_violators(hits / counts, counts.astype(np.float64))
    last_of_block = np.flatnonzero(np.append(block[1:] != block[:-1], True))
    upper = upper[last_of_block]
    block_counts = np.bincount(block, weights=counts).astype(np.int64)
    inner_edges = upper[:-1]

    def calibrate(c: FloatArray) -> FloatArray:
        return acc[np.searchsorted(inner_edges, c, side="left")]

    params = {
        "scheme": "equal-mass",
        "n_bins": n_bins,
        "inner_edges": inner_edges.tolist(),
        "accuracy": acc.tolist(),
        "counts": block_counts.tolist(),
    }
    return _top_label_fitted("hist", z.shape[1], params, calibrate)


def fit_isotonic(logits: ArrayLike, labels: ArrayLike) -> Fitted:
    """Top-label isotonic regression (Zadrozny & Elkan 2002), by scikit-learn.

    ``sklearn.isotonic.IsotonicRegression(y_min=0, y_max=1, increasing=True,
    out_of_bounds="clip")`` fitted on (top-label confidence max_k p_k, 1[prediction right])
    over the validation split: the non-decreasing map minimising the squared error (pool
    adjacent violators; equal confidences are averaged first, so they get one value). New
    confidences are mapped by linear interpolation between the fitted points, and clipped to
    the end values outside the validation range (scikit-learn's ``predict``).

    The map is non-decreasing and constant on each pooled block, so the order of two
    confidences is never reversed, but many become equal (ties). The full vector is
    ``top_label_probs``.

    params: {"x_thresholds": [...], "y_thresholds": [...]} (scikit-learn's ``X_thresholds_``
    and ``y_thresholds_``: the map is ``np.interp(c, x, y)``).
    """
    z, y = _fit_inputs(logits, labels)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(_confidence(z), _correct(z, y))
    params = {
        "x_thresholds": [float(v) for v in iso.X_thresholds_],
        "y_thresholds": [float(v) for v in iso.y_thresholds_],
    }

    def calibrate(c: FloatArray) -> FloatArray:
        return np.asarray(iso.predict(c), dtype=np.float64)

    return _top_label_fitted("iso", z.shape[1], params, calibrate)


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------

CALIBRATORS: dict[str, Calibrator] = by_name(
    Calibrator(
        "ts",
        "temperature scaling",
        "Guo et al. 2017, On Calibration of Modern Neural Networks (ICML)",
        fit_temperature_scaling,
        keeps_prediction=True,
        top_label=False,
    ),
    Calibrator(
        "vs",
        "vector scaling",
        "Guo et al. 2017, On Calibration of Modern Neural Networks (ICML)",
        fit_vector_scaling,
        keeps_prediction=False,
        top_label=False,
    ),
    Calibrator(
        "ms",
        "matrix scaling (ODIR)",
        "Kull et al. 2019, Beyond temperature scaling: Obtaining well-calibrated "
        "multiclass probabilities with Dirichlet calibration (NeurIPS)",
        fit_matrix_scaling,
        keeps_prediction=False,
        top_label=False,
    ),
    Calibrator(
        "hist",
        "histogram binning (top-label)",
        "Zadrozny & Elkan 2001, Obtaining calibrated probability estimates from "
        "decision trees and naive Bayesian classifiers (ICML)",
        fit_histogram_binning,
        keeps_prediction=True,
        top_label=True,
    ),
    Calibrator(
        "iso",
        "isotonic regression (top-label)",
        "Zadrozny & Elkan 2002, Transforming classifier scores into accurate multiclass "
        "probability estimates (KDD)",
        fit_isotonic,
        keeps_prediction=True,
        top_label=True,
    ),
)
"""Every calibrator by name, in the order tables list them."""


def parse_calibrators(spec: str | Sequence[str]) -> tuple[Calibrator, ...]:
    """Calibrators named in a comma-separated string (or a list of names), in the order given.

    Names are stripped and lower-cased; repeats are dropped. Raises ``ConfigError`` (exit 2)
    naming the unknown names and listing the known ones, or for an empty list.

    >>> [c.name for c in parse_calibrators("ts, iso,ts")]
    ['ts', 'iso']
    """
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [str(p).strip().lower() for p in parts]
    known = ", ".join(f"{c.name} ({c.label})" for c in CALIBRATORS.values())
    if not any(names):
        raise ConfigError([f"no calibrator named in {spec!r}; choose from {known}"])
    unknown = [n for n in names if n and n not in CALIBRATORS]
    if unknown:
        what = ", ".join(repr(u) for u in unknown)
        raise ConfigError(
            [f"unknown calibrator {what}; choose from {known}, comma-separated (e.g. ts,vs)"]
        )
    return tuple(CALIBRATORS[n] for n in dict.fromkeys(n for n in names if n))


# ---------------------------------------------------------------------------------------
# Metrics after calibration
# ---------------------------------------------------------------------------------------


def calibrated_metrics(
    fitted: Fitted, logits: ArrayLike, labels: ArrayLike, n_bins: int = 15
) -> dict[str, float]:
    """The metric panel of ``metrics.all_metrics`` after a calibrator, on (test) logits.

    Keys: accuracy, nll, brier, ece, mce, adaptive_ece, classwise_ece, mean_confidence,
    overconfidence (no logit_gap: top-label methods have no logits). NLL is
    -(1/n) sum_i log p_{i, y_i}: from the calibrated logits for ts, vs, ms (exact), and
    ``metrics.nll`` of the probabilities for hist and iso. The NLL of hist and iso is
    dominated by test examples that land in a bin or block of validation accuracy 1 and are
    wrong: their true class gets probability 0, floored at the smallest normal float64, about
    708 nats each (count them with ``fitted.probs(z)[np.arange(n), y] == 0``).
    """
    z = fitted._logits(logits)
    y = _as_labels(labels, *z.shape)
    p = fitted.probs(z)
    if fitted._scaled_logits is not None:
        nll = metrics.nll_from_logits(fitted._scaled_logits(z), y)
    else:
        nll = metrics.nll(p, y)
    bins = metrics.reliability_bins(p, y, n_bins)
    return {
        "accuracy": metrics.accuracy(p, y),
        "nll": nll,
        "brier": metrics.brier(p, y),
        "ece": bins.ece,
        "mce": bins.mce,
        "adaptive_ece": metrics.adaptive_ece(p, y, n_bins),
        "classwise_ece": metrics.classwise_ece(p, y, n_bins),
        "mean_confidence": metrics.mean_confidence(p),
        "overconfidence": metrics.overconfidence(p, y),
    }
