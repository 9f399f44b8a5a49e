"""Classifiers for 28x28 grayscale (MNIST, Fashion-MNIST) and 32x32 RGB (CIFAR) images.

Every model splits into ``features(x) -> (B, D)`` penultimate activations and a final
``nn.Linear`` named ``classifier``, with ``forward(x) == classifier(features(x))`` by
construction (``_Classifier.forward``). Later analysis projects the penultimate activations
onto rows of ``classifier.weight`` (Müller et al. 2019, "When Does Label Smoothing Help?",
Fig. 1), so this split is part of the contract, not an implementation detail.

Models are built from the global torch RNG; callers that need reproducible, paired
initialisation build them under ``torch.random.fork_rng`` + ``torch.manual_seed(seed)``
(as ``lsexp.training.engine.train_run`` does), which leaves the caller's RNG state untouched.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lsexp.training.airbench import AirbenchNet

MODEL_NAMES = ("mlp", "cnn", "resnet", "airbench")

# Which of build_model's optional arguments each model takes (mirrors ModelConfig in
# lsexp.config, so a bad combination is rejected here too when the library is used directly).
_APPLIES: dict[str, frozenset[str]] = {
    "mlp": frozenset({"hidden"}),
    "cnn": frozenset({"width"}),
    "resnet": frozenset({"width", "depth"}),
    "airbench": frozenset({"width"}),
}


class _Classifier(nn.Module):
    """Base: subclasses define ``features`` and a final ``nn.Linear`` called ``classifier``."""

    classifier: nn.Linear

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------


class MLP(_Classifier):
    """Flatten -> [Linear + ReLU] per hidden size -> classifier.

    ``hidden=()`` gives multinomial logistic regression (features = the flattened pixels).
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for size in hidden:
            layers += [nn.Linear(prev, size), nn.ReLU(inplace=True)]
            prev = size
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(prev, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)


# ---------------------------------------------------------------------------------------
# Small CNN
# ---------------------------------------------------------------------------------------


def _conv_bn_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    # No conv bias: the BatchNorm shift that follows makes it redundant.
    return [
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(_Classifier):
    """Two VGG-style stages (two 3x3 conv-BN-ReLU, then 2x2 max-pool), widths w and 2w.

    A global average pool replaces a flatten + dense layer, so the same network takes
    28x28 and 32x32 inputs (7x7 / 8x8 maps before the pool) and has few parameters
    (w=32: ~65k), which keeps a Fashion-MNIST epoch cheap on a CPU.
    """

    def __init__(self, in_channels: int, width: int, num_classes: int) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_conv_bn_relu(in_channels, w),
            *_conv_bn_relu(w, w),
            nn.MaxPool2d(2),
            *_conv_bn_relu(w, 2 * w),
            *_conv_bn_relu(2 * w, 2 * w),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(2 * w, num_classes)
        _init_conv_bn(self)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)


# ---------------------------------------------------------------------------------------
# CIFAR ResNet (He et al. 2016, "Deep Residual Learning for Image Recognition", Sec. 4.2)
# ---------------------------------------------------------------------------------------


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a parameter-free "option A" shortcut.

    Option A (He et al. 2016, Sec. 3.3 and 4.2: "we use identity shortcuts in all cases",
    for CIFAR): when the block halves the resolution and widens the channels, the input is
    subsampled with stride 2 and padded with zero channels. x[:, :, ::2, ::2] picks the
    pixels that the stride-2, padding-1 3x3 conv is centred on, so the two paths align.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.stride = stride
        self.extra_channels = out_ch - in_ch

    def _shortcut(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            # F.pad pads the last dims first: (W, W, H, H, C_front, C_back).
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x), inplace=True)


class CifarResNet(_Classifier):
    """ResNet-(6n+2) for CIFAR: 3x3 conv -> 3 stages of n basic blocks -> GAP -> classifier.

    Stage widths are w, 2w, 4w (paper: w = 16, i.e. 16/32/64 filters on 32x32/16x16/8x8
    maps); stages 2 and 3 start with stride 2. Paper parameter counts (Table 6) for depth
    20/32/44/56/110: 0.27M/0.46M/0.66M/0.85M/1.7M; this model gives 0.270M/0.464M/0.659M/
    0.853M/1.728M with 10 classes (pinned in tests/test_models.py).
    """

    def __init__(self, in_channels: int, depth: int, width: int, num_classes: int) -> None:
        super().__init__()
        n = (depth - 2) // 6
        widths = (width, 2 * width, 4 * width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        in_ch = width
        for stage, out_ch in enumerate(widths):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(_BasicBlock(in_ch, out_ch, stride))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(in_ch, num_classes)
        _init_conv_bn(self)

    def features(self, x: Tensor) -> Tensor:
        return self.pool(self.blocks(self.stem(x)))


def _init_conv_bn(model: nn.Module) -> None:
    # He et al. 2015 ("Delving Deep into Rectifiers") init, fan_out mode as in torchvision's
    # ResNets; BN starts as the identity. The classifier keeps nn.Linear's default init.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def build_model(
    name: str,
    *,
    in_channels: int,
    image_size: int,
    num_classes: int,
    width: int | None = None,
    depth: int | None = None,
    hidden: tuple[int, ...] | None = None,
) -> nn.Module:
    """Build a freshly initialised classifier (draws from the global torch RNG).

    Args:
        name: one of ``MODEL_NAMES``.
        in_channels, image_size, num_classes: the dataset's shape (square images).
        width: ``cnn`` base width (default 32), ``resnet`` first-stage width (default 16,
            the paper's) or ``airbench`` first-group width (default 64; then 4w, 4w).
        depth: ``resnet`` depth 6n+2 with n >= 1 (paper: 20, 32, 44, 56, 110; default 20).
        hidden: ``mlp`` hidden sizes (default (256, 256)).

    An optional argument left as None takes the model's default; one that the model does
    not take must be None (``depth`` for ``mlp``, say), else ValueError.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"expected a model name in {MODEL_NAMES}, got {name!r}")
    given = {"width": width, "depth": depth, "hidden": hidden}
    for key, value in given.items():
        if value is not None and key not in _APPLIES[name]:
            takes = ", ".join(sorted(_APPLIES[name]))
            raise ValueError(f"'{key}' does not apply to model '{name}' (it takes: {takes})")
    for key, value in (
        ("in_channels", in_channels),
        ("image_size", image_size),
        ("num_classes", num_classes),
        ("width", width),
        ("depth", depth),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"expected {key} to be a positive int, got {value!r}")

    if name == "mlp":
        hidden = (256, 256) if hidden is None else tuple(hidden)
        if not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ValueError(f"expected hidden to be positive ints, got {hidden!r}")
        return MLP(in_channels * image_size * image_size, hidden, num_classes)
    if name == "cnn":
        if image_size < 4:  # two 2x2 max-pools
            raise ValueError(f"expected image_size >= 4 for 'cnn', got {image_size}")
        return SmallCNN(in_channels, 32 if width is None else width, num_classes)
    if name == "airbench":
        if image_size < 12:  # 2x2 conv, then three 2x2 max-pools
            raise ValueError(f"expected image_size >= 12 for 'airbench', got {image_size}")
        return AirbenchNet(in_channels, 64 if width is None else width, num_classes)
    depth = 20 if depth is None else depth
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"expected resnet depth 6n+2 (20, 32, 44, 56, 110), got {depth}")
    return CifarResNet(in_channels, depth, 16 if width is None else width, num_classes)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters())
