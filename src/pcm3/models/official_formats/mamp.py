"""MAMP checkpoints (``maoyunyao/MAMP``): the encoder of ``model_mamp.transformer`` (pre-training)
or ``model.transformer.Transformer`` (linear probe / fine-tuning), saved as ``{"model": state_dict,
"optimizer": ..., "epoch": ..., "args": Namespace}``.

Official names -> ours (:class:`pcm3.models.transformer.SkeletonTransformer`):

- ``joints_embed.proj`` ``Conv2d(C, D, (u, 1), stride (u, 1))``, weight ``(D, C, u, 1)`` ->
  ``patch_embed`` ``Linear(C*u, D)`` (row index ``c*u + frame``: the same numbers reshaped);
- ``pos_embed (1, 1, V, D)`` -> ``joint_embed (V, D)``; ``temp_embed (1, T/u, 1, D)`` -> ``time_embed``;
- ``blocks.{i}.norm1 / attn.qkv / attn.proj / norm2 / mlp.fc1 / mlp.fc2`` -> ``blocks.{i}.norm1 /
  qkv / proj / norm2 / fc1 / fc2``; ``norm`` -> ``norm``.

Ignored: the decoder (``decoder_*``, ``mask_token``) and the heads (``head.*``). ``num_heads`` is not
visible in the weights: 8, as in every released MAMP config. Clips: ``T = temp_embed rows * u`` (120).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from pcm3.errors import ConfigError
from pcm3.models.encoder import build_encoder
from pcm3.models.official_formats.reading import load_converted, refuse_unexpected
from pcm3.models.official_formats.result import OfficialEncoder, ntu_spec

MAMP_HEADS = 8
IGNORED_PREFIXES = ("decoder", "mask_token", "head.")
_BLOCK_NAMES = {"norm1": "norm1", "qkv": "attn.qkv", "proj": "attn.proj", "norm2": "norm2",
                "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def mamp_options(state: Mapping[str, Tensor], where: str) -> tuple[dict, int, int]:
    """(our ``transformer`` options, C, V) from the shapes of the official keys."""
    for key in ("joints_embed.proj.weight", "pos_embed", "temp_embed", "blocks.0.mlp.fc1.weight"):
        if key not in state:
            raise ConfigError(f"{where}: official MAMP checkpoint without {key!r}")
    dim, channels, patch, joint_patch = state["joints_embed.proj.weight"].shape
    if joint_patch != 1:
        raise ConfigError(f"{where}: MAMP patch_size {joint_patch} (joints per token); only 1 is supported")
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    options = {"embed_dim": dim, "depth": depth, "num_heads": MAMP_HEADS,
               "mlp_ratio": state["blocks.0.mlp.fc1.weight"].shape[0] / dim, "patch_frames": patch,
               "max_frames": state["temp_embed"].shape[1] * patch,
               "qkv_bias": "blocks.0.attn.qkv.bias" in state, "drop_path": 0.0}
    return options, channels, state["pos_embed"].shape[2]


def load_mamp(state: Mapping[str, Tensor], where: str, fmt: str, stream: str) -> OfficialEncoder:
    """The MAMP encoder of ``state`` (the checkpoint's ``model`` dict) as our ``transformer``."""
    options, channels, joints = mamp_options(state, where)
    spec = ntu_spec("transformer", options, channels, joints, stream, options["max_frames"], where)
    encoder = build_encoder(spec)
    backbone = encoder.backbone
    dim = options["embed_dim"]
    mapping = {"patch_embed.weight": ("joints_embed.proj.weight", lambda w: w.reshape(dim, -1)),
               "patch_embed.bias": ("joints_embed.proj.bias", None),
               "joint_embed": ("pos_embed", lambda p: p.reshape(-1, dim)),
               "time_embed": ("temp_embed", lambda p: p.reshape(-1, dim)),
               "norm.weight": ("norm.weight", None), "norm.bias": ("norm.bias", None)}
    for our_key in backbone.state_dict():
        parts = our_key.split(".")
        if parts[0] == "blocks":
            mapping[our_key] = (f"blocks.{parts[1]}.{_BLOCK_NAMES[parts[2]]}.{parts[3]}", None)
    used = load_converted(backbone, state, mapping, where)
    leftover = {k for k in state if k not in set(used) and not k.startswith(IGNORED_PREFIXES)}
    refuse_unexpected(leftover, where, "")
    ignored = sorted(k for k in state if k not in set(used))
    return OfficialEncoder(encoder.eval(), spec, fmt, sorted(used), ignored)
