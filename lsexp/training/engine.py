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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from lsexp.analysis import metrics
from lsexp.config import SweepConfig
from lsexp.errors import ConfigError
from lsexp.training import airbench
from lsexp.training.data import Splits
from lsexp.training.models import build_model, count_parameters
from lsexp.training.objectives import DEFAULT_OBJECTIVE, get_objective
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


@dataclass(frozen=True)
class EngineSettings:
    """How a run uses its device; recorded in each run's provenance.

    channels_last: NHWC memory layout for conv nets: faster per step on the CPU too
    (README, Performance, has the measured numbers), and on CUDA it is what the tensor
    cores want. autocast_dtype: bf16 autocast for the training forward pass on CUDA (no
    loss scaling needed, unlike fp16); the loss and every metric are computed from float32
    logits, and evaluation runs in float32. runs_at_once: how many runs share the machine
    (`lsexp sweep --workers N`), which a run's speed depends on.
    """

    channels_last: bool
    autocast_dtype: torch.dtype | None
    compile: bool = False  # torch.compile the model (`lsexp sweep --compile`)
    runs_at_once: int = 1

    def as_dict(self) -> dict[str, Any]:
        dtype = None if self.autocast_dtype is None else str(self.autocast_dtype)
        return {"data": "device-resident tensors, batches by index",
                "channels_last": self.channels_last, "autocast": dtype,
                "compile": self.compile, "runs_at_once": self.runs_at_once}  # fmt: skip


def engine_settings(
    device: torch.device, model_name: str, compile: bool = False, runs_at_once: int = 1
) -> EngineSettings:
    """channels_last for conv nets on CPU and CUDA, bf16 autocast on CUDA; torch.compile
    only when asked: no gain seen on the 2-core CPU, and compiling costs time every run."""
    conv = model_name in ("cnn", "resnet", "airbench")
    return EngineSettings(
        channels_last=conv and device.type in ("cpu", "cuda"),
        autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
        compile=compile,
        runs_at_once=runs_at_once,
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


@torch.inference_mode()
def penultimate_sample(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> dict[str, np.ndarray]:
    """What the penultimate-layer figure of Müller et al. (2019, Fig. 1) needs, saved per run.

    The first `PROJECTION_PER_CLASS` test examples of each of `PROJECTION_CLASSES`: their
    penultimate activations, labels, and the rows ("templates") of the last layer's weight
    matrix for those classes. `report` projects the activations onto the plane through
    the three templates, so no model is kept and nothing is retrained.
    """
    was_training = model.training
    model.eval()
    idx = torch.cat([(y == k).nonzero().flatten()[:PROJECTION_PER_CLASS]
                     for k in PROJECTION_CLASSES])  # fmt: skip
    feats = [model.features(x[idx[i : i + batch_size]]).float()
             for i in range(0, len(idx), batch_size)]  # fmt: skip
    model.train(was_training)
    classes = list(PROJECTION_CLASSES)
    return {
        "features": torch.cat(feats).cpu().numpy().astype(np.float32),
        "labels": y[idx].cpu().numpy().astype(np.int64),
        "templates": model.classifier.weight[classes].detach().float().cpu().numpy(),
        "classes": np.array(classes, dtype=np.int64),
    }


def _tta_logits(model: torch.nn.Module, x: torch.Tensor, level: int, fmt) -> torch.Tensor:
    """Logits averaged over test-time views (airbench94's scheme; see lsexp/training/airbench.py).

    Level 0: the image. Level 1: mean over the image and its mirror. Level 2: half of
    level 1, plus half the mean of level 1 on the image shifted one pixel up-left and one
    pixel down-right (reflect padding), i.e. 6 views.
    """

    def plain(z: torch.Tensor) -> torch.Tensor:
        return model(z.contiguous(memory_format=fmt)).float()

    def mirror(z: torch.Tensor) -> torch.Tensor:
        return 0.5 * plain(z) + 0.5 * plain(z.flip(-1))

    if level == 0:
        return plain(x)
    logits = mirror(x)
    if level == 1:
        return logits
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * (mirror(padded[:, :, :h, :w]) + mirror(padded[:, :, 2 : h + 2, 2 : w + 2]))
    return 0.5 * logits + 0.5 * shifted


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
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
) -> RunResult:
    """Train one run and evaluate it on val (every epoch) and test (once, at the end).

    Longer than the other functions on purpose: it is the training loop read top to
    bottom (build, loop over epochs and batches, evaluate), as in airbench or nanoGPT;
    what varies lives in the recipe and the objective, not in branches here.

    `objective` names an entry of `objectives.OBJECTIVES`, trained at `strength` (for
    label smoothing, alpha); `config.train.recipe` names the recipe (`recipes.RECIPES`).
    """
    settings = settings or engine_settings(device, config.model.name)
    observer = observer or _NullObserver()
    should_stop = should_stop or (lambda: False)
    loss_fn = get_objective(objective).loss
    t, info = config.train, splits.info

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config.model.name, in_channels=info.channels,
                            image_size=info.image_size, num_classes=info.num_classes,
                            width=config.model.width, depth=config.model.depth,
                            hidden=config.model.hidden)  # fmt: skip
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
    n_train = len(splits.train_x)
    steps = n_train // t.batch_size
    if steps == 0:
        raise ConfigError(
            [f"train.batch_size={t.batch_size} is larger than the training set ({n_train})"]
        )
    recipe = build_recipe(t, model, info.channels, n_train, steps, aug_gen)
    optimizer = recipe.optimizer

    history: list[dict[str, float]] = []
    val_logits = np.empty((0, info.num_classes), dtype=np.float32)
    train_seconds = eval_seconds = 0.0
    diverged_epoch: int | None = None
    for epoch in range(1, t.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        recipe.start_epoch(model, epoch)
        observer.epoch_started(epoch, t.epochs, steps)
        perm = torch.randperm(n_train, generator=order_gen).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        lr_now = optimizer.param_groups[recipe.lr_group]["lr"]
        for step in range(steps):
            if should_stop():
                raise Interrupted
            idx = perm[step * t.batch_size : (step + 1) * t.batch_size]
            x, y = splits.train_x[idx], splits.train_y[idx]
            x = recipe.transform(x, idx, epoch).contiguous(memory_format=fmt)
            with torch.autocast(device.type, dtype=autocast or torch.float32,
                                enabled=autocast is not None):  # fmt: skip
                logits = forward(x)
            loss = loss_fn(logits, y, strength)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recipe.after_step(model)
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(1) == y).sum()
            observer.step_done(step + 1, steps)
        recipe.end_epoch(model, epoch)
        train_loss = float(loss_sum) / steps
        train_seconds += time.perf_counter() - t0
        row: dict[str, float] = {"epoch": epoch, "lr": lr_now, "train_loss": train_loss}
        if not math.isfinite(train_loss):
            diverged_epoch = epoch
            history.append(row)
            break

        t1 = time.perf_counter()
        val_logits = predict_logits(forward, splits.val_x, config.eval.batch_size,
                                    settings.channels_last).cpu().numpy()  # fmt: skip
        row["train_acc"] = float(correct) / (steps * t.batch_size)
        if not np.isfinite(val_logits).all():  # weights blew up without a NaN loss
            diverged_epoch = epoch
            history.append(row)
            break
        row.update(_val_row(val_logits, splits.val_y.cpu().numpy(), config.eval.n_bins))
        eval_seconds += time.perf_counter() - t1
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        observer.epoch_done(epoch, t.epochs, row)

    n_params = count_parameters(model)
    engine_record = settings.as_dict()
    if t.recipe == "airbench94":
        engine_record["recipe"] = airbench.SETTINGS
    if diverged_epoch is not None:
        return RunResult(
            "diverged",
            history,
            None,
            {},
            diverged_epoch,
            n_params,
            train_seconds,
            eval_seconds,
            extra={"engine": engine_record},
        )

    t2 = time.perf_counter()
    # val_logits is the last epoch's evaluation: the weights have not changed since. With
    # test-time augmentation, val is predicted again the way test is, for temperature fits.
    last, tta, eval_bs = settings.channels_last, config.eval.tta, config.eval.batch_size
    if tta:
        val_logits = predict_logits(forward, splits.val_x, eval_bs, last, tta).cpu().numpy()
    test_logits = predict_logits(forward, splits.test_x, eval_bs, last, tta).cpu().numpy()
    test_y = splits.test_y.cpu().numpy()
    if not (np.isfinite(test_logits).all() and np.isfinite(val_logits).all()):
        # Finite training loss but non-finite logits at evaluation: treat as diverged.
        return RunResult(
            "diverged", history, None, {}, t.epochs, n_params, train_seconds, eval_seconds,
            extra={"engine": engine_record},
        )  # fmt: skip
    predictions = {
        "val_logits": val_logits.astype(np.float32),
        "val_labels": splits.val_y.cpu().numpy().astype(np.int64),
        "test_logits": test_logits.astype(np.float32),
        "test_labels": test_y.astype(np.int64),
    }
    test_metrics = metrics.all_metrics(test_logits, test_y, n_bins=config.eval.n_bins)
    penultimate = None
    if info.num_classes >= len(PROJECTION_CLASSES) and hasattr(model, "features"):
        penultimate = penultimate_sample(model, splits.test_x, splits.test_y, eval_bs)
    eval_seconds += time.perf_counter() - t2
    return RunResult(
        "done", history, predictions, test_metrics, None, n_params, train_seconds, eval_seconds,
        penultimate,
        extra={"engine": engine_record},
    )  # fmt: skip
