"""Backbones with one API (``create_backbone``), the encoder contract and spec, heads, prompts
and official-weight loading."""

from pcm3.models.registry import (  # noqa: I001
    BACKBONES,
    backbone_options,
    create_backbone,
    known_backbones,
    register_backbone,
)
from pcm3.models.bigru import BiGRUEncoder, BiGRUOptions, CausalGRUPair
from pcm3.models.encoder import Backbone, EncoderSpec, PromptedEncoder, build_encoder
from pcm3.models.flatten import flatten_frames, unflatten_frames
from pcm3.models.heads import GRUDecoder, MaskedPredictionNeck, Projector, upsample_steps
from pcm3.models.stgcn import STGCN, STGCNOptions
from pcm3.models.transformer import SkeletonTransformer, TransformerOptions
from pcm3.models.official import (
    load_official_encoder,
    load_official_projector,
    official_state_dict,
)
from pcm3.models.prompts import InputPrompts, TaskPrompt, add_at_offset, random_offsets

__all__ = [
    "BACKBONES",
    "STGCN",
    "Backbone",
    "BiGRUEncoder",
    "BiGRUOptions",
    "CausalGRUPair",
    "EncoderSpec",
    "GRUDecoder",
    "InputPrompts",
    "MaskedPredictionNeck",
    "Projector",
    "PromptedEncoder",
    "STGCNOptions",
    "SkeletonTransformer",
    "TaskPrompt",
    "TransformerOptions",
    "add_at_offset",
    "backbone_options",
    "build_encoder",
    "create_backbone",
    "flatten_frames",
    "known_backbones",
    "load_official_encoder",
    "load_official_projector",
    "official_state_dict",
    "random_offsets",
    "register_backbone",
    "unflatten_frames",
    "upsample_steps",
]
