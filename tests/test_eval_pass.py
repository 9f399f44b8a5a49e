"""The final evaluation pass: folded BatchNorm, logits and features in one pass, the
training-set true-class gap (saved, read back, packed), and the phase timings."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lsexp.config import validate
from lsexp.results.store import ResultsStore, StoredRun, read_predictions
from lsexp.running.sweep import run_sweep
from lsexp.training import engine
from lsexp.training.data import load_splits
from lsexp.training.models import build_model
from tests.conftest import tiny_config_dict
from tests.fakedata import write_fake_mnist

REPO = Path(__file__).resolve().parent.parent
FIXTURE_RUNS = REPO / "tests" / "fixtures" / "results_v0" / "runs"


def _trained_cnn(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("cnn", in_channels=1, image_size=28, num_classes=10, width=4)
    model.train()
    with torch.no_grad():  # BatchNorm running statistics away from their initial values
        for _ in range(3):
            model(torch.randn(64, 1, 28, 28) * 2 + 0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_inference_model_folds_batchnorm_and_computes_the_same_function():
    model = _trained_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net = engine.inference_model(model)
    kinds = [type(m) for m in net.body]
    assert torch.nn.BatchNorm2d not in kinds and kinds.count(torch.nn.Identity) == 4
    pools = [i for i, k in enumerate(kinds) if k is torch.nn.MaxPool2d]
    assert pools and all(kinds[i + 1] is torch.nn.ReLU for i in pools)  # pool, then ReLU
    assert model.training  # the trained model is left as it was
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    x = torch.randn(50, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(engine.predict_logits(net, x, 16), want, rtol=1e-5, atol=1e-5)


def test_one_pass_gives_the_logits_and_the_features():
    net = engine.inference_model(_trained_cnn())
    x = torch.randn(40, 1, 28, 28)
    for tta in (0, 2):
        logits, feats = engine.predict_with_features(net, x, 16, tta=tta)
        torch.testing.assert_close(logits, engine.predict_logits(net, x, 16, tta=tta))
        with torch.no_grad():
            torch.testing.assert_close(feats, net.features(x))  # of the image itself


def test_true_class_gap_formula():
    z = np.array([[3.0, 1.0, -1.0], [0.0, 2.0, 0.0]], dtype=np.float32)
    gap = engine.true_class_gap(z, np.array([0, 2]))
    assert gap.dtype == np.float32
    np.testing.assert_allclose(gap, [3.0 - 0.0, 0.0 - 1.0])


@pytest.fixture
def fake_sweep(tmp_path, monkeypatch):
    """A 1-epoch cnn sweep on fake Fashion-MNIST IDX files; the trained model is kept."""
    write_fake_mnist(tmp_path / "data", "FashionMNIST", n_train=300, n_test=60)
    config = validate(tiny_config_dict(
        data={"name": "fashion_mnist", "val_size": 50, "root": str(tmp_path / "data")},
        model={"name": "cnn", "width": 4},
        train={"epochs": 1, "batch_size": 32},
        sweep={"alpha": [0.1], "seeds": [0]},
    ), "<test>")  # fmt: skip
    models = []
    real_build = engine.build_model

    def spy(*args, **kwargs):
        models.append(real_build(*args, **kwargs))
        return models[-1]

    monkeypatch.setattr(engine, "build_model", spy)
    monkeypatch.setattr(engine, "TRAIN_GAP_EXAMPLES", 100)  # a subset: the first 100
    result = run_sweep(config, tmp_path / "out", device="cpu")
    assert [o.status for o in result.outcomes] == ["done"]
    return config, models[0], tmp_path / "out"


def test_saved_train_gap_equals_a_float64_recomputation(fake_sweep):
    config, model, out = fake_sweep
    (run,) = ResultsStore(out).scan()[0]
    saved = run.train_true_class_gap()
    assert saved is not None and saved.dtype == np.float32 and saved.shape == (100,)
    splits = load_splits("fashion_mnist", Path(config.data.root), config.data.val_size)
    x, y = splits.train_x[:100], splits.train_y[:100].numpy()
    model.eval()  # the trained model itself, BatchNorm not folded
    with torch.no_grad():
        z = model(x).double().numpy()
    want = z[np.arange(100), y] - (z.sum(1) - z[np.arange(100), y]) / (z.shape[1] - 1)
    np.testing.assert_allclose(saved, want, rtol=1e-5, atol=1e-5)
    record = run.record
    assert {"load_data", "build", "train", "validate", "evaluate", "write"} <= set(
        record["timings"]
    )
    assert record["eval_seconds"] == pytest.approx(
        record["timings"]["validate"] + record["timings"]["evaluate"], abs=2e-3
    )


def test_packing_keeps_the_gap_as_float16(fake_sweep, tmp_path):
    _, _, out = fake_sweep
    packed = tmp_path / "packed"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "pack_results.py"), str(out),
                           str(packed)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (src,) = ResultsStore(out).scan()[0]
    (dst,) = ResultsStore(packed).scan()[0]
    with np.load(dst.path / "predictions.npz", allow_pickle=False) as f:
        assert f["train_true_class_gap"].dtype == np.float16
    dst.check()  # the digest run.json records is that of the packed file
    np.testing.assert_allclose(dst.train_true_class_gap(), src.train_true_class_gap(),
                               rtol=1e-3, atol=1e-2)  # fmt: skip


def test_runs_written_before_the_gap_read_fine():
    folder = next(p for p in sorted(FIXTURE_RUNS.iterdir()) if (p / "run.json").exists())
    preds = read_predictions(folder / "predictions.npz")
    assert "train_true_class_gap" not in preds and "test_logits" in preds
    run = StoredRun(folder, {})
    assert run.train_true_class_gap() is None


def test_copy_is_independent_of_later_training():
    model = _trained_cnn()
    net = engine.inference_model(model)
    frozen = copy.deepcopy(net.state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, frozen[k])
