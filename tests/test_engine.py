"""The training loop: determinism, pairing across alpha, divergence, augmentation, LR."""

from __future__ import annotations

import dataclasses
import math
import shutil

import numpy as np
import pytest
import torch

from lsexp.config import validate
from lsexp.training import engine
from lsexp.training.augment import random_crop_flip
from lsexp.training.data import load_splits
from lsexp.training.engine import train_run
from lsexp.training.objectives import OBJECTIVES
from lsexp.training.recipes import lr_lambda
from tests.conftest import tiny_config_dict

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def splits():
    return load_splits("fashion_mnist_mini", None, val_size=500)


def _config(**sections):
    return validate(tiny_config_dict(**sections), "<test>")


def test_same_run_twice_gives_identical_metrics(splits):
    config = _config()
    a = train_run(config, 0.1, 3, splits, CPU)
    b = train_run(config, 0.1, 3, splits, CPU)
    assert a.status == b.status == "done"
    assert a.test_metrics == b.test_metrics
    np.testing.assert_array_equal(a.predictions["test_logits"], b.predictions["test_logits"])


def test_different_seed_gives_different_run(splits):
    config = _config()
    a = train_run(config, 0.1, 0, splits, CPU)
    b = train_run(config, 0.1, 1, splits, CPU)
    assert not np.array_equal(a.predictions["test_logits"], b.predictions["test_logits"])


def test_runs_are_paired_by_seed_across_alpha(splits, monkeypatch):
    """Same seed -> same initial weights and the same batches, whatever alpha is."""
    seen: dict[float, dict] = {}
    real_build = engine.build_model
    real_loss = OBJECTIVES["label_smoothing"].loss

    def spy_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        seen[current]["init"] = {k: v.clone() for k, v in model.state_dict().items()}
        return model

    def spy_loss(logits, y, alpha):
        seen[current]["targets"].append(y.clone())
        return real_loss(logits, y, alpha)

    monkeypatch.setattr(engine, "build_model", spy_build)
    # A new objective is one registry entry: the engine trains it by name.
    spy = dataclasses.replace(OBJECTIVES["label_smoothing"], name="spy", loss=spy_loss)
    monkeypatch.setitem(OBJECTIVES, "spy", spy)
    config = _config(train={"augment": True})
    for current in (0.0, 0.3):
        seen[current] = {"targets": []}
        train_run(config, current, 7, splits, CPU, objective="spy")
    init0, init3 = seen[0.0]["init"], seen[0.3]["init"]
    assert all(torch.equal(init0[k], init3[k]) for k in init0)
    t0, t3 = seen[0.0]["targets"], seen[0.3]["targets"]
    assert len(t0) == len(t3) > 1
    assert all(torch.equal(x, y) for x, y in zip(t0, t3, strict=True))


def test_training_does_not_touch_global_rng(splits):
    before = torch.random.get_rng_state()
    train_run(_config(), 0.1, 0, splits, CPU)
    assert torch.equal(before, torch.random.get_rng_state())


def test_history_has_the_promised_columns(splits):
    result = train_run(_config(), 0.1, 0, splits, CPU)
    assert len(result.history) == 2
    for key in ("train_loss", "train_acc", "val_acc", "val_nll", "val_ece", "val_logit_gap"):
        assert all(math.isfinite(row[key]) for row in result.history), key
    assert result.predictions["val_logits"].shape == (500, 10)
    assert result.predictions["test_logits"].dtype == np.float32
    assert result.predictions["test_labels"].shape == (2000,)


def test_learns_something(splits):
    result = train_run(_config(train={"epochs": 3}), 0.0, 0, splits, CPU)
    assert result.test_metrics["accuracy"] > 0.6  # 10 classes: chance is 0.1


def test_nan_loss_is_recorded_as_diverged(splits, monkeypatch):
    real_loss = OBJECTIVES["label_smoothing"].loss
    calls = {"n": 0}

    def poisoned(logits, y, alpha):
        calls["n"] += 1
        loss = real_loss(logits, y, alpha)
        return loss * math.nan if calls["n"] > 20 else loss  # epoch 2 (17 steps/epoch)

    poisoned_objective = dataclasses.replace(OBJECTIVES["label_smoothing"], loss=poisoned)
    monkeypatch.setitem(OBJECTIVES, "poisoned", poisoned_objective)
    result = train_run(_config(train={"epochs": 3}), 0.1, 0, splits, CPU, objective="poisoned")
    assert result.status == "diverged"
    assert result.diverged_epoch == 2
    assert result.predictions is None


def test_stop_request_interrupts_at_a_batch_boundary(splits):
    with pytest.raises(engine.Interrupted):
        train_run(_config(), 0.1, 0, splits, CPU, should_stop=lambda: True)


def test_random_crop_flip_identity_and_shift():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(random_crop_flip(x, gen, pad=0, flip=False), x)
    out = random_crop_flip(x, torch.Generator().manual_seed(1), pad=2, flip=True)
    assert out.shape == x.shape
    # Every output row is a (possibly flipped, shifted, zero-filled) window of the input.
    for i in range(2):
        vals = set(out[i].flatten().tolist()) - {0.0}
        assert vals <= set(x[i].flatten().tolist())


def test_random_crop_flip_flips_half_the_time():
    x = torch.zeros(1000, 1, 4, 4)
    x[:, :, :, 0] = 1.0  # a bar on the left edge
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=0, flip=True)
    flipped = (out[:, 0, 0, 3] == 1.0).float().mean().item()
    assert 0.4 < flipped < 0.6


def test_lr_schedules():
    cos = lr_lambda("cosine", 100, 0)
    assert cos(0) == pytest.approx(1.0)
    assert cos(50) == pytest.approx(0.5)
    assert cos(100) == pytest.approx(0.0, abs=1e-12)
    warm = lr_lambda("cosine", 100, 10)
    assert warm(0) == pytest.approx(0.1)
    assert warm(9) == pytest.approx(1.0)
    one = lr_lambda("onecycle", 100, 0)
    assert one(0) == pytest.approx(0.1)
    assert one(30) == pytest.approx(1.0)
    assert one(100) == pytest.approx(0.0)
    assert lr_lambda("constant", 100, 0)(77) == 1.0


def test_resolve_device():
    assert engine.resolve_device("cpu") == CPU
    assert engine.resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        from lsexp.errors import LsexpError

        with pytest.raises(LsexpError, match="CUDA is not available"):
            engine.resolve_device("cuda")


def test_engine_settings_per_device():
    cpu = engine.engine_settings(CPU, "cnn")
    assert cpu.channels_last and cpu.autocast_dtype is None
    assert not engine.engine_settings(CPU, "mlp").channels_last
    # torch.device("cuda") can be built without a GPU: the choice itself is CPU-testable.
    cuda = engine.engine_settings(torch.device("cuda"), "resnet")
    assert cuda.channels_last and cuda.autocast_dtype == torch.bfloat16
    assert engine.engine_settings(torch.device("mps"), "cnn").autocast_dtype is None


@pytest.mark.slow
def test_gpu_code_path_runs_on_cpu(splits):
    """channels_last + bf16 autocast (the CUDA settings) through the whole loop, on CPU."""
    config = _config(model={"name": "cnn", "width": 8}, train={"epochs": 2, "batch_size": 64})
    gpu_like = engine.EngineSettings(channels_last=True, autocast_dtype=torch.bfloat16)
    result = train_run(config, 0.1, 0, splits, CPU, settings=gpu_like)
    assert result.status == "done"
    assert result.predictions["test_logits"].dtype == np.float32  # metrics from float32
    assert result.test_metrics["accuracy"] > 0.5  # it learns (chance: 0.1)
    assert result.extra["engine"]["autocast"] == "torch.bfloat16"
    plain = train_run(config, 0.1, 0, splits, CPU,
                      settings=engine.EngineSettings(False, None))  # fmt: skip
    # Same init and batches; bf16 changes the numbers only a little.
    assert abs(plain.test_metrics["accuracy"] - result.test_metrics["accuracy"]) < 0.1


def test_non_finite_validation_logits_mean_diverged(splits, monkeypatch):
    real = engine.predict_logits

    def poisoned(model, x, *args, **kwargs):
        out = real(model, x, *args, **kwargs).clone()
        out[0, 0] = math.inf
        return out

    monkeypatch.setattr(engine, "predict_logits", poisoned)
    result = train_run(_config(), 0.1, 0, splits, CPU)
    assert result.status == "diverged" and result.diverged_epoch == 1


def test_compile_wraps_the_forward_pass_and_changes_no_number(splits, monkeypatch):
    # The "eager" backend runs the same kernels, so the numbers must match exactly; the
    # real compiler (inductor) is checked in the slow test below.
    monkeypatch.setattr(engine, "COMPILE_BACKEND", "eager")
    calls = []
    real_compile = torch.compile

    def spy(model, **kwargs):
        calls.append(kwargs)
        return real_compile(model, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    config = _config()
    compiled = train_run(config, 0.1, 0, splits, CPU,
                         settings=engine.EngineSettings(False, None, compile=True))  # fmt: skip
    plain = train_run(config, 0.1, 0, splits, CPU, settings=engine.EngineSettings(False, None))
    assert calls == [{"backend": "eager"}]
    assert compiled.extra["engine"]["compile"] is True
    assert plain.extra["engine"]["compile"] is False
    np.testing.assert_array_equal(
        compiled.predictions["test_logits"], plain.predictions["test_logits"]
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile's inductor backend needs a C++ compiler")  # fmt: skip
def test_compile_with_inductor_trains_the_same_model(splits):
    config = _config(train={"epochs": 1})
    compiled = train_run(config, 0.1, 0, splits, CPU,
                         settings=engine.EngineSettings(False, None, compile=True))  # fmt: skip
    plain = train_run(config, 0.1, 0, splits, CPU, settings=engine.EngineSettings(False, None))
    assert compiled.status == "done"
    # Fused kernels change the rounding, not the model.
    np.testing.assert_allclose(
        compiled.predictions["test_logits"], plain.predictions["test_logits"], atol=1e-3
    )
