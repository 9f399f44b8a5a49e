"""The alternative losses of lsexp.training.objectives against float64 NumPy references
written from the papers' formulas, against torch where torch has the same loss, and (focal
losses) against a re-implementation of Mukhoti et al.'s published code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lsexp.training import objectives as obj
from lsexp.training.objectives import (
    OBJECTIVES,
    confidence_penalty_loss,
    distillation_loss,
    focal_adaptive_loss,
    focal_loss,
    mixed_cross_entropy,
)
from tests.test_objectives import make_batch

NUM_CLASSES = (2, 10, 100)
GAMMAS = (0.0, 0.5, 1.0, 2.0, 3.0, 10.0)
BETAS = (0.0, 0.1, 0.3, 1.0, 10.0)
LAMS = (0.0, 0.3, 0.5, 1.0)
TAUS = (0.5, 1.0, 2.0, 4.0, 10.0)
HARD_WEIGHTS = (0.0, 0.3, 1.0)

# The tolerances of tests/test_objectives.py, for the same reasons: float32 vs torch's own
# float32 implementation (only summation order differs), and float32 vs an exact float64
# computation from the same float32 logits (a few float32 ulps of log-probabilities that
# for 1e4-sized logits are ~1e4 in size).
TORCH_TOL = {"rtol": 1e-6, "atol": 1e-7}
REF_TOL = {"rtol": 2e-6, "atol": 1e-6}


# ---------------------------------------------------------------- float64 references


def ref_log_softmax(row: np.ndarray) -> np.ndarray:
    m = row.max()
    return row - m - math.log(np.exp(row - m).sum())


def ref_focal(logits: np.ndarray, targets: np.ndarray, gamma) -> float:
    """Lin et al. 2017 Eq. 4 (softmax form, no alpha): mean of -(1 - p_y)^gamma log p_y.

    `gamma` is a number or a function of p_y (FLSD-53)."""
    x = logits.astype(np.float64)
    total = 0.0
    for row, y in zip(x, targets, strict=True):
        log_py = ref_log_softmax(row)[y]
        p_y = math.exp(log_py)
        g = gamma(p_y) if callable(gamma) else gamma
        total += -((1.0 - p_y) ** g) * log_py
    return total / len(x)


def flsd53_gamma(p_y: float) -> float:
    """Mukhoti et al. 2020, Sec. 5: gamma = 5 for p_y in [0, 0.2), 3 for [0.2, 1]."""
    return 5.0 if p_y < 0.2 else 3.0


def ref_confidence_penalty(logits: np.ndarray, targets: np.ndarray, beta: float) -> float:
    """Pereyra et al. 2017 Eq. 2: mean of -log p_y - beta * H(p), H = -sum p log p."""
    x = logits.astype(np.float64)
    total = 0.0
    for row, y in zip(x, targets, strict=True):
        log_p = ref_log_softmax(row)
        entropy = 0.0
        for lp in log_p:
            p = math.exp(lp)
            if p > 0:  # lim p->0 of p log p = 0
                entropy -= p * lp
        total += -log_p[y] - beta * entropy
    return total / len(x)


def ref_mixed(logits: np.ndarray, a: np.ndarray, b: np.ndarray, lam) -> float:
    """Zhang et al. 2018: mean of lam * (-log p_a) + (1 - lam) * (-log p_b)."""
    x = logits.astype(np.float64)
    lams = np.broadcast_to(np.asarray(lam, dtype=np.float64), (len(x),))
    total = 0.0
    for row, ya, yb, w in zip(x, a, b, lams, strict=True):
        log_p = ref_log_softmax(row)
        total += -w * log_p[ya] - (1.0 - w) * log_p[yb]
    return total / len(x)


def ref_distill(s: np.ndarray, t: np.ndarray, y: np.ndarray, tau: float, w: float) -> float:
    """Hinton et al. 2015: mean of (1-w) tau^2 KL(softmax(t/tau) || softmax(s/tau)) + w CE."""
    s64, t64 = s.astype(np.float64), t.astype(np.float64)
    total = 0.0
    for srow, trow, yy in zip(s64, t64, y, strict=True):
        log_q = ref_log_softmax(trow / tau)
        log_p = ref_log_softmax(srow / tau)
        kl = 0.0
        for lq, lp in zip(log_q, log_p, strict=True):
            q = math.exp(lq)
            if q > 0:
                kl += q * (lq - lp)
        ce = -ref_log_softmax(srow)[yy]
        total += (1.0 - w) * tau**2 * kl + w * ce
    return total / len(s64)


def mukhoti_focal(logits: torch.Tensor, targets: torch.Tensor, gamma: float, adaptive: bool):
    """Re-implementation of torrvision/focal_calibration's Losses/focal_loss.py (FocalLoss)
    and Losses/focal_loss_adaptive_gamma.py (FocalLossAdaptive), forward pass only, as they
    are called by Losses/loss.py: log_softmax, gather the true class, pt = exp(logpt), per
    example gamma from pt.item() (adaptive: 5 below 0.2, 3 below 0.5, else the `gamma`
    argument, 3.0 for FLSD-53), loss = -(1 - pt)**gamma * logpt summed over the batch
    (size_average=False, their default)."""
    logpt = F.log_softmax(logits, dim=1).gather(1, targets.view(-1, 1)).view(-1)
    pt = logpt.exp()
    if adaptive:
        thresholds = {0.2: 5.0, 0.5: 3.0}
        gammas = []
        for value in pt.tolist():
            if value >= 0.5:
                gammas.append(gamma)
                continue
            for key in sorted(thresholds):
                if value < key:
                    gammas.append(thresholds[key])
                    break
        g = torch.tensor(gammas)
    else:
        g = gamma
    return (-1 * (1 - pt) ** g * logpt).sum()


# ---------------------------------------------------------------- batches


def extreme_batch(k: int, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ~1e4, plus a row whose true class wins by 1e4 (p_y = 1 in float32) and a
    row whose true class loses by 1e4 (p_y = 0 in float32, log p_y = -1e4)."""
    logits, targets = make_batch(32, k, scale=1e4, seed=seed)
    logits[0] = 0.0
    logits[0, targets[0]] = 1e4
    logits[1] = 0.0
    logits[1, targets[1]] = -1e4
    return logits, targets


def batches(k: int):
    """(name, logits, targets): ordinary logits, extreme logits, a batch of one."""
    yield ("ordinary", *make_batch(64, k, seed=1))
    yield ("extreme", *extreme_batch(k))
    yield ("one", *make_batch(1, k, seed=3))


def grad_of(loss_fn, logits: torch.Tensor, *args) -> tuple[torch.Tensor, torch.Tensor]:
    x = logits.clone().requires_grad_(True)
    loss = loss_fn(x, *args)
    loss.backward()
    return loss, x.grad


# ---------------------------------------------------------------- focal loss


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_focal_matches_float64_reference(gamma: float, k: int) -> None:
    for name, logits, targets in batches(k):
        loss, grad = grad_of(focal_loss, logits, targets, gamma)
        assert loss.shape == () and loss.dtype == torch.float32, name
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), name
        ref = ref_focal(logits.numpy(), targets.numpy(), gamma)
        np.testing.assert_allclose(loss.item(), ref, **REF_TOL, err_msg=name)


@pytest.mark.parametrize("k", NUM_CLASSES)
def test_focal_gamma_zero_is_cross_entropy(k: int) -> None:
    for name, logits, targets in batches(k):
        ours = focal_loss(logits, targets, 0.0)
        torch.testing.assert_close(ours, F.cross_entropy(logits, targets), **TORCH_TOL, msg=name)


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("gamma", (1.0, 2.0, 3.0))
def test_focal_matches_mukhoti_code(gamma: float, k: int) -> None:
    # Their loss is summed over the batch; ours is the mean. Same float32 log-softmax, so
    # only 1 - exp vs -expm1 and the order of the sum differ.
    for name, logits, targets in batches(k):
        ours = focal_loss(logits, targets, gamma) * len(logits)
        theirs = mukhoti_focal(logits, targets, gamma, adaptive=False)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5, msg=name)


def test_focal_well_classified_row_keeps_its_small_loss() -> None:
    # p_y = 1 - 4.54e-5, loss ~9.4e-14: not rounded to 0. The float32 log-softmax rounds
    # log p_y = -log(1 + e^-10) at float32 resolution near 1 (1.2e-7 of 4.54e-5, ~0.3%),
    # which bounds the relative accuracy whatever 1 - p_y is computed with.
    logits = torch.tensor([[10.0, 0.0]])
    targets = torch.tensor([0])
    ref = ref_focal(logits.numpy(), targets.numpy(), 2.0)
    ours = focal_loss(logits, targets, 2.0).item()
    assert ours > 0
    np.testing.assert_allclose(ours, ref, rtol=5e-3)


@pytest.mark.parametrize("gamma", (0.01, 0.5, 0.999))
def test_focal_gradient_is_finite_when_p_y_is_one(gamma: float) -> None:
    # d/du u^gamma is infinite at u = 1 - p_y = 0 for gamma < 1; the true gradient is 0.
    logits = torch.tensor([[1e4, 0.0, 0.0], [0.0, 50.0, 0.0]])
    targets = torch.tensor([0, 1])
    loss, grad = grad_of(focal_loss, logits, targets, gamma)
    assert loss.item() == 0.0
    # Row 0: p_y = 1 exactly, gradient exactly 0; row 1: log p_y rounds to 0 but the other
    # classes keep p ~ e^-50, and so a gradient of that order.
    assert torch.isfinite(grad).all() and (grad[0] == 0).all() and grad.abs().max() < 1e-20


@pytest.mark.parametrize("gamma", (0.5, 2.0))
def test_focal_gradcheck(gamma: float) -> None:
    logits, targets = make_batch(4, 5, seed=8)
    x = logits.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: focal_loss(z, targets, gamma), (x,))


# ---------------------------------------------------------------- FLSD-53


@pytest.mark.parametrize("k", NUM_CLASSES)
def test_focal_adaptive_matches_float64_reference(k: int) -> None:
    for name, logits, targets in batches(k):
        loss, grad = grad_of(focal_adaptive_loss, logits, targets, 53)
        assert loss.shape == () and loss.dtype == torch.float32, name
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), name
        ref = ref_focal(logits.numpy(), targets.numpy(), flsd53_gamma)
        np.testing.assert_allclose(loss.item(), ref, **REF_TOL, err_msg=name)


@pytest.mark.parametrize("k", NUM_CLASSES)
def test_focal_adaptive_matches_mukhoti_code(k: int) -> None:
    # A true-class boost from -3 to 10 puts p_y on both sides of 0.2 and of 0.5.
    logits, targets = make_batch(256, k, scale=1.5, seed=9)
    logits[torch.arange(256), targets] += torch.linspace(-3.0, 10.0, 256)
    p_y = logits.softmax(-1).gather(1, targets[:, None]).squeeze(1)
    assert (p_y < 0.2).any() and (p_y >= 0.5).any()
    ours = focal_adaptive_loss(logits, targets, 53) * len(logits)
    theirs = mukhoti_focal(logits, targets, 3.0, adaptive=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_focal_adaptive_uses_gamma_5_below_0_2_and_3_from_0_2() -> None:
    # p_y = 0.19 and 0.21 exactly in exact arithmetic (K = 2: p_y = sigmoid(margin)).
    margins = torch.tensor([math.log(0.19 / 0.81), math.log(0.21 / 0.79)])
    logits = torch.stack([margins, torch.zeros(2)], dim=1)
    targets = torch.tensor([0, 0])
    for i, gamma in ((0, 5.0), (1, 3.0)):
        ours = focal_adaptive_loss(logits[i : i + 1], targets[i : i + 1], 53)
        torch.testing.assert_close(ours, focal_loss(logits[i : i + 1], targets[i : i + 1], gamma))


def test_focal_adaptive_ignores_its_strength() -> None:
    logits, targets = make_batch(16, 10, seed=10)
    base = focal_adaptive_loss(logits, targets, 53)
    for strength in (0, 0.5, 3, 1e9):
        assert torch.equal(focal_adaptive_loss(logits, targets, strength), base)


def test_focal_adaptive_gradient_flows_through_the_modulating_factor() -> None:
    # gamma_i is picked without gradient, but (1 - p_y)^gamma_i keeps its gradient: the
    # gradient is that of focal_loss at the chosen gamma, not that of gamma * CE.
    logits, targets = make_batch(8, 5, seed=11)
    _, ours = grad_of(focal_adaptive_loss, logits, targets, 53)
    p_y = logits.softmax(-1).gather(1, targets[:, None]).squeeze(1)
    expected = torch.zeros_like(logits)
    for i in range(len(logits)):
        row = logits[i : i + 1].clone().requires_grad_(True)
        focal_loss(row, targets[i : i + 1], 5.0 if p_y[i] < 0.2 else 3.0).backward()
        expected[i] = row.grad[0] / len(logits)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- confidence penalty


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("beta", BETAS)
def test_confidence_penalty_matches_float64_reference(beta: float, k: int) -> None:
    for name, logits, targets in batches(k):
        loss, grad = grad_of(confidence_penalty_loss, logits, targets, beta)
        assert loss.shape == () and loss.dtype == torch.float32, name
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), name
        ref = ref_confidence_penalty(logits.numpy(), targets.numpy(), beta)
        np.testing.assert_allclose(loss.item(), ref, **REF_TOL, err_msg=name)


@pytest.mark.parametrize("k", NUM_CLASSES)
def test_confidence_penalty_beta_zero_is_cross_entropy(k: int) -> None:
    for name, logits, targets in batches(k):
        ours = confidence_penalty_loss(logits, targets, 0.0)
        torch.testing.assert_close(ours, F.cross_entropy(logits, targets), **TORCH_TOL, msg=name)


def test_confidence_penalty_uniform_logits_closed_form() -> None:
    # Uniform p: CE = H = log K, so the loss is (1 - beta) log K.
    logits, targets = torch.zeros(3, 7), torch.tensor([0, 3, 6])
    for beta in BETAS:
        loss = confidence_penalty_loss(logits, targets, beta)
        assert loss.item() == pytest.approx((1 - beta) * math.log(7), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("beta", (0.3, 1.0, 5.0))
def test_confidence_penalty_gradcheck(beta: float) -> None:
    logits, targets = make_batch(4, 5, seed=12)
    x = logits.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: confidence_penalty_loss(z, targets, beta), (x,))
    assert torch.autograd.gradgradcheck(lambda z: confidence_penalty_loss(z, targets, beta), (x,))


def test_confidence_penalty_minus_inf_logit_gives_no_nan() -> None:
    # A masked class (logit -inf): p = 0 there and p log p must count as 0, in the value
    # and in the gradient (0 * -inf would be NaN).
    logits = torch.tensor([[0.0, -math.inf, 1.0]])
    targets = torch.tensor([2])
    loss, grad = grad_of(confidence_penalty_loss, logits, targets, 1.0)
    ref = ref_confidence_penalty(np.array([[0.0, 1.0]]), np.array([1]), 1.0)
    assert loss.item() == pytest.approx(ref, rel=1e-6)
    assert torch.isfinite(grad).all() and grad[0, 1] == 0


# ---------------------------------------------------------------- mixed cross-entropy


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("lam", LAMS)
def test_mixed_matches_float64_reference_and_soft_target_ce(lam: float, k: int) -> None:
    for name, logits, targets in batches(k):
        targets_b = targets.roll(1)
        loss, grad = grad_of(mixed_cross_entropy, logits, targets, targets_b, lam)
        assert loss.shape == () and loss.dtype == torch.float32, name
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), name
        ref = ref_mixed(logits.numpy(), targets.numpy(), targets_b.numpy(), lam)
        np.testing.assert_allclose(loss.item(), ref, **REF_TOL, err_msg=name)
        soft = lam * F.one_hot(targets, k).float() + (1 - lam) * F.one_hot(targets_b, k).float()
        torch.testing.assert_close(loss, F.cross_entropy(logits, soft), **TORCH_TOL, msg=name)


@pytest.mark.parametrize("k", NUM_CLASSES)
def test_mixed_lam_one_and_zero_are_cross_entropy(k: int) -> None:
    for name, logits, targets in batches(k):
        targets_b = targets.roll(1)
        one = mixed_cross_entropy(logits, targets, targets_b, 1.0)
        zero = mixed_cross_entropy(logits, targets, targets_b, 0.0)
        torch.testing.assert_close(one, F.cross_entropy(logits, targets), **TORCH_TOL, msg=name)
        torch.testing.assert_close(zero, F.cross_entropy(logits, targets_b), **TORCH_TOL, msg=name)


@pytest.mark.parametrize("k", NUM_CLASSES)
def test_mixed_per_example_lam(k: int) -> None:
    logits, targets = make_batch(64, k, seed=13)
    targets_b = targets.roll(1)
    lam = torch.rand(64, generator=torch.Generator().manual_seed(14))
    lam[:3] = torch.tensor([0.0, 1.0, 0.5])
    ours = mixed_cross_entropy(logits, targets, targets_b, lam)
    ref = ref_mixed(logits.numpy(), targets.numpy(), targets_b.numpy(), lam.numpy())
    np.testing.assert_allclose(ours.item(), ref, **REF_TOL)
    soft = lam[:, None] * F.one_hot(targets, k) + (1 - lam[:, None]) * F.one_hot(targets_b, k)
    torch.testing.assert_close(ours, F.cross_entropy(logits, soft), **TORCH_TOL)


def test_mixed_zero_weight_term_ignores_a_minus_inf_logit() -> None:
    logits = torch.tensor([[0.0, -math.inf, 1.0]])
    a, b = torch.tensor([0]), torch.tensor([1])
    loss, grad = grad_of(mixed_cross_entropy, logits, a, b, 1.0)
    torch.testing.assert_close(loss, F.cross_entropy(logits, a))
    assert torch.isfinite(grad).all()
    loss_t = mixed_cross_entropy(logits, a, b, torch.tensor([1.0]))
    torch.testing.assert_close(loss_t, loss)


def test_mixed_gradcheck() -> None:
    logits, targets = make_batch(4, 5, seed=15)
    x = logits.double().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda z: mixed_cross_entropy(z, targets, targets.roll(1), 0.3), (x,)
    )


# ---------------------------------------------------------------- distillation


def teacher_for(logits: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scale = logits.abs().max().clamp_min(1.0)
    return logits * 0.5 + torch.randn(logits.shape, generator=gen) * scale


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("hard_weight", HARD_WEIGHTS)
def test_distillation_matches_float64_reference(hard_weight: float, tau: float, k: int) -> None:
    for name, logits, targets in batches(k):
        teacher = teacher_for(logits, seed=16)
        loss, grad = grad_of(distillation_loss, logits, teacher, targets, tau, hard_weight)
        assert loss.shape == () and loss.dtype == torch.float32, name
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), name
        ref = ref_distill(logits.numpy(), teacher.numpy(), targets.numpy(), tau, hard_weight)
        np.testing.assert_allclose(loss.item(), ref, **REF_TOL, err_msg=name)


@pytest.mark.parametrize("k", NUM_CLASSES)
@pytest.mark.parametrize("tau", TAUS)
def test_distillation_soft_term_is_tau_squared_kl(tau: float, k: int) -> None:
    logits, targets = make_batch(64, k, seed=17)
    teacher = teacher_for(logits, seed=18)
    ours = distillation_loss(logits, teacher, targets, tau, 0.0)
    kl = F.kl_div(
        F.log_softmax(logits / tau, -1),
        F.log_softmax(teacher / tau, -1),
        reduction="batchmean",
        log_target=True,
    )
    torch.testing.assert_close(ours, tau**2 * kl, rtol=1e-5, atol=1e-6)
    # The same KL without tau^2, from the float64 reference: the factor is exactly tau^2.
    kl_ref = ref_distill(logits.numpy(), teacher.numpy(), targets.numpy(), tau, 0.0) / tau**2
    np.testing.assert_allclose(ours.item() / tau**2, kl_ref, **REF_TOL)


@pytest.mark.parametrize("k", NUM_CLASSES)
def test_distillation_hard_weight_one_is_cross_entropy(k: int) -> None:
    for name, logits, targets in batches(k):
        teacher = teacher_for(logits, seed=19)
        ours = distillation_loss(logits, teacher, targets, 4.0, 1.0)
        torch.testing.assert_close(ours, F.cross_entropy(logits, targets), **TORCH_TOL, msg=name)


def test_distillation_student_equal_to_teacher_has_zero_soft_loss() -> None:
    logits, targets = make_batch(16, 10, seed=20)
    loss = distillation_loss(logits, logits.clone(), targets, 3.0, 0.0)
    assert abs(loss.item()) < 1e-5


def test_distillation_gives_no_gradient_to_the_teacher() -> None:
    logits, targets = make_batch(8, 10, seed=21)
    student = logits.clone().requires_grad_(True)
    teacher = teacher_for(logits, seed=22).requires_grad_(True)
    loss = distillation_loss(student, teacher, targets, 2.0, 0.3)
    grad_teacher, grad_student = torch.autograd.grad(loss, (teacher, student), allow_unused=True)
    assert grad_teacher is None  # detached: not even a zero tensor is computed
    assert grad_student is not None and grad_student.abs().sum() > 0
    loss = distillation_loss(student, teacher, targets, 2.0, 0.3)
    loss.backward()
    assert teacher.grad is None


def test_distillation_gradcheck() -> None:
    logits, targets = make_batch(4, 5, seed=23)
    teacher = teacher_for(logits, seed=24).double()
    x = logits.double().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda z: distillation_loss(z, teacher, targets, 2.0, 0.3), (x,)
    )


# ---------------------------------------------------------------- dtypes, shapes, strengths

ALL_LOSSES = {
    "focal": lambda x, y: focal_loss(x, y, 2.0),
    "focal_adaptive": lambda x, y: focal_adaptive_loss(x, y, 53),
    "confidence_penalty": lambda x, y: confidence_penalty_loss(x, y, 0.3),
    "mixed": lambda x, y: mixed_cross_entropy(x, y, y.roll(1), 0.3),
    "distillation": lambda x, y: distillation_loss(x, x.detach().flip(0), y, 2.0, 0.3),
}


@pytest.mark.parametrize("name", ALL_LOSSES)
@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float16))
def test_half_precision_logits_are_computed_in_float32(name: str, dtype: torch.dtype) -> None:
    loss_fn = ALL_LOSSES[name]
    logits, targets = make_batch(32, 10, seed=25)
    low = logits.to(dtype).requires_grad_(True)
    loss = loss_fn(low, targets)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, loss_fn(low.detach().float(), targets), **TORCH_TOL)
    loss.backward()
    assert low.grad is not None and low.grad.dtype == dtype and torch.isfinite(low.grad).all()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_bad_shapes_raise(name: str) -> None:
    loss_fn = ALL_LOSSES[name]
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected logits of shape \(B, K\), got \(12,\)"):
        loss_fn(logits.flatten(), targets.repeat(3))
    with pytest.raises(ValueError, match=r"of shape \(4,\) to match logits \(4, 3\), got \(3,\)"):
        loss_fn(logits, targets[:3])


BAD_NONNEGATIVE = (-0.1, -1, math.nan, math.inf, True, False, None, "2")


@pytest.mark.parametrize("gamma", BAD_NONNEGATIVE)
def test_focal_bad_gamma_raises(gamma) -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected gamma with 0 <= gamma < inf, got"):
        focal_loss(logits, targets, gamma)


@pytest.mark.parametrize("strength", BAD_NONNEGATIVE)
def test_focal_adaptive_bad_strength_raises(strength) -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected strength with 0 <= strength < inf, got"):
        focal_adaptive_loss(logits, targets, strength)


@pytest.mark.parametrize("beta", BAD_NONNEGATIVE)
def test_confidence_penalty_bad_beta_raises(beta) -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected beta with 0 <= beta < inf, got"):
        confidence_penalty_loss(logits, targets, beta)


@pytest.mark.parametrize("lam", (-0.1, 1.1, math.nan, math.inf, True, None))
def test_mixed_bad_lam_raises(lam) -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected lam with 0 <= lam <= 1, got"):
        mixed_cross_entropy(logits, targets, targets, lam)


@pytest.mark.parametrize(
    ("lam", "message"),
    [
        (torch.tensor([0.5, 0.5, 1.5, 0.0]), r"expected every lam in \[0, 1\]"),
        (torch.tensor([0.5, math.nan, 0.5, 0.5]), r"expected every lam in \[0, 1\]"),
        (torch.tensor([0.5, 0.5, 0.5]), r"floating tensor of shape \(4,\)"),
        (torch.tensor(0.5), r"floating tensor of shape \(4,\)"),
        (torch.tensor([1, 0, 1, 0]), r"floating tensor of shape \(4,\), got a torch.int64"),
    ],
)
def test_mixed_bad_lam_tensor_raises(lam: torch.Tensor, message: str) -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=message):
        mixed_cross_entropy(logits, targets, targets, lam)


def test_mixed_bad_targets_b_shape_raises() -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected targets_b of shape \(4,\)"):
        mixed_cross_entropy(logits, targets, targets[:2], 0.5)


@pytest.mark.parametrize("tau", (0, 0.0, -1.0, math.nan, math.inf, True, None))
def test_distillation_bad_tau_raises(tau) -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected tau with 0 < tau < inf, got"):
        distillation_loss(logits, logits, targets, tau, 0.5)


@pytest.mark.parametrize("hard_weight", (-0.1, 1.1, math.nan, True, None))
def test_distillation_bad_hard_weight_raises(hard_weight) -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected hard_weight with 0 <= hard_weight <= 1"):
        distillation_loss(logits, logits, targets, 2.0, hard_weight)


def test_distillation_teacher_shape_must_match() -> None:
    logits, targets = make_batch(4, 3)
    with pytest.raises(ValueError, match=r"expected teacher_logits of the student's shape"):
        distillation_loss(logits, logits[:, :2], targets, 2.0, 0.5)


def test_numpy_float_strengths_accepted() -> None:
    logits, targets = make_batch(4, 3)
    for fn in (focal_loss, confidence_penalty_loss):
        torch.testing.assert_close(fn(logits, targets, np.float32(0.5)), fn(logits, targets, 0.5))


# ---------------------------------------------------------------- the registry


def test_registry_order_and_entries() -> None:
    assert list(OBJECTIVES) == ["label_smoothing", "focal", "focal_adaptive", "confidence_penalty",
                                "mixup", "cutmix", "distillation"]  # fmt: skip
    assert OBJECTIVES["mixup"].kind == "mixup" and OBJECTIVES["cutmix"].kind == "cutmix"
    assert OBJECTIVES["distillation"].loss is distillation_loss
    assert OBJECTIVES["mixup"].loss is mixed_cross_entropy
    assert OBJECTIVES["focal"].loss is focal_loss
    assert OBJECTIVES["focal_adaptive"].loss is focal_adaptive_loss
    assert OBJECTIVES["confidence_penalty"].loss is confidence_penalty_loss
    assert (OBJECTIVES["focal"].strength, OBJECTIVES["focal"].symbol) == ("gamma", "γ")
    assert (OBJECTIVES["confidence_penalty"].strength, OBJECTIVES["confidence_penalty"].symbol) == (
        "beta",
        "β",
    )
    assert obj.DEFAULT_OBJECTIVE == "label_smoothing"
    assert "mixed_cross_entropy" not in OBJECTIVES


@pytest.mark.parametrize("name", ["focal", "focal_adaptive", "confidence_penalty"])
def test_registered_losses_train_at_their_default_grid(name: str) -> None:
    entry = OBJECTIVES[name]
    logits, targets = make_batch(8, 10, seed=26)
    for strength in entry.default_grid:
        assert entry.check_strength(strength) is None
        loss, grad = grad_of(entry.loss, logits, targets, strength)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("focal", (0.0, 1.0, 10.0), (-0.1, 10.5)),
        ("confidence_penalty", (0.0, 0.3, 10.0), (-0.1, 10.01)),
        ("focal_adaptive", (53.0,), (0.0, 3.0, 52.0, 54.0)),
    ],
)
def test_registry_strength_ranges(name: str, good, bad) -> None:
    entry = OBJECTIVES[name]
    assert entry.high_inclusive
    for value in good:
        assert entry.check_strength(value) is None, value
    for value in bad:
        assert entry.check_strength(value) is not None, value
