"""What an official-format loader returns, and the official evaluation setting every format shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from pcm3.errors import ConfigError
from pcm3.layouts import NTU25
from pcm3.models.encoder import EncoderSpec, PromptedEncoder

OFFICIAL_PERSONS = 2  # NTU RGB+D / PKU-MMD clips of all these code bases: (N, 3, T, 25, 2)
STREAMS = ("joint", "motion", "bone")


@dataclass
class OfficialEncoder:
    """An encoder rebuilt from an official checkpoint. ``loaded`` maps our keys' official sources;
    ``ignored`` lists the checkpoint's keys not used (key encoders, queues, heads, decoders)."""

    encoder: PromptedEncoder
    spec: EncoderSpec
    format: str
    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def ntu_spec(backbone: str, options: dict, in_channels: int, num_joints: int, stream: str,
             view_frames: int, where: str) -> EncoderSpec:
    """The spec of an official NTU encoder: ntu25 layout, 2 persons; other joint counts are refused."""
    if num_joints != NTU25.num_joints:
        raise ConfigError(f"{where}: official checkpoint for {num_joints} joints; only the NTU RGB+D "
                          f"25-joint layout (ntu25) of the released models is supported")
    if stream not in STREAMS:
        raise ConfigError(f"{where}: stream must be one of {STREAMS}, got {stream!r}")
    return EncoderSpec(backbone, options, in_channels, OFFICIAL_PERSONS, NTU25, stream, view_frames)
