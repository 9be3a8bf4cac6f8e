"""PCM3 prompts: task prompts added to features at a random offset, and per-view input prompts.

Task prompt (``cl`` for contrast, ``mp`` for masked prediction): a ``(1, 2*L)`` parameter whose
halves are added to the two ``dim_half``-wide halves of a feature at the same offset ``s``:
``f[s:s+L] += P[:L]`` and ``f[dim_half+s : dim_half+s+L] += P[L:]``. The official code draws one
``s`` per batch with ``random.randint(0, 1024-128-1)``; here offsets are per sample (a batch-wide
offset is the special case of equal values) and drawn from an explicit ``torch.Generator``.

Input prompts: one ``(1, *input_prompt_shape)`` parameter per view (``base``, ``mask``,
``recons``, ``mix``), given to the backbone as ``input_prompt`` (added after its input
normalisation; for the BiGRU the shape is ``(1, V*C*M)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pcm3.errors import ConfigError


def random_offsets(
    n: int,
    dim_half: int,
    length: int,
    generator: torch.Generator,
    device: torch.device | str | None = None,
) -> Tensor:
    """``n`` offsets uniform in ``[0, dim_half - length - 1]`` (inclusive, as official).

    Long ``(n,)``, drawn on the generator's device, then moved to ``device``.
    """
    if not 0 < length < dim_half:
        raise ConfigError(f"prompt length {length} must be in 1..{dim_half - 1} (dim_half)")
    offsets = torch.randint(0, dim_half - length, (n,), generator=generator,
                            device=generator.device)
    return offsets if device is None else offsets.to(device)


def _check_offsets(offset: Tensor, n: int, highest: int) -> None:
    if offset.dtype.is_floating_point or offset.dtype == torch.bool or offset.shape not in (
        (), (n,)
    ):
        raise ConfigError(
            f"offset must be an integer tensor of shape ({n},) or (), "
            f"got {offset.dtype} of shape {tuple(offset.shape)}"
        )
    bad = (offset < 0) | (offset > highest)
    if offset.device.type == "cpu":
        if bad.any():
            value = int(offset.reshape(-1)[bad.reshape(-1).nonzero()[0, 0]])
            raise ConfigError(f"prompt offset {value} is outside 0..{highest}")
    else:  # no host sync on accelerators
        torch._assert_async(~bad.any(), f"prompt offset outside 0..{highest}")


def add_at_offset(feature: Tensor, prompt: Tensor, offset: Tensor) -> Tensor:
    """Add the two halves of ``prompt`` to the two halves of ``feature`` at ``offset``.

    Args:
        feature: ``(N, 2*dim_half)`` or ``(N, T, 2*dim_half)`` (same offset for all frames).
        prompt: ``2*L`` values, e.g. shape ``(1, 2*L)``.
        offset: long ``(N,)`` per-sample offsets (or a scalar tensor shared by the batch),
            each in ``0..dim_half - L``.

    Returns a new tensor; gradients flow to ``feature`` and ``prompt``.
    """
    d = feature.shape[-1]
    length = prompt.numel() // 2
    if feature.dim() not in (2, 3) or d % 2 or prompt.numel() % 2 or length > d // 2:
        raise ConfigError(
            f"add_at_offset: feature must be (N, 2*dim_half) or (N, T, 2*dim_half) and the prompt "
            f"2*L values with L <= dim_half; got feature {tuple(feature.shape)}, "
            f"prompt {tuple(prompt.shape)}"
        )
    n, dim_half = feature.shape[0], d // 2
    _check_offsets(offset, n, dim_half - length)
    steps = torch.arange(length, device=feature.device)
    start = offset.to(device=feature.device, dtype=torch.long).reshape(-1, 1).expand(n, 1)
    first = start + steps  # (N, L)
    index = torch.cat((first, first + dim_half), dim=1)  # (N, 2L)
    values = prompt.reshape(1, 2 * length).to(feature.dtype).expand(n, -1)
    if feature.dim() == 3:
        shape = (n, feature.shape[1], 2 * length)
        index, values = index.unsqueeze(1).expand(shape), values.unsqueeze(1).expand(shape)
    return feature.scatter_add(-1, index, values)


class TaskPrompt(nn.Module):
    """A task prompt: parameter ``prompt (1, 2*length)``, ``xavier_uniform_`` init (official).

    The xavier bound for a ``(1, 2L)`` tensor is ``sqrt(6 / (1 + 2L))`` (0.153 for L = 128).
    ``prompt_module(feature, offset)`` = ``add_at_offset(feature, prompt, offset)``.
    """

    def __init__(self, dim_half: int = 1024, length: int = 128) -> None:
        super().__init__()
        if not 0 < length <= dim_half:
            raise ConfigError(f"task prompt length {length} must be in 1..{dim_half} (dim_half)")
        self.dim_half, self.length = dim_half, length
        self.prompt = nn.Parameter(torch.empty(1, 2 * length))
        nn.init.xavier_uniform_(self.prompt)

    def random_offsets(
        self, n: int, generator: torch.Generator, device: torch.device | str | None = None
    ) -> Tensor:
        """Per-sample offsets for this prompt (see :func:`random_offsets`)."""
        return random_offsets(n, self.dim_half, self.length, generator, device)

    def forward(self, feature: Tensor, offset: Tensor) -> Tensor:
        if feature.shape[-1] != 2 * self.dim_half:
            raise ConfigError(
                f"task prompt expects features of width {2 * self.dim_half}, "
                f"got shape {tuple(feature.shape)}"
            )
        return add_at_offset(feature, self.prompt, offset)


class InputPrompts(nn.Module):
    """Per-view input prompts: ``prompts[name]`` is a ``(1, *shape)`` parameter (``shape``: the
    backbone's ``input_prompt_shape``).

    Init uniform in ``±sqrt(3 / F)``, F = the number of prompt values: the official
    ``xavier_uniform_`` on a ``(1, 1, F)`` tensor (PyTorch counts fan_in = fan_out = F for that
    shape), whatever the shape (0.141 for F = 150).
    """

    def __init__(
        self, shape: int | Sequence[int], names: Sequence[str] = ("base", "mask", "recons", "mix")
    ) -> None:
        super().__init__()
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"input prompt names must be non-empty and unique, got {names!r}")
        self.names = tuple(names)
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.prompts = nn.ParameterDict(
            {name: nn.Parameter(torch.empty(1, *self.shape)) for name in self.names}
        )
        with torch.no_grad():
            for param in self.prompts.values():
                nn.init.xavier_uniform_(param.view(1, 1, -1))

    def __getitem__(self, name: str) -> Tensor:
        if name not in self.prompts:
            raise ConfigError(f"no input prompt {name!r}; known: {', '.join(self.names)}")
        return self.prompts[name]

    def forward(self, name: str) -> Tensor:
        return self[name]
