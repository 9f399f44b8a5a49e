"""Batch mixing for the mixup and CutMix objectives.

mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"): train on
lam * x_a + (1 - lam) * x_b against the soft target lam * y_a + (1 - lam) * y_b, with
lam ~ Beta(a, a) and x_b a random partner from the same batch. CutMix (Yun et al. 2019,
"CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features"): paste a box of x_b into x_a, the box's area a share 1 - lam0 of the image with
lam0 ~ Beta(a, a), and weigh the targets by the share of x_a's own pixels that remain.

As in the authors' code (facebookresearch/mixup-cifar10, clovaai/CutMix-PyTorch), one lam
(and one box) per batch, partners by a permutation of the batch. CutMix is applied to
every batch (the authors' `cutmix_prob` is 1 here), so its strength a alone sets it.

Pairing across strengths: every draw comes from the generator the caller passes (the
run's own, seeded by the run's seed and used for nothing else), in a fixed order that does
not depend on the kind or the strength (`draw_mix`): a permutation, one uniform u, two
uniforms for the box centre. lam is the Beta(a, a) quantile of u, so runs at different
strengths of one seed see the same partners and boxes, and lam moves monotonically with a
(common random numbers), and two runs of one (config, objective, strength, seed) are
identical on the CPU.

Training accuracy of a mixed batch (`mixed_correct`): lam * [argmax = y_a] + (1 - lam) *
[argmax = y_b], summed over the batch, as the mixup authors' training loop counts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class MixDraw:
    """One batch's random draws: partners, the uniform behind lam, the box centre."""

    perm: Tensor  # (B,) int64 partner index of each example, on the batch's device
    u: float  # uniform in (0, 1): lam = Beta(a, a) quantile of u
    center: tuple[float, float]  # (cy, cx), uniform in [0, 1): CutMix box centre / (H, W)


def draw_mix(generator: torch.Generator, batch_size: int, device) -> MixDraw:
    """The draws of one batch, always the same ones in the same order (a permutation of
    the batch, one uniform, two uniforms) from `generator`, whatever the kind or strength."""
    gen_device = generator.device
    perm = torch.randperm(batch_size, generator=generator, device=gen_device).to(device)
    u = torch.rand(1, generator=generator, device=gen_device, dtype=torch.float64).item()
    cy, cx = torch.rand(2, generator=generator, device=gen_device, dtype=torch.float64).tolist()
    # u = 0 has probability 2^-53; keep it inside (0, 1) so every quantile is finite.
    u = min(max(u, 2.0**-53), 1.0 - 2.0**-53)
    return MixDraw(perm, u, (cy, cx))


def _check_a(a: float) -> float:
    if isinstance(a, bool) or not isinstance(a, int | float) or not math.isfinite(a) or a <= 0:
        raise ValueError(f"expected a Beta(a, a) parameter a > 0, got {a!r}")
    return float(a)


def beta_quantile(u: float, a: float) -> float:
    """The Beta(a, a) quantile of u in (0, 1), in float64 (scipy.special.betaincinv)."""
    from scipy.special import betaincinv

    a = _check_a(a)
    if not 0.0 < u < 1.0:
        raise ValueError(f"expected u in (0, 1), got {u!r}")
    return float(betaincinv(a, a, u))


def mixup(x: Tensor, draw: MixDraw, a: float) -> tuple[Tensor, float]:
    """lam * x + (1 - lam) * x[perm] with lam the Beta(a, a) quantile of the draw's u;
    returns the mixed batch (x's dtype and memory format) and lam."""
    lam = beta_quantile(draw.u, a)
    mixed = torch.lerp(x[draw.perm], x, lam)  # x[perm] + lam * (x - x[perm])
    return mixed, lam


def cutmix_box(h: int, w: int, draw: MixDraw, a: float) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the pasted box, as clovaai's rand_bbox: a box of side ratio
    sqrt(1 - lam0) of the image, lam0 the Beta(a, a) quantile of u, centred at the draw's
    centre and clipped to the image."""
    lam0 = beta_quantile(draw.u, a)
    ratio = math.sqrt(1.0 - lam0)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    cy, cx = int(draw.center[0] * h), int(draw.center[1] * w)
    y0, y1 = min(max(cy - cut_h // 2, 0), h), min(max(cy + cut_h // 2, 0), h)
    x0, x1 = min(max(cx - cut_w // 2, 0), w), min(max(cx + cut_w // 2, 0), w)
    return y0, y1, x0, x1


def cutmix(x: Tensor, draw: MixDraw, a: float) -> tuple[Tensor, float]:
    """x with the box `cutmix_box` of x[perm] pasted in (a new tensor; x is unchanged), and
    lam = 1 - box area / image area, the exact share of x's own pixels."""
    h, w = x.shape[-2:]
    y0, y1, x0, x1 = cutmix_box(h, w, draw, a)
    mixed = x.clone()
    mixed[..., y0:y1, x0:x1] = x[draw.perm][..., y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
    return mixed, lam


def mixed_correct(predicted: Tensor, y_a: Tensor, y_b: Tensor, lam: float) -> Tensor:
    """lam * #(predicted == y_a) + (1 - lam) * #(predicted == y_b): a float32 scalar."""
    hits_a = (predicted == y_a).sum(dtype=torch.float32)
    hits_b = (predicted == y_b).sum(dtype=torch.float32)
    return lam * hits_a + (1.0 - lam) * hits_b
