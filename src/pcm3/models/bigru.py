"""The PCM3 / CMD GRU encoder (official ``moco/GRU.py::BIGRU``), run over whole sequences.

The official code feeds a 3-layer ``nn.GRU(bidirectional=True)`` one frame at a time, so its
"reverse" direction also runs forward in time. Per layer that is exactly two independent
unidirectional GRUs over the whole sequence with their outputs concatenated, which is what
the default (causal) variant computes, with one fused cuDNN/MKL call per GRU instead of a
Python loop over frames. Official weights load unchanged (:mod:`pcm3.models.official`):
``*_l{k}`` -> layer k GRU A, ``*_l{k}_reverse`` -> layer k GRU B.

``bidirectional=True`` builds a true bidirectional GRU instead (not the official function):
per-frame features then see the future, which turns masked prediction into in-filling.

Input BatchNorm: with ``lengths``, its train-mode statistics are taken over the valid frames
only (:func:`~pcm3.models.masked_norm.masked_batch_norm`), so zero padding (PCM3++'s masked
clips) biases neither the normalisation nor the running statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from pcm3.errors import ConfigError
from pcm3.layouts import Layout
from pcm3.models.backbone_checks import check_lengths, valid_steps_mask
from pcm3.models.flatten import flatten_frames
from pcm3.models.masked_norm import masked_batch_norm
from pcm3.models.registry import register_backbone

POOLINGS = ("last", "mean")


@dataclass
class BiGRUOptions:
    """Options of the ``bigru`` backbone (defaults: the official PCM3 encoder)."""

    hidden_size: int = 1024  # units per GRU direction; feature_dim = 2 * hidden_size
    num_layers: int = 3
    bidirectional: bool = False  # True = a real bidirectional GRU (not the official model)
    pooling: str = "last"  # sequence feature: output at the last valid frame, or "mean"

    def validate(self) -> None:
        for key in ("hidden_size", "num_layers"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"bigru: {key} must be a positive integer, got {value!r}")
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(f"bigru: bidirectional must be true or false, got {self.bidirectional!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"bigru: pooling must be one of {list(POOLINGS)}, got {self.pooling!r}")

    @classmethod
    def tiny(cls) -> BiGRUOptions:
        return cls(hidden_size=6, num_layers=2)


class CausalGRUPair(nn.Module):
    """One official "bidirectional" layer: two forward-in-time GRUs over the same input.

    ``(N, T, input_size) -> (N, T, 2*hidden_size)``; frame t depends only on frames <= t.

    The GRUs run time-major on contiguous ``(T, N, ...)`` tensors (:meth:`forward_time_major`;
    a stack of layers transposes only at its ends). A batch-first GRU works on a transposed view
    instead, which on the CPU costs a copy of the input per call, and with frozen weights (the key
    encoder) a batched matmul against T materialised copies of the input weights.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.gru_a = nn.GRU(input_size, hidden_size)
        self.gru_b = nn.GRU(input_size, hidden_size)

    def forward_time_major(self, u: Tensor) -> Tensor:
        """``(T, N, input_size) -> (T, N, 2*hidden_size)``."""
        u = u.contiguous()
        return torch.cat((self.gru_a(u)[0], self.gru_b(u)[0]), dim=-1)

    def forward(self, u: Tensor) -> Tensor:
        return self.forward_time_major(u.transpose(0, 1)).transpose(0, 1)


@register_backbone("bigru", options=BiGRUOptions)
class BiGRUEncoder(nn.Module):
    """Input BatchNorm + ``num_layers`` GRU layers over ``(N, C, T, V, M)`` skeletons.

    Backbone contract (``docs/backbones.md``): ``time_stride = 1``; ``causal`` unless
    ``bidirectional``; ``input_prompt_shape = (V*C*M,)``, added after the input BatchNorm.

    Args:
        layout, num_persons, in_channels: the joint layout (V joints), M and C of the input.
        hidden_size: units per GRU direction (official 1024); ``feature_dim = 2*hidden_size``.
        num_layers: GRU layers (official 3).
        bidirectional: False = the official causal pair per layer; True = a true
            bidirectional GRU (one fused multi-layer ``nn.GRU``; padded batches are packed).
        pooling: sequence feature = output at the last valid frame (``"last"``, official) or
            the mean over valid frames (``"mean"``).
    """

    def __init__(
        self,
        layout: Layout,
        num_persons: int,
        in_channels: int = 3,
        hidden_size: int = 1024,
        num_layers: int = 3,
        bidirectional: bool = False,
        pooling: str = "last",
    ) -> None:
        super().__init__()
        BiGRUOptions(hidden_size, num_layers, bidirectional, pooling).validate()
        for key, value in (("num_persons", num_persons), ("in_channels", in_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"bigru: {key} must be a positive integer, got {value!r}")
        num_joints = layout.num_joints
        self.num_joints, self.num_persons, self.in_channels = num_joints, num_persons, in_channels
        self.num_features = num_joints * in_channels * num_persons
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.bidirectional, self.pooling = bidirectional, pooling
        self.feature_dim = 2 * hidden_size
        self.time_stride = 1
        self.causal = not bidirectional
        self.input_prompt_shape = (self.num_features,)

        self.input_norm = nn.BatchNorm1d(self.num_features)
        if self.bidirectional:
            self.gru = nn.GRU(self.num_features, hidden_size, num_layers=num_layers,
                              batch_first=True, bidirectional=True)
        else:
            self.layers = nn.ModuleList(
                CausalGRUPair(self.num_features if k == 0 else 2 * hidden_size, hidden_size)
                for k in range(num_layers)
            )
        self.reset_gru_parameters()

    def reset_gru_parameters(self) -> None:
        """Official init: ``xavier_uniform_`` on every 2-D GRU weight; biases keep the default."""
        with torch.no_grad():
            for name, param in self.named_parameters():
                if param.dim() == 2 and not name.startswith("input_norm."):
                    nn.init.xavier_uniform_(param)

    def _normalised_input(self, x: Tensor, input_prompt: Tensor | None, padded: Tensor | None = None
                          ) -> Tensor:
        """``(N, C, T, V, M) -> (N, T, F)``: flatten, BatchNorm over the N*T frames (train mode with
        ``padded`` lengths ``(N,)``: statistics over the valid frames only), add the input prompt."""
        expected = (self.in_channels, self.num_joints, self.num_persons)
        if x.dim() != 5 or (x.shape[1], x.shape[3], x.shape[4]) != expected:
            raise ConfigError(
                f"bigru: expected input (N, C={expected[0]}, T, V={expected[1]}, "
                f"M={expected[2]}), got shape {tuple(x.shape)}"
            )
        if x.shape[2] < 1:
            raise ConfigError("bigru: input has no frames (T = 0)")
        if padded is not None and self.training:
            n, t = x.shape[0], x.shape[2]
            valid = valid_steps_mask(padded, t).reshape(-1)
            u = masked_batch_norm(self.input_norm, flatten_frames(x).reshape(n * t, -1), valid).view(n, t, -1)
        else:
            u = self.input_norm(flatten_frames(x).transpose(1, 2)).transpose(1, 2)
        if input_prompt is not None:
            f = self.num_features
            rows = input_prompt.shape[0] if input_prompt.dim() == 2 else 0
            if rows not in (1, x.shape[0]) or input_prompt.shape[-1] != f:
                raise ConfigError(
                    f"bigru: input_prompt must have shape (1, {f}) or (N={x.shape[0]}, {f}), "
                    f"got shape {tuple(input_prompt.shape)}"
                )
            # after BN (official: before, where a train-mode BN cancels it); one prompt per sample
            # lets views with different prompts share one encoder call
            u = u + input_prompt.unsqueeze(1)
        return u

    def forward_dense(
        self, x: Tensor, lengths: Tensor | None = None, *, input_prompt: Tensor | None = None
    ) -> Tensor:
        """Per-frame features ``(N, T, feature_dim)`` (possibly a non-contiguous view: use
        ``reshape``, not ``view``).

        Causal variant: frame t depends only on frames <= t (and, in train mode, on the
        batch statistics of the input BatchNorm); outputs at frames >= ``lengths`` are
        meaningless. Bidirectional variant: with ``lengths``, sequences are packed so that
        padding never reaches valid frames, and padded outputs are zero.
        """
        n, t = x.shape[0], x.shape[2]
        padded = check_lengths("bigru", lengths, n, t, x.device)  # None when every clip is full
        u = self._normalised_input(x, input_prompt, padded)
        if not self.bidirectional:
            u = u.transpose(0, 1)
            for layer in self.layers:
                u = layer.forward_time_major(u)
            return u.transpose(0, 1)  # a view of time-major memory; dense[:, -1] is contiguous
        if lengths is None:
            return self.gru(u)[0]
        packed = pack_padded_sequence(u, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=t)[0]

    def pool(self, dense: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(N, T, D) -> (N, D)``: the frame ``lengths - 1`` or the mean over valid frames.

        ``forward_features(x) == pool(forward_dense(x))``, so a method that needs both encodes a
        view once (:func:`pcm3.models.encoder.features_and_dense`)."""
        if lengths is not None:
            lengths = lengths.to(dense.device)
        if self.pooling == "last":
            if lengths is None:
                return dense[:, -1]
            index = (lengths - 1).to(torch.long).view(-1, 1, 1).expand(-1, 1, dense.shape[-1])
            return dense.gather(1, index).squeeze(1)
        if lengths is None:
            return dense.mean(dim=1)
        frames = torch.arange(dense.shape[1], device=dense.device)
        valid = (frames.unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
        total = torch.where(valid, dense, torch.zeros((), dtype=dense.dtype, device=dense.device))
        return total.sum(dim=1) / lengths.unsqueeze(1).to(dense.dtype)

    def forward_features(
        self, x: Tensor, lengths: Tensor | None = None, *, input_prompt: Tensor | None = None
    ) -> Tensor:
        """Sequence features ``(N, feature_dim)``; padding past ``lengths`` never reaches them
        (train mode: nor the input BatchNorm statistics)."""
        return self.pool(self.forward_dense(x, lengths, input_prompt=input_prompt), lengths)

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, *, input_prompt: Tensor | None = None
    ) -> Tensor:
        return self.forward_features(x, lengths, input_prompt=input_prompt)

    def extra_repr(self) -> str:
        return (f"variant={'bidirectional' if self.bidirectional else 'causal'}, "
                f"pooling={self.pooling!r}")
