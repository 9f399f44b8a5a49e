"""The airbench94 recipe (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU").

Written from the paper's description and its reference script (airbench94.py); every
constant below is the paper's, and the engine applies them when `train.recipe` is
`airbench94` (configs/cifar10_fast.yaml). The pieces:

- Network (`AirbenchNet`): a 2x2 conv with 2*C*4 output channels whose weights are fixed
  to a PCA whitening of 2x2 patches of the training images (positive and negative
  eigenvectors, so the GELU after it keeps both signs), then three ConvGroups (conv 3x3 ->
  maxpool 2 -> BN -> GELU -> conv 3x3 -> BN -> GELU) of widths w, 4w, 4w (w = 64), a 3x3
  max-pool, a bias-free linear layer and a fixed output scale of 1/9. Convolutions start
  as a partial identity (Dirac init: "implicit residual"); BatchNorm has eps 1e-12,
  running-stat momentum 0.4 (the paper's 0.6 in the other convention) and a frozen scale
  of 1, only its shift is trained. The whitening layer's bias trains for 3 epochs, then
  freezes.
- Optimizer (`build_optimizer`): Nesterov SGD in the paper's decoupled units: `lr` per 1024
  examples, divided by 1 + 1/(1 - momentum) so that momentum does not change the step
  size, and `weight_decay` per 1024 examples, applied to every trained parameter and not
  scaled by the lr multiplier of the BN shifts (x64). The paper sums the loss over the
  batch; lsexp averages it, so the SGD lr is the paper's times the batch size (the same
  update).
- Schedule (`lr_multiplier`): linear from 0.2 to 1 over the first 23 % of the steps, then
  linear down to 0.07.
- Lookahead (`Lookahead`): from epoch 3 on, every 5 steps the weights (and BN running
  stats) move to an exponential average with decay 0.95^5 * (step / total)^3, and the
  average is copied back at the end of each epoch.
- Augmentation (`AlternatingFlipTranslate`): random translation by up to 2 pixels with
  reflect padding, and "alternating flip": each image gets one random flip at the start,
  then every odd epoch flips all images, so every image is seen both ways every 2 epochs.
- Test-time augmentation (`lsexp.training.engine.predict_logits`, `eval.tta: 2`): the mean logit
  of the image and its mirror, averaged with the same for the image shifted by one pixel
  up-left and down-right. TTA changes the logits and so the calibration; it is an
  identity setting and runs on val (where the temperature is fitted) and test alike.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lsexp.training.augment import crop, random_offsets

BN_MOMENTUM = 0.4  # PyTorch convention; the paper's 0.6 is 1 - this
BN_EPS = 1e-12
OUTPUT_SCALE = 1 / 9
WHITEN_KERNEL = 2
WHITEN_EPS = 5e-4
WHITEN_IMAGES = 5000  # the first 5000 training images estimate the patch covariance
WHITEN_BIAS_EPOCHS = 3
BIAS_LR_SCALE = 64.0
SCHEDULE = {"start": 0.2, "peak_at": 0.23, "end": 0.07}
LOOKAHEAD = {"start_epoch": 3, "every": 5, "decay_base": 0.95, "decay_pow": 3.0}
TRANSLATE = 2

SETTINGS: dict[str, Any] = {
    "recipe": "airbench94 (Jordan 2024)",
    "bias_lr_scale": BIAS_LR_SCALE,
    "schedule": SCHEDULE,
    "lookahead": LOOKAHEAD,
    "whiten_bias_epochs": WHITEN_BIAS_EPOCHS,
    "augment": f"alternating flip + translate {TRANSLATE} (reflect)",
}


class _BatchNorm(nn.BatchNorm2d):
    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.weight.requires_grad_(False)  # scale fixed at 1; only the shift trains


class _Conv(nn.Conv2d):
    """3x3 'same' conv without bias, initialised as default + Dirac on the first filters."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, kernel_size=3, padding="same", bias=False)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        w = self.weight.data
        nn.init.dirac_(w[: w.size(1)])


class _ConvGroup(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = _Conv(in_ch, out_ch)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _BatchNorm(out_ch)
        self.conv2 = _Conv(out_ch, out_ch)
        self.norm2 = _BatchNorm(out_ch)
        self.activ = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class AirbenchNet(nn.Module):
    """airbench94's network; ``forward(x) == classifier(features(x))``.

    The paper's fixed 1/9 output scale is folded into ``features`` (the classifier has no
    bias, so W(h/9) == (Wh)/9), which keeps lsexp's features/classifier contract.
    Needs images of at least 12x12 (28x28 and 32x32 both end at 1x1 before the classifier).
    """

    def __init__(self, in_channels: int, width: int, num_classes: int) -> None:
        super().__init__()
        whiten_width = 2 * in_channels * WHITEN_KERNEL**2
        self.whiten = nn.Conv2d(in_channels, whiten_width, WHITEN_KERNEL, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        nn.init.zeros_(self.whiten.bias)
        self.body = nn.Sequential(
            nn.GELU(),
            _ConvGroup(whiten_width, width),
            _ConvGroup(width, 4 * width),
            _ConvGroup(4 * width, 4 * width),
            nn.AdaptiveMaxPool2d(1),  # the paper's MaxPool2d(3) on its 3x3 map
            nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * width, num_classes, bias=False)

    def features(self, x: Tensor) -> Tensor:
        return self.body(self.whiten(x)) * OUTPUT_SCALE

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))

    @torch.no_grad()
    def init_whitening(self, images: Tensor) -> None:
        """Set the whitening conv from normalised training images (N, C, H, W)."""
        k = WHITEN_KERNEL
        c = images.shape[1]
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1)  # N, C, H', W', k, k
        patches = patches.transpose(1, 3).reshape(-1, c, k, k)
        flat = patches.reshape(len(patches), -1).double()
        cov = flat.T @ flat / len(flat)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        # Largest first, as in the paper; each eigenvector scaled to unit output variance.
        eigenvalues = eigenvalues.flip(0).view(-1, 1, 1, 1)
        filters = eigenvectors.T.reshape(c * k * k, c, k, k).flip(0)
        scaled = (filters / torch.sqrt(eigenvalues.clamp_min(0) + WHITEN_EPS)).float()
        self.whiten.weight.copy_(torch.cat((scaled, -scaled)).to(self.whiten.weight))

    def set_epoch(self, epoch: int) -> None:
        """0-based epoch: the whitening bias trains for the first WHITEN_BIAS_EPOCHS."""
        self.whiten.bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)


def build_optimizer(
    model: nn.Module, lr: float, momentum: float, weight_decay: float, batch_size: int
) -> torch.optim.SGD:
    """Nesterov SGD in the paper's decoupled units, for a batch-*mean* loss.

    Groups as in the paper: the BN shifts, and every other parameter that trains at the
    start (the whitening bias included; `set_epoch` freezes it later, and SGD skips a
    parameter without a grad). Fixed tensors (whitening filters, BN scales) are left out.
    The per-step decay of a weight is lr_mult * wd_eff for both groups, as in the paper.
    """
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr_sum = lr / kilostep_scale  # the paper's SGD lr for a loss summed over the batch
    wd_eff = weight_decay * batch_size / kilostep_scale
    lr_other = lr_sum * batch_size  # same update for a batch-mean loss
    lr_bias = lr_other * BIAS_LR_SCALE
    norm = [p for n, p in model.named_parameters() if ".norm" in n and n.endswith("bias")]
    norm_ids = {id(p) for p in norm}
    other = [p for p in model.parameters() if id(p) not in norm_ids and p.requires_grad]
    groups = [
        {"params": norm, "lr": lr_bias, "weight_decay": wd_eff / lr_bias},
        {"params": other, "lr": lr_other, "weight_decay": wd_eff / lr_other},
    ]
    return torch.optim.SGD(groups, lr=lr_other, momentum=momentum, nesterov=True)


def lr_multiplier(total_steps: int):
    """Triangle: 0.2 -> 1 at 23 % of the steps -> 0.07 at the end (piecewise linear)."""
    peak = int(SCHEDULE["peak_at"] * total_steps)

    def f(step: int) -> float:
        if peak > 0 and step < peak:
            return SCHEDULE["start"] + (1 - SCHEDULE["start"]) * step / peak
        frac = (step - peak) / max(1, total_steps - peak)
        return 1 + (SCHEDULE["end"] - 1) * min(1.0, frac)

    return f


class Lookahead:
    """The paper's Lookahead-style EMA over the whole state dict (weights and BN stats)."""

    def __init__(self, model: nn.Module) -> None:
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        for (_, avg), cur in zip(self.ema.items(), model.state_dict().values(), strict=True):
            if cur.is_floating_point():
                avg.lerp_(cur, 1 - decay)
                cur.copy_(avg)

    @staticmethod
    def decay(step: int, total_steps: int) -> float:
        base = LOOKAHEAD["decay_base"] ** LOOKAHEAD["every"]
        return base * (step / total_steps) ** LOOKAHEAD["decay_pow"]


class AlternatingFlipTranslate:
    """Batched augmentation of the paper, drawn from the run's own augmentation generator.

    `flip_mask` (one coin per training image) is drawn once; epoch e flips image i when
    flip_mask[i] xor (e is odd). Translation: reflect-pad by TRANSLATE, then a random
    crop per image (offsets uniform in [0, 2*TRANSLATE]).
    """

    def __init__(self, n_train: int, generator: torch.Generator) -> None:
        self.generator = generator
        self.flip_mask = torch.rand(n_train, generator=generator, device=generator.device) < 0.5

    def __call__(self, x: Tensor, idx: Tensor, epoch: int) -> Tensor:
        n, _, h, w = x.shape
        gen = self.generator
        flip = self.flip_mask.to(x.device)[idx] ^ bool(epoch % 2)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        padded = F.pad(x, (TRANSLATE,) * 4, mode="reflect")
        dy, dx = random_offsets(n, TRANSLATE, gen, x.device)
        return crop(padded, dy, dx, h, w)
