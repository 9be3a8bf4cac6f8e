"""Temporal crop-and-resize of padded skeleton batches: the first step of every pre-training
view (official feeder) and the downstream evaluation view.

A crop keeps frames ``[start, start + length)`` of each sample and resizes them to ``out_len``
frames by linear interpolation, exactly as the official
``F.interpolate(mode='bilinear', align_corners=False)`` on a ``(1, C*V*M, length, 1)`` tensor:
output frame i reads the source coordinate ``max((i + 0.5) * length / out_len - 0.5, 0)``.
Only frames ``< lengths[i]`` of a padded input are ever read. Everything is batched (gathers,
no per-sample loop); the crop parameters are a :class:`TemporalCrop` so a caller can reuse them
(e.g. to cut a sub-clip of a view: :meth:`TemporalCrop.source_positions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pcm3.augment._common import check_range, check_skeleton, uniform, uniform_int
from pcm3.errors import ConfigError


@dataclass(frozen=True)
class TemporalCrop:
    """Per-sample crops: frames ``[start, start + length)``; both ``(N,)`` long."""

    start: torch.Tensor
    length: torch.Tensor

    def source_positions(self, out_len: int) -> torch.Tensor:
        """``(N, out_len)`` float64: the (fractional) input frame each output frame is read at."""
        length = self.length.to(torch.float64).unsqueeze(1)
        i = torch.arange(out_len, dtype=torch.float64, device=self.length.device)
        src = ((i + 0.5) * (length / out_len) - 0.5).clamp(min=0.0)
        return self.start.to(torch.float64).unsqueeze(1) + src


def check_lengths(
    lengths: torch.Tensor | Sequence[int], n: int, t: int, device: torch.device, where: str
) -> torch.Tensor:
    """``lengths`` as an ``(N,)`` long tensor on ``device``, each in ``1..t``."""
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.shape != (n,) or lengths.is_floating_point() or lengths.is_complex():
        raise ConfigError(
            f"{where}: lengths must be an integer tensor of shape ({n},), got "
            f"{lengths.dtype} {tuple(lengths.shape)}"
        )
    lengths = lengths.long()
    if n and (int(lengths.min()) < 1 or int(lengths.max()) > t):
        bad = int(((lengths < 1) | (lengths > t)).nonzero()[0, 0])
        raise ConfigError(
            f"{where}: sample {bad} has length {int(lengths[bad])}; valid lengths are 1..{t} "
            f"(the padded time axis)"
        )
    return lengths


def draw_temporal_crop(
    lengths: torch.Tensor,
    generator: torch.Generator | None,
    scale: tuple[float, float] = (0.1, 1.0),
    min_len: int = 64,
) -> TemporalCrop:
    """Official random crop: ``s ~ U(scale)``, ``L = min(max(floor(n*s), min_len), n)``,
    ``start ~ UniformInt[0, n - L]``. ``lengths`` ``(N,)`` long, each >= 1."""
    check_range(scale, 0.0, 1.0, "temporal crop scale")
    if min_len < 1:
        raise ConfigError(f"temporal crop: min_len must be >= 1, got {min_len}")
    lengths = lengths.long()
    s = uniform(tuple(lengths.shape), generator, lengths.device, scale[0], scale[1])
    length = torch.floor(lengths.to(torch.float64) * s).long()
    length = torch.minimum(length.clamp(min=min_len), lengths)
    start = uniform_int(torch.zeros_like(length), lengths - length, generator)
    return TemporalCrop(start=start, length=length)


def centre_crop(lengths: torch.Tensor, ratio: float = 0.95) -> TemporalCrop:
    """Official deterministic test crop: ``start = int((1 - ratio) * n / 2)``,
    frames ``[start, n - start)``."""
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"centre crop: ratio must be in (0, 1], got {ratio}")
    lengths = lengths.long()
    start = torch.floor((1.0 - ratio) * lengths.to(torch.float64) / 2).long()
    return TemporalCrop(start=start, length=lengths - 2 * start)


def crop_resize(x: torch.Tensor, crop: TemporalCrop, out_len: int = 64) -> torch.Tensor:
    """Crop ``x`` ``(N, C, T, V, M)`` with ``crop``; resize linearly to ``(N, C, out_len, V, M)``.
    """
    n, c, _, v, m = check_skeleton(x, "crop_resize")
    if out_len < 1:
        raise ConfigError(f"crop_resize: out_len must be >= 1, got {out_len}")
    start = crop.start.to(x.device).unsqueeze(1)
    length = crop.length.to(x.device).unsqueeze(1)
    src = crop.source_positions(out_len).to(x.device) - start  # position inside the crop
    i0 = torch.floor(src).long()
    i1 = torch.minimum(i0 + 1, length - 1)
    w1 = src - i0
    shape = (n, 1, out_len, 1, 1)
    full = (n, c, out_len, v, m)
    x0 = x.gather(2, (start + i0).view(shape).expand(full))
    x1 = x.gather(2, (start + i1).view(shape).expand(full))
    w1 = w1.view(shape)
    return (1.0 - w1).to(x.dtype) * x0 + w1.to(x.dtype) * x1


def temporal_crop_resize(
    x: torch.Tensor,
    lengths: torch.Tensor | Sequence[int],
    generator: torch.Generator | None,
    out_len: int = 64,
    scale: tuple[float, float] = (0.1, 1.0),
    min_len: int = 64,
) -> torch.Tensor:
    """Random per-sample crop-resize ``(N, C, T_max, V, M)`` -> ``(N, C, out_len, V, M)`` (the
    first step of every pre-training view).

    ``lengths`` ``(N,)``: valid frames of each padded sample. To keep the crops, call
    :func:`draw_temporal_crop` and :func:`crop_resize` yourself.
    """
    n, _, t, _, _ = check_skeleton(x, "temporal_crop_resize")
    lengths = check_lengths(lengths, n, t, x.device, "temporal_crop_resize")
    crop = draw_temporal_crop(lengths, generator, scale=scale, min_len=min_len)
    return crop_resize(x, crop, out_len)


def centre_crop_resize(
    x: torch.Tensor,
    lengths: torch.Tensor | Sequence[int],
    out_len: int = 64,
    ratio: float = 0.95,
) -> torch.Tensor:
    """Deterministic downstream test view (official): centre crop keeping ``ratio``, resized."""
    n, _, t, _, _ = check_skeleton(x, "centre_crop_resize")
    lengths = check_lengths(lengths, n, t, x.device, "centre_crop_resize")
    return crop_resize(x, centre_crop(lengths, ratio), out_len)


def padded_crop_sources(t: int, start: torch.Tensor, padding: int) -> torch.Tensor:
    """``(N, t)`` long: the frame of a ``t``-frame clip each output frame reads when the clip is
    padded with ``padding`` mirrored frames on each side (frames ``padding-1 .. 0`` before,
    ``t-1 .. t-padding`` after, the edge frame repeated) and frames ``start .. start + t - 1`` of
    the padded sequence are kept. ``start (N,)`` in ``0 .. 2 * padding``."""
    j = start.long().unsqueeze(1) + torch.arange(t, device=start.device)  # position in the padded clip
    inside = j - padding
    before = padding - 1 - j
    after = 2 * t + padding - 1 - j  # j = t + padding + i reads frame t - 1 - i
    return torch.where(j < padding, before, torch.where(j >= t + padding, after, inside))


def padded_temporal_crop(x: torch.Tensor, generator: torch.Generator | None, padding_ratio: int = 6
                         ) -> torch.Tensor:
    """SkeletonCLR's temporal crop of fixed-length clips ``(N, C, T, V, M)``: mirror-pad
    ``T // padding_ratio`` frames on each side and keep ``T`` frames from a random start in
    ``0 .. 2 * padding`` (one per sample). Shape unchanged."""
    n, c, t, v, m = check_skeleton(x, "padded_temporal_crop")
    if padding_ratio < 1:
        raise ConfigError(f"padded_temporal_crop: padding_ratio must be >= 1, got {padding_ratio}")
    padding = min(t // padding_ratio, t)
    start = uniform_int(torch.zeros(n, dtype=torch.long, device=x.device),
                        torch.full((n,), 2 * padding, dtype=torch.long, device=x.device), generator)
    index = padded_crop_sources(t, start, padding).view(n, 1, t, 1, 1).expand(n, c, t, v, m)
    return x.gather(2, index)
