"""PCM3 and CMD checkpoints (``JHang2020/PCM3``, ``maoyunyao/CMD``): the ``BIGRU`` of ``moco/GRU.py``.

Saved as ``{"epoch", "state_dict", "optimizer"}``. PCM3's pre-training ``MoCo`` holds one query
encoder ``encoder_q.*`` (plus ``encoder_k``, prompts, ``linear``, ``recons_decoder``, the queue);
CMD's holds one per stream: ``encoder_q.*`` (joint), ``encoder_q_motion.*``, ``encoder_q_bone.*``
(plus their key encoders and queues). A downstream ``BIGRU`` has the encoder keys at the top level.
Inside an encoder: ``input_norm`` (BatchNorm1d over ``V*C*M = 150``), ``encoder.gru``
(``nn.GRU(150, H, 3, bidirectional=True)`` run frame by frame), ``fc`` (projector or classifier,
ignored). The mapping itself is :func:`pcm3.models.official.load_official_encoder`; our spec is
``bigru`` (causal, ``pooling="last"``: the official function), ntu25, 3 channels, 2 persons, 64 frames.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from pcm3.errors import ConfigError
from pcm3.models.encoder import build_encoder
from pcm3.models.official import load_official_encoder
from pcm3.models.official_formats.reading import refuse_unexpected, scoped
from pcm3.models.official_formats.result import OfficialEncoder, ntu_spec

VIEW_FRAMES = 64
CMD_SCOPES = {"joint": "encoder_q.", "motion": "encoder_q_motion.", "bone": "encoder_q_bone."}
GRU = "encoder.gru."


def _scope(state: Mapping[str, Tensor], fmt: str, stream: str, where: str) -> str:
    if fmt == "official-cmd":
        scope = CMD_SCOPES[stream]
        if not any(k.startswith(scope) for k in state):
            raise ConfigError(f"{where}: CMD checkpoint without {scope!r} keys (the {stream} stream encoder)")
        return scope
    return "encoder_q." if any(k.startswith("encoder_q.") for k in state) else ""


def load_bigru(state: Mapping[str, Tensor], where: str, fmt: str, stream: str) -> OfficialEncoder:
    """The query BiGRU of a PCM3 / CMD state dict (for CMD: the one of ``stream``) as our ``bigru``."""
    scope = _scope(state, fmt, stream, where)
    encoder_keys = scoped(state, scope) if scope else dict(state)
    for key in (GRU + "weight_hh_l0", "input_norm.weight"):
        if key not in encoder_keys:
            raise ConfigError(f"{where}: official BiGRU checkpoint without {scope + key!r}")
    hidden = encoder_keys[GRU + "weight_hh_l0"].shape[1]
    layers = len({k for k in encoder_keys
                  if k.startswith(GRU + "weight_hh_l") and not k.endswith("_reverse")})
    width = encoder_keys["input_norm.weight"].shape[0]
    channels = 3
    joints, rest = divmod(width, channels * 2)
    if rest:
        raise ConfigError(f"{where}: input_norm width {width} is not V*C*M with C=3, M=2 (NTU: 150)")
    options = {"hidden_size": hidden, "num_layers": layers, "bidirectional": False, "pooling": "last"}
    spec = ntu_spec("bigru", options, channels, joints, stream, VIEW_FRAMES, where)
    encoder = build_encoder(spec)
    report = load_official_encoder(encoder_keys, encoder.backbone)
    used = set(report["loaded"].values())
    refuse_unexpected({k for k in encoder_keys if k not in used and not k.startswith("fc.")}, where, scope)
    used_full = {scope + k for k in used}
    return OfficialEncoder(encoder.eval(), spec, fmt, sorted(used_full),
                           sorted(k for k in state if k not in used_full))
