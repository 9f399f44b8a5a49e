"""A `Report` made of synthetic runs, for figure and page tests that need no training.

Logits are drawn so that α = 0 is over-confident and large α under-confident, as in
real sweeps; the metrics are computed by the report's own `run_metrics`, so every
figure sees the numbers it would see from a sweep folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsexp.analysis.posthoc import DEFAULT_CALIBRATORS
from lsexp.config import validate
from lsexp.reporting.report import AlphaGroup, Report, run_metrics
from lsexp.reporting.runs import RunLogits
from tests.conftest import tiny_config_dict

QUICKSTART_ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass
class FakeRun:
    """What the report reads from a stored run beyond its metrics."""

    alpha: float
    seed: int
    pen: dict[str, np.ndarray] | None
    record: dict

    def penultimate(self):
        return self.pen


def _logits(rng, n: int, k: int, alpha: float, acc: float) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, k, n)
    pred = np.where(rng.uniform(size=n) < acc, labels, (labels + rng.integers(1, k, n)) % k)
    # A sharper top logit for small α (over-confident), flatter for large α.
    scale = 9.0 * (1 - alpha) ** 2 + 1.0
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), pred] += scale * rng.uniform(0.3, 1.0, n)
    return logits.astype(np.float32), labels


def _penultimate(rng, alpha: float) -> dict[str, np.ndarray]:
    d, per = 16, 60
    templates = rng.normal(0, 1, (3, d))
    spread = 2.0 * (1 - alpha) + 0.2  # smoothing: tighter clusters
    feats = np.concatenate([templates[i] * 3 + rng.normal(0, spread, (per, d)) for i in range(3)])
    return {
        "features": feats.astype(np.float32),
        "labels": np.repeat(np.arange(3), per),
        "templates": templates.astype(np.float32),
        "classes": np.arange(3),
    }


def synthetic_report(
    tmp: Path,
    alphas=QUICKSTART_ALPHAS,
    seeds=(0, 1, 2),
    *,
    n_test: int = 2000,
    accuracy=None,
    missing: dict[float, int] | None = None,
    epochs: int = 12,
) -> Report:
    """A report over `alphas` × `seeds`. accuracy: α → exact test accuracy of every seed
    (default ~0.85 with noise); missing: α → seeds left out (diverged), so n varies."""
    config = validate(
        tiny_config_dict(
            data={"val_size": 1000},
            sweep={"alpha": list(alphas), "seeds": list(seeds)},
            eval={"n_bins": 15},
            train={"epochs": epochs},
        ),
        "<test>",
    )
    groups = []
    for a in alphas:
        g = AlphaGroup(a)
        drop = (missing or {}).get(a, 0)
        g.n_diverged = drop
        for s in seeds[: len(seeds) - drop]:
            rng = np.random.default_rng([int(a * 1000), s])
            acc = (accuracy or {}).get(a, 0.85 + rng.normal(0, 0.005))
            test_logits, test_labels = _logits(rng, n_test, 10, a, acc)
            if accuracy is not None:  # exactly this many correct
                correct = round(acc * n_test)
                top = test_logits.argmax(1)
                test_labels = np.where(np.arange(n_test) < correct, top, (top + 1) % 10)
            val_logits, val_labels = _logits(rng, 1000, 10, a, acc)
            preds = {"test_logits": test_logits, "test_labels": test_labels,
                     "val_logits": val_logits, "val_labels": val_labels}  # fmt: skip
            row = {"alpha": a, "seed": s, "status": "done"}
            row.update(run_metrics(preds, 15, DEFAULT_CALIBRATORS))
            cap = np.log(10 * (1 - a) / a + 1) if a > 0 else 12.0
            preds["train_true_class_gap"] = rng.normal(0.95 * cap, 0.1 * cap, 500)
            g.logits.append(RunLogits(preds, 15, DEFAULT_CALIBRATORS))
            row["run_dir"] = f"run-a{a}-s{s}"
            g.runs.append(row)
            cap = np.log(10 * (1 - a) / a + 1) if a > 0 else 12.0
            g.histories.append([
                {"epoch": e, "val_logit_gap": cap * (1 - np.exp(-e / 3)) + 0.05 * s}
                for e in range(1, epochs + 1)
            ])  # fmt: skip
            g.stored.append(FakeRun(a, s, _penultimate(rng, a),
                                    {"provenance": {"device_name": "Test CPU"}}))  # fmt: skip
        groups.append(g)
    rows = [r for g in groups for r in g.runs]
    return Report(tmp, config, groups, rows, 0, 0, [], [], "t")
