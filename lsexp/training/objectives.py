"""Training objectives: the losses a run can train with, each declared once.

An objective is one `Objective` entry in `OBJECTIVES`: its name, its strength parameter
(symbol, range, default grid), the loss `(logits, targets, strength) -> scalar`, how the
report labels it, and its source. `engine.train_run` looks the objective up by name and
knows none of them; a new objective is one function and one entry here (see
docs/architecture.md).

Each loss is written out rather than delegated (e.g. to ``F.cross_entropy(
label_smoothing=...)``) so that the formula the experiments rest on is visible in one
place and pinned by tests against torch and an independent float64 NumPy reference
(tests/test_objectives.py).
"""

from __future__ import annotations

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

    def check_strength(self, value: float) -> str | None:
        """Why `value` is not a valid strength, or None."""
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
    ),
)


def get_objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        known = ", ".join(OBJECTIVES)
        raise ValueError(f"unknown objective {name!r}; known: {known}") from None
