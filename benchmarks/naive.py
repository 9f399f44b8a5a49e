"""The naive baseline for `make bench`: how most people write one label-smoothing run.

torchvision Dataset with per-sample transforms (ToTensor + Normalize) behind a
DataLoader, one process per run, the validation set evaluated after every epoch through a
DataLoader too, and `F.cross_entropy(label_smoothing=alpha)`. Nothing is deliberately
slow: the model, optimizer, schedule, batch size, train/val split and epochs are the
same as lsexp's, and the DataLoader's worker count is the faster of 0 and 2 on this
machine (chosen by the bench). Prints one JSON line with the test accuracy.

    python benchmarks/naive.py --root DIR --alpha 0.1 --seed 0 --epochs 1 --workers 0
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from lsexp.training.models import build_model


def evaluate(model, loader) -> tuple[float, float]:
    model.eval()
    correct = total = 0
    nll = 0.0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            nll += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            total += len(y)
    model.train()
    return correct / total, nll / total


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--alpha", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--val-size", type=int, default=5000)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--max-batches", type=int, default=0, help="stop an epoch early (timing)")
    a = p.parse_args()
    t0 = time.perf_counter()

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
    full = datasets.FashionMNIST(a.root, train=True, download=False, transform=tf)
    test = datasets.FashionMNIST(a.root, train=False, download=False, transform=tf)
    # The same split as lsexp (data.split_seed = 0) so both train on the same images.
    perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))
    val_idx, train_idx = perm[: a.val_size].sort().values, perm[a.val_size :].sort().values
    train = Subset(full, train_idx.tolist())
    val = Subset(full, val_idx.tolist())
    loader = DataLoader(train, batch_size=a.batch_size, shuffle=True, drop_last=True,
                        num_workers=a.workers, generator=torch.Generator().manual_seed(a.seed),
                        persistent_workers=a.workers > 0)  # fmt: skip
    val_loader = DataLoader(val, batch_size=1000, num_workers=a.workers)
    test_loader = DataLoader(test, batch_size=1000, num_workers=a.workers)

    torch.manual_seed(a.seed)
    model = build_model("cnn", in_channels=1, image_size=28, num_classes=10, width=a.width)
    decay = [q for q in model.parameters() if q.ndim > 1]
    rest = [q for q in model.parameters() if q.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                           {"params": rest, "weight_decay": 0.0}],
                          lr=a.lr, momentum=0.9, nesterov=True)  # fmt: skip
    steps = len(loader) if not a.max_batches else min(a.max_batches, len(loader))
    total = a.epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))
    )
    for _ in range(a.epochs):
        for i, (x, y) in enumerate(loader):
            if i == steps:
                break
            loss = F.cross_entropy(model(x), y, label_smoothing=a.alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        evaluate(model, val_loader)
    acc, nll = evaluate(model, test_loader)
    print(json.dumps({"alpha": a.alpha, "seed": a.seed, "test_accuracy": acc, "test_nll": nll,
                      "seconds": time.perf_counter() - t0}))  # fmt: skip


if __name__ == "__main__":
    main()
