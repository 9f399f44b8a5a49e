"""Training one run: a model, a recipe, one alpha, one seed, data already in tensors.

Why the loop looks like this:
- The dataset lives in one tensor on the training device and batches are drawn by index
  (no DataLoader, no per-sample transforms): on a 2-core CPU this alone is 1.3-1.8x a
  DataLoader with 0 workers, and on a GPU it removes the host->device copy per batch.
- Pairing: the seed fixes the initial weights, the data order and the augmentation, and
  nothing else draws from those generators, so runs that differ only in alpha see the same
  init and the same batches. Differences between alphas are then paired by seed.
- No global RNG state is touched: the model is built inside `torch.random.fork_rng`.
- Divergence (a NaN/inf loss) is checked once per epoch on the summed loss (NaN and inf
  propagate through the sum), which avoids a device sync per step.
- Prediction (per-epoch validation, the final test pass) runs on an eval-mode copy with
  BatchNorm folded into the conv before it and max-pools moved before their ReLUs
  (`inference_model`), under
  `torch.inference_mode()`, in batches sized for the device (`EngineSettings`). The final
  evaluation is one pass per split: the test pass yields the logits and the penultimate
  features together, the last epoch's validation logits are kept, and the training-set
  logit gap comes from one pass over a fixed training subset.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lsexp.analysis import metrics
from lsexp.config import SweepConfig, student_model
from lsexp.errors import ConfigError
from lsexp.training import airbench, mixing
from lsexp.training.data import Splits
from lsexp.training.models import build_model, count_parameters
from lsexp.training.objectives import (
    DEFAULT_OBJECTIVE,
    distillation_loss,
    get_objective,
    mixed_cross_entropy,
    smoothed_cross_entropy,
)
from lsexp.training.recipes import build_recipe


class Interrupted(Exception):
    """A stop was requested (Ctrl-C, SIGTERM); raised at a batch boundary."""


class RunObserver(Protocol):
    """Progress events from one run. The CLI draws bars from these; tests may ignore them."""

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step_done(self, step: int, steps: int) -> None: ...
    def epoch_done(self, epoch: int, epochs: int, row: dict[str, float]) -> None: ...


class _NullObserver:
    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step_done(self, step: int, steps: int) -> None:
        pass

    def epoch_done(self, epoch: int, epochs: int, row: dict[str, float]) -> None:
        pass


@dataclass
class RunResult:
    status: str  # "done" | "diverged"
    history: list[dict[str, float]]
    predictions: dict[str, np.ndarray] | None  # val/test logits + labels (done runs only)
    test_metrics: dict[str, float]
    diverged_epoch: int | None
    n_parameters: int
    train_seconds: float
    eval_seconds: float
    penultimate: dict[str, np.ndarray] | None = None  # see `penultimate_sample`
    extra: dict[str, Any] = field(default_factory=dict)
    # Seconds per phase: build (model, recipe), train (steps only), validate (per-epoch
    # validation), evaluate (final test pass, penultimate features, training-set gap,
    # metrics). eval_seconds == validate + evaluate.
    timings: dict[str, float] = field(default_factory=dict)
    # The trained weights (CPU tensors), kept only when asked (`keep_weights`): a teacher's,
    # saved for its distillation students.
    state_dict: dict[str, torch.Tensor] | None = None


@dataclass(frozen=True)
class EngineSettings:
    """How a run uses its device; recorded in each run's provenance.

    channels_last: NHWC memory layout for conv nets: faster per step on the CPU too
    (README, Performance, has the measured numbers), and on CUDA it is what the tensor
    cores want. autocast_dtype: bf16 autocast for the training forward pass on CUDA (no
    loss scaling needed, unlike fp16); the loss and every metric are computed from float32
    logits, and evaluation runs in float32. runs_at_once: how many runs share the machine
    (`lsexp sweep --workers N`), which a run's speed depends on. eval_batch_cap: the
    largest prediction batch (None: `eval.batch_size` as configured); on the CPU small
    batches stay in cache (`CPU_EVAL_BATCH`).
    """

    channels_last: bool
    autocast_dtype: torch.dtype | None
    compile: bool = False  # torch.compile the model (`lsexp sweep --compile`)
    runs_at_once: int = 1
    eval_batch_cap: int | None = None

    def as_dict(self) -> dict[str, Any]:
        dtype = None if self.autocast_dtype is None else str(self.autocast_dtype)
        return {"data": "device-resident tensors, batches by index",
                "channels_last": self.channels_last, "autocast": dtype,
                "compile": self.compile, "runs_at_once": self.runs_at_once,
                "eval_batch_cap": self.eval_batch_cap,
                "inference": "eval-mode copy, BatchNorm folded into its conv"}  # fmt: skip

    def eval_batch_size(self, configured: int) -> int:
        return min(configured, self.eval_batch_cap or configured)


# Prediction batch on the CPU: 10k Fashion-MNIST test images through the width-16 cnn
# (`inference_model`) took 0.39-0.41 s in batches of 128, 0.42-0.44 s in 256 and 0.8 s in
# 512 or 1000 on the quiet 2-core machine: the activations of a small batch stay in cache.
# (The trained model itself, in batches of 1000, as before: 0.84-0.95 s.)
CPU_EVAL_BATCH = 128


def engine_settings(
    device: torch.device, model_name: str, compile: bool = False, runs_at_once: int = 1
) -> EngineSettings:
    """channels_last for conv nets on CPU and CUDA, bf16 autocast on CUDA, prediction
    batches of at most `CPU_EVAL_BATCH` on the CPU; torch.compile only when asked: no gain
    seen on the 2-core CPU, and compiling costs time every run."""
    conv = model_name in ("cnn", "resnet", "airbench")
    return EngineSettings(
        channels_last=conv and device.type in ("cpu", "cuda"),
        autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
        compile=compile,
        runs_at_once=runs_at_once,
        eval_batch_cap=CPU_EVAL_BATCH if device.type == "cpu" else None,
    )


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU. Asking for an absent device is an error."""
    from lsexp.errors import LsexpError

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LsexpError("device 'cuda' requested but CUDA is not available; use --device cpu")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise LsexpError("device 'mps' requested but MPS is not available; use --device cpu")
    return torch.device(name)


def _val_row(val_logits: np.ndarray, val_y: np.ndarray, n_bins: int) -> dict[str, float]:
    """The history's per-epoch validation numbers (empty without a validation split)."""
    if not len(val_logits):
        return {}
    probs = metrics.softmax(val_logits)
    return {
        "val_acc": metrics.accuracy(probs, val_y),
        "val_nll": metrics.nll_from_logits(val_logits, val_y),
        "val_ece": metrics.ece(probs, val_y, n_bins=n_bins),
        "val_logit_gap": metrics.logit_gap(val_logits),
    }


COMPILE_BACKEND = "inductor"  # tests swap in "eager" to check the wiring without a compiler

PROJECTION_CLASSES = (0, 1, 2)
PROJECTION_PER_CLASS = 300


def inference_model(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` for prediction, with BatchNorm folded into its conv.

    In eval mode a BatchNorm is a fixed affine map per channel, so a Conv2d followed by a
    BatchNorm2d is one Conv2d with scaled weights and a bias
    (`torch.nn.utils.fusion.fuse_conv_bn_eval`): the same function up to float rounding
    (1e-7 relative), and one pass over the activations fewer. A ReLU followed by a max-pool
    becomes the max-pool followed by the ReLU (max and ReLU commute: the same numbers
    exactly), so the ReLU touches a quarter of the values. Together they halve the cnn's
    prediction time on the CPU. Rewritten only inside an `nn.Sequential`, and only plain
    `nn.Conv2d` + `nn.BatchNorm2d` (with running statistics) and `nn.ReLU` + `nn.MaxPool2d`
    (without indices) pairs (the cnn; the resnet stem); every other layer is copied as it
    is. The trained model is not touched.
    """
    with torch.no_grad():
        net = copy.deepcopy(model).eval()
        for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
            for i in range(len(seq) - 1):
                a, b = seq[i], seq[i + 1]
                if (type(a) is nn.Conv2d and type(b) is nn.BatchNorm2d
                        and b.running_mean is not None):  # fmt: skip
                    seq[i], seq[i + 1] = fuse_conv_bn_eval(a, b), nn.Identity()
                elif type(a) is nn.ReLU and type(b) is nn.MaxPool2d and not b.return_indices:
                    seq[i], seq[i + 1] = b, a
    return net


def penultimate_rows(y: torch.Tensor) -> torch.Tensor:
    """Indices of the test examples `penultimate_sample` keeps (see there)."""
    return torch.cat([(y == k).nonzero().flatten()[:PROJECTION_PER_CLASS]
                      for k in PROJECTION_CLASSES])  # fmt: skip


def penultimate_sample(
    model: nn.Module, features: torch.Tensor, y: torch.Tensor
) -> dict[str, np.ndarray]:
    """What the penultimate-layer figure of Müller et al. (2019, Fig. 1) needs, saved per run.

    The first `PROJECTION_PER_CLASS` test examples of each of `PROJECTION_CLASSES`: their
    penultimate activations (`features`: those of every test example, from the test pass
    that also gives the logits), labels, and the rows ("templates") of the last layer's
    weight matrix for those classes. `report` projects the activations onto the plane
    through the three templates, so no model is kept and nothing is retrained.
    """
    idx = penultimate_rows(y)
    classes = list(PROJECTION_CLASSES)
    return {
        "features": features[idx.to(features.device)].cpu().numpy().astype(np.float32),
        "labels": y[idx].cpu().numpy().astype(np.int64),
        "templates": model.classifier.weight[classes].detach().float().cpu().numpy(),
        "classes": np.array(classes, dtype=np.int64),
    }


TRAIN_GAP_EXAMPLES = 5000


def true_class_gap(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per example, z_y - mean_{i != y} z_i: the true class's logit minus the mean of the
    other K-1 logits, computed in float64, returned as float32 (K >= 2)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    k = z.shape[1]
    true = z[np.arange(len(z)), y]
    return (true - (z.sum(axis=1) - true) / (k - 1)).astype(np.float32)


def _tta_logits(
    model: nn.Module, x: torch.Tensor, level: int, fmt, features: list | None = None
) -> torch.Tensor:
    """Logits averaged over test-time views (airbench94's scheme; see lsexp/training/airbench.py).

    Level 0: the image. Level 1: mean over the image and its mirror. Level 2: half of
    level 1, plus half the mean of level 1 on the image shifted one pixel up-left and one
    pixel down-right (reflect padding), i.e. 6 views. With a `features` list, the
    penultimate features of the image itself (not of the other views) are appended to it,
    from the same forward pass: `classifier(features(x))` is what `model(x)` computes.
    """

    def plain(z: torch.Tensor, keep: bool = False) -> torch.Tensor:
        z = z.contiguous(memory_format=fmt)
        if keep and features is not None:
            h = model.features(z)
            features.append(h.float())
            return model.classifier(h).float()
        return model(z).float()

    def mirror(z: torch.Tensor, keep: bool = False) -> torch.Tensor:
        return 0.5 * plain(z, keep) + 0.5 * plain(z.flip(-1))

    if level == 0:
        return plain(x, True)
    logits = mirror(x, True)
    if level == 1:
        return logits
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * (mirror(padded[:, :, :h, :w]) + mirror(padded[:, :, 2 : h + 2, 2 : w + 2]))
    return 0.5 * logits + 0.5 * shifted


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int,
    channels_last: bool = False,
    tta: int = 0,
) -> torch.Tensor:
    """Float32 logits for every row of x, in large no-grad batches, in eval mode.

    `tta` > 0 averages logits over flipped / shifted views (`_tta_logits`).
    """
    was_training = model.training
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = [_tta_logits(model, x[i : i + batch_size], tta, fmt)
           for i in range(0, len(x), batch_size)]  # fmt: skip
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


@torch.inference_mode()
def predict_with_features(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int,
    channels_last: bool = False,
    tta: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`predict_logits` and the penultimate features of every row of x, in one pass (the
    model needs `features` and `classifier`, as every lsexp model has)."""
    was_training = model.training
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    feats: list[torch.Tensor] = []
    out = [_tta_logits(model, x[i : i + batch_size], tta, fmt, feats)
           for i in range(0, len(x), batch_size)]  # fmt: skip
    model.train(was_training)
    return torch.cat(out), torch.cat(feats)


def load_teacher(
    config: SweepConfig, weights: Any, splits: Splits, device: torch.device,
    settings: EngineSettings | None = None,
) -> nn.Module:  # fmt: skip
    """A distillation teacher: the sweep's model (`config.model`) with a finished run's
    weights (`weights`: a path or file object of its state dict, read with
    `torch.load(weights_only=True)`, so no code in it runs), as an eval-mode copy with
    BatchNorm folded (`inference_model`) on `device`. RuntimeError if they do not fit."""
    info = splits.info
    settings = settings or engine_settings(device, config.model.name)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    with torch.random.fork_rng(devices=[]):
        model = build_model(config.model.name, in_channels=info.channels,
                            image_size=info.image_size, num_classes=info.num_classes,
                            width=config.model.width, depth=config.model.depth,
                            hidden=config.model.hidden)  # fmt: skip
    model.load_state_dict(state)
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    return inference_model(model.to(device).to(memory_format=fmt))


def train_run(
    config: SweepConfig,
    strength: float,
    seed: int,
    splits: Splits,
    device: torch.device,
    observer: RunObserver | None = None,
    should_stop: Callable[[], bool] | None = None,
    settings: EngineSettings | None = None,
    objective: str = DEFAULT_OBJECTIVE,
    teacher: nn.Module | None = None,
    keep_weights: bool = False,
) -> RunResult:
    """Train one run and evaluate it on val (every epoch) and test (once, at the end).

    Longer than the other functions on purpose: it is the training loop read top to
    bottom (build, loop over epochs and batches, evaluate), as in airbench or nanoGPT;
    what varies lives in the recipe and the objective, not in branches here.

    `objective` names an entry of `objectives.OBJECTIVES`, trained at `strength` (for
    label smoothing, alpha); `config.train.recipe` names the recipe (`recipes.RECIPES`).
    A mixing objective (mixup, CutMix) mixes each batch after the recipe's augmentation,
    with draws from its own generator (`mixing.draw_mix`), so a seed's batches, init and
    augmentation are those of every other objective at that seed, and its partners and
    uniforms are the same at every strength. Distillation trains the config's student
    model (`sweep.distillation.model`) on `teacher`'s logits for the same augmented batch
    (`teacher`: an eval-mode model, see `load_teacher`). `keep_weights` returns the trained
    weights in `RunResult.state_dict`.

    Training accuracy in the history is the fraction of training examples whose argmax is
    the label; for a mixed batch, lam * [argmax = y_a] + (1 - lam) * [argmax = y_b], as the
    mixup authors' code counts it (`mixing.mixed_correct`).
    """
    t_build = time.perf_counter()
    settings = settings or engine_settings(device, config.model.name)
    observer = observer or _NullObserver()
    should_stop = should_stop or (lambda: False)
    spec = get_objective(objective)
    t, info = config.train, splits.info
    model_config = config.model
    if spec.kind == "distillation":
        if teacher is None:
            raise ValueError("distillation needs a teacher model (train_run(..., teacher=))")
        model_config = student_model(config)
        teacher.eval()
    mixes = spec.kind in ("mixup", "cutmix") and strength > 0  # a = 0: no mixing
    mix_fn = {"mixup": mixing.mixup, "cutmix": mixing.cutmix}.get(spec.kind)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(model_config.name, in_channels=info.channels,
                            image_size=info.image_size, num_classes=info.num_classes,
                            width=model_config.width, depth=model_config.depth,
                            hidden=model_config.hidden)  # fmt: skip
    model.to(device)
    if hasattr(model, "init_whitening"):  # data-dependent init (airbench), no RNG involved
        model.init_whitening(splits.train_x[: airbench.WHITEN_IMAGES])
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    autocast = settings.autocast_dtype
    # `forward` runs the batches; `model` keeps its own class for the recipe's hooks and the
    # penultimate features, and both share the same parameters.
    forward = torch.compile(model, backend=COMPILE_BACKEND) if settings.compile else model

    # Separate generators so that augmentation draws never shift the data order.
    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device if device.type == "cuda" else "cpu")
    aug_gen.manual_seed(seed + 1_000_003)
    mix_gen = torch.Generator().manual_seed(seed + 2_000_029)  # partners, lam, boxes
    n_train = len(splits.train_x)
    steps = n_train // t.batch_size
    if steps == 0:
        raise ConfigError(
            [f"train.batch_size={t.batch_size} is larger than the training set ({n_train})"]
        )
    recipe = build_recipe(t, model, info.channels, n_train, steps, aug_gen)
    optimizer = recipe.optimizer
    last, tta = settings.channels_last, config.eval.tta
    eval_bs = settings.eval_batch_size(config.eval.batch_size)
    val_y = splits.val_y.cpu().numpy().astype(np.int64)
    timings = {"build": time.perf_counter() - t_build, "train": 0.0, "validate": 0.0,
               "evaluate": 0.0}  # fmt: skip

    history: list[dict[str, float]] = []
    val_logits = np.empty((0, info.num_classes), dtype=np.float32)
    diverged_epoch: int | None = None
    for epoch in range(1, t.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        recipe.start_epoch(model, epoch)
        observer.epoch_started(epoch, t.epochs, steps)
        perm = torch.randperm(n_train, generator=order_gen).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.float32 if mixes else torch.long)
        lr_now = optimizer.param_groups[recipe.lr_group]["lr"]
        for step in range(steps):
            if should_stop():
                raise Interrupted
            idx = perm[step * t.batch_size : (step + 1) * t.batch_size]
            x, y = splits.train_x[idx], splits.train_y[idx]
            x = recipe.transform(x, idx, epoch).contiguous(memory_format=fmt)
            if mixes:
                draw = mixing.draw_mix(mix_gen, len(x), device)
                x, lam = mix_fn(x, draw, strength)  # type: ignore[misc]
                x = x.contiguous(memory_format=fmt)
                y_b = y[draw.perm]
            with torch.autocast(device.type, dtype=autocast or torch.float32,
                                enabled=autocast is not None):  # fmt: skip
                logits = forward(x)
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = teacher(x)
            if mixes:
                loss = mixed_cross_entropy(logits, y, y_b, lam)
            elif spec.kind == "distillation":
                d = config.sweep.distillation
                loss = distillation_loss(logits, teacher_logits, y, d.temperature, d.hard_weight)
            elif spec.kind == "loss":
                loss = spec.loss(logits, y, strength)
            else:  # mixup or CutMix at a = 0: no mixing, plain cross-entropy
                loss = smoothed_cross_entropy(logits, y, 0.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recipe.after_step(model)
            loss_sum += loss.detach()
            predicted = logits.detach().argmax(1)
            if mixes:
                correct = correct + mixing.mixed_correct(predicted, y, y_b, lam)
            else:
                correct += (predicted == y).sum()
            observer.step_done(step + 1, steps)
        recipe.end_epoch(model, epoch)
        train_loss = float(loss_sum) / steps
        timings["train"] += time.perf_counter() - t0
        row: dict[str, float] = {"epoch": epoch, "lr": lr_now, "train_loss": train_loss}
        if not math.isfinite(train_loss):
            diverged_epoch = epoch
            history.append(row)
            break

        t1 = time.perf_counter()
        net = inference_model(model)  # this epoch's weights, BatchNorm folded
        val_logits = predict_logits(net, splits.val_x, eval_bs, last).cpu().numpy()
        val_logits = val_logits.reshape(-1, info.num_classes)  # (0, K) without a val split
        row["train_acc"] = float(correct) / (steps * t.batch_size)
        if not np.isfinite(val_logits).all():  # weights blew up without a NaN loss
            diverged_epoch = epoch
            history.append(row)
            break
        row.update(_val_row(val_logits, val_y, config.eval.n_bins))
        timings["validate"] += time.perf_counter() - t1
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        observer.epoch_done(epoch, t.epochs, row)

    n_params = count_parameters(model)
    weights = None
    if keep_weights and diverged_epoch is None:
        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    engine_record = settings.as_dict()
    if t.recipe == "airbench94":
        engine_record["recipe"] = airbench.SETTINGS

    def result(status: str, *rest: Any, epoch: int | None = None) -> RunResult:
        eval_seconds = timings["validate"] + timings["evaluate"]
        predictions, test_metrics, penultimate = rest or (None, {}, None)
        return RunResult(status, history, predictions, test_metrics, epoch, n_params,
                         timings["train"], eval_seconds, penultimate,
                         extra={"engine": engine_record}, timings=timings,
                         state_dict=weights)  # fmt: skip

    if diverged_epoch is not None:
        return result("diverged", epoch=diverged_epoch)

    # The final evaluation: one pass per split, on the weights of the last epoch (`net`).
    # val_logits is the last epoch's validation (the weights have not changed since); with
    # test-time augmentation, val is predicted again the way test is, for temperature fits.
    t2 = time.perf_counter()
    if tta:
        val_logits = predict_logits(net, splits.val_x, eval_bs, last, tta).cpu().numpy()
        val_logits = val_logits.reshape(-1, info.num_classes)
    features = None
    if info.num_classes >= len(PROJECTION_CLASSES) and hasattr(net, "features"):
        test_z, features = predict_with_features(net, splits.test_x, eval_bs, last, tta)
    else:
        test_z = predict_logits(net, splits.test_x, eval_bs, last, tta)
    test_logits = test_z.cpu().numpy()
    # The true-class logit gap on a fixed training subset: its first examples in the
    # split's stored order, without augmentation or test-time views.
    n_gap = min(TRAIN_GAP_EXAMPLES, n_train)
    train_logits = predict_logits(net, splits.train_x[:n_gap], eval_bs, last).cpu().numpy()
    if not all(np.isfinite(z).all() for z in (test_logits, val_logits, train_logits)):
        # Finite training loss but non-finite logits at evaluation: treat as diverged.
        timings["evaluate"] += time.perf_counter() - t2
        return result("diverged", epoch=t.epochs)
    test_y = splits.test_y.cpu().numpy().astype(np.int64)
    train_gap_y = splits.train_y[:n_gap].cpu().numpy().astype(np.int64)
    predictions = {
        "val_logits": val_logits.astype(np.float32),
        "val_labels": val_y,
        "test_logits": test_logits.astype(np.float32),
        "test_labels": test_y,
        "train_true_class_gap": true_class_gap(train_logits, train_gap_y),
    }
    test_metrics = metrics.all_metrics(test_logits, test_y, n_bins=config.eval.n_bins)
    penultimate = None
    if features is not None:
        penultimate = penultimate_sample(net, features, splits.test_y)
    timings["evaluate"] += time.perf_counter() - t2
    return result("done", predictions, test_metrics, penultimate)
