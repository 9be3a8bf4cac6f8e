"""Shared fixtures: a tiny trimmed store on an 8-joint, 2-part custom layout, the config
overrides that make every model tiny (so pre-training tests take seconds on a CPU), and a
test-only backbone (``frame_mlp_test``: non-causal, time stride 2, BatchNorm, a ``(C, V)`` input
prompt) that proves the methods and tasks work with any backbone of the contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from pcm3.config import to_dict
from pcm3.data import Converted, Sample, write_store
from pcm3.errors import ConfigError
from pcm3.layouts import Layout, layout_from_dict
from pcm3.models.masked_norm import masked_batch_norm
from pcm3.models.registry import create_backbone, get_backbone, register_backbone

HANDS8 = layout_from_dict(
    {
        "name": "hands8",
        "joints": [
            "l_shoulder",
            "l_elbow",
            "l_wrist",
            "l_hand",
            "r_shoulder",
            "r_elbow",
            "r_wrist",
            "r_hand",
        ],
        "parents": [0, 0, 1, 2, 0, 4, 5, 6],
        "parts": {"left_arm": [0, 1, 2, 3], "right_arm": [4, 5, 6, 7]},
    }
)

TINY_MODEL = [
    "model.bigru.hidden_size=16",
    "model.bigru.num_layers=2",
    "model.projector_hidden=32",
    "model.embed_dim=8",
    "model.neck_hidden=16",
    "model.decoder_hidden_size=16",
    "model.prompt_length=4",
    "pcm3.moco.queue_size=32",  # PCM3 (the default method) and PCM3++ (read as its base)
    "augment.view_frames=16",
    "augment.crop_min_frames=8",
    "augment.mask_segment_frames=4",
    "batch_size=8",
    "epochs=2",
    "log_every=1",
]


TINY_HEADS = [o for o in TINY_MODEL if not o.startswith("model.bigru.")]


def tiny_model(backbone: str) -> list[str]:
    """Overrides of a tiny pre-training config on ``backbone`` with its ``tiny()`` options (the
    task prompt shortened to fit its feature width)."""
    options = get_backbone(backbone).options.tiny()
    dim = create_backbone(backbone, layout=HANDS8, num_persons=2, in_channels=3,
                          **to_dict(options)).feature_dim
    out = [o for o in TINY_HEADS if not o.startswith("model.prompt_length=")]
    out += [f"model.backbone={backbone}", f"model.prompt_length={min(4, dim // 2 - 1)}"]
    return out + [f"model.{backbone}.{k}={v}" for k, v in to_dict(options).items()]


@dataclass
class FrameMLPOptions:
    """Options of the test-only backbone."""

    width: int = 16
    time_stride: int = 2

    def validate(self) -> None:
        if self.width < 2 or self.width % 2 or self.time_stride < 1:
            raise ConfigError(f"frame_mlp_test: width must be even >= 2 and time_stride >= 1, got {self}")

    @classmethod
    def tiny(cls) -> FrameMLPOptions:
        return cls(width=12)


@register_backbone("frame_mlp_test", options=FrameMLPOptions)
class FrameMLP(nn.Module):
    """Test-only backbone: frames past ``lengths`` zeroed, BatchNorm over ``C*V`` (persons folded
    into the batch), the ``(C, V)`` input prompt, ``time_stride`` frames per step through a
    Linear, persons averaged, a non-causal temporal conv (kernel 3), mean over valid steps."""

    def __init__(self, layout: Layout, num_persons: int, in_channels: int, width: int = 16,
                 time_stride: int = 2) -> None:
        super().__init__()
        FrameMLPOptions(width, time_stride).validate()
        self.cv = in_channels * layout.num_joints
        self.feature_dim, self.time_stride, self.causal = width, time_stride, False
        self.input_prompt_shape = (in_channels, layout.num_joints)
        self.norm = nn.BatchNorm1d(self.cv)
        self.embed = nn.Linear(time_stride * self.cv, width)
        self.mix = nn.Conv1d(width, width, 3, padding=1)

    def forward_dense(self, x: Tensor, lengths: Tensor | None = None, *,
                      input_prompt: Tensor | None = None) -> Tensor:
        n, _, t, _, m = x.shape
        s = self.time_stride
        if lengths is not None:
            x = x * (torch.arange(t, device=x.device) < lengths.to(x.device)[:, None]).view(n, 1, t, 1, 1)
        frames = None
        if lengths is not None:  # padded frames stay out of the train-mode BatchNorm statistics
            frames = torch.arange(t, device=x.device) < lengths.to(x.device)[:, None]
            frames = frames.repeat_interleave(m, 0)
        u = masked_batch_norm(self.norm, x.permute(0, 4, 2, 1, 3).reshape(n * m * t, self.cv), frames)
        u = u.view(n, m, t, self.cv)
        if input_prompt is not None:
            u = u + input_prompt.reshape(-1, 1, 1, self.cv)
        steps = (t + s - 1) // s  # not -(-t // s): ONNX integer division truncates (models/onnx_export.py)
        u = nn.functional.pad(u, (0, 0, 0, steps * s - t)).reshape(n, m, steps, s * self.cv)
        h = torch.relu(self.embed(u)).mean(dim=1)  # (N, T', width)
        if lengths is not None:  # padded steps zeroed: the conv sees the same border however long the padding
            valid = (lengths.to(x.device) + s - 1) // s
            h = h * (torch.arange(steps, device=x.device) < valid[:, None]).unsqueeze(-1).to(h.dtype)
        return self.mix(h.transpose(1, 2)).transpose(1, 2)

    def forward_features(self, x: Tensor, lengths: Tensor | None = None, *,
                         input_prompt: Tensor | None = None) -> Tensor:
        dense = self.forward_dense(x, lengths, input_prompt=input_prompt)
        if lengths is None:
            return dense.mean(dim=1)
        valid_steps = (lengths.to(dense.device) + self.time_stride - 1) // self.time_stride
        keep = (torch.arange(dense.shape[1], device=dense.device) < valid_steps[:, None]).unsqueeze(-1)
        return (dense * keep).sum(dim=1) / valid_steps[:, None].to(dense.dtype)


def make_tiny_converted(n: int = 24, seed: int = 0) -> Converted:
    """``n`` short 2-person clips of 3 'classes' (different arm frequencies) with train/val."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        label = i % 3
        t = int(rng.integers(12, 30))
        phase = np.linspace(0, (label + 1) * np.pi, t)
        x = rng.normal(scale=0.05, size=(3, t, 8, 2)).astype(np.float32)
        x[1, :, :, 0] += np.sin(phase)[:, None].astype(np.float32)
        samples.append(Sample(f"clip{i:03d}", x, label))
    ids = [s.id for s in samples]
    return Converted(
        layout=HANDS8,
        class_names=["slow", "medium", "fast"],
        samples=samples,
        splits={"xsub/train": ids[: 2 * n // 3], "xsub/val": ids[2 * n // 3 :]},
    )


@pytest.fixture
def spawnable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make test modules importable by name in processes started with ``spawn``.

    pytest imports tests with ``--import-mode=importlib`` (no sys.path change); spawned
    workers unpickle their target by module name (``tests.engine.test_ddp``), so the repo
    root must be on their path.
    """
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def tiny_store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stores") / "tiny"
    write_store(path, make_tiny_converted())
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny models run faster on one thread, and far faster on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
