"""The engine's GPU settings on the real device, and the same code path on the CPU.

Each test runs on CUDA (skipped without a GPU) and on the CPU with the settings the engine
picks for CUDA (bf16 autocast, channels_last) and smaller sizes, so the checks that only a
GPU machine can answer run end to end everywhere and cannot rot between GPU sessions. On
the device machine: `python -m pytest -q tests/test_gpu.py && python benchmarks/gpu_check.py`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsexp.config import validate
from lsexp.training import engine
from tests.conftest import tiny_config_dict

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
# cuda: what the check is for; cpu: its code path (slow marker: a few seconds per test).
DEVICES = [
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="needs a CUDA GPU")),
    pytest.param("cpu", marks=pytest.mark.slow),
]  # fmt: skip
SIZES = {"cuda": (4096, 512, 1024), "cpu": (1024, 256, 256)}


def _fast_config(epochs: int = 4):
    return validate(tiny_config_dict(
        data={"name": "cifar10"},
        model={"name": "airbench", "width": 16},
        train={"recipe": "airbench94", "lr": 11.5, "momentum": 0.85, "weight_decay": 0.0153,
               "epochs": epochs, "batch_size": 256},
        eval={"tta": 2},
    ), "<gpu>")  # fmt: skip


@pytest.fixture(scope="module", params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(scope="module")
def rgb(device):
    from benchmarks.gpu_check import synthetic_splits

    return synthetic_splits(device, SIZES[device.type])


def test_settings_on_cuda_are_bf16_and_channels_last():
    s = engine.engine_settings(CUDA, "airbench")  # a pure function of the device type
    assert s.autocast_dtype == torch.bfloat16 and s.channels_last
    assert s.eval_batch_cap is None  # CUDA predicts in the configured eval.batch_size


def test_fast_recipe_trains_and_is_deterministic_enough(device, rgb):
    config = _fast_config()
    settings = engine.engine_settings(CUDA, config.model.name)  # the CUDA settings, anywhere
    a = engine.train_run(config, 0.2, 0, rgb, device, settings=settings)
    b = engine.train_run(config, 0.2, 0, rgb, device, settings=settings)
    assert a.status == "done" and a.predictions["test_logits"].dtype == np.float32
    assert a.extra["engine"]["autocast"] == "torch.bfloat16"
    assert a.test_metrics["accuracy"] > 0.5  # chance: 0.1
    assert a.predictions["train_true_class_gap"].shape == (min(5000, SIZES[device.type][0]),)
    assert a.penultimate is not None and a.penultimate["features"].shape[0] > 0
    # cuDNN may pick different kernels run to run; the model must be the same model.
    agree = a.predictions["test_logits"].argmax(1) == b.predictions["test_logits"].argmax(1)
    assert agree.mean() > 0.97


def test_tta_on_the_device_matches_cpu(device, rgb):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 30 * 30, 10))  # fmt: skip
    x = rgb.test_x[:64]
    on_device = engine.predict_logits(net.to(device), x, 32, tta=2).cpu()
    on_cpu = engine.predict_logits(net.cpu(), x.cpu(), 32, tta=2)
    torch.testing.assert_close(on_device, on_cpu, rtol=1e-3, atol=1e-3)
