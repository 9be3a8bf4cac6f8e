"""Released encoders of other code bases, recognised by their keys and rebuilt as our encoders.

One file per format: :mod:`.bigru` (PCM3, CMD), :mod:`.stgcn` (SkeletonCLR, AimCLR), :mod:`.mamp`;
:mod:`.reading` reads files without running code. :func:`detect_format` names the format of a
checkpoint object; :func:`load_official` rebuilds its encoder with the spec of the official
architecture and evaluation setting (ntu25, 3 channels, 2 persons, the official clip length).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from pcm3.errors import ConfigError
from pcm3.models.official_formats.bigru import load_bigru
from pcm3.models.official_formats.mamp import load_mamp
from pcm3.models.official_formats.reading import read_checkpoint_file, tensor_dict
from pcm3.models.official_formats.result import STREAMS, OfficialEncoder
from pcm3.models.official_formats.stgcn import load_stgcn

Loader = Callable[[Mapping[str, Tensor], str, str, str], OfficialEncoder]
OFFICIAL_LOADERS: dict[str, Loader] = {
    "official-pcm3": load_bigru, "official-cmd": load_bigru,
    "official-skeletonclr": load_stgcn, "official-aimclr": load_stgcn,
    "official-mamp": load_mamp,
}
ENCODER_FORMATS = ("auto", "pcm3", *OFFICIAL_LOADERS)

__all__ = ["ENCODER_FORMATS", "OFFICIAL_LOADERS", "STREAMS", "OfficialEncoder", "detect_format",
           "load_official", "official_weights", "read_checkpoint_file"]


def official_weights(checkpoint: Any, fmt: str, where: str) -> dict[str, Tensor]:
    """The state dict inside a checkpoint: ``model`` (MAMP), ``state_dict`` (PCM3, CMD) or the
    checkpoint itself (torchlight's SkeletonCLR / AimCLR files, bare state dicts)."""
    if isinstance(checkpoint, Mapping):
        inner = "model" if fmt == "official-mamp" else "state_dict"
        if inner in checkpoint:
            return tensor_dict(checkpoint[inner], f"{where} [{inner!r}]")
    return tensor_dict(checkpoint, where)


def detect_format(checkpoint: Any, where: str) -> str:
    """``pcm3`` or an official format, from the keys; anything else is refused naming some keys."""
    if isinstance(checkpoint, Mapping):
        model = checkpoint.get("model")
        if isinstance(model, Mapping) and any(str(k).endswith("joints_embed.proj.weight") for k in model):
            return "official-mamp"
        if isinstance(model, Mapping):
            return "pcm3"
        inner = checkpoint.get("state_dict", checkpoint)
        keys = [str(k).removeprefix("module.") for k in inner] if isinstance(inner, Mapping) else []
        if any(".st_gcn_networks." in k or k.startswith("st_gcn_networks.") for k in keys):
            return "official-skeletonclr"  # AimCLR's files hold the same encoder
        if any(k.endswith("gru.weight_hh_l0_reverse") for k in keys):
            return "official-cmd" if any(k.startswith("encoder_q_motion.") for k in keys) else "official-pcm3"
        seen = keys[:8] or [str(k) for k in list(checkpoint)[:8]]
    else:
        seen = [type(checkpoint).__name__]
    raise ConfigError(f"{where}: unrecognised encoder file format; recognised: pcm3 checkpoints and "
                      f"{', '.join(OFFICIAL_LOADERS)} (name one with --encoder-format); keys seen: {seen}")


def load_official(checkpoint: Any, fmt: str, where: str, stream: str = "joint") -> OfficialEncoder:
    """The encoder of an official ``checkpoint`` object of format ``fmt`` (see ``OFFICIAL_LOADERS``)."""
    if fmt not in OFFICIAL_LOADERS:
        raise ConfigError(f"{where}: unknown official format {fmt!r}; allowed: {', '.join(OFFICIAL_LOADERS)}")
    if stream not in STREAMS:
        raise ConfigError(f"{where}: stream must be one of {STREAMS}, got {stream!r}")
    return OFFICIAL_LOADERS[fmt](official_weights(checkpoint, fmt, where), where, fmt, stream)
