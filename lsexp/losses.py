"""The label-smoothed cross-entropy that every run trains with.

Written out rather than delegated to ``F.cross_entropy(label_smoothing=...)`` so that the
formula the experiments rest on is visible in one place and pinned by tests against both
torch and an independent float64 NumPy reference (tests/test_losses.py).
"""

from __future__ import annotations

from numbers import Real

import torch.nn.functional as F
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
    alpha = float(alpha)
    log_q = F.log_softmax(logits.float(), dim=-1)
    nll = -log_q.gather(1, targets.unsqueeze(1)).squeeze(1)  # -log Q(y)
    if alpha == 0:
        # Skip the uniform term: exactly plain cross-entropy, and no 0 * inf = NaN when a
        # logit is -inf (a masked class), as in F.cross_entropy without smoothing.
        return nll.mean()
    uniform = -log_q.mean(dim=-1)  # mean_i(-log Q(i))
    return ((1.0 - alpha) * nll + alpha * uniform).mean()
