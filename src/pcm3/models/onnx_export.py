"""Encoders as ONNX files: the sequence feature ``forward_features(x, lengths)`` of a
:class:`~pcm3.models.encoder.PromptedEncoder`, its evaluation input prompt included, with the
batch and time axes dynamic and the encoder spec in the model's ``metadata_props``.

Graph: inputs ``x`` ``(N, C, T, V, M)`` float32 (the encoder's stream: joint, motion or bone
coordinates, as the spec says) and ``lengths`` ``(N,)`` int64 (valid frames, ``1..T``); output
``features`` ``(N, D)`` float32, in eval mode.

Exporter: the TorchScript-based one (``torch.onnx.export(..., dynamo=False)``). The dynamo exporter
(``torch.export``) refuses every backbone, because their input checks read tensor values
(``lengths`` in ``1..T``, all clips full?) and it cannot guard on data. The TorchScript exporter
traces one call instead, so the trace is made on an example that takes the general path of every
backbone: clips shorter than ``T`` (the padding masks are recorded) and ``T`` not a multiple of the
backbone's time stride (the Transformer's patch padding is recorded). The value checks themselves
are not in the graph: callers pass ``lengths`` in ``1..T`` (and, for the Transformer, ``T`` up to
its ``max_frames``). It needs the ``onnx`` package (``pip install 'pcm3[onnx]'``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pcm3.errors import Pcm3Error
from pcm3.models.encoder import EncoderSpec, PromptedEncoder

OPSET = 17
INPUT_NAMES = ("x", "lengths")
OUTPUT_NAME = "features"
SPEC_METADATA = "encoder_spec"
ONNX_HINT = "install the onnx extra: pip install 'pcm3[onnx]'"


def require_onnx() -> Any:
    """The ``onnx`` module, or a :class:`Pcm3Error` saying which extra to install."""
    try:
        import onnx
    except ImportError as exc:
        raise Pcm3Error(f"ONNX export needs the onnx package: {ONNX_HINT} ({exc})") from None
    return onnx


class SequenceFeatures(nn.Module):
    """``(x (N, C, T, V, M), lengths (N,)) -> (N, D)``: the graph that is exported."""

    def __init__(self, encoder: PromptedEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.encoder.forward_features(x, lengths)


def tracing_example(spec: EncoderSpec, time_stride: int) -> tuple[Tensor, Tensor]:
    """``x (2, C, T, V, M)`` and ``lengths (2,)`` with ``T = 2 * time_stride + 1`` (not a multiple
    of the stride when it is > 1) and the second clip about half as long."""
    frames = 2 * time_stride + 1
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, spec.in_channels, frames, spec.layout.num_joints, spec.num_persons,
                    generator=generator)
    return x, torch.tensor([frames, max(1, frames // 2)], dtype=torch.long)


def export_onnx(encoder: PromptedEncoder, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``encoder`` (which must carry its spec) to ``path`` as ONNX; ``metadata`` values are
    stored as JSON strings in ``metadata_props`` next to ``encoder_spec``. The encoder's mode
    (train / eval) is left as it was."""
    if encoder.spec is None:
        raise Pcm3Error(f"{path}: the encoder has no spec; build it with pcm3.models.encoder.build_encoder")
    onnx = require_onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = SequenceFeatures(encoder)
    was_training = encoder.training
    graph.eval()  # the exporter restores the mode it found: the wrapper's, now eval
    device = next(iter(encoder.parameters()), torch.empty(0)).device
    example = tuple(t.to(device) for t in tracing_example(encoder.spec, encoder.time_stride))
    tmp = path.with_name(path.name + ".tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the deprecation notice of the TorchScript exporter and the tracer's notes on shape
            # arithmetic turned into constants (the module docstring says which ones matter)
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, example, str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                              dynamic_axes={"x": {0: "N", 2: "T"}, "lengths": {0: "N"},
                                            OUTPUT_NAME: {0: "N"}})
        model = onnx.load(str(tmp))
        meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
        meta[SPEC_METADATA] = encoder.spec.to_json()
        meta["inputs"] = (f"x (N, C={encoder.spec.in_channels}, T, V={encoder.spec.layout.num_joints}, "
                          f"M={encoder.spec.num_persons}) float32 {encoder.spec.stream} stream; "
                          "lengths (N,) int64 valid frames in 1..T")
        meta["outputs"] = f"features (N, D={encoder.feature_dim}) float32"
        onnx.helper.set_model_props(model, meta)
        onnx.save(model, str(tmp))
        tmp.replace(path)
    finally:
        encoder.train(was_training)
        tmp.unlink(missing_ok=True)
    return path


def read_onnx_spec(path: str | Path) -> tuple[EncoderSpec, dict[str, str]]:
    """The encoder spec and all ``metadata_props`` of an ONNX file written by :func:`export_onnx`."""
    onnx = require_onnx()
    where = str(path)
    try:
        model = onnx.load(where, load_external_data=False)
    except Exception as exc:  # onnx raises protobuf's and its own error types
        raise Pcm3Error(f"{where}: cannot read ONNX file ({type(exc).__name__}: {exc})") from exc
    meta = {p.key: p.value for p in model.metadata_props}
    if SPEC_METADATA not in meta:
        raise Pcm3Error(f"{where}: not a pcm3 ONNX export (no {SPEC_METADATA!r} in its metadata_props)")
    return EncoderSpec.from_dict(json.loads(meta[SPEC_METADATA]), where), meta
