"""Training recipes: everything about *how* a run trains except the model and the loss.

A recipe builds the optimizer and the learning-rate schedule, transforms each batch
(augmentation), and has hooks before an epoch, after an optimizer step and after an
epoch. `engine.train_run` calls these and nothing else, so its loop reads the same for
every recipe; a new recipe is one class here and one name in `RECIPES` (and in the
config's `train.recipe` choices).

- `standard`: SGD (Nesterov momentum) or AdamW, a cosine / one-cycle / constant schedule
  stepped per batch, and random crop (pad 4) + horizontal flip for colour images when
  `train.augment` is set (the He et al. 2016 CIFAR recipe).
- `airbench94`: Jordan 2024's fast CIFAR-10 recipe, its pieces in `lsexp/training/airbench.py`:
  decoupled Nesterov SGD, a triangle schedule, Lookahead from epoch 3, alternating flip +
  2-pixel translation, and the whitening bias frozen after 3 epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor, nn

from lsexp.config import TrainConfig
from lsexp.training import airbench
from lsexp.training.augment import random_crop_flip


class Recipe(Protocol):
    """What the training loop asks of a recipe (see the module docstring)."""

    optimizer: torch.optim.Optimizer
    lr_group: int  # the param group whose lr the history records

    def start_epoch(self, model: nn.Module, epoch: int) -> None: ...
    def transform(self, x: Tensor, idx: Tensor, epoch: int) -> Tensor: ...
    def after_step(self, model: nn.Module) -> None: ...
    def end_epoch(self, model: nn.Module, epoch: int) -> None: ...


# ---------------------------------------------------------------------------------------
# The standard recipe
# ---------------------------------------------------------------------------------------


def lr_lambda(schedule: str, total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Multiplier of the base LR at optimizer step `step` (0-based)."""

    def constant(step: int) -> float:
        return 1.0

    def cosine(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def onecycle(step: int) -> float:
        # Linear ramp 0.1 -> 1 over the first 30 %, then linear to 0 (a simple one-cycle,
        # Smith & Topin 2019); the triangle form is what fast CIFAR recipes use.
        peak = max(1, int(0.3 * total_steps))
        if step < peak:
            return 0.1 + 0.9 * step / peak
        return max(0.0, 1.0 - (step - peak) / max(1, total_steps - peak))

    return {"constant": constant, "cosine": cosine, "onecycle": onecycle}[schedule]


def build_optimizer(t: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm and bias parameters (standard for ResNets; Goyal et al.
    # 2017): decaying BN scales fights the normalisation and only adds noise.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": t.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if t.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov and t.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=t.lr)


class StandardRecipe:
    lr_group = 0

    def __init__(self, t: TrainConfig, model: nn.Module, channels: int, n_train: int,
                 steps_per_epoch: int, aug_gen: torch.Generator) -> None:  # fmt: skip
        self.optimizer = build_optimizer(t, model)
        total = t.epochs * steps_per_epoch
        warmup = int(round(t.warmup_epochs * steps_per_epoch))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(t.schedule, total, warmup)
        )
        # Crop + flip is a CIFAR recipe: never applied to grayscale digits or clothing.
        self.augment = t.augment and channels == 3
        self.aug_gen = aug_gen

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        pass

    def transform(self, x: Tensor, idx: Tensor, epoch: int) -> Tensor:
        return random_crop_flip(x, self.aug_gen) if self.augment else x

    def after_step(self, model: nn.Module) -> None:
        self.scheduler.step()

    def end_epoch(self, model: nn.Module, epoch: int) -> None:
        pass


# ---------------------------------------------------------------------------------------
# airbench94 (Jordan 2024)
# ---------------------------------------------------------------------------------------


class Airbench94Recipe:
    lr_group = 1  # group 0 holds the BN shifts, which train at 64x the lr

    def __init__(self, t: TrainConfig, model: nn.Module, channels: int, n_train: int,
                 steps_per_epoch: int, aug_gen: torch.Generator) -> None:  # fmt: skip
        self.optimizer = airbench.build_optimizer(
            model, t.lr, t.momentum, t.weight_decay, t.batch_size
        )
        self.total_steps = t.epochs * steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, airbench.lr_multiplier(self.total_steps)
        )
        self.flip_translate = (
            airbench.AlternatingFlipTranslate(n_train, aug_gen) if channels == 3 else None
        )
        self.lookahead: airbench.Lookahead | None = None
        self.step = 0
        self.epoch = 1

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        self.epoch = epoch
        if isinstance(model, airbench.AirbenchNet):
            model.set_epoch(epoch - 1)

    def transform(self, x: Tensor, idx: Tensor, epoch: int) -> Tensor:
        return x if self.flip_translate is None else self.flip_translate(x, idx, epoch - 1)

    def after_step(self, model: nn.Module) -> None:
        self.scheduler.step()
        self.step += 1
        la = airbench.LOOKAHEAD
        if self.epoch - 1 >= la["start_epoch"] and self.step % la["every"] == 0:
            if self.lookahead is None:
                self.lookahead = airbench.Lookahead(model)
            else:
                decay = airbench.Lookahead.decay(self.step, self.total_steps)
                self.lookahead.update(model, decay)

    def end_epoch(self, model: nn.Module, epoch: int) -> None:
        if self.lookahead is not None:
            self.lookahead.update(model, decay=1.0)  # the average becomes the weights


RECIPES: dict[str, type] = {"standard": StandardRecipe, "airbench94": Airbench94Recipe}


def build_recipe(t: TrainConfig, model: nn.Module, channels: int, n_train: int,
                 steps_per_epoch: int, aug_gen: torch.Generator) -> Recipe:  # fmt: skip
    return RECIPES[t.recipe](t, model, channels, n_train, steps_per_epoch, aug_gen)
