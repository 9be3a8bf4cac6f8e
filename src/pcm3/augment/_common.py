"""Shared helpers of the augmentation package: input checks and random draws.

Randomness: every draw is made with the given ``torch.Generator`` on *the generator's own
device* (a CPU generator draws on the CPU, a CUDA generator on its GPU) and the result is then
moved to the data's device. So a fixed seed gives the same parameters whatever device the data
is on, as long as the generator lives on the same device. ``generator=None`` uses torch's global
CPU generator (not reproducible by itself; pass a generator in training code).
"""

from __future__ import annotations

import torch

from pcm3.errors import ConfigError


def check_skeleton(x: torch.Tensor, where: str) -> tuple[int, int, int, int, int]:
    """Check that ``x`` is a floating ``(N, C, T, V, M)`` tensor and return its shape."""
    if not isinstance(x, torch.Tensor):
        raise ConfigError(
            f"{where}: expected a torch.Tensor (N, C, T, V, M), got {type(x).__name__}"
        )
    if x.dim() != 5:
        raise ConfigError(
            f"{where}: expected a 5-D tensor (N, C, T, V, M), got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ConfigError(f"{where}: expected a floating-point tensor, got {x.dtype}")
    n, c, t, v, m = x.shape
    return n, c, t, v, m


def check_joints(num_joints: int, layout_joints: int, where: str) -> None:
    if num_joints != layout_joints:
        raise ConfigError(
            f"{where}: the data has V={num_joints} joints but the layout has {layout_joints}"
        )


def check_range(pair: tuple[float, float], low: float, high: float, what: str) -> None:
    """``pair`` must be ``(a, b)`` with ``low <= a <= b <= high``."""
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise ConfigError(
            f"{what} must be a pair (a, b) with {low} <= a <= b <= {high}, got {pair}"
        )


def draw_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


def uniform(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str,
    low: float = 0.0,
    high: float = 1.0,
) -> torch.Tensor:
    """float64 samples of U[low, high), drawn on the generator's device, moved to ``device``."""
    u = torch.rand(shape, generator=generator, device=draw_device(generator), dtype=torch.float64)
    return (low + (high - low) * u).to(device)


def uniform_int(
    low: torch.Tensor, high: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """One integer of UniformInt[low, high] (both inclusive) per element of ``low`` / ``high``.

    ``low`` and ``high`` are long tensors of the same shape on one device; requires low <= high.
    """
    u = uniform(tuple(low.shape), generator, low.device)
    span = (high - low + 1).to(torch.float64)
    return torch.minimum(low + torch.floor(u * span).long(), high)


def random_subsets(
    rows: int, size: int, k: torch.Tensor, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``(rows, size)`` bool: in each row a uniformly random subset of ``k[row]`` of ``size`` items.

    ``k`` is a long tensor ``(rows,)`` (values in 0..size) on ``device``.
    """
    order = uniform((rows, size), generator, device).argsort(dim=1)  # a random permutation
    first_k = torch.arange(size, device=device).unsqueeze(0) < k.unsqueeze(1)
    return torch.zeros(rows, size, dtype=torch.bool, device=device).scatter(1, order, first_k)


def expand_shared(params: torch.Tensor, n: int) -> torch.Tensor:
    """Repeat the parameters drawn for one sample (leading dim 1) for all ``n`` samples."""
    return params.expand(n, *params.shape[1:]).contiguous()
