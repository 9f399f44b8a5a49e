"""CUDA-only checks (skipped without a GPU): the engine's GPU settings on the real device.

The logic of each setting is tested on the CPU elsewhere (test_engine.py, test_airbench.py);
these check that the CUDA kernels agree with it. Run them with the device check:
`python -m pytest -q tests/test_gpu.py && python benchmarks/gpu_check.py`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsexp.config import validate
from lsexp.training import engine
from tests.conftest import tiny_config_dict

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")


def _fast_config(epochs: int = 4):
    return validate(tiny_config_dict(
        data={"name": "cifar10"},
        model={"name": "airbench", "width": 16},
        train={"recipe": "airbench94", "lr": 11.5, "momentum": 0.85, "weight_decay": 0.0153,
               "epochs": epochs, "batch_size": 256},
        eval={"tta": 2},
    ), "<gpu>")  # fmt: skip


@pytest.fixture(scope="module")
def rgb():
    from benchmarks.gpu_check import synthetic_splits

    return synthetic_splits(CUDA, (4096, 512, 1024))


def test_settings_on_cuda_are_bf16_and_channels_last():
    s = engine.engine_settings(CUDA, "airbench")
    assert s.autocast_dtype == torch.bfloat16 and s.channels_last


def test_fast_recipe_trains_on_cuda_and_is_deterministic_enough(rgb):
    config = _fast_config()
    a = engine.train_run(config, 0.2, 0, rgb, CUDA)
    b = engine.train_run(config, 0.2, 0, rgb, CUDA)
    assert a.status == "done" and a.predictions["test_logits"].dtype == np.float32
    assert a.test_metrics["accuracy"] > 0.5  # chance: 0.1
    # cuDNN may pick different kernels run to run; the model must be the same model.
    agree = a.predictions["test_logits"].argmax(1) == b.predictions["test_logits"].argmax(1)
    assert agree.mean() > 0.97


def test_tta_on_cuda_matches_cpu(rgb):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 30 * 30, 10))  # fmt: skip
    x = rgb.test_x[:64]
    on_gpu = engine.predict_logits(net.to(CUDA), x, 32, tta=2).cpu()
    on_cpu = engine.predict_logits(net.cpu(), x.cpu(), 32, tta=2)
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-3)
