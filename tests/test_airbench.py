"""The airbench94 recipe (lsexp/training/airbench.py): each piece against the paper's definition.

The reference computations here are written independently of the implementation: the
paper's optimizer in its own units (loss summed over the batch), its triangle schedule,
and the views of its test-time augmentation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lsexp.config import (
    config_data,
    config_to_yaml,
    load_config,
    stable_hash,
    validate,
)
from lsexp.errors import ConfigError
from lsexp.training import airbench, engine
from lsexp.training.data import DATASETS, Splits
from lsexp.training.models import build_model, count_parameters
from tests.conftest import REPO, tiny_config_dict

CPU = torch.device("cpu")


def _net(width: int = 8, channels: int = 3, classes: int = 10, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(
            "airbench", in_channels=channels, image_size=32, num_classes=classes, width=width
        )


# ---------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------


def test_default_network_has_the_papers_shape_and_size():
    net = _net(width=64)
    assert net.whiten.out_channels == 24 and net.whiten.kernel_size == (2, 2)
    widths = [g.conv2.out_channels for g in net.body if hasattr(g, "conv2")]  # the 3 groups
    assert widths == [64, 256, 256]
    # Counted by hand: whitening 24*3*2*2 + 24; groups (24*64 + 64*64)*9 + (64*256 +
    # 256*256)*9 + 2*256*256*9; BN scale + shift 2*(2*64 + 4*256); classifier 256*10.
    expected = (288 + 24) + (24 * 64 + 64 * 64) * 9 + (64 * 256 + 256 * 256) * 9
    expected += 2 * 256 * 256 * 9 + 2 * (2 * 64 + 4 * 256) + 2560
    assert count_parameters(net) == expected
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_frozen_parts_and_batchnorm_settings():
    net = _net()
    assert not net.whiten.weight.requires_grad and net.whiten.bias.requires_grad
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 6
    for bn in bns:
        assert not bn.weight.requires_grad and bn.bias.requires_grad
        assert bn.eps == 1e-12 and bn.momentum == pytest.approx(0.4)
    assert net.classifier.bias is None


def test_convs_start_with_a_dirac_identity():
    net = _net()
    conv = net.body[1].conv1  # 24 -> 8 at width 8: the first 8 filters pass a channel on
    x = torch.randn(1, conv.in_channels, 6, 6)
    with torch.no_grad():
        out = conv(x)
    n = min(conv.in_channels, conv.out_channels)
    torch.testing.assert_close(out[:, :n], x[:, :n])


def test_output_scale_is_folded_into_features():
    net = _net().eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        pooled = net.body(net.whiten(x))
        torch.testing.assert_close(net.features(x), pooled / 9)
        torch.testing.assert_close(net(x), net.classifier(pooled) / 9)


def test_whitening_decorrelates_patches():
    gen = torch.Generator().manual_seed(0)
    # Strongly correlated images: smooth noise plus a shared colour cast.
    base = F.avg_pool2d(torch.randn(400, 3, 35, 35, generator=gen), 4, stride=1)
    images = base + 0.5 * base.mean(1, keepdim=True)
    net = _net()
    net.init_whitening(images)
    with torch.no_grad():
        out = F.conv2d(images, net.whiten.weight)  # without the bias
    half = out[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    cov = half.T @ half / len(half)
    # Channel j is the j-th largest principal direction of the 2x2 patches, scaled to
    # variance lambda_j / (lambda_j + 5e-4), and uncorrelated with the others.
    patches = F.unfold(images.double(), 2).transpose(1, 2).reshape(-1, 12)
    lam = torch.linalg.eigvalsh(patches.T @ patches / len(patches)).flip(0)
    assert lam[0] > 100 * lam[-1]  # the input really is correlated
    expected = torch.diag(lam / (lam + 5e-4))
    torch.testing.assert_close(cov, expected, atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(out[:, 12:], -out[:, :12])


def test_set_epoch_freezes_the_whitening_bias_after_three_epochs():
    net = _net()
    states = []
    for epoch in range(5):
        net.set_epoch(epoch)
        states.append(net.whiten.bias.requires_grad)
    assert states == [True, True, True, False, False]


# ---------------------------------------------------------------------------------------
# Optimizer and schedule
# ---------------------------------------------------------------------------------------


def _papers_optimizer(net, lr, momentum, wd, batch_size):
    """airbench94's optimizer as the paper writes it (for a loss summed over the batch)."""
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = lr / kilostep_scale
    wd = wd * batch_size / kilostep_scale
    lr_biases = lr * 64.0
    norm_biases = [p for k, p in net.named_parameters() if "norm" in k and p.requires_grad]
    other = [p for k, p in net.named_parameters() if "norm" not in k and p.requires_grad]
    groups = [
        dict(params=norm_biases, lr=lr_biases, weight_decay=wd / lr_biases),
        dict(params=other, lr=lr, weight_decay=wd / lr),
    ]
    return torch.optim.SGD(groups, momentum=momentum, nesterov=True)


def test_mean_loss_optimizer_takes_the_papers_steps():
    torch.manual_seed(0)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    ours, theirs = _net(seed=1).double(), _net(seed=1).double()
    opt_ours = airbench.build_optimizer(ours, 11.5, 0.85, 0.0153, batch_size=32)
    opt_theirs = _papers_optimizer(theirs, 11.5, 0.85, 0.0153, batch_size=32)
    for _ in range(3):
        for net, opt, reduce in ((ours, opt_ours, "mean"), (theirs, opt_theirs, "sum")):
            loss = F.cross_entropy(net(x.double()), y, label_smoothing=0.2, reduction=reduce)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)
    # ... and the steps were real: the weights moved.
    assert not torch.equal(ours.classifier.weight, _net(seed=1).double().classifier.weight)


def _papers_triangle(steps, start=0.2, end=0.07, peak=0.23):
    xp = [0, int(peak * steps), steps]
    return np.interp(np.arange(steps + 1), xp, [start, 1.0, end])


@pytest.mark.parametrize("total", [430, 476, 37])
def test_schedule_is_the_papers_triangle(total):
    f = airbench.lr_multiplier(total)
    ours = np.array([f(s) for s in range(total + 1)])
    np.testing.assert_allclose(ours, _papers_triangle(total), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------
# Lookahead and augmentation
# ---------------------------------------------------------------------------------------


def test_lookahead_averages_weights_and_bn_stats():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in net.state_dict().items()}
    state = airbench.Lookahead(net)
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.add_(2.0)
    state.update(net, decay=0.25)  # weights <- 0.25 * average + 0.75 * current
    torch.testing.assert_close(net[0].weight, start["0.weight"] + 0.75)
    torch.testing.assert_close(net[1].running_mean, start["1.running_mean"] + 1.5)
    with torch.no_grad():
        net[0].weight.add_(5.0)
    state.update(net, decay=1.0)  # the average is copied back unchanged
    torch.testing.assert_close(net[0].weight, start["0.weight"] + 0.75)
    assert net[1].num_batches_tracked.dtype == torch.long  # integer buffers left alone
    assert airbench.Lookahead.decay(0, 100) == 0.0
    assert airbench.Lookahead.decay(100, 100) == pytest.approx(0.95**5)


def _which_view(out: torch.Tensor, image: torch.Tensor) -> tuple[bool, int, int]:
    """(flipped, dy, dx) such that `out` is that crop of the reflect-padded image."""
    for flipped in (False, True):
        src = image.flip(-1) if flipped else image
        padded = F.pad(src[None], (2, 2, 2, 2), mode="reflect")[0]
        for dy in range(5):
            for dx in range(5):
                if torch.equal(padded[:, dy : dy + 32, dx : dx + 32], out):
                    return flipped, dy, dx
    raise AssertionError("output is no flip/translate view of the input")


def test_alternating_flip_shows_every_image_both_ways_every_two_epochs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32)
    idx = torch.arange(64)
    aug = airbench.AlternatingFlipTranslate(64, gen)
    views = [[_which_view(o, x[i]) for i, o in enumerate(aug(x, idx, e))] for e in range(3)]
    flips = np.array([[v[0] for v in epoch] for epoch in views])
    assert (flips[0] != flips[1]).all() and (flips[0] == flips[2]).all()
    assert 16 < flips[0].sum() < 48  # the first epoch's flips are coin tosses
    offsets = {(v[1], v[2]) for epoch in views for v in epoch}
    assert len(offsets) > 15  # translations of up to 2 pixels in both directions


# ---------------------------------------------------------------------------------------
# Test-time augmentation
# ---------------------------------------------------------------------------------------


def test_tta_levels_average_the_papers_views():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5)).eval()
    x = torch.randn(7, 3, 32, 32)
    with torch.no_grad():
        net(x)

        def m(z):
            return 0.5 * net(z) + 0.5 * net(z.flip(-1))

        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        up_left, down_right = padded[:, :, :32, :32], padded[:, :, 2:, 2:]
        want = {0: net(x), 1: m(x), 2: 0.5 * m(x) + 0.25 * (m(up_left) + m(down_right))}
    for level, expected in want.items():
        got = engine.predict_logits(net, x, batch_size=3, tta=level)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # Level 1 cannot tell an image from its mirror.
    torch.testing.assert_close(
        engine.predict_logits(net, x.flip(-1), 4, tta=1), want[1], rtol=1e-5, atol=1e-6
    )


# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------


def _fast_dict(data="cifar10", tta=2, **train):
    # The engine tests pass their own splits; `data` matters for validation only.
    return tiny_config_dict(
        data={"name": data},
        model={"name": "airbench", "width": 8},
        train={"recipe": "airbench94", "lr": 11.5, "momentum": 0.85, "weight_decay": 0.0153}
        | train,
        eval={"tta": tta},
    )


def test_bundled_fast_config_is_the_papers_recipe():
    config = load_config(REPO / "configs" / "cifar10_fast.yaml")
    t = config.train
    assert (config.model.name, config.model.width) == ("airbench", 64)
    assert (t.recipe, t.batch_size, t.lr, t.momentum, t.weight_decay) == (
        "airbench94", 1024, 11.5, 0.85, 0.0153,
    )  # fmt: skip
    assert config.eval.tta == 2 and 0.2 in config.sweep.alpha
    assert len(config.sweep.alpha) * len(config.sweep.seeds) == 21
    # The settings the recipe replaces are not part of what identifies a run.
    assert "schedule" not in config.identity()["train"]


def test_recipe_needs_its_model():
    with pytest.raises(ConfigError, match="recipe airbench94 needs model.name: airbench"):
        validate(_fast_dict() | {"model": {"name": "cnn"}}, "<test>")


@pytest.mark.parametrize("key,value", [("schedule", "cosine"), ("augment", True)])
def test_recipe_rejects_settings_it_replaces(key, value):
    with pytest.raises(ConfigError, match=f"{key} cannot be set with recipe airbench94"):
        validate(_fast_dict(**{key: value}), "<test>")


def test_stored_fast_config_round_trips(tmp_path):
    config = validate(_fast_dict(), "<test>")
    path = tmp_path / "sweep.yaml"
    path.write_text(config_to_yaml(config))
    again = load_config(path)
    assert again.identity() == config.identity()
    # What a submitit array task validates again (lsexp.running.cluster) round-trips too.
    assert validate(config_data(config), "<task>") == config


# Ids of the bundled configs before `train.recipe` and `eval.tta` existed: adding a
# setting must not change the ids of runs that do not use it (they would be retrained).
OLD_IDS = {
    "quickstart": "82e5fb7b3540",
    "fashion_mnist": "7c446a715c99",
    "cifar10": "da50e674f404",
    "cifar100": "e0e325bb5861",
    "mnist": "db519f046306",
}


@pytest.mark.parametrize("name", sorted(OLD_IDS))
def test_new_settings_leave_old_ids_alone(name):
    config = load_config(REPO / "configs" / f"{name}.yaml")
    assert stable_hash(config.identity()) == OLD_IDS[name]


def test_new_settings_change_the_id_when_used():
    rgb = {"data": {"name": "cifar10"}, "train": {"augment": True}}
    plain = validate(tiny_config_dict(**rgb), "<test>")
    tta = validate(tiny_config_dict(**rgb, eval={"tta": 1}), "<test>")
    assert stable_hash(plain.identity()) != stable_hash(tta.identity())


def test_tta_needs_a_model_trained_on_flips_and_shifts():
    # Measured on Fashion-MNIST (airbench width 16, 4 epochs, alpha 0.2): TTA on a model
    # trained without flips cost a point of accuracy and 12 points of ECE.
    with pytest.raises(ConfigError, match="grayscale dataset trains without flips"):
        validate(_fast_dict(data="fashion_mnist"), "<test>")
    with pytest.raises(ConfigError, match=r"train.augment: false\); set eval.tta: 0"):
        validate(tiny_config_dict(data={"name": "cifar10"}, eval={"tta": 1}), "<test>")
    validate(_fast_dict(data="fashion_mnist", tta=0), "<test>")  # fine without TTA


# ---------------------------------------------------------------------------------------
# The whole recipe through the engine, on CPU
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rgb_splits() -> Splits:
    """A learnable 32x32 RGB task: one smooth random template per class plus noise."""
    gen = torch.Generator().manual_seed(0)
    templates = F.avg_pool2d(torch.randn(4, 3, 36, 36, generator=gen), 5, stride=1)
    templates = templates / templates.std()

    def split(n):
        y = torch.arange(n) % 4
        return templates[y] + 0.8 * torch.randn(n, 3, 32, 32, generator=gen), y

    (tx, ty), (vx, vy), (sx, sy) = split(512), split(128), split(128)
    info = dataclasses.replace(DATASETS["cifar10"], classes=tuple("abcd"))
    return Splits(tx, ty, vx, vy, sx, sy, info, (0.0,) * 3, (1.0,) * 3)


def _fast_config(epochs=5):
    return validate(_fast_dict(epochs=epochs, batch_size=64), "<test>")


@pytest.mark.slow
def test_recipe_trains_learns_and_is_deterministic(rgb_splits):
    config = _fast_config()
    a = engine.train_run(config, 0.2, 0, rgb_splits, CPU)
    b = engine.train_run(config, 0.2, 0, rgb_splits, CPU)
    assert a.status == "done" and len(a.history) == 5
    assert a.test_metrics["accuracy"] > 0.9  # chance is 0.25
    np.testing.assert_array_equal(a.predictions["test_logits"], b.predictions["test_logits"])
    assert a.extra["engine"]["recipe"]["recipe"].startswith("airbench94")
    lrs = [row["lr"] for row in a.history]  # the triangle: up, then down to 0.07 x peak
    assert lrs[1] > lrs[0] and lrs[-1] < lrs[1]
    # The weights' lr in the paper's units (11.5 per 1024 examples, momentum-decoupled, for
    # a mean loss over 64), not the BN shifts' 64x: epoch 1 starts at 0.2 of the peak.
    assert lrs[0] == pytest.approx(0.2 * 11.5 / (1024 * (1 + 1 / 0.15)) * 64)


@pytest.mark.slow
def test_recipe_uses_lookahead_whitening_and_tta(rgb_splits, monkeypatch):
    calls = {"lookahead": 0, "whiten": 0, "tta": set()}
    real_update, real_init = airbench.Lookahead.update, airbench.AirbenchNet.init_whitening
    real_predict = engine.predict_logits

    def update(self, model, decay):
        calls["lookahead"] += 1
        return real_update(self, model, decay)

    def init(self, images):
        calls["whiten"] += 1
        assert len(images) == 512  # fewer than 5000 training images: all of them
        return real_init(self, images)

    def predict(model, x, batch_size, channels_last=False, tta=0):
        calls["tta"].add(tta)
        return real_predict(model, x, batch_size, channels_last, tta)

    monkeypatch.setattr(airbench.Lookahead, "update", update)
    monkeypatch.setattr(airbench.AirbenchNet, "init_whitening", init)
    monkeypatch.setattr(engine, "predict_logits", predict)
    result = engine.train_run(_fast_config(), 0.0, 0, rgb_splits, CPU)
    assert result.status == "done"
    # 8 steps per epoch; epochs 4-5 (0-based 3-4): steps 24..40, every 5th -> 25,30,35,40
    # (the first one starts the average) + one copy-back per epoch.
    assert calls["lookahead"] == 3 + 2
    assert calls["whiten"] == 1
    assert calls["tta"] == {0, 2}  # per-epoch val plain; final val and test with TTA


def test_flip_augmentation_is_not_applied_to_grayscale(monkeypatch):
    from lsexp.training.data import load_splits

    splits = load_splits("fashion_mnist_mini", None, val_size=500)
    small = dataclasses.replace(splits, train_x=splits.train_x[:256], train_y=splits.train_y[:256])
    made = []
    monkeypatch.setattr(airbench.AlternatingFlipTranslate, "__init__",
                        lambda self, *a: made.append(a))  # fmt: skip
    config = validate(_fast_dict(data="fashion_mnist_mini", tta=0, epochs=1, batch_size=128),
                      "<test>")  # fmt: skip
    result = engine.train_run(config, 0.1, 0, small, CPU)
    assert result.status == "done" and made == []
