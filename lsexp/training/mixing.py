r"""Batch mixing for mixup and CutMix, with the same random numbers at every strength.

mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization", Eq. 1) trains on

    x~ = lam * x_i + (1 - lam) * x_j,    y~ = lam * y_i + (1 - lam) * y_j,

and CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong Classifiers
with Localizable Features", Eq. 1) on x~ = M * x_i + (1 - M) * x_j, with M a binary mask
that is 0 inside a box of area share 1 - lam. In both, lam ~ Beta(a, a) and the partner j
of example i comes from a random permutation of the batch. The loss of a mixed batch is
`objectives.mixed_cross_entropy(logits, y, y[perm], lam)`.

One lam per batch. As the authors' code (facebookresearch/mixup-cifar10, train.py
`mixup_data`; clovaai/CutMix-PyTorch, train.py) draws one lam and one permutation per
batch, and one CutMix box for the whole batch, so do these functions: the loss is then the
published one, not a per-example variant with a different variance.

Common random numbers across strengths. `draw_mix` makes the same draws in the same order
from the generator it is given (`randperm(B)`, then one uniform u, then two uniforms for
the box centre) whatever the kind (mixup or CutMix) and the strength a, and lam is the
Beta(a, a) quantile of u (inverse-CDF sampling) instead of a draw from a Beta sampler
whose number of draws depends on a. One seed therefore gives the same partners, the same
box centre and the same u at every a, and runs at different strengths differ only by the
strength (a paired comparison, as the rest of lsexp does across alpha). Two calls on
generators in the same state give identical outputs.

Training accuracy of a mixed batch. A mixed example has two labels; `mixed_correct` counts
a prediction as lam correct if it is the first label and 1 - lam if it is the second, as
the mixup authors' code does (`lam * predicted.eq(targets_a).sum() + (1 - lam) *
predicted.eq(targets_b).sum()`). This is the accuracy on the mixed inputs against the
mixed labels, not the accuracy on clean training data: it is usually lower, and not comparable
with an unmixed run's training accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import torch
from torch import Tensor

__all__ = ["MixDraw", "beta_quantile", "cutmix", "draw_mix", "mixed_correct", "mixup"]

# u = (k + 1/2) / 2**52 for k uniform on {0, ..., 2**52 - 1}: an odd multiple of 2**-53, so
# exact in float64, strictly inside (0, 1), and 1 - u is exact too (beta_quantile's
# symmetry q(1 - u) = 1 - q(u) is not broken by rounding u). With 2**53 the midpoints
# above 1/2 would not be representable and the largest would round to 1.
_U_BITS = 52


def _open_uniform(k: int) -> float:
    """(k + 1/2) / 2**52 for an integer k in [0, 2**52): in (0, 1), exact in float64."""
    return (k + 0.5) / 2**_U_BITS


@dataclass(frozen=True, eq=False)
class MixDraw:
    """The random numbers of one mixed batch; they do not depend on the kind or strength.

    ``eq=False``: a generated ``==`` would compare the ``perm`` tensors elementwise and fail
    on ``bool()``; compare the fields instead.

    Attributes:
        perm: (B,) int64 partner index of each example, on the batch's device.
        u: uniform in (0, 1); lam = Beta(a, a) quantile of u.
        center: (cy, cx), each uniform in [0, 1): the CutMix box centre as a fraction of
            H and W.
    """

    perm: Tensor
    u: float
    center: tuple[float, float]


def draw_mix(generator: torch.Generator, batch_size: int, device) -> MixDraw:
    """Draw a batch's partners, u and box centre from `generator`, and nothing else.

    Always the same draws in the same order, whatever the kind or strength: `randperm(B)`,
    then one uniform (u, as (k + 1/2) / 2**52 with k an integer uniform on [0, 2**52)),
    then two uniforms (the centre, float64 in [0, 1)). So runs at different strengths stay
    paired, and the generator is advanced by the same amount every batch. The draws are
    made on ``generator.device`` (a CPU generator can serve a batch on a GPU) and the
    permutation is then moved to `device`.

    Args:
        generator: the only source of randomness.
        batch_size: B >= 1.
        device: where the batch lives; `perm` is put there.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"expected an integer batch_size >= 1, got {batch_size!r}")
    gen_device = generator.device
    perm = torch.randperm(batch_size, generator=generator, device=gen_device)
    k = torch.randint(0, 2**_U_BITS, (1,), generator=generator, device=gen_device)
    center = torch.rand(2, generator=generator, device=gen_device, dtype=torch.float64)
    u = _open_uniform(int(k.item()))
    cy, cx = center.tolist()
    return MixDraw(perm=perm.to(device), u=u, center=(cy, cx))


def _check_a(a: float) -> float:
    """`a` as a float if it is a finite real number > 0 (not a bool), else ValueError."""
    if isinstance(a, bool) or not isinstance(a, Real) or not (math.isfinite(a) and a > 0):
        raise ValueError(f"expected a finite Beta parameter a > 0, got {a!r}")
    return float(a)


def beta_quantile(u: float, a: float) -> float:
    """The Beta(a, a) quantile of u, in float64: x with I_x(a, a) = u.

    I_x is the regularized incomplete beta function; its inverse is
    ``scipy.special.betaincinv(a, a, u)``. a = 1 is the uniform distribution (quantile u);
    a -> 0 puts the mass at 0 and 1 (the quantile is ~0 for u < 1/2, ~1 for u > 1/2), and
    a -> inf at 1/2. The distribution is symmetric: q(1 - u) = 1 - q(u).

    Args:
        u: a probability in [0, 1].
        a: both Beta parameters, finite and > 0.
    """
    from scipy.special import betaincinv

    a = _check_a(a)
    if isinstance(u, bool) or not isinstance(u, Real) or not (0.0 <= u <= 1.0):
        raise ValueError(f"expected u in [0, 1], got {u!r}")
    return float(betaincinv(a, a, float(u)))


def _check_draw(x: Tensor, draw: MixDraw) -> Tensor:
    """The draw's permutation on x's device, after checking it fits x's batch."""
    if x.ndim < 1:
        raise ValueError("expected a batch x of shape (B, ...), got a 0-d tensor")
    if draw.perm.shape != x.shape[:1]:
        raise ValueError(
            f"expected a draw for a batch of {x.shape[0]}, got perm of shape "
            f"{tuple(draw.perm.shape)}"
        )
    return draw.perm.to(x.device)


def mixup(x: Tensor, draw: MixDraw, a: float) -> tuple[Tensor, float]:
    """mixup of a batch: (lam * x + (1 - lam) * x[perm], lam), lam = beta_quantile(u, a).

    Zhang et al. 2018, Eq. 1, with one lam per batch as the authors' code
    (facebookresearch/mixup-cifar10, train.py `mixup_data`). Train on the result with
    ``mixed_cross_entropy(logits, y, y[draw.perm], lam)``.

    Args:
        x: (B, ...) floating batch; the output keeps its dtype, device and memory format.
        draw: from `draw_mix` for this batch.
        a: the Beta(a, a) parameter (the mixup "alpha"), finite and > 0.

    Returns:
        The mixed batch (a new tensor) and lam, the weight of x's own examples.
    """
    lam = beta_quantile(draw.u, a)
    perm = _check_draw(x, draw)
    return lam * x + (1.0 - lam) * x[perm], lam


def _box_bounds(size: int, centre_frac: float, cut: int) -> tuple[int, int]:
    """clip(c - cut // 2, 0, size), clip(c + cut // 2, 0, size) with c = int(frac * size)."""
    c = int(centre_frac * size)
    return min(max(c - cut // 2, 0), size), min(max(c + cut // 2, 0), size)


def cutmix(x: Tensor, draw: MixDraw, a: float) -> tuple[Tensor, float]:
    """CutMix of a batch: the same box of every image replaced by that of its partner.

    As clovaai/CutMix-PyTorch (train.py and its `rand_bbox`), with the centre and lam from
    `draw`: lam0 = beta_quantile(u, a); cut ratio r = sqrt(1 - lam0); cut_h = int(H * r),
    cut_w = int(W * r); centre cy = int(center[0] * H), cx = int(center[1] * W); the box
    is rows clip(cy - cut_h // 2, 0, H) .. clip(cy + cut_h // 2, 0, H) and columns
    likewise (end exclusive). The returned lam is 1 - box_area / (H * W), the exact share
    of each image's own pixels after clipping at the edges (the authors' lam adjustment),
    so lam is not lam0 in general.

    The authors' train.py applies CutMix to a batch with probability ``cutmix_prob`` (a
    command-line argument) and trains it unmixed otherwise; here it is always applied
    (cutmix_prob = 1): a run without mixing is a separate run. Note that rand_bbox calls
    size[2] (rows) "W"; the box here is the same one, named by the axis it runs along.

    Args:
        x: (B, C, H, W) batch; not modified. The output keeps its dtype, device and memory
            format (channels_last in, channels_last out).
        draw: from `draw_mix` for this batch.
        a: the Beta(a, a) parameter (the CutMix "beta"), finite and > 0.

    Returns:
        The mixed batch (a new tensor) and lam, the weight of x's own labels.
    """
    lam0 = beta_quantile(draw.u, a)
    if x.ndim != 4:
        raise ValueError(f"expected x of shape (B, C, H, W), got {tuple(x.shape)}")
    perm = _check_draw(x, draw)
    h, w = x.shape[2], x.shape[3]
    ratio = math.sqrt(1.0 - lam0)
    r0, r1 = _box_bounds(h, draw.center[0], int(h * ratio))
    c0, c1 = _box_bounds(w, draw.center[1], int(w * ratio))
    out = x.clone()  # preserve_format: same strides as x
    if r1 > r0 and c1 > c0:
        out[:, :, r0:r1, c0:c1] = x[perm, :, r0:r1, c0:c1]
    return out, 1.0 - (r1 - r0) * (c1 - c0) / (h * w)


def mixed_correct(predicted: Tensor, y_a: Tensor, y_b: Tensor, lam: float) -> Tensor:
    """lam * #(predicted == y_a) + (1 - lam) * #(predicted == y_b), a float32 scalar tensor.

    The number of correct predictions in a mixed batch as the mixup authors' code counts it
    (facebookresearch/mixup-cifar10, train.py): divide its sum over batches by the number
    of examples for the "training accuracy" of a mixup/CutMix run (see the module
    docstring for what it means). Stays on the tensors' device (no synchronisation).

    Args:
        predicted: (B,) predicted classes.
        y_a: (B,) labels of the batch's own examples.
        y_b: (B,) labels of the partners (y_a[perm]).
        lam: the weight of y_a, in [0, 1], as `mixup` or `cutmix` returned it.
    """
    if isinstance(lam, bool) or not isinstance(lam, Real) or not (0.0 <= lam <= 1.0):
        raise ValueError(f"expected lam in [0, 1], got {lam!r}")
    if predicted.ndim != 1 or y_a.shape != predicted.shape or y_b.shape != predicted.shape:
        raise ValueError(
            f"expected predicted, y_a, y_b of one shape (B,), got {tuple(predicted.shape)}, "
            f"{tuple(y_a.shape)}, {tuple(y_b.shape)}"
        )
    lam = float(lam)
    hits_a = (predicted == y_a).sum().float()
    hits_b = (predicted == y_b).sum().float()
    return lam * hits_a + (1.0 - lam) * hits_b
