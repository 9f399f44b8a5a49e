"""Training objectives: the losses a run can train with, each declared once.

An objective is one `Objective` entry in `OBJECTIVES`: its name, its strength parameter
(symbol, range, default grid), the loss `(logits, targets, strength) -> scalar`, how the
report labels it, and its source. `engine.train_run` looks the objective up by name and
knows none of them; a new objective is one function and one entry here (see
docs/architecture.md).

Each loss is written out rather than delegated (e.g. to ``F.cross_entropy(
label_smoothing=...)``) so that the formula the experiments rest on is visible in one
place and pinned by tests against torch and an independent float64 NumPy reference
(tests/test_objectives.py, tests/test_objectives_alternatives.py).

Besides label smoothing, `OBJECTIVES` holds focal loss (fixed gamma), focal loss with the
sample-dependent gamma FLSD-53, the confidence penalty, mixup and CutMix (`kind` "mixup" /
"cutmix": the engine mixes the batch with `training.mixing` and trains on
`mixed_cross_entropy`), and knowledge distillation (`kind` "distillation": the engine runs
the teacher on each batch and trains on `distillation_loss`; its strength grid is the
teachers named in the config's `sweep.distillation`, not numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

from lsexp.registry import by_name

if TYPE_CHECKING:  # torch is imported where a loss runs: configs and reports need no torch
    from torch import Tensor


def smoothed_cross_entropy(logits: Tensor, targets: Tensor, alpha: float) -> Tensor:
    r"""Cross-entropy against label-smoothed targets, averaged over the batch.

    For true class y among K classes the smoothed target is

        P'(i) = (1 - alpha) * 1[i = y] + alpha / K

    (Szegedy et al. 2016, "Rethinking the Inception Architecture", Sec. 7; Müller et al.
    2019, "When Does Label Smoothing Help?", Eq. 1), and the loss for one example is

        H(P', Q) = -sum_i P'(i) log Q(i)
                 = (1 - alpha) * (-log Q(y)) + alpha * mean_i(-log Q(i)),

    with Q = softmax(logits). This equals ``F.cross_entropy(logits, targets,
    label_smoothing=alpha)`` for integer targets. alpha = 0 is plain cross-entropy.

    The log-softmax is computed in float32 even when the logits are bfloat16/float16
    (autocast on GPU): a low-precision log-softmax loses the small log-probabilities that
    the alpha term averages over.

    Args:
        logits: (B, K) unnormalised scores, any floating dtype.
        targets: (B,) int64 class indices in [0, K).
        alpha: smoothing strength, 0 <= alpha < 1 (alpha = 1 would ask for the uniform
            distribution and ignore the labels).

    Returns:
        A float32 scalar: the mean loss over the batch.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> logits = torch.tensor([[2.0, 0.0, -1.0]])
        >>> targets = torch.tensor([0])
        >>> a = smoothed_cross_entropy(logits, targets, 0.1)
        >>> b = F.cross_entropy(logits, targets, label_smoothing=0.1)
        >>> bool(torch.allclose(a, b))
        True
    """
    # `not (0 <= alpha < 1)` also rejects NaN, which fails every comparison.
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not (0 <= alpha < 1):
        raise ValueError(f"expected alpha with 0 <= alpha < 1, got {alpha!r}")
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (B, K), got {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"expected targets of shape ({logits.shape[0]},) to match logits "
            f"{tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    import torch.nn.functional as F

    alpha = float(alpha)
    log_q = F.log_softmax(logits.float(), dim=-1)
    nll = -log_q.gather(1, targets.unsqueeze(1)).squeeze(1)  # -log Q(y)
    if alpha == 0:
        # Skip the uniform term: exactly plain cross-entropy, and no 0 * inf = NaN when a
        # logit is -inf (a masked class), as in F.cross_entropy without smoothing.
        return nll.mean()
    uniform = -log_q.mean(dim=-1)  # mean_i(-log Q(i))
    return ((1.0 - alpha) * nll + alpha * uniform).mean()


def _check_logits_targets(logits: Tensor, targets: Tensor, what: str = "targets") -> None:
    """The shape checks every loss here makes, with smoothed_cross_entropy's messages."""
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (B, K), got {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"expected {what} of shape ({logits.shape[0]},) to match logits "
            f"{tuple(logits.shape)}, got {tuple(targets.shape)}"
        )


def _check_real(
    name: str, value: float, low: float, high: float = math.inf, *, low_open: bool = False
) -> float:
    """`value` as a float if it is a finite real number (not a bool) in range, else ValueError.

    The range is low <= value <= high (low < value with `low_open`); high = inf means any
    finite value. NaN fails every comparison and is refused too.
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, Real)
        and math.isfinite(value)
        and (low < value if low_open else low <= value)
        and value <= high
    )
    if not ok:
        rule = f"{low:g} {'<' if low_open else '<='} {name} " + (
            "< inf" if high == math.inf else f"<= {high:g}"
        )
        raise ValueError(f"expected {name} with {rule}, got {value!r}")
    return float(value)


def _float32_or_wider(x: Tensor) -> Tensor:
    """bfloat16/float16 (autocast) as float32; float32 as is; float64 kept (gradcheck)."""
    import torch

    return x if x.dtype == torch.float64 else x.float()


def _log_softmax32(logits: Tensor) -> Tensor:
    """log-softmax over classes, in float32 (float64 for float64 logits)."""
    import torch.nn.functional as F

    return F.log_softmax(_float32_or_wider(logits), dim=-1)


def _true_class(log_p: Tensor, targets: Tensor) -> Tensor:
    """log p_y for each row: (B,)."""
    return log_p.gather(1, targets.unsqueeze(1)).squeeze(1)


def _focal_terms(log_py: Tensor, gamma: float | Tensor) -> Tensor:
    """Per-example -(1 - p_y)^gamma * log p_y from log p_y (B,), gamma a float or (B,).

    1 - p_y is -expm1(log p_y), exact given log p_y. (It gains little over 1 - exp(log
    p_y) in practice: near p_y = 1 the log-softmax has already rounded log p_y =
    -log(1 + small) at the resolution of 1 in its dtype.) It is floored at the smallest
    normal float32 (~1.2e-38): where it is 0, log p_y is 0 too and the loss term is 0
    either way, but d/du u^gamma =
    gamma * u^(gamma - 1) is infinite at u = 0 for gamma < 1 and 0 * inf would put NaN in
    the gradient. The true gradient there is 0, which the floor (a clamp, whose gradient
    is 0 below the floor) gives.
    """
    import torch

    one_minus_p = (-torch.expm1(log_py)).clamp_min(torch.finfo(torch.float32).tiny)
    return -(one_minus_p**gamma) * log_py


def focal_loss(logits: Tensor, targets: Tensor, gamma: float) -> Tensor:
    r"""Multi-class focal loss, averaged over the batch.

    For true class y with p = softmax(logits), one example's loss is

        FL = -(1 - p_y)^gamma * log p_y

    (Lin et al. 2017, "Focal Loss for Dense Object Detection", Eq. 4, without the alpha
    class weight; the softmax form is the one Mukhoti et al. 2020, "Calibrating Deep Neural
    Networks using Focal Loss", Eq. 1, train with). gamma = 0 is plain cross-entropy, and is
    computed as exactly that. The log-softmax is in float32 for bfloat16/float16/float32
    logits (float64 stays float64). The gradient stays finite for any gamma >= 0 and
    finite logits, including p_y = 1 exactly with gamma < 1 (see _focal_terms).

    Args:
        logits: (B, K) unnormalised scores, any floating dtype.
        targets: (B,) int64 class indices in [0, K).
        gamma: focusing parameter, a finite number >= 0 (the registry sweeps [0, 10]).

    Returns:
        A float32 scalar (float64 for float64 logits): the mean loss over the batch
        (Mukhoti et al.'s code sums over the batch by default; the mean only rescales the
        gradient by 1/B).

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> logits = torch.tensor([[2.0, 0.0, -1.0]])
        >>> targets = torch.tensor([0])
        >>> a = focal_loss(logits, targets, 0.0)
        >>> bool(torch.allclose(a, F.cross_entropy(logits, targets)))
        True
    """
    gamma = _check_real("gamma", gamma, 0.0)
    _check_logits_targets(logits, targets)
    log_py = _true_class(_log_softmax32(logits), targets)
    if gamma == 0:
        return (-log_py).mean()  # exactly cross-entropy
    return _focal_terms(log_py, gamma).mean()


FLSD_THRESHOLD = 0.2  # p_y below which FLSD-53 uses gamma = 5 (else 3)
FLSD_GAMMAS = (5.0, 3.0)
FLSD_53 = 53.0  # the one strength value of `focal_adaptive`: a name, not a number used


def focal_adaptive_loss(logits: Tensor, targets: Tensor, strength: float) -> Tensor:
    r"""Focal loss with sample-dependent gamma (FLSD-53), averaged over the batch.

    Mukhoti et al. 2020, "Calibrating Deep Neural Networks using Focal Loss", Sec. 5: per
    example,

        gamma_i = 5 if p_y < 0.2 else 3,    FL_i = -(1 - p_y)^gamma_i * log p_y,

    with p = softmax(logits) and y the true class. gamma_i is chosen from p_y without
    gradient (it is piecewise constant in p_y anyway); the factor (1 - p_y)^gamma_i keeps
    its gradient, as in focal_loss.

    The schedule is fixed. `strength` exists only so that the loss has the registry's
    `(logits, targets, strength)` interface: it must be a finite number >= 0 and is
    otherwise ignored. The registry entry `focal_adaptive` accepts the single value 53
    ("FLSD-53"), so that no run is labelled with a strength that changed nothing.

    Compared with the authors' code (github.com/torrvision/focal_calibration,
    Losses/focal_loss_adaptive_gamma.py, class FocalLossAdaptive, run with gamma=3.0 for
    FLSD-53 per train_scripts/*.sh): the same schedule. Their gamma is 5 for p_t < 0.2,
    3 for 0.2 <= p_t < 0.5 and `self.gamma` = 3 for p_t >= 0.5, chosen per example from
    `pt[i].item()` (a Python float, so without gradient); (1 - pt)**gamma is not detached.
    The differences: they reduce by sum over the batch by default (size_average=False)
    where this takes the mean; they compute 1 - exp(log p_t) where this uses -expm1 (the
    same value up to rounding); their log-softmax runs in the logits' dtype; and
    their Python loop over the batch becomes one torch.where here. The p_t compared with
    0.2 is the float32 value in both (0.2 rounded to float32 is 0.2000000030, and no
    float32 lies between the two, so the comparisons agree).

    Args:
        logits: (B, K) unnormalised scores, any floating dtype.
        targets: (B,) int64 class indices in [0, K).
        strength: ignored; a finite number >= 0 (the registry uses 53).

    Returns:
        A float32 scalar (float64 for float64 logits): the mean loss over the batch.
    """
    import torch

    _check_real("strength", strength, 0.0)
    _check_logits_targets(logits, targets)
    log_py = _true_class(_log_softmax32(logits), targets)
    gamma_hard, gamma_easy = FLSD_GAMMAS
    p_y = log_py.detach().exp()
    gamma = torch.where(p_y < FLSD_THRESHOLD, gamma_hard, gamma_easy)
    return _focal_terms(log_py, gamma).mean()


def confidence_penalty_loss(logits: Tensor, targets: Tensor, beta: float) -> Tensor:
    r"""Cross-entropy minus beta times the entropy of the prediction, averaged over the batch.

    Pereyra et al. 2017, "Regularizing Neural Networks by Penalizing Confident Output
    Distributions", Eq. 2: with p = softmax(logits) and y the true class,

        L = -log p_y - beta * H(p),    H(p) = -sum_i p_i log p_i.

    beta = 0 is plain cross-entropy and is computed as exactly that. (The paper's hinged
    variant, which penalises only entropies below a threshold, is not implemented.)

    Stability: log p comes from a float32 log-softmax, so it is finite for any finite
    logits (e.g. -2e4 for a class 2e4 below the top one) and p_i log p_i is 0 * finite = 0
    there; entries with p_i = 0 exactly are set to 0 before the sum, so a -inf logit (log
    p_i = -inf) gives 0 rather than 0 * -inf = NaN, in the value and in the gradient.

    Args:
        logits: (B, K) unnormalised scores, any floating dtype.
        targets: (B,) int64 class indices in [0, K).
        beta: penalty strength, a finite number >= 0 (the registry sweeps [0, 10]).

    Returns:
        A float32 scalar (float64 for float64 logits): the mean loss over the batch. It
        can be negative for large beta: H(p) is at most log K.
    """
    beta = _check_real("beta", beta, 0.0)
    _check_logits_targets(logits, targets)
    log_p = _log_softmax32(logits)
    nll = -_true_class(log_p, targets)
    if beta == 0:
        return nll.mean()
    p = log_p.exp()
    entropy = -(p * log_p.masked_fill(p == 0, 0.0)).sum(dim=-1)
    return (nll - beta * entropy).mean()


def _weighted(weight: Tensor, nll: Tensor) -> Tensor:
    """weight * nll, with 0 where weight is 0 (even if nll is inf: a -inf logit)."""
    import torch

    return torch.where(weight == 0, 0.0, weight * nll)


def mixed_cross_entropy(
    logits: Tensor, targets_a: Tensor, targets_b: Tensor, lam: float | Tensor
) -> Tensor:
    r"""Cross-entropy against a mix of two labels (mixup, CutMix), averaged over the batch.

    For inputs mixed as lam * x_a + (1 - lam) * x_b (mixup: Zhang et al. 2018, "mixup:
    Beyond Empirical Risk Minimization", Eq. 1) or pasted together with area share lam
    (CutMix: Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong
    Classifiers with Localizable Features", Eq. 1), one example's loss is

        L = lam * (-log p_a) + (1 - lam) * (-log p_b),

    which is the cross-entropy against the soft target lam * onehot(a) + (1 - lam) *
    onehot(b). A term whose weight is 0 contributes exactly 0, so lam = 1 is exactly
    cross-entropy on targets_a.

    The loss of the `mixup` and `cutmix` objectives: the engine mixes the inputs
    (`training.mixing`) and calls this with the partners' labels and the batch's lam.

    Args:
        logits: (B, K) unnormalised scores of the mixed inputs, any floating dtype.
        targets_a, targets_b: (B,) int64 class indices of the two mixed examples.
        lam: the weight of targets_a, a number in [0, 1] or a (B,) floating tensor of
            them (one per example). A tensor is checked on its values, which on a GPU
            waits for them.

    Returns:
        A float32 scalar (float64 for float64 logits): the mean loss over the batch.
    """
    import torch

    _check_logits_targets(logits, targets_a, "targets_a")
    _check_logits_targets(logits, targets_b, "targets_b")
    if isinstance(lam, torch.Tensor):
        if lam.shape != logits.shape[:1] or not lam.is_floating_point():
            raise ValueError(
                f"expected lam as a number or a floating tensor of shape "
                f"({logits.shape[0]},), got a {lam.dtype} tensor of shape {tuple(lam.shape)}"
            )
        if not bool(((lam >= 0) & (lam <= 1)).all()):  # NaN fails both comparisons
            raise ValueError(f"expected every lam in [0, 1], got {lam.tolist()!r}")
        weight_a = lam.float()
    else:
        lam = _check_real("lam", lam, 0.0, 1.0)
        weight_a = torch.full(logits.shape[:1], lam, dtype=torch.float32, device=logits.device)
    log_p = _log_softmax32(logits)
    nll_a = -_true_class(log_p, targets_a)
    nll_b = -_true_class(log_p, targets_b)
    return (_weighted(weight_a, nll_a) + _weighted(1.0 - weight_a, nll_b)).mean()


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    tau: float,
    hard_weight: float,
) -> Tensor:
    r"""Knowledge-distillation loss, averaged over the batch.

    Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network", Sec. 2:
    with soft targets q = softmax(t / tau) of the teacher and p^tau = softmax(s / tau) of
    the student,

        L = (1 - hard_weight) * tau^2 * KL(q || p^tau) + hard_weight * CE(softmax(s), y),

    KL(q || p) = sum_i q_i (log q_i - log p_i). The tau^2 keeps the soft term's gradient
    on the scale of the hard one as tau changes (the paper's Sec. 2: the soft gradients
    scale as 1/tau^2). The hard term is at temperature 1. The teacher logits are detached:
    no gradient reaches them. KL is summed over classes and averaged over the batch
    (PyTorch's reduction="batchmean"). hard_weight = 1 is exactly cross-entropy, and
    hard_weight = 0 exactly the soft term.

    Stability: both log-softmaxes are float32 and finite for finite logits; classes with
    q_i = 0 exactly contribute 0 (so a -inf teacher logit gives 0, not 0 * inf = NaN).

    The loss of the `distillation` objective: the engine runs the teacher (an eval-mode
    copy of a finished run's weights) on each training batch and calls this.

    Args:
        student_logits: (B, K) unnormalised student scores, any floating dtype.
        teacher_logits: (B, K) unnormalised teacher scores, any floating dtype.
        targets: (B,) int64 class indices in [0, K).
        tau: temperature, a finite number > 0.
        hard_weight: the weight of the hard-label cross-entropy, in [0, 1].

    Returns:
        A float32 scalar (float64 for float64 logits): the mean loss over the batch.
    """
    import torch

    tau = _check_real("tau", tau, 0.0, low_open=True)
    hard_weight = _check_real("hard_weight", hard_weight, 0.0, 1.0)
    _check_logits_targets(student_logits, targets)
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"expected teacher_logits of the student's shape {tuple(student_logits.shape)}, "
            f"got {tuple(teacher_logits.shape)}"
        )
    total = student_logits.new_zeros((), dtype=torch.float32)
    if hard_weight > 0:
        nll = -_true_class(_log_softmax32(student_logits), targets)
        total = total + hard_weight * nll.mean()
    if hard_weight < 1:
        log_q = _log_softmax32(_float32_or_wider(teacher_logits.detach()) / tau)
        log_p = _log_softmax32(_float32_or_wider(student_logits) / tau)
        q = log_q.exp()
        kl = torch.where(q > 0, q * (log_q - log_p), 0.0).sum(dim=-1)
        total = total + (1.0 - hard_weight) * tau**2 * kl.mean()
    return total


@dataclass(frozen=True)
class Objective:
    """A training objective and everything the sweep and the report need to know of it."""

    name: str  # the key in configs and run records
    label: str  # how tables and figures name it
    strength: str  # the name of its parameter, in the user's words (alpha, gamma, ...)
    symbol: str  # the parameter's symbol in figures (α, γ, ...)
    low: float  # strengths lie in [low, high) (or [low, high] if high_inclusive)
    high: float
    default_grid: tuple[float, ...]
    loss: Callable[[Tensor, Tensor, float], Tensor]
    citation: str
    high_inclusive: bool = False
    # How the engine trains it: "loss" calls `loss(logits, y, strength)`; "mixup" /
    # "cutmix" mix the batch (training.mixing) and use `mixed_cross_entropy`;
    # "distillation" runs a teacher on the batch and uses `distillation_loss`.
    kind: str = "loss"
    use: str = ""  # when people reach for it (README's objectives table)

    @property
    def has_baseline_at_zero(self) -> bool:
        """Strength 0 is plain cross-entropy (the shared baseline)."""
        return self.kind != "distillation" and self.low == 0.0

    def check_strength(self, value: float) -> str | None:
        """Why `value` is not a valid strength, or None."""
        if self.low == self.high:
            return (
                None
                if value == self.low
                else (f"{self.strength} takes the single value {self.low:g}, got {value}")
            )
        ok_high = value <= self.high if self.high_inclusive else value < self.high
        if not (self.low <= value and ok_high):
            bracket = "]" if self.high_inclusive else ")"
            return f"{self.strength} must be in [{self.low:g}, {self.high:g}{bracket}, got {value}"
        return None


DEFAULT_OBJECTIVE = "label_smoothing"  # what `sweep.alpha` trains, and every run before it

OBJECTIVES: dict[str, Objective] = by_name(
    Objective(
        name="label_smoothing",
        label="label smoothing",
        strength="alpha",
        symbol="α",
        low=0.0,
        high=1.0,  # alpha = 1 asks for the uniform distribution and ignores the labels
        default_grid=(0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
        loss=smoothed_cross_entropy,
        citation="Szegedy et al. 2016; Müller, Kornblith & Hinton 2019",
        use="the default regulariser of image classifiers since Inception-v3; α = 0.1",
    ),
    Objective(
        name="focal",
        label="focal loss",
        strength="gamma",
        symbol="γ",
        low=0.0,  # gamma = 0 is plain cross-entropy
        high=10.0,
        default_grid=(1.0, 2.0, 3.0),  # FL-1, FL-2, FL-3 of Mukhoti et al. 2020
        loss=focal_loss,
        citation="Lin et al. 2017; Mukhoti et al. 2020",
        high_inclusive=True,
        use="dense detection (class imbalance); calibration without post-hoc steps",
    ),
    Objective(
        name="focal_adaptive",
        label="focal loss, sample-dependent γ (FLSD-53)",
        strength="schedule",
        symbol="–",
        # The gamma schedule is fixed (5 if p_y < 0.2, else 3); the strength only names it.
        # One value, 53 for FLSD-53, so no run is labelled with a strength that changed
        # nothing (the loss itself accepts and ignores any finite number >= 0).
        low=FLSD_53,
        high=FLSD_53,
        default_grid=(FLSD_53,),
        loss=focal_adaptive_loss,
        citation="Mukhoti et al. 2020",
        high_inclusive=True,
        use="focal loss for calibration without tuning γ",
    ),
    Objective(
        name="confidence_penalty",
        label="confidence penalty",
        strength="beta",
        symbol="β",
        low=0.0,  # beta = 0 is plain cross-entropy
        high=10.0,
        default_grid=(0.1, 0.3, 1.0),
        loss=confidence_penalty_loss,
        citation="Pereyra et al. 2017",
        high_inclusive=True,
        use="a smoothing-like penalty on over-confident outputs (speech, language models)",
    ),
    Objective(
        name="mixup",
        label="mixup",
        strength="a",
        symbol="a",
        low=0.0,  # a = 0: no mixing (lam = 1), plain cross-entropy
        high=10.0,
        default_grid=(0.2, 0.4),
        loss=mixed_cross_entropy,  # type: ignore[arg-type]  # called with the partners
        citation="Zhang et al. 2018",
        high_inclusive=True,
        kind="mixup",
        use="stronger regularisation for image classifiers; lam ~ Beta(a, a)",
    ),
    Objective(
        name="cutmix",
        label="CutMix",
        strength="a",
        symbol="a",
        low=0.0,  # a = 0: no box (lam = 1), plain cross-entropy
        high=10.0,
        default_grid=(1.0,),
        loss=mixed_cross_entropy,  # type: ignore[arg-type]
        citation="Yun et al. 2019",
        high_inclusive=True,
        kind="cutmix",
        use="ImageNet/CIFAR augmentation that keeps local image statistics",
    ),
    Objective(
        name="distillation",
        label="distillation",
        strength="teacher",
        symbol="teacher",
        low=math.nan,  # no numeric strength: the teachers are named in sweep.distillation
        high=math.nan,
        default_grid=(),
        loss=distillation_loss,  # type: ignore[arg-type]  # called with the teacher's logits
        citation="Hinton, Vinyals & Dean 2015; Müller et al. 2019 §5",
        kind="distillation",
        use="compressing a teacher into a smaller student; τ-softened targets",
    ),
)

# The objectives a sweep lists with a grid of numeric strengths (`sweep.<name>: [...]`).
GRID_OBJECTIVES = tuple(o.name for o in OBJECTIVES.values() if o.kind != "distillation")


def get_objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        known = ", ".join(OBJECTIVES)
        raise ValueError(f"unknown objective {name!r}; known: {known}") from None
