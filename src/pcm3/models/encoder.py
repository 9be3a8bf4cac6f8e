"""The encoder contract: the :class:`Backbone` protocol, the :class:`EncoderSpec` that describes
an encoder completely, :class:`PromptedEncoder` (a backbone plus its evaluation input prompt) and
the one :func:`build_encoder`.

The spec is written into every checkpoint and every safetensors export; loaders build from it
and never infer anything from weight shapes (``docs/backbones.md``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from pcm3.errors import ConfigError, Pcm3Error
from pcm3.layouts import Layout, layout_from_dict
from pcm3.models.registry import backbone_options, create_backbone, options_dict

SPEC_KEYS = ("backbone", "options", "in_channels", "num_persons", "layout", "stream", "view_frames")


@runtime_checkable
class Backbone(Protocol):
    """What every registered backbone offers (``x (N, C, T, V, M)``, ``lengths (N,)`` valid
    frames in ``1..T``; ``input_prompt`` ``(1, *input_prompt_shape)`` or ``(N, *input_prompt_shape)``,
    added right after the backbone's input normalisation).

    In eval mode, values in frames at or after ``lengths`` change neither ``forward_features``
    nor the dense steps that cover only valid frames.
    """

    feature_dim: int  # D, even (task prompts split features into two halves)
    time_stride: int  # forward_dense returns ceil(T / time_stride) steps
    causal: bool  # dense step t depends only on frames up to its own
    input_prompt_shape: tuple[int, ...]

    def forward_features(self, x: Tensor, lengths: Tensor | None = None, *,
                         input_prompt: Tensor | None = None) -> Tensor:
        """``(N, D)``: one feature per sequence."""
        ...

    def forward_dense(self, x: Tensor, lengths: Tensor | None = None, *,
                      input_prompt: Tensor | None = None) -> Tensor:
        """``(N, ceil(T / time_stride), D)``: one feature per step."""
        ...


def dense_steps(frames: int, time_stride: int) -> int:
    """Steps of ``forward_dense`` for ``frames`` input frames: ``ceil(frames / time_stride)``."""
    return math.ceil(frames / time_stride)


@dataclass
class EncoderSpec:
    """Everything needed to rebuild an encoder: backbone name and every option, the input
    ``(C, V, M)`` (channels, the layout's joints, persons), and how its inputs are made (stream,
    view length in frames)."""

    backbone: str
    options: dict[str, Any]
    in_channels: int
    num_persons: int
    layout: Layout
    stream: str = "joint"
    view_frames: int = 64

    def __post_init__(self) -> None:
        # every option written out (defaults filled in, validated): a later default never changes it
        self.options = options_dict(backbone_options(self.backbone, dict(self.options),
                                                     where=f"encoder spec of backbone {self.backbone!r}"))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able mapping that :meth:`from_dict` reads back."""
        return {"backbone": self.backbone, "options": dict(self.options), "in_channels": self.in_channels,
                "num_persons": self.num_persons, "layout": self.layout.to_dict(), "stream": self.stream,
                "view_frames": self.view_frames}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())  # key order kept: the order of body parts matters

    @classmethod
    def from_dict(cls, data: Any, where: str = "encoder spec") -> EncoderSpec:
        """The spec of a mapping written by :meth:`to_dict`; errors name ``where`` (e.g. a file)."""
        if not isinstance(data, dict):
            raise Pcm3Error(f"{where}: the encoder spec must be a mapping, got {type(data).__name__}")
        missing = [k for k in SPEC_KEYS if k not in data]
        unknown = [k for k in data if k not in SPEC_KEYS]
        if missing or unknown:
            raise Pcm3Error(f"{where}: encoder spec has missing keys {missing} / unknown keys {unknown}; "
                            f"expected {list(SPEC_KEYS)}")
        try:
            return cls(str(data["backbone"]), dict(data["options"]), int(data["in_channels"]),
                       int(data["num_persons"]), layout_from_dict(data["layout"], source=where),
                       str(data["stream"]), int(data["view_frames"]))
        except ConfigError as exc:  # e.g. a backbone this installation does not have
            raise ConfigError(f"{where}: {exc}") from None

    def describe(self) -> str:
        """``layout 'ntu25' (25 joints), C=3, M=2``: the input this encoder takes."""
        return (f"layout {self.layout.name!r} ({self.layout.num_joints} joints), "
                f"C={self.in_channels}, M={self.num_persons}")

    def check_input(self, layout: Layout, in_channels: int, num_persons: int, encoder: str,
                    data: str) -> None:
        """Refuse data of another layout, channel count or person count, naming both sides."""
        if (self.layout.to_dict(), self.in_channels, self.num_persons) != (
                layout.to_dict(), in_channels, num_persons):
            given = (f"layout {layout.name!r} ({layout.num_joints} joints), C={in_channels}, "
                     f"M={num_persons}")
            raise Pcm3Error(f"{encoder} expects {self.describe()}; {data} has {given}")


class PromptedEncoder(nn.Module):
    """A backbone plus the input prompt it was pre-trained with on clean views (or none), and
    its spec. Same API as the backbone (``forward_features``, ``forward_dense``, ``feature_dim``,
    ``time_stride``, ``causal``); this is what downstream tasks and ``pcm3 export`` use."""

    def __init__(self, backbone: nn.Module, input_prompt: Tensor | None = None,
                 spec: EncoderSpec | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.spec = spec
        self.feature_dim = backbone.feature_dim
        self.time_stride = backbone.time_stride
        self.causal = backbone.causal
        if input_prompt is not None:
            shape = (1, *backbone.input_prompt_shape)
            if input_prompt.numel() != math.prod(shape):
                raise Pcm3Error(f"input prompt of shape {tuple(input_prompt.shape)} does not fit the "
                                f"backbone's input prompt shape {shape}")
            self.register_buffer("input_prompt", input_prompt.detach().clone().reshape(shape))
        else:
            self.input_prompt = None

    def forward_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(N, C, T, V, M) -> (N, D)``."""
        return self.backbone.forward_features(x, lengths, input_prompt=self.input_prompt)

    def forward_dense(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(N, C, T, V, M) -> (N, ceil(T / time_stride), D)``."""
        return self.backbone.forward_dense(x, lengths, input_prompt=self.input_prompt)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.forward_features(x, lengths)


def build_encoder(spec: EncoderSpec, input_prompt: Tensor | None = None) -> PromptedEncoder:
    """A freshly initialised encoder of ``spec`` (with ``input_prompt`` as its buffer, if given)."""
    backbone = create_backbone(spec.backbone, layout=spec.layout, num_persons=spec.num_persons,
                               in_channels=spec.in_channels, **spec.options)
    return PromptedEncoder(backbone, input_prompt, spec)


def features_and_dense(backbone: nn.Module, x: Tensor, input_prompt: Tensor | None = None,
                       dense_from: int = 0) -> tuple[Tensor, Tensor]:
    """``(N, D)`` features of every row of ``x (N, C, T, V, M)`` and ``(N - dense_from, T', D)``
    dense features of rows ``dense_from..``.

    One pass when the backbone has ``pool(dense, lengths)`` with ``forward_features =
    pool(forward_dense)`` (the BiGRU); otherwise ``forward_features`` on all rows and
    ``forward_dense`` on the dense rows.
    """
    pool = getattr(backbone, "pool", None)
    if callable(pool):
        dense = backbone.forward_dense(x, input_prompt=input_prompt)
        return pool(dense), dense[dense_from:]
    features = backbone.forward_features(x, input_prompt=input_prompt)
    rows = input_prompt
    if input_prompt is not None and input_prompt.shape[0] > 1:
        rows = input_prompt[dense_from:]
    return features, backbone.forward_dense(x[dense_from:], input_prompt=rows)
