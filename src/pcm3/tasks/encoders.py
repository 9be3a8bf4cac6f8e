"""Encoders for downstream tasks: from a pcm3 checkpoint, an exported safetensors file, or a
random initialisation of the same architecture; and the export itself.

Every loader returns a :class:`LoadedEncoder`: the encoder (``forward_features`` /
``forward_dense``, in eval mode) plus what a task needs to feed it correctly (layout, stream,
view length) and to record where it came from. Encoders are built from the spec their file
carries (:class:`~pcm3.models.encoder.EncoderSpec`); files written before the spec existed are
read through :mod:`pcm3.models.legacy`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pcm3.config import to_dict
from pcm3.data.sample_record import RECORD_KEY, check_record
from pcm3.engine.config import PretrainConfig
from pcm3.errors import Pcm3Error
from pcm3.layouts import Layout
from pcm3.methods.base import encoder_spec
from pcm3.methods.checkpoints import checkpoint_config, feature_encoder_from_checkpoint
from pcm3.models.encoder import EncoderSpec, PromptedEncoder, build_encoder
from pcm3.models.encoder_files import read_encoder, save_encoder
from pcm3.models.legacy import migrate_config


@dataclass
class LoadedEncoder:
    """An encoder and its provenance. ``source`` names it in result tables; ``spec`` is None only
    for the parameter-free ``raw`` reference; ``pretraining`` is the record of the samples it was
    pre-trained on (:mod:`pcm3.data.sample_record`), None when its file has none (official or
    foreign weights, files of older pcm3 versions) or it was never pre-trained."""

    encoder: PromptedEncoder
    layout: Layout
    stream: str
    view_frames: int
    source: str
    config: dict[str, Any] = field(default_factory=dict)
    spec: EncoderSpec | None = None
    pretraining: dict[str, Any] | None = None

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim


def loaded(encoder: PromptedEncoder, source: str, config: dict[str, Any],
           pretraining: dict[str, Any] | None = None) -> LoadedEncoder:
    """A :class:`LoadedEncoder` of an encoder that carries its spec."""
    spec = encoder.spec
    if spec is None:
        raise Pcm3Error(f"{source}: the encoder carries no spec")
    return LoadedEncoder(encoder, spec.layout, spec.stream, spec.view_frames, source, config, spec,
                         pretraining)


def _from_pcm3_checkpoint(path: Path, state: Any = None) -> tuple[LoadedEncoder, dict[str, Any]]:
    """The encoder of a checkpoint (read from ``path`` unless its contents ``state`` are given),
    and the checkpoint's provenance (data fingerprint, step, the record of its pre-training
    samples when it has one)."""
    from pcm3.engine.checkpoint import load_checkpoint

    if state is None:
        state = load_checkpoint(path)
    elif not isinstance(state, dict) or "model" not in state:
        raise Pcm3Error(f"{path}: not a pcm3 checkpoint (no 'model' state dict)")
    encoder = feature_encoder_from_checkpoint(state, str(path))
    provenance: dict[str, Any] = {"data_fingerprint": str(state.get("data_fingerprint")),
                                  "step": str(state.get("step"))}
    record = state.get(RECORD_KEY)
    if record is not None:
        provenance[RECORD_KEY] = check_record(record, str(path))
    return loaded(encoder, str(path), checkpoint_config(state), record), provenance


def _from_safetensors(path: Path) -> LoadedEncoder:
    encoder, meta = read_encoder(path)
    config = migrate_config(json.loads(meta["pcm3_config"])) if "pcm3_config" in meta else {}
    record = check_record(json.loads(meta[RECORD_KEY]), str(path)) if RECORD_KEY in meta else None
    return loaded(encoder, str(path), config, record)


def random_encoder_from_spec(spec: EncoderSpec, seed: int = 0, config: dict[str, Any] | None = None
                             ) -> LoadedEncoder:
    """The reference row: the architecture of ``spec``, randomly initialised (fixed seed), no
    prompt. The global RNG state is restored afterwards, so building it does not change later draws."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = build_encoder(spec).eval()
    return loaded(encoder, "random-init", config or {})


def random_encoder(cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int,
                   seed: int = 0) -> LoadedEncoder:
    """:func:`random_encoder_from_spec` of the encoder ``cfg`` pre-trains on inputs
    ``(N, in_channels, T, V, num_persons)``."""
    return random_encoder_from_spec(encoder_spec(cfg, layout, in_channels, num_persons), seed, to_dict(cfg))


def load_encoder(path: str | Path, encoder_format: str = "auto", stream: str | None = None) -> LoadedEncoder:
    """A pcm3 checkpoint (``.pt``), an exported encoder (``.safetensors``) or an official checkpoint
    of PCM3, CMD, SkeletonCLR, AimCLR or MAMP (:mod:`pcm3.models.official_formats`).

    ``encoder_format``: one of ``ENCODER_FORMATS`` (``auto``: recognised from the file's keys);
    ``stream`` (official checkpoints only): the input stream the encoder was trained on, default
    joint; for CMD it also picks the stream's encoder."""
    from pcm3.models.official_formats import ENCODER_FORMATS, detect_format, read_checkpoint_file

    path = Path(path)
    if encoder_format not in ENCODER_FORMATS:
        raise Pcm3Error(f"{path}: unknown encoder format {encoder_format!r}; "
                        f"allowed: {', '.join(ENCODER_FORMATS)}")
    if not path.exists():
        raise Pcm3Error(f"{path}: encoder file not found")
    official = encoder_format.startswith("official-")
    checkpoint = None
    if path.suffix == ".safetensors" and not official:
        fmt = "pcm3"
    elif encoder_format == "pcm3":
        fmt = "pcm3"
    else:
        checkpoint = read_checkpoint_file(path)
        fmt = encoder_format if encoder_format != "auto" else detect_format(checkpoint, str(path))
    if fmt == "pcm3":
        if stream is not None:
            raise Pcm3Error(f"{path}: a stream is only given for official checkpoints; "
                            "a pcm3 file carries its own")
        if path.suffix == ".safetensors":
            return _from_safetensors(path)
        return _from_pcm3_checkpoint(path, checkpoint)[0]
    return _from_official(checkpoint, fmt, path, stream)


def _from_official(checkpoint: Any, fmt: str, path: Path, stream: str | None = None) -> LoadedEncoder:
    """The encoder of the official checkpoint contents ``checkpoint`` of format ``fmt``; its config
    records the format and the keys it ignored."""
    from pcm3.models.official_formats import load_official

    result = load_official(checkpoint, fmt, str(path), stream or "joint")
    report = {"format": fmt, "loaded": len(result.loaded), "ignored": result.ignored}
    return loaded(result.encoder, str(path), {"method": fmt, "official_checkpoint": report})


def export_encoder(source: str | Path, out: str | Path, onnx: bool = False) -> Path:
    """Write the encoder of a checkpoint (or of another export) to ``out``: as safetensors (the
    default: the backbone's weights, its input prompt and spec) or, with ``onnx``, as an ONNX
    graph of its sequence feature (:mod:`pcm3.models.onnx_export`); both carry the pre-training
    config, data fingerprint, step and the record of the pre-training samples as provenance.
    An official checkpoint (:func:`load_encoder`, recognised from its keys) is exported as our
    encoder with its official spec; its provenance is its format and the keys it ignored."""
    from pcm3.models.official_formats import detect_format, read_checkpoint_file

    source = Path(source)
    if not onnx and Path(out).suffix == ".onnx":
        raise Pcm3Error(f"{out}: an .onnx file name, but the export is safetensors unless asked "
                        "for ONNX (pcm3 export --onnx)")
    if source.suffix == ".safetensors" or not source.exists():
        enc = load_encoder(source)
        provenance = {} if enc.pretraining is None else {RECORD_KEY: enc.pretraining}
    else:
        state = read_checkpoint_file(source)
        fmt = detect_format(state, str(source))
        if fmt == "pcm3":
            enc, provenance = _from_pcm3_checkpoint(source, state)
        else:  # the file is read once
            enc, provenance = _from_official(state, fmt, source), {}
    if onnx:
        from pcm3.models.onnx_export import export_onnx

        return export_onnx(enc.encoder, out, {"pcm3_config": enc.config, **provenance})
    return save_encoder(enc.encoder, out, {"pcm3_config": enc.config, **provenance})
