"""lsexp.training.mixing against float64 NumPy references: mixup as Zhang et al.'s Eq. 1,
CutMix as an independent re-implementation of clovaai/CutMix-PyTorch's rand_bbox and paste,
and the common random numbers that pair runs across strengths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lsexp.training import mixing
from lsexp.training.mixing import (
    MixDraw,
    beta_quantile,
    cutmix,
    draw_mix,
    mixed_correct,
    mixup,
)

STRENGTHS = (0.05, 0.2, 1.0, 2.0, 10.0)


def gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def batch(b=6, c=3, h=7, w=10, seed=0, dtype=torch.float32) -> torch.Tensor:
    """Distinct random values everywhere, so a pasted pixel never equals the one it replaced."""
    return torch.randn(b, c, h, w, generator=gen(1000 + seed), dtype=dtype)


def fields(d: MixDraw):
    return d.perm.tolist(), d.u, d.center


# ---------------------------------------------------------------- float64 references


def ref_rand_bbox(size, lam, cx, cy):
    """clovaai/CutMix-PyTorch train.py rand_bbox, its names kept (its "W" is size[2], the
    rows), with the random centre (np.random.randint(W), np.random.randint(H)) given."""
    W = size[2]
    H = size[3]
    cut_rat = np.sqrt(1.0 - lam)
    cut_w = int(W * cut_rat)
    cut_h = int(H * cut_rat)
    bbx1 = np.clip(cx - cut_w // 2, 0, W)
    bby1 = np.clip(cy - cut_h // 2, 0, H)
    bbx2 = np.clip(cx + cut_w // 2, 0, W)
    bby2 = np.clip(cy + cut_h // 2, 0, H)
    return bbx1, bby1, bbx2, bby2


def ref_cutmix(x: np.ndarray, perm, u, center, a):
    """The authors' paste and lam adjustment on a float64 copy, lam0 = Beta(a, a).ppf(u)."""
    x = x.astype(np.float64)
    size = x.shape
    lam0 = stats.beta.ppf(u, a, a)
    cx, cy = int(center[0] * size[2]), int(center[1] * size[3])
    bbx1, bby1, bbx2, bby2 = ref_rand_bbox(size, lam0, cx, cy)
    out = x.copy()
    out[:, :, bbx1:bbx2, bby1:bby2] = x[perm, :, bbx1:bbx2, bby1:bby2]
    lam = 1 - ((bbx2 - bbx1) * (bby2 - bby1) / (size[-1] * size[-2]))
    return out, lam, (bbx1, bby1, bbx2, bby2)


def ref_mixup(x: np.ndarray, perm, u, a):
    lam = stats.beta.ppf(u, a, a)
    x = x.astype(np.float64)
    return lam * x + (1 - lam) * x[perm], lam


# ---------------------------------------------------------------- draws


def test_same_seed_same_outputs():
    x = batch()
    outs = []
    for _ in range(2):
        torch.rand(7)  # the global generator moves between the calls: it must not matter
        g = gen(42)
        d1, d2 = draw_mix(g, 6, "cpu"), draw_mix(g, 6, "cpu")
        outs.append((d1, d2, mixup(x, d1, 0.4), cutmix(x, d2, 0.4)))
    (a1, a2, am, ac), (b1, b2, bm, bc) = outs
    assert fields(a1) == fields(b1) and fields(a2) == fields(b2)
    assert fields(a1) != fields(a2)  # the generator moved on
    assert torch.equal(am[0], bm[0]) and am[1] == bm[1]
    assert torch.equal(ac[0], bc[0]) and ac[1] == bc[1]
    assert fields(draw_mix(gen(43), 6, "cpu")) != fields(a1)


def test_draw_does_not_depend_on_kind_or_strength():
    """The same seed gives the same perm, u and centre, and leaves the generator in the
    same state, at every strength and for both kinds; lam is the quantile of that u."""
    x = batch()
    ref = None
    for kind in (mixup, cutmix):
        for a in STRENGTHS:
            g = gen(7)
            d = draw_mix(g, 6, "cpu")
            _, lam = kind(x, d, a)
            state = g.get_state()
            if ref is None:
                ref = fields(d), state
            assert fields(d) == ref[0]
            assert torch.equal(state, ref[1])
            if kind is mixup:
                assert lam == pytest.approx(stats.beta.ppf(d.u, a, a), rel=1e-12, abs=1e-300)


def test_draw_fields():
    for seed in range(20):
        d = draw_mix(gen(seed), 9, "cpu")
        assert d.perm.dtype == torch.int64 and d.perm.device.type == "cpu"
        assert sorted(d.perm.tolist()) == list(range(9))
        assert 0.0 < d.u < 1.0 and isinstance(d.u, float)
        # (k + 1/2) / 2**52, exact in float64: never 0 or 1, and 1 - u is exact too.
        assert d.u * 2**52 % 1 == 0.5 and (1 - d.u) * 2**52 % 1 == 0.5
        assert all(0.0 <= c < 1.0 and isinstance(c, float) for c in d.center)
        assert len(d.center) == 2


def test_u_extremes():
    """The smallest and largest u are inside (0, 1), with exact complements."""
    lo, hi = mixing._open_uniform(0), mixing._open_uniform(2**52 - 1)
    assert lo == 2.0**-53 and hi == 1 - 2.0**-53
    assert 1 - hi == lo and beta_quantile(lo, 0.7) > 0.0


def test_draw_order():
    """The documented draws, in the documented order: randperm(B), one uniform, two."""
    g = gen(11)
    perm = torch.randperm(5, generator=g)
    k = torch.randint(0, 2**52, (1,), generator=g)
    centre = torch.rand(2, generator=g, dtype=torch.float64)
    d = draw_mix(gen(11), 5, "cpu")
    assert fields(d) == (perm.tolist(), (k.item() + 0.5) / 2**52, tuple(centre.tolist()))


def test_lam_is_beta_distributed():
    g = gen(0)
    for a in (0.3, 2.0):
        lams = [mixup(torch.zeros(2, 1), draw_mix(g, 2, "cpu"), a)[1] for _ in range(2000)]
        assert stats.kstest(lams, stats.beta(a, a).cdf).pvalue > 1e-3


def test_batch_of_one():
    d = draw_mix(gen(0), 1, "cpu")
    assert d.perm.tolist() == [0]
    x = batch(b=1)
    mixed, _ = mixup(x, d, 1.0)
    torch.testing.assert_close(mixed, x, rtol=1e-6, atol=1e-6)
    pasted, _ = cutmix(x, d, 1.0)
    assert torch.equal(pasted, x)  # the box is replaced by itself


def test_cpu_generator_cpu_batch():
    g = gen(3)
    d = draw_mix(g, 4, torch.device("cpu"))
    assert d.perm.device == torch.device("cpu")
    x = batch(b=4)
    assert mixup(x, d, 1.0)[0].device == x.device
    assert cutmix(x, d, 1.0)[0].device == x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_generator_cuda_batch():
    x = batch(b=5).cuda()
    d = draw_mix(gen(3), 5, x.device)
    assert d.perm.device == x.device
    assert fields(d) == fields(draw_mix(gen(3), 5, "cpu"))
    out, lam = cutmix(x, d, 1.0)
    want, want_lam = cutmix(x.cpu(), draw_mix(gen(3), 5, "cpu"), 1.0)
    assert torch.equal(out.cpu(), want) and lam == want_lam


# ---------------------------------------------------------------- beta quantile


@pytest.mark.parametrize("a", [0.01, 0.2, 0.5, 1.0, 2.0, 37.0])
def test_beta_quantile(a):
    # Dyadic u, so that 1 - u is exact: in the tails a rounded 1 - u moves the quantile
    # by more than the tolerance (at a = 37, 1 - 1e-9 rounded moves it by 2e-10).
    for u in (2.0**-30, 3 / 1024, 0.25, 0.5, 0.625, 1 - 2.0**-10):
        q = beta_quantile(u, a)
        assert isinstance(q, float)
        assert q == pytest.approx(stats.beta.ppf(u, a, a), rel=1e-12, abs=1e-300)
        assert q + beta_quantile(1.0 - u, a) == pytest.approx(1.0, abs=1e-12)  # symmetry
        if 1e-6 < q < 1 - 1e-6:  # where the CDF can be inverted back to good accuracy
            assert stats.beta.cdf(q, a, a) == pytest.approx(u, rel=1e-9)


def test_beta_quantile_closed_forms():
    for u in np.linspace(0.001, 0.999, 37):
        assert beta_quantile(float(u), 1.0) == pytest.approx(u, rel=1e-14)  # uniform
        # Beta(1/2, 1/2) is the arcsine law: CDF (2/pi) asin(sqrt(x)), quantile sin^2(pi u/2).
        assert beta_quantile(float(u), 0.5) == pytest.approx(math.sin(math.pi * u / 2) ** 2)
    assert beta_quantile(0.5, 0.3) == pytest.approx(0.5)
    assert beta_quantile(0.0, 2.0) == 0.0 and beta_quantile(1.0, 2.0) == 1.0


# ---------------------------------------------------------------- mixup


@pytest.mark.parametrize("a", STRENGTHS)
def test_mixup_matches_reference(a):
    x = batch(b=8, seed=1)
    for seed in range(5):
        d = draw_mix(gen(seed), 8, "cpu")
        got, lam = mixup(x, d, a)
        want, want_lam = ref_mixup(x.numpy(), d.perm.numpy(), d.u, a)
        assert lam == pytest.approx(want_lam, rel=1e-12, abs=1e-300)
        assert got.dtype == torch.float32 and got.shape == x.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)


def test_mixup_any_shape_and_dtype():
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        x = torch.randn(5, 4, generator=gen(0)).to(dtype)
        d = draw_mix(gen(1), 5, "cpu")
        got, lam = mixup(x, d, 1.0)
        assert got.dtype == dtype
        want, _ = ref_mixup(x.double().numpy(), d.perm.numpy(), d.u, 1.0)
        tol = 1e-12 if dtype == torch.float64 else 2e-2
        np.testing.assert_allclose(got.double().numpy(), want, rtol=tol, atol=tol)


# ---------------------------------------------------------------- CutMix


def check_cutmix(x, d, a):
    got, lam = cutmix(x, d, a)
    want, want_lam, box = ref_cutmix(x.numpy(), d.perm.numpy(), d.u, d.center, a)
    assert got.dtype == x.dtype and got.shape == x.shape
    np.testing.assert_array_equal(got.double().numpy(), want)  # a paste: bit for bit
    assert lam == pytest.approx(want_lam, rel=1e-15)
    # lam is the exact share of each image's own pixels (x has no repeated values and the
    # perm has no fixed point in these tests).
    own = (got == x).all(dim=1).double().mean(dim=(1, 2))
    if bool((d.perm != torch.arange(len(d.perm))).all()):
        assert own.tolist() == pytest.approx([lam] * x.shape[0], rel=1e-15)
    return lam, box


@pytest.mark.parametrize("a", STRENGTHS)
def test_cutmix_matches_reference_random_draws(a):
    x = batch(b=6, h=7, w=10, seed=2)  # H != W: a swapped axis shows
    for seed in range(10):
        check_cutmix(x, draw_mix(gen(seed), 6, "cpu"), a)


def shift(b):
    return torch.roll(torch.arange(b), 1)  # a derangement


@pytest.mark.parametrize(
    ("u", "center", "box"),
    [
        # lam0 = u at a = 1: r = sqrt(0.36) = 0.6, cut 4 rows (int(7 * 0.6)) and 6 columns.
        (0.64, (0.5, 0.5), (1, 2, 5, 8)),  # cy = 3, cx = 5: inside
        (0.64, (0.0, 0.0), (0, 0, 2, 3)),  # top-left corner: clipped to 2 x 3
        (0.64, (0.99, 0.95), (4, 6, 7, 10)),  # bottom-right: rows 4..9 -> 4..7, cols 6..12 -> 6..10
        (0.01, (0.5, 0.0), (0, 0, 6, 4)),  # r ~ 0.995: cut 6 x 9, rows 0..6, cols -4..4 -> 0..4
        (0.999, (0.5, 0.5), (3, 5, 3, 5)),  # r ~ 0.03: empty box, lam = 1
    ],
)
def test_cutmix_boxes(u, center, box):
    x = batch(b=4, h=7, w=10, seed=3)
    d = MixDraw(perm=shift(4), u=u, center=center)
    lam, ref_box = check_cutmix(x, d, 1.0)
    assert tuple(int(v) for v in ref_box) == box
    r0, c0, r1, c1 = box
    assert lam == 1 - (r1 - r0) * (c1 - c0) / 70


def test_cutmix_does_not_modify_input():
    x = batch(seed=4)
    before = x.clone()
    out, _ = cutmix(x, MixDraw(perm=shift(6), u=0.3, center=(0.4, 0.6)), 1.0)
    assert torch.equal(x, before)
    assert not torch.equal(out, x)
    assert out.data_ptr() != x.data_ptr()


def test_cutmix_dtypes():
    for dtype in (torch.float64, torch.float16, torch.bfloat16, torch.uint8):
        x = (batch(seed=5) * 50).to(dtype)
        got, _ = cutmix(x, MixDraw(perm=shift(6), u=0.5, center=(0.3, 0.7)), 1.0)
        assert got.dtype == dtype
        want, _, _ = ref_cutmix(x.double().numpy(), shift(6).numpy(), 0.5, (0.3, 0.7), 1.0)
        np.testing.assert_array_equal(got.double().numpy(), want)


# ---------------------------------------------------------------- extreme strengths


def test_tiny_a_gives_lam_near_zero_or_one():
    """Beta(a, a) -> Bernoulli(1/2) on {0, 1} as a -> 0: u < 1/2 mixes in almost only the
    partner, u > 1/2 almost only the example itself."""
    x = batch(seed=6)
    perm = shift(6)
    low, high = MixDraw(perm, 0.3, (0.5, 0.5)), MixDraw(perm, 0.7, (0.5, 0.5))
    a = 1e-3
    out, lam = mixup(x, low, a)
    assert lam < 1e-100
    torch.testing.assert_close(out, x[perm], rtol=0, atol=0)
    out, lam = mixup(x, high, a)
    assert lam == 1.0 or lam > 1 - 1e-15
    torch.testing.assert_close(out, x, rtol=0, atol=0)
    # CutMix: lam0 ~ 1e-222 gives r = sqrt(1 - lam0) = 1.0 in float64, a cut of 7 x 10,
    # and about the centre (3, 5) rows 3 - 3 .. 3 + 3 (the // 2 loses a row of an odd H)
    # and columns 0 .. 10: 60 of 70 pixels. lam0 ~ 1 cuts nothing.
    lam, box = check_cutmix(x, low, a)
    assert tuple(int(v) for v in box) == (0, 0, 6, 10)
    assert lam == 1 - 60 / 70
    out, lam = cutmix(x, high, a)
    assert lam == 1.0 and torch.equal(out, x)


def test_large_a_gives_half():
    d = MixDraw(shift(6), 0.9, (0.5, 0.5))
    _, lam = mixup(batch(), d, 1e6)
    assert lam == pytest.approx(0.5, abs=2e-3)


# ---------------------------------------------------------------- memory format


@pytest.mark.parametrize("kind", [mixup, cutmix])
def test_channels_last_kept(kind):
    x = batch(b=5, c=3, h=6, w=8, seed=7).contiguous(memory_format=torch.channels_last)
    assert not x.is_contiguous()
    d = draw_mix(gen(0), 5, "cpu")
    out, _ = kind(x, d, 1.0)
    assert out.is_contiguous(memory_format=torch.channels_last)
    want, _ = kind(x.contiguous(), d, 1.0)
    assert torch.equal(out, want)
    out, _ = kind(x.contiguous(), d, 1.0)
    assert out.is_contiguous()


# ---------------------------------------------------------------- training accuracy


def test_mixed_correct_hand_count():
    predicted = torch.tensor([0, 1, 2, 3, 1, 4])
    y_a = torch.tensor([0, 1, 0, 0, 1, 4])  # 4 hits
    y_b = torch.tensor([2, 2, 2, 3, 0, 4])  # 3 hits
    got = mixed_correct(predicted, y_a, y_b, 0.3)
    assert got.dtype == torch.float32 and got.ndim == 0
    assert got.item() == pytest.approx(0.3 * 4 + 0.7 * 3)
    assert mixed_correct(predicted, y_a, y_b, 1.0).item() == 4.0
    assert mixed_correct(predicted, y_a, y_b, 0.0).item() == 3.0
    assert mixed_correct(predicted, y_a, y_a, 0.42).item() == pytest.approx(4.0)


@pytest.mark.parametrize("lam", [-0.1, 1.1, math.nan, True])
def test_mixed_correct_bad_lam(lam):
    t = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="lam"):
        mixed_correct(t, t, t, lam)


def test_mixed_correct_bad_shapes():
    t = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="shape"):
        mixed_correct(t, t[:2], t, 0.5)
    with pytest.raises(ValueError, match="shape"):
        mixed_correct(t[None], t[None], t[None], 0.5)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("a", [0, 0.0, -1.0, math.nan, math.inf, -math.inf, True, "1", None])
def test_bad_a_raises(a):
    x = batch()
    d = draw_mix(gen(0), 6, "cpu")
    for call in (lambda: mixup(x, d, a), lambda: cutmix(x, d, a), lambda: beta_quantile(0.5, a)):
        with pytest.raises(ValueError, match="a > 0") as info:
            call()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("u", [-0.1, 1.5, math.nan])
def test_bad_u_raises(u):
    with pytest.raises(ValueError, match="u in"):
        beta_quantile(u, 1.0)


def test_bad_batch():
    d = draw_mix(gen(0), 6, "cpu")
    with pytest.raises(ValueError, match="batch of 5"):
        mixup(batch(b=5), d, 1.0)
    with pytest.raises(ValueError, match="batch of 5"):
        cutmix(batch(b=5), d, 1.0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        cutmix(torch.zeros(6, 4), d, 1.0)
    for b in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size"):
            draw_mix(gen(0), b, "cpu")
