"""Backbones with one API (``create_backbone``): ``bigru``, ``stgcn``, ``transformer``; heads, prompts and
official-weight loading."""

from pcm3.models.registry import BACKBONE_OPTIONS, BACKBONES, create_backbone, register_backbone  # noqa: I001
from pcm3.models.bigru import BiGRUEncoder, CausalGRUPair
from pcm3.models.stgcn import STGCN, STGCNOptions
from pcm3.models.transformer import SkeletonTransformer, TransformerOptions
from pcm3.models.flatten import flatten_frames, unflatten_frames
from pcm3.models.heads import GRUDecoder, MaskedPredictionNeck, Projector
from pcm3.models.official import (
    load_official_encoder,
    load_official_projector,
    official_state_dict,
)
from pcm3.models.prompts import InputPrompts, TaskPrompt, add_at_offset, random_offsets

__all__ = [
    "BACKBONES",
    "BACKBONE_OPTIONS",
    "STGCN",
    "BiGRUEncoder",
    "CausalGRUPair",
    "GRUDecoder",
    "InputPrompts",
    "MaskedPredictionNeck",
    "Projector",
    "STGCNOptions",
    "SkeletonTransformer",
    "TaskPrompt",
    "TransformerOptions",
    "add_at_offset",
    "create_backbone",
    "flatten_frames",
    "load_official_encoder",
    "load_official_projector",
    "official_state_dict",
    "random_offsets",
    "register_backbone",
    "unflatten_frames",
]
