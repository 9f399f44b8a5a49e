"""smoothed_cross_entropy against torch's label_smoothing and a float64 NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lsexp.training.objectives import smoothed_cross_entropy

ALPHAS = (0.0, 0.05, 0.1, 0.5, 0.99)
NUM_CLASSES = (2, 10, 100)

# float32 vs torch's own float32 implementation: only summation order differs.
TORCH_TOL = {"rtol": 1e-6, "atol": 1e-7}
# float32 vs an exact float64 computation from the same float32 logits: a few float32 ulps
# (2**-23 ~ 1.2e-7) of the log-probabilities, which for 1e4-sized logits are ~1e4 in size.
REF_TOL = {"rtol": 2e-6, "atol": 1e-6}


def reference_loss(logits: np.ndarray, targets: np.ndarray, alpha: float) -> float:
    """Slow float64 reference: the smoothed target P' written out, H(P', Q) = -sum P' log Q."""
    x = logits.astype(np.float64)
    b, k = x.shape
    total = 0.0
    for row, y in zip(x, targets, strict=True):
        m = row.max()
        log_q = row - m - math.log(np.exp(row - m).sum())  # stable log-softmax
        p = np.full(k, alpha / k)
        p[y] += 1.0 - alpha
        total += -(p * log_q).sum()
    return total / b


def make_batch(
    batch: int, k: int, scale: float = 3.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, k, generator=gen) * scale
    targets = torch.randint(0, k, (batch,), generator=gen)
    return logits, targets


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_matches_torch_label_smoothing(alpha: float, k: int) -> None:
    logits, targets = make_batch(64, k)
    ours = smoothed_cross_entropy(logits, targets, alpha)
    theirs = F.cross_entropy(logits, targets, label_smoothing=alpha)
    assert ours.shape == ()
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, **TORCH_TOL)


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_matches_float64_reference(alpha: float, k: int) -> None:
    logits, targets = make_batch(64, k, seed=1)
    ours = smoothed_cross_entropy(logits, targets, alpha).item()
    ref = reference_loss(logits.numpy(), targets.numpy(), alpha)
    np.testing.assert_allclose(ours, ref, **REF_TOL)


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_huge_logits_stay_finite_and_match(alpha: float, k: int) -> None:
    # Logits ~1e4: a naive log(softmax) would give log(0) = -inf for every other class.
    logits, targets = make_batch(32, k, scale=1e4, seed=2)
    ours = smoothed_cross_entropy(logits, targets, alpha)
    assert torch.isfinite(ours)
    torch.testing.assert_close(
        ours, F.cross_entropy(logits, targets, label_smoothing=alpha), **TORCH_TOL
    )
    ref = reference_loss(logits.numpy(), targets.numpy(), alpha)
    np.testing.assert_allclose(ours.item(), ref, **REF_TOL)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_batch_of_one(alpha: float) -> None:
    logits, targets = make_batch(1, 10, seed=3)
    ours = smoothed_cross_entropy(logits, targets, alpha)
    torch.testing.assert_close(
        ours, F.cross_entropy(logits, targets, label_smoothing=alpha), **TORCH_TOL
    )
    ref = reference_loss(logits.numpy(), targets.numpy(), alpha)
    np.testing.assert_allclose(ours.item(), ref, **REF_TOL)


def test_closed_form_uniform_logits() -> None:
    # Q uniform => -log Q(i) = log K for every i, whatever alpha is.
    logits = torch.zeros(4, 7)
    targets = torch.tensor([0, 3, 6, 2])
    for alpha in ALPHAS:
        loss = smoothed_cross_entropy(logits, targets, alpha)
        assert loss.item() == pytest.approx(math.log(7), rel=1e-6)


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_gradients_match_torch(alpha: float, k: int) -> None:
    logits, targets = make_batch(16, k, seed=4)
    ours_in = logits.clone().requires_grad_(True)
    theirs_in = logits.clone().requires_grad_(True)
    smoothed_cross_entropy(ours_in, targets, alpha).backward()
    F.cross_entropy(theirs_in, targets, label_smoothing=alpha).backward()
    # Gradients are (softmax - P') / B, entries ~1/B; atol covers entries that cancel to ~0.
    torch.testing.assert_close(ours_in.grad, theirs_in.grad, rtol=1e-6, atol=1e-8)


def test_gradient_closed_form() -> None:
    # d loss / d logits = (softmax(logits) - P') / B.
    logits, targets = make_batch(8, 5, seed=5)
    logits.requires_grad_(True)
    alpha = 0.1
    smoothed_cross_entropy(logits, targets, alpha).backward()
    p_smooth = F.one_hot(targets, 5).float() * (1 - alpha) + alpha / 5
    expected = (logits.detach().softmax(-1) - p_smooth) / 8
    torch.testing.assert_close(logits.grad, expected, rtol=1e-5, atol=1e-7)


def test_bfloat16_logits_are_computed_in_float32() -> None:
    logits, targets = make_batch(32, 10, seed=6)
    low = logits.bfloat16().requires_grad_(True)
    loss = smoothed_cross_entropy(low, targets, 0.1)
    assert loss.dtype == torch.float32
    expected = F.cross_entropy(low.detach().float(), targets, label_smoothing=0.1)
    torch.testing.assert_close(loss, expected, **TORCH_TOL)
    loss.backward()
    assert low.grad is not None and low.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5, float("nan"), float("inf"), True])
def test_bad_alpha_raises(alpha: float) -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected alpha with 0 <= alpha < 1, got"):
        smoothed_cross_entropy(logits, targets, alpha)


def test_numpy_float_alpha_accepted() -> None:
    logits, targets = make_batch(4, 3)
    a = smoothed_cross_entropy(logits, targets, np.float32(0.25))
    b = smoothed_cross_entropy(logits, targets, 0.25)
    torch.testing.assert_close(a, b)


def test_bad_shapes_raise() -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected logits of shape \(B, K\), got \(12,\)"):
        smoothed_cross_entropy(logits.flatten(), targets, 0.1)
    with pytest.raises(ValueError, match=r"expected targets of shape \(4,\)"):
        smoothed_cross_entropy(logits, targets[:3], 0.1)
