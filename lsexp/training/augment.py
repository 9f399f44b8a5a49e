"""Batched augmentation: one gather per batch instead of per-sample transforms.

Every random draw comes from the generator the caller passes (the run's augmentation
generator), so augmentation never shifts the data order and one seed gives the same
augmented batches at every alpha.
"""

from __future__ import annotations

import torch
from torch import Tensor


def crop(padded: Tensor, dy: Tensor, dx: Tensor, h: int, w: int, flip: Tensor | None = None):
    """Crop an (h, w) window at offset (dy[i], dx[i]) from each padded image i, mirrored
    where flip[i] is set, as one advanced-indexing gather."""
    rows = dy[:, None] + torch.arange(h, device=padded.device)[None, :]  # (n, h)
    cols = dx[:, None] + torch.arange(w, device=padded.device)[None, :]  # (n, w)
    if flip is not None:
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(padded.shape[0], device=padded.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (n,h,w,c)
    return out.permute(0, 3, 1, 2).contiguous()


def random_offsets(n: int, pad: int, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
    """Per-image offsets (dy, dx), each uniform in [0, 2*pad], from `generator`."""
    gen_device = generator.device
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=gen_device).to(device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=gen_device).to(device)
    return dy, dx


def random_crop_flip(x: Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True):
    """Batched random crop (zero padding `pad`) and horizontal flip, on x's device.

    Each sample gets its own offset (dy, dx) in [0, 2*pad] and an independent coin for
    the flip.
    """
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = random_offsets(n, pad, generator, x.device)
    coin = None
    if flip:
        coin = torch.rand(n, generator=generator, device=generator.device).to(x.device) < 0.5
    return crop(padded, dy, dx, h, w, coin)
